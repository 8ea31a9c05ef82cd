//! Per-target circuit breakers for HTTP-calling nodes.
//!
//! A target is `scheme://host:port` ([`crate::http::target_of`]). Each has a breaker with
//! three states, kept in a [`BreakerState`] in a [`BreakerStore`] shared by every runner:
//!
//! - **closed** (`open_until_ms` unset): calls go through. Each failing call counts; the count
//!   restarts when a failure comes more than [`BreakerConfig::window_ms`] after the first
//!   failure of the current window. Reaching [`BreakerConfig::failure_threshold`] failures
//!   opens the breaker for [`BreakerConfig::open_ms`]. Successes do not reset the count (the
//!   breaker opens on N failures within the window, whatever happened in between) and cost no
//!   store write.
//! - **open** (now < `open_until_ms`): calls fail at once with `ConcertMaster.CircuitOpen`,
//!   naming the target and when a probe will be let through, without touching the target.
//! - **half-open** (now ≥ `open_until_ms`): one call, the probe, is let through; the state
//!   records `probe_until_ms` so concurrent calls keep failing fast. If the probe crashes and
//!   never reports, the next call after `probe_until_ms`
//!   ([`BreakerConfig::probe_timeout_ms`]) becomes the probe. A probe success closes the
//!   breaker (state reset); a probe failure re-opens it for `open_ms`.
//!
//! Which outcomes count ([`Outcome`]): failures are `ConcertMaster.Retryable`, `Timeout`,
//! `Http.5xx` and `Http.429` (and answers with status 5xx/429 when the node does not fail on
//! status); successes are any other answer, including 4xx (the target is up); other errors
//! (a blocked address, bad config, a missing secret, …) say nothing about the target and are
//! neutral (a neutral probe just frees the probe slot).
//!
//! State is read-modify-written through [`BreakerStore::load`]/[`BreakerStore::save`] with no
//! locking: two runners racing may lose a failure count or both let a probe through. That is
//! acceptable for a breaker (it only needs to be roughly right to shed load from a failing
//! target) and keeps the store a plain key-value port (a DynamoDB item, a SQLite row).
//!
//! Time is passed in by the caller (`now_ms`, from the services' clock), so tests drive it
//! with a manual clock.

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
    /// While set and in the future, the breaker is open; once past, it is half-open.
    pub open_until_ms: Option<i64>,
    /// Half-open with a probe in flight: other calls are refused until the probe reports or
    /// this time (ms since epoch) passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_until_ms: Option<i64>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures within `window_ms` that open the breaker (0 is treated as 1).
    pub failure_threshold: u32,
    /// Length of the counting window.
    pub window_ms: i64,
    /// How long the breaker stays open before a probe is let through.
    pub open_ms: i64,
    /// How long a half-open breaker waits for its probe to report before letting another
    /// call probe (a probe whose runner crashed must not wedge the breaker).
    pub probe_timeout_ms: i64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            window_ms: 60_000,
            open_ms: 30_000,
            probe_timeout_ms: 60_000,
        }
    }
}

/// What a call told about its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered (2xx–4xx other than 429).
    Success,
    /// The target failed: unreachable, too slow, 5xx or 429.
    Failure,
    /// Nothing about the target (the call was refused before reaching it, …).
    Neutral,
}

impl Outcome {
    /// The outcome of a call that failed with `e`.
    pub fn of_error(e: &NodeError) -> Outcome {
        match e {
            NodeError::Retryable(_)
            | NodeError::Timeout(_)
            | NodeError::Http5xx { .. }
            | NodeError::Http429 { .. } => Outcome::Failure,
            NodeError::Http4xx { .. } | NodeError::ResponseTooLarge(_) => Outcome::Success,
            _ => Outcome::Neutral,
        }
    }

    /// The outcome of a call the target answered with `status`.
    pub fn of_status(status: u16) -> Outcome {
        if status == 429 || status >= 500 {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

/// Leave to call a target, from [`Breakers::check`]; hand it back to [`Breakers::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "report the call's outcome with Breakers::record"]
pub struct Permit {
    target: String,
    probe: bool,
}

impl Permit {
    /// The target.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether this call is the half-open breaker's probe.
    pub fn is_probe(&self) -> bool {
        self.probe
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

    /// Whether `target` may be called at `now_ms`: a [`Permit`] (possibly the half-open
    /// probe, recorded in the store), or `ConcertMaster.CircuitOpen` naming the target and
    /// when calls resume. A store failure is returned as is (`ConcertMaster.Internal`); the
    /// caller decides whether to call anyway.
    pub async fn check(&self, target: &str, now_ms: i64) -> Result<Permit, NodeError> {
        let permit = |probe| Permit {
            target: target.to_owned(),
            probe,
        };
        let Some(mut state) = self.store.load(target).await? else {
            return Ok(permit(false));
        };
        let Some(open_until) = state.open_until_ms else {
            return Ok(permit(false));
        };
        if now_ms < open_until {
            return Err(NodeError::CircuitOpen(format!(
                "the circuit breaker of {target} is open after {} failures; calls are refused \
                 until {} (in {}), then one probe call is let through",
                state.failures,
                timestamp(open_until),
                in_seconds(open_until - now_ms)
            )));
        }
        if let Some(probe_until) = state.probe_until_ms
            && now_ms < probe_until
        {
            return Err(NodeError::CircuitOpen(format!(
                "the circuit breaker of {target} is half-open and a probe call is in flight; \
                 calls are refused until it succeeds (at the latest until {})",
                timestamp(probe_until)
            )));
        }
        state.probe_until_ms = Some(now_ms.saturating_add(self.config.probe_timeout_ms));
        self.store.save(target, state).await?;
        Ok(permit(true))
    }

    /// Records how the permitted call went (see the [module docs](self)).
    pub async fn record(
        &self,
        permit: Permit,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<(), NodeError> {
        let target = permit.target.as_str();
        match outcome {
            Outcome::Success if permit.probe => {
                self.store.save(target, BreakerState::default()).await
            }
            // A closed breaker does not need to hear of successes; an open one only listens
            // to its probe.
            Outcome::Success => Ok(()),
            Outcome::Neutral if permit.probe => {
                let Some(mut state) = self.store.load(target).await? else {
                    return Ok(());
                };
                if state.probe_until_ms.take().is_none() {
                    return Ok(());
                }
                self.store.save(target, state).await
            }
            Outcome::Neutral => Ok(()),
            Outcome::Failure => {
                let mut state = self.store.load(target).await?.unwrap_or_default();
                match state.open_until_ms {
                    // Open: a late failure from before it opened changes nothing.
                    Some(until) if now_ms < until && !permit.probe => return Ok(()),
                    // Half-open (the probe, or a call from before) failed: re-open.
                    Some(_) => {
                        state.failures = state.failures.saturating_add(1);
                        self.open(&mut state, now_ms);
                    }
                    None => {
                        if state.failures == 0
                            || now_ms.saturating_sub(state.window_start_ms) >= self.config.window_ms
                        {
                            state.failures = 1;
                            state.window_start_ms = now_ms;
                        } else {
                            state.failures = state.failures.saturating_add(1);
                        }
                        if state.failures >= self.config.failure_threshold.max(1) {
                            self.open(&mut state, now_ms);
                        }
                    }
                }
                self.store.save(target, state).await
            }
        }
    }

    /// [`record`](Self::record) of [`Outcome::Success`].
    pub async fn record_success(&self, permit: Permit, now_ms: i64) -> Result<(), NodeError> {
        self.record(permit, Outcome::Success, now_ms).await
    }

    /// [`record`](Self::record) of [`Outcome::Failure`].
    pub async fn record_failure(&self, permit: Permit, now_ms: i64) -> Result<(), NodeError> {
        self.record(permit, Outcome::Failure, now_ms).await
    }

    /// The stored state of `target`.
    pub async fn state(&self, target: &str) -> Result<Option<BreakerState>, NodeError> {
        self.store.load(target).await
    }

    fn open(&self, state: &mut BreakerState, now_ms: i64) {
        state.open_until_ms = Some(now_ms.saturating_add(self.config.open_ms));
        state.probe_until_ms = None;
        state.window_start_ms = now_ms;
    }
}

fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn in_seconds(ms: i64) -> String {
    format!("{} s", (ms.max(0) + 999) / 1000)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_util::MemoryBreakerStore;

    fn breakers() -> Breakers {
        Breakers::new(
            Arc::new(MemoryBreakerStore::default()),
            BreakerConfig {
                failure_threshold: 3,
                window_ms: 10_000,
                open_ms: 5_000,
                probe_timeout_ms: 2_000,
            },
        )
    }

    const T: &str = "https://api.example.com:443";

    async fn fail(b: &Breakers, now: i64) {
        let p = b.check(T, now).await.unwrap();
        b.record_failure(p, now).await.unwrap();
    }

    #[tokio::test]
    async fn opens_after_threshold_failures_within_window() {
        let b = breakers();
        fail(&b, 1_000).await;
        fail(&b, 2_000).await;
        assert!(b.check(T, 2_500).await.is_ok());
        fail(&b, 3_000).await;
        let e = b.check(T, 3_001).await.unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.CircuitOpen");
        assert!(e.to_string().contains(T), "{e}");
        assert!(e.to_string().contains("1970-01-01T00:00:08Z"), "{e}");
    }

    #[tokio::test]
    async fn failures_outside_the_window_start_a_new_count() {
        let b = breakers();
        fail(&b, 0).await;
        fail(&b, 5_000).await;
        fail(&b, 10_000).await; // window restarted: count 1
        fail(&b, 11_000).await;
        assert!(b.check(T, 12_000).await.is_ok());
        assert_eq!(b.state(T).await.unwrap().unwrap().failures, 2);
    }

    #[tokio::test]
    async fn successes_and_4xx_do_not_count() {
        let b = breakers();
        for now in 0..5 {
            let p = b.check(T, now).await.unwrap();
            let o = Outcome::of_error(&NodeError::Http4xx {
                status: 404,
                message: String::new(),
            });
            b.record(p, o, now).await.unwrap();
        }
        assert_eq!(b.state(T).await.unwrap(), None);
        let blocked = Outcome::of_error(&NodeError::BlockedAddress(String::new()));
        assert_eq!(blocked, Outcome::Neutral);
        assert_eq!(Outcome::of_status(503), Outcome::Failure);
        assert_eq!(Outcome::of_status(429), Outcome::Failure);
        assert_eq!(Outcome::of_status(404), Outcome::Success);
    }

    #[tokio::test]
    async fn half_open_lets_one_probe_through_and_success_closes() {
        let b = breakers();
        for now in 0..3 {
            fail(&b, now).await;
        }
        assert!(b.check(T, 4_000).await.is_err());
        let probe = b.check(T, 5_002).await.unwrap();
        assert!(probe.is_probe());
        let e = b.check(T, 5_003).await.unwrap_err();
        assert!(e.to_string().contains("probe"), "{e}");
        b.record_success(probe, 5_100).await.unwrap();
        let p = b.check(T, 5_101).await.unwrap();
        assert!(!p.is_probe());
        assert_eq!(b.state(T).await.unwrap(), Some(BreakerState::default()));
    }

    #[tokio::test]
    async fn probe_failure_reopens() {
        let b = breakers();
        for now in 0..3 {
            fail(&b, now).await;
        }
        let probe = b.check(T, 6_000).await.unwrap();
        b.record_failure(probe, 6_100).await.unwrap();
        assert!(b.check(T, 11_000).await.is_err());
        assert!(b.check(T, 11_100).await.unwrap().is_probe());
    }

    #[tokio::test]
    async fn a_lost_probe_does_not_wedge_the_breaker() {
        let b = breakers();
        for now in 0..3 {
            fail(&b, now).await;
        }
        let _lost = b.check(T, 6_000).await.unwrap();
        assert!(b.check(T, 7_999).await.is_err());
        assert!(b.check(T, 8_000).await.unwrap().is_probe());
    }

    #[tokio::test]
    async fn a_neutral_probe_frees_the_slot() {
        let b = breakers();
        for now in 0..3 {
            fail(&b, now).await;
        }
        let probe = b.check(T, 6_000).await.unwrap();
        b.record(probe, Outcome::Neutral, 6_001).await.unwrap();
        assert!(b.check(T, 6_002).await.unwrap().is_probe());
    }

    #[tokio::test]
    async fn state_without_probe_field_deserializes() {
        let s: BreakerState =
            serde_json::from_str(r#"{"failures":2,"windowStartMs":5,"openUntilMs":null}"#).unwrap();
        assert_eq!(s.probe_until_ms, None);
        assert_eq!(s.failures, 2);
    }
}
