//! The execution API: state machines, StartExecution / Describe / Stop / History / List /
//! Redrive, task callbacks, and a live event stream. Shaped like Step Functions' API so that
//! the HTTP layer can serve either this engine or AWS.

use crate::error::EngineError;
use crate::history::HistoryEvent;
use crate::interp::{Exec, Failure, Replay, reads_context};
use crate::resources::{BoxFuture, Resources, START_EXECUTION, TaskCall};
use crate::store::memory::MemoryStore;
use crate::store::sqlite::{Durability, SqliteStore};
use crate::store::{
    Close, Created, ExecutionRecord, ListQuery, MachineType, StateMachineRecord, Status, Store,
};
use crate::time::{Clock, iso};
use cm_asl::AslError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Region in the ARNs the engine makes.
pub const REGION: &str = "us-east-1";
/// Account in the ARNs the engine makes.
pub const ACCOUNT: &str = "000000000000";

/// Step Functions' limit on execution input and task output (256 KiB).
const MAX_PAYLOAD: usize = 262_144;

/// Where the engine keeps its state.
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// In memory: fast, gone when the process ends (tests, benchmarks, `asl run`).
    #[default]
    Memory,
    /// A SQLite file (created if missing); RUNNING executions resume when it is reopened.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Commit durability.
        durability: Durability,
    },
}

/// How to build an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where state lives.
    pub store: StoreConfig,
    /// Real or virtual time.
    pub clock: Clock,
    /// What Task states can call.
    pub resources: Resources,
    /// Upper bound on state transitions per execution, so a looping machine cannot run
    /// forever (Step Functions caps a Standard execution's history at 25,000 events). Each
    /// retry of a Task, Parallel or Map counts as a transition.
    pub max_transitions: u64,
    /// How deep child executions (`states:startExecution`) may nest below the execution a
    /// client started, so that a machine that starts itself, directly or through others,
    /// cannot recurse forever: the task that would go deeper fails with
    /// `StepFunctions.ExecutionLimitExceeded`.
    pub max_child_depth: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            store: StoreConfig::Memory,
            clock: Clock::System,
            resources: Resources::new(),
            max_transitions: 25_000,
            max_child_depth: 20,
        }
    }
}

/// Limits the interpreter reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_transitions: u64,
    pub max_child_depth: u32,
}

/// One journaled event of one execution, as the live stream delivers it.
#[derive(Debug, Clone)]
pub struct ExecutionEvent {
    /// The execution.
    pub execution_arn: Arc<str>,
    /// The event.
    pub event: HistoryEvent,
}

/// Acknowledges a callback answer once it is journaled.
pub(crate) type CallbackAck = oneshot::Sender<Result<(), EngineError>>;

enum TokenMsg {
    Success(Value, CallbackAck),
    Failure(AslError, CallbackAck),
    Heartbeat,
}

struct Running {
    exec: Arc<Exec>,
    abort: tokio::task::AbortHandle,
    handle: Option<tokio::task::JoinHandle<()>>,
    /// The execution as it started (to build its closed record without a store read).
    rec: ExecutionRecord,
    /// Set to the closed record by whoever closes the execution (the run itself or
    /// StopExecution); dropped without a value when the run stops without closing.
    done: watch::Sender<Option<ExecutionRecord>>,
}

impl Inner {
    /// Removes a finished run and tells its waiters how it ended (`None`: it stopped without
    /// closing, e.g. at shutdown; waiters then read the store).
    fn finish(&self, arn: &str, close: Option<&Close>) {
        let Some(entry) = self.lock_running().remove(arn) else {
            return;
        };
        if let Some(c) = close {
            let mut rec = entry.rec;
            rec.status = c.status;
            rec.output = c.output.clone();
            rec.error = c.error.clone();
            rec.cause = c.cause.clone();
            rec.stop_ms = Some(c.stop_ms);
            let _ = entry.done.send(Some(rec));
        }
    }
}

/// Engine internals shared by the API and every running execution.
pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub resources: Resources,
    pub config: Limits,
    sqlite: Option<Arc<SqliteStore>>,
    tokens: Mutex<HashMap<String, mpsc::UnboundedSender<TokenMsg>>>,
    events: broadcast::Sender<Arc<ExecutionEvent>>,
    running: Mutex<HashMap<Arc<str>, Running>>,
    seq: AtomicU64,
    rng: AtomicU64,
    /// Current state machine records, by ARN (saves a store read per StartExecution).
    machines: Mutex<HashMap<String, Arc<StateMachineRecord>>>,
    /// Parsed definitions by (ARN, revision).
    definitions: Mutex<HashMap<(String, u64), Arc<Definition>>>,
}

/// A parsed definition and what the interpreter needs to know about it up front.
pub(crate) struct Definition {
    pub value: Value,
    pub reads_context: bool,
}

/// A task token: 128 random bits, hex.
pub(crate) fn new_token() -> String {
    let mut b = [0u8; 16];
    // getrandom only fails when the OS has no entropy source; then fall back to the clock
    // (tokens are then guessable, so say so in the log-free way available: a marker prefix).
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// FNV-1a: a stable hash for deterministic child execution names.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Inner {
    fn lock_running(&self) -> MutexGuard<'_, HashMap<Arc<str>, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_tokens(&self) -> MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<TokenMsg>>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when someone listens to the live stream (events are cloned only then).
    pub(crate) fn publishing(&self) -> bool {
        self.events.receiver_count() > 0
    }

    pub(crate) fn publish(&self, arn: &Arc<str>, events: Vec<HistoryEvent>) {
        for event in events {
            let _ = self.events.send(Arc::new(ExecutionEvent {
                execution_arn: arn.clone(),
                event,
            }));
        }
    }

    /// A pseudo-random number for retry jitter (xorshift; not for secrets).
    pub(crate) fn random_u64(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x
    }

    /// Calls a Task resource, waits for its callback when it has a token, and enforces
    /// `TimeoutSeconds` and `HeartbeatSeconds`.
    ///
    /// A callback's answer comes with `Some(ack)`: the caller acknowledges it once the result
    /// is journaled, which is when SendTaskSuccess / SendTaskFailure return.
    pub(crate) async fn run_task(
        self: Arc<Self>,
        call: TaskCall,
        deadline_ms: Option<i64>,
        heartbeat_ms: Option<i64>,
    ) -> (Result<Value, AslError>, Option<CallbackAck>) {
        let token = call.task_token.clone();
        let mut rx = token.as_ref().map(|t| {
            let (tx, rx) = mpsc::unbounded_channel();
            self.lock_tokens().insert(t.clone(), tx);
            rx
        });
        // The token is withdrawn however this ends, including when the execution is stopped
        // and this future dropped.
        let _withdraw = token.clone().map(|t| TokenGuard {
            inner: self.clone(),
            token: t,
        });
        let invoke: BoxFuture<Result<Value, AslError>> = match self.resources.invoke(call) {
            Ok(f) => f,
            Err(call) => Box::pin(self.clone().start_child(*call)),
        };
        let clock = self.clock.clone();
        let work = async {
            let result = invoke.await;
            let Some(rx) = rx.as_mut() else {
                return (result, None);
            };
            // A callback resource's own result only matters if it failed.
            if let Err(e) = result {
                return (Err(e), None);
            }
            let mut beat_at = heartbeat_ms.map(|h| clock.now_ms().saturating_add(h));
            loop {
                let heartbeat = async {
                    match beat_at {
                        Some(at) => clock.deadline(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(TokenMsg::Heartbeat) => {
                            beat_at = heartbeat_ms.map(|h| clock.now_ms().saturating_add(h));
                        }
                        Some(TokenMsg::Success(v, ack)) => return (Ok(v), Some(ack)),
                        Some(TokenMsg::Failure(e, ack)) => return (Err(e), Some(ack)),
                        None => return (Err(AslError::new("States.Runtime", "the callback channel closed")), None),
                    },
                    () = heartbeat => {
                        return (Err(AslError::new("States.HeartbeatTimeout", "The task did not send a heartbeat within HeartbeatSeconds.")), None);
                    }
                }
            }
        };
        match deadline_ms {
            Some(at) => {
                tokio::select! {
                    r = work => r,
                    () = self.clock.deadline(at) => (Err(AslError::new("States.Timeout", "The task did not finish within TimeoutSeconds.")), None),
                }
            }
            None => work.await,
        }
    }

    /// `arn:aws:states:::states:startExecution[.sync[:2]]`: a child execution in this engine.
    /// Without a `Name` the child's name is derived from the invocation, so a task invoked
    /// again after a restart finds its child instead of starting a second one.
    async fn start_child(self: Arc<Self>, call: TaskCall) -> Result<Value, AslError> {
        let p = &call.input;
        let Some(sm) = p.get("StateMachineArn").and_then(Value::as_str) else {
            return Err(AslError::runtime(
                "The field 'StateMachineArn' is required by states:startExecution.",
            ));
        };
        let input = match p.get("Input") {
            None => json!({}),
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                AslError::new("States.Runtime", format!("Input is not JSON text: {e}"))
            })?,
            Some(v) => v.clone(),
        };
        let name = match p.get("Name").and_then(Value::as_str) {
            Some(n) => n.to_owned(),
            None => format!("child-{:016x}", fnv(&call.invocation_id)),
        };
        // The new child's depth: one more than the number of ancestors of its parent.
        let mut depth = 1u32;
        let mut up = Some(call.execution_arn.clone());
        while let Some(arn) = up {
            let parent = self
                .store
                .execution(&arn)
                .map_err(|e| AslError::runtime(e.to_string()))?
                .and_then(|r| r.parent);
            if parent.is_some() {
                depth += 1;
            }
            if depth > self.config.max_child_depth {
                return Err(AslError::new(
                    "StepFunctions.ExecutionLimitExceeded",
                    format!(
                        "A child execution cannot be started more than {} levels below the execution a client started.",
                        self.config.max_child_depth
                    ),
                ));
            }
            up = parent;
        }
        let engine = Engine {
            inner: self.clone(),
        };
        let started = match engine
            .start_execution_with_parent(sm, Some(name), input, Some(call.execution_arn.clone()))
            .await
        {
            Ok(s) => s,
            // The same task invoked again (after a restart) finds the child it started before;
            // a name taken by another execution's child is StartExecution's error, as on AWS.
            Err(EngineError::ExecutionAlreadyExists { arn, .. })
                if self
                    .store
                    .execution(&arn)
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.parent.as_deref() == Some(call.execution_arn.as_str())) =>
            {
                StartedExecution {
                    execution_arn: arn,
                    start_ms: self.clock.now_ms(),
                    existing: true,
                }
            }
            Err(e) => {
                return Err(AslError::new(
                    format!("StepFunctions.{}", e.code()),
                    e.to_string(),
                ));
            }
        };
        let base = crate::resources::base_resource(&call.resource);
        let sync =
            call.resource.len() > base.len() && call.resource[base.len()..].starts_with(".sync");
        if !sync || base != START_EXECUTION {
            return Ok(json!({
                "ExecutionArn": started.execution_arn,
                "StartDate": iso(started.start_ms),
            }));
        }
        let done = engine
            .wait(&started.execution_arn)
            .await
            .map_err(|e| AslError::new("States.Runtime", e.to_string()))?;
        let v2 = call.resource.ends_with(".sync:2");
        let mut out = done.to_aws_json();
        if v2 {
            out["Input"] = done.input.clone();
            out["Output"] = done.output.clone().unwrap_or(Value::Null);
        }
        let obj = out.as_object().cloned().unwrap_or_default();
        // .sync returns DescribeExecution's fields with capitalised names.
        let mut cap = serde_json::Map::new();
        for (k, v) in obj {
            let mut c = k.chars();
            let key = c
                .next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default();
            cap.insert(key, v);
        }
        let out = Value::Object(cap);
        match done.status {
            Status::Succeeded => Ok(out),
            _ => Err(AslError::new(
                "States.TaskFailed",
                cm_asl::payload::compact(&out),
            )),
        }
    }
}

/// Removes a task token from the registry when dropped.
struct TokenGuard {
    inner: Arc<Inner>,
    token: String,
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        self.inner.lock_tokens().remove(&self.token);
    }
}

/// What StartExecution returns.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedExecution {
    /// The execution.
    pub execution_arn: String,
    /// When it started.
    pub start_ms: i64,
    /// True when an execution with this name and input was already running (idempotent
    /// start) and was returned instead of a new one.
    pub existing: bool,
}

/// One page of executions.
#[derive(Debug, Clone)]
pub struct ExecutionPage {
    /// Newest first.
    pub executions: Vec<ExecutionRecord>,
    /// Pass back to get the next page.
    pub next_token: Option<String>,
}

/// One page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// Events in order (or reverse order).
    pub events: Vec<HistoryEvent>,
    /// Pass back to get the next page.
    pub next_token: Option<String>,
}

/// A history request.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    /// At most this many (1–1000; default 100).
    pub max_results: usize,
    /// From a previous page.
    pub next_token: Option<&'a str>,
    /// Newest first.
    pub reverse: bool,
}

impl Default for HistoryQuery<'_> {
    fn default() -> Self {
        HistoryQuery {
            max_results: 100,
            next_token: None,
            reverse: false,
        }
    }
}

impl ExecutionRecord {
    /// DescribeExecution's JSON (`input`/`output` as JSON text, like AWS).
    pub fn to_aws_json(&self) -> Value {
        let mut v = json!({
            "executionArn": self.arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.status.as_str(),
            "startDate": iso(self.start_ms),
            "input": cm_asl::payload::compact(&self.input),
            "inputDetails": {"included": true},
            "redriveCount": self.redrive_count,
        });
        if let Some(stop) = self.stop_ms {
            v["stopDate"] = json!(iso(stop));
        }
        if let Some(o) = &self.output {
            v["output"] = json!(cm_asl::payload::compact(o));
            v["outputDetails"] = json!({"included": true});
        }
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        if let Some(c) = &self.cause {
            v["cause"] = json!(c);
        }
        if let Some(p) = &self.parent {
            v["parentExecutionArn"] = json!(p);
        }
        let redrivable = self.machine_type == MachineType::Standard
            && matches!(
                self.status,
                Status::Failed | Status::TimedOut | Status::Aborted
            );
        v["redriveStatus"] = json!(if redrivable {
            "REDRIVABLE"
        } else {
            "NOT_REDRIVABLE"
        });
        v
    }
}

/// The embedded engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("clock", &self.inner.clock)
            .field("resources", &self.inner.resources)
            .finish()
    }
}

/// Checks a state machine or execution name (Step Functions' rules: 1–80 characters, no
/// whitespace, brackets, wildcards, control characters or `"#%\^|~`$&,;:/`).
pub fn check_name(name: &str) -> Result<(), EngineError> {
    let bad = |reason: &str| {
        Err(EngineError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() || name.chars().count() > 80 {
        return bad("a name must be 1 to 80 characters long");
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(*c))
    {
        return bad(&format!("the character {c:?} is not allowed"));
    }
    Ok(())
}

impl Engine {
    /// Opens an engine; with a SQLite store, executions left RUNNING resume at once. Must be
    /// called inside a tokio runtime.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let (store, sqlite): (Arc<dyn Store>, _) = match &config.store {
            StoreConfig::Memory => (Arc::new(MemoryStore::new()), None),
            StoreConfig::Sqlite { path, durability } => {
                let s = Arc::new(SqliteStore::open(path, *durability)?);
                (s.clone(), Some(s))
            }
        };
        let (events, _) = broadcast::channel(4096);
        let seed = u64::from_le_bytes(new_token().as_bytes()[..8].try_into().unwrap_or([7; 8])) | 1;
        let inner = Arc::new(Inner {
            seq: AtomicU64::new(store.max_seq()?),
            store,
            sqlite,
            clock: config.clock,
            resources: config.resources,
            config: Limits {
                max_transitions: config.max_transitions,
                max_child_depth: config.max_child_depth,
            },
            tokens: Mutex::new(HashMap::new()),
            events,
            running: Mutex::new(HashMap::new()),
            rng: AtomicU64::new(seed),
            machines: Mutex::new(HashMap::new()),
            definitions: Mutex::new(HashMap::new()),
        });
        let engine = Engine { inner };
        engine.resume_all()?;
        Ok(engine)
    }

    /// An in-memory engine with these resources on the system clock.
    pub async fn in_memory(resources: Resources) -> Engine {
        let config = EngineConfig {
            resources,
            ..EngineConfig::default()
        };
        // The memory store cannot fail to open.
        match Engine::open(config).await {
            Ok(e) => e,
            Err(e) => unreachable!("the memory store failed to open: {e}"),
        }
    }

    /// The clock the engine runs on.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn resume_all(&self) -> Result<(), EngineError> {
        // Newest first: a child execution is always newer than its parent, so it is running
        // again before the parent can reach its `.sync` task and wait for it (waiting for an
        // execution that is RUNNING in the store but not yet resumed would see it unfinished).
        for rec in self.inner.store.running()?.into_iter().rev() {
            let definition = self.definition_of(&rec)?;
            let events = self.inner.store.events(rec.seq, 0, usize::MAX, false)?;
            let next_id = events.last().map_or(1, |e| e.id + 1);
            let replay = Replay::from_events(&events, false);
            self.spawn(rec, definition, replay, next_id);
        }
        Ok(())
    }

    fn definition_of(&self, rec: &ExecutionRecord) -> Result<Arc<Definition>, EngineError> {
        self.definition(&rec.state_machine_arn, rec.revision)
    }

    /// A revision's parsed definition (cached).
    fn definition(&self, arn: &str, revision: u64) -> Result<Arc<Definition>, EngineError> {
        let key = (arn.to_owned(), revision);
        if let Some(d) = lock(&self.inner.definitions).get(&key) {
            return Ok(d.clone());
        }
        let text = self.inner.store.definition(arn, revision)?.ok_or_else(|| {
            EngineError::StateMachineDoesNotExist(format!("{arn} revision {revision}"))
        })?;
        let value: Value = crate::store::parse_json(&text).map_err(|e| {
            EngineError::Store(crate::store::StoreError::Corrupt(format!(
                "definition of {arn}: {e}"
            )))
        })?;
        let d = Arc::new(Definition {
            reads_context: reads_context(&value),
            value,
        });
        lock(&self.inner.definitions).insert(key, d.clone());
        Ok(d)
    }

    /// The ARN of the state machine called `name`.
    pub fn state_machine_arn(name: &str) -> String {
        format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
    }

    /// Creates a state machine, or updates it (a new revision; running executions keep the
    /// revision they started with). The definition is validated first.
    pub async fn create_state_machine(
        &self,
        name: &str,
        definition: &Value,
        machine_type: MachineType,
    ) -> Result<StateMachineRecord, EngineError> {
        check_name(name)?;
        if cm_asl::payload::depth(definition) > cm_asl::payload::MAX_DEPTH {
            return Err(EngineError::InvalidDefinition {
                path: "/".into(),
                message: format!(
                    "the definition is nested more than {} levels deep",
                    cm_asl::payload::MAX_DEPTH
                ),
            });
        }
        crate::validate::definition(definition)?;
        let arn = Engine::state_machine_arn(name);
        let existing = self.inner.store.state_machine(&arn)?;
        // Identical definition and type: nothing to do (no new revision).
        if let Some(e) = &existing
            && e.machine_type == machine_type
            && crate::store::parse_json(&e.definition).ok().as_ref() == Some(definition)
        {
            return Ok(e.clone());
        }
        let now = self.inner.clock.now_ms();
        let rec = StateMachineRecord {
            arn,
            name: name.to_owned(),
            machine_type,
            definition: cm_asl::payload::compact(definition),
            revision: existing.as_ref().map_or(1, |e| e.revision + 1),
            created_ms: existing.as_ref().map_or(now, |e| e.created_ms),
        };
        self.inner
            .store
            .put_state_machine(rec.clone())
            .wait()
            .await?;
        lock(&self.inner.machines).insert(rec.arn.clone(), Arc::new(rec.clone()));
        Ok(rec)
    }

    /// A state machine.
    pub fn describe_state_machine(&self, arn: &str) -> Result<StateMachineRecord, EngineError> {
        Ok(self.machine(arn)?.as_ref().clone())
    }

    fn machine(&self, arn: &str) -> Result<Arc<StateMachineRecord>, EngineError> {
        if let Some(m) = lock(&self.inner.machines).get(arn) {
            return Ok(m.clone());
        }
        let m = Arc::new(
            self.inner
                .store
                .state_machine(arn)?
                .ok_or_else(|| EngineError::StateMachineDoesNotExist(arn.to_owned()))?,
        );
        lock(&self.inner.machines).insert(arn.to_owned(), m.clone());
        Ok(m)
    }

    /// Every state machine.
    pub fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>, EngineError> {
        Ok(self.inner.store.state_machines()?)
    }

    /// Starts an execution. A caller-supplied `name` makes the call idempotent: the same name
    /// and input while that execution runs returns it (`existing: true`); a closed execution or
    /// different input is `ExecutionAlreadyExists` (as in Step Functions).
    pub async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<String>,
        input: Value,
    ) -> Result<StartedExecution, EngineError> {
        self.start_execution_with_parent(state_machine_arn, name, input, None)
            .await
    }

    async fn start_execution_with_parent(
        &self,
        state_machine_arn: &str,
        name: Option<String>,
        input: Value,
        parent: Option<String>,
    ) -> Result<StartedExecution, EngineError> {
        let sm = self.machine(state_machine_arn)?;
        let name = match name {
            Some(n) => {
                check_name(&n)?;
                n
            }
            None => uuid_like(),
        };
        check_depth(&input, "the input")?;
        let size = cm_asl::payload::compact(&input).len();
        if size > MAX_PAYLOAD {
            return Err(EngineError::InvalidInput(format!(
                "the input is {size} bytes; the limit is {MAX_PAYLOAD}"
            )));
        }
        let definition = self.definition(&sm.arn, sm.revision)?;
        let arn = match sm.machine_type {
            MachineType::Standard => {
                format!(
                    "arn:aws:states:{REGION}:{ACCOUNT}:execution:{}:{name}",
                    sm.name
                )
            }
            MachineType::Express => format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:express:{}:{name}:{}",
                sm.name,
                uuid_like()
            ),
        };
        let now = self.inner.clock.now_ms();
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let rec = ExecutionRecord {
            seq,
            arn: arn.clone(),
            name,
            state_machine_arn: sm.arn.clone(),
            revision: sm.revision,
            machine_type: sm.machine_type,
            status: Status::Running,
            input: input.clone(),
            output: None,
            error: None,
            cause: None,
            start_ms: now,
            stop_ms: None,
            redrive_count: 0,
            parent,
        };
        let started = HistoryEvent {
            id: 1,
            previous_event_id: 0,
            timestamp_ms: now,
            kind: "ExecutionStarted".into(),
            step: String::new(),
            details: json!({
                "input": input,
                "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-local"),
                "stateMachineArn": sm.arn,
            }),
        };
        let published = self.inner.publishing().then(|| vec![started.clone()]);
        match self
            .inner
            .store
            .create_execution(rec.clone(), vec![started])
            .wait()
            .await?
        {
            Created::New => {}
            Created::Existing(existing) => {
                if existing.status == Status::Running && existing.input == input {
                    return Ok(StartedExecution {
                        execution_arn: existing.arn,
                        start_ms: existing.start_ms,
                        existing: true,
                    });
                }
                let reason = if existing.status == Status::Running {
                    "an execution with this name is running with different input".to_owned()
                } else {
                    format!(
                        "an execution with this name already ran ({})",
                        existing.status.as_str()
                    )
                };
                return Err(EngineError::ExecutionAlreadyExists {
                    arn: existing.arn.clone(),
                    reason,
                });
            }
        }
        if let Some(events) = published {
            self.inner.publish(&Arc::from(arn.as_str()), events);
        }
        self.spawn(rec, definition, Replay::default(), 2);
        Ok(StartedExecution {
            execution_arn: arn,
            start_ms: now,
            existing: false,
        })
    }

    fn spawn(
        &self,
        rec: ExecutionRecord,
        definition: Arc<Definition>,
        replay: Replay,
        next_id: u64,
    ) {
        let arn: Arc<str> = Arc::from(rec.arn.as_str());
        let mut execution = json!({
            "Id": rec.arn,
            "Input": rec.input,
            "StartTime": iso(rec.start_ms),
            "Name": rec.name,
            "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-local"),
        });
        if rec.machine_type == MachineType::Standard {
            execution["RedriveCount"] = json!(rec.redrive_count);
        }
        if let Some(at) = replay.redriven_at {
            execution["RedriveTime"] = json!(iso(at));
        }
        let sm_name = rec
            .state_machine_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let base_context = json!({
            "Execution": execution,
            "StateMachine": {"Id": rec.state_machine_arn, "Name": sm_name},
        });
        let exec = Arc::new(Exec::new(
            self.inner.clone(),
            rec.seq,
            arn.clone(),
            base_context,
            definition.reads_context,
            next_id,
            replay,
        ));
        let (done, _) = watch::channel(None);
        let inner = self.inner.clone();
        let task_exec = exec.clone();
        let input = rec.input.clone();
        let started_rec = rec.clone();
        // Registered before the task can finish, so that its cleanup finds the entry.
        let mut running = self.inner.lock_running();
        let handle = tokio::spawn(async move {
            drive(inner, task_exec, definition, input).await;
        });
        running.insert(
            arn,
            Running {
                exec,
                abort: handle.abort_handle(),
                handle: Some(handle),
                rec: started_rec,
                done,
            },
        );
    }

    /// An execution.
    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        self.inner
            .store
            .execution(arn)?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(arn.to_owned()))
    }

    /// Waits until an execution is closed and returns it.
    pub async fn wait(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        let done = self
            .inner
            .lock_running()
            .get(arn)
            .map(|r| r.done.subscribe());
        if let Some(mut done) = done
            && let Ok(closed) = done.wait_for(Option::is_some).await
            && let Some(rec) = closed.as_ref()
        {
            return Ok(rec.clone());
        }
        self.describe_execution(arn)
    }

    /// Stops a running execution: it closes as ABORTED with the given error and cause.
    /// Stopping a closed execution changes nothing and returns it.
    pub async fn stop_execution(
        &self,
        arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<ExecutionRecord, EngineError> {
        let rec = self.describe_execution(arn)?;
        let claimed = {
            let mut running = self.inner.lock_running();
            match running.get_mut(arn) {
                Some(r) => Some((r.exec.clone(), r.abort.clone(), r.handle.take())),
                None => None,
            }
        };
        let Some((exec, abort, handle)) = claimed else {
            return Ok(rec);
        };
        if !exec.claim_close() {
            // It is finishing on its own: report how it ended.
            return self.wait(arn).await;
        }
        abort.abort();
        if let Some(h) = handle {
            let _ = h.await;
        }
        let now = self.inner.clock.now_ms();
        let mut details = serde_json::Map::new();
        if let Some(e) = &error {
            details.insert("error".into(), json!(e));
        }
        if let Some(c) = &cause {
            details.insert("cause".into(), json!(c));
        }
        let close = Close {
            status: Status::Aborted,
            output: None,
            error,
            cause,
            stop_ms: now,
        };
        let closed = exec
            .close("ExecutionAborted", Value::Object(details), close.clone())
            .await;
        self.inner.finish(arn, closed.is_ok().then_some(&close));
        closed?;
        self.describe_execution(arn)
    }

    /// An execution's history, a page at a time.
    pub fn get_execution_history(
        &self,
        arn: &str,
        q: HistoryQuery<'_>,
    ) -> Result<HistoryPage, EngineError> {
        let rec = self.describe_execution(arn)?;
        let limit = q.max_results.clamp(1, 1000);
        let after = match q.next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("h")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| EngineError::InvalidToken(t.to_owned()))?,
        };
        let mut events = self
            .inner
            .store
            .events(rec.seq, after, limit + 1, q.reverse)?;
        let next_token = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|e| format!("h{}", e.id))
        } else {
            None
        };
        Ok(HistoryPage { events, next_token })
    }

    /// Executions, newest first, optionally of one state machine and in one status.
    pub fn list_executions(
        &self,
        state_machine_arn: Option<&str>,
        status: Option<Status>,
        max_results: usize,
        next_token: Option<&str>,
    ) -> Result<ExecutionPage, EngineError> {
        if let Some(sm) = state_machine_arn {
            self.describe_state_machine(sm)?;
        }
        let limit = max_results.clamp(1, 1000);
        let before_seq = match next_token {
            None => None,
            Some(t) => Some(
                t.strip_prefix("e")
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| EngineError::InvalidToken(t.to_owned()))?,
            ),
        };
        let mut executions = self.inner.store.list_executions(&ListQuery {
            state_machine_arn: state_machine_arn.map(str::to_owned),
            status,
            before_seq,
            limit: limit + 1,
        })?;
        let next_token = if executions.len() > limit {
            executions.truncate(limit);
            executions.last().map(|e| format!("e{}", e.seq))
        } else {
            None
        };
        Ok(ExecutionPage {
            executions,
            next_token,
        })
    }

    /// Resumes a FAILED, TIMED_OUT or ABORTED Standard execution from where it failed:
    /// states that completed are not run again; failed ones (and everything after) are.
    pub async fn redrive_execution(&self, arn: &str) -> Result<ExecutionRecord, EngineError> {
        let mut rec = self.describe_execution(arn)?;
        let refuse = |reason: &str| {
            Err(EngineError::ExecutionNotRedrivable {
                arn: arn.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if rec.machine_type == MachineType::Express {
            return refuse("Express executions cannot be redriven");
        }
        if !matches!(
            rec.status,
            Status::Failed | Status::TimedOut | Status::Aborted
        ) {
            return refuse(&format!(
                "only FAILED, TIMED_OUT or ABORTED executions can be redriven; it is {}",
                rec.status.as_str()
            ));
        }
        if self.inner.lock_running().contains_key(arn) {
            return refuse("it is still closing");
        }
        let definition = self.definition_of(&rec)?;
        let events = self.inner.store.events(rec.seq, 0, usize::MAX, false)?;
        let next_id = events.last().map_or(1, |e| e.id + 1);
        let mut replay = Replay::from_events(&events, true);
        rec.redrive_count += 1;
        rec.status = Status::Running;
        let now = self.inner.clock.now_ms();
        replay.redriven_at = Some(now);
        let redriven = HistoryEvent {
            id: next_id,
            previous_event_id: next_id - 1,
            timestamp_ms: now,
            kind: "ExecutionRedriven".into(),
            step: format!("redrive{}", rec.redrive_count),
            details: json!({"redriveCount": rec.redrive_count}),
        };
        let published = self.inner.publishing().then(|| vec![redriven.clone()]);
        self.inner
            .store
            .reopen(rec.seq, rec.redrive_count, vec![redriven])
            .wait()
            .await?;
        if let Some(events) = published {
            self.inner.publish(&Arc::from(arn), events);
        }
        self.spawn(rec, definition, replay, next_id + 1);
        self.describe_execution(arn)
    }

    fn token_sender(&self, token: &str) -> Result<mpsc::UnboundedSender<TokenMsg>, EngineError> {
        self.inner
            .lock_tokens()
            .get(token)
            .cloned()
            .ok_or_else(|| EngineError::TaskDoesNotExist(abbreviate(token)))
    }

    /// Completes a `.waitForTaskToken` task with `output`. Returns once the result is
    /// journaled.
    pub async fn send_task_success(&self, token: &str, output: Value) -> Result<(), EngineError> {
        check_depth(&output, "the task output")?;
        let size = cm_asl::payload::compact(&output).len();
        if size > MAX_PAYLOAD {
            return Err(EngineError::InvalidInput(format!(
                "the task output is {size} bytes; the limit is {MAX_PAYLOAD}"
            )));
        }
        let tx = self.token_sender(token)?;
        let (ack, done) = oneshot::channel();
        tx.send(TokenMsg::Success(output, ack))
            .map_err(|_| EngineError::TaskDoesNotExist(abbreviate(token)))?;
        done.await
            .unwrap_or_else(|_| Err(EngineError::TaskDoesNotExist(abbreviate(token))))
    }

    /// Fails a `.waitForTaskToken` task with `error` (what Retry/Catch match) and `cause`.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        let tx = self.token_sender(token)?;
        let (ack, done) = oneshot::channel();
        let e = AslError::new(error.unwrap_or_default(), cause.unwrap_or_default());
        tx.send(TokenMsg::Failure(e, ack))
            .map_err(|_| EngineError::TaskDoesNotExist(abbreviate(token)))?;
        done.await
            .unwrap_or_else(|_| Err(EngineError::TaskDoesNotExist(abbreviate(token))))
    }

    /// Resets a waiting task's `HeartbeatSeconds` timer.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        self.token_sender(token)?
            .send(TokenMsg::Heartbeat)
            .map_err(|_| EngineError::TaskDoesNotExist(abbreviate(token)))
    }

    /// Live events of every execution, as they are journaled. A receiver that falls more than
    /// 4,096 events behind gets `Lagged` and should re-read the history.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ExecutionEvent>> {
        self.inner.events.subscribe()
    }

    /// Number of executions this process is running (including waiting ones).
    pub fn running_count(&self) -> usize {
        self.inner.lock_running().len()
    }

    /// Stops running executions without closing them (they stay RUNNING in the store and
    /// resume when the engine opens again) and flushes the store.
    pub async fn shutdown(&self) {
        // Every run is stopped before any `done` channel is dropped: a parent waiting on its
        // `.sync` child would otherwise see the channel close, read the child as RUNNING and
        // fail. Runs started meanwhile (a child of a parent not yet stopped) go in a later round.
        let mut stopped = Vec::new();
        loop {
            let all: Vec<Running> = self.inner.lock_running().drain().map(|(_, r)| r).collect();
            if all.is_empty() {
                break;
            }
            for r in &all {
                r.abort.abort();
            }
            for mut r in all {
                if let Some(h) = r.handle.take() {
                    let _ = h.await;
                }
                stopped.push(r);
            }
        }
        drop(stopped);
        if let Some(s) = &self.inner.sqlite {
            s.close();
        }
    }
}

/// Locks a mutex; a panic elsewhere cannot leave these maps half-updated (each update is one
/// insert or remove), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Refuses execution input or task output nested deeper than a state's output may be.
fn check_depth(v: &Value, what: &str) -> Result<(), EngineError> {
    let max = cm_asl::payload::MAX_DEPTH;
    if cm_asl::payload::depth(v) > max {
        return Err(EngineError::InvalidInput(format!(
            "{what} is nested more than {max} levels deep"
        )));
    }
    Ok(())
}

fn abbreviate(token: &str) -> String {
    if token.chars().count() > 12 {
        format!("{}…", token.chars().take(12).collect::<String>())
    } else {
        token.to_owned()
    }
}

/// A random name in UUID form.
fn uuid_like() -> String {
    let t = new_token();
    format!(
        "{}-{}-{}-{}-{}",
        &t[0..8],
        &t[8..12],
        &t[12..16],
        &t[16..20],
        &t[20..32]
    )
}

/// Runs an execution to its end and closes it, unless StopExecution got there first.
async fn drive(inner: Arc<Inner>, exec: Arc<Exec>, definition: Arc<Definition>, input: Value) {
    let definition = &definition.value;
    let timeout = definition
        .get("TimeoutSeconds")
        .and_then(Value::as_i64)
        .filter(|t| *t > 0);
    // A redriven execution's TimeoutSeconds counts from the redrive.
    let execution = exec.base_context.get("Execution");
    let start = execution
        .and_then(|e| e.get("RedriveTime").or_else(|| e.get("StartTime")))
        .and_then(Value::as_str)
        .and_then(crate::time::parse_ms)
        .unwrap_or_else(|| inner.clock.now_ms());
    let result = match timeout {
        Some(t) => {
            tokio::select! {
                r = exec.run(definition, input) => Some(r),
                () = inner.clock.deadline(start.saturating_add(t.saturating_mul(1000))) => None,
            }
        }
        None => Some(exec.run(definition, input).await),
    };
    // Exactly one of this task and StopExecution closes the execution.
    if !exec.claim_close() {
        return;
    }
    let now = inner.clock.now_ms();
    let ending = match result {
        Some(Ok(output)) => Some((
            "ExecutionSucceeded",
            json!({"output": output}),
            Close {
                status: Status::Succeeded,
                output: Some(output),
                error: None,
                cause: None,
                stop_ms: now,
            },
        )),
        Some(Err(Failure {
            interrupted: Some(e),
            ..
        })) => {
            // The journal could not be written: leave the execution RUNNING; it resumes
            // from what was journaled when the engine next opens.
            eprintln!(
                "concertmaster engine: execution {} paused, its journal could not be written: {e}",
                exec.arn
            );
            None
        }
        Some(Err(f)) => {
            let mut details = serde_json::Map::new();
            if let Some(e) = &f.error {
                details.insert("error".into(), json!(e));
            }
            if let Some(c) = &f.cause {
                details.insert("cause".into(), json!(c));
            }
            Some((
                "ExecutionFailed",
                Value::Object(details),
                Close {
                    status: Status::Failed,
                    output: None,
                    error: f.error,
                    cause: f.cause,
                    stop_ms: now,
                },
            ))
        }
        None => {
            let cause = format!(
                "The execution ran longer than its TimeoutSeconds ({}).",
                timeout.unwrap_or_default()
            );
            Some((
                "ExecutionTimedOut",
                json!({"error": "States.Timeout", "cause": cause}),
                Close {
                    status: Status::TimedOut,
                    output: None,
                    error: Some("States.Timeout".into()),
                    cause: Some(cause),
                    stop_ms: now,
                },
            ))
        }
    };
    let mut closed = None;
    if let Some((kind, details, close)) = ending {
        match exec.close(kind, details, close.clone()).await {
            Ok(()) => closed = Some(close),
            Err(e) => eprintln!(
                "concertmaster engine: execution {} finished but could not be closed: {e}",
                exec.arn
            ),
        }
    }
    // Removed only now, so that `wait` never sees a finished run as still RUNNING.
    inner.finish(&exec.arn, closed.as_ref());
}
