//! [`SqliteStore`]: the embedded default. One SQLite file (it may be shared with the engine's
//! and `cm-local`'s tables: every table here is prefixed `cp_`), WAL journal,
//! `synchronous=NORMAL` (a commit survives the process being killed, not power loss), a busy
//! timeout for the other connections writing the same file.
//!
//! Semantics are [`MemoryStore`](crate::memory::MemoryStore)'s (see its module docs), checked by
//! the `contract` suite (feature `contract`).
//!
//! # Threads
//!
//! One connection behind a mutex; every call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]), so the async worker threads never wait on SQLite, on the
//! lock, on the busy timeout or on the disk. Each call is one statement or one transaction
//! lasting microseconds, so serialising them through one connection costs little for a control
//! plane; in exchange every multi-statement write is trivially atomic within the process, and
//! [`SqliteStore::in_memory`] behaves exactly like a file. (A dedicated thread with a channel
//! would do the same work with the same hand-off cost, plus a channel and a shutdown to
//! manage.) Calls therefore need a tokio runtime. A future dropped before it completes does
//! not cancel its statement: the write still happens (or not) as a whole.
//!
//! # Atomicity
//!
//! Multi-statement writes run in `BEGIN IMMEDIATE` transactions (so that another process on the
//! same file cannot interleave); conditional writes are single statements where possible
//! (`finish_run` is `UPDATE … WHERE status = 'RUNNING' RETURNING …`, `reopen_run` the
//! converse, `publish` is an `UPDATE …
//! WHERE EXISTS (the version)`, a route is an upsert conditioned on its organisation).
//!
//! # Schema and migrations
//!
//! `cp_schema_version` holds one row per applied migration. Opening applies the missing ones
//! of [`SqliteStore::SCHEMA_VERSION`] in one `BEGIN IMMEDIATE` transaction (so concurrent
//! openers apply them once); a file whose schema is newer than this build knows is refused
//! with a `Backend` error. (`PRAGMA user_version` is not used: the file is shared with other
//! crates' tables, and there is one `user_version` per file.)
//!
//! # Lists
//!
//! Every list is a keyset query on an index whose order is the list's order (workflows by
//! `(org, id)` or `(org, is_template, id)`; runs by `(org[, workflow_id][, status],
//! started_at_ms DESC, id DESC)`; responses by `(org, workflow_id, submitted_at_ms DESC, id
//! DESC)`; audit by `(org, seq DESC)`), continuing after the cursor's key, never `OFFSET`: a
//! page costs the same at any depth.
//!
//! Workflow search checks the substring exactly (`instr` on a lowercased copy of the id, name
//! and description). For needles of three characters or more, an FTS5 trigram index first
//! gives the candidates (in the whole file): up to 500 of them drive the query (a rare needle
//! costs a few lookups, not a scan); more mean matches are dense, and the query walks `(org,
//! id, search)` in id order until the page is full. Needles shorter than a trigram always walk
//! that index.

use crate::memory::{
    check_end, check_expected, check_workflow_absent, keys, new_workflow, response_exists,
    route_not_found, route_taken, run_ended, run_exists, run_running, search_needle, search_text,
    version_not_found,
};
use crate::{
    AuditEvent, AuditStore, Connection, ConnectionStore, Created, FormResponse, FormStore,
    NodeExecution, Page, Result, Route, RouteIndex, RouteStore, RunEnd, RunQuery, RunRecord,
    RunStatus, RunStore, StoreError, WorkflowQuery, WorkflowStore, WorkflowSummary,
    WorkflowVersion, WorkflowWrite, check_limit,
};
use rusqlite::types::{ToSql, Type};
use rusqlite::{Connection as Db, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The SQLite store (see the module docs). Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Mutex<Db>>,
    /// A second connection for reads of a file database (WAL lets it read while the first one
    /// writes), so a get never queues behind a batch of writes. In memory there is only one.
    reader: Option<Arc<Mutex<Db>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Backend(format!("SQLite: {e}"))
    }
}

/// The migrations, in order: migration `i` (0-based) brings the schema to version `i + 1`.
/// Never edit one that has shipped; append.
const MIGRATIONS: &[&str] = &[
    // 1: the control plane's tables.
    "
CREATE TABLE cp_workflows (
  seq INTEGER PRIMARY KEY, org TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,
  description TEXT NOT NULL, latest_version INTEGER NOT NULL, published_version INTEGER,
  state_machine TEXT, is_template INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL, updated_at_ms INTEGER NOT NULL, updated_by TEXT NOT NULL,
  search TEXT NOT NULL);
CREATE UNIQUE INDEX cp_workflows_by_id ON cp_workflows (org, id);
CREATE INDEX cp_workflows_by_template ON cp_workflows (org, is_template, id);
CREATE INDEX cp_workflows_search_scan ON cp_workflows (org, id, search);
CREATE VIRTUAL TABLE cp_workflows_search USING fts5 (
  search, content = 'cp_workflows', content_rowid = 'seq', tokenize = 'trigram case_sensitive 1');
CREATE TRIGGER cp_workflows_search_insert AFTER INSERT ON cp_workflows BEGIN
  INSERT INTO cp_workflows_search (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TRIGGER cp_workflows_search_delete AFTER DELETE ON cp_workflows BEGIN
  INSERT INTO cp_workflows_search (cp_workflows_search, rowid, search)
    VALUES ('delete', old.seq, old.search);
END;
CREATE TRIGGER cp_workflows_search_update AFTER UPDATE OF search ON cp_workflows
  WHEN old.search IS NOT new.search BEGIN
  INSERT INTO cp_workflows_search (cp_workflows_search, rowid, search)
    VALUES ('delete', old.seq, old.search);
  INSERT INTO cp_workflows_search (rowid, search) VALUES (new.seq, new.search);
END;
CREATE TABLE cp_workflow_tombstones (
  org TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (org, id)) WITHOUT ROWID;
CREATE TABLE cp_workflow_versions (
  org TEXT NOT NULL, workflow_id TEXT NOT NULL, version INTEGER NOT NULL,
  definition TEXT NOT NULL, created_at_ms INTEGER NOT NULL, created_by TEXT NOT NULL,
  PRIMARY KEY (org, workflow_id, version));

CREATE TABLE cp_runs (
  seq INTEGER PRIMARY KEY, org TEXT NOT NULL, id TEXT NOT NULL, workflow_id TEXT NOT NULL,
  workflow_version INTEGER NOT NULL, execution_arn TEXT NOT NULL, status TEXT NOT NULL,
  trigger_type TEXT NOT NULL, input TEXT NOT NULL, output TEXT, error TEXT, cause TEXT,
  idempotency_key TEXT, started_by TEXT NOT NULL, started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER, retry_of TEXT);
CREATE UNIQUE INDEX cp_runs_by_id ON cp_runs (org, id);
CREATE INDEX cp_runs_by_start ON cp_runs (org, started_at_ms DESC, id DESC);
CREATE INDEX cp_runs_by_workflow ON cp_runs (org, workflow_id, started_at_ms DESC, id DESC);
CREATE INDEX cp_runs_by_status ON cp_runs (org, status, started_at_ms DESC, id DESC);
CREATE INDEX cp_runs_by_workflow_status
  ON cp_runs (org, workflow_id, status, started_at_ms DESC, id DESC);
CREATE UNIQUE INDEX cp_runs_by_idempotency_key ON cp_runs (org, workflow_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE TABLE cp_node_executions (
  seq INTEGER PRIMARY KEY, org TEXT NOT NULL, run_id TEXT NOT NULL, node_id TEXT NOT NULL,
  step TEXT NOT NULL, status TEXT NOT NULL, started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER, output_preview TEXT, error TEXT);
CREATE UNIQUE INDEX cp_node_executions_by_key ON cp_node_executions (org, run_id, node_id, step);
CREATE INDEX cp_node_executions_by_start ON cp_node_executions (org, run_id, started_at_ms, seq);

CREATE TABLE cp_form_responses (
  seq INTEGER PRIMARY KEY, org TEXT NOT NULL, workflow_id TEXT NOT NULL, id TEXT NOT NULL,
  client_key TEXT, data TEXT NOT NULL, submitted_at_ms INTEGER NOT NULL, run_id TEXT);
CREATE UNIQUE INDEX cp_form_responses_by_id ON cp_form_responses (org, workflow_id, id);
CREATE UNIQUE INDEX cp_form_responses_by_client_key
  ON cp_form_responses (org, workflow_id, client_key) WHERE client_key IS NOT NULL;
CREATE INDEX cp_form_responses_by_submitted
  ON cp_form_responses (org, workflow_id, submitted_at_ms DESC, id DESC);

CREATE TABLE cp_routes (
  kind TEXT NOT NULL, route_key TEXT NOT NULL, org TEXT NOT NULL, workflow_id TEXT NOT NULL,
  PRIMARY KEY (kind, route_key)) WITHOUT ROWID;
CREATE INDEX cp_routes_by_workflow ON cp_routes (org, workflow_id);

CREATE TABLE cp_connections (
  id TEXT PRIMARY KEY, org TEXT NOT NULL, subject TEXT NOT NULL,
  connected_at_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE cp_subscriptions (
  connection_id TEXT NOT NULL, topic TEXT NOT NULL, org TEXT NOT NULL,
  PRIMARY KEY (connection_id, topic)) WITHOUT ROWID;
CREATE INDEX cp_subscriptions_by_topic ON cp_subscriptions (org, topic, connection_id);

CREATE TABLE cp_audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, at_ms INTEGER NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX cp_audit_by_org ON cp_audit (org, seq DESC);
",
];

impl SqliteStore {
    /// The schema version this build writes (the number of migrations it knows).
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// Opens the database at `path`, creating the file (not its directory: a missing
    /// directory is a `Backend` error) and applying pending migrations. A file written by a
    /// newer build (a schema version above [`SqliteStore::SCHEMA_VERSION`]) is a `Backend`
    /// error.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|d| !d.is_dir()) {
            return Err(StoreError::Backend(format!(
                "cannot open {}: directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
        let opened = (|| -> Result<Db> {
            let db = Db::open(path)?;
            db.busy_timeout(Duration::from_secs(5))?;
            db.pragma_update(None, "journal_mode", "WAL")?;
            db.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(db)
        })();
        let db = opened.map_err(|e| match e {
            StoreError::Backend(m) => {
                StoreError::Backend(format!("cannot open {}: {m}", path.display()))
            }
            e => e,
        })?;
        let mut store = SqliteStore::init(db, &path.display().to_string())?;
        let reader = (|| -> Result<Db> {
            let db = Db::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            db.busy_timeout(Duration::from_secs(5))?;
            db.set_prepared_statement_cache_capacity(128);
            Ok(db)
        })()
        .map_err(|e| {
            StoreError::Backend(format!("cannot open {} for reading: {e}", path.display()))
        })?;
        store.reader = Some(Arc::new(Mutex::new(reader)));
        Ok(store)
    }

    /// A store in memory (tests, runs without a file). Nothing survives the store.
    pub fn in_memory() -> Result<SqliteStore> {
        SqliteStore::init(Db::open_in_memory()?, ":memory:")
    }

    fn init(mut db: Db, name: &str) -> Result<SqliteStore> {
        db.set_prepared_statement_cache_capacity(128);
        migrate(&mut db, name)?;
        Ok(SqliteStore {
            db: Arc::new(Mutex::new(db)),
            reader: None,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        // Every call is one statement or one transaction (rolled back when dropped), so a
        // panic while holding the lock leaves the database consistent.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` with the connection on the blocking pool.
    /// Like [`SqliteStore::call`] for a read-only `f`: on the read connection when there is one.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(self.reader.as_ref().unwrap_or(&self.db));
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut db)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite call did not complete: {e}")))?
    }

    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut db)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite call did not complete: {e}")))?
    }

    /// One `SELECT 1` through the same path as every call (blocking pool, lock, cached
    /// statement): the baseline the scale bench compares calls with.
    #[doc(hidden)]
    pub async fn ping(&self) -> Result<i64> {
        self.call(|db| Ok(db.prepare_cached("SELECT 1")?.query_row([], |r| r.get(0))?))
            .await
    }

    /// Inserts workflows (at version 1) in one transaction, without the checks of
    /// `create_workflow`: for filling benchmarks. Blocks.
    #[doc(hidden)]
    pub fn bulk_insert_workflows(
        &self,
        org: &str,
        workflows: impl IntoIterator<Item = (String, WorkflowWrite)>,
    ) -> Result<()> {
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (id, write) in workflows {
            let search = search_text(&id, &write.name, &write.description);
            let (summary, version) = new_workflow(&id, write);
            insert_workflow(&tx, org, &summary, &search)?;
            insert_version(&tx, org, &version)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Inserts runs in one transaction, without the checks of `create_run`: for filling
    /// benchmarks. Blocks.
    #[doc(hidden)]
    pub fn bulk_insert_runs(
        &self,
        org: &str,
        runs: impl IntoIterator<Item = RunRecord>,
    ) -> Result<()> {
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for run in runs {
            insert_run(&tx, org, &run)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// `EXPLAIN QUERY PLAN` of the statement a list call runs (for tests that keep lists on
    /// their indexes). Blocks.
    #[doc(hidden)]
    pub fn explain_list_runs(&self, org: &str, query: &RunQuery) -> Result<String> {
        let before = keys::parse_run(query.cursor.as_deref())?;
        let limit = query.limit as i64 + 1;
        let (sql, params) = runs_query(&org, query, before.as_ref(), &limit);
        explain(&self.lock(), &sql, &params)
    }

    /// `EXPLAIN QUERY PLAN` of a workflow list. Blocks.
    #[doc(hidden)]
    pub fn explain_list_workflows(&self, org: &str, query: &WorkflowQuery) -> Result<String> {
        let after = keys::parse_workflow(query.cursor.as_deref())?;
        let needle = search_needle(query.search.as_deref());
        let q = WorkflowsQuery::new(org, query.templates, after, needle, query.limit + 1);
        let db = self.lock();
        let candidates = q.candidates(&db)?;
        explain(
            &db,
            &q.sql(candidates.is_some()),
            &q.params(candidates.as_ref()),
        )
    }
}

fn explain(db: &Db, sql: &str, params: &[(&str, &dyn ToSql)]) -> Result<String> {
    let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(3))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("\n"))
}

fn migrate(db: &mut Db, name: &str) -> Result<()> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS cp_schema_version (version INTEGER PRIMARY KEY)")?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM cp_schema_version",
        [],
        |r| r.get(0),
    )?;
    let known = i64::from(SqliteStore::SCHEMA_VERSION);
    if current > known {
        return Err(StoreError::Backend(format!(
            "{name} has control-plane schema version {current}, newer than this build knows \
             ({known}): upgrade ConcertMaster to open it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version > current {
            tx.execute_batch(sql).map_err(|e| {
                StoreError::Backend(format!("{name}: migration {version} failed: {e}"))
            })?;
            tx.execute(
                "INSERT INTO cp_schema_version (version) VALUES (?1)",
                [version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn immediate(db: &mut Db) -> Result<rusqlite::Transaction<'_>> {
    Ok(db.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

fn exists(db: &Db, sql: &str, params: impl rusqlite::Params) -> Result<bool> {
    Ok(db
        .prepare_cached(sql)?
        .query_row(params, |_| Ok(()))
        .optional()?
        .is_some())
}

fn workflow_exists(db: &Db, org: &str, id: &str) -> Result<bool> {
    exists(
        db,
        "SELECT 1 FROM cp_workflows WHERE org = ?1 AND id = ?2",
        params![org, id],
    )
}

fn run_exists_in(db: &Db, org: &str, id: &str) -> Result<bool> {
    exists(
        db,
        "SELECT 1 FROM cp_runs WHERE org = ?1 AND id = ?2",
        params![org, id],
    )
}

/// A JSON column.
fn json_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Value> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

/// A nullable JSON column.
fn json_opt(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = r.get(i)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
    })
    .transpose()
}

// ---------------------------------------------------------------- workflows

const WORKFLOW_COLUMNS: &str = "id, name, description, latest_version, published_version, \
    state_machine, is_template, created_at_ms, created_by, updated_at_ms, updated_by";

fn workflow_row(r: &Row<'_>) -> rusqlite::Result<WorkflowSummary> {
    Ok(WorkflowSummary {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        latest_version: r.get(3)?,
        published_version: r.get(4)?,
        state_machine: r.get(5)?,
        is_template: r.get(6)?,
        created_at_ms: r.get(7)?,
        created_by: r.get(8)?,
        updated_at_ms: r.get(9)?,
        updated_by: r.get(10)?,
    })
}

const VERSION_COLUMNS: &str = "workflow_id, version, definition, created_at_ms, created_by";

fn version_row(r: &Row<'_>) -> rusqlite::Result<WorkflowVersion> {
    Ok(WorkflowVersion {
        workflow_id: r.get(0)?,
        version: r.get(1)?,
        definition: json_col(r, 2)?,
        created_at_ms: r.get(3)?,
        created_by: r.get(4)?,
    })
}

fn insert_workflow(db: &Db, org: &str, s: &WorkflowSummary, search: &str) -> Result<()> {
    db.prepare_cached(
        "INSERT INTO cp_workflows (org, id, name, description, latest_version, published_version,
           state_machine, is_template, created_at_ms, created_by, updated_at_ms, updated_by, search)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        org,
        s.id,
        s.name,
        s.description,
        s.latest_version,
        s.published_version,
        s.state_machine,
        s.is_template,
        s.created_at_ms,
        s.created_by,
        s.updated_at_ms,
        s.updated_by,
        search
    ])?;
    Ok(())
}

fn insert_version(db: &Db, org: &str, v: &WorkflowVersion) -> Result<()> {
    db.prepare_cached(
        "INSERT INTO cp_workflow_versions (org, workflow_id, version, definition, created_at_ms,
           created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        org,
        v.workflow_id,
        v.version,
        v.definition.to_string(),
        v.created_at_ms,
        v.created_by
    ])?;
    Ok(())
}

fn get_workflow(db: &Db, org: &str, id: &str) -> Result<Option<WorkflowSummary>> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM cp_workflows WHERE org = ?1 AND id = ?2"
        ))?
        .query_row(params![org, id], workflow_row)
        .optional()?)
}

/// A workflow list query: its SQL depends on which filters are given (so that each variant
/// is planned on its own index), its parameters are named.
struct WorkflowsQuery {
    org: String,
    templates: Option<bool>,
    after: Option<String>,
    needle: Option<String>,
    /// The FTS5 phrase of the needle, for needles the trigram index can narrow (3+ chars).
    phrase: Option<String>,
    limit: i64,
}

impl WorkflowsQuery {
    fn new(
        org: &str,
        templates: Option<bool>,
        after: Option<String>,
        needle: Option<String>,
        limit: usize,
    ) -> WorkflowsQuery {
        let phrase = needle
            .as_deref()
            .filter(|n| n.chars().count() >= 3)
            .map(|n| format!("\"{}\"", n.replace('"', "\"\"")));
        WorkflowsQuery {
            org: org.to_owned(),
            templates,
            after,
            needle,
            phrase,
            limit: limit as i64,
        }
    }

    /// The statement: driven by the trigram candidates when there are few (`narrow`), else
    /// by an index in id order (filtering each entry).
    fn sql(&self, narrow: bool) -> String {
        let mut sql = format!("SELECT {WORKFLOW_COLUMNS} FROM cp_workflows ");
        // `+column` keeps SQLite from walking an index on that column: when narrowed, the
        // candidates drive the query (then get sorted: at most `FTS_CAP` of them).
        let plus = if narrow {
            sql.push_str("WHERE seq IN (SELECT value FROM json_each(:candidates)) AND ");
            "+"
        } else if self.needle.is_some() && self.templates.is_none() {
            // The id order with the search text in the index: no row is read to filter it.
            sql.push_str("INDEXED BY cp_workflows_search_scan WHERE ");
            ""
        } else {
            sql.push_str("WHERE ");
            ""
        };
        sql.push_str(&format!("{plus}org = :org"));
        if self.templates.is_some() {
            sql.push_str(&format!(" AND {plus}is_template = :templates"));
        }
        if self.after.is_some() {
            sql.push_str(&format!(" AND {plus}id > :after"));
        }
        if self.needle.is_some() {
            sql.push_str(" AND instr(search, :needle) > 0");
        }
        sql.push_str(" ORDER BY id LIMIT :limit");
        sql
    }

    /// The trigram candidates (rowids, as a JSON array, in every organisation of the file) if
    /// the index narrows this search to at most [`FTS_CAP`] of them.
    fn candidates(&self, db: &Db) -> Result<Option<String>> {
        let Some(phrase) = &self.phrase else {
            return Ok(None);
        };
        let mut stmt = db.prepare_cached(
            "SELECT rowid FROM cp_workflows_search WHERE cp_workflows_search MATCH ?1 LIMIT ?2",
        )?;
        let rowids = stmt
            .query_map(params![phrase, FTS_CAP + 1], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if rowids.len() as i64 > FTS_CAP {
            return Ok(None);
        }
        Ok(Some(Value::from(rowids).to_string()))
    }

    fn params<'a>(&'a self, candidates: Option<&'a String>) -> Vec<(&'a str, &'a dyn ToSql)> {
        let mut p: Vec<(&str, &dyn ToSql)> = vec![(":org", &self.org), (":limit", &self.limit)];
        if let Some(t) = &self.templates {
            p.push((":templates", t));
        }
        if let Some(a) = &self.after {
            p.push((":after", a));
        }
        if let Some(c) = candidates {
            p.push((":candidates", c));
        }
        if let Some(n) = &self.needle {
            p.push((":needle", n));
        }
        p
    }
}

/// Above this many trigram candidates, a search walks the id index instead (its matches are
/// dense enough that a page fills quickly).
const FTS_CAP: i64 = 500;

fn list_workflows(db: &Db, q: &WorkflowsQuery) -> Result<Vec<WorkflowSummary>> {
    let candidates = q.candidates(db)?;
    let mut stmt = db.prepare_cached(&q.sql(candidates.is_some()))?;
    let rows = stmt.query_map(q.params(candidates.as_ref()).as_slice(), workflow_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn create_workflow(
    db: &mut Db,
    org: &str,
    id: &str,
    write: WorkflowWrite,
) -> Result<WorkflowSummary> {
    let search = search_text(id, &write.name, &write.description);
    let (summary, version) = new_workflow(id, write);
    let tx = immediate(db)?;
    let deleted = exists(
        &tx,
        "SELECT 1 FROM cp_workflow_tombstones WHERE org = ?1 AND id = ?2",
        params![org, id],
    )?;
    check_workflow_absent(workflow_exists(&tx, org, id)?, deleted, id)?;
    insert_workflow(&tx, org, &summary, &search)?;
    insert_version(&tx, org, &version)?;
    tx.commit()?;
    Ok(summary)
}

fn update_workflow(
    db: &mut Db,
    org: &str,
    id: &str,
    expected: Option<u32>,
    write: WorkflowWrite,
) -> Result<WorkflowSummary> {
    let search = search_text(id, &write.name, &write.description);
    let tx = immediate(db)?;
    let latest: u32 = tx
        .prepare_cached("SELECT latest_version FROM cp_workflows WHERE org = ?1 AND id = ?2")?
        .query_row(params![org, id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::not_found("workflow", id))?;
    check_expected(id, latest, expected)?;
    let version = WorkflowVersion {
        workflow_id: id.to_owned(),
        version: latest + 1,
        definition: write.definition,
        created_at_ms: write.at_ms,
        created_by: write.actor,
    };
    insert_version(&tx, org, &version)?;
    let summary = tx
        .prepare_cached(&format!(
            "UPDATE cp_workflows SET latest_version = ?3, name = ?4, description = ?5,
               is_template = ?6, updated_at_ms = ?7, updated_by = ?8, search = ?9
             WHERE org = ?1 AND id = ?2 RETURNING {WORKFLOW_COLUMNS}"
        ))?
        .query_row(
            params![
                org,
                id,
                version.version,
                write.name,
                write.description,
                write.is_template,
                version.created_at_ms,
                version.created_by,
                search
            ],
            workflow_row,
        )?;
    tx.commit()?;
    Ok(summary)
}

fn delete_workflow(db: &mut Db, org: &str, id: &str) -> Result<()> {
    let tx = immediate(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM cp_workflows WHERE org = ?1 AND id = ?2")?
        .execute(params![org, id])?;
    if deleted == 0 {
        return Err(StoreError::not_found("workflow", id));
    }
    tx.prepare_cached("DELETE FROM cp_workflow_versions WHERE org = ?1 AND workflow_id = ?2")?
        .execute(params![org, id])?;
    tx.prepare_cached("INSERT INTO cp_workflow_tombstones (org, id) VALUES (?1, ?2)")?
        .execute(params![org, id])?;
    tx.commit()?;
    Ok(())
}

fn get_version(db: &Db, org: &str, id: &str, version: u32) -> Result<WorkflowVersion> {
    let found = db
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM cp_workflow_versions
             WHERE org = ?1 AND workflow_id = ?2 AND version = ?3"
        ))?
        .query_row(params![org, id, version], version_row)
        .optional()?;
    match found {
        Some(v) => Ok(v),
        None if workflow_exists(db, org, id)? => Err(version_not_found(id, version)),
        None => Err(StoreError::not_found("workflow", id)),
    }
}

fn list_versions(
    db: &Db,
    org: &str,
    id: &str,
    before: Option<u32>,
    limit: usize,
) -> Result<Vec<WorkflowVersion>> {
    if !workflow_exists(db, org, id)? {
        return Err(StoreError::not_found("workflow", id));
    }
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM cp_workflow_versions
         WHERE org = ?1 AND workflow_id = ?2 AND version < ?3 ORDER BY version DESC LIMIT ?4"
    ))?;
    let before = before.map_or(i64::MAX, i64::from);
    let rows = stmt.query_map(params![org, id, before, limit as i64], version_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn publish(
    db: &Db,
    org: &str,
    id: &str,
    version: u32,
    state_machine: &str,
    actor: &str,
    at_ms: i64,
) -> Result<WorkflowSummary> {
    let updated = db
        .prepare_cached(&format!(
            "UPDATE cp_workflows SET published_version = ?3, state_machine = ?4, updated_by = ?5,
               updated_at_ms = ?6
             WHERE org = ?1 AND id = ?2 AND EXISTS (SELECT 1 FROM cp_workflow_versions
               WHERE org = ?1 AND workflow_id = ?2 AND version = ?3)
             RETURNING {WORKFLOW_COLUMNS}"
        ))?
        .query_row(
            params![org, id, version, state_machine, actor, at_ms],
            workflow_row,
        )
        .optional()?;
    match updated {
        Some(s) => Ok(s),
        None if workflow_exists(db, org, id)? => Err(version_not_found(id, version)),
        None => Err(StoreError::not_found("workflow", id)),
    }
}

impl WorkflowStore for SqliteStore {
    async fn create_workflow(
        &self,
        org: &str,
        id: &str,
        write: WorkflowWrite,
    ) -> Result<WorkflowSummary> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.call(move |db| create_workflow(db, &org, &id, write))
            .await
    }

    async fn get_workflow(&self, org: &str, id: &str) -> Result<WorkflowSummary> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.read(move |db| {
            get_workflow(db, &org, &id)?.ok_or_else(|| StoreError::not_found("workflow", id))
        })
        .await
    }

    async fn list_workflows(
        &self,
        org: &str,
        query: WorkflowQuery,
    ) -> Result<Page<WorkflowSummary>> {
        let limit = check_limit(query.limit)?;
        let after = keys::parse_workflow(query.cursor.as_deref())?;
        let needle = search_needle(query.search.as_deref());
        let q = WorkflowsQuery::new(org, query.templates, after, needle, limit + 1);
        let items = self.read(move |db| list_workflows(db, &q)).await?;
        Ok(page(items, limit, |s| keys::workflow(&s.id)))
    }

    async fn update_workflow(
        &self,
        org: &str,
        id: &str,
        expected_version: Option<u32>,
        write: WorkflowWrite,
    ) -> Result<WorkflowSummary> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.call(move |db| update_workflow(db, &org, &id, expected_version, write))
            .await
    }

    async fn delete_workflow(&self, org: &str, id: &str) -> Result<()> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.call(move |db| delete_workflow(db, &org, &id)).await
    }

    async fn get_version(&self, org: &str, id: &str, version: u32) -> Result<WorkflowVersion> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.read(move |db| get_version(db, &org, &id, version))
            .await
    }

    async fn list_versions(
        &self,
        org: &str,
        id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<WorkflowVersion>> {
        let limit = check_limit(limit)?;
        let before = keys::parse_version(cursor.as_deref())?;
        let (org, id) = (org.to_owned(), id.to_owned());
        let items = self
            .read(move |db| list_versions(db, &org, &id, before, limit + 1))
            .await?;
        Ok(page(items, limit, |v| keys::version(v.version)))
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
        let (org, id) = (org.to_owned(), id.to_owned());
        let (state_machine, actor) = (state_machine.to_owned(), actor.to_owned());
        self.call(move |db| publish(db, &org, &id, version, &state_machine, &actor, at_ms))
            .await
    }
}

/// Cuts `items` (holding up to `limit + 1` items) to a page.
fn page<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}

// ---------------------------------------------------------------- runs

const RUN_COLUMNS: &str = "id, workflow_id, workflow_version, execution_arn, status, \
    trigger_type, input, output, error, cause, idempotency_key, started_by, started_at_ms, \
    ended_at_ms, retry_of";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = r.get(4)?;
    Ok(RunRecord {
        id: r.get(0)?,
        workflow_id: r.get(1)?,
        workflow_version: r.get(2)?,
        execution_arn: r.get(3)?,
        status: RunStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                Type::Text,
                format!("unknown run status `{status}`").into(),
            )
        })?,
        trigger: r.get(5)?,
        input: json_col(r, 6)?,
        output: json_opt(r, 7)?,
        error: r.get(8)?,
        cause: r.get(9)?,
        idempotency_key: r.get(10)?,
        started_by: r.get(11)?,
        started_at_ms: r.get(12)?,
        ended_at_ms: r.get(13)?,
        retry_of: r.get(14)?,
    })
}

fn insert_run(db: &Db, org: &str, run: &RunRecord) -> Result<()> {
    db.prepare_cached(
        "INSERT INTO cp_runs (org, id, workflow_id, workflow_version, execution_arn, status,
           trigger_type, input, output, error, cause, idempotency_key, started_by, started_at_ms,
           ended_at_ms, retry_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        org,
        run.id,
        run.workflow_id,
        run.workflow_version,
        run.execution_arn,
        run.status.as_str(),
        run.trigger,
        run.input.to_string(),
        run.output.as_ref().map(Value::to_string),
        run.error,
        run.cause,
        run.idempotency_key,
        run.started_by,
        run.started_at_ms,
        run.ended_at_ms,
        run.retry_of
    ])?;
    Ok(())
}

fn get_run(db: &Db, org: &str, id: &str) -> Result<Option<RunRecord>> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM cp_runs WHERE org = ?1 AND id = ?2"
        ))?
        .query_row(params![org, id], run_row)
        .optional()?)
}

fn create_run(db: &mut Db, org: &str, run: RunRecord) -> Result<Created<RunRecord>> {
    let tx = immediate(db)?;
    if let Some(key) = &run.idempotency_key {
        let existing = tx
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM cp_runs
                 WHERE org = ?1 AND workflow_id = ?2 AND idempotency_key = ?3"
            ))?
            .query_row(params![org, run.workflow_id, key], run_row)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Created::Existing(existing));
        }
    }
    if run_exists_in(&tx, org, &run.id)? {
        return Err(run_exists(&run.id));
    }
    insert_run(&tx, org, &run)?;
    tx.commit()?;
    Ok(Created::New(run))
}

/// The statement and parameters of a run list (filters decide the index).
fn runs_query<'a>(
    org: &'a &'a str,
    query: &'a RunQuery,
    before: Option<&'a (i64, String)>,
    limit: &'a i64,
) -> (String, Vec<(&'static str, &'a dyn ToSql)>) {
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM cp_runs WHERE org = :org");
    let mut p: Vec<(&'static str, &'a dyn ToSql)> = vec![(":org", org), (":limit", limit)];
    if let Some(w) = &query.workflow_id {
        sql.push_str(" AND workflow_id = :workflow");
        p.push((":workflow", w));
    }
    if let Some(s) = &query.status {
        sql.push_str(" AND status = :status");
        p.push((":status", status_sql(s)));
    }
    if let Some((at, id)) = before {
        sql.push_str(" AND (started_at_ms, id) < (:at, :id)");
        p.push((":at", at));
        p.push((":id", id));
    }
    sql.push_str(" ORDER BY started_at_ms DESC, id DESC LIMIT :limit");
    (sql, p)
}

/// A status as a SQL parameter.
fn status_sql(s: &RunStatus) -> &'static &'static str {
    match s {
        RunStatus::Running => &"RUNNING",
        RunStatus::Succeeded => &"SUCCEEDED",
        RunStatus::Failed => &"FAILED",
        RunStatus::TimedOut => &"TIMED_OUT",
        RunStatus::Aborted => &"ABORTED",
    }
}

fn list_runs(
    db: &Db,
    org: &str,
    query: &RunQuery,
    before: Option<&(i64, String)>,
    limit: usize,
) -> Result<Vec<RunRecord>> {
    let limit = limit as i64;
    let (sql, params) = runs_query(&org, query, before, &limit);
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(params.as_slice(), run_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn finish_run(db: &Db, org: &str, id: &str, end: RunEnd) -> Result<RunRecord> {
    let updated = db
        .prepare_cached(&format!(
            "UPDATE cp_runs SET status = ?3, output = ?4, error = ?5, cause = ?6, ended_at_ms = ?7
             WHERE org = ?1 AND id = ?2 AND status = 'RUNNING' RETURNING {RUN_COLUMNS}"
        ))?
        .query_row(
            params![
                org,
                id,
                end.status.as_str(),
                end.output.as_ref().map(Value::to_string),
                end.error,
                end.cause,
                end.at_ms
            ],
            run_row,
        )
        .optional()?;
    match updated {
        Some(r) => Ok(r),
        None => match get_run(db, org, id)? {
            Some(r) => Err(run_ended(id, r.status)),
            None => Err(StoreError::not_found("run", id)),
        },
    }
}

fn reopen_run(db: &Db, org: &str, id: &str) -> Result<RunRecord> {
    let updated = db
        .prepare_cached(&format!(
            "UPDATE cp_runs SET status = 'RUNNING', output = NULL, error = NULL, cause = NULL,
               ended_at_ms = NULL
             WHERE org = ?1 AND id = ?2 AND status <> 'RUNNING' RETURNING {RUN_COLUMNS}"
        ))?
        .query_row(params![org, id], run_row)
        .optional()?;
    match updated {
        Some(r) => Ok(r),
        None if run_exists_in(db, org, id)? => Err(run_running(id)),
        None => Err(StoreError::not_found("run", id)),
    }
}

fn put_node_execution(db: &mut Db, org: &str, run_id: &str, n: &NodeExecution) -> Result<()> {
    let tx = immediate(db)?;
    if !run_exists_in(&tx, org, run_id)? {
        return Err(StoreError::not_found("run", run_id));
    }
    tx.prepare_cached(
        "INSERT INTO cp_node_executions (org, run_id, node_id, step, status, started_at_ms,
           ended_at_ms, output_preview, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (org, run_id, node_id, step) DO UPDATE SET status = excluded.status,
           started_at_ms = excluded.started_at_ms, ended_at_ms = excluded.ended_at_ms,
           output_preview = excluded.output_preview, error = excluded.error
         WHERE NOT (excluded.status = 'running' AND cp_node_executions.status = 'succeeded')",
    )?
    .execute(params![
        org,
        run_id,
        n.node_id,
        n.step,
        n.status,
        n.started_at_ms,
        n.ended_at_ms,
        n.output_preview,
        n.error
    ])?;
    tx.commit()?;
    Ok(())
}

fn list_node_executions(db: &Db, org: &str, run_id: &str) -> Result<Vec<NodeExecution>> {
    if !run_exists_in(db, org, run_id)? {
        return Err(StoreError::not_found("run", run_id));
    }
    let mut stmt = db.prepare_cached(
        "SELECT node_id, step, status, started_at_ms, ended_at_ms, output_preview, error
         FROM cp_node_executions WHERE org = ?1 AND run_id = ?2 ORDER BY started_at_ms, seq",
    )?;
    let rows = stmt.query_map(params![org, run_id], |r| {
        Ok(NodeExecution {
            node_id: r.get(0)?,
            step: r.get(1)?,
            status: r.get(2)?,
            started_at_ms: r.get(3)?,
            ended_at_ms: r.get(4)?,
            output_preview: r.get(5)?,
            error: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl RunStore for SqliteStore {
    async fn create_run(&self, org: &str, run: RunRecord) -> Result<Created<RunRecord>> {
        let org = org.to_owned();
        self.call(move |db| create_run(db, &org, run)).await
    }

    async fn get_run(&self, org: &str, id: &str) -> Result<RunRecord> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.read(move |db| get_run(db, &org, &id)?.ok_or_else(|| StoreError::not_found("run", id)))
            .await
    }

    async fn list_runs(&self, org: &str, query: RunQuery) -> Result<Page<RunRecord>> {
        let limit = check_limit(query.limit)?;
        let before = keys::parse_run(query.cursor.as_deref())?;
        let org = org.to_owned();
        let items = self
            .read(move |db| list_runs(db, &org, &query, before.as_ref(), limit + 1))
            .await?;
        Ok(page(items, limit, |r| keys::run(r.started_at_ms, &r.id)))
    }

    async fn finish_run(&self, org: &str, id: &str, end: RunEnd) -> Result<RunRecord> {
        check_end(&end)?;
        let (org, id) = (org.to_owned(), id.to_owned());
        self.call(move |db| finish_run(db, &org, &id, end)).await
    }

    async fn reopen_run(&self, org: &str, id: &str) -> Result<RunRecord> {
        let (org, id) = (org.to_owned(), id.to_owned());
        self.call(move |db| reopen_run(db, &org, &id)).await
    }

    async fn put_node_execution(&self, org: &str, run_id: &str, node: NodeExecution) -> Result<()> {
        let (org, run_id) = (org.to_owned(), run_id.to_owned());
        self.call(move |db| put_node_execution(db, &org, &run_id, &node))
            .await
    }

    async fn list_node_executions(&self, org: &str, run_id: &str) -> Result<Vec<NodeExecution>> {
        let (org, run_id) = (org.to_owned(), run_id.to_owned());
        self.read(move |db| list_node_executions(db, &org, &run_id))
            .await
    }
}

// ---------------------------------------------------------------- forms

const RESPONSE_COLUMNS: &str = "id, workflow_id, client_key, data, submitted_at_ms, run_id";

fn response_row(r: &Row<'_>) -> rusqlite::Result<FormResponse> {
    Ok(FormResponse {
        id: r.get(0)?,
        workflow_id: r.get(1)?,
        client_key: r.get(2)?,
        data: json_col(r, 3)?,
        submitted_at_ms: r.get(4)?,
        run_id: r.get(5)?,
    })
}

fn add_response(db: &mut Db, org: &str, response: FormResponse) -> Result<Created<FormResponse>> {
    let tx = immediate(db)?;
    if let Some(key) = &response.client_key {
        let existing = tx
            .prepare_cached(&format!(
                "SELECT {RESPONSE_COLUMNS} FROM cp_form_responses
                 WHERE org = ?1 AND workflow_id = ?2 AND client_key = ?3"
            ))?
            .query_row(params![org, response.workflow_id, key], response_row)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(Created::Existing(existing));
        }
    }
    if exists(
        &tx,
        "SELECT 1 FROM cp_form_responses WHERE org = ?1 AND workflow_id = ?2 AND id = ?3",
        params![org, response.workflow_id, response.id],
    )? {
        return Err(response_exists(&response.id));
    }
    tx.prepare_cached(
        "INSERT INTO cp_form_responses (org, workflow_id, id, client_key, data, submitted_at_ms,
           run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        org,
        response.workflow_id,
        response.id,
        response.client_key,
        response.data.to_string(),
        response.submitted_at_ms,
        response.run_id
    ])?;
    tx.commit()?;
    Ok(Created::New(response))
}

fn list_responses(
    db: &Db,
    org: &str,
    workflow_id: &str,
    before: Option<&(i64, String)>,
    limit: usize,
) -> Result<Vec<FormResponse>> {
    let limit = limit as i64;
    let rows = match before {
        None => db
            .prepare_cached(&format!(
                "SELECT {RESPONSE_COLUMNS} FROM cp_form_responses WHERE org = ?1 AND workflow_id = ?2
                 ORDER BY submitted_at_ms DESC, id DESC LIMIT ?3"
            ))?
            .query_map(params![org, workflow_id, limit], response_row)?
            .collect::<rusqlite::Result<_>>()?,
        Some((at, id)) => db
            .prepare_cached(&format!(
                "SELECT {RESPONSE_COLUMNS} FROM cp_form_responses WHERE org = ?1 AND workflow_id = ?2
                   AND (submitted_at_ms, id) < (?3, ?4)
                 ORDER BY submitted_at_ms DESC, id DESC LIMIT ?5"
            ))?
            .query_map(params![org, workflow_id, at, id, limit], response_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

impl FormStore for SqliteStore {
    async fn add_response(
        &self,
        org: &str,
        response: FormResponse,
    ) -> Result<Created<FormResponse>> {
        let org = org.to_owned();
        self.call(move |db| add_response(db, &org, response)).await
    }

    async fn set_response_run(
        &self,
        org: &str,
        workflow_id: &str,
        response_id: &str,
        run_id: &str,
    ) -> Result<()> {
        let (org, workflow_id) = (org.to_owned(), workflow_id.to_owned());
        let (response_id, run_id) = (response_id.to_owned(), run_id.to_owned());
        self.call(move |db| {
            let n = db
                .prepare_cached(
                    "UPDATE cp_form_responses SET run_id = ?4
                     WHERE org = ?1 AND workflow_id = ?2 AND id = ?3",
                )?
                .execute(params![org, workflow_id, response_id, run_id])?;
            if n == 0 {
                return Err(StoreError::not_found("response", response_id));
            }
            Ok(())
        })
        .await
    }

    async fn list_responses(
        &self,
        org: &str,
        workflow_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<FormResponse>> {
        let limit = check_limit(limit)?;
        let before = keys::parse_response(cursor.as_deref())?;
        let (org, workflow_id) = (org.to_owned(), workflow_id.to_owned());
        let items = self
            .read(move |db| list_responses(db, &org, &workflow_id, before.as_ref(), limit + 1))
            .await?;
        Ok(page(items, limit, |r| {
            keys::response(r.submitted_at_ms, &r.id)
        }))
    }
}

// ---------------------------------------------------------------- routes

impl RouteIndex for SqliteStore {
    async fn list_routes(&self, kind: &str) -> Result<Vec<Route>> {
        let kind = kind.to_owned();
        self.read(move |db| {
            // A range of the primary key (kind, route_key).
            let mut stmt = db.prepare_cached(
                "SELECT route_key, org, workflow_id FROM cp_routes WHERE kind = ?1 ORDER BY route_key",
            )?;
            let rows = stmt.query_map(params![kind], |r| {
                Ok(Route {
                    kind: kind.clone(),
                    key: r.get(0)?,
                    org: r.get(1)?,
                    workflow_id: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}

impl RouteStore for SqliteStore {
    async fn put_route(&self, route: Route) -> Result<()> {
        self.call(move |db| {
            // The upsert only replaces a route of the same organisation.
            let n = db
                .prepare_cached(
                    "INSERT INTO cp_routes (kind, route_key, org, workflow_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, route_key) DO UPDATE SET workflow_id = excluded.workflow_id
                     WHERE cp_routes.org = excluded.org",
                )?
                .execute(params![route.kind, route.key, route.org, route.workflow_id])?;
            if n == 0 {
                return Err(route_taken(&route.kind, &route.key));
            }
            Ok(())
        })
        .await
    }

    async fn get_route(&self, kind: &str, key: &str) -> Result<Route> {
        let (kind, key) = (kind.to_owned(), key.to_owned());
        self.read(move |db| {
            db.prepare_cached(
                "SELECT org, workflow_id FROM cp_routes WHERE kind = ?1 AND route_key = ?2",
            )?
            .query_row(params![kind, key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .map(|(org, workflow_id)| Route {
                kind: kind.clone(),
                key: key.clone(),
                org,
                workflow_id,
            })
            .ok_or_else(|| route_not_found(&kind, &key))
        })
        .await
    }

    async fn delete_routes(&self, org: &str, workflow_id: &str) -> Result<()> {
        let (org, workflow_id) = (org.to_owned(), workflow_id.to_owned());
        self.call(move |db| {
            db.prepare_cached("DELETE FROM cp_routes WHERE org = ?1 AND workflow_id = ?2")?
                .execute(params![org, workflow_id])?;
            Ok(())
        })
        .await
    }
}

// ---------------------------------------------------------------- connections

impl ConnectionStore for SqliteStore {
    async fn put_connection(&self, connection: Connection) -> Result<()> {
        self.call(move |db| {
            let tx = immediate(db)?;
            // Subscriptions made for another organisation do not follow the connection.
            tx.prepare_cached(
                "DELETE FROM cp_subscriptions WHERE connection_id = ?1 AND org <> ?2",
            )?
            .execute(params![connection.id, connection.org])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO cp_connections (id, org, subject, connected_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                connection.id,
                connection.org,
                connection.subject,
                connection.connected_at_ms
            ])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn get_connection(&self, id: &str) -> Result<Option<Connection>> {
        let id = id.to_owned();
        self.read(move |db| {
            Ok(db
                .prepare_cached(
                    "SELECT id, org, subject, connected_at_ms FROM cp_connections WHERE id = ?1",
                )?
                .query_row([&id], |r| {
                    Ok(Connection {
                        id: r.get(0)?,
                        org: r.get(1)?,
                        subject: r.get(2)?,
                        connected_at_ms: r.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn delete_connection(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(move |db| {
            let tx = immediate(db)?;
            tx.prepare_cached("DELETE FROM cp_subscriptions WHERE connection_id = ?1")?
                .execute([&id])?;
            tx.prepare_cached("DELETE FROM cp_connections WHERE id = ?1")?
                .execute([&id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn subscribe(&self, id: &str, topic: &str) -> Result<()> {
        let (id, topic) = (id.to_owned(), topic.to_owned());
        self.call(move |db| {
            let n = db
                .prepare_cached(
                    "INSERT OR IGNORE INTO cp_subscriptions (connection_id, topic, org)
                     SELECT id, ?2, org FROM cp_connections WHERE id = ?1",
                )?
                .execute(params![id, topic])?;
            if n == 0 && !exists(db, "SELECT 1 FROM cp_connections WHERE id = ?1", [&id])? {
                return Err(StoreError::not_found("connection", id));
            }
            Ok(())
        })
        .await
    }

    async fn unsubscribe(&self, id: &str, topic: &str) -> Result<()> {
        let (id, topic) = (id.to_owned(), topic.to_owned());
        self.call(move |db| {
            db.prepare_cached(
                "DELETE FROM cp_subscriptions WHERE connection_id = ?1 AND topic = ?2",
            )?
            .execute(params![id, topic])?;
            Ok(())
        })
        .await
    }

    async fn subscribers(&self, org: &str, topic: &str) -> Result<Vec<Connection>> {
        let (org, topic) = (org.to_owned(), topic.to_owned());
        self.read(move |db| {
            let mut stmt = db.prepare_cached(
                "SELECT c.id, c.org, c.subject, c.connected_at_ms
                 FROM cp_subscriptions s JOIN cp_connections c ON c.id = s.connection_id
                 WHERE s.org = ?1 AND s.topic = ?2 AND c.org = ?1 ORDER BY s.connection_id",
            )?;
            let rows = stmt.query_map(params![org, topic], |r| {
                Ok(Connection {
                    id: r.get(0)?,
                    org: r.get(1)?,
                    subject: r.get(2)?,
                    connected_at_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

// ---------------------------------------------------------------- audit

fn audit_row(r: &Row<'_>) -> rusqlite::Result<(i64, AuditEvent)> {
    Ok((
        r.get(0)?,
        AuditEvent {
            at_ms: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            details: json_col(r, 5)?,
        },
    ))
}

impl AuditStore for SqliteStore {
    async fn append(&self, org: &str, event: AuditEvent) -> Result<()> {
        let org = org.to_owned();
        self.call(move |db| {
            db.prepare_cached(
                "INSERT INTO cp_audit (org, at_ms, actor, action, target, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                org,
                event.at_ms,
                event.actor,
                event.action,
                event.target,
                event.details.to_string()
            ])?;
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        org: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<AuditEvent>> {
        let limit = check_limit(limit)?;
        let before = keys::parse_audit(cursor.as_deref())?.unwrap_or(i64::MAX);
        let org = org.to_owned();
        let found = self
            .read(move |db| {
                let mut stmt = db.prepare_cached(
                    "SELECT seq, at_ms, actor, action, target, details FROM cp_audit
                     WHERE org = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![org, before, limit as i64 + 1], audit_row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await?;
        let Page { items, next_cursor } = page(found, limit, |(seq, _)| keys::audit(*seq));
        Ok(Page {
            items: items.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }
}
