//! The engine's Task resources in embedded mode.

use crate::store::{DatasetRecord, LocalStore};
use cm_asl::AslError;
use cm_engine::{Resources, TaskCall, TaskHandler, resources::BoxFuture};
use cm_nodes::{NodeEvent, NodeRunner};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Names the compiled state machines use for the node-runner, plugins and datasets.
#[derive(Debug, Clone)]
pub struct ResourceOptions {
    /// The node-runner's function name (`CompileOptions::node_runner_function`).
    pub node_runner_function: String,
    /// The function name plugins compile to when they have no Lambda ARN.
    pub plugin_function: String,
    /// The datasets table (`CompileOptions::datasets_table`).
    pub datasets_table: String,
}

impl Default for ResourceOptions {
    fn default() -> Self {
        ResourceOptions {
            node_runner_function: "concertmaster-node-runner".into(),
            plugin_function: "concertmaster-plugin".into(),
            datasets_table: "concertmaster-datasets".into(),
        }
    }
}

/// Runs node events on a [`NodeRunner`] (the local `lambda:invoke` of the node-runner): the
/// payload decodes as a [`NodeEvent`], the answer is `{output, port}`, and a node error fails
/// the Task with the error's name and cause.
#[derive(Debug, Clone)]
pub struct RunnerHandler(pub NodeRunner);

impl TaskHandler for RunnerHandler {
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        let runner = self.0.clone();
        Box::pin(async move {
            let mut event: NodeEvent = serde_json::from_value(call.input).map_err(|e| {
                AslError::new(
                    "ConcertMaster.InvalidInput",
                    format!("the node-runner event does not decode: {e}"),
                )
            })?;
            if event.context.task_token.is_none() {
                event.context.task_token = call.task_token;
            }
            match runner.run(event).await {
                Ok(out) => Ok(json!({"output": out.output, "port": out.port})),
                Err(e) => Err(AslError::new(e.name(), e.cause())),
            }
        })
    }
}

/// `dynamodb:putItem` into the local datasets table.
struct PutItem {
    store: Arc<LocalStore>,
    table: String,
}

/// A DynamoDB attribute value as plain JSON (`{"S": "x"}` → `"x"`, `{"M": {...}}` → object).
fn attribute(v: &Value) -> Result<Value, String> {
    let m = v.as_object().filter(|m| m.len() == 1).ok_or_else(|| {
        format!("{v} is not an attribute value (one of S, N, BOOL, NULL, M, L, SS, NS)")
    })?;
    let (ty, inner) = m.iter().next().ok_or("empty attribute value")?;
    Ok(match (ty.as_str(), inner) {
        ("S", Value::String(s)) => Value::String(s.clone()),
        ("N", Value::String(n)) => {
            serde_json::from_str(n).map_err(|_| format!("N value `{n}` is not a number"))?
        }
        ("BOOL", Value::Bool(b)) => Value::Bool(*b),
        ("NULL", Value::Bool(true)) => Value::Null,
        ("M", Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, v)| attribute(v).map(|v| (k.clone(), v)))
                .collect::<Result<Map<String, Value>, String>>()?,
        ),
        ("L", Value::Array(items)) => {
            Value::Array(items.iter().map(attribute).collect::<Result<_, _>>()?)
        }
        ("SS" | "NS", Value::Array(items)) => Value::Array(items.clone()),
        _ => return Err(format!("unsupported attribute value {v}")),
    })
}

impl TaskHandler for PutItem {
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        let validation = |m: String| AslError::new("DynamoDB.ValidationException", m);
        let r = (|| {
            let table = call
                .input
                .get("TableName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if table != self.table {
                return Err(AslError::new(
                    "DynamoDB.ResourceNotFoundException",
                    format!(
                        "Requested resource not found: Table: {table} not found (the embedded engine has `{}`)",
                        self.table
                    ),
                ));
            }
            let item = call
                .input
                .get("Item")
                .ok_or_else(|| validation("PutItem needs an Item".into()))?;
            let plain = attribute(&json!({"M": item})).map_err(validation)?;
            let text = |k: &str| plain.get(k).and_then(Value::as_str).map(str::to_owned);
            let (Some(dataset), Some(key)) = (text("pk"), text("sk")) else {
                return Err(validation("One of the required keys was not given a value: the item needs string attributes pk and sk".into()));
            };
            let data = match plain.get("data") {
                Some(Value::String(s)) => {
                    serde_json::from_str(s).unwrap_or(Value::String(s.clone()))
                }
                Some(other) => other.clone(),
                None => Value::Null,
            };
            let record = DatasetRecord {
                dataset,
                key,
                data,
                run_id: text("runId").unwrap_or_default(),
                node_id: text("nodeId").unwrap_or_default(),
                stored_at: text("storedAt").unwrap_or_default(),
            };
            self.store.put_record(&record, &plain).map_err(|e| {
                AslError::new("DynamoDB.InternalServerErrorException", e.to_string())
            })?;
            Ok(json!({}))
        })();
        Box::pin(async move { r })
    }
}

/// `sqs:sendMessage` onto a local queue (the queue name is the URL's last segment).
struct SendMessage {
    store: Arc<LocalStore>,
}

impl TaskHandler for SendMessage {
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        let r = (|| {
            let url = call
                .input
                .get("QueueUrl")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let queue = url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if queue.is_empty() {
                return Err(AslError::new(
                    "SQS.InvalidAddressException",
                    format!("`{url}` is not a queue URL"),
                ));
            }
            let body = match call.input.get("MessageBody") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => {
                    return Err(AslError::new(
                        "SQS.MissingParameterException",
                        "The request must contain the parameter MessageBody.",
                    ));
                }
                Some(other) => other.to_string(),
            };
            let fifo = queue.ends_with(".fifo");
            let group = call.input.get("MessageGroupId").and_then(Value::as_str);
            if fifo && group.is_none() {
                return Err(AslError::new(
                    "SQS.MissingParameterException",
                    format!(
                        "The request must contain the parameter MessageGroupId (queue {queue} is FIFO)."
                    ),
                ));
            }
            // FIFO queues deduplicate; without an explicit id, by the invocation (a Task
            // re-run after a crash sends once).
            let dedup = call
                .input
                .get("MessageDeduplicationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| Some(call.invocation_id.clone()));
            let delay = call
                .input
                .get("DelaySeconds")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let id = self
                .store
                .send(queue, &body, group, dedup.as_deref(), delay.min(900) as u32)
                .map_err(|e| AslError::new("SQS.AmazonSQSException", e.to_string()))?;
            Ok(json!({"MessageId": id}))
        })();
        Box::pin(async move { r })
    }
}

/// The Task resources of the embedded engine: node handlers, plugins, datasets and queues.
pub fn resources(store: Arc<LocalStore>, runner: NodeRunner, opts: &ResourceOptions) -> Resources {
    Resources::new()
        .function(
            opts.node_runner_function.clone(),
            RunnerHandler(runner.clone()),
        )
        .function(opts.plugin_function.clone(), RunnerHandler(runner))
        .resource(
            "arn:aws:states:::dynamodb:putItem",
            PutItem {
                store: store.clone(),
                table: opts.datasets_table.clone(),
            },
        )
        .resource("arn:aws:states:::sqs:sendMessage", SendMessage { store })
}

/// Decides a pending approval: records the decision, then resumes the waiting run through
/// `SendTaskSuccess` with the `approved` or `rejected` port. If the engine refuses (the run
/// ended, e.g. it timed out) the approval goes back to pending and the engine's error is
/// returned.
pub async fn decide_approval(
    store: &LocalStore,
    engine: &cm_engine::Engine,
    id: &str,
    approved: bool,
    comment: &str,
    decided_by: &str,
) -> Result<crate::store::Approval, crate::store::LocalError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let payload = cm_nodes::approval::decision_payload(approved, comment, decided_by, now);
    let approval = store.decide(id, approved, &payload["output"])?;
    if let Err(e) = engine
        .send_task_success(&approval.request.task_token, payload)
        .await
    {
        store.reopen(id)?;
        return Err(e.into());
    }
    Ok(approval)
}
