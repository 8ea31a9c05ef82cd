//! The datasets table: what `action.store` nodes write (Step Functions' `dynamodb:putItem`,
//! compiled by `cm-compiler`) and the API lists (`GET /v1/datasets/{name}/records`), as the
//! [`DatasetStore`] port.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` (partition key) | the dataset: `<org>#<name>` for workflows published through the API |
//! | `sk` (sort key) | the record's key (the node's `key`, else `<execution name>#<node>[#<index>]`) |
//! | `data` | the record as JSON text |
//! | `runId`, `nodeId`, `storedAt` | the execution ARN, the node, the state's entered time |
//!
//! `list_records` is one Query of the partition by key (strongly consistent), paged with
//! [`record_cursor`]s.

use crate::DynamoStore;
use crate::db::Query;
use crate::item::{self, Builder, Item, Reader};
use cm_store::{
    DatasetRecord, DatasetStore, Page, Result, check_limit, parse_record_cursor, record_cursor,
};

/// The datasets table (a second table beside the control plane's: its items are written by
/// state machines, not by the API).
#[derive(Debug, Clone)]
pub struct DatasetsTable(DynamoStore);

impl DatasetsTable {
    /// The table `table` over `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DatasetsTable {
        DatasetsTable(DynamoStore::new(client, table))
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        self.0.table()
    }

    /// Creates the table (`pk`, `sk`, on demand) and waits until it is active; an existing
    /// table is only waited for. For tests and development: deployments get it from the stack.
    pub async fn create_table(&self) -> Result<()> {
        self.0.create_plain_table().await
    }
}

fn record_from(item: &Item) -> Result<DatasetRecord> {
    let r = Reader::new(item, "dataset record");
    Ok(DatasetRecord {
        dataset: r.s("pk")?,
        key: r.s("sk")?,
        data: r.json("data")?,
        run_id: r.s("runId")?,
        node_id: r.s("nodeId")?,
        stored_at: r.s("storedAt")?,
    })
}

impl DatasetStore for DatasetsTable {
    async fn put_record(&self, record: DatasetRecord) -> Result<()> {
        let item = Builder::new(record.dataset.clone(), record.key.clone())
            .s("data", record.data.to_string())
            .s("runId", &record.run_id)
            .s("nodeId", &record.node_id)
            .s("storedAt", &record.stored_at)
            .build("dataset record")?;
        self.0.put(item, None).await.map(|_| ())
    }

    async fn list_records(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<DatasetRecord>> {
        let limit = check_limit(limit)?;
        let after = parse_record_cursor(cursor.as_deref())?;
        let q = Query::table(dataset.to_owned(), None);
        let start = after.map(|k| item::key(dataset.to_owned(), k));
        let (items, more) = self.0.query_page(&q, limit, start).await?;
        let items = items.iter().map(record_from).collect::<Result<Vec<_>>>()?;
        let next_cursor = more
            .then(|| items.last().map(|r| record_cursor(&r.key)))
            .flatten();
        Ok(Page { items, next_cursor })
    }
}
