//! [`BreakerStore`] (cm-nodes' circuit breaker state): one global item per target, written
//! with a plain PutItem. Breakers read-modify-write without locking by design (see
//! `cm_nodes::breaker`), so no condition is needed.

use crate::DynamoStore;
use crate::item::{self, Builder, Item, Reader};
use crate::keys;
use cm_nodes::breaker::{BreakerState, BreakerStore};
use cm_nodes::{BoxFuture, NodeError};
use cm_store::StoreError;

/// A store error as a node error: a backend failure (throttling, the network) is retryable,
/// anything else is internal.
pub(crate) fn node_error(e: StoreError) -> NodeError {
    match e {
        StoreError::Backend(m) => NodeError::Retryable(format!("storage backend: {m}")),
        other => NodeError::Internal(other.to_string()),
    }
}

fn state_from(item: &Item) -> cm_store::Result<BreakerState> {
    let r = Reader::new(item, "breaker state");
    Ok(BreakerState {
        failures: r.n("failures")?,
        window_start_ms: r.n("windowStartMs")?,
        open_until_ms: r.opt_n("openUntilMs")?,
        probe_until_ms: r.opt_n("probeUntilMs")?,
    })
}

impl DynamoStore {
    async fn load_breaker(&self, target: &str) -> cm_store::Result<Option<BreakerState>> {
        self.get(item::key(keys::breaker(target), keys::BREAKER_SK))
            .await?
            .map(|i| state_from(&i))
            .transpose()
    }

    async fn save_breaker(&self, target: &str, state: &BreakerState) -> cm_store::Result<()> {
        let item = Builder::new(keys::breaker(target), keys::BREAKER_SK)
            .s("target", target)
            .n("failures", state.failures)
            .n("windowStartMs", state.window_start_ms)
            .opt_n("openUntilMs", state.open_until_ms)
            .opt_n("probeUntilMs", state.probe_until_ms)
            .build("breaker state")?;
        self.put(item, None).await.map(|_| ())
    }
}

impl BreakerStore for DynamoStore {
    fn load<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerState>, NodeError>> {
        Box::pin(async move { self.load_breaker(target).await.map_err(node_error) })
    }

    fn save<'a>(
        &'a self,
        target: &'a str,
        state: BreakerState,
    ) -> BoxFuture<'a, Result<(), NodeError>> {
        Box::pin(async move { self.save_breaker(target, &state).await.map_err(node_error) })
    }
}
