//! The ports node handlers use to reach what differs between deployments. Each is a narrow
//! trait; the embedded engine implements them over SQLite (`cm-local`), the cloud over AWS
//! services, tests with the fakes in `test_util`.

pub use crate::approval::{ApprovalRequest, Approvals};
pub use crate::breaker::{BreakerState, BreakerStore};
pub use crate::secrets::Secrets;

/// Wall-clock time, injectable so tests control it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}
