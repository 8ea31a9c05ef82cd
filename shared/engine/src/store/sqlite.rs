//! SQLite [`Store`]: one file, WAL, and a single writer thread that commits whatever writes
//! are queued in one transaction (group commit), so thousands of executions journaling at once
//! share commits. Reads use their own connection (WAL lets them run beside the writer).
//!
//! Durability: with `synchronous=NORMAL` (the default) a commit survives the process being
//! killed; surviving power loss needs [`Durability::Full`] (an fsync per commit).

use super::{
    Ack, Close, Created, ExecutionRecord, ListQuery, MachineType, StateMachineRecord, Status,
    Store, StoreError,
};
use crate::history::HistoryEvent;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

/// How hard commits try to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a crash of the process, not of the machine.
    #[default]
    Normal,
    /// `synchronous=FULL`: survives power loss; every commit waits for fsync.
    Full,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    PutMachine(StateMachineRecord, Reply<()>),
    Create(Box<ExecutionRecord>, String, Vec<EventRow>, Reply<Created>),
    Append(u64, Vec<EventRow>, Option<Closing>, Reply<()>),
    Reopen(u64, u32, Vec<EventRow>, Reply<()>),
}

/// An event as the writer inserts it. JSON is serialised (and the event's values dropped) on
/// the caller's thread, so that the one writer thread only writes.
struct EventRow {
    id: i64,
    previous: i64,
    ts: i64,
    kind: String,
    step: String,
    details: String,
}

fn rows(events: Vec<HistoryEvent>) -> Vec<EventRow> {
    events
        .into_iter()
        .map(|e| EventRow {
            id: e.id as i64,
            previous: e.previous_event_id as i64,
            ts: e.timestamp_ms,
            details: json_text(&e.details),
            kind: e.kind,
            step: e.step,
        })
        .collect()
}

/// A [`Close`] with its output serialised.
struct Closing {
    status: Status,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
    stop_ms: i64,
}

impl From<Close> for Closing {
    fn from(c: Close) -> Self {
        Closing {
            status: c.status,
            output: c.output.as_ref().map(json_text),
            error: c.error,
            cause: c.cause,
            stop_ms: c.stop_ms,
        }
    }
}

/// The SQLite store.
pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<Op>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    reader: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state_machines (
  arn TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
  revision INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state_machine_revisions (
  arn TEXT NOT NULL, revision INTEGER NOT NULL, definition TEXT NOT NULL,
  PRIMARY KEY (arn, revision)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS executions (
  seq INTEGER PRIMARY KEY, arn TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  state_machine_arn TEXT NOT NULL, revision INTEGER NOT NULL, type TEXT NOT NULL,
  status TEXT NOT NULL, input TEXT NOT NULL, output TEXT, error TEXT, cause TEXT,
  start_ms INTEGER NOT NULL, stop_ms INTEGER, redrive_count INTEGER NOT NULL DEFAULT 0,
  parent TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS executions_by_name ON executions (state_machine_arn, name);
CREATE INDEX IF NOT EXISTS executions_running ON executions (status) WHERE status = 'RUNNING';
CREATE TABLE IF NOT EXISTS events (
  execution INTEGER NOT NULL, id INTEGER NOT NULL, previous INTEGER NOT NULL,
  ts INTEGER NOT NULL, type TEXT NOT NULL, step TEXT NOT NULL, details TEXT NOT NULL,
  PRIMARY KEY (execution, id)) WITHOUT ROWID;
";

/// Schema version written to `meta`; opening a newer file is refused.
const SCHEMA_VERSION: i64 = 1;

fn configure(conn: &Connection, durability: Durability) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        },
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path)?;
        configure(&conn, durability)?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match version.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Corrupt(format!(
                    "{} was written by a newer ConcertMaster (schema {v}, this build reads {SCHEMA_VERSION})",
                    path.display()
                )));
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
        }
        let reader = Connection::open(path)?;
        configure(&reader, durability)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cm-engine-sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            reader: Mutex::new(reader),
        })
    }

    fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Ack<T> {
        let (tx, rx) = oneshot::channel();
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(w) if w.send(make(tx)).is_ok() => Ack::Pending(rx),
            _ => Ack::Ready(Err(StoreError::Closed)),
        }
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self) {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Largest number of queued writes committed together.
const MAX_BATCH: usize = 2048;

fn writer(mut conn: Connection, rx: mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit(&mut conn, batch);
    }
}

/// What a write returns: `Some` for a creation.
type Outcome = Option<Created>;

fn apply(tx: &Connection, op: &Op) -> Result<Outcome, StoreError> {
    match op {
        Op::PutMachine(sm, _) => put_machine(tx, sm).map(|()| None),
        Op::Create(rec, input, rows, _) => create(tx, rec, input, rows).map(Some),
        Op::Append(seq, rows, close, _) => append(tx, *seq, rows, close.as_ref()).map(|()| None),
        Op::Reopen(seq, count, rows, _) => reopen(tx, *seq, *count, rows).map(|()| None),
    }
}

fn reply(op: Op, r: Result<Outcome, StoreError>) {
    match op {
        Op::PutMachine(_, tx) | Op::Append(_, _, _, tx) | Op::Reopen(_, _, _, tx) => {
            let _ = tx.send(r.map(|_| ()));
        }
        Op::Create(_, _, _, tx) => {
            let _ = tx.send(r.map(|o| o.unwrap_or(Created::New)));
        }
    }
}

fn commit(conn: &mut Connection, batch: Vec<Op>) {
    // Fast path: the whole batch in one transaction. Writes rarely fail; when one does, the
    // transaction rolls back and the batch is redone with a savepoint around each write, so
    // that only that write fails. (Savepoints are not free: SQLite copies every page a
    // savepoint first changes to a sub-journal.)
    match commit_all(conn, &batch) {
        Ok(outcomes) => {
            for (op, o) in batch.into_iter().zip(outcomes) {
                reply(op, Ok(o));
            }
        }
        Err(_) => commit_each(conn, batch),
    }
}

fn commit_all(conn: &mut Connection, batch: &[Op]) -> Result<Vec<Outcome>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcomes = batch
        .iter()
        .map(|op| apply(&tx, op))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(outcomes)
}

fn commit_each(conn: &mut Connection, batch: Vec<Op>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let err = StoreError::from(e);
            for op in batch {
                reply(op, Err(err.clone()));
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for op in batch {
        // Each write is all-or-nothing inside the shared transaction.
        let _ = tx.execute_batch("SAVEPOINT op");
        let r = apply(&tx, &op);
        if r.is_err() {
            let _ = tx.execute_batch("ROLLBACK TO op");
        }
        let _ = tx.execute_batch("RELEASE op");
        done.push((op, r));
    }
    let committed = tx.commit().map_err(StoreError::from);
    for (op, r) in done {
        reply(op, committed.clone().and(r));
    }
}

fn put_machine(tx: &Connection, sm: &StateMachineRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO state_machines (arn, name, type, revision, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (arn) DO UPDATE SET type = excluded.type, revision = excluded.revision",
        params![sm.arn, sm.name, sm.machine_type.as_str(), sm.revision as i64, sm.created_ms],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO state_machine_revisions (arn, revision, definition) VALUES (?1, ?2, ?3)",
        params![sm.arn, sm.revision as i64, sm.definition],
    )?;
    Ok(())
}

fn json_text(v: &Value) -> String {
    cm_asl::payload::compact(v)
}

fn insert_events(tx: &Connection, seq: u64, events: &[EventRow]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (execution, id, previous, ts, type, step, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in events {
        stmt.execute(params![
            seq as i64, e.id, e.previous, e.ts, e.kind, e.step, e.details
        ])?;
    }
    Ok(())
}

fn create(
    tx: &Connection,
    rec: &ExecutionRecord,
    input: &str,
    events: &[EventRow],
) -> Result<Created, StoreError> {
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM executions WHERE state_machine_arn = ?1 AND name = ?2"
        ))?
        .query_row(params![rec.state_machine_arn, rec.name], execution_row)
        .optional()?;
    if let Some(existing) = existing {
        return Ok(Created::Existing(Box::new(existing?)));
    }
    tx.prepare_cached(
        "INSERT INTO executions (seq, arn, name, state_machine_arn, revision, type, status, input, start_ms, redrive_count, parent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        rec.seq as i64,
        rec.arn,
        rec.name,
        rec.state_machine_arn,
        rec.revision as i64,
        rec.machine_type.as_str(),
        rec.status.as_str(),
        input,
        rec.start_ms,
        rec.redrive_count,
        rec.parent,
    ])?;
    insert_events(tx, rec.seq, events)?;
    Ok(Created::New)
}

fn append(
    tx: &Connection,
    seq: u64,
    events: &[EventRow],
    close: Option<&Closing>,
) -> Result<(), StoreError> {
    insert_events(tx, seq, events)?;
    if let Some(c) = close {
        tx.prepare_cached(
            "UPDATE executions SET status = ?2, output = ?3, error = ?4, cause = ?5, stop_ms = ?6 WHERE seq = ?1",
        )?
        .execute(params![
            seq as i64,
            c.status.as_str(),
            c.output,
            c.error,
            c.cause,
            c.stop_ms
        ])?;
    }
    Ok(())
}

fn reopen(tx: &Connection, seq: u64, count: u32, events: &[EventRow]) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE executions SET status = 'RUNNING', output = NULL, error = NULL, cause = NULL, stop_ms = NULL, redrive_count = ?2 WHERE seq = ?1",
        params![seq as i64, count],
    )?;
    insert_events(tx, seq, events)
}

const COLUMNS: &str = "seq, arn, name, state_machine_arn, revision, type, status, input, output, error, cause, start_ms, stop_ms, redrive_count, parent";

fn parse_json(text: &str, what: &str) -> Result<Value, StoreError> {
    super::parse_json(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Decodes a row; the outer result is SQLite's, the inner one ours.
fn execution_row(r: &Row<'_>) -> rusqlite::Result<Result<ExecutionRecord, StoreError>> {
    let ty: String = r.get(5)?;
    let status: String = r.get(6)?;
    let input: String = r.get(7)?;
    let output: Option<String> = r.get(8)?;
    let arn: String = r.get(1)?;
    let build = || -> Result<ExecutionRecord, StoreError> {
        Ok(ExecutionRecord {
            seq: 0,
            arn: String::new(),
            name: String::new(),
            state_machine_arn: String::new(),
            revision: 0,
            machine_type: MachineType::parse(&ty)
                .ok_or_else(|| StoreError::Corrupt(format!("{arn}: type {ty}")))?,
            status: Status::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("{arn}: status {status}")))?,
            input: parse_json(&input, &arn)?,
            output: output.as_deref().map(|o| parse_json(o, &arn)).transpose()?,
            error: None,
            cause: None,
            start_ms: 0,
            stop_ms: None,
            redrive_count: 0,
            parent: None,
        })
    };
    let mut rec = match build() {
        Ok(rec) => rec,
        Err(e) => return Ok(Err(e)),
    };
    rec.seq = r.get::<_, i64>(0)? as u64;
    rec.arn = arn;
    rec.name = r.get(2)?;
    rec.state_machine_arn = r.get(3)?;
    rec.revision = r.get::<_, i64>(4)? as u64;
    rec.error = r.get(9)?;
    rec.cause = r.get(10)?;
    rec.start_ms = r.get(11)?;
    rec.stop_ms = r.get(12)?;
    rec.redrive_count = r.get(13)?;
    rec.parent = r.get(14)?;
    Ok(Ok(rec))
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Result<ExecutionRecord, StoreError>>>,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    rows.map(|r| r.map_err(StoreError::from).and_then(|x| x))
        .collect()
}

fn machine_row(r: &Row<'_>) -> rusqlite::Result<(StateMachineRecord, String)> {
    let ty: String = r.get(2)?;
    Ok((
        StateMachineRecord {
            arn: r.get(0)?,
            name: r.get(1)?,
            machine_type: MachineType::parse(&ty).unwrap_or_default(),
            revision: r.get::<_, i64>(3)? as u64,
            created_ms: r.get(4)?,
            definition: r.get(5)?,
        },
        ty,
    ))
}

const MACHINE_QUERY: &str = "SELECT m.arn, m.name, m.type, m.revision, m.created_ms, r.definition
     FROM state_machines m JOIN state_machine_revisions r ON r.arn = m.arn AND r.revision = m.revision";

impl Store for SqliteStore {
    fn put_state_machine(&self, sm: StateMachineRecord) -> Ack<()> {
        self.send(|r| Op::PutMachine(sm, r))
    }

    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        Ok(self
            .reader()
            .prepare_cached(&format!("{MACHINE_QUERY} WHERE m.arn = ?1"))?
            .query_row([arn], machine_row)
            .optional()?
            .map(|(m, _)| m))
    }

    fn definition(&self, arn: &str, revision: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT definition FROM state_machine_revisions WHERE arn = ?1 AND revision = ?2",
            )?
            .query_row(params![arn, revision as i64], |r| r.get(0))
            .optional()?)
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!("{MACHINE_QUERY} ORDER BY m.name"))?;
        let rows = stmt.query_map([], machine_row)?;
        rows.map(|r| r.map(|(m, _)| m).map_err(StoreError::from))
            .collect()
    }

    fn create_execution(&self, rec: ExecutionRecord, events: Vec<HistoryEvent>) -> Ack<Created> {
        let input = json_text(&rec.input);
        let rows = rows(events);
        self.send(|r| Op::Create(Box::new(rec), input, rows, r))
    }

    fn append(&self, seq: u64, events: Vec<HistoryEvent>, close: Option<Close>) -> Ack<()> {
        let rows = rows(events);
        let close = close.map(Closing::from);
        self.send(|r| Op::Append(seq, rows, close, r))
    }

    fn reopen(&self, seq: u64, redrive_count: u32, events: Vec<HistoryEvent>) -> Ack<()> {
        let rows = rows(events);
        self.send(|r| Op::Reopen(seq, redrive_count, rows, r))
    }

    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        self.reader()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM executions WHERE arn = ?1"))?
            .query_row([arn], execution_row)
            .optional()?
            .transpose()
    }

    fn list_executions(&self, q: &ListQuery) -> Result<Vec<ExecutionRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM executions
             WHERE seq < ?1 AND (?2 IS NULL OR state_machine_arn = ?2) AND (?3 IS NULL OR status = ?3)
             ORDER BY seq DESC LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                q.before_seq.map_or(i64::MAX, |s| s as i64),
                q.state_machine_arn,
                q.status.map(Status::as_str),
                q.limit as i64
            ],
            execution_row,
        )?;
        collect(rows)
    }

    fn events(
        &self,
        seq: u64,
        after: u64,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let conn = self.reader();
        let sql = if reverse {
            "SELECT id, previous, ts, type, step, details FROM events
             WHERE execution = ?1 AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3"
        } else {
            "SELECT id, previous, ts, type, step, details FROM events
             WHERE execution = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![seq as i64, after as i64, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, prev, ts, kind, step, details) = row?;
            out.push(HistoryEvent {
                id: id as u64,
                previous_event_id: prev as u64,
                timestamp_ms: ts,
                kind,
                step,
                details: parse_json(&details, "event details")?,
            });
        }
        Ok(out)
    }

    fn running(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM executions WHERE status = 'RUNNING' ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], execution_row)?;
        collect(rows)
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        let v: Option<i64> =
            self.reader()
                .query_row("SELECT MAX(seq) FROM executions", [], |r| r.get(0))?;
        Ok(v.unwrap_or(0) as u64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: u64) -> HistoryEvent {
        HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp_ms: 0,
            kind: "PassStateEntered".into(),
            step: id.to_string(),
            details: json!({"name": "A", "input": {}}),
        }
    }

    /// A failing write (here a duplicate event id) fails alone, whether or not it shares a
    /// batch with others: the batch is redone with a savepoint per write.
    #[tokio::test]
    async fn a_failed_write_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), Durability::Normal).unwrap();
        let rec = ExecutionRecord {
            seq: 1,
            arn: "arn:e".into(),
            name: "e".into(),
            state_machine_arn: "arn:sm".into(),
            revision: 1,
            machine_type: MachineType::Standard,
            status: Status::Running,
            input: json!({}),
            output: None,
            error: None,
            cause: None,
            start_ms: 0,
            stop_ms: None,
            redrive_count: 0,
            parent: None,
        };
        let created = store.create_execution(rec, vec![event(1)]);
        // Queued together, so that they usually share one commit.
        let good = store.append(1, vec![event(2)], None);
        let duplicate = store.append(1, vec![event(2)], None);
        let after = store.append(1, vec![event(3)], None);
        assert_eq!(created.wait().await.unwrap(), Created::New);
        good.wait().await.unwrap();
        assert!(duplicate.wait().await.is_err());
        after.wait().await.unwrap();
        let ids: Vec<u64> = store
            .events(1, 0, 10, false)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, [1, 2, 3]);
    }
}
