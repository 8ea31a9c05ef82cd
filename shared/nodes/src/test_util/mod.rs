//! In-memory fakes of the ports, for tests (feature `test-util`).

use crate::approval::{ApprovalRequest, Approvals};
use crate::breaker::{BreakerState, BreakerStore};
use crate::ports::Clock;
use crate::runner::Services;
use crate::secrets::LocalSecrets;
use crate::{BoxFuture, NodeError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Breaker state in a map.
#[derive(Debug, Default)]
pub struct MemoryBreakerStore {
    states: Mutex<HashMap<String, BreakerState>>,
}

impl BreakerStore for MemoryBreakerStore {
    fn load<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerState>, NodeError>> {
        let v = self
            .states
            .lock()
            .map_err(|_| NodeError::Internal("breaker store poisoned".into()))
            .map(|m| m.get(target).cloned());
        Box::pin(async move { v })
    }

    fn save<'a>(
        &'a self,
        target: &'a str,
        state: BreakerState,
    ) -> BoxFuture<'a, Result<(), NodeError>> {
        let r = self
            .states
            .lock()
            .map_err(|_| NodeError::Internal("breaker store poisoned".into()))
            .map(|mut m| {
                m.insert(target.to_owned(), state);
            });
        Box::pin(async move { r })
    }
}

/// Approval requests in a list.
#[derive(Debug, Default)]
pub struct MemoryApprovals {
    /// Every request recorded, in order (duplicates by id are skipped).
    pub requests: Mutex<Vec<ApprovalRequest>>,
}

impl Approvals for MemoryApprovals {
    fn create<'a>(&'a self, request: ApprovalRequest) -> BoxFuture<'a, Result<(), NodeError>> {
        let r = self
            .requests
            .lock()
            .map_err(|_| NodeError::Internal("approvals poisoned".into()))
            .map(|mut v| {
                if !v.iter().any(|r| r.id == request.id) {
                    v.push(request);
                }
            });
        Box::pin(async move { r })
    }
}

/// A clock that only moves when told.
#[derive(Debug, Default)]
pub struct ManualClock(pub AtomicI64);

impl ManualClock {
    /// A clock at `ms`.
    pub fn at(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(ms)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Services over in-memory fakes with the given secrets (default network policy).
pub fn services(secrets: LocalSecrets) -> Services {
    #[allow(clippy::unwrap_used)]
    Services::new(
        Arc::new(secrets),
        Arc::new(MemoryApprovals::default()),
        Arc::new(MemoryBreakerStore::default()),
    )
    .unwrap()
}

pub mod contract;
