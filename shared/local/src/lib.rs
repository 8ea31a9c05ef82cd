//! The embedded engine's adapters: what the cloud keeps in DynamoDB and SQS, kept in one SQLite
//! file ([`LocalStore`]), and the engine Task resources that run node handlers in-process
//! ([`resources`]).
//!
//! - `lambda:invoke` of `concertmaster-node-runner` (and `concertmaster-plugin:<type>`) →
//!   [`cm_nodes::NodeRunner`] in this process;
//! - `dynamodb:putItem` on the datasets table → the `datasets` table of the local store;
//! - `sqs:sendMessage` → the local queue.

mod resources;
mod store;

pub use resources::{ResourceOptions, RunnerHandler, decide_approval, resources};
pub use store::{Approval, ApprovalStatus, DatasetRecord, LocalError, LocalStore, QueueMessage};
