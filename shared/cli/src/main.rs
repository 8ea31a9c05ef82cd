//! `concertmaster`: the ConcertMaster command line.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cm_compiler::{CompileError, CompileOptions, Finding, Severity};
use cm_model::Workflow;
use cm_registry::{Category, ListFilter, Registry};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod dev;
mod engine_cmd;

/// Collect data and orchestrate workflows: validate and compile ConcertMaster workflows into
/// Amazon States Language state machines.
#[derive(Parser)]
#[command(name = "concertmaster", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files and print every problem found (exit 1 if any is an error).
    ///
    /// With --format json and one file, prints {valid, errors, warnings, findings}; with several
    /// files, an array of those, each with its "file".
    Validate {
        /// Workflow JSON files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Compile a workflow into an ASL state machine definition.
    ///
    /// Prints the definition to stdout, or with --out writes ID.asl.json (the definition) and
    /// ID.compile.json (state->node map, execution type and figures) into a folder, where ID is
    /// the workflow id.
    Compile {
        /// Workflow JSON file.
        file: PathBuf,
        /// Folder to write ID.asl.json and ID.compile.json into.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the definition together with the state map, execution type and figures.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List the node types that workflows can use.
    NodeTypes {
        /// Only this category.
        #[arg(long)]
        category: Option<Category>,
        /// Case-insensitive text to look for in the type id, title or description.
        #[arg(long)]
        search: Option<String>,
        /// Print full descriptors (with config schemas) as JSON.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print the Markdown reference of every type (docs/node-types.md).
        #[arg(long)]
        markdown: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Print the JSON Schema (draft 2020-12) of the workflow file format.
    Schema,
    /// Print the HTTP API's OpenAPI 3.1 document (the one `dev` serves at /openapi.json).
    Openapi,
    /// Compile a workflow and run it on the embedded engine, showing node statuses as they
    /// change; prints the run's outcome ({"status", "output"} or {"status", "error", "cause"})
    /// and exits 1 if the run did not succeed.
    ///
    /// Nodes run for real: HTTP calls go out (public addresses only, unless --allow-network),
    /// records and queue messages go to the local store (in the --db file, or in memory),
    /// approvals wait for a decision (--decide, or the API). --pin replaces chosen nodes'
    /// answers with fixed ones.
    Run {
        /// Workflow JSON file.
        file: PathBuf,
        /// Run input as JSON text, or @FILE.
        #[arg(long)]
        input: Option<String>,
        /// Keep the run in this SQLite database (it resumes if interrupted); in memory
        /// otherwise.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Print only the outcome.
        #[arg(long, short)]
        quiet: bool,
        /// Pinned node answers: a JSON file {"input"?, "outputs"?: {node: output}, "ports"?:
        /// {node: port}, "failures"?: {node: error name}}, or a scenarios file
        /// (tests/data/runs/*.json) with #NAME to pick one.
        #[arg(long, value_name = "FILE[#SCENARIO]")]
        pin: Option<String>,
        /// Decide an approval node as soon as it asks: NODE=approve or NODE=reject
        /// (repeatable).
        #[arg(long, value_name = "NODE=approve|reject")]
        decide: Vec<String>,
        #[command(flatten)]
        nodes: NodeArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Work with Amazon States Language definitions directly.
    #[command(subcommand)]
    Asl(AslCommand),
    /// Start the embedded server: the HTTP API (/openapi.json), live status over WebSocket
    /// (/ws) and the workflow runtime, with workflows, runs and the engine's journal in the data
    /// directory. Loads the examples as templates, prints the URL and an admin token. Ctrl-C
    /// stops it; runs in flight resume on the next start.
    Dev {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1", env = "CONCERTMASTER_HOST")]
        host: String,
        /// Port (0 picks a free one).
        #[arg(long, default_value_t = 8080, env = "CONCERTMASTER_PORT")]
        port: u16,
        /// Data directory (databases, signing key).
        #[arg(long, default_value = ".concertmaster", env = "CONCERTMASTER_DATA_DIR")]
        data_dir: PathBuf,
        /// Organisation of the printed token and the example templates.
        #[arg(long, default_value = "dev")]
        org: String,
        /// Do not load the examples as templates.
        #[arg(long)]
        no_examples: bool,
        /// The built web builder to serve at `/` (`npm run build` in frontend/ writes
        /// frontend/dist). Default: ./frontend/dist, else the checkout the binary was built
        /// in (target/<profile>/concertmaster → frontend/dist), when it exists.
        #[arg(long, env = "CONCERTMASTER_BUILDER_DIR")]
        builder_dir: Option<PathBuf>,
        #[command(flatten)]
        nodes: NodeArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Mint an API token signed with the data directory's key (as `dev` prints).
    Token {
        /// Data directory of the server.
        #[arg(long, default_value = ".concertmaster", env = "CONCERTMASTER_DATA_DIR")]
        data_dir: PathBuf,
        /// Organisation.
        #[arg(long, default_value = "dev")]
        org: String,
        /// Subject (user).
        #[arg(long, default_value = "dev@localhost")]
        sub: String,
        /// viewer, editor or admin.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 30 * 24 * 3600)]
        ttl: i64,
    },
}

#[derive(Subcommand)]
enum AslCommand {
    /// Run an ASL definition on the embedded engine and print
    /// {"status": "SUCCEEDED", "output": ...} or {"status": "FAILED", "error": ..., "cause": ...}.
    ///
    /// Any valid ASL runs. Task states can call the local node-runner function
    /// (`concertmaster-node-runner` via arn:aws:states:::lambda:invoke, running the real node
    /// handlers), the datasets table (dynamodb:putItem) and queues (sqs:sendMessage) of the
    /// local store, and child executions (arn:aws:states:::states:startExecution[.sync]);
    /// other resources fail with States.Runtime naming the resource.
    Run {
        /// File with the state machine definition (JSON).
        #[arg(long)]
        definition: PathBuf,
        /// File with the execution input (JSON); `{}` when omitted.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Workflow type, which decides the context object's fields.
        #[arg(long = "type", value_enum, default_value_t = MachineType::Standard)]
        machine_type: MachineType,
        /// Journal the execution in this SQLite database: if the process dies, `asl resume`
        /// (or running the same command again with the same --name) finishes it.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Execution name (idempotency key: the same name and input return the same execution).
        #[arg(long)]
        name: Option<String>,
        /// Do not really wait: Wait states and retry intervals complete at once.
        #[arg(long)]
        virtual_time: bool,
        #[command(flatten)]
        nodes: NodeArgs,
    },
    /// Reopen a database, finish every execution left RUNNING (after a crash or kill), and
    /// print one outcome line per execution.
    Resume {
        /// The SQLite database given to `asl run --db` or `run --db`.
        #[arg(long)]
        db: PathBuf,
        #[command(flatten)]
        nodes: NodeArgs,
    },
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPERCASE")]
enum MachineType {
    /// Standard workflow.
    Standard,
    /// Express workflow.
    Express,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per finding.
    Human,
    /// A JSON document {valid, errors, warnings, findings}.
    Json,
}

#[derive(Args)]
struct NodeArgs {
    /// JSON file of secrets ({"NAME": "value"}) for {{ secrets.NAME }} references;
    /// CONCERTMASTER_SECRET_<NAME> environment variables override it.
    #[arg(long, env = "CONCERTMASTER_SECRETS_FILE", value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// Let HTTP and notify nodes reach this network although it is loopback or private
    /// (CIDR, e.g. 127.0.0.1/32; repeatable or comma-separated). By default only public
    /// addresses are allowed.
    #[arg(
        long = "allow-network",
        env = "CONCERTMASTER_ALLOW_NETWORKS",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    allow_network: Vec<String>,
    /// Base URL of approval links (<URL>/approvals/<id>).
    #[arg(long, env = "CONCERTMASTER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
}

impl NodeArgs {
    fn options(self, decide: Vec<String>) -> Result<engine_cmd::NodeOptions> {
        let mut decisions = std::collections::HashMap::new();
        for d in decide {
            let (node, what) = d
                .split_once('=')
                .with_context(|| format!("--decide {d:?}: expected NODE=approve or NODE=reject"))?;
            let approve = match what {
                "approve" | "approved" => true,
                "reject" | "rejected" => false,
                other => anyhow::bail!("--decide {node}={other}: expected approve or reject"),
            };
            decisions.insert(node.to_owned(), approve);
        }
        Ok(engine_cmd::NodeOptions {
            secrets_file: self.secrets,
            allow_networks: self.allow_network,
            decide: decisions,
            approval_base_url: self.public_url,
            announce_approvals: false,
        })
    }
}

#[derive(Args)]
struct RegistryArgs {
    /// Folder of plugin node type descriptors (*.json, *.yaml) to load besides the built-ins.
    #[arg(long, env = "CONCERTMASTER_PLUGINS")]
    plugins: Option<PathBuf>,
}

#[derive(Args)]
struct TargetArgs {
    /// FunctionName the node-runner tasks invoke (Lambda ARN in the cloud).
    #[arg(long, default_value_t = CompileOptions::default().node_runner_function)]
    node_runner_function: String,
    /// DynamoDB table that store nodes write to.
    #[arg(long, default_value_t = CompileOptions::default().datasets_table)]
    datasets_table: String,
    /// Prefix of dataset partition keys (e.g. an organisation id).
    #[arg(long)]
    dataset_namespace: Option<String>,
    /// Queue URL prefix; queue nodes append the queue name.
    #[arg(long, default_value_t = CompileOptions::default().queue_url_prefix)]
    queue_url_prefix: String,
    /// State machine ARN prefix; sub-workflow nodes append the workflow id.
    #[arg(long, default_value_t = CompileOptions::default().state_machine_arn_prefix)]
    state_machine_arn_prefix: String,
}

impl RegistryArgs {
    fn load(&self) -> Result<Registry> {
        let mut registry = Registry::builtin();
        if let Some(dir) = &self.plugins {
            let errors = registry
                .load_plugin_dir(dir)
                .with_context(|| format!("loading plugins from {}", dir.display()))?;
            for e in errors {
                eprintln!("warning: {e}");
            }
        }
        Ok(registry)
    }
}

/// `println!` that treats a closed stdout (e.g. `| head`) as the end of the output, not a panic.
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A workflow file: its text (for locating findings) and the parse result.
struct Loaded {
    text: String,
    parsed: std::result::Result<Workflow, cm_model::ParseError>,
}

/// Reads and parses a workflow; a parse error is reported like a finding (exit 1).
fn load(file: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = cm_model::from_json_slice(&bytes);
    Ok(Loaded {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        parsed,
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate {
            files,
            format,
            registry,
        } => {
            let registry = registry.load()?;
            let mut docs = Vec::new();
            let mut all_valid = true;
            for file in &files {
                let loaded = load(file)?;
                let doc = match &loaded.parsed {
                    Ok(wf) => {
                        let findings = cm_compiler::validate(wf, &registry);
                        all_valid &= !findings.iter().any(Finding::is_error);
                        match format {
                            Format::Human => {
                                print_findings(file, &loaded.text, &findings, Format::Human);
                                continue;
                            }
                            Format::Json => findings_doc(&loaded.text, &findings),
                        }
                    }
                    Err(e) => {
                        all_valid = false;
                        match format {
                            Format::Human => {
                                parse_failure(file, e, Format::Human);
                                continue;
                            }
                            Format::Json => parse_failure_doc(e),
                        }
                    }
                };
                docs.push((file, doc));
            }
            match docs.as_slice() {
                [] => {}
                [(_, doc)] => emit!("{}", serde_json::to_string_pretty(doc)?),
                many => {
                    let list: Vec<serde_json::Value> = many
                        .iter()
                        .map(|(file, doc)| {
                            let mut doc = doc.clone();
                            doc["file"] = json!(file.display().to_string());
                            doc
                        })
                        .collect();
                    emit!("{}", serde_json::to_string_pretty(&list)?);
                }
            }
            Ok(if all_valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Compile {
            file,
            out,
            full,
            target,
            registry,
        } => {
            let registry = registry.load()?;
            let loaded = load(&file)?;
            let wf = match loaded.parsed {
                Ok(wf) => wf,
                Err(e) => return Ok(parse_failure(&file, &e, Format::Human)),
            };
            let opts = CompileOptions {
                node_runner_function: target.node_runner_function,
                datasets_table: target.datasets_table,
                dataset_namespace: target.dataset_namespace,
                queue_url_prefix: target.queue_url_prefix,
                state_machine_arn_prefix: target.state_machine_arn_prefix,
            };
            let compiled = match cm_compiler::compile(&wf, &registry, &opts) {
                Ok(c) => c,
                Err(CompileError::Invalid(findings)) => {
                    print_findings(&file, &loaded.text, &findings, Format::Human);
                    return Ok(ExitCode::from(1));
                }
            };
            for w in &compiled.warnings {
                eprintln!("{}: {w}", location(&file, &loaded.text, &w.path));
            }
            let summary = json!({
                "workflowId": wf.id,
                "workflowVersion": wf.version,
                "executionType": compiled.execution_type,
                "executionTypeReason": compiled.execution_type_reason,
                "stats": compiled.stats,
                "stateMap": compiled.state_map,
            });
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let asl = dir.join(format!("{}.asl.json", wf.id));
                    let meta = dir.join(format!("{}.compile.json", wf.id));
                    std::fs::write(&asl, compiled.definition_json() + "\n")
                        .with_context(|| format!("writing {}", asl.display()))?;
                    std::fs::write(&meta, serde_json::to_string_pretty(&summary)? + "\n")
                        .with_context(|| format!("writing {}", meta.display()))?;
                    eprintln!(
                        "compiled {} -> {} ({} states, {} bytes, {:?}: {})",
                        file.display(),
                        asl.display(),
                        compiled.stats.states,
                        compiled.stats.definition_bytes,
                        compiled.execution_type,
                        compiled.execution_type_reason
                    );
                }
                None if full => {
                    let mut doc = summary;
                    doc["definition"] = compiled.definition.clone();
                    emit!("{}", serde_json::to_string_pretty(&doc)?);
                }
                None => emit!("{}", compiled.definition_json()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::NodeTypes {
            category,
            search,
            json,
            markdown,
            registry,
        } => {
            let registry = registry.load()?;
            if markdown {
                emit!("{}", cm_registry::docs::markdown(&registry).trim_end());
                return Ok(ExitCode::SUCCESS);
            }
            let list = registry.list(&ListFilter { category, search });
            if json {
                emit!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let width = list.iter().map(|d| d.type_id.len()).max().unwrap_or(0);
                for d in &list {
                    emit!(
                        "{:<width$}  v{}  {:<9}  {} - {}",
                        d.type_id,
                        d.version,
                        d.category.as_str(),
                        d.title,
                        d.description
                    );
                }
                if list.is_empty() {
                    eprintln!("no node types match");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Asl(AslCommand::Run {
            definition,
            input,
            machine_type,
            db,
            name,
            virtual_time,
            nodes,
        }) => {
            let outcome = engine_cmd::asl_run(
                engine_cmd::AslRun {
                    definition,
                    input,
                    machine_type: match machine_type {
                        MachineType::Standard => cm_engine::MachineType::Standard,
                        MachineType::Express => cm_engine::MachineType::Express,
                    },
                    db,
                    name,
                    virtual_time,
                    nodes: nodes.options(Vec::new())?,
                },
                Registry::builtin(),
            )?;
            emit!("{}", serde_json::to_string(&outcome)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Asl(AslCommand::Resume { db, nodes }) => {
            for line in
                engine_cmd::asl_resume(&db, Registry::builtin(), &nodes.options(Vec::new())?)?
            {
                emit!("{}", serde_json::to_string(&line)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            input,
            db,
            quiet,
            pin,
            decide,
            nodes,
            registry,
        } => {
            let registry = registry.load()?;
            let (outcome, ok) = engine_cmd::workflow_run(
                engine_cmd::WorkflowRun {
                    file,
                    input,
                    db,
                    quiet,
                    pin,
                    nodes: nodes.options(decide)?,
                },
                registry,
            )?;
            emit!("{}", serde_json::to_string_pretty(&outcome)?);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Dev {
            host,
            port,
            data_dir,
            org,
            no_examples,
            builder_dir,
            nodes,
            registry,
        } => {
            if !cm_api::routes::valid_org(&org) {
                anyhow::bail!(
                    "--org `{org}`: lowercase letters, digits and -, at most 15 characters"
                );
            }
            let registry = registry.load()?;
            dev::dev(
                dev::DevOptions {
                    host,
                    port,
                    data_dir,
                    org,
                    examples: !no_examples,
                    builder_dir: dev::builder_dir(builder_dir)?,
                    nodes: nodes.options(Vec::new())?,
                },
                registry,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            data_dir,
            org,
            sub,
            role,
            ttl,
        } => {
            let role = cm_api::auth::Role::parse(&role)
                .with_context(|| format!("--role `{role}`: viewer, editor or admin"))?;
            emit!("{}", dev::mint(&data_dir, &org, &sub, role, ttl)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            emit!(
                "{}",
                serde_json::to_string_pretty(&cm_model::workflow_json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            emit!(
                "{}",
                serde_json::to_string_pretty(&cm_api::openapi::document())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_failure(file: &Path, e: &cm_model::ParseError, format: Format) -> ExitCode {
    match format {
        Format::Human => eprintln!("{}: error[{}] {e}", file.display(), e.code()),
        Format::Json => emit!(
            "{}",
            serde_json::to_string_pretty(&parse_failure_doc(e)).unwrap_or_default()
        ),
    }
    ExitCode::from(1)
}

/// A parse error in the shape of `validate --format json`.
fn parse_failure_doc(e: &cm_model::ParseError) -> serde_json::Value {
    let (line, column, path) = match e {
        cm_model::ParseError::Syntax { line, column, .. } => (*line, *column, String::new()),
        cm_model::ParseError::Shape {
            path, line, column, ..
        } => (*line, *column, path.clone()),
        cm_model::ParseError::TooLarge { .. } => (0, 0, String::new()),
    };
    json!({
        "valid": false,
        "errors": 1,
        "warnings": 0,
        "findings": [{
            "code": e.code(),
            "severity": "error",
            "path": path,
            "line": line,
            "column": column,
            "message": e.to_string(),
        }]
    })
}

/// `file:line:column` of a JSON Pointer in the file's text (just `file` if it cannot be found).
fn location(file: &Path, text: &str, pointer: &str) -> String {
    match cm_model::locate(text, pointer) {
        Some((line, column)) => format!("{}:{line}:{column}", file.display()),
        None => file.display().to_string(),
    }
}

fn print_findings(file: &Path, text: &str, findings: &[Finding], format: Format) {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match format {
        Format::Human => {
            for f in findings {
                eprintln!("{}: {f}", location(file, text, &f.path));
            }
            eprintln!(
                "{}: {} ({errors} error(s), {warnings} warning(s))",
                file.display(),
                if errors == 0 { "valid" } else { "invalid" }
            );
        }
        Format::Json => emit!(
            "{}",
            serde_json::to_string_pretty(&findings_doc(text, findings)).unwrap_or_default()
        ),
    }
}

/// `{valid, errors, warnings, findings}` with each finding's line and column.
fn findings_doc(text: &str, findings: &[Finding]) -> serde_json::Value {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let located: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            if let Some((line, column)) = cm_model::locate(text, &f.path) {
                v["line"] = json!(line);
                v["column"] = json!(column);
            }
            v
        })
        .collect();
    json!({
        "valid": errors == 0,
        "errors": errors,
        "warnings": findings.len() - errors,
        "findings": located,
    })
}
