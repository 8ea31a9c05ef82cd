//! Plugin node types run by an HTTP executor (the embedded engine; in the cloud the compiler
//! invokes the plugin's Lambda directly).
//!
//! The runner POSTs the node event — the same JSON as [`NodeEvent`], with secrets resolved —
//! to the executor's URL and reads `{"output": <any>, "port": "<name>"}` back. How answers and
//! failures map to [`NodeError`]s:
//!
//! | executor answer | error |
//! |---|---|
//! | 2xx `{"output": …, "port": "p"}` | none: `port` defaults to `out` |
//! | 2xx that is not a JSON object with `output` (or a `port` that is not a non-empty string) | `ConcertMaster.Internal` |
//! | any non-2xx with `{"error": "Some.Name", "cause": "…"}` | `Some.Name` ([`NodeError::Plugin`]) |
//! | 429 without that body | `ConcertMaster.Http.429` (with `Retry-After`) |
//! | other 4xx without that body | `ConcertMaster.Http.4xx` |
//! | 5xx without that body | `ConcertMaster.Http.5xx` |
//! | 1xx/3xx (redirects are not followed) | `ConcertMaster.Internal` |
//! | more than [`MAX_ANSWER_BYTES`] | `ConcertMaster.Http.ResponseTooLarge` |
//! | connection refused, reset, closed early | `ConcertMaster.Retryable` |
//! | no full answer within `timeout_seconds` | `ConcertMaster.Timeout` |
//!
//! Plugins are installed by the operator (their descriptors come from the admin's plugin
//! folder), so the outbound [`NetworkPolicy`](crate::http::NetworkPolicy) that guards
//! user-supplied URLs does not apply: an executor on `127.0.0.1` is the normal case. The
//! plugin client uses no proxy from the environment and follows no redirects.

use crate::NodeError;
use crate::event::{NodeEvent, NodeOutput, NodeRef};
use crate::runner::NodeContext;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// The time limit of one executor call when none is set.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// The largest answer read from an executor (Lambda's limit for a synchronous response).
pub const MAX_ANSWER_BYTES: usize = 6 * 1024 * 1024;

/// How much of an answer's body an error message quotes.
const QUOTE_CHARS: usize = 300;

/// One plugin type's executor: an HTTP endpoint that runs node events. Made by
/// [`PluginExecutor::new`], which checks the URL.
#[derive(Clone)]
#[non_exhaustive]
pub struct PluginExecutor {
    /// Where events are POSTed (`http://127.0.0.1:9100/run`).
    pub url: String,
    /// The time limit of one call, connection to last byte of the answer (at least 1).
    pub timeout_seconds: u64,
}

impl std::fmt::Debug for PluginExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginExecutor")
            .field("url", &self.url)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// Plugin executors by node type. The caller (the embedded engine, which owns the registry)
/// inserts one per plugin descriptor that has an `httpUrl`.
#[derive(Debug, Clone, Default)]
pub struct PluginExecutors {
    by_type: HashMap<String, PluginExecutor>,
}

impl PluginExecutors {
    /// Registers (or replaces) the executor of `node_type`.
    pub fn insert(&mut self, node_type: &str, executor: PluginExecutor) {
        self.by_type.insert(node_type.to_owned(), executor);
    }

    /// The executor of `node_type`.
    pub fn get(&self, node_type: &str) -> Option<&PluginExecutor> {
        self.by_type.get(node_type)
    }

    /// Removes the executor of `node_type` (a plugin file was deleted), returning it.
    pub fn remove(&mut self, node_type: &str) -> Option<PluginExecutor> {
        self.by_type.remove(node_type)
    }

    /// The node types that have an executor, sorted.
    pub fn node_types(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_type.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether no plugin has an executor.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }
}

/// The HTTP client every plugin executor shares (one connection pool per process), built on
/// the first call (it loads the system's CA certificates, which process start should not wait
/// for).
fn shared_client() -> Result<reqwest::Client, NodeError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    // reqwest is built without a crypto provider: use ring. Installing fails harmlessly when
    // another part of the process (the node HTTP client) already installed one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "ConcertMaster/",
            env!("CARGO_PKG_VERSION"),
            " (plugin)"
        ))
        .build()
        .map_err(|e| NodeError::Internal(format!("building the plugin HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

impl PluginExecutor {
    /// An executor POSTing to `url` (`http` or `https`), with the default time limit
    /// ([`DEFAULT_TIMEOUT_SECONDS`]). A URL that does not parse or has another scheme is
    /// `ConcertMaster.InvalidConfig`.
    pub fn new(url: &str) -> Result<PluginExecutor, NodeError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            NodeError::InvalidConfig(format!("plugin executor URL `{url}` is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(NodeError::InvalidConfig(format!(
                "plugin executor URL `{url}` must be http or https"
            )));
        }
        Ok(PluginExecutor {
            url: url.to_owned(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        })
    }

    /// The same executor with another time limit per call (0 is taken as 1 second). The
    /// embedded engine passes the descriptor's `defaultTimeoutSeconds` (or the node's own
    /// timeout) here.
    pub fn with_timeout_seconds(mut self, seconds: u64) -> Self {
        self.timeout_seconds = seconds.max(1);
        self
    }

    /// POSTs the event (`{"node", "config", "input", "context"}`) to the executor and maps its
    /// answer as the [module documentation](self) tells.
    pub async fn invoke(
        &self,
        node: &NodeRef,
        config: Value,
        input: Value,
        ctx: &NodeContext,
    ) -> Result<NodeOutput, NodeError> {
        let event = NodeEvent {
            node: node.clone(),
            config,
            input,
            context: ctx.execution.clone(),
        };
        let who = format!("plugin `{}` ({})", node.node_type, self.url);
        let limit = Duration::from_secs(self.timeout_seconds.max(1));
        let response = shared_client()?
            .post(&self.url)
            .timeout(limit)
            .json(&event)
            .send()
            .await
            .map_err(|e| self.transport_error(&who, &e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = read_limited(response).await.map_err(|e| match e {
            ReadError::TooLarge => NodeError::ResponseTooLarge(format!(
                "{who} answered more than {MAX_ANSWER_BYTES} bytes"
            )),
            ReadError::Transport(e) => self.transport_error(&who, &e),
        })?;
        if status.is_success() {
            return success(&who, &body);
        }
        Err(failure(&who, status.as_u16(), retry_after, &body))
    }

    fn transport_error(&self, who: &str, e: &reqwest::Error) -> NodeError {
        if e.is_timeout() {
            NodeError::Timeout(format!(
                "{who} did not answer within {} s",
                self.timeout_seconds.max(1)
            ))
        } else if e.is_builder() {
            NodeError::Internal(format!("{who}: {}", chain(e)))
        } else if e.is_connect() {
            NodeError::Retryable(format!("{who} is unreachable: {}", chain(e)))
        } else {
            NodeError::Retryable(format!("{who}: {}", chain(e)))
        }
    }
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its sources (`error sending request: connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The start of a body, for error messages.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let mut q: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().count() > QUOTE_CHARS {
        q.push('…');
    }
    q
}

fn success(who: &str, body: &[u8]) -> Result<NodeOutput, NodeError> {
    let broken = |why: &str| {
        NodeError::Internal(format!(
            "{who} broke the executor contract: {why} (answer: {})",
            quote(body)
        ))
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| broken(&format!("the 2xx answer is not JSON ({e})")))?;
    let Value::Object(mut answer) = value else {
        return Err(broken(
            "the 2xx answer is not an object {\"output\": …, \"port\": …}",
        ));
    };
    let output = answer
        .remove("output")
        .ok_or_else(|| broken("the 2xx answer has no `output`"))?;
    let port = match answer.remove("port") {
        None | Some(Value::Null) => "out".to_owned(),
        Some(Value::String(p)) if !p.trim().is_empty() => p,
        Some(_) => return Err(broken("`port` must be a non-empty string")),
    };
    Ok(NodeOutput { output, port })
}

/// A plugin's own error name: 1–256 printable characters without spaces.
fn valid_error_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace())
}

fn failure(who: &str, status: u16, retry_after: Option<u64>, body: &[u8]) -> NodeError {
    if let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body)
        && let Some(Value::String(name)) = answer.get("error")
        && valid_error_name(name)
    {
        let message = match answer.get("cause") {
            Some(Value::String(c)) => c.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        return NodeError::Plugin {
            name: name.clone(),
            message,
        };
    }
    let message = format!("{who} answered HTTP {status}: {}", quote(body));
    match status {
        429 => NodeError::Http429 {
            message,
            retry_after,
        },
        400..=499 => NodeError::Http4xx { status, message },
        500..=599 => NodeError::Http5xx { status, message },
        _ => NodeError::Internal(format!(
            "{message} (executors answer 2xx or an error status; redirects are not followed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outputs_and_errors() {
        let ok = success("p", br#"{"output": {"a": 1}}"#);
        assert_eq!(ok, Ok(NodeOutput::out(serde_json::json!({"a": 1}))));
        let ok = success("p", br#"{"output": null, "port": "empty"}"#);
        assert_eq!(ok, Ok(NodeOutput::on("empty", Value::Null)));
        for bad in [&b"[1]"[..], b"{}", b"nope", br#"{"output": 1, "port": 3}"#] {
            assert!(matches!(success("p", bad), Err(NodeError::Internal(_))));
        }
        let e = failure("p", 500, None, br#"{"error": "Acme.Down", "cause": "db"}"#);
        assert_eq!(e.name(), "Acme.Down");
        assert_eq!(e.cause(), "db");
        assert_eq!(
            failure("p", 503, None, b"x").name(),
            "ConcertMaster.Http.5xx"
        );
        assert_eq!(
            failure("p", 404, None, b"x").name(),
            "ConcertMaster.Http.4xx"
        );
        assert!(matches!(
            failure("p", 429, Some(3), b""),
            NodeError::Http429 {
                retry_after: Some(3),
                ..
            }
        ));
        assert_eq!(
            failure("p", 400, None, br#"{"error": "has space"}"#).name(),
            "ConcertMaster.Http.4xx"
        );
        assert_eq!(
            failure("p", 302, None, b"").name(),
            "ConcertMaster.Internal"
        );
    }

    #[test]
    fn urls_are_checked() {
        assert!(PluginExecutor::new("ftp://x/run").is_err());
        assert!(PluginExecutor::new("not a url").is_err());
        let e = PluginExecutor::new("http://127.0.0.1:9/run").map(|e| e.with_timeout_seconds(0));
        assert!(matches!(
            e,
            Ok(PluginExecutor {
                timeout_seconds: 1,
                ..
            })
        ));
    }
}
