//! Creating the table (tests, development) and waiting for it.

use crate::db::sdk_error;
use crate::{DynamoStore, GSI1, GSI2};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus,
};
use cm_store::{Result, StoreError};
use std::time::Duration;

/// How long [`DynamoStore::create_table`] waits for the table and its indexes.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

fn build<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
    r.map_err(|e| StoreError::Backend(format!("building the table definition: {e}")))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    build(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build(),
    )
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    build(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

fn gsi(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex> {
    build(
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build(),
    )
}

impl DynamoStore {
    /// Creates the table with its two global secondary indexes (on-demand capacity,
    /// `PAY_PER_REQUEST`) and waits (up to 5 minutes) until the table and its indexes are
    /// `ACTIVE`. A table that exists already is only waited for. For tests and development:
    /// production tables come from infrastructure as code with the same schema
    /// (`docs/dynamodb.md`).
    pub async fn create_table(&self) -> Result<()> {
        let res = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute("pk")?)
            .attribute_definitions(string_attribute("sk")?)
            .attribute_definitions(string_attribute("gsi1pk")?)
            .attribute_definitions(string_attribute("gsi1sk")?)
            .attribute_definitions(string_attribute("gsi2pk")?)
            .attribute_definitions(string_attribute("gsi2sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi(GSI1, "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(gsi(GSI2, "gsi2pk", "gsi2sk")?)
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(sdk_error(&self.table, "CreateTable", e)),
        }
        self.wait_active().await
    }

    /// Creates a table keyed by `pk`/`sk` only (the datasets table) and waits until it is
    /// active; an existing table is only waited for.
    pub(crate) async fn create_plain_table(&self) -> Result<()> {
        let res = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute("pk")?)
            .attribute_definitions(string_attribute("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(sdk_error(&self.table, "CreateTable", e)),
        }
        self.wait_active().await
    }

    /// Deletes the table (tests and development).
    pub async fn delete_table(&self) -> Result<()> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, "DeleteTable", e))?;
        Ok(())
    }

    async fn wait_active(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
        let mut pause = Duration::from_millis(50);
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, "DescribeTable", e))?;
            if let Some(t) = out.table() {
                let indexes_active = t
                    .global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active));
                if t.table_status() == Some(&TableStatus::Active) && indexes_active {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Backend(format!(
                    "DynamoDB table `{}` was not ACTIVE within {} s",
                    self.table,
                    ACTIVE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}
