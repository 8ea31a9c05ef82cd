//! Action node types that run on the node-runner: `action.http` and `action.notify`.
//! (`action.store` and `action.queue` are direct service integrations.)
//!
//! # `action.http`
//!
//! Config (the registry's schema; unknown fields are refused):
//!
//! - `method` (`GET` default, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`), `url` (http/https).
//! - `headers` (`{name: value}`), `query` (`{name: string|number|boolean}`, appended to the
//!   URL's own query).
//! - `body` (any JSON; absent or `null`: no body) sent as `bodyType`: `json` (default;
//!   `application/json`), `form` (the body must be an object of scalars;
//!   `application/x-www-form-urlencoded`) or `text` (a string as is, other values as their
//!   JSON text; `text/plain`). A `Content-Type` header overrides the default type.
//! - `auth`: `{type, secret, header?}`. `secret` *names* a secret, fetched from the secrets
//!   port (missing: `ConcertMaster.SecretNotFound`). `bearer` sends `Authorization: Bearer
//!   <value>`; `basic` sends `Authorization: Basic base64(<value>)`, the value being
//!   `user:password` (a value without `:` is a user name with an empty password); `header`
//!   sends the value as is in the header named by `header` (required for this type). For
//!   `bearer`/`basic`, `header` changes the header name. Credentials are not sent once a
//!   redirect leaves the URL's origin.
//! - `timeoutSeconds` (1–900, default 30): the limit for the whole node call, including
//!   redirects, the body and any in-node `Retry-After` waits.
//! - `maxResponseBytes` (1–262144, default 131072): larger bodies fail with
//!   `ConcertMaster.Http.ResponseTooLarge`.
//! - `failOnStatus` (default `true`): 4xx → `ConcertMaster.Http.4xx`, 429 →
//!   `ConcertMaster.Http.429`, 5xx → `ConcertMaster.Http.5xx`, each with the start of the
//!   body (≤ 300 characters) in the message. With `false` every status is an output.
//!
//! Output (port `out`): `{"status": 200, "headers": {lowercase name: value}, "body": …}`, the
//! body parsed as JSON when the response's content type is JSON (`application/json`,
//! `…+json`; invalid JSON stays a string), else text. Repeated headers are joined with `, `.
//!
//! # `action.notify`
//!
//! POSTs a Slack incoming-webhook message `{"text", "blocks"?, "username"?}` to `url`, or to
//! the URL held in the secret named by `secret` (exactly one of the two). Same network policy,
//! breaker, retries and error mapping as `action.http` (with a 30 s limit, always failing on
//! status); output `{"status": n, "delivered": true}` (`delivered` is `false` for a non-2xx,
//! non-error status such as an unfollowed 3xx). Errors name only `scheme://host:port` of the
//! webhook, never its path (where webhook URLs keep their token).
//!
//! # Retries
//!
//! A 429 or 503 answer with a `Retry-After` (seconds or HTTP date) of at most
//! [`MAX_IN_NODE_WAIT`] that still fits in the node's time limit is waited for and retried in
//! the node, at most [`MAX_IN_NODE_RETRIES`] times (only when `failOnStatus` is on). Anything
//! else is raised, and the node's default ASL `Retry` (which matches `Http.5xx`, `Http.429`,
//! `Retryable`, `Timeout`) backs off between attempts; `ConcertMaster.Http.429` carries the
//! server's `Retry-After`.
//!
//! # Circuit breaker
//!
//! Both node types check the breaker of the URL's `scheme://host:port` before calling
//! (failing fast with `ConcertMaster.CircuitOpen` while it is open) and report the call's
//! outcome after it (see [`crate::breaker`]). The breaker fails open: if its store cannot
//! answer, the call is made and the outcome is not recorded.
//!
//! # Secrets
//!
//! The runner hides `{{ secrets.NAME }}` values from outputs and errors; the values these
//! handlers fetch themselves (the auth secret, the webhook URL) are hidden here the same way
//! (including derived forms such as the `Basic` header), from the output (a server echoing a
//! header) and from every error. Request headers are never part of the output.

use crate::breaker::Outcome;
use crate::http::{HttpBody, HttpRequest, HttpResponse, target_of};
use crate::runner::{NodeContext, NodeHandler, parse_config};
use crate::secrets::Redactor;
use crate::{BoxFuture, NodeError, NodeOutput};
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The longest `Retry-After` waited for inside the node.
pub const MAX_IN_NODE_WAIT: Duration = Duration::from_secs(10);

/// How many times a node retries in-node after a `Retry-After`.
pub const MAX_IN_NODE_RETRIES: u32 = 2;

/// How much of a failing response's body an error message quotes, in characters.
pub const ERROR_BODY_CHARS: usize = 300;

/// The time limit of `action.notify`.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The response limit of `action.notify`.
pub const NOTIFY_MAX_RESPONSE_BYTES: usize = 65_536;

/// The action handlers by node type.
pub fn handlers() -> Vec<(&'static str, Arc<dyn NodeHandler>)> {
    vec![
        ("action.http", Arc::new(HttpAction)),
        ("action.notify", Arc::new(NotifyAction)),
    ]
}

/// `action.http`: calls an HTTP API (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpAction;

/// `action.notify`: posts a Slack-compatible message to a webhook (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyAction;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HttpConfig {
    #[serde(default)]
    method: HttpMethod,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    body_type: BodyType,
    #[serde(default)]
    auth: Option<AuthConfig>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_max_response")]
    max_response_bytes: u64,
    #[serde(default = "yes")]
    fail_on_status: bool,
}

fn default_timeout() -> u64 {
    30
}

fn default_max_response() -> u64 {
    131_072
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
enum HttpMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "HEAD")]
    Head,
}

impl HttpMethod {
    fn method(self) -> Method {
        match self {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
            HttpMethod::Head => Method::HEAD,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BodyType {
    #[default]
    Json,
    Form,
    Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthConfig {
    #[serde(rename = "type")]
    kind: AuthKind,
    secret: String,
    #[serde(default)]
    header: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthKind {
    Bearer,
    Basic,
    Header,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyConfig {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    text: String,
    #[serde(default)]
    blocks: Option<Vec<Value>>,
    #[serde(default)]
    username: Option<String>,
}

impl NodeHandler for HttpAction {
    fn run<'a>(
        &'a self,
        config: Value,
        _input: Value,
        ctx: &'a NodeContext,
    ) -> BoxFuture<'a, Result<NodeOutput, NodeError>> {
        Box::pin(async move {
            let config: HttpConfig = parse_config(config)?;
            let fail_on_status = config.fail_on_status;
            let mut redactor = Redactor::default();
            let request = http_request(config, ctx, &mut redactor)
                .await
                .map_err(|e| e.redact(&redactor))?;
            let what = describe(&request.method, &request.url);
            let response = call(ctx, request, &what, &redactor, fail_on_status).await?;
            Ok(NodeOutput::out(
                redactor.redact_value(http_output(&response)),
            ))
        })
    }
}

impl NodeHandler for NotifyAction {
    fn run<'a>(
        &'a self,
        config: Value,
        _input: Value,
        ctx: &'a NodeContext,
    ) -> BoxFuture<'a, Result<NodeOutput, NodeError>> {
        Box::pin(async move {
            let config: NotifyConfig = parse_config(config)?;
            let mut redactor = Redactor::default();
            let url = match (&config.url, &config.secret) {
                (Some(url), None) => Url::parse(url).map_err(|e| {
                    NodeError::InvalidConfig(format!("config.url: `{url}` is not a URL: {e}"))
                })?,
                (None, Some(name)) => {
                    let value = secret(ctx, name, "config.secret").await?;
                    redactor.add(&value);
                    Url::parse(value.trim()).map_err(|e| {
                        NodeError::InvalidConfig(format!(
                            "the webhook URL in secret `{name}` is not a URL: {e}"
                        ))
                    })?
                }
                _ => {
                    return Err(NodeError::InvalidConfig(
                        "config: give exactly one of `url` and `secret` (the name of a secret \
                         holding the webhook URL)"
                            .into(),
                    ));
                }
            };
            let mut message = Map::new();
            message.insert("text".into(), Value::String(config.text));
            if let Some(blocks) = config.blocks {
                message.insert("blocks".into(), Value::Array(blocks));
            }
            if let Some(username) = config.username {
                message.insert("username".into(), Value::String(username));
            }
            let what = format!("webhook {}", target_of(&url));
            let mut request = HttpRequest::new(Method::POST, url);
            request.body = HttpBody::Json(Value::Object(message));
            request.timeout = NOTIFY_TIMEOUT;
            request.max_response_bytes = NOTIFY_MAX_RESPONSE_BYTES;
            let response = call(ctx, request, &what, &redactor, true).await?;
            Ok(NodeOutput::out(json!({
                "status": response.status,
                "delivered": (200..300).contains(&response.status),
            })))
        })
    }
}

/// The value of secret `name` (referenced at `field`).
async fn secret(ctx: &NodeContext, name: &str, field: &str) -> Result<String, NodeError> {
    if name.is_empty() {
        return Err(NodeError::InvalidConfig(format!(
            "{field}: the secret name is empty"
        )));
    }
    ctx.services.secrets.get(name).await?.ok_or_else(|| {
        NodeError::SecretNotFound(format!(
            "secret `{name}` (referenced at {field}) is not defined"
        ))
    })
}

/// Builds the request of an `action.http` node, adding fetched secret values to `redactor`.
async fn http_request(
    config: HttpConfig,
    ctx: &NodeContext,
    redactor: &mut Redactor,
) -> Result<HttpRequest, NodeError> {
    if !(1..=900).contains(&config.timeout_seconds) {
        return Err(NodeError::InvalidConfig(format!(
            "config.timeoutSeconds: {} is not between 1 and 900",
            config.timeout_seconds
        )));
    }
    if !(1..=262_144).contains(&config.max_response_bytes) {
        return Err(NodeError::InvalidConfig(format!(
            "config.maxResponseBytes: {} is not between 1 and 262144",
            config.max_response_bytes
        )));
    }
    let mut url = Url::parse(&config.url).map_err(|e| {
        NodeError::InvalidConfig(format!("config.url: `{}` is not a URL: {e}", config.url))
    })?;
    if !config.query.is_empty() {
        let mut pairs = Vec::with_capacity(config.query.len());
        for (k, v) in &config.query {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(NodeError::InvalidConfig(format!(
                        "config.query.{k}: must be a string, number or boolean"
                    )));
                }
            };
            pairs.push((k.clone(), v));
        }
        url.query_pairs_mut().extend_pairs(pairs);
    }
    let mut request = HttpRequest::new(config.method.method(), url);
    request.headers = config.headers.into_iter().collect();
    request.timeout = Duration::from_secs(config.timeout_seconds);
    request.max_response_bytes = usize::try_from(config.max_response_bytes).unwrap_or(262_144);
    request.body = match config.body {
        None | Some(Value::Null) => HttpBody::Empty,
        Some(body) => match config.body_type {
            BodyType::Json => HttpBody::Json(body),
            BodyType::Text => HttpBody::Text(match body {
                Value::String(s) => s,
                other => other.to_string(),
            }),
            BodyType::Form => HttpBody::Form(form_fields(body)?),
        },
    };
    if let Some(auth) = config.auth {
        let value = secret(ctx, &auth.secret, "config.auth.secret").await?;
        redactor.add(&value);
        let header = auth.header.filter(|h| !h.trim().is_empty());
        let (name, header_value) = match auth.kind {
            AuthKind::Bearer => (
                header.unwrap_or_else(|| "Authorization".into()),
                format!("Bearer {value}"),
            ),
            AuthKind::Basic => {
                let pair = if value.contains(':') {
                    value.clone()
                } else {
                    format!("{value}:")
                };
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                redactor.add(&encoded);
                (
                    header.unwrap_or_else(|| "Authorization".into()),
                    format!("Basic {encoded}"),
                )
            }
            AuthKind::Header => {
                let Some(name) = header else {
                    return Err(NodeError::InvalidConfig(
                        "config.auth.header: the header name is required when auth.type is \
                         `header`"
                            .into(),
                    ));
                };
                (name, value.clone())
            }
        };
        redactor.add(&header_value);
        request.credentials.push((name, header_value));
    }
    Ok(request)
}

/// The fields of a form body: an object of scalars.
fn form_fields(body: Value) -> Result<Vec<(String, String)>, NodeError> {
    let Value::Object(fields) = body else {
        return Err(NodeError::InvalidConfig(
            "config.body: with bodyType `form` the body must be an object".into(),
        ));
    };
    fields
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => {
                    return Err(NodeError::InvalidConfig(format!(
                        "config.body.{k}: with bodyType `form` field values must be strings, \
                         numbers or booleans"
                    )));
                }
            };
            Ok((k, v))
        })
        .collect()
}

/// `GET https://host:443/path` (no query: it may carry keys).
fn describe(method: &Method, url: &Url) -> String {
    format!("{method} {}{}", target_of(url), url.path())
}

/// Runs a request under the target's circuit breaker, with the in-node `Retry-After` retries,
/// and maps failing statuses to errors when `fail_on_status`. Errors are redacted.
async fn call(
    ctx: &NodeContext,
    request: HttpRequest,
    what: &str,
    redactor: &Redactor,
    fail_on_status: bool,
) -> Result<HttpResponse, NodeError> {
    let target = target_of(&request.url);
    let breakers = &ctx.services.breakers;
    let permit = match breakers.check(&target, ctx.now_ms()).await {
        Ok(p) => Some(p),
        Err(e @ NodeError::CircuitOpen(_)) => return Err(e.redact(redactor)),
        // The breaker's store cannot answer: call anyway (the breaker fails open).
        Err(_) => None,
    };
    let result = send_with_retries(ctx, request, what, fail_on_status).await;
    if let Some(permit) = permit {
        let outcome = match &result {
            Ok(r) => Outcome::of_status(r.status),
            Err(e) => Outcome::of_error(e),
        };
        // Fails open: an unrecorded outcome only delays the breaker.
        let _ = breakers.record(permit, outcome, ctx.now_ms()).await;
    }
    let response = result.map_err(|e| e.redact(redactor))?;
    if fail_on_status && let Some(e) = status_error(&response, what, redactor, ctx.now_ms()) {
        return Err(e);
    }
    Ok(response)
}

async fn send_with_retries(
    ctx: &NodeContext,
    request: HttpRequest,
    what: &str,
    fail_on_status: bool,
) -> Result<HttpResponse, NodeError> {
    let limit = request.timeout;
    let deadline = Instant::now() + limit;
    let timed_out = || {
        NodeError::Timeout(format!(
            "{what}: no complete answer within the time limit ({} s)",
            limit.as_secs()
        ))
    };
    let mut retries = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timed_out());
        }
        let mut attempt = request.clone();
        attempt.timeout = remaining;
        let response = match ctx.services.http.send(attempt).await {
            Ok(r) => r,
            Err(NodeError::Timeout(_)) => return Err(timed_out()),
            Err(e) => return Err(e),
        };
        if fail_on_status
            && retries < MAX_IN_NODE_RETRIES
            && matches!(response.status, 429 | 503)
            && let Some(wait) = response
                .header("retry-after")
                .and_then(|v| retry_after(v, ctx.now_ms()))
            && wait <= MAX_IN_NODE_WAIT
            && Instant::now() + wait < deadline
        {
            retries += 1;
            tokio::time::sleep(wait).await;
            continue;
        }
        return Ok(response);
    }
}

/// A `Retry-After` value (delay in seconds, or an HTTP date) as a wait from `now_ms`.
pub fn retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = date.timestamp_millis().saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// The error for a failing status (`None`: not a failure).
fn status_error(
    response: &HttpResponse,
    what: &str,
    redactor: &Redactor,
    now_ms: i64,
) -> Option<NodeError> {
    let status = response.status;
    if status < 400 {
        return None;
    }
    let text = redactor.redact(&response.text());
    let snippet: String = text.trim().chars().take(ERROR_BODY_CHARS).collect();
    let message = if snippet.is_empty() {
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no body");
        format!("{what} ({reason})")
    } else {
        format!("{what}: {snippet}")
    };
    Some(match status {
        429 => NodeError::Http429 {
            message,
            retry_after: response
                .header("retry-after")
                .and_then(|v| retry_after(v, now_ms))
                .map(|d| u64::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u64::MAX)),
        },
        400..=499 => NodeError::Http4xx { status, message },
        _ => NodeError::Http5xx { status, message },
    })
}

/// `{"status", "headers", "body"}` of a response.
fn http_output(response: &HttpResponse) -> Value {
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let is_json = response.header("content-type").is_some_and(|ct| {
        let media = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        media == "application/json" || media.ends_with("+json") || media == "text/json"
    });
    let body = if is_json {
        serde_json::from_slice(&response.body).unwrap_or_else(|_| Value::String(response.text()))
    } else {
        Value::String(response.text())
    };
    json!({"status": response.status, "headers": headers, "body": body})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(retry_after(" 3 ", 0), Some(Duration::from_secs(3)));
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn output_parses_json_bodies_and_joins_headers() {
        let r = HttpResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/problem+json".into()),
                ("x-a".into(), "1".into()),
                ("x-a".into(), "2".into()),
            ],
            body: br#"{"ok":true}"#.to_vec(),
        };
        let out = http_output(&r);
        assert_eq!(out["body"], json!({"ok": true}));
        assert_eq!(out["headers"]["x-a"], "1, 2");
        let bad = HttpResponse {
            body: b"{nope".to_vec(),
            ..r
        };
        assert_eq!(http_output(&bad)["body"], "{nope");
    }

    #[test]
    fn status_errors_quote_the_start_of_the_redacted_body() {
        let mut redactor = Redactor::default();
        redactor.add("s3cr3t-token");
        let body = format!("bad token s3cr3t-token {}", "x".repeat(1000));
        let r = HttpResponse {
            status: 401,
            headers: vec![],
            body: body.into_bytes(),
        };
        let e = status_error(&r, "GET https://a:443/", &redactor, 0).unwrap();
        assert_eq!(e.name(), "ConcertMaster.Http.4xx");
        let text = e.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("bad token ***"), "{text}");
        assert!(text.len() < 400, "{text}");
        let r = HttpResponse {
            status: 429,
            headers: vec![("retry-after".into(), "7".into())],
            body: vec![],
        };
        assert_eq!(
            status_error(&r, "x", &redactor, 0),
            Some(NodeError::Http429 {
                message: "x (Too Many Requests)".into(),
                retry_after: Some(7)
            })
        );
        let r = HttpResponse {
            status: 302,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(status_error(&r, "x", &redactor, 0), None);
    }

    #[test]
    fn form_bodies_must_be_flat_objects() {
        assert_eq!(
            form_fields(json!({"a": "x", "n": 1, "b": true})).unwrap(),
            vec![
                ("a".to_owned(), "x".to_owned()),
                ("n".to_owned(), "1".to_owned()),
                ("b".to_owned(), "true".to_owned())
            ]
        );
        assert!(form_fields(json!([1])).is_err());
        assert!(form_fields(json!({"a": {"b": 1}})).is_err());
    }
}
