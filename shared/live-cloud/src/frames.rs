//! The frames sent to clients (the embedded server's shapes, `cm_api::ws`), each at most
//! [`MAX_FRAME_BYTES`].

use cm_api::live::{LiveEvent, PREVIEW_BYTES};
use serde_json::{Value, json};

/// Largest frame the Management API takes (`PostToConnection` data: 128 KB).
pub const MAX_FRAME_BYTES: usize = 128 * 1024;

/// Largest error name in an event frame (bytes; Step Functions error names are ≤ 256
/// characters).
pub const ERROR_BYTES: usize = 1024;

/// Largest error cause in an event frame (bytes; Step Functions causes are ≤ 32,768
/// characters, which can be more bytes).
pub const CAUSE_BYTES: usize = 32 * 1024;

/// Largest `message` of an `error` frame (bytes).
pub const MESSAGE_BYTES: usize = 4 * 1024;

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut (as
/// `cm_api::live::preview` cuts JSON text).
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The bytes of a frame; one over [`MAX_FRAME_BYTES`] (only possible with absurdly long ids
/// or topics) becomes an `error` frame saying so.
fn finish(v: &Value) -> Vec<u8> {
    let bytes = v.to_string().into_bytes();
    if bytes.len() <= MAX_FRAME_BYTES {
        return bytes;
    }
    error(
        "too_large",
        &format!(
            "a {} frame of {} bytes was not sent (the limit is {MAX_FRAME_BYTES})",
            v["type"].as_str().unwrap_or("?"),
            bytes.len()
        ),
    )
}

/// An event frame: the event with its `topic`, previews cut at [`PREVIEW_BYTES`], error names
/// at [`ERROR_BYTES`], causes at [`CAUSE_BYTES`].
pub fn event(topic: &str, ev: &LiveEvent) -> Vec<u8> {
    let mut ev = ev.clone();
    ev.output_preview = ev.output_preview.map(|p| cut(&p, PREVIEW_BYTES));
    ev.error = ev.error.map(|e| cut(&e, ERROR_BYTES));
    ev.cause = ev.cause.map(|c| cut(&c, CAUSE_BYTES));
    let mut v = serde_json::to_value(&ev).unwrap_or_default();
    v["topic"] = json!(topic);
    finish(&v)
}

/// `{"type": "subscribed", "topic"}`.
pub fn subscribed(topic: &str) -> Vec<u8> {
    finish(&json!({"type": "subscribed", "topic": topic}))
}

/// `{"type": "unsubscribed", "topic"}`.
pub fn unsubscribed(topic: &str) -> Vec<u8> {
    finish(&json!({"type": "unsubscribed", "topic": topic}))
}

/// `{"type": "pong"}`.
pub fn pong() -> Vec<u8> {
    finish(&json!({"type": "pong"}))
}

/// `{"type": "error", "code", "message"}` (the message cut at [`MESSAGE_BYTES`]).
pub fn error(code: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "code": code, "message": cut(message, MESSAGE_BYTES)})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev() -> LiveEvent {
        LiveEvent {
            kind: "run.finished".into(),
            run_id: "r".into(),
            workflow_id: "w".into(),
            event_id: 7,
            at_ms: 7,
            node_id: None,
            duration_ms: Some(3),
            output_preview: Some("é".repeat(3000)),
            error: Some("E".repeat(5000)),
            cause: Some("c".repeat(200_000)),
            status: Some("FAILED".into()),
        }
    }

    #[test]
    fn event_frames_are_capped() {
        let f = event("run:r", &ev());
        assert!(f.len() < MAX_FRAME_BYTES);
        let v: Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["topic"], "run:r");
        assert_eq!(v["type"], "run.finished");
        assert_eq!(v["eventId"], 7);
        let preview = v["outputPreview"].as_str().unwrap();
        assert!(preview.len() <= PREVIEW_BYTES + '…'.len_utf8() && preview.ends_with('…'));
        assert!(v["error"].as_str().unwrap().len() <= ERROR_BYTES + 3);
        assert!(v["cause"].as_str().unwrap().len() <= CAUSE_BYTES + 3);
    }

    #[test]
    fn oversized_frames_become_errors() {
        let topic = "x".repeat(MAX_FRAME_BYTES);
        let v: Value = serde_json::from_slice(&unsubscribed(&topic)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "too_large");
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("hé", 3), "hé");
    }
}
