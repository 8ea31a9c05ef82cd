//! Wall-clock time for the engine: a real clock backed by tokio timers, and a virtual one that
//! jumps forward instead of sleeping (tests, the conformance corpus, benchmarks).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where the engine gets "now" from and how it waits.
#[derive(Debug, Clone)]
pub enum Clock {
    /// System time; waits are tokio timers (never blocked threads).
    System,
    /// Starts at the given instant and moves only when something waits: a Wait state or a
    /// retry interval completes at once and advances the clock to its deadline.
    Virtual(Arc<AtomicI64>),
}

impl Clock {
    /// A virtual clock starting at `start_ms` (milliseconds since the Unix epoch).
    pub fn virtual_at(start_ms: i64) -> Clock {
        Clock::Virtual(Arc::new(AtomicI64::new(start_ms)))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_ms(),
            Clock::Virtual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Waits until `deadline_ms`.
    pub async fn sleep_until(&self, deadline_ms: i64) {
        match self {
            Clock::System => {
                let wait = deadline_ms - system_ms();
                if wait > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
                }
            }
            Clock::Virtual(t) => {
                t.fetch_max(deadline_ms, Ordering::Relaxed);
            }
        }
    }

    /// Completes at `deadline_ms` on the system clock; never on the virtual clock, where
    /// time only moves when a Wait or a retry interval moves it (so timeouts and heartbeat
    /// limits do not fire in virtual-time runs).
    pub async fn deadline(&self, deadline_ms: i64) {
        match self {
            Clock::System => self.sleep_until(deadline_ms).await,
            Clock::Virtual(_) => std::future::pending().await,
        }
    }

    /// True for the virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self, Clock::Virtual(_))
    }
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `2026-01-01T00:00:00.000Z` for a millisecond timestamp.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
pub fn parse_ms(s: &str) -> Option<i64> {
    let (secs, nanos) = cm_asl::choice::timestamp(s)?;
    Some(secs * 1000 + i64::from(nanos / 1_000_000))
}

/// (year, month, day) from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips() {
        for ms in [0, 1_767_225_600_000, 951_782_400_123, -86_400_000] {
            assert_eq!(parse_ms(&iso(ms)), Some(ms), "{}", iso(ms));
        }
        assert_eq!(iso(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
    }

    #[tokio::test]
    async fn virtual_clock_jumps_forward_only() {
        let c = Clock::virtual_at(1000);
        c.sleep_until(5000).await;
        assert_eq!(c.now_ms(), 5000);
        c.sleep_until(10).await;
        assert_eq!(c.now_ms(), 5000);
    }
}
