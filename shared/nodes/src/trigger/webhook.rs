//! `trigger.webhook`: a run started by an HTTP request to the workflow's hook URL.
//!
//! **Hook URL.** Each webhook trigger has an unguessable *path token* (`/hooks/<token>`),
//! made by [`new_path_token`] when the workflow is published: 32 random bytes, base64url
//! without padding (43 characters). The control plane finds the workflow by the token; store
//! [`path_token_id`] (its SHA-256) rather than the token itself, and compare a presented token
//! with [`path_token_matches`] (constant time).
//!
//! **Signature.** When the config names a `secret`, every request must carry an HMAC-SHA256 of
//! its raw body, keyed with that secret's value (its UTF-8 bytes), in the header
//! `signatureHeader` (default `X-Signature-256`), in GitHub's form `sha256=<64 hex digits>`
//! (bare hex is accepted too; hex digits in either case). The signature is checked before the
//! body is parsed, in constant time ([`hmac::Mac::verify_slice`]); a missing, malformed or
//! wrong signature is a [`WebhookError::SignatureMissing`] / [`SignatureMalformed`] /
//! [`SignatureMismatch`] (HTTP 401). [`sign`] computes the header value.
//!
//! **Body.** By `Content-Type` (parameters such as `charset` are ignored):
//! `application/json`, `text/json` and any `…/…+json` are parsed as JSON (`json`);
//! `application/x-www-form-urlencoded` is decoded into an object (`form`; a repeated key
//! becomes an array of its values). A type not in the config's `accept` (default both) or any
//! other type is a [`WebhookError::UnsupportedContentType`] naming it (HTTP 415); a body that
//! does not parse is a [`WebhookError::InvalidBody`] with the parser's position (HTTP 400). An
//! empty body is `null` whatever the type.
//!
//! **Run input.**
//!
//! ```json
//! {"method": "POST",
//!  "headers": {"content-type": "application/json", "x-github-event": "push", …},
//!  "query": {"source": "ci", "tag": ["a", "b"]},
//!  "body": {…},
//!  "receivedAt": "2026-11-25T10:00:00.000Z"}
//! ```
//!
//! Header names are lower-cased; a repeated header's values are joined with `", "`. The
//! signature header and the credential headers in [`OMITTED_HEADERS`] are left out, so
//! neither a signature nor a credential reaches run history. Query parameters follow the form
//! rule (a repeated key becomes an array).
//!
//! [`SignatureMalformed`]: WebhookError::SignatureMalformed
//! [`SignatureMismatch`]: WebhookError::SignatureMismatch

use crate::NodeError;
use crate::secrets::Secrets;
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;

/// The signature header when the config does not name one.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Signature-256";

/// Request headers that never enter the run input (lower case): they carry credentials.
pub const OMITTED_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// Body formats a webhook can accept (the config's `accept` items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `application/json`, `text/json`, `…/…+json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

impl BodyFormat {
    /// The config name (`json`, `form`).
    pub fn as_str(self) -> &'static str {
        match self {
            BodyFormat::Json => "json",
            BodyFormat::Form => "form",
        }
    }

    /// The media type(s) of the format, for messages.
    pub fn media_types(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        }
    }

    /// The format of a `Content-Type` value, if it is one of the two.
    pub fn of_content_type(content_type: &str) -> Option<BodyFormat> {
        let essence = media_type(content_type);
        if essence == "application/json" || essence == "text/json" || essence.ends_with("+json") {
            Some(BodyFormat::Json)
        } else if essence == "application/x-www-form-urlencoded" {
            Some(BodyFormat::Form)
        } else {
            None
        }
    }
}

/// The media type of a `Content-Type` value: lower case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The webhook trigger's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name of the secret holding the HMAC key; no signature is required without one. A
    /// `{{ secrets.NAME }}` reference is accepted too and means `NAME`.
    #[serde(default)]
    pub secret: Option<String>,
    /// The header carrying the signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// The body formats accepted.
    #[serde(default = "default_accept")]
    pub accept: Vec<BodyFormat>,
}

fn default_signature_header() -> String {
    DEFAULT_SIGNATURE_HEADER.to_owned()
}

fn default_accept() -> Vec<BodyFormat> {
    vec![BodyFormat::Json, BodyFormat::Form]
}

impl WebhookConfig {
    /// Parses a `trigger.webhook` config (`ConcertMaster.InvalidConfig` naming the field).
    pub fn parse(config: &Value) -> Result<WebhookConfig, NodeError> {
        let cfg: WebhookConfig = super::trigger_config(config)?;
        if cfg.signature_header.trim().is_empty() {
            return Err(NodeError::InvalidConfig(
                "config.signatureHeader: must be a header name, not empty".into(),
            ));
        }
        if cfg
            .secret
            .as_deref()
            .is_some_and(|s| secret_name(s).is_empty())
        {
            return Err(NodeError::InvalidConfig(
                "config.secret: must name a secret, not be empty".into(),
            ));
        }
        Ok(cfg)
    }

    /// The secret name (`secret` with a `{{ secrets.NAME }}` wrapper removed).
    pub fn secret_name(&self) -> Option<&str> {
        self.secret.as_deref().map(secret_name)
    }
}

fn secret_name(s: &str) -> &str {
    crate::secrets::references(s)
        .first()
        .copied()
        .unwrap_or(s.trim())
}

/// HTTP headers, matched case-insensitively, in arrival order; a name may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Adds a header (keeping any earlier value of the same name).
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`, any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, any case, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// An HTTP request that arrived at a hook URL, as the control plane received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The method (`POST`, …); upper-cased in the run input.
    pub method: String,
    /// The headers; `Content-Type` decides how the body is parsed.
    pub headers: Headers,
    /// The decoded query parameters, in order (see [`parse_query`]).
    pub query: Vec<(String, String)>,
    /// The raw body, exactly as received (the signature covers these bytes).
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// A request with the given method and nothing else.
    pub fn new(method: impl Into<String>) -> WebhookRequest {
        WebhookRequest {
            method: method.into(),
            ..WebhookRequest::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the query parameters from a raw query string (`a=1&b=x%20y`, no `?`).
    pub fn query_string(mut self, raw: &str) -> Self {
        self.query = parse_query(raw);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The `Content-Type` header, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("content-type")
    }
}

/// Decodes a raw query string (`a=1&b=x%20y&flag`, with or without a leading `?`) into
/// pairs: percent-escapes and `+` are decoded, invalid UTF-8 becomes U+FFFD, a key without
/// `=` has the empty value.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw).unwrap_or_default()
}

/// Why a webhook request was refused. Each variant names what is wrong and where;
/// [`status`](WebhookError::status) is the HTTP status to answer with, and the conversion to
/// [`NodeError`] gives the stable error name (for logs and dead letters).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// The trigger's config is wrong, its secret does not exist, or the secret store failed
    /// (`ConcertMaster.InvalidConfig`, `.SecretNotFound`, `.Internal`; HTTP 500: the
    /// workflow's owner must fix it, not the sender).
    #[error("{0}")]
    Config(NodeError),
    /// The signature header is absent (HTTP 401).
    #[error(
        "webhook signature missing: the request has no `{header}` header (expected `sha256=<hex HMAC-SHA256 of the body>`)"
    )]
    SignatureMissing {
        /// The header that should carry it.
        header: String,
    },
    /// The signature header is not `sha256=<64 hex digits>` or 64 hex digits (HTTP 401).
    #[error(
        "webhook signature malformed: header `{header}` {problem} (expected `sha256=<64 hex digits>`)"
    )]
    SignatureMalformed {
        /// The header.
        header: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The signature does not match the body (HTTP 401).
    #[error(
        "webhook signature mismatch: header `{header}` is not the HMAC-SHA256 of the request body under the key in secret `{secret}`"
    )]
    SignatureMismatch {
        /// The header.
        header: String,
        /// The secret's name (never its value).
        secret: String,
    },
    /// The body's media type is not accepted (HTTP 415).
    #[error("unsupported Content-Type `{content_type}`: this webhook accepts {accepted}")]
    UnsupportedContentType {
        /// The request's `Content-Type` (`(none)` when absent).
        content_type: String,
        /// The media types it accepts.
        accepted: String,
    },
    /// The body does not parse as its `Content-Type` says (HTTP 400).
    #[error("invalid {format} body (Content-Type `{content_type}`): {problem}")]
    InvalidBody {
        /// `json` or `form`.
        format: &'static str,
        /// The request's `Content-Type`.
        content_type: String,
        /// The parser's message, with line and column for JSON.
        problem: String,
    },
    /// The run input would exceed [`super::MAX_RUN_INPUT_BYTES`] (HTTP 413).
    #[error("{0}")]
    TooLarge(String),
}

impl WebhookError {
    /// The HTTP status to answer the sender with.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::Config(_) => 500,
            WebhookError::SignatureMissing { .. }
            | WebhookError::SignatureMalformed { .. }
            | WebhookError::SignatureMismatch { .. } => 401,
            WebhookError::UnsupportedContentType { .. } => 415,
            WebhookError::InvalidBody { .. } => 400,
            WebhookError::TooLarge(_) => 413,
        }
    }

    /// Whether the request was refused for its signature (missing, malformed or wrong).
    pub fn is_signature_failure(&self) -> bool {
        self.status() == 401
    }

    /// The stable error name (`ConcertMaster.InvalidInput` for everything the sender got
    /// wrong; the config error's own name otherwise).
    pub fn name(&self) -> &str {
        match self {
            WebhookError::Config(e) => e.name(),
            _ => "ConcertMaster.InvalidInput",
        }
    }
}

impl From<WebhookError> for NodeError {
    fn from(e: WebhookError) -> NodeError {
        match e {
            WebhookError::Config(e) => e,
            other => NodeError::InvalidInput(other.to_string()),
        }
    }
}

/// Turns a request into the run input (see the [module docs](self)): parses the config,
/// checks the signature if `config.secret` is set (reading the key from `secrets`), parses
/// the body by its `Content-Type`, and builds `{method, headers, query, body, receivedAt}`
/// with `receivedAt` = `received_ms`.
pub async fn accept(
    config: &Value,
    request: &WebhookRequest,
    secrets: &dyn Secrets,
    received_ms: i64,
) -> Result<Value, WebhookError> {
    let cfg = WebhookConfig::parse(config).map_err(WebhookError::Config)?;
    if let Some(name) = cfg.secret_name() {
        let key = secrets
            .get(name)
            .await
            .map_err(WebhookError::Config)?
            .ok_or_else(|| {
                WebhookError::Config(NodeError::SecretNotFound(format!(
                    "secret `{name}` (referenced at config/secret, the webhook's HMAC key) is \
                     not defined"
                )))
            })?;
        verify_signature(&cfg, name, key.as_bytes(), request)?;
    }
    let body = parse_body(&cfg, request)?;
    let input = json!({
        "method": request.method.to_ascii_uppercase(),
        "headers": run_headers(&request.headers, &cfg.signature_header),
        "query": super::pairs_to_object(request.query.clone()),
        "body": body,
        "receivedAt": super::rfc3339_ms(received_ms),
    });
    super::check_run_input_size(&input).map_err(|e| WebhookError::TooLarge(e.to_string()))?;
    Ok(input)
}

fn verify_signature(
    cfg: &WebhookConfig,
    secret: &str,
    key: &[u8],
    request: &WebhookRequest,
) -> Result<(), WebhookError> {
    let header = cfg.signature_header.as_str();
    let mut values = request.headers.get_all(header);
    let Some(value) = values.next() else {
        return Err(WebhookError::SignatureMissing {
            header: header.to_owned(),
        });
    };
    let malformed = |problem: String| WebhookError::SignatureMalformed {
        header: header.to_owned(),
        problem,
    };
    if values.next().is_some() {
        return Err(malformed("appears more than once".into()));
    }
    let value = value.trim();
    let hex = match value.split_once('=') {
        Some((scheme, hex)) if scheme.eq_ignore_ascii_case("sha256") => hex,
        Some((scheme, _)) => {
            return Err(malformed(format!(
                "uses scheme `{scheme}`; only `sha256` is supported"
            )));
        }
        None => value,
    };
    let expected = decode_hex(hex).ok_or_else(|| {
        malformed(format!(
            "is not 64 hexadecimal digits ({} characters after the scheme)",
            hex.len()
        ))
    })?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|e| {
        WebhookError::Config(NodeError::Internal(format!("HMAC key rejected: {e}")))
    })?;
    mac.update(&request.body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::SignatureMismatch {
            header: header.to_owned(),
            secret: secret.to_owned(),
        })
}

/// 64 hex digits → 32 bytes.
fn decode_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// The signature header value for `body` under `key`: `sha256=<64 lowercase hex digits>`
/// (what a sender puts in `X-Signature-256`).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", super::hex(&mac.finalize().into_bytes()))
}

fn parse_body(cfg: &WebhookConfig, request: &WebhookRequest) -> Result<Value, WebhookError> {
    if request.body.is_empty() {
        return Ok(Value::Null);
    }
    let accepted = || {
        if cfg.accept.is_empty() {
            return "no body at all (config.accept is empty)".to_owned();
        }
        cfg.accept
            .iter()
            .map(|f| format!("`{}`", f.media_types()))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let Some(content_type) = request.content_type() else {
        return Err(WebhookError::UnsupportedContentType {
            content_type: "(none)".into(),
            accepted: accepted(),
        });
    };
    let format = BodyFormat::of_content_type(content_type)
        .filter(|f| cfg.accept.contains(f))
        .ok_or_else(|| WebhookError::UnsupportedContentType {
            content_type: content_type.to_owned(),
            accepted: accepted(),
        })?;
    let invalid = |problem: String| WebhookError::InvalidBody {
        format: format.as_str(),
        content_type: content_type.to_owned(),
        problem,
    };
    match format {
        BodyFormat::Json => {
            serde_json::from_slice(&request.body).map_err(|e| invalid(e.to_string()))
        }
        BodyFormat::Form => {
            let text = std::str::from_utf8(&request.body)
                .map_err(|e| invalid(format!("not UTF-8 text (at byte {})", e.valid_up_to())))?;
            serde_urlencoded::from_str::<Vec<(String, String)>>(text)
                .map(super::pairs_to_object)
                .map_err(|e| invalid(e.to_string()))
        }
    }
}

/// The headers as the run input records them (see the module docs).
fn run_headers(headers: &Headers, signature_header: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (name, value) in headers.iter() {
        let name = name.to_ascii_lowercase();
        if name.eq_ignore_ascii_case(signature_header) || OMITTED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        match out.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                out.insert(name, Value::String(value.to_owned()));
            }
        }
    }
    Value::Object(out)
}

/// A new hook path token: 32 bytes from the system's random source, base64url without
/// padding (43 characters of `A–Z a–z 0–9 - _`). `ConcertMaster.Internal` if the system has
/// no random source.
pub fn new_path_token() -> Result<String, NodeError> {
    let bytes = super::random_bytes::<32>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `token` has the shape [`new_path_token`] makes (a cheap check before any lookup).
pub fn is_path_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What to store and look a hook up by: the SHA-256 of the token, 64 hex digits. A leaked
/// database then does not reveal hook URLs, and lookups by id take no time that depends on how
/// much of a guessed token is right.
pub fn path_token_id(token: &str) -> String {
    super::hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Compares a presented token with the expected one in constant time (both are hashed first,
/// so neither their contents nor their lengths change the time taken).
pub fn path_token_matches(expected: &str, presented: &str) -> bool {
    let a = sha2::Sha256::digest(expected.as_bytes());
    let b = sha2::Sha256::digest(presented.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
