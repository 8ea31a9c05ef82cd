//! Triggers: turning an incoming request into a run's input.

/// RFC 3339 UTC timestamp with milliseconds (`2026-11-25T10:00:00.000Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
