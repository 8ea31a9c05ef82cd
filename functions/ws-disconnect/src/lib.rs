//! The ws-disconnect Lambda: the WebSocket API's `$disconnect` route. It deletes the
//! connection and its subscriptions (`ConnectionStore::delete_connection`, idempotent).
//! API Gateway ignores the answer (`$disconnect` is best effort: a connection it never reports
//! is deleted by the status-pusher when a post answers `410 Gone`); a store failure is logged
//! and answered `500`.
//!
//! Settings: `CONCERTMASTER_TABLE`, `CONCERTMASTER_ENDPOINT_URL` ([`cm_live_cloud::Config`]).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use cm_store::ConnectionStore;
use lambda_runtime::{Diagnostic, LambdaEvent};

fn status(code: u16) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = i64::from(code);
    r
}

/// Handles one `$disconnect`: `200` once the connection is forgotten.
pub async fn handle<S: ConnectionStore>(
    store: &S,
    req: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &req.request_context;
    let Some(id) = ctx.connection_id.as_deref().filter(|id| !id.is_empty()) else {
        return status(400);
    };
    match store.delete_connection(id).await {
        Ok(()) => {
            tracing::info!(
                connection = id,
                status = ?ctx.disconnect_status_code,
                reason = ctx.disconnect_reason.as_deref().unwrap_or_default(),
                "disconnected"
            );
            status(200)
        }
        Err(e) => {
            tracing::error!(connection = id, error = %e, "forgetting the connection");
            status(500)
        }
    }
}

/// The Lambda handler ([`handle`]).
pub async fn handler<S: ConnectionStore>(
    store: &S,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Diagnostic> {
    Ok(handle(store, &event.payload).await)
}
