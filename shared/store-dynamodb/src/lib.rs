//! ConcertMaster's control-plane storage on DynamoDB: [`DynamoStore`] implements every port of
//! [`cm_store`] ([`WorkflowStore`](cm_store::WorkflowStore), [`RunStore`](cm_store::RunStore),
//! [`FormStore`](cm_store::FormStore), [`RouteStore`](cm_store::RouteStore),
//! [`ConnectionStore`](cm_store::ConnectionStore), [`AuditStore`](cm_store::AuditStore)) over
//! one table (single-table design, see `docs/dynamodb.md`), with the reference semantics of
//! [`cm_store::memory::MemoryStore`] and the `cm_store::contract` suite run against it on an
//! emulator (moto, through `scripts/test`). It also implements cm-nodes' node ports
//! [`BreakerStore`](cm_nodes::breaker::BreakerStore) (circuit breaker state) and
//! [`Approvals`](cm_nodes::approval::Approvals) (with [`DynamoStore::approvals`],
//! [`DynamoStore::decide_approval`] and [`DynamoStore::reopen_approval`] for the API), checked
//! by `cm_nodes::test_util::contract` on the same emulator.
//!
//! ```no_run
//! # async fn demo() -> cm_store::Result<()> {
//! use cm_store_dynamodb::{DynamoStore, client_from_env};
//! let client = client_from_env(None).await; // real AWS: region and credentials from the environment
//! let store = DynamoStore::new(client, "concertmaster");
//! store.create_table().await?; // tests and development only; production creates it with IaC
//! # Ok(())
//! # }
//! ```
//!
//! Every read that decides a write is strongly consistent; the lists served by a global
//! secondary index (runs, form responses) are eventually consistent (typically well under a
//! second on AWS). No method scans the table.

mod approvals;
mod audit;
mod breakers;
mod connections;
mod datasets;
mod db;
mod forms;
mod item;
mod keys;
mod routes;
mod runs;
pub mod stream;
mod table;
mod workflows;

pub use approvals::{ApprovalStatus, StoredApproval, org_of_execution};
pub use datasets::DatasetsTable;

use aws_sdk_dynamodb::Client;

/// The first global secondary index (`gsi1pk`/`gsi1sk`): an organisation's runs newest first,
/// a workflow's form responses newest first and an organisation's approvals newest first.
pub const GSI1: &str = "gsi1";

/// The second global secondary index (`gsi2pk`/`gsi2sk`): a workflow's runs newest first and
/// every organisation's approvals newest first.
pub const GSI2: &str = "gsi2";

/// Largest workflow definition (its JSON text, in bytes) a version item takes; a larger one
/// is [`StoreError::Invalid`](cm_store::StoreError::Invalid) (DynamoDB items are limited to
/// 400 KB; offloading large documents to S3 is future work).
pub const MAX_DEFINITION_BYTES: usize = 300 * 1024;

/// Largest run input, and largest run output, in bytes of JSON text (both live in the run
/// item, together under the 400 KB item limit); a larger one is
/// [`StoreError::Invalid`](cm_store::StoreError::Invalid).
pub const MAX_RUN_VALUE_BYTES: usize = 160 * 1024;

/// DynamoDB's item size limit (400 KB). Any item this store would write above it (form
/// response data, audit details, node previews, error causes) is
/// [`StoreError::Invalid`](cm_store::StoreError::Invalid) before it is sent.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Every [`cm_store`] port over one DynamoDB table.
///
/// Cloning is cheap (the SDK client is reference counted); clones share the table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table` (which must exist: see [`DynamoStore::create_table`] for tests and
    /// development, `docs/dynamodb.md` for its schema).
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// A DynamoDB client configured from the environment (one
/// `aws_config::defaults(BehaviorVersion::latest())`): region and credentials by the SDK's
/// default chains (environment variables, profile files, web identity, ECS and EC2 instance
/// metadata — on Lambda the function's role), over HTTPS with rustls and the `ring` crypto
/// provider, trusting the system's root certificates.
///
/// `endpoint_url` points it at an emulator (moto, DynamoDB Local), e.g.
/// `http://127.0.0.1:5000`; the region is then `AWS_REGION` (or `AWS_DEFAULT_REGION`), else
/// `us-east-1`. Requests are SigV4-signed either way: give an emulator dummy credentials
/// (`AWS_ACCESS_KEY_ID=test`, `AWS_SECRET_ACCESS_KEY=test`).
pub async fn client_from_env(endpoint_url: Option<&str>) -> Client {
    Client::new(&cm_aws::sdk_config(endpoint_url).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An emulator client has a region without asking instance metadata, and no request is
    /// made to build it.
    #[tokio::test]
    async fn emulator_client_builds_offline() {
        let client = client_from_env(Some("http://127.0.0.1:9")).await;
        assert!(client.config().region().is_some());
    }
}
