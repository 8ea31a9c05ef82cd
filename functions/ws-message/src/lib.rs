//! The ws-message Lambda: the WebSocket API's `$default` (and `subscribe`) route. It parses
//! the client messages of `GET /ws` (`subscribe` with topic `run:<id>` | `workflow:<id>` and
//! optional `after`, `unsubscribe`, `ping`), checks the topic exists in the connection's
//! organisation (found by connection id: `ConnectionStore::get_connection`), records the subscription, and
//! answers `subscribed` / `unsubscribed` / `pong` / `error` frames — and, for `after` on a run,
//! the run's replayed events — through the Management API ([`cm_live_cloud::message`]).
//!
//! The answer to API Gateway is always `200` without a body (no route response is needed);
//! binary frames are ignored, as the embedded server does.
//!
//! Settings: `CONCERTMASTER_TABLE`, optional `CONCERTMASTER_WS_ENDPOINT` (else learnt from the
//! event: `https://<domainName>/<stage>`; set it for a custom domain),
//! `CONCERTMASTER_ENDPOINT_URL` ([`cm_live_cloud::Config`]).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use cm_live_cloud::{Poster, message};
use cm_store::{ConnectionStore, RunStore, WorkflowStore};
use lambda_runtime::{Diagnostic, LambdaEvent};

fn ok() -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r
}

/// The Management API endpoint of the stage that sent `req` (`https://<domainName>/<stage>`).
pub fn endpoint(req: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    let ctx = &req.request_context;
    match (ctx.domain_name.as_deref(), ctx.stage.as_deref()) {
        (Some(d), Some(s)) if !d.is_empty() && !s.is_empty() => Some(format!("https://{d}/{s}")),
        _ => None,
    }
}

/// Handles one message event.
pub async fn handle<S, P>(
    store: &S,
    poster: &P,
    req: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: RunStore + WorkflowStore + ConnectionStore,
    P: Poster,
{
    if let Some(e) = endpoint(req) {
        poster.endpoint_hint(&e);
    }
    let id = req
        .request_context
        .connection_id
        .as_deref()
        .unwrap_or_default();
    match req.body.as_deref() {
        Some(body) if !req.is_base64_encoded && !id.is_empty() => {
            message::handle(store, poster, id, body).await;
        }
        _ => {}
    }
    ok()
}

/// The Lambda handler ([`handle`]).
pub async fn handler<S, P>(
    store: &S,
    poster: &P,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Diagnostic>
where
    S: RunStore + WorkflowStore + ConnectionStore,
    P: Poster,
{
    Ok(handle(store, poster, &event.payload).await)
}
