//! The DynamoDB calls the ports are made of (GetItem, PutItem, UpdateItem, Query,
//! TransactWriteItems, BatchGetItem, BatchWriteItem) and how their errors become
//! [`StoreError`]s.

use crate::DynamoStore;
use crate::item::Item;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, ReturnValue,
    TransactWriteItem, Update, WriteRequest,
};
use cm_store::{Result, StoreError};
use std::collections::HashMap;
use std::time::Duration;

/// How often a batch call retries its unprocessed items, and a transaction that lost to a
/// concurrent one, before giving up.
const RETRIES: u32 = 8;

/// Names and values of one expression (only those it uses: DynamoDB rejects unused ones).
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// No names, no values.
    pub(crate) fn new() -> Expr {
        Expr::default()
    }

    /// `#placeholder` for attribute `name`.
    pub(crate) fn name(mut self, placeholder: &str, name: &str) -> Expr {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        self
    }

    /// `:placeholder` for `value`.
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Expr {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// What a transaction did.
#[derive(Debug)]
pub(crate) enum Tx {
    /// Every item was written.
    Done,
    /// A condition failed: for each item of the transaction, whether its condition failed
    /// (empty if DynamoDB did not say which).
    Failed(Vec<bool>),
}

impl Tx {
    /// Whether the condition of item `i` failed (`unknown` if DynamoDB did not say).
    pub(crate) fn failed(&self, i: usize, unknown: bool) -> bool {
        match self {
            Tx::Done => false,
            Tx::Failed(v) if v.is_empty() => unknown,
            Tx::Failed(v) => v.get(i).copied().unwrap_or(false),
        }
    }
}

/// Maps an SDK error of operation `op` on `table` to a [`StoreError`].
pub(crate) fn sdk_error<E, R>(table: &str, op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = err.message().unwrap_or_default().to_owned();
    match err.code() {
        Some("ResourceNotFoundException") => StoreError::Backend(format!(
            "DynamoDB table `{table}` (or an index of it) does not exist ({op}): {message}"
        )),
        Some("ConditionalCheckFailedException") => StoreError::Conflict(format!(
            "{op} on `{table}`: the item changed concurrently ({message})"
        )),
        Some("ValidationException") => {
            StoreError::Invalid(format!("DynamoDB rejected {op}: {message}"))
        }
        Some(
            code @ ("ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"),
        ) => StoreError::Backend(format!(
            "DynamoDB throttled {op} on `{table}` ({code}) after retries: {message}"
        )),
        _ => StoreError::Backend(format!(
            "DynamoDB {op} on `{table}` failed: {}",
            DisplayErrorContext(&err)
        )),
    }
}

fn build_error(err: BuildError) -> StoreError {
    StoreError::Backend(format!("building a DynamoDB request: {err}"))
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
}

impl DynamoStore {
    /// GetItem (strongly consistent).
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, "GetItem", e))?;
        Ok(out.item)
    }

    /// PutItem with an optional condition: `Ok(false)` if the condition failed.
    pub(crate) async fn put(&self, item: Item, condition: Option<(&str, Expr)>) -> Result<bool> {
        let (cond, expr) = match condition {
            Some((c, e)) => (Some(c.to_owned()), e),
            None => (None, Expr::new()),
        };
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(cond)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(&self.table, "PutItem", e)),
        }
    }

    /// UpdateItem returning the new item: `Ok(None)` if the condition failed.
    pub(crate) async fn update(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        expr: Expr,
    ) -> Result<Option<Item>> {
        self.update_returning(key, update, condition, expr, ReturnValue::AllNew)
            .await
    }

    /// UpdateItem returning `returning` of the item: `Ok(None)` if the condition failed.
    pub(crate) async fn update_returning(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        expr: Expr,
        returning: ReturnValue,
    ) -> Result<Option<Item>> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(returning)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(sdk_error(&self.table, "UpdateItem", e)),
        }
    }

    /// DeleteItem with an optional condition: `Ok(false)` if the condition failed.
    pub(crate) async fn delete(&self, key: Item, condition: Option<(&str, Expr)>) -> Result<bool> {
        let (cond, expr) = match condition {
            Some((c, e)) => (Some(c.to_owned()), e),
            None => (None, Expr::new()),
        };
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_condition_expression(cond)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error(&self.table, "DeleteItem", e)),
        }
    }

    /// A Put of a transaction.
    pub(crate) fn tx_put(
        &self,
        item: Item,
        condition: Option<(&str, Expr)>,
    ) -> Result<TransactWriteItem> {
        let (cond, expr) = match condition {
            Some((c, e)) => (Some(c.to_owned()), e),
            None => (None, Expr::new()),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(cond)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An Update of a transaction.
    pub(crate) fn tx_update(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        expr: Expr,
    ) -> Result<TransactWriteItem> {
        let up = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(up).build())
    }

    /// A Delete of a transaction.
    pub(crate) fn tx_delete(
        &self,
        key: Item,
        condition: Option<(&str, Expr)>,
    ) -> Result<TransactWriteItem> {
        let (cond, expr) = match condition {
            Some((c, e)) => (Some(c.to_owned()), e),
            None => (None, Expr::new()),
        };
        let del = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_condition_expression(cond)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(del).build())
    }

    /// A ConditionCheck of a transaction.
    pub(crate) fn tx_check(
        &self,
        key: Item,
        condition: &str,
        expr: Expr,
    ) -> Result<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// TransactWriteItems. A condition failure is [`Tx::Failed`]; a conflict with a
    /// concurrent transaction is retried (with backoff) and then a `Conflict`.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Tx> {
        for attempt in 0..RETRIES {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(Tx::Done),
                Err(e) => e,
            };
            if err.code() != Some("TransactionCanceledException") {
                return Err(sdk_error(&self.table, "TransactWriteItems", err));
            }
            let codes: Vec<String> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect(),
                _ => Vec::new(),
            };
            let message = err.message().unwrap_or_default().to_owned();
            let condition_failed = codes.iter().any(|c| c == "ConditionalCheckFailed")
                || (codes.is_empty() && message.contains("ConditionalCheckFailed"));
            if condition_failed {
                return Ok(Tx::Failed(
                    codes
                        .iter()
                        .map(|c| c == "ConditionalCheckFailed")
                        .collect(),
                ));
            }
            if codes.iter().any(|c| c == "ValidationError") {
                return Err(StoreError::Invalid(format!(
                    "DynamoDB rejected a transaction on `{}` ({}): {message}",
                    self.table,
                    codes.join(", ")
                )));
            }
            let retryable = codes
                .iter()
                .any(|c| c == "TransactionConflict" || c == "ThrottlingError")
                || message.contains("TransactionConflict");
            if !retryable {
                return Err(StoreError::Backend(format!(
                    "DynamoDB cancelled a transaction on `{}` ({}): {message}",
                    self.table,
                    codes.join(", ")
                )));
            }
            backoff(attempt).await;
        }
        Err(StoreError::Conflict(format!(
            "concurrent transactions kept conflicting on `{}`; retry",
            self.table
        )))
    }

    /// BatchGetItem (strongly consistent) of up to 100 keys, retrying unprocessed keys.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut found = Vec::new();
        let mut pending = keys;
        for attempt in 0..RETRIES {
            if pending.is_empty() {
                return Ok(found);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, "BatchGetItem", e))?;
            if let Some(mut r) = out.responses {
                found.extend(r.remove(&self.table).unwrap_or_default());
            }
            if let Some(mut u) = out.unprocessed_keys
                && let Some(k) = u.remove(&self.table)
            {
                pending = k.keys;
                if !pending.is_empty() {
                    backoff(attempt).await;
                }
            }
        }
        if pending.is_empty() {
            return Ok(found);
        }
        Err(StoreError::Backend(format!(
            "DynamoDB left {} keys of `{}` unread (BatchGetItem throttled)",
            pending.len(),
            self.table
        )))
    }

    /// Deletes items by key with BatchWriteItem (25 a call), retrying unprocessed ones.
    pub(crate) async fn delete_keys(&self, keys: Vec<Item>) -> Result<()> {
        for chunk in keys.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(build_error)
                })
                .collect::<Result<_>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == RETRIES {
                    return Err(StoreError::Backend(format!(
                        "DynamoDB left {} deletes on `{}` unprocessed (BatchWriteItem throttled)",
                        pending.len(),
                        self.table
                    )));
                }
                if attempt > 0 {
                    backoff(attempt).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, "BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(())
    }

    /// One Query call.
    async fn query_once(
        &self,
        q: &Query,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>)> {
        let mut cond = "#pk = :pk".to_owned();
        let mut expr = q
            .expr
            .clone()
            .name("#pk", q.pk_name())
            .value(":pk", AttributeValue::S(q.pk.clone()));
        if let Some(prefix) = &q.sk_prefix {
            cond.push_str(" AND begins_with(#sk, :skp)");
            expr = expr
                .name("#sk", q.sk_name())
                .value(":skp", AttributeValue::S(prefix.clone()));
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_owned))
            .key_condition_expression(cond)
            .set_filter_expression(q.filter.clone())
            .set_projection_expression(q.projection.clone())
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .scan_index_forward(q.forward)
            .set_consistent_read(q.index.is_none().then_some(true))
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, "Query", e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Up to `limit` items of a Query from `start` (exclusive), and whether there are more.
    /// Reads until it has `limit + 1` matching items (a filter can make DynamoDB's pages
    /// short) or the partition ends.
    pub(crate) async fn query_page(
        &self,
        q: &Query,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, bool)> {
        let mut items: Vec<Item> = Vec::new();
        let mut start = start;
        loop {
            let need = limit + 1 - items.len();
            let ask = if q.filter.is_some() {
                need.max(100)
            } else {
                need
            };
            let (got, last) = self.query_once(q, Some(ask), start).await?;
            items.extend(got);
            if items.len() > limit {
                items.truncate(limit);
                return Ok((items, true));
            }
            match last {
                Some(k) => start = Some(k),
                None => return Ok((items, false)),
            }
        }
    }

    /// Every item of a Query.
    pub(crate) async fn query_all(&self, q: &Query) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (got, last) = self.query_once(q, None, start).await?;
            items.extend(got);
            match last {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }
}

/// A Query: one partition of the table or of a GSI, optionally a sort key prefix, a filter
/// and a projection.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// The GSI, or the table.
    pub(crate) index: Option<&'static str>,
    /// The partition key value.
    pub(crate) pk: String,
    /// `begins_with` on the sort key.
    pub(crate) sk_prefix: Option<String>,
    /// A filter expression (names and values in `expr`).
    pub(crate) filter: Option<String>,
    /// A projection expression.
    pub(crate) projection: Option<String>,
    /// Names and values of the filter and projection.
    pub(crate) expr: Expr,
    /// Ascending (`true`) or descending sort key order.
    pub(crate) forward: bool,
}

impl Query {
    /// The items of partition `pk` of the table whose sort key starts with `prefix`.
    pub(crate) fn table(pk: String, prefix: Option<&str>) -> Query {
        Query {
            index: None,
            pk,
            sk_prefix: prefix.map(str::to_owned),
            filter: None,
            projection: None,
            expr: Expr::new(),
            forward: true,
        }
    }

    /// The items of partition `pk` of GSI `index`.
    pub(crate) fn index(index: &'static str, pk: String) -> Query {
        Query {
            index: Some(index),
            ..Query::table(pk, None)
        }
    }

    /// Newest (largest sort key) first.
    pub(crate) fn descending(mut self) -> Query {
        self.forward = false;
        self
    }

    /// Only the table key attributes (`pk`, `sk`) of the items.
    pub(crate) fn keys_only(mut self) -> Query {
        self.projection = Some("#kpk, #ksk".to_owned());
        self.expr = self.expr.name("#kpk", "pk").name("#ksk", "sk");
        self
    }

    fn pk_name(&self) -> &'static str {
        match self.index {
            Some(crate::GSI1) => "gsi1pk",
            Some(_) => "gsi2pk",
            None => "pk",
        }
    }

    fn sk_name(&self) -> &'static str {
        match self.index {
            Some(crate::GSI1) => "gsi1sk",
            Some(_) => "gsi2sk",
            None => "sk",
        }
    }
}
