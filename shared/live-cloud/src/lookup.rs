//! Finding a connection by id: a WebSocket message event carries only the connection id, and
//! its organisation is what every topic check needs.
//!
//! [`cm_store::ConnectionStore`] has no such method (the embedded server keeps the caller in
//! the connection's task), so this is a port of its own, implemented by
//! [`DynamoStore`] (a consistent GetItem of the connection item) and by the fake in
//! `test_util`.

use cm_store::{Connection, Result};
use cm_store_dynamodb::DynamoStore;
use std::future::Future;

/// Looks connections up by id.
pub trait ConnectionLookup: Send + Sync + 'static {
    /// The connection `id`, `None` if it is not recorded.
    fn connection(&self, id: &str) -> impl Future<Output = Result<Option<Connection>>> + Send;
}

impl ConnectionLookup for DynamoStore {
    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        DynamoStore::connection(self, id).await
    }
}
