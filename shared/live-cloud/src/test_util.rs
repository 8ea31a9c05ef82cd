//! In-memory fakes of this crate's ports, for the functions' tests (feature `test-util`):
//! [`FakePoster`] records frames and plays gone or failing connections; [`Setup`] and the
//! fixture helpers drive the functions' JSON fixtures.

use crate::poster::{PostError, Poster};
use cm_store::Connection;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct PosterState {
    sent: Vec<(String, Vec<u8>)>,
    gone: HashSet<String>,
    failing: HashSet<String>,
    hints: Vec<String>,
}

/// A [`Poster`] that records what it delivers. Connections marked [`FakePoster::gone`] answer
/// [`PostError::Gone`], those marked [`FakePoster::failing`] [`PostError::Other`]; neither
/// records the frame.
#[derive(Debug, Default)]
pub struct FakePoster {
    state: Mutex<PosterState>,
}

impl FakePoster {
    /// A poster delivering to every connection.
    pub fn new() -> FakePoster {
        FakePoster::default()
    }

    fn state(&self) -> MutexGuard<'_, PosterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connection `id` answers `410 Gone` from now on.
    pub fn gone(&self, id: &str) {
        self.state().gone.insert(id.to_owned());
    }

    /// Posts to connection `id` fail (not gone) from now on.
    pub fn failing(&self, id: &str) {
        self.state().failing.insert(id.to_owned());
    }

    /// Every delivered frame, in order: (connection id, bytes).
    pub fn sent(&self) -> Vec<(String, Vec<u8>)> {
        self.state().sent.clone()
    }

    /// The frames delivered to `id`, parsed as JSON (`null` for a frame that is not JSON).
    pub fn frames(&self, id: &str) -> Vec<Value> {
        self.state()
            .sent
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, b)| serde_json::from_slice(b).unwrap_or(Value::Null))
            .collect()
    }

    /// Every delivered frame per connection, parsed as JSON.
    pub fn by_connection(&self) -> HashMap<String, Vec<Value>> {
        let mut out: HashMap<String, Vec<Value>> = HashMap::new();
        for (c, b) in &self.state().sent {
            out.entry(c.clone())
                .or_default()
                .push(serde_json::from_slice(b).unwrap_or(Value::Null));
        }
        out
    }

    /// The endpoints hinted so far.
    pub fn hints(&self) -> Vec<String> {
        self.state().hints.clone()
    }
}

impl Poster for FakePoster {
    async fn post(&self, connection_id: &str, data: Vec<u8>) -> std::result::Result<(), PostError> {
        let mut st = self.state();
        if st.gone.contains(connection_id) {
            return Err(PostError::Gone);
        }
        if st.failing.contains(connection_id) {
            return Err(PostError::Other(format!("{connection_id} fails (fake)")));
        }
        st.sent.push((connection_id.to_owned(), data));
        Ok(())
    }

    fn endpoint_hint(&self, endpoint: &str) {
        self.state().hints.push(endpoint.to_owned());
    }
}

// ---------------------------------------------------------------- fixtures

/// A run of a fixture's setup (the fields a live-status test cares about; the rest default).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupRun {
    /// Organisation.
    pub org: String,
    /// Run id.
    pub id: String,
    /// Workflow id.
    pub workflow_id: String,
    /// `RUNNING` (default), `SUCCEEDED`, ….
    #[serde(default)]
    pub status: Option<cm_store::RunStatus>,
    /// Started (ms).
    pub started_at_ms: i64,
    /// Ended (ms).
    #[serde(default)]
    pub ended_at_ms: Option<i64>,
    /// Output.
    #[serde(default)]
    pub output: Option<Value>,
    /// Error name.
    #[serde(default)]
    pub error: Option<String>,
    /// Error cause.
    #[serde(default)]
    pub cause: Option<String>,
}

impl SetupRun {
    /// The run record.
    pub fn record(&self) -> cm_store::RunRecord {
        cm_store::RunRecord {
            id: self.id.clone(),
            workflow_id: self.workflow_id.clone(),
            workflow_version: 1,
            execution_arn: format!(
                "arn:aws:states:us-east-1:123456789012:execution:{}.{}:{}",
                self.org, self.workflow_id, self.id
            ),
            status: self.status.unwrap_or(cm_store::RunStatus::Running),
            trigger: "trigger.manual".into(),
            input: serde_json::json!({}),
            output: self.output.clone(),
            error: self.error.clone(),
            cause: self.cause.clone(),
            idempotency_key: None,
            started_by: "ada".into(),
            started_at_ms: self.started_at_ms,
            ended_at_ms: self.ended_at_ms,
            retry_of: None,
        }
    }
}

/// A node execution of a fixture's setup.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupNode {
    /// Organisation.
    pub org: String,
    /// Run id.
    pub run_id: String,
    /// The visit.
    pub node: cm_store::NodeExecution,
}

/// What a fixture stores before its event: workflows (`[org, id]`), runs, node executions,
/// connections, subscriptions (`[connection, topic]`), and connections the poster plays as
/// gone or failing.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Setup {
    /// `[org, workflow id]`.
    pub workflows: Vec<(String, String)>,
    /// Runs.
    pub runs: Vec<SetupRun>,
    /// Node executions.
    pub nodes: Vec<SetupNode>,
    /// Connections (recorded in the store).
    pub connections: Vec<Connection>,
    /// `[connection id, topic]`.
    pub subscriptions: Vec<(String, String)>,
    /// Connections that answer `410 Gone`.
    pub gone: Vec<String>,
    /// Connections whose posts fail.
    pub failing: Vec<String>,
}

impl Setup {
    /// Stores the setup in `store` and `poster`.
    pub async fn apply<S>(&self, store: &S, poster: &FakePoster) -> std::result::Result<(), String>
    where
        S: cm_store::WorkflowStore + cm_store::RunStore + cm_store::ConnectionStore,
    {
        let e = |what: &str, err: cm_store::StoreError| format!("setup {what}: {err}");
        for (org, id) in &self.workflows {
            let write = cm_store::WorkflowWrite {
                name: id.clone(),
                description: String::new(),
                definition: serde_json::json!({"id": id}),
                is_template: false,
                actor: "ada".into(),
                at_ms: 1,
            };
            store
                .create_workflow(org, id, write)
                .await
                .map_err(|x| e("workflow", x))?;
        }
        for r in &self.runs {
            store
                .create_run(&r.org, r.record())
                .await
                .map_err(|x| e("run", x))?;
        }
        for n in &self.nodes {
            store
                .put_node_execution(&n.org, &n.run_id, n.node.clone())
                .await
                .map_err(|x| e("node", x))?;
        }
        for c in &self.connections {
            store
                .put_connection(c.clone())
                .await
                .map_err(|x| e("connection", x))?;
        }
        for (c, topic) in &self.subscriptions {
            store
                .subscribe(c, topic)
                .await
                .map_err(|x| e("subscription", x))?;
        }
        for c in &self.gone {
            poster.gone(c);
        }
        for c in &self.failing {
            poster.failing(c);
        }
        Ok(())
    }
}

/// Expands `{"$repeat": [text, n]}` anywhere in `v` into `text` repeated `n` times, and
/// `{"$concat": [part, …]}` into the parts (strings, after expansion) joined: large values
/// without large fixture files.
pub fn expand(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            if let (1, Some(Value::Array(a))) = (m.len(), m.get("$repeat"))
                && let [Value::String(s), Value::Number(n)] = a.as_slice()
            {
                let n = usize::try_from(n.as_u64().unwrap_or(0)).unwrap_or(0);
                return Value::String(s.repeat(n));
            }
            if let (1, Some(Value::Array(parts))) = (m.len(), m.get("$concat")) {
                let joined: String = parts
                    .iter()
                    .map(|p| match expand(p.clone()) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect();
                return Value::String(joined);
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, expand(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(expand).collect()),
        other => other,
    }
}

/// Whether `actual` matches `expected`: objects by the expected keys only (a subset), arrays
/// element by element with the same length, anything else by equality. In an expected object,
/// `<key>Contains: "text"` checks that `actual[key]` is a string containing `text`, and
/// `<key>MaxBytes: n` that it is a string of at most `n` bytes. `Err` says where it differs.
pub fn json_matches(expected: &Value, actual: &Value) -> std::result::Result<(), String> {
    fn at(path: &str, key: &str) -> String {
        format!("{path}/{key}")
    }
    fn go(path: &str, e: &Value, a: &Value) -> std::result::Result<(), String> {
        match (e, a) {
            (Value::Object(em), Value::Object(am)) => {
                for (k, ev) in em {
                    if let Some(base) = k.strip_suffix("Contains")
                        && !em.contains_key(base)
                    {
                        let text = am.get(base).and_then(Value::as_str).unwrap_or_default();
                        let want = ev.as_str().unwrap_or_default();
                        if !text.contains(want) {
                            return Err(format!(
                                "{}: {text:?} does not contain {want:?}",
                                at(path, base)
                            ));
                        }
                        continue;
                    }
                    if let Some(base) = k.strip_suffix("MaxBytes")
                        && !em.contains_key(base)
                    {
                        let Some(text) = am.get(base).and_then(Value::as_str) else {
                            return Err(format!("{}: not a string", at(path, base)));
                        };
                        let max = usize::try_from(ev.as_u64().unwrap_or(0)).unwrap_or(0);
                        if text.len() > max {
                            return Err(format!(
                                "{}: {} bytes > {max}",
                                at(path, base),
                                text.len()
                            ));
                        }
                        continue;
                    }
                    let av = am.get(k).unwrap_or(&Value::Null);
                    go(&at(path, k), ev, av)?;
                }
                Ok(())
            }
            (Value::Array(ea), Value::Array(aa)) => {
                if ea.len() != aa.len() {
                    return Err(format!(
                        "{path}: {} items expected, got {}: {}",
                        ea.len(),
                        aa.len(),
                        Value::Array(aa.clone())
                    ));
                }
                for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                    go(&at(path, &i.to_string()), ev, av)?;
                }
                Ok(())
            }
            _ if e == a => Ok(()),
            _ => Err(format!("{path}: expected {e}, got {a}")),
        }
    }
    go("", expected, actual)
}

/// Checks `expect` = `{org: {topic: [connection ids]}}` against `store.subscribers`.
pub async fn check_subscribers<S: cm_store::ConnectionStore>(
    store: &S,
    expect: &Value,
) -> std::result::Result<(), String> {
    for (org, topics) in expect.as_object().into_iter().flatten() {
        for (topic, ids) in topics.as_object().into_iter().flatten() {
            let got: Vec<Value> = store
                .subscribers(org, topic)
                .await
                .map_err(|e| format!("subscribers({org}, {topic}): {e}"))?
                .into_iter()
                .map(|c| Value::String(c.id))
                .collect();
            json_matches(ids, &Value::Array(got))
                .map_err(|e| format!("subscribers of {org}/{topic}: {e}"))?;
        }
    }
    Ok(())
}

/// Checks `expect` = `{connection id: [frames]}` against what `poster` delivered (each frame
/// by [`json_matches`]); connections not named must have received nothing.
pub fn check_frames(poster: &FakePoster, expect: &Value) -> std::result::Result<(), String> {
    let got = poster.by_connection();
    let want = expect.as_object().cloned().unwrap_or_default();
    for (c, frames) in &got {
        if !want.contains_key(c) {
            return Err(format!(
                "unexpected frames to {c}: {}",
                Value::Array(frames.clone())
            ));
        }
    }
    for (c, frames) in &want {
        let actual = Value::Array(got.get(c).cloned().unwrap_or_default());
        json_matches(frames, &actual).map_err(|e| format!("frames to {c}{e}"))?;
    }
    Ok(())
}

/// Connection `id` as recorded in `store`, if it is and belongs to `org`.
pub async fn recorded_connection<S: cm_store::ConnectionStore>(
    store: &S,
    id: &str,
    org: &str,
) -> Option<Connection> {
    store
        .get_connection(id)
        .await
        .ok()
        .flatten()
        .filter(|c| c.org == org)
}

/// The JSON fixtures of `dir` (`*.json`, sorted by name), `$repeat` expanded: (file name,
/// fixture). Every fixture must have a `description`.
pub fn fixtures(dir: &std::path::Path) -> Vec<(String, Value)> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read(&f).unwrap_or_default();
            let v: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
            assert!(
                v["description"].is_string(),
                "{name}: not JSON, or no description"
            );
            (name, expand(v))
        })
        .collect()
}
