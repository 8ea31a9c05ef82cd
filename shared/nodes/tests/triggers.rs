#![allow(clippy::unwrap_used)]
//! Triggers: manual, webhook, form, schedule, queue, dead letters.

use cm_nodes::NodeError;
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::trigger::dead_letter::{self, DeadLetter, DeadLetters, MemoryDeadLetters, Redrive};
use cm_nodes::trigger::schedule::{Schedule, ScheduleKind, ScheduleTrigger};
use cm_nodes::trigger::webhook::{self, WebhookError, WebhookRequest};
use cm_nodes::trigger::{self, form, manual, queue};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

/// ms since the epoch of an RFC 3339 time.
fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

/// RFC 3339 UTC (seconds) of ms since the epoch.
fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn invalid_config(e: NodeError) -> String {
    match e {
        NodeError::InvalidConfig(m) => m,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

fn invalid_input(e: NodeError) -> String {
    match e {
        NodeError::InvalidInput(m) => m,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn validation(e: NodeError) -> (String, Vec<Value>) {
    match e {
        NodeError::ValidationFailed { message, errors } => (message, errors),
        other => panic!("expected ValidationFailed, got {other:?}"),
    }
}

fn paths(errors: &[Value]) -> Vec<&str> {
    let mut v: Vec<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------- common

#[test]
fn rfc3339_ms_formats_utc_with_milliseconds() {
    assert_eq!(
        trigger::rfc3339_ms(ms("2026-11-25T10:00:00.5Z")),
        "2026-11-25T10:00:00.500Z"
    );
}

#[test]
fn run_input_size_is_limited() {
    let ok = json!({"s": "x".repeat(1000)});
    trigger::check_run_input_size(&ok).unwrap();
    let big = json!({"s": "x".repeat(trigger::MAX_RUN_INPUT_BYTES)});
    let m = invalid_input(trigger::check_run_input_size(&big).unwrap_err());
    assert!(m.contains("bytes of JSON"), "{m}");
    assert!(m.contains(&trigger::MAX_RUN_INPUT_BYTES.to_string()), "{m}");
}

// ---------------------------------------------------------------- manual

#[test]
fn manual_passes_input_through_without_schema() {
    let input = json!({"a": [1, 2], "b": "x"});
    assert_eq!(manual::accept(&json!({}), input.clone()).unwrap(), input);
    // No config at all, no input at all.
    assert_eq!(
        manual::accept(&Value::Null, Value::Null).unwrap(),
        json!({})
    );
}

#[test]
fn manual_checks_the_input_schema() {
    let config = json!({"inputSchema": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
    }});
    let good = json!({"name": "Ada", "age": 36});
    assert_eq!(manual::accept(&config, good.clone()).unwrap(), good);

    let (message, errors) = validation(manual::accept(&config, json!({"age": -1})).unwrap_err());
    assert_eq!(paths(&errors), vec!["", "/age"]);
    assert!(message.contains("config.inputSchema"), "{message}");
    assert!(message.contains("2 violation(s)"), "{message}");
    assert!(errors.iter().all(|e| e["message"].is_string()));

    // `null` becomes `{}` before the check, so a required field is still reported.
    let (_, errors) = validation(manual::accept(&config, Value::Null).unwrap_err());
    assert_eq!(paths(&errors), vec![""]);
    assert!(errors[0]["message"].as_str().unwrap().contains("name"));

    manual::accept(&config, json!({"name": "x"})).unwrap();
}

#[test]
fn manual_config_errors() {
    let m = invalid_config(
        manual::accept(&json!({"inputSchema": {"type": 5}}), json!({})).unwrap_err(),
    );
    assert!(
        m.contains("config.inputSchema is not a valid JSON Schema"),
        "{m}"
    );
    let m = invalid_config(manual::accept(&json!({"schema": {}}), json!({})).unwrap_err());
    assert!(m.contains("schema"), "{m}");
    let big = json!({"s": "x".repeat(trigger::MAX_RUN_INPUT_BYTES)});
    invalid_input(manual::accept(&json!({}), big).unwrap_err());
}

// ---------------------------------------------------------------- webhook

const KEY: &str = "It's a Secret to Everybody";
const RECEIVED: &str = "2026-11-25T10:00:00Z";

fn secrets() -> LocalSecrets {
    LocalSecrets::new().insert("HOOK_KEY", KEY)
}

fn json_request(body: &str) -> WebhookRequest {
    WebhookRequest::new("post")
        .header("Content-Type", "application/json")
        .body(body)
}

async fn accept(config: Value, request: &WebhookRequest) -> Result<Value, WebhookError> {
    webhook::accept(&config, request, &secrets(), ms(RECEIVED)).await
}

#[test]
fn sign_matches_a_known_hmac_sha256_vector() {
    assert_eq!(
        webhook::sign(b"key", b"The quick brown fox jumps over the lazy dog"),
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    // GitHub's documented example.
    assert_eq!(
        webhook::sign(KEY.as_bytes(), b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[tokio::test]
async fn webhook_json_body_becomes_the_run_input() {
    let request = json_request(r#"{"action": "opened", "n": 3}"#)
        .header("X-GitHub-Event", "issues")
        .header("Accept", "text/html")
        .header("accept", "application/json")
        .header("Authorization", "Bearer nope")
        .header("Cookie", "session=1")
        .query_string("?source=ci&tag=a&tag=b&flag");
    let input = accept(json!({}), &request).await.unwrap();
    assert_eq!(
        input,
        json!({
            "method": "POST",
            "headers": {
                "content-type": "application/json",
                "x-github-event": "issues",
                "accept": "text/html, application/json",
            },
            "query": {"source": "ci", "tag": ["a", "b"], "flag": ""},
            "body": {"action": "opened", "n": 3},
            "receivedAt": "2026-11-25T10:00:00.000Z",
        })
    );
}

#[tokio::test]
async fn webhook_json_media_types_and_empty_bodies() {
    for ct in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.github+json",
        "application/cloudevents+json",
        "text/json",
    ] {
        let request = WebhookRequest::new("POST")
            .header("content-type", ct)
            .body("[1, 2]");
        let input = accept(json!({"accept": ["json"]}), &request).await.unwrap();
        assert_eq!(input["body"], json!([1, 2]), "{ct}");
    }
    // No body: `null`, whatever the type (or none).
    let input = accept(json!({}), &WebhookRequest::new("GET"))
        .await
        .unwrap();
    assert_eq!(input["body"], Value::Null);
    assert_eq!(input["method"], "GET");
    assert_eq!(input["query"], json!({}));
}

#[tokio::test]
async fn webhook_form_body_becomes_an_object() {
    let request = WebhookRequest::new("POST")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=Ada+Lovelace&email=ada%40example.com&tag=x&tag=y&tag=z");
    let input = accept(json!({"accept": ["form"]}), &request).await.unwrap();
    assert_eq!(
        input["body"],
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "tag": ["x", "y", "z"]})
    );
}

#[tokio::test]
async fn webhook_refuses_unsupported_content_types() {
    let request = WebhookRequest::new("POST")
        .header("Content-Type", "text/plain")
        .body("hello");
    let e = accept(json!({}), &request).await.unwrap_err();
    assert_eq!(e.status(), 415);
    assert!(
        matches!(&e, WebhookError::UnsupportedContentType { content_type, .. } if content_type == "text/plain")
    );
    let m = e.to_string();
    assert!(m.contains("`text/plain`"), "{m}");
    assert!(
        m.contains("application/json") && m.contains("application/x-www-form-urlencoded"),
        "{m}"
    );
    let n: NodeError = e.into();
    assert_eq!(n.name(), "ConcertMaster.InvalidInput");
    assert!(n.to_string().contains("text/plain"));

    // A known type the config does not accept.
    let request = WebhookRequest::new("POST")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("a=1");
    let e = accept(json!({"accept": ["json"]}), &request)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 415);
    let m = e.to_string();
    assert!(
        m.contains("application/x-www-form-urlencoded") && m.contains("accepts `application/json`"),
        "{m}"
    );

    // A body without a Content-Type.
    let e = accept(json!({}), &WebhookRequest::new("POST").body("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 415);
    assert!(e.to_string().contains("(none)"), "{e}");

    // `accept: []` takes no body at all.
    let e = accept(json!({"accept": []}), &json_request("{}"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("config.accept is empty"), "{e}");
    accept(json!({"accept": []}), &WebhookRequest::new("POST"))
        .await
        .unwrap();

    // multipart is not supported.
    let request = WebhookRequest::new("POST")
        .header("Content-Type", "multipart/form-data; boundary=x")
        .body("--x--");
    let e = accept(json!({}), &request).await.unwrap_err();
    assert!(e.to_string().contains("multipart/form-data"), "{e}");
}

#[tokio::test]
async fn webhook_refuses_invalid_json() {
    let e = accept(json!({}), &json_request("{\"a\": 1,\n  oops}"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(matches!(
        e,
        WebhookError::InvalidBody { format: "json", .. }
    ));
    let m = e.to_string();
    assert!(m.contains("invalid json body"), "{m}");
    assert!(m.contains("line 2 column 3"), "{m}");
    assert_eq!(e.name(), "ConcertMaster.InvalidInput");

    // Form bodies must be UTF-8.
    let request = WebhookRequest::new("POST")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a', b'=', 0xff, 0xfe]);
    let e = accept(json!({}), &request).await.unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("not UTF-8 text (at byte 2)"), "{e}");
}

#[tokio::test]
async fn webhook_signature_good() {
    let body = r#"{"zen": "Keep it logically awesome."}"#;
    let sig = webhook::sign(KEY.as_bytes(), body.as_bytes());
    let config = json!({"secret": "HOOK_KEY"});
    // GitHub form, in the default header, any case.
    let request = json_request(body).header("x-signature-256", sig.clone());
    let input = accept(config.clone(), &request).await.unwrap();
    assert_eq!(input["body"]["zen"], "Keep it logically awesome.");
    // The signature header is not recorded.
    assert!(input["headers"].get("x-signature-256").is_none());
    assert_eq!(
        input["headers"],
        json!({"content-type": "application/json"})
    );

    // Bare hex, upper case.
    let bare = sig.trim_start_matches("sha256=").to_ascii_uppercase();
    let request = json_request(body).header("X-Signature-256", bare);
    accept(config.clone(), &request).await.unwrap();

    // A custom header and a `{{ secrets.NAME }}` reference.
    let config =
        json!({"secret": "{{ secrets.HOOK_KEY }}", "signatureHeader": "X-Hub-Signature-256"});
    let request = json_request(body)
        .header("X-Hub-Signature-256", sig)
        .header("X-Signature-256", "not checked, recorded");
    let input = accept(config, &request).await.unwrap();
    assert!(input["headers"].get("x-hub-signature-256").is_none());
    assert_eq!(input["headers"]["x-signature-256"], "not checked, recorded");
}

#[tokio::test]
async fn webhook_signature_missing() {
    let e = accept(json!({"secret": "HOOK_KEY"}), &json_request("{}"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WebhookError::SignatureMissing {
            header: "X-Signature-256".into()
        }
    );
    assert_eq!(e.status(), 401);
    assert!(e.is_signature_failure());
    assert!(e.to_string().contains("no `X-Signature-256` header"), "{e}");
    let n: NodeError = e.into();
    assert!(matches!(n, NodeError::InvalidInput(m) if m.contains("signature missing")));
}

#[tokio::test]
async fn webhook_signature_wrong() {
    let body = "{\"amount\": 100}";
    let config = json!({"secret": "HOOK_KEY"});
    // Signed with another key.
    let request =
        json_request(body).header("X-Signature-256", webhook::sign(b"other", body.as_bytes()));
    let e = accept(config.clone(), &request).await.unwrap_err();
    assert!(
        matches!(&e, WebhookError::SignatureMismatch { header, secret } if header == "X-Signature-256" && secret == "HOOK_KEY")
    );
    assert_eq!(e.status(), 401);
    let m = e.to_string();
    assert!(m.contains("secret `HOOK_KEY`") && !m.contains(KEY), "{m}");

    // Signed over another body (tampered).
    let request = json_request("{\"amount\": 999}").header(
        "X-Signature-256",
        webhook::sign(KEY.as_bytes(), body.as_bytes()),
    );
    let e = accept(config.clone(), &request).await.unwrap_err();
    assert!(matches!(e, WebhookError::SignatureMismatch { .. }));

    // The signature is checked before the body is parsed.
    let request =
        json_request("not json").header("X-Signature-256", webhook::sign(b"other", b"not json"));
    let e = accept(config, &request).await.unwrap_err();
    assert!(e.is_signature_failure(), "{e:?}");
}

#[tokio::test]
async fn webhook_signature_wrong_format() {
    let config = json!({"secret": "HOOK_KEY"});
    let good = webhook::sign(KEY.as_bytes(), b"{}");
    let hex = good.trim_start_matches("sha256=").to_owned();
    let cases = [
        (format!("sha1={hex}"), "scheme `sha1`"),
        (
            "sha256=abc".to_owned(),
            "not 64 hexadecimal digits (3 characters",
        ),
        (
            format!("sha256={}", "zz".repeat(32)),
            "not 64 hexadecimal digits",
        ),
        (
            format!("{hex}00"),
            "not 64 hexadecimal digits (66 characters",
        ),
        (String::new(), "not 64 hexadecimal digits (0 characters"),
    ];
    for (value, expected) in cases {
        let request = json_request("{}").header("X-Signature-256", value.clone());
        let e = accept(config.clone(), &request).await.unwrap_err();
        assert!(
            matches!(e, WebhookError::SignatureMalformed { .. }),
            "{value}: {e:?}"
        );
        assert_eq!(e.status(), 401);
        assert!(e.to_string().contains(expected), "{value}: {e}");
        assert!(e.to_string().contains("`X-Signature-256`"), "{e}");
    }
    // Twice.
    let request = json_request("{}")
        .header("X-Signature-256", good.clone())
        .header("x-signature-256", good);
    let e = accept(config, &request).await.unwrap_err();
    assert!(e.to_string().contains("appears more than once"), "{e}");
}

#[tokio::test]
async fn webhook_config_errors() {
    // The secret does not exist.
    let e = accept(json!({"secret": "NOPE"}), &json_request("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 500);
    assert_eq!(e.name(), "ConcertMaster.SecretNotFound");
    assert!(e.to_string().contains("secret `NOPE`"), "{e}");
    assert!(matches!(NodeError::from(e), NodeError::SecretNotFound(_)));

    for (config, expected) in [
        (json!({"accept": ["xml"]}), "config.accept[0]"),
        (json!({"signatureHeader": " "}), "config.signatureHeader"),
        (json!({"secret": ""}), "config.secret"),
        (json!({"hmac": "x"}), "hmac"),
    ] {
        let e = accept(config.clone(), &json_request("{}"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 500, "{config}");
        assert_eq!(e.name(), "ConcertMaster.InvalidConfig", "{config}");
        assert!(e.to_string().contains(expected), "{config}: {e}");
    }
}

#[tokio::test]
async fn webhook_refuses_oversized_input() {
    let body =
        serde_json::to_string(&json!({"s": "x".repeat(trigger::MAX_RUN_INPUT_BYTES)})).unwrap();
    let e = accept(json!({}), &json_request(&body)).await.unwrap_err();
    assert_eq!(e.status(), 413);
    assert!(e.to_string().contains("bytes of JSON"), "{e}");
}

#[test]
fn webhook_request_helpers() {
    let r = WebhookRequest::new("POST")
        .header("Content-Type", "application/json")
        .header("X-A", "1")
        .header("x-a", "2");
    assert_eq!(r.content_type(), Some("application/json"));
    assert_eq!(r.headers.get("X-a"), Some("1"));
    assert_eq!(r.headers.get_all("X-A").collect::<Vec<_>>(), vec!["1", "2"]);
    assert_eq!(r.headers.len(), 3);
    assert_eq!(
        webhook::parse_query("a=1&b=x%20y+z&a=2"),
        vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x y z".to_owned()),
            ("a".to_owned(), "2".to_owned())
        ]
    );
}

#[test]
fn path_tokens() {
    let a = webhook::new_path_token().unwrap();
    let b = webhook::new_path_token().unwrap();
    assert_eq!(a.len(), 43);
    assert_ne!(a, b);
    assert!(webhook::is_path_token(&a));
    assert!(!webhook::is_path_token("short"));
    assert!(!webhook::is_path_token(&format!("{}!", &a[..42])));
    assert!(webhook::path_token_matches(&a, &a.clone()));
    assert!(!webhook::path_token_matches(&a, &b));
    assert!(!webhook::path_token_matches(&a, &a[..42]));
    assert!(!webhook::path_token_matches(&a, ""));
    let id = webhook::path_token_id(&a);
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(id, webhook::path_token_id(&a));
    assert_ne!(id, webhook::path_token_id(&b));
}

// ---------------------------------------------------------------- form

fn form_config() -> Value {
    json!({
        "title": "Contact us",
        "description": "We answer within a day.",
        "schema": {
            "type": "object",
            "required": ["name", "email"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer", "minimum": 18}
            }
        },
        "uiSchema": {"email": {"ui:placeholder": "you@example.com"}}
    })
}

#[test]
fn form_definition() {
    let d = form::definition(&form_config()).unwrap();
    assert_eq!(d.title, "Contact us");
    assert_eq!(d.submit_label, form::DEFAULT_SUBMIT_LABEL);
    assert_eq!(d.success_message, form::DEFAULT_SUCCESS_MESSAGE);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["description"], "We answer within a day.");
    assert_eq!(v["uiSchema"]["email"]["ui:placeholder"], "you@example.com");
    assert_eq!(v["submitLabel"], "Submit");
    assert_eq!(v["schema"]["required"], json!(["name", "email"]));

    let mut c = form_config();
    c["submitLabel"] = json!("Send");
    c["successMessage"] = json!("Thanks!");
    let d = form::definition(&c).unwrap();
    assert_eq!(
        (d.submit_label.as_str(), d.success_message.as_str()),
        ("Send", "Thanks!")
    );
}

#[test]
fn form_definition_errors() {
    for (config, expected) in [
        (
            json!({"schema": {"type": "object"}}),
            "missing field `title`",
        ),
        (json!({"title": " ", "schema": {}}), "config.title"),
        (json!({"title": "t"}), "missing field `schema`"),
        (
            json!({"title": "t", "schema": []}),
            "config.schema: must be a JSON Schema object, not an array",
        ),
        (
            json!({"title": "t", "schema": {"type": "array"}}),
            "config.schema/type",
        ),
        (
            json!({"title": "t", "schema": {"type": "object", "minProperties": "x"}}),
            "config.schema is not a valid JSON Schema",
        ),
        (
            json!({"title": "t", "schema": {}, "uiSchema": 3}),
            "config.uiSchema: must be an object, not a number",
        ),
        (
            json!({"title": "t", "schema": {}, "colour": "red"}),
            "colour",
        ),
    ] {
        let m = invalid_config(form::definition(&config).unwrap_err());
        assert!(m.contains(expected), "{config}: {m}");
    }
}

#[test]
fn form_accepts_a_valid_submission() {
    let data = json!({"name": "Ada", "email": "ada@example.com", "age": 36});
    let now = ms("2026-11-25T10:00:00Z");
    let r = form::accept(&form_config(), data.clone(), now).unwrap();
    assert_eq!(r.id.len(), 32);
    assert!(r.id.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r.submitted_ms, now);
    assert_eq!(r.submitted_at(), "2026-11-25T10:00:00.000Z");
    assert_eq!(r.data, data);
    assert_eq!(r.run_input(), data);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["submittedMs"], json!(now));
    let other = form::accept(&form_config(), data, now).unwrap();
    assert_ne!(r.id, other.id);
}

#[test]
fn form_lists_every_violation() {
    let (message, errors) = validation(
        form::accept(
            &form_config(),
            json!({"email": "not-an-email", "age": 12}),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(paths(&errors), vec!["", "/age", "/email"]);
    assert!(
        message.contains("the form submission does not match config.schema: 3 violation(s)"),
        "{message}"
    );
    let email = errors.iter().find(|e| e["path"] == "/email").unwrap();
    assert!(
        email["message"].as_str().unwrap().contains("email"),
        "{email}"
    );

    let m = invalid_input(form::accept(&form_config(), json!(["Ada"]), 0).unwrap_err());
    assert!(
        m.contains("must be a JSON object of fields, not an array"),
        "{m}"
    );
    invalid_config(form::accept(&json!({"title": "t"}), json!({}), 0).unwrap_err());
}

// ---------------------------------------------------------------- queue

#[test]
fn queue_messages_become_run_inputs() {
    let mut m1 = queue::QueueMessage::new("m-1", r#"{"order": 7}"#);
    m1.attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let m2 = queue::QueueMessage::new("m-2", "plain text");
    let m3 = queue::QueueMessage::new("m-3", "42");
    let batch = queue::accept(
        &json!({"queue": "orders", "batchSize": 3}),
        vec![m1, m2, m3],
    )
    .unwrap();
    assert!(batch.rejected.is_empty() && batch.deferred.is_empty());
    assert_eq!(
        batch.accepted,
        vec![
            (
                "m-1".to_owned(),
                json!({"messageId": "m-1", "queue": "orders", "body": {"order": 7},
                       "attributes": {"ApproximateReceiveCount": "1"}})
            ),
            (
                "m-2".to_owned(),
                json!({"messageId": "m-2", "queue": "orders", "body": "plain text", "attributes": {}})
            ),
            (
                "m-3".to_owned(),
                json!({"messageId": "m-3", "queue": "orders", "body": 42, "attributes": {}})
            ),
        ]
    );
    assert_eq!(queue::parse_body("{broken"), json!("{broken"));
    assert_eq!(queue::parse_body("\"quoted\""), json!("quoted"));
}

#[test]
fn queue_respects_the_batch_size() {
    let messages: Vec<_> = (0..4)
        .map(|i| queue::QueueMessage::new(format!("m-{i}"), "{}"))
        .collect();
    // Default batch size: 1.
    let batch = queue::accept(&json!({"queue": "q"}), messages.clone()).unwrap();
    assert_eq!(batch.accepted.len(), 1);
    assert_eq!(batch.accepted[0].0, "m-0");
    assert_eq!(
        batch
            .deferred
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        vec!["m-1", "m-2", "m-3"]
    );
    let batch = queue::accept(&json!({"queue": "q", "batchSize": 10}), messages).unwrap();
    assert_eq!(batch.accepted.len(), 4);
    assert!(batch.deferred.is_empty());
}

#[test]
fn queue_rejects_bad_messages() {
    let big = format!("\"{}\"", "x".repeat(trigger::MAX_RUN_INPUT_BYTES));
    let messages = vec![
        queue::QueueMessage::new("", "{}"),
        queue::QueueMessage::new("a", "{}"),
        queue::QueueMessage::new("a", "{}"),
        queue::QueueMessage::new("huge", big),
    ];
    let batch = queue::accept(&json!({"queue": "q", "batchSize": 10}), messages).unwrap();
    assert_eq!(batch.accepted.len(), 1);
    let rejected: Vec<(&str, String)> = batch
        .rejected
        .iter()
        .map(|(id, e)| (id.as_str(), e.to_string()))
        .collect();
    assert_eq!(rejected.len(), 3);
    assert_eq!(rejected[0].0, "");
    assert!(
        rejected[0]
            .1
            .contains("message 0 of the batch from queue `q` has no id"),
        "{rejected:?}"
    );
    assert_eq!(rejected[1].0, "a");
    assert!(
        rejected[1].1.contains("appears more than once"),
        "{rejected:?}"
    );
    assert_eq!(rejected[2].0, "huge");
    assert!(
        rejected[2]
            .1
            .starts_with("message `huge`: the run input is"),
        "{rejected:?}"
    );
    assert!(
        batch
            .rejected
            .iter()
            .all(|(_, e)| e.name() == "ConcertMaster.InvalidInput")
    );
}

#[test]
fn queue_config_errors() {
    for (config, expected) in [
        (json!({}), "missing field `queue`"),
        (
            json!({"queue": "has space"}),
            "config.queue: `has space` is not a queue name",
        ),
        (
            json!({"queue": "q", "batchSize": 0}),
            "config.batchSize: 0 is out of range 1-10",
        ),
        (
            json!({"queue": "q", "batchSize": 11}),
            "config.batchSize: 11 is out of range 1-10",
        ),
        (json!({"queue": "q", "batchSize": "2"}), "config.batchSize"),
    ] {
        let m = invalid_config(queue::accept(&config, vec![]).unwrap_err());
        assert!(m.contains(expected), "{config}: {m}");
    }
}

// ---------------------------------------------------------------- schedule

fn upcoming(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
    Schedule::parse(expr, tz)
        .unwrap()
        .upcoming(ms(from), n)
        .into_iter()
        .map(at)
        .collect()
}

#[test]
fn cron_weekdays_at_noon() {
    // 2026-11-27 is a Friday.
    assert_eq!(
        upcoming("cron(0 12 ? * MON-FRI *)", "UTC", "2026-11-27T13:00:00Z", 3),
        [
            "2026-11-30T12:00:00Z",
            "2026-12-01T12:00:00Z",
            "2026-12-02T12:00:00Z"
        ]
    );
    let s = Schedule::parse("cron(0 12 ? * MON-FRI *)", "UTC").unwrap();
    assert_eq!(s.kind(), ScheduleKind::Cron);
    // Strictly after: a fire time is not its own successor; sub-second starts work.
    assert_eq!(
        s.next_after(ms("2026-11-25T11:59:59.999Z")),
        Some(ms("2026-11-25T12:00:00Z"))
    );
    assert_eq!(
        s.next_after(ms("2026-11-25T12:00:00Z")),
        Some(ms("2026-11-26T12:00:00Z"))
    );
    assert_eq!(
        s.next_after(ms("2026-11-25T12:00:00.001Z")),
        Some(ms("2026-11-26T12:00:00Z"))
    );
    // Numbers mean the same days: 2-6 = MON-FRI.
    assert_eq!(
        upcoming("cron(0 12 ? * 2-6 *)", "UTC", "2026-11-27T13:00:00Z", 3),
        upcoming("cron(0 12 ? * mon-fri *)", "UTC", "2026-11-27T13:00:00Z", 3)
    );
}

#[test]
fn cron_day_of_week_numbering_is_sunday_first() {
    // 2026-11-25 is a Wednesday.
    let from = "2026-11-25T00:00:00Z";
    assert_eq!(
        upcoming("cron(0 12 ? * 1 *)", "UTC", from, 1),
        ["2026-11-29T12:00:00Z"]
    ); // SUN
    assert_eq!(
        upcoming("cron(0 12 ? * 7 *)", "UTC", from, 1),
        ["2026-11-28T12:00:00Z"]
    ); // SAT
    assert_eq!(
        upcoming("cron(0 12 ? * SUN *)", "UTC", from, 1),
        ["2026-11-29T12:00:00Z"]
    );
    // `L` alone: the week's last day, Saturday.
    assert_eq!(
        upcoming("cron(0 6 ? * L *)", "UTC", from, 2),
        ["2026-11-28T06:00:00Z", "2026-12-05T06:00:00Z"]
    );
    // Steps count from Sunday: */3 = SUN, WED, SAT.
    assert_eq!(
        upcoming("cron(0 0 ? * */3 *)", "UTC", "2026-11-28T12:00:00Z", 3),
        [
            "2026-11-29T00:00:00Z",
            "2026-12-02T00:00:00Z",
            "2026-12-05T00:00:00Z"
        ]
    );
}

#[test]
fn cron_last_friday_in_a_year_range() {
    let s = Schedule::parse("cron(15 10 ? * 6L 2026-2027)", "UTC").unwrap();
    // 2026-01-30 and 2026-02-27 are the last Fridays of their months.
    assert_eq!(
        s.upcoming(ms("2025-06-01T00:00:00Z"), 2)
            .into_iter()
            .map(at)
            .collect::<Vec<_>>(),
        ["2026-01-30T10:15:00Z", "2026-02-27T10:15:00Z"]
    );
    // 2027-12-31 is a Friday, and the last run: the years are over.
    assert_eq!(
        s.next_after(ms("2027-12-01T00:00:00Z")),
        Some(ms("2027-12-31T10:15:00Z"))
    );
    assert_eq!(s.next_after(ms("2027-12-31T10:15:00Z")), None);
    assert_eq!(s.upcoming(ms("2027-12-01T00:00:00Z"), 5).len(), 1);
    // `FRIL` is the same.
    assert_eq!(
        upcoming(
            "cron(15 10 ? * FRIL 2026)",
            "UTC",
            "2026-01-01T00:00:00Z",
            1
        ),
        ["2026-01-30T10:15:00Z"]
    );
}

#[test]
fn cron_every_fifteen_minutes() {
    assert_eq!(
        upcoming("cron(0/15 * * * ? *)", "UTC", "2026-11-25T10:07:30Z", 4),
        [
            "2026-11-25T10:15:00Z",
            "2026-11-25T10:30:00Z",
            "2026-11-25T10:45:00Z",
            "2026-11-25T11:00:00Z"
        ]
    );
    assert_eq!(
        upcoming("cron(*/20 9-10 * * ? *)", "UTC", "2026-11-25T10:41:00Z", 2),
        ["2026-11-26T09:00:00Z", "2026-11-26T09:20:00Z"]
    );
    assert_eq!(
        upcoming("cron(5,35 */6 * * ? *)", "UTC", "2026-11-25T06:06:00Z", 3),
        [
            "2026-11-25T06:35:00Z",
            "2026-11-25T12:05:00Z",
            "2026-11-25T12:35:00Z"
        ]
    );
}

#[test]
fn cron_day_of_month_specials() {
    // Last day of the month.
    assert_eq!(
        upcoming("cron(0 0 L * ? *)", "UTC", "2026-02-10T00:00:00Z", 2),
        ["2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"]
    );
    // Last weekday: 2026-02-28 is a Saturday, so Friday the 27th.
    assert_eq!(
        upcoming("cron(0 0 LW * ? *)", "UTC", "2026-02-10T00:00:00Z", 1),
        ["2026-02-27T00:00:00Z"]
    );
    // Nearest weekday: 2026-10-03 is a Saturday (→ Friday 2nd), 2026-11-03 a Tuesday.
    assert_eq!(
        upcoming("cron(0 10 3W * ? *)", "UTC", "2026-09-15T00:00:00Z", 2),
        ["2026-10-02T10:00:00Z", "2026-11-03T10:00:00Z"]
    );
    // 2026-08-01 is a Saturday: 1W does not leave the month, so Monday the 3rd.
    assert_eq!(
        upcoming("cron(0 10 1W * ? *)", "UTC", "2026-07-15T00:00:00Z", 1),
        ["2026-08-03T10:00:00Z"]
    );
    // First Monday of the month (2#1): 2026-12-07.
    assert_eq!(
        upcoming("cron(0 8 ? * 2#1 *)", "UTC", "2026-11-25T00:00:00Z", 1),
        ["2026-12-07T08:00:00Z"]
    );
    assert_eq!(
        upcoming("cron(0 8 ? * MON#1 *)", "UTC", "2026-11-25T00:00:00Z", 1),
        ["2026-12-07T08:00:00Z"]
    );
    // Months by name, a list of days.
    assert_eq!(
        upcoming(
            "cron(0 9 1,15 JAN,jul ? *)",
            "UTC",
            "2026-11-25T00:00:00Z",
            3
        ),
        [
            "2027-01-01T09:00:00Z",
            "2027-01-15T09:00:00Z",
            "2027-07-01T09:00:00Z"
        ]
    );
}

#[test]
fn cron_in_time_zones() {
    // Europe/Berlin is UTC+1 in winter, UTC+2 in summer.
    assert_eq!(
        upcoming(
            "cron(0 9 ? * MON *)",
            "Europe/Berlin",
            "2026-11-25T00:00:00Z",
            1
        ),
        ["2026-11-30T08:00:00Z"]
    );
    assert_eq!(
        upcoming(
            "cron(0 9 ? * MON *)",
            "Europe/Berlin",
            "2026-07-01T00:00:00Z",
            1
        ),
        ["2026-07-06T07:00:00Z"]
    );
    // A fixed offset.
    assert_eq!(
        upcoming("cron(30 8 1 * ? *)", "+05:30", "2026-11-25T00:00:00Z", 1),
        ["2026-12-01T03:00:00Z"]
    );
    assert_eq!(
        upcoming("cron(0 0 * * ? *)", "-0800", "2026-11-25T00:00:00Z", 1),
        ["2026-11-25T08:00:00Z"]
    );
    // The day is the zone's: 23:30 UTC on Sunday is Monday in Tokyo.
    assert_eq!(
        upcoming(
            "cron(30 8 ? * MON *)",
            "Asia/Tokyo",
            "2026-11-25T00:00:00Z",
            1
        ),
        ["2026-11-29T23:30:00Z"]
    );
    // Spring forward (Berlin, 2026-03-29 02:00 → 03:00): a fixed time in the gap fires once,
    // at the first minute after it.
    assert_eq!(
        upcoming(
            "cron(30 2 * * ? *)",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            2
        ),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    // Fall back (2026-10-25 03:00 → 02:00): a fixed time in the repeated hour fires once.
    assert_eq!(
        upcoming(
            "cron(30 2 * * ? *)",
            "Europe/Berlin",
            "2026-10-24T12:00:00Z",
            2
        ),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
}

#[test]
fn rate_schedules() {
    let s = Schedule::parse("rate(5 minutes)", "UTC").unwrap();
    assert_eq!(s.kind(), ScheduleKind::Rate);
    assert_eq!(
        s.upcoming(ms("2026-11-25T10:02:30Z"), 3)
            .into_iter()
            .map(at)
            .collect::<Vec<_>>(),
        [
            "2026-11-25T10:05:00Z",
            "2026-11-25T10:10:00Z",
            "2026-11-25T10:15:00Z"
        ]
    );
    assert_eq!(
        s.next_after(ms("2026-11-25T10:05:00Z")),
        Some(ms("2026-11-25T10:10:00Z"))
    );
    // Anchored at the schedule's start.
    let s = s.with_start(ms("2026-11-25T10:01:00Z"));
    assert_eq!(
        s.next_after(ms("2026-11-25T10:02:30Z")),
        Some(ms("2026-11-25T10:06:00Z"))
    );
    assert_eq!(
        s.next_after(ms("2026-11-25T09:00:00Z")),
        Some(ms("2026-11-25T10:01:00Z"))
    );
    // The time zone does not move a rate.
    assert_eq!(
        upcoming("rate(1 day)", "Asia/Tokyo", "2026-11-25T10:00:00Z", 2),
        ["2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"]
    );
    assert_eq!(
        upcoming("rate(1 minute)", "UTC", "2026-11-25T10:00:00Z", 1),
        ["2026-11-25T10:01:00Z"]
    );
    assert_eq!(
        upcoming("rate(2 hours)", "UTC", "2026-11-25T10:00:00Z", 1),
        ["2026-11-25T12:00:00Z"]
    );
    assert_eq!(
        upcoming("rate(1 hour)", "UTC", "2026-11-25T10:00:00Z", 1),
        ["2026-11-25T11:00:00Z"]
    );
    assert_eq!(
        upcoming("rate(3 days)", "UTC", "1970-01-01T00:00:00Z", 1),
        ["1970-01-04T00:00:00Z"]
    );
}

#[test]
fn at_schedules() {
    let s = Schedule::parse("at(2026-12-25T09:00:00)", "Europe/Berlin").unwrap();
    assert_eq!(s.kind(), ScheduleKind::At);
    assert_eq!(s.expression(), "at(2026-12-25T09:00:00)");
    assert_eq!(s.timezone(), "Europe/Berlin");
    assert_eq!(
        s.next_after(ms("2026-11-25T00:00:00Z")),
        Some(ms("2026-12-25T08:00:00Z"))
    );
    assert_eq!(s.next_after(ms("2026-12-25T08:00:00Z")), None);
    assert_eq!(s.upcoming(0, 10), vec![ms("2026-12-25T08:00:00Z")]);
    assert_eq!(
        upcoming("at(2026-12-25T09:00:00)", "UTC", "2026-01-01T00:00:00Z", 5),
        ["2026-12-25T09:00:00Z"]
    );
    assert_eq!(
        upcoming(
            "at(2026-12-25T09:00:00)",
            "-03:00",
            "2026-01-01T00:00:00Z",
            5
        ),
        ["2026-12-25T12:00:00Z"]
    );
    // A local time skipped by the spring-forward moves to the first minute after the gap; one
    // that happens twice means the first.
    assert_eq!(
        upcoming(
            "at(2026-03-29T02:30:00)",
            "Europe/Berlin",
            "2026-01-01T00:00:00Z",
            1
        ),
        ["2026-03-29T01:00:00Z"]
    );
    assert_eq!(
        upcoming(
            "at(2026-10-25T02:30:00)",
            "Europe/Berlin",
            "2026-01-01T00:00:00Z",
            1
        ),
        ["2026-10-25T00:30:00Z"]
    );
}

fn parse_error(expr: &str, tz: &str) -> String {
    invalid_config(Schedule::parse(expr, tz).unwrap_err())
}

#[test]
fn cron_parse_errors() {
    for (expr, expected) in [
        (
            "cron(0 12 * * MON *)",
            "one of day-of-month (field 3, `*`) and day-of-week (field 5, `MON`) must be `?`",
        ),
        ("cron(0 12 1 * 2 *)", "must be `?`"),
        ("cron(0 12 ? * ? *)", "cannot both be `?`"),
        (
            "cron(0 12 * *)",
            "has 6 fields (minutes hours day-of-month month day-of-week year), found 4",
        ),
        ("cron(0 12 ? * MON)", "found 5"),
        ("cron(0 0 12 ? * MON *)", "found 7"),
        ("cron()", "found 0"),
        (
            "cron(60 12 ? * MON *)",
            "minutes (field 1) `60`: `60` is out of range 0-59",
        ),
        (
            "cron(0 24 ? * MON *)",
            "hours (field 2) `24`: `24` is out of range 0-23",
        ),
        (
            "cron(0 12 32 * ? *)",
            "day-of-month (field 3) `32`: `32` is out of range 1-31",
        ),
        ("cron(0 12 0 * ? *)", "`0` is out of range 1-31"),
        (
            "cron(0 12 1 13 ? *)",
            "month (field 4) `13`: `13` is out of range 1-12 or JAN-DEC",
        ),
        (
            "cron(0 12 1 FOO ? *)",
            "`FOO` is not a number or name (expected 1-12 or JAN-DEC)",
        ),
        (
            "cron(0 12 ? * 0 *)",
            "day-of-week (field 5) `0`: `0` is out of range 1-7 or SUN-SAT",
        ),
        ("cron(0 12 ? * 8 *)", "`8` is out of range 1-7 or SUN-SAT"),
        (
            "cron(0 12 ? * MON-SUNDAY *)",
            "`SUNDAY` is not a number or name",
        ),
        (
            "cron(0 12 1 * ? 1969)",
            "year (field 6) `1969`: `1969` is out of range 1970-2199",
        ),
        ("cron(0 12 1 * ? 2200)", "`2200` is out of range 1970-2199"),
        (
            "cron(0 12 ? * FRI-MON *)",
            "the range `FRI-MON` runs backwards",
        ),
        ("cron(30-10 12 1 * ? *)", "the range `30-10` runs backwards"),
        (
            "cron(0/0 * * * ? *)",
            "the step `/0` must be a whole number 1-60",
        ),
        ("cron(0/x * * * ? *)", "the step `/x`"),
        (
            "cron(5L 12 1 * ? *)",
            "minutes (field 1) `5L`: `L` is only allowed in day-of-month and day-of-week",
        ),
        (
            "cron(0 12 1 ? ? *)",
            "month (field 4) `?`: `?` is only allowed in day-of-month and day-of-week",
        ),
        ("cron(0 12 ? * 3#6 *)", "`#6` must be `#1` to `#5`"),
        (
            "cron(0 12 L-2 * ? *)",
            "offsets from the last day (`L-n`) are not supported",
        ),
        ("cron(0 12 5L * ? *)", "is not a day-of-month"),
        ("cron(0 12 ? * 2W *)", "`2W` is not a number or name"),
        ("cron(0 12 32W * ? *)", "`32` is out of range 1-31"),
        ("cron(0 12 1,,2 * ? *)", "a list has an empty item"),
        ("cron(0 12 1,* * ? *)", "`*` must be the whole field"),
        ("cron(0 12 ?,1 * ? *)", "`?` must be the whole field"),
        ("cron(x 12 1 * ? *)", "`x` is not a number (expected 0-59)"),
        ("cron(1- 12 1 * ? *)", "a value is missing (expected 0-59)"),
    ] {
        let m = parse_error(expr, "UTC");
        assert!(
            m.starts_with(&format!("config.expression `{expr}`: ")),
            "{expr}: {m}"
        );
        assert!(m.contains(expected), "{expr}: {m}");
    }
}

#[test]
fn rate_and_at_parse_errors() {
    for (expr, expected) in [
        (
            "rate(0 minutes)",
            "the rate's value `0` must be a positive whole number",
        ),
        ("rate(05 minutes)", "`05` must be a positive whole number"),
        ("rate(-5 minutes)", "`-5` must be a positive whole number"),
        (
            "rate(five minutes)",
            "`five` must be a positive whole number",
        ),
        ("rate(1 minutes)", "write `rate(1 minute)`"),
        ("rate(5 minute)", "write `rate(5 minutes)`"),
        ("rate(2 day)", "write `rate(2 days)`"),
        (
            "rate(5 weeks)",
            "the rate's unit `weeks` must be minute(s), hour(s) or day(s)",
        ),
        ("rate(5)", "a rate is `rate(N unit)`"),
        ("rate(5 minutes now)", "a rate is `rate(N unit)`"),
        (
            "at(2026-02-30T10:00:00)",
            "`2026-02-30T10:00:00` is not a real date and time",
        ),
        ("at(2026-11-25T25:00:00)", "is not a real date and time"),
        (
            "at(2026-11-25 10:00:00)",
            "must be a local date and time `yyyy-mm-ddThh:mm:ss`",
        ),
        ("at(2026-11-25T10:00:00Z)", "no zone"),
        (
            "every 5 minutes",
            "must be `cron(minutes hours day-of-month month day-of-week year)`",
        ),
        ("CRON(0 12 ? * MON *)", "must be `cron("),
        ("cron(0 12 ? * MON *", "must be `cron("),
        ("", "must be `cron("),
    ] {
        let m = parse_error(expr, "UTC");
        assert!(m.starts_with("config.expression `"), "{expr}: {m}");
        assert!(m.contains(expected), "{expr}: {m}");
    }
}

#[test]
fn timezone_errors() {
    for tz in [
        "Mars/Olympus_Mons",
        "europe/berlin",
        "",
        "UTC+2",
        "+25:00",
        "+02:60",
        "+2",
        "+02:0",
    ] {
        let m = parse_error("rate(5 minutes)", tz);
        assert!(
            m.starts_with(&format!("config.timezone `{tz}`")),
            "{tz}: {m}"
        );
    }
    assert!(parse_error("rate(1 day)", "+19:00").contains("between -18:00 and +18:00"));
    assert!(parse_error("rate(1 day)", "Nowhere").contains("IANA name"));
    for tz in [
        "UTC",
        "Z",
        "Etc/UTC",
        "GMT",
        "America/New_York",
        "+00:00",
        "-12",
        "+1400",
        "+18:00",
    ] {
        Schedule::parse("rate(1 day)", tz).unwrap();
    }
}

#[test]
fn schedule_trigger_config_and_run_input() {
    let t = ScheduleTrigger::from_config(&json!({
        "expression": "cron(0 12 ? * MON-FRI *)",
        "timezone": "Europe/Berlin",
        "input": {"report": "daily"}
    }))
    .unwrap();
    assert_eq!(t.schedule.timezone(), "Europe/Berlin");
    let next = t.schedule.next_after(ms("2026-11-27T13:00:00Z")).unwrap();
    assert_eq!(at(next), "2026-11-30T11:00:00Z");
    assert_eq!(
        t.run_input(next),
        json!({"scheduledTime": "2026-11-30T11:00:00.000Z", "input": {"report": "daily"}})
    );
    // Defaults: UTC, no input.
    let t = ScheduleTrigger::from_config(&json!({"expression": "rate(1 hour)"})).unwrap();
    assert_eq!(t.schedule.timezone(), "UTC");
    assert_eq!(
        t.run_input(0),
        json!({"scheduledTime": "1970-01-01T00:00:00.000Z", "input": null})
    );

    for (config, expected) in [
        (json!({}), "missing field `expression`"),
        (json!({"expression": 5}), "config.expression"),
        (json!({"expression": "rate(1 hour)", "tz": "UTC"}), "tz"),
        (
            json!({"expression": "rate(1 hours)"}),
            "config.expression `rate(1 hours)`",
        ),
        (
            json!({"expression": "rate(1 hour)", "timezone": "Atlantis"}),
            "config.timezone `Atlantis`",
        ),
    ] {
        let m = invalid_config(ScheduleTrigger::from_config(&config).unwrap_err());
        assert!(m.contains(expected), "{config}: {m}");
    }
}

// ---------------------------------------------------------------- dead letters

fn letter(workflow: &str, failed_ms: i64) -> DeadLetter {
    DeadLetter::new(
        workflow,
        "trigger.queue",
        json!({"messageId": "m-1", "body": {"n": failed_ms}}),
        &NodeError::Retryable("StartExecution: throttled".into()),
        failed_ms,
    )
    .unwrap()
}

#[tokio::test]
async fn dead_letters_put_list_get_remove() {
    let dlq = MemoryDeadLetters::default();
    let a = letter("orders", 300);
    let b = letter("orders", 100);
    let c = letter("billing", 200);
    assert_eq!(a.attempts, 1);
    assert_eq!(a.error, "ConcertMaster.Retryable");
    assert_eq!(a.message, "StartExecution: throttled");
    assert_eq!((a.first_failed_ms, a.last_failed_ms), (300, 300));
    assert_eq!(a.id.len(), 32);
    assert_ne!(a.id, b.id);
    for l in [&a, &b, &c] {
        dlq.put(l.clone()).await.unwrap();
    }
    let all = dlq.list(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|l| l.first_failed_ms).collect::<Vec<_>>(),
        vec![100, 200, 300]
    );
    let orders = dlq.list(Some("orders"), 10).await.unwrap();
    assert_eq!(orders, vec![b.clone(), a.clone()]);
    assert_eq!(dlq.list(None, 1).await.unwrap(), vec![b.clone()]);
    assert!(dlq.list(Some("nothing"), 10).await.unwrap().is_empty());
    assert_eq!(dlq.get(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(dlq.get("missing").await.unwrap(), None);
    // Put replaces by id.
    let mut c2 = c.clone();
    c2.failed_again(&NodeError::Internal("boom".into()), 900);
    dlq.put(c2.clone()).await.unwrap();
    assert_eq!(dlq.get(&c.id).await.unwrap(), Some(c2));
    assert_eq!(dlq.list(None, 10).await.unwrap().len(), 3);
    assert!(dlq.remove(&c.id).await.unwrap());
    assert!(!dlq.remove(&c.id).await.unwrap());
    assert_eq!(dlq.list(None, 10).await.unwrap().len(), 2);

    // Serialised form (what stores keep).
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "id",
        "workflowId",
        "trigger",
        "payload",
        "error",
        "message",
        "attempts",
        "firstFailedMs",
        "lastFailedMs",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(serde_json::from_value::<DeadLetter>(v).unwrap(), a);
}

#[tokio::test]
async fn redrive_success_removes_the_letter() {
    let dlq = MemoryDeadLetters::default();
    let l = letter("orders", 100);
    dlq.put(l.clone()).await.unwrap();
    let calls = AtomicU32::new(0);
    let outcome = dead_letter::redrive(&dlq, &l.id, 500, |letter| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            assert_eq!(letter.workflow_id, "orders");
            assert_eq!(letter.payload["messageId"], "m-1");
            Ok::<_, NodeError>(format!("arn:exec:dl-{}", letter.id))
        }
    })
    .await
    .unwrap();
    assert_eq!(outcome, Redrive::Started(format!("arn:exec:dl-{}", l.id)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(dlq.get(&l.id).await.unwrap(), None);
    // Again: nothing to redrive, and start is not called.
    let outcome = dead_letter::redrive(&dlq, &l.id, 600, |_| async {
        panic!("not called");
        #[allow(unreachable_code)]
        Ok::<(), NodeError>(())
    })
    .await
    .unwrap();
    assert_eq!(outcome, Redrive::NotFound);
}

#[tokio::test]
async fn redrive_failure_keeps_the_letter_with_one_more_attempt() {
    let dlq = MemoryDeadLetters::default();
    let l = letter("orders", 100);
    dlq.put(l.clone()).await.unwrap();
    let fail = |n: u16| {
        move |_letter: DeadLetter| async move {
            Err::<(), _>(NodeError::Http5xx {
                status: n,
                message: "StartExecution failed".into(),
            })
        }
    };
    let outcome = dead_letter::redrive(&dlq, &l.id, 500, fail(503))
        .await
        .unwrap();
    let Redrive::Failed(after) = outcome else {
        panic!("expected Failed, got {outcome:?}");
    };
    assert_eq!(after.attempts, 2);
    assert_eq!(after.error, "ConcertMaster.Http.5xx");
    assert_eq!(after.message, "HTTP 503: StartExecution failed");
    assert_eq!((after.first_failed_ms, after.last_failed_ms), (100, 500));
    assert_eq!(after.payload, l.payload);
    assert_eq!(dlq.get(&l.id).await.unwrap(), Some(*after));

    dead_letter::redrive(&dlq, &l.id, 700, fail(502))
        .await
        .unwrap();
    let stored = dlq.get(&l.id).await.unwrap().unwrap();
    assert_eq!((stored.attempts, stored.last_failed_ms), (3, 700));
    assert_eq!(stored.message, "HTTP 502: StartExecution failed");

    // A validation failure keeps its violations in the message.
    let e = NodeError::ValidationFailed {
        message: "bad".into(),
        errors: vec![json!({"path": "/a", "message": "m"})],
    };
    let v = DeadLetter::new("w", "trigger.form", json!({}), &e, 1).unwrap();
    assert_eq!(v.error, "ConcertMaster.ValidationFailed");
    assert!(v.message.contains("\"/a\""), "{}", v.message);
}
