//! `concertmaster dev`: the embedded server — API, WebSocket and (when built) the builder — on
//! one machine, with everything in a data directory, plus the scheduler and the local queue
//! poller that start the runs of published schedule and queue triggers; and
//! `concertmaster token`.

use anyhow::{Context, Result, bail};
use cm_api::auth::{Claims, Role, TokenKey};
use cm_api::runtime::LocalRuntime;
use cm_api::{ApiConfig, AppState};
use cm_engine::{Engine, EngineConfig, StoreConfig};
use cm_local::LocalStore;
use cm_nodes::http::{HttpClient, NetworkPolicy};
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeRunner, Services};
use cm_registry::Registry;
use cm_store::WorkflowWrite;
use cm_store::sqlite::SqliteStore;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The example workflows, loaded as templates into the dev organisation.
pub const EXAMPLES: [(&str, &str); 6] = [
    (
        "customer-health",
        include_str!("../../../examples/customer-health.json"),
    ),
    (
        "expense-approval",
        include_str!("../../../examples/expense-approval.json"),
    ),
    (
        "lead-intake",
        include_str!("../../../examples/lead-intake.json"),
    ),
    (
        "scheduled-sync",
        include_str!("../../../examples/scheduled-sync.json"),
    ),
    (
        "signup-triage-jsonata",
        include_str!("../../../examples/signup-triage-jsonata.json"),
    ),
    (
        "webhook-orders",
        include_str!("../../../examples/webhook-orders.json"),
    ),
];

/// Options of `dev`.
pub struct DevOptions {
    /// Address to listen on.
    pub host: String,
    /// Port (0: any free port).
    pub port: u16,
    /// Where the databases and the signing key live.
    pub data_dir: PathBuf,
    /// The organisation of the printed token and the examples.
    pub org: String,
    /// Load the examples as templates.
    pub examples: bool,
    /// The built builder to serve, if any.
    pub builder_dir: Option<PathBuf>,
    /// Node options (secrets, allowed networks).
    pub nodes: crate::engine_cmd::NodeOptions,
}

/// The signing key of a data directory, created (mode 0600) on first use.
pub fn signing_key(data_dir: &Path) -> Result<TokenKey> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let path = data_dir.join("dev-signing-key");
    if let Ok(bytes) = std::fs::read(&path) {
        return TokenKey::new(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let key = TokenKey::generate().map_err(anyhow::Error::msg)?;
    write_private(&path, key.bytes())?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Mints a token with the data directory's key.
pub fn mint(data_dir: &Path, org: &str, sub: &str, role: Role, ttl_s: i64) -> Result<String> {
    if !cm_api::routes::valid_org(org) {
        bail!("--org `{org}`: lowercase letters, digits and -, at most 15 characters");
    }
    let key = signing_key(data_dir)?;
    let now = cm_api::auth::now_s();
    Ok(key.mint(&Claims {
        sub: sub.to_owned(),
        org: org.to_owned(),
        role,
        exp: now + ttl_s,
        iat: now,
        nbf: None,
    }))
}

/// The builder folder to serve: `explicit` (which must hold an `index.html`), else
/// `./frontend/dist`, else the `frontend/dist` of the checkout this binary was built in
/// (`<repo>/target/<profile>/concertmaster`), else none.
pub fn builder_dir(explicit: Option<PathBuf>) -> Result<Option<PathBuf>> {
    let built = |d: &Path| d.join("index.html").is_file();
    if let Some(d) = explicit {
        if !built(&d) {
            bail!(
                "--builder-dir {}: no index.html there (build the builder: cd frontend && npm ci && npm run build)",
                d.display()
            );
        }
        return Ok(Some(d));
    }
    let mut candidates = vec![PathBuf::from("frontend/dist")];
    if let Ok(exe) = std::env::current_exe()
        && let Some(repo) = exe.parent().and_then(Path::parent).and_then(Path::parent)
    {
        candidates.push(repo.join("frontend/dist"));
    }
    Ok(candidates.into_iter().find(|d| built(d)))
}

/// Runs the server until Ctrl-C (or SIGTERM).
pub fn dev(opts: DevOptions, registry: Registry) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(opts, registry))
}

async fn serve(opts: DevOptions, registry: Registry) -> Result<()> {
    let data = &opts.data_dir;
    let key = signing_key(data)?;
    let registry = Arc::new(registry);
    let local =
        Arc::new(LocalStore::open(&data.join("local.db")).context("opening the local node store")?);
    let mut secrets = match &opts.nodes.secrets_file {
        Some(p) => LocalSecrets::from_file(p).map_err(anyhow::Error::msg)?,
        None => LocalSecrets::new(),
    };
    secrets = secrets.with_env("CONCERTMASTER_SECRET_");
    let secrets = Arc::new(secrets);
    let mut services = Services::new(secrets.clone(), local.clone(), local.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    services.http = HttpClient::new(NetworkPolicy {
        allow: opts.nodes.allow_networks.clone(),
    })
    .map_err(|e| anyhow::anyhow!("--allow-network: {e}"))?;
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .with_context(|| format!("listening on {}:{}", opts.host, opts.port))?;
    let addr = listener.local_addr()?;
    let public_url = opts
        .nodes
        .approval_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    services.approval_base_url = public_url.clone();
    for d in registry.list(&Default::default()) {
        if let cm_registry::Execution::Plugin { executor } = &d.execution
            && let Some(url) = &executor.http_url
        {
            let e = cm_nodes::plugin::PluginExecutor::new(url)
                .map_err(|e| anyhow::anyhow!("plugin `{}`: {e}", d.type_id))?;
            services.plugins.insert(&d.type_id, e);
        }
    }
    let runner = NodeRunner::builtin(services);
    let resources =
        cm_local::resources(local.clone(), runner, &cm_local::ResourceOptions::default());
    let engine = Engine::open(EngineConfig {
        store: StoreConfig::Sqlite {
            path: data.join("engine.db"),
            durability: Default::default(),
        },
        resources,
        ..EngineConfig::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("opening the engine: {}: {e}", e.code()))?;
    let store = SqliteStore::open(&data.join("control.db"))
        .map_err(|e| anyhow::anyhow!("opening the control-plane store: {e}"))?;
    let config = ApiConfig {
        public_url: public_url.clone(),
        builder_dir: opts.builder_dir.clone(),
        builder_url: opts.builder_dir.as_ref().map(|_| public_url.clone()),
        ..ApiConfig::default()
    };
    let state = AppState::new(
        store,
        LocalRuntime::new(engine.clone()),
        registry.clone(),
        key.clone(),
        Some(Arc::new(cm_api::approvals::LocalApprovals {
            store: local.clone(),
            engine: engine.clone(),
        })),
        cm_api::live::Hub::new(),
        secrets,
        config,
    )
    .with_dead_letters(local.clone())
    .with_local_queue(local.clone())
    .with_datasets(local.clone());
    tokio::spawn(cm_api::live::follow_engine(engine.clone(), state.clone()));
    // Schedules and local queues: started here, stopped (between passes) before the engine.
    let scheduler =
        cm_api::triggers::Scheduler::new(state.clone(), Arc::new(cm_api::triggers::SystemClock))
            .spawn();
    let poller = cm_api::triggers::QueuePoller::new(
        state.clone(),
        cm_api::triggers::QueuePollerConfig::default(),
    )
    .spawn();
    if opts.examples {
        load_examples(&state.store, &opts.org).await;
    }
    let app = cm_api::router(state);
    let now = cm_api::auth::now_s();
    let token = key.mint(&Claims {
        sub: "dev@localhost".into(),
        org: opts.org.clone(),
        role: Role::Admin,
        exp: now + 30 * 24 * 3600,
        iat: now,
        nbf: None,
    });
    println!("ConcertMaster dev server on http://{addr}");
    println!("  data:    {}", data.display());
    match &opts.builder_dir {
        Some(d) => println!("  builder: http://{addr}/  (from {})", d.display()),
        None => println!(
            "  builder: not built (cd frontend && npm ci && npm run build, or --builder-dir)"
        ),
    }
    println!("  API:     http://{addr}/openapi.json");
    println!("  token:   {token}");
    println!("  try:     curl -H 'Authorization: Bearer {token}' http://{addr}/v1/workflows");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    eprintln!("shutting down: waiting runs are kept and resume on the next start");
    scheduler.stop().await;
    poller.stop().await;
    engine.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Creates each example as a template of `org` (once) and publishes it.
async fn load_examples<S: cm_store::Store>(store: &S, org: &str) {
    for (id, text) in EXAMPLES {
        let Ok(def) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if store.get_workflow(org, id).await.is_ok() {
            continue;
        }
        let name = def
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_owned();
        let description = def
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Err(e) = store
            .create_workflow(
                org,
                id,
                WorkflowWrite {
                    name,
                    description,
                    definition: def,
                    is_template: true,
                    actor: "concertmaster dev".into(),
                    at_ms: cm_api::routes::now_ms(),
                },
            )
            .await
        {
            eprintln!("example {id}: {e}");
        }
    }
}
