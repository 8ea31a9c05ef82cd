//! `$connect`: who connects (a Lambda authorizer's context, else an HS256 token) and recording
//! the connection.
//!
//! A WebSocket API has no JWT authorizer; either a Lambda `REQUEST` authorizer on `$connect`
//! puts the caller in `requestContext.authorizer` (its context: `org` or `custom:org`, and
//! `sub`, else its `principalId`), or the function verifies the token itself: `?token=<jwt>`
//! (browsers cannot set headers on the upgrade) or `Authorization: Bearer <jwt>`, signed with
//! the api function's key, as `concertmaster dev` does. Anything else is `401`, which makes
//! API Gateway refuse the upgrade.

use cm_api::auth::TokenKey;
use cm_api::error::ApiError;
use cm_store::{Connection, ConnectionStore};
use serde_json::Value;
use std::collections::HashMap;

/// Authorizer context fields naming the organisation, in order of preference.
pub const ORG_FIELDS: [&str; 2] = ["custom:org", "org"];

/// Authorizer context fields naming the subject, in order of preference.
pub const SUBJECT_FIELDS: [&str; 2] = ["sub", "principalId"];

/// A refused `$connect`: the status and body the function answers with (the API's error body,
/// `{"code", "message", "details"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// HTTP status (`400`, `401`, `500`).
    pub status: u16,
    /// JSON error body.
    pub body: String,
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        if let ApiError::Internal(m) = &e {
            tracing::error!(error = %m, "connect failed");
        }
        Refused {
            status: e.status_code().0.as_u16(),
            body: serde_json::to_string(&e.body()).unwrap_or_default(),
        }
    }
}

/// What a `$connect` event says.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// `requestContext.connectionId`.
    pub connection_id: &'a str,
    /// The token of `?token=` or of an `Authorization: Bearer` header.
    pub token: Option<&'a str>,
    /// `requestContext.authorizer` (empty without an authorizer).
    pub authorizer: &'a HashMap<String, Value>,
    /// `requestContext.connectedAt` (ms; 0 if absent: then `now_ms`).
    pub connected_at_ms: i64,
}

fn field<'a>(fields: &'a HashMap<String, Value>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| fields.get(*n).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `(org, subject)` of the caller: the authorizer's context if it names an organisation, else
/// the token verified with `key` at `now_s` (seconds).
pub fn caller(
    key: &TokenKey,
    token: Option<&str>,
    authorizer: &HashMap<String, Value>,
    now_s: i64,
) -> Result<(String, String), ApiError> {
    if let Some(org) = field(authorizer, &ORG_FIELDS) {
        let subject = field(authorizer, &SUBJECT_FIELDS).ok_or_else(|| {
            ApiError::Unauthorized(
                "the authorizer's context names an organisation but no subject (sub or principalId)"
                    .into(),
            )
        })?;
        return Ok((org.to_owned(), subject.to_owned()));
    }
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "no token: connect with ?token=<bearer token> (concertmaster token, or the API's)"
                    .into(),
            )
        })?;
    let claims = key.verify(token, now_s)?;
    Ok((claims.org, claims.sub))
}

/// Authenticates a `$connect` and records the connection. `now_ms` is the current time.
pub async fn connect<S: ConnectionStore>(
    store: &S,
    key: &TokenKey,
    req: ConnectRequest<'_>,
    now_ms: i64,
) -> Result<Connection, Refused> {
    if req.connection_id.is_empty() {
        return Err(ApiError::BadRequest("the event has no connectionId".into()).into());
    }
    let (org, subject) = caller(key, req.token, req.authorizer, now_ms.div_euclid(1000))
        .inspect_err(|e| {
            tracing::info!(connection = req.connection_id, reason = %e, "connection refused");
        })?;
    let connection = Connection {
        id: req.connection_id.to_owned(),
        org,
        subject,
        connected_at_ms: if req.connected_at_ms > 0 {
            req.connected_at_ms
        } else {
            now_ms
        },
    };
    store
        .put_connection(connection.clone())
        .await
        .map_err(|e| ApiError::Internal(format!("recording the connection: {e}")))?;
    tracing::info!(connection = %connection.id, org = %connection.org, "connected");
    Ok(connection)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
