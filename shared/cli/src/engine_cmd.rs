//! Commands that run state machines on the embedded engine: `asl run`, `asl resume` and
//! `run` (compile a workflow and run it with a live display of node statuses).

use anyhow::{Context, Result, bail};
use cm_compiler::{CompileOptions, StateRole};
use cm_engine::resources::BoxFuture;
use cm_engine::{
    Clock, Engine, EngineConfig, EngineError, MachineType, Resources, Status, StoreConfig,
    TaskCall, TaskHandler,
};
use cm_local::{LocalStore, RunnerHandler};
use cm_nodes::NodeRunner;
use cm_nodes::Services;
use cm_nodes::http::{HttpClient, NetworkPolicy};
use cm_nodes::plugin::PluginExecutor;
use cm_nodes::secrets::LocalSecrets;
use cm_registry::Registry;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// How the embedded engine runs nodes: secrets, the outbound network allow-list, where
/// approval links point, and approvals decided from the command line.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// JSON file of secrets (`{"NAME": "value"}`); `CONCERTMASTER_SECRET_<NAME>` variables
    /// override it.
    pub secrets_file: Option<PathBuf>,
    /// Networks (CIDR) HTTP-calling nodes may reach although they are private or loopback.
    pub allow_networks: Vec<String>,
    /// Approval nodes to decide as soon as they ask: node id → approve (true) / reject.
    pub decide: HashMap<String, bool>,
    /// Base URL of approval links.
    pub approval_base_url: Option<String>,
    /// Print a line when an approval starts waiting.
    pub announce_approvals: bool,
}

/// The node runner, local store and task resources of one `concertmaster` process.
struct Local {
    resources: Resources,
    store: Arc<LocalStore>,
}

/// The Task resources `concertmaster` runs locally: the real node handlers
/// ([`cm_nodes::NodeRunner`]) over a local store (SQLite next to the engine's tables with
/// `--db`, in memory otherwise), with pinned answers taking precedence:
/// a node whose id is in `pinned.outputs` answers with that output (and the port in
/// `pinned.ports`, else its first wired port) instead of running, one in `pinned.failures`
/// fails with that error name. Callback nodes (approvals) that are pinned are answered through
/// SendTaskSuccess; unpinned ones record a real approval request, decided with `--decide` or
/// through the API.
fn local_resources(
    registry: Arc<Registry>,
    pinned: Pinned,
    engine: Arc<OnceLock<Engine>>,
    db: Option<&Path>,
    opts: &NodeOptions,
) -> Result<Local> {
    let store = Arc::new(match db {
        Some(path) => LocalStore::open(path)
            .with_context(|| format!("opening the local store in {}", path.display()))?,
        None => LocalStore::in_memory().context("opening the in-memory local store")?,
    });
    let mut secrets = match &opts.secrets_file {
        Some(p) => LocalSecrets::from_file(p).map_err(anyhow::Error::msg)?,
        None => LocalSecrets::new(),
    };
    secrets = secrets.with_env("CONCERTMASTER_SECRET_");
    let mut services = Services::new(Arc::new(secrets), store.clone(), store.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    services.http = HttpClient::new(NetworkPolicy {
        allow: opts.allow_networks.clone(),
    })
    .map_err(|e| anyhow::anyhow!("--allow-network: {e}"))?;
    if let Some(url) = &opts.approval_base_url {
        services.approval_base_url = url.clone();
    }
    let mut plugin_functions = Vec::new();
    for d in registry.list(&Default::default()) {
        if let cm_registry::Execution::Plugin { executor } = &d.execution {
            if let Some(url) = &executor.http_url {
                let mut executor = PluginExecutor::new(url)
                    .map_err(|e| anyhow::anyhow!("plugin `{}`: {e}", d.type_id))?;
                if let Some(t) = d.default_timeout_seconds {
                    executor = executor.with_timeout_seconds(t.into());
                }
                services.plugins.insert(&d.type_id, executor);
            }
            if let Some(arn) = &executor.lambda_arn {
                plugin_functions.push(arn.rsplit(':').next().unwrap_or(arn).to_owned());
            }
        }
    }
    let runner = NodeRunner::builtin(services);
    let names = cm_local::ResourceOptions::default();
    let real = RunnerHandler(runner);
    let handler = Arc::new(PinnedOrReal {
        pinned,
        registry,
        engine,
        real,
        store: store.clone(),
        decide: opts.decide.clone(),
        announce: opts.announce_approvals,
    });
    let mut resources = cm_local::resources(store.clone(), handler.real.0.clone(), &names)
        .function(names.node_runner_function.clone(), Shared(handler.clone()))
        .function(names.plugin_function.clone(), Shared(handler.clone()));
    for f in plugin_functions {
        resources = resources.function(f, Shared(handler.clone()));
    }
    Ok(Local { resources, store })
}

/// Pinned answers first, the real node runner otherwise.
struct PinnedOrReal {
    pinned: Pinned,
    registry: Arc<Registry>,
    engine: Arc<OnceLock<Engine>>,
    real: RunnerHandler,
    store: Arc<LocalStore>,
    decide: HashMap<String, bool>,
    announce: bool,
}

struct Shared(Arc<PinnedOrReal>);

impl TaskHandler for Shared {
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, cm_asl::AslError>> {
        let this = self.0.clone();
        Box::pin(async move { this.call(call).await })
    }
}

impl PinnedOrReal {
    async fn call(&self, call: TaskCall) -> Result<Value, cm_asl::AslError> {
        let node_type = call
            .input
            .pointer("/node/type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let node_id = call
            .input
            .pointer("/node/id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Pinned {
            outputs,
            ports,
            failures,
            ..
        } = &self.pinned;
        if let Some(error) = failures.get(&node_id) {
            return Err(cm_asl::AslError::new(
                error.clone(),
                format!("{node_id} failed (pinned)"),
            ));
        }
        if outputs.contains_key(&node_id) || ports.contains_key(&node_id) {
            let output = outputs
                .get(&node_id)
                .cloned()
                .unwrap_or_else(|| call.input.get("input").cloned().unwrap_or(Value::Null));
            let port = ports
                .get(&node_id)
                .or_else(|| self.pinned.wired.get(&node_id))
                .cloned()
                .or_else(|| {
                    self.registry
                        .latest(&node_type)
                        .and_then(|r| r.descriptor().output_ports.first().map(|p| p.name.clone()))
                })
                .unwrap_or_else(|| "out".into());
            let answer = json!({"output": output, "port": port, "pinned": true});
            if let (Some(token), Some(engine)) = (call.task_token.clone(), self.engine.get()) {
                let engine = engine.clone();
                tokio::spawn(async move {
                    if let Err(e) = engine.send_task_success(&token, answer).await {
                        eprintln!("pinned callback failed: {e}");
                    }
                });
                return Ok(json!({"pinned": true}));
            }
            return Ok(answer);
        }
        let token = call.task_token.clone();
        let result = self.real.call(call).await?;
        if self.announce
            && let Some(id) = result.pointer("/output/approvalId").and_then(Value::as_str)
            && let Ok(a) = self.store.approval(id)
        {
            eprintln!(
                "  ⏸ {node_id} waits for approval {id} ({:?}) at {}; decide with --decide {node_id}=approve|reject or through the API",
                a.request.title,
                result
                    .pointer("/output/url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
        }
        // An approval asked: decide it now if the command line says so.
        if let (Some(token), Some(&approve), Some(engine)) =
            (token, self.decide.get(&node_id), self.engine.get())
        {
            let (store, engine) = (self.store.clone(), engine.clone());
            let id = cm_nodes::approval::approval_id(&token);
            tokio::spawn(async move {
                if let Err(e) = cm_local::decide_approval(
                    &store,
                    &engine,
                    &id,
                    approve,
                    "decided with --decide",
                    "concertmaster run",
                )
                .await
                {
                    eprintln!("deciding approval {id} failed: {e}");
                }
            });
        }
        Ok(result)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn read_json(p: &Path) -> Result<Value> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))
}

async fn open(
    db: Option<&Path>,
    virtual_time: bool,
    registry: Arc<Registry>,
    pinned: Pinned,
    nodes: &NodeOptions,
) -> Result<(Engine, Arc<LocalStore>)> {
    let cell = Arc::new(OnceLock::new());
    let local = local_resources(registry, pinned, cell.clone(), db, nodes)?;
    let config = EngineConfig {
        store: match db {
            Some(path) => StoreConfig::Sqlite {
                path: path.to_owned(),
                durability: Default::default(),
            },
            None => StoreConfig::Memory,
        },
        clock: if virtual_time {
            Clock::virtual_at(1_767_225_600_000)
        } else {
            Clock::System
        },
        resources: local.resources,
        ..EngineConfig::default()
    };
    let engine = Engine::open(config).await.map_err(engine_error)?;
    let _ = cell.set(engine.clone());
    Ok((engine, local.store))
}

fn engine_error(e: EngineError) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", e.code())
}

/// Options of `asl run`.
pub struct AslRun {
    pub definition: PathBuf,
    pub input: Option<PathBuf>,
    pub machine_type: MachineType,
    pub db: Option<PathBuf>,
    pub name: Option<String>,
    pub virtual_time: bool,
    pub nodes: NodeOptions,
}

/// `asl run`: runs a definition once and prints the runner's outcome document.
pub fn asl_run(opts: AslRun, registry: Registry) -> Result<Value> {
    let definition = read_json(&opts.definition)?;
    let input = match &opts.input {
        Some(p) => read_json(p)?,
        None => json!({}),
    };
    runtime()?.block_on(async {
        let (engine, _) = open(
            opts.db.as_deref(),
            opts.virtual_time,
            Arc::new(registry),
            Pinned::default(),
            &opts.nodes,
        )
        .await?;
        let sm_name = opts
            .definition
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| {
                s.trim_end_matches(".asl").replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
                    "-",
                )
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "state-machine".into());
        let sm = engine
            .create_state_machine(&sm_name, &definition, opts.machine_type)
            .await
            .map_err(engine_error)?;
        let arn = match engine
            .start_execution(&sm.arn, opts.name.clone(), input)
            .await
        {
            Ok(s) => s.execution_arn,
            // A durable run that already finished: report it.
            Err(EngineError::ExecutionAlreadyExists { arn, .. }) if opts.db.is_some() => arn,
            Err(e) => return Err(engine_error(e)),
        };
        let rec = engine.wait(&arn).await.map_err(engine_error)?;
        engine.shutdown().await;
        Ok(cm_engine::outcome_json(&rec))
    })
}

/// `asl resume`: reopens a database, lets every execution left RUNNING finish, and prints one
/// line per execution.
pub fn asl_resume(db: &Path, registry: Registry, nodes: &NodeOptions) -> Result<Vec<Value>> {
    if !db.exists() {
        bail!("{} does not exist", db.display());
    }
    runtime()?.block_on(async {
        let (engine, _) = open(
            Some(db),
            false,
            Arc::new(registry),
            Pinned::default(),
            nodes,
        )
        .await?;
        let mut lines = Vec::new();
        let mut token = None;
        let mut running = Vec::new();
        loop {
            let page = engine
                .list_executions(None, Some(Status::Running), 1000, token.as_deref())
                .map_err(engine_error)?;
            running.extend(page.executions.into_iter().map(|e| e.arn));
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        for arn in running {
            let rec = engine.wait(&arn).await.map_err(engine_error)?;
            let mut line = cm_engine::outcome_json(&rec);
            line["execution"] = json!(rec.arn);
            lines.push(line);
        }
        engine.shutdown().await;
        Ok(lines)
    })
}

/// Options of `run`.
pub struct WorkflowRun {
    pub file: PathBuf,
    pub input: Option<String>,
    pub db: Option<PathBuf>,
    pub quiet: bool,
    /// Pinned node answers: a JSON file `{"input"?, "outputs"?: {node: output}, "ports"?:
    /// {node: port}}`, or a scenarios file `{"scenarios": [{"name", ...}]}` (then `#NAME`
    /// after the path picks one; the first by default).
    pub pin: Option<String>,
    /// How nodes run.
    pub nodes: NodeOptions,
}

/// Node answers given on the command line instead of running the nodes.
#[derive(Default, Clone)]
pub struct Pinned {
    input: Option<Value>,
    outputs: HashMap<String, Value>,
    ports: HashMap<String, String>,
    failures: HashMap<String, String>,
    /// Each node's first wired port (the port of a pinned output without a pinned port).
    wired: HashMap<String, String>,
}

fn read_pin(spec: &str) -> Result<Pinned> {
    let (path, name) = match spec.split_once('#') {
        Some((p, n)) => (p, Some(n)),
        None => (spec, None),
    };
    let doc = read_json(Path::new(path))?;
    let chosen = match doc.get("scenarios").and_then(Value::as_array) {
        Some(list) => match name {
            Some(n) => list
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(n))
                .cloned()
                .with_context(|| format!("{path} has no scenario named {n:?}"))?,
            None => list
                .first()
                .cloned()
                .with_context(|| format!("{path} has no scenarios"))?,
        },
        None => doc,
    };
    let outputs = chosen
        .get("outputs")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let ports = chosen
        .get("ports")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|p| (k.clone(), p.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let failures = chosen
        .get("failures")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|e| (k.clone(), e.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(Pinned {
        input: chosen.get("input").cloned(),
        outputs,
        ports,
        failures,
        wired: HashMap::new(),
    })
}

/// `run`: compiles a workflow, runs it, shows node statuses as they change, and returns the
/// closed execution's outcome document.
pub fn workflow_run(opts: WorkflowRun, registry: Registry) -> Result<(Value, bool)> {
    let text = std::fs::read_to_string(&opts.file)
        .with_context(|| format!("reading {}", opts.file.display()))?;
    let wf = cm_model::from_json_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", opts.file.display()))?;
    let compiled = match cm_compiler::compile(&wf, &registry, &CompileOptions::default()) {
        Ok(c) => c,
        Err(e) => bail!(
            "{} does not compile ({e}); run `concertmaster validate {}` for details",
            opts.file.display(),
            opts.file.display()
        ),
    };
    let pinned = match &opts.pin {
        Some(spec) => read_pin(spec)?,
        None => Pinned::default(),
    };
    let input: Value = match &opts.input {
        Some(t) if t.starts_with('@') => read_json(Path::new(&t[1..]))?,
        Some(t) => serde_json::from_str(t).context("--input must be JSON (or @FILE)")?,
        None => pinned.input.clone().unwrap_or_else(|| json!({})),
    };
    // The trigger checks the input as it would for a request: a manual trigger's input schema,
    // a form's field schema.
    let input = match wf
        .nodes
        .iter()
        .find(|n| n.node_type.starts_with("trigger."))
    {
        Some(t) if t.node_type == "trigger.manual" => {
            cm_nodes::trigger::manual::accept(&t.config, input).map_err(|e| {
                anyhow::anyhow!("the input does not fit trigger `{}`: {}", t.id, e.cause())
            })?
        }
        Some(t) if t.node_type == "trigger.form" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            cm_nodes::trigger::form::accept(&t.config, input, now)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the input is not a valid submission of form `{}`: {}",
                        t.id,
                        e.cause()
                    )
                })?
                .run_input()
        }
        _ => input,
    };
    // state name → (node id, node type)
    let mut nodes: HashMap<String, (String, String)> = HashMap::new();
    for (state, r) in &compiled.state_map {
        if r.role == StateRole::Node
            && let Some(id) = &r.node_id
        {
            let ty = wf
                .nodes
                .iter()
                .find(|n| &n.id == id)
                .map(|n| n.node_type.clone())
                .unwrap_or_default();
            nodes.insert(state.clone(), (id.clone(), ty));
        }
    }
    let machine_type = if compiled.execution_type == cm_compiler::ExecutionType::Express {
        MachineType::Express
    } else {
        MachineType::Standard
    };
    // A pinned output without a pinned port takes the node's first wired port.
    let mut wired: HashMap<String, String> = HashMap::new();
    for e in &wf.edges {
        wired
            .entry(e.from.clone())
            .or_insert_with(|| e.from_port.clone());
    }
    let pinned = Pinned { wired, ..pinned };
    let quiet = opts.quiet;
    runtime()?.block_on(async move {
        let node_opts = NodeOptions {
            announce_approvals: !quiet,
            ..opts.nodes.clone()
        };
        let (engine, _) = open(
            opts.db.as_deref(),
            false,
            Arc::new(registry),
            pinned,
            &node_opts,
        )
        .await?;
        let mut events = engine.subscribe();
        let sm = engine
            .create_state_machine(&wf.id, &compiled.definition, machine_type)
            .await
            .map_err(engine_error)?;
        let started = engine
            .start_execution(&sm.arn, None, input)
            .await
            .map_err(engine_error)?;
        let arn = started.execution_arn.clone();
        if !quiet {
            eprintln!("run {arn}");
        }
        let mut began: HashMap<String, Instant> = HashMap::new();
        let mut status: BTreeMap<String, &'static str> = BTreeMap::new();
        // step key of a node's state visit → node id, and the last task error per node
        let mut steps: HashMap<String, String> = HashMap::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            if &*ev.execution_arn != arn.as_str() {
                continue;
            }
            let e = &ev.event;
            let state = e
                .details
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let task_node = e
                .step
                .split_once('#')
                .and_then(|(step, _)| steps.get(step))
                .cloned();
            if let Some((id, ty)) = nodes.get(state) {
                if e.kind.ends_with("StateEntered") {
                    steps.insert(e.step.clone(), id.clone());
                    failed.remove(id);
                    began.insert(id.clone(), Instant::now());
                    status.insert(id.clone(), "running");
                    if !quiet {
                        eprintln!("  ▶ {id} ({ty}) running");
                    }
                } else if e.kind.ends_with("StateExited") {
                    let ms = began.get(id).map_or(0, |t| t.elapsed().as_millis());
                    if let Some(error) = failed.get(id) {
                        status.insert(id.clone(), "failed");
                        if !quiet {
                            eprintln!("  ✖ {id} failed with {error} after {ms} ms; the run continues on its error route");
                        }
                    } else {
                        status.insert(id.clone(), "succeeded");
                        if !quiet {
                            eprintln!("  ✔ {id} succeeded in {ms} ms");
                        }
                    }
                }
            }
            match (e.kind.as_str(), task_node) {
                ("TaskFailed" | "TaskTimedOut", Some(id)) => {
                    let error = e.details["error"].as_str().unwrap_or_default().to_owned();
                    if !quiet {
                        eprintln!(
                            "    {id}: {error}: {}",
                            e.details["cause"].as_str().unwrap_or_default()
                        );
                    }
                    failed.insert(id, error);
                }
                ("TaskSucceeded", Some(id)) => {
                    failed.remove(&id);
                }
                _ => {}
            }
            if cm_engine::history::is_terminal(&e.kind) {
                if e.kind != "ExecutionSucceeded" {
                    for (id, s) in status.iter_mut() {
                        if *s == "running" {
                            *s = "failed";
                            if !quiet {
                                eprintln!("  ✖ {id} failed");
                            }
                        }
                    }
                }
                break;
            }
        }
        let rec = engine.wait(&arn).await.map_err(engine_error)?;
        if !quiet {
            for (id, _) in nodes.values() {
                status.entry(id.clone()).or_insert("skipped");
            }
            let summary: Vec<String> = status.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("{}: {}", rec.status.as_str(), summary.join(" "));
            let _ = std::io::stderr().flush();
        }
        engine.shutdown().await;
        let ok = rec.status == Status::Succeeded;
        Ok((cm_engine::outcome_json(&rec), ok))
    })
}
