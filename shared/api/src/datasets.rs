//! Datasets: the records `action.store` nodes wrote, read through the deployment's
//! [`DatasetReader`] (embedded: `cm-local`'s SQLite; cloud: the DynamoDB datasets table) —
//! `GET /v1/datasets/{name}/records`.
//!
//! Workflows published through the API store into `<org>#<name>` (the compiler's dataset
//! namespace is the organisation), so a caller reads its own organisation's records only:
//! another organisation's dataset of the same name is a different partition.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::{ApiPath, ApiQuery, limit};
use crate::runtime::Runtime;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use cm_nodes::BoxFuture;
use cm_store::{DatasetRecord, DatasetStore, Page, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// Reads dataset records: any [`DatasetStore`] is one.
pub trait DatasetReader: Send + Sync + 'static {
    /// The records of partition `dataset` by key, after `cursor`, at most `limit`.
    fn list<'a>(
        &'a self,
        dataset: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, cm_store::Result<Page<DatasetRecord>>>;
}

impl<T: DatasetStore> DatasetReader for T {
    fn list<'a>(
        &'a self,
        dataset: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, cm_store::Result<Page<DatasetRecord>>> {
        Box::pin(self.list_records(dataset, cursor, limit))
    }
}

/// The partition of `org`'s dataset `name` (the compiler's namespaced key).
pub fn partition(org: &str, name: &str) -> String {
    format!("{org}#{name}")
}

/// Paging of records.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordQuery {
    /// Cursor from the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// One stored record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    /// The record's key.
    pub key: String,
    /// The record.
    #[schema(value_type = Object)]
    pub data: Value,
    /// The run (execution ARN) that stored it.
    pub run_id: String,
    /// The node that stored it.
    pub node_id: String,
    /// When (RFC 3339).
    pub stored_at: String,
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordPage {
    /// The dataset.
    pub dataset: String,
    /// Records by key.
    pub items: Vec<RecordView>,
    /// Cursor of the next page, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Whether `name` is a dataset name (`action.store`'s `dataset`: `^[a-z][a-z0-9_-]{0,63}$`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

#[utoipa::path(get, path = "/v1/datasets/{name}/records", tag = "datasets",
    params(("name" = String, Path, description = "Dataset name (a store node's `dataset`)"), RecordQuery),
    responses((status = 200, description = "Your organisation's records of the dataset, by key", body = RecordPage),
              (status = 400, description = "Bad dataset name, cursor or limit", body = crate::error::ErrorBody),
              (status = 404, description = "This deployment has no dataset store", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_records<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> ApiResult<Json<RecordPage>> {
    if !valid_name(&name) {
        return Err(ApiError::BadRequest(format!(
            "dataset `{name}` is not a dataset name (a lowercase letter, then up to 63 lowercase letters, digits, `_` or `-`)"
        )));
    }
    let reader = st.datasets.as_ref().ok_or_else(|| {
        ApiError::NotFound("datasets are not available in this deployment".into())
    })?;
    let page = reader
        .list(&partition(&caller.org, &name), q.cursor, limit(q.limit))
        .await?;
    Ok(Json(RecordPage {
        dataset: name,
        items: page
            .items
            .into_iter()
            .map(|r| RecordView {
                key: r.key,
                data: r.data,
                run_id: r.run_id,
                node_id: r.node_id,
                stored_at: r.stored_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_store_node_pattern() {
        for ok in ["leads", "a", "x_1-y", &"a".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Leads", "1a", "a#b", "a b", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
