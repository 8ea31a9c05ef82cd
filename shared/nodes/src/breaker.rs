//! Per-target circuit breakers for HTTP-calling nodes.

use crate::{BoxFuture, NodeError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One target's breaker state, as stored through a [`BreakerStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerState {
    /// Failures counted in the current window.
    pub failures: u32,
    /// Start of the current window (ms since epoch).
    pub window_start_ms: i64,
    /// While set and in the future, the breaker is open.
    pub open_until_ms: Option<i64>,
}

/// Where breaker state lives, so every runner (Lambda containers, the embedded server) shares
/// it.
pub trait BreakerStore: Send + Sync {
    /// The state of `target` (`None`: never failed).
    fn load<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerState>, NodeError>>;
    /// Replaces the state of `target`.
    fn save<'a>(
        &'a self,
        target: &'a str,
        state: BreakerState,
    ) -> BoxFuture<'a, Result<(), NodeError>>;
}

/// Breaker tuning.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Failures within `window_ms` that open the breaker.
    pub failure_threshold: u32,
    /// Length of the counting window.
    pub window_ms: i64,
    /// How long the breaker stays open before a probe is let through.
    pub open_ms: i64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            window_ms: 60_000,
            open_ms: 30_000,
        }
    }
}

/// The breakers of every target, over a shared store.
#[derive(Clone)]
pub struct Breakers {
    store: Arc<dyn BreakerStore>,
    config: BreakerConfig,
}

impl std::fmt::Debug for Breakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breakers")
            .field("config", &self.config)
            .finish()
    }
}

impl Breakers {
    /// Breakers over `store`.
    pub fn new(store: Arc<dyn BreakerStore>, config: BreakerConfig) -> Breakers {
        Breakers { store, config }
    }

    /// The tuning.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BreakerStore> {
        &self.store
    }
}
