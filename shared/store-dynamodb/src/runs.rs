//! [`RunStore`]: one partition per run (the run item and its node executions), GSI1 for an
//! organisation's runs and GSI2 for a workflow's runs (newest first), idempotency keys as
//! separate items written in the same transaction as the run.

use crate::db::{Expr, Query, Tx};
use crate::item::{self, Builder, Item, Reader, check_json_size, json_text, n, s};
use crate::keys::{self, cursor};
use crate::{DynamoStore, GSI1, GSI2, MAX_RUN_VALUE_BYTES};
use aws_sdk_dynamodb::types::ReturnValue;
use cm_store::{
    Created, NodeExecution, Page, Result, RunEnd, RunQuery, RunRecord, RunStatus, RunStore,
    StoreError, check_limit,
};

fn run_key(org: &str, id: &str) -> Item {
    item::key(keys::run(org, id), keys::RUN_SK)
}

fn idempotency_key(org: &str, workflow_id: &str, key: &str) -> Item {
    item::key(keys::run_key(org, workflow_id, key), keys::KEY_SK)
}

/// The full key of a run on GSI `index` (what `ExclusiveStartKey` needs there).
fn gsi_start(org: &str, index: &str, workflow_id: Option<&str>, at: i64, id: &str) -> Item {
    let mut key = run_key(org, id);
    let (pk_name, sk_name, pk) = match (index, workflow_id) {
        (GSI2, Some(w)) => ("gsi2pk", "gsi2sk", keys::runs_of_workflow(org, w)),
        _ => ("gsi1pk", "gsi1sk", keys::runs_of_org(org)),
    };
    key.insert(pk_name.to_owned(), s(pk));
    key.insert(sk_name.to_owned(), s(keys::time_id(at, id)));
    key
}

pub(crate) fn run_item(org: &str, r: &RunRecord) -> Result<Item> {
    let input = json_text(&r.input);
    check_json_size(&input, "run input", MAX_RUN_VALUE_BYTES)?;
    let output = r.output.as_ref().map(json_text);
    if let Some(o) = &output {
        check_json_size(o, "run output", MAX_RUN_VALUE_BYTES)?;
    }
    let time_id = keys::time_id(r.started_at_ms, &r.id);
    Builder::new(keys::run(org, &r.id), keys::RUN_SK)
        .s("gsi1pk", keys::runs_of_org(org))
        .s("gsi1sk", &time_id)
        .s("gsi2pk", keys::runs_of_workflow(org, &r.workflow_id))
        .s("gsi2sk", time_id)
        .s("id", &r.id)
        .s("workflowId", &r.workflow_id)
        .n("workflowVersion", r.workflow_version)
        .s("executionArn", &r.execution_arn)
        .s("status", r.status.as_str())
        .s("trigger", &r.trigger)
        .s("input", input)
        .opt_s("output", output)
        .opt_s("error", r.error.as_deref())
        .opt_s("cause", r.cause.as_deref())
        .opt_s("idempotencyKey", r.idempotency_key.as_deref())
        .s("startedBy", &r.started_by)
        .n("startedAt", r.started_at_ms)
        .opt_n("endedAt", r.ended_at_ms)
        .opt_s("retryOf", r.retry_of.as_deref())
        .build("run")
}

pub(crate) fn run_from(item: &Item) -> Result<RunRecord> {
    let r = Reader::new(item, "run");
    let status = r.s("status")?;
    Ok(RunRecord {
        id: r.s("id")?,
        workflow_id: r.s("workflowId")?,
        workflow_version: r.n("workflowVersion")?,
        execution_arn: r.s("executionArn")?,
        status: RunStatus::parse(&status).ok_or_else(|| {
            StoreError::Backend(format!("stored run has an unknown status `{status}`"))
        })?,
        trigger: r.s("trigger")?,
        input: r.json("input")?,
        output: r.opt_json("output")?,
        error: r.opt_s("error")?,
        cause: r.opt_s("cause")?,
        idempotency_key: r.opt_s("idempotencyKey")?,
        started_by: r.s("startedBy")?,
        started_at_ms: r.n("startedAt")?,
        ended_at_ms: r.opt_n("endedAt")?,
        retry_of: r.opt_s("retryOf")?,
    })
}

pub(crate) fn node_from(item: &Item) -> Result<(i64, NodeExecution)> {
    let r = Reader::new(item, "node execution");
    Ok((
        r.n("firstSeq")?,
        NodeExecution {
            node_id: r.s("nodeId")?,
            step: r.s("step")?,
            status: r.s("status")?,
            started_at_ms: r.n("startedAt")?,
            ended_at_ms: r.opt_n("endedAt")?,
            output_preview: r.opt_s("outputPreview")?,
            error: r.opt_s("error")?,
        },
    ))
}

/// `SET` the optional attributes that are there and `REMOVE` those that are not.
struct SetRemove {
    set: Vec<String>,
    remove: Vec<String>,
    expr: Expr,
}

impl SetRemove {
    fn new(expr: Expr) -> SetRemove {
        SetRemove {
            set: Vec::new(),
            remove: Vec::new(),
            expr,
        }
    }

    fn set(mut self, attr: &str, value: aws_sdk_dynamodb::types::AttributeValue) -> SetRemove {
        let i = self.set.len() + self.remove.len();
        self.set.push(format!("#a{i} = :a{i}"));
        self.expr = self
            .expr
            .name(&format!("#a{i}"), attr)
            .value(&format!(":a{i}"), value);
        self
    }

    fn opt(self, attr: &str, value: Option<aws_sdk_dynamodb::types::AttributeValue>) -> SetRemove {
        match value {
            Some(v) => self.set(attr, v),
            None => {
                let mut me = self;
                let i = me.set.len() + me.remove.len();
                me.remove.push(format!("#a{i}"));
                me.expr = me.expr.name(&format!("#a{i}"), attr);
                me
            }
        }
    }

    fn raw_set(mut self, clause: String) -> SetRemove {
        self.set.push(clause);
        self
    }

    fn finish(self) -> (String, Expr) {
        let mut update = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        (update, self.expr)
    }
}

impl DynamoStore {
    async fn run(&self, org: &str, id: &str) -> Result<Option<RunRecord>> {
        self.get(run_key(org, id))
            .await?
            .map(|i| run_from(&i))
            .transpose()
    }
}

impl RunStore for DynamoStore {
    async fn create_run(&self, org: &str, run: RunRecord) -> Result<Created<RunRecord>> {
        let item = run_item(org, &run)?;
        let not_exists = || ("attribute_not_exists(pk)", Expr::new());
        let Some(key) = run.idempotency_key.as_deref() else {
            return if self.put(item, Some(not_exists())).await? {
                Ok(Created::New(run))
            } else {
                Err(StoreError::Conflict(format!(
                    "run `{}` exists already",
                    run.id
                )))
            };
        };
        let key_item = Builder::new(keys::run_key(org, &run.workflow_id, key), keys::KEY_SK)
            .s("runId", &run.id)
            .build("idempotency key")?;
        let tx = vec![
            self.tx_put(item, Some(not_exists()))?,
            self.tx_put(key_item, Some(not_exists()))?,
        ];
        let outcome = self.transact(tx).await?;
        if let Tx::Done = outcome {
            return Ok(Created::New(run));
        }
        if outcome.failed(1, true)
            && let Some(k) = self
                .get(idempotency_key(org, &run.workflow_id, key))
                .await?
        {
            let existing = Reader::new(&k, "idempotency key").s("runId")?;
            if let Some(r) = self.run(org, &existing).await? {
                return Ok(Created::Existing(r));
            }
        }
        Err(StoreError::Conflict(format!(
            "run `{}` exists already",
            run.id
        )))
    }

    async fn get_run(&self, org: &str, id: &str) -> Result<RunRecord> {
        self.run(org, id)
            .await?
            .ok_or_else(|| StoreError::not_found("run", id))
    }

    async fn list_runs(&self, org: &str, query: RunQuery) -> Result<Page<RunRecord>> {
        let limit = check_limit(query.limit)?;
        let before = cursor::parse_run(query.cursor.as_deref())?;
        let workflow_id = query.workflow_id.as_deref();
        let (index, pk) = match workflow_id {
            Some(w) => (GSI2, keys::runs_of_workflow(org, w)),
            None => (GSI1, keys::runs_of_org(org)),
        };
        let mut q = Query::index(index, pk).descending();
        if let Some(st) = query.status {
            q.filter = Some("#st = :st".to_owned());
            q.expr = q.expr.name("#st", "status").value(":st", s(st.as_str()));
        }
        let start = before.map(|(at, id)| gsi_start(org, index, workflow_id, at, &id));
        let (items, more) = self.query_page(&q, limit, start).await?;
        let items = items.iter().map(run_from).collect::<Result<Vec<_>>>()?;
        let next_cursor = more
            .then(|| items.last().map(|r| cursor::run(r.started_at_ms, &r.id)))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn finish_run(&self, org: &str, id: &str, end: RunEnd) -> Result<RunRecord> {
        if end.status == RunStatus::Running {
            return Err(StoreError::Invalid("a run cannot finish as RUNNING".into()));
        }
        let output = end.output.as_ref().map(json_text);
        if let Some(o) = &output {
            check_json_size(o, "run output", MAX_RUN_VALUE_BYTES)?;
        }
        let expr = Expr::new()
            .name("#st", "status")
            .value(":running", s(RunStatus::Running.as_str()));
        let (update, expr) = SetRemove::new(expr)
            .raw_set("#st = :end".to_owned())
            .set("endedAt", n(end.at_ms))
            .opt("output", output.map(s))
            .opt("error", end.error.map(s))
            .opt("cause", end.cause.map(s))
            .finish();
        let expr = expr.value(":end", s(end.status.as_str()));
        let updated = self
            .update(
                run_key(org, id),
                &update,
                Some("attribute_exists(pk) AND #st = :running"),
                expr,
            )
            .await?;
        match updated {
            Some(item) => run_from(&item),
            None => match self.run(org, id).await? {
                None => Err(StoreError::not_found("run", id)),
                Some(r) => Err(StoreError::Conflict(format!(
                    "run `{id}` has ended already ({})",
                    r.status.as_str()
                ))),
            },
        }
    }

    async fn reopen_run(&self, org: &str, id: &str) -> Result<RunRecord> {
        let expr = Expr::new()
            .name("#st", "status")
            .name("#ended", "endedAt")
            .name("#output", "output")
            .name("#error", "error")
            .name("#cause", "cause")
            .value(":running", s(RunStatus::Running.as_str()));
        let updated = self
            .update(
                run_key(org, id),
                "SET #st = :running REMOVE #ended, #output, #error, #cause",
                Some("attribute_exists(pk) AND #st <> :running"),
                expr,
            )
            .await?;
        match updated {
            Some(item) => run_from(&item),
            None if self.run(org, id).await?.is_none() => Err(StoreError::not_found("run", id)),
            None => Err(StoreError::Conflict(format!("run `{id}` is running"))),
        }
    }

    async fn put_node_execution(&self, org: &str, run_id: &str, node: NodeExecution) -> Result<()> {
        // The whole item must fit (previews and errors are capped by the caller; check).
        item::check_item_size(
            &Builder::new(
                keys::run(org, run_id),
                keys::node_sk(&node.node_id, &node.step),
            )
            .s("nodeId", &node.node_id)
            .s("step", &node.step)
            .s("status", &node.status)
            .opt_s("outputPreview", node.output_preview.as_deref())
            .opt_s("error", node.error.as_deref())
            .build("node execution")?,
            "node execution",
        )?;
        // The run must exist; its counter orders visits that start in the same millisecond
        // by when they were first put.
        let seq = self
            .update_returning(
                run_key(org, run_id),
                "ADD #seq :one",
                Some("attribute_exists(pk)"),
                Expr::new().name("#seq", "nodeSeq").value(":one", n(1)),
                ReturnValue::UpdatedNew,
            )
            .await?
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        let seq: i64 = Reader::new(&seq, "run").n("nodeSeq")?;
        let running = node.status == "running";
        let (update, mut expr) =
            SetRemove::new(Expr::new().name("#first", "firstSeq").value(":seq", n(seq)))
                .set("nodeId", s(&node.node_id))
                .set("step", s(&node.step))
                .set("status", s(&node.status))
                .set("startedAt", n(node.started_at_ms))
                .opt("endedAt", node.ended_at_ms.map(n))
                .opt("outputPreview", node.output_preview.map(s))
                .opt("error", node.error.map(s))
                .raw_set("#first = if_not_exists(#first, :seq)".to_owned())
                .finish();
        // A start does not replace a success (a condition failure is that no-op).
        let condition = running.then(|| {
            expr = std::mem::take(&mut expr)
                .name("#st", "status")
                .value(":succeeded", s("succeeded"));
            "attribute_not_exists(#st) OR #st <> :succeeded"
        });
        self.update_returning(
            item::key(
                keys::run(org, run_id),
                keys::node_sk(&node.node_id, &node.step),
            ),
            &update,
            condition,
            expr,
            ReturnValue::None,
        )
        .await?;
        Ok(())
    }

    async fn list_node_executions(&self, org: &str, run_id: &str) -> Result<Vec<NodeExecution>> {
        let items = self
            .query_all(&Query::table(
                keys::run(org, run_id),
                Some(keys::NODE_PREFIX),
            ))
            .await?;
        if items.is_empty() {
            // No visits: is there a run at all?
            let exists = self
                .query_page(
                    &Query::table(keys::run(org, run_id), Some(keys::RUN_SK)).keys_only(),
                    1,
                    None,
                )
                .await?;
            if exists.0.is_empty() {
                return Err(StoreError::not_found("run", run_id));
            }
            return Ok(Vec::new());
        }
        let mut nodes = items.iter().map(node_from).collect::<Result<Vec<_>>>()?;
        nodes.sort_by_key(|(seq, n)| (n.started_at_ms, *seq));
        Ok(nodes.into_iter().map(|(_, n)| n).collect())
    }
}
