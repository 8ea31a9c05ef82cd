//! [`WorkflowStore`]: summaries in one partition per organisation (sorted by id), versions in
//! one partition per workflow, tombstones beside the summaries.

use crate::db::{Expr, Query, Tx};
use crate::item::{self, Builder, Item, Reader, check_json_size, json_text, n, s, search_text};
use crate::keys::{self, cursor};
use crate::{DynamoStore, MAX_DEFINITION_BYTES};
use aws_sdk_dynamodb::types::AttributeValue;
use cm_store::{
    Page, Result, StoreError, WorkflowQuery, WorkflowStore, WorkflowSummary, WorkflowVersion,
    WorkflowWrite, check_limit,
};

/// How often `update_workflow` without an expected version re-reads and retries when another
/// writer wins the race for the next version number.
const UPDATE_ATTEMPTS: u32 = 5;

fn summary_key(org: &str, id: &str) -> Item {
    item::key(keys::workflows(org), keys::summary_sk(id))
}

fn version_key(org: &str, id: &str, v: u32) -> Item {
    item::key(keys::versions(org, id), keys::version_sk(v))
}

fn version_not_found(id: &str, version: u32) -> StoreError {
    StoreError::not_found("version", format!("{id}@{version}"))
}

fn summary_item(org: &str, s: &WorkflowSummary) -> Result<Item> {
    Builder::new(keys::workflows(org), keys::summary_sk(&s.id))
        .s("id", &s.id)
        .s("name", &s.name)
        .s("description", &s.description)
        .s("search", search_text(&s.id, &s.name, &s.description))
        .n("latestVersion", s.latest_version)
        .opt_n("publishedVersion", s.published_version)
        .opt_s("stateMachine", s.state_machine.as_deref())
        .b("isTemplate", s.is_template)
        .n("createdAt", s.created_at_ms)
        .s("createdBy", &s.created_by)
        .n("updatedAt", s.updated_at_ms)
        .s("updatedBy", &s.updated_by)
        .build("workflow summary")
}

fn summary_from(item: &Item) -> Result<WorkflowSummary> {
    let r = Reader::new(item, "workflow");
    Ok(WorkflowSummary {
        id: r.s("id")?,
        name: r.s("name")?,
        description: r.s("description")?,
        latest_version: r.n("latestVersion")?,
        published_version: r.opt_n("publishedVersion")?,
        state_machine: r.opt_s("stateMachine")?,
        is_template: r.b("isTemplate")?,
        created_at_ms: r.n("createdAt")?,
        created_by: r.s("createdBy")?,
        updated_at_ms: r.n("updatedAt")?,
        updated_by: r.s("updatedBy")?,
    })
}

/// A version item; the definition over [`MAX_DEFINITION_BYTES`] is `Invalid`.
fn version_item(org: &str, v: &WorkflowVersion) -> Result<Item> {
    let definition = json_text(&v.definition);
    check_json_size(&definition, "workflow definition", MAX_DEFINITION_BYTES)?;
    Builder::new(
        keys::versions(org, &v.workflow_id),
        keys::version_sk(v.version),
    )
    .s("workflowId", &v.workflow_id)
    .n("version", v.version)
    .s("definition", definition)
    .n("createdAt", v.created_at_ms)
    .s("createdBy", &v.created_by)
    .build("workflow version")
}

fn version_from(item: &Item) -> Result<WorkflowVersion> {
    let r = Reader::new(item, "workflow version");
    Ok(WorkflowVersion {
        workflow_id: r.s("workflowId")?,
        version: r.n("version")?,
        definition: r.json("definition")?,
        created_at_ms: r.n("createdAt")?,
        created_by: r.s("createdBy")?,
    })
}

fn not_exists() -> (&'static str, Expr) {
    ("attribute_not_exists(pk)", Expr::new())
}

impl DynamoStore {
    async fn summary(&self, org: &str, id: &str) -> Result<WorkflowSummary> {
        match self.get(summary_key(org, id)).await? {
            Some(item) => summary_from(&item),
            None => Err(StoreError::not_found("workflow", id)),
        }
    }
}

impl WorkflowStore for DynamoStore {
    async fn create_workflow(
        &self,
        org: &str,
        id: &str,
        write: WorkflowWrite,
    ) -> Result<WorkflowSummary> {
        let summary = WorkflowSummary {
            id: id.to_owned(),
            name: write.name,
            description: write.description,
            latest_version: 1,
            published_version: None,
            state_machine: None,
            is_template: write.is_template,
            created_at_ms: write.at_ms,
            created_by: write.actor.clone(),
            updated_at_ms: write.at_ms,
            updated_by: write.actor.clone(),
        };
        let version = WorkflowVersion {
            workflow_id: id.to_owned(),
            version: 1,
            definition: write.definition,
            created_at_ms: write.at_ms,
            created_by: write.actor,
        };
        let tx = vec![
            self.tx_put(summary_item(org, &summary)?, Some(not_exists()))?,
            self.tx_check(
                item::key(keys::workflows(org), keys::tombstone_sk(id)),
                "attribute_not_exists(pk)",
                Expr::new(),
            )?,
            self.tx_put(version_item(org, &version)?, Some(not_exists()))?,
        ];
        match self.transact(tx).await? {
            Tx::Done => Ok(summary),
            failed if failed.failed(1, false) => Err(StoreError::Conflict(format!(
                "workflow `{id}` was deleted; its id cannot be reused"
            ))),
            _ => Err(StoreError::Conflict(format!(
                "workflow `{id}` exists already"
            ))),
        }
    }

    async fn get_workflow(&self, org: &str, id: &str) -> Result<WorkflowSummary> {
        self.summary(org, id).await
    }

    async fn list_workflows(
        &self,
        org: &str,
        query: WorkflowQuery,
    ) -> Result<Page<WorkflowSummary>> {
        let limit = check_limit(query.limit)?;
        let after = cursor::parse_workflow(query.cursor.as_deref())?;
        let mut q = Query::table(keys::workflows(org), Some(keys::SUMMARY_PREFIX));
        let mut filters = Vec::new();
        if let Some(t) = query.templates {
            filters.push("#tpl = :tpl");
            q.expr = q
                .expr
                .name("#tpl", "isTemplate")
                .value(":tpl", AttributeValue::Bool(t));
        }
        if let Some(needle) = query.search.as_deref().filter(|s| !s.is_empty()) {
            filters.push("contains(#search, :needle)");
            q.expr = q
                .expr
                .name("#search", "search")
                .value(":needle", s(needle.to_lowercase()));
        }
        if !filters.is_empty() {
            q.filter = Some(filters.join(" AND "));
        }
        let start = after.map(|id| summary_key(org, &id));
        let (items, more) = self.query_page(&q, limit, start).await?;
        let items = items.iter().map(summary_from).collect::<Result<Vec<_>>>()?;
        let next_cursor = more
            .then(|| items.last().map(|s| cursor::workflow(&s.id)))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn update_workflow(
        &self,
        org: &str,
        id: &str,
        expected_version: Option<u32>,
        write: WorkflowWrite,
    ) -> Result<WorkflowSummary> {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.summary(org, id).await?;
            let latest = current.latest_version;
            if let Some(e) = expected_version
                && e != latest
            {
                return Err(StoreError::Conflict(format!(
                    "workflow `{id}` is at version {latest}, not {e}"
                )));
            }
            let next = latest + 1;
            let version = WorkflowVersion {
                workflow_id: id.to_owned(),
                version: next,
                definition: write.definition.clone(),
                created_at_ms: write.at_ms,
                created_by: write.actor.clone(),
            };
            let summary = WorkflowSummary {
                name: write.name.clone(),
                description: write.description.clone(),
                is_template: write.is_template,
                latest_version: next,
                updated_at_ms: write.at_ms,
                updated_by: write.actor.clone(),
                ..current
            };
            let expr = Expr::new()
                .name("#name", "name")
                .name("#desc", "description")
                .name("#search", "search")
                .name("#tpl", "isTemplate")
                .name("#latest", "latestVersion")
                .name("#uat", "updatedAt")
                .name("#uby", "updatedBy")
                .value(":name", s(&summary.name))
                .value(":desc", s(&summary.description))
                .value(
                    ":search",
                    s(search_text(id, &summary.name, &summary.description)),
                )
                .value(":tpl", AttributeValue::Bool(summary.is_template))
                .value(":next", n(next))
                .value(":latest", n(latest))
                .value(":uat", n(write.at_ms))
                .value(":uby", s(&write.actor));
            let tx = vec![
                self.tx_update(
                    summary_key(org, id),
                    "SET #name = :name, #desc = :desc, #search = :search, #tpl = :tpl, \
                     #latest = :next, #uat = :uat, #uby = :uby",
                    Some("attribute_exists(pk) AND #latest = :latest"),
                    expr,
                )?,
                self.tx_put(version_item(org, &version)?, Some(not_exists()))?,
            ];
            match self.transact(tx).await? {
                Tx::Done => return Ok(summary),
                // Another writer took the next version (or deleted the workflow): re-read.
                Tx::Failed(_) => continue,
            }
        }
        Err(StoreError::Conflict(format!(
            "workflow `{id}` kept changing concurrently; retry"
        )))
    }

    async fn delete_workflow(&self, org: &str, id: &str) -> Result<()> {
        let tombstone = Builder::new(keys::workflows(org), keys::tombstone_sk(id))
            .s("id", id)
            .build("workflow tombstone")?;
        let tx = vec![
            self.tx_delete(
                summary_key(org, id),
                Some(("attribute_exists(pk)", Expr::new())),
            )?,
            self.tx_put(tombstone, None)?,
        ];
        if let Tx::Failed(_) = self.transact(tx).await? {
            return Err(StoreError::not_found("workflow", id));
        }
        // The versions go after the summary. Reads of versions check the summary first, so a
        // version a failure here leaves behind is never visible (and the id is never reused).
        let versions = self
            .query_all(&Query::table(keys::versions(org, id), None).keys_only())
            .await?;
        self.delete_keys(versions).await
    }

    async fn get_version(&self, org: &str, id: &str, version: u32) -> Result<WorkflowVersion> {
        // One consistent BatchGetItem: the summary (is the workflow alive?) and the version.
        let found = self
            .batch_get(vec![summary_key(org, id), version_key(org, id, version)])
            .await?;
        let is = |item: &&Item, prefix: &str| {
            item::str_attr(item, "sk").is_some_and(|sk| sk.starts_with(prefix))
        };
        if !found.iter().any(|i| is(&i, keys::SUMMARY_PREFIX)) {
            return Err(StoreError::not_found("workflow", id));
        }
        match found.iter().find(|i| is(i, keys::VERSION_PREFIX)) {
            Some(item) => version_from(item),
            None => Err(version_not_found(id, version)),
        }
    }

    async fn list_versions(
        &self,
        org: &str,
        id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<WorkflowVersion>> {
        let limit = check_limit(limit)?;
        let before = cursor::parse_version(cursor.as_deref())?;
        self.summary(org, id).await?;
        let q = Query::table(keys::versions(org, id), Some(keys::VERSION_PREFIX)).descending();
        let start = before.map(|v| version_key(org, id, v));
        let (items, more) = self.query_page(&q, limit, start).await?;
        let items = items.iter().map(version_from).collect::<Result<Vec<_>>>()?;
        let next_cursor = more
            .then(|| items.last().map(|v| cursor::version(v.version)))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn publish(
        &self,
        org: &str,
        id: &str,
        version: u32,
        state_machine: &str,
        actor: &str,
        at_ms: i64,
    ) -> Result<WorkflowSummary> {
        // Versions are 1..=latest and never deleted one by one: the version exists exactly
        // when 1 <= version <= latestVersion, which the condition checks on the summary.
        let expr = Expr::new()
            .name("#latest", "latestVersion")
            .name("#pub", "publishedVersion")
            .name("#sm", "stateMachine")
            .name("#uat", "updatedAt")
            .name("#uby", "updatedBy")
            .value(":v", n(version))
            .value(":sm", s(state_machine))
            .value(":uat", n(at_ms))
            .value(":uby", s(actor));
        let updated = if version == 0 {
            None
        } else {
            self.update(
                summary_key(org, id),
                "SET #pub = :v, #sm = :sm, #uat = :uat, #uby = :uby",
                Some("attribute_exists(pk) AND #latest >= :v"),
                expr,
            )
            .await?
        };
        match updated {
            Some(item) => summary_from(&item),
            None => {
                self.summary(org, id).await?;
                Err(version_not_found(id, version))
            }
        }
    }
}
