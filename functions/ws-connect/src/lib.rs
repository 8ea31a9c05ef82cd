//! The ws-connect Lambda: the WebSocket API's `$connect` route. It authenticates the caller —
//! the Lambda authorizer's context if the route has one (`org`/`custom:org`, `sub`/
//! `principalId`), else the HS256 token of `?token=` (or `Authorization: Bearer`) verified
//! with `CONCERTMASTER_SIGNING_KEY` — and records the connection (id, organisation, subject,
//! `connectedAt`) through `ConnectionStore`. A missing or bad token answers `401` (API
//! Gateway then refuses the upgrade); a store failure `500`.
//!
//! Settings: `CONCERTMASTER_TABLE`, `CONCERTMASTER_SIGNING_KEY` (required),
//! `CONCERTMASTER_ENDPOINT_URL` ([`cm_live_cloud::Config`]).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderValue, header};
use cm_api::auth::TokenKey;
use cm_live_cloud::connect::{self, ConnectRequest};
use cm_store::ConnectionStore;
use lambda_runtime::{Diagnostic, LambdaEvent};

/// A response with `status` and an optional JSON body.
pub fn response(status: u16, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = i64::from(status);
    if let Some(b) = body {
        r.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.body = Some(Body::Text(b));
    }
    r
}

/// The token of `?token=`, else of an `Authorization: Bearer` header.
pub fn token(req: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    req.query_string_parameters.first("token").or_else(|| {
        req.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
    })
}

/// Handles one `$connect` at time `now_ms`: `200` once the connection is recorded, else the
/// refusal's status and error body.
pub async fn handle<S: ConnectionStore>(
    store: &S,
    key: &TokenKey,
    req: &ApiGatewayWebsocketProxyRequest,
    now_ms: i64,
) -> ApiGatewayProxyResponse {
    let ctx = &req.request_context;
    let connect = ConnectRequest {
        connection_id: ctx.connection_id.as_deref().unwrap_or_default(),
        token: token(req),
        authorizer: &ctx.authorizer.fields,
        connected_at_ms: ctx.connected_at,
    };
    match connect::connect(store, key, connect, now_ms).await {
        Ok(_) => response(200, None),
        Err(refused) => response(refused.status, Some(refused.body)),
    }
}

/// The Lambda handler ([`handle`] at the current time).
pub async fn handler<S: ConnectionStore>(
    store: &S,
    key: &TokenKey,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Diagnostic> {
    Ok(handle(store, key, &event.payload, connect::now_ms()).await)
}
