//! One SQLite file holding datasets, queues, approvals, breaker state and dead letters.

use cm_nodes::approval::{ApprovalRequest, Approvals};
use cm_nodes::breaker::{BreakerState, BreakerStore};
use cm_nodes::trigger::dead_letter::{DeadLetter, DeadLetters};
use cm_nodes::{BoxFuture, NodeError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// SQLite failed (I/O, corruption, locked file).
    #[error("local store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not decode (written by an incompatible version).
    #[error("local store: row {0} does not decode: {1}")]
    Corrupt(String, String),
    /// No such item (approval, dead letter, message).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the item's state (e.g. deciding a decided approval).
    #[error("{0}")]
    Conflict(String),
    /// The engine refused what the store asked of it (e.g. the run waiting for an approval
    /// has ended).
    #[error("{0}")]
    Engine(#[from] cm_engine::EngineError),
}

impl From<LocalError> for NodeError {
    fn from(e: LocalError) -> NodeError {
        NodeError::Internal(e.to_string())
    }
}

/// A record stored by an `action.store` node.
/// A dataset record (the type of the `cm_store::DatasetStore` port this store implements).
pub use cm_store::DatasetRecord;

/// A message on a local queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueMessage {
    /// Message id.
    pub id: String,
    /// Queue name.
    pub queue: String,
    /// Body as sent.
    pub body: String,
    /// FIFO group id.
    pub group_id: Option<String>,
    /// How many times it was received.
    pub receive_count: u32,
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

/// An approval with its status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The request the node recorded.
    #[serde(flatten)]
    pub request: ApprovalRequest,
    /// Its status.
    pub status: ApprovalStatus,
    /// The decision's comment and author, once decided.
    pub decision: Option<Value>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cm_datasets (
  pk TEXT NOT NULL, sk TEXT NOT NULL, data TEXT NOT NULL, item TEXT NOT NULL,
  run_id TEXT NOT NULL, node_id TEXT NOT NULL, stored_at TEXT NOT NULL,
  PRIMARY KEY (pk, sk));
CREATE TABLE IF NOT EXISTS cm_queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, queue TEXT NOT NULL,
  body TEXT NOT NULL, group_id TEXT, dedup_id TEXT, visible_at_ms INTEGER NOT NULL,
  sent_ms INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS cm_queue_visible ON cm_queue (queue, visible_at_ms);
CREATE TABLE IF NOT EXISTS cm_breakers (
  target TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cm_dead_letters (
  id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, first_failed_ms INTEGER NOT NULL,
  letter TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cm_dead_letters_by_workflow ON cm_dead_letters (workflow_id, first_failed_ms, id);
CREATE TABLE IF NOT EXISTS cm_approvals (
  id TEXT PRIMARY KEY, request TEXT NOT NULL, status TEXT NOT NULL, decision TEXT,
  created_ms INTEGER NOT NULL);
";

/// The embedded mode's store (one SQLite file, WAL).
#[derive(Debug)]
pub struct LocalStore {
    conn: Mutex<Connection>,
    /// Bumped by every message sent ([`LocalStore::subscribe_sends`]).
    sent: tokio::sync::watch::Sender<u64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random 128-bit id, hex.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 16];
    // getrandom only fails without an OS entropy source; a time-based id still works then.
    if getrandom::fill(&mut b).is_err() {
        b[..8].copy_from_slice(&now_ms().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl LocalStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<LocalStore, LocalError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::init(conn)
    }

    /// A store in memory (tests, `run` without `--db`).
    pub fn in_memory() -> Result<LocalStore, LocalError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<LocalStore, LocalError> {
        conn.execute_batch(SCHEMA)?;
        Ok(LocalStore {
            conn: Mutex::new(conn),
            sent: tokio::sync::watch::Sender::new(0),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each call is one statement
        // or transaction), so the poisoned guard is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- datasets

    /// Writes (replaces) a record.
    pub fn put_record(&self, r: &DatasetRecord, item: &Value) -> Result<(), LocalError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO cm_datasets (pk, sk, data, item, run_id, node_id, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                r.dataset,
                r.key,
                r.data.to_string(),
                item.to_string(),
                r.run_id,
                r.node_id,
                r.stored_at
            ],
        )?;
        Ok(())
    }

    /// The records of a dataset, by key, after `after` (paging), at most `limit`.
    pub fn records(
        &self,
        dataset: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DatasetRecord>, LocalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT pk, sk, data, run_id, node_id, stored_at FROM cm_datasets
             WHERE pk = ?1 AND sk > ?2 ORDER BY sk LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![dataset, after.unwrap_or(""), limit as i64], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (dataset, key, data, run_id, node_id, stored_at) = r?;
            let data = serde_json::from_str(&data)
                .map_err(|e| LocalError::Corrupt(format!("{dataset}/{key}"), e.to_string()))?;
            out.push(DatasetRecord {
                dataset,
                key,
                data,
                run_id,
                node_id,
                stored_at,
            });
        }
        Ok(out)
    }

    // ---- queues

    /// Sends a message; a FIFO deduplication id already used in the last 5 minutes returns the
    /// first message's id without sending again (as SQS does). Every message sent wakes the
    /// receivers of [`LocalStore::subscribe_sends`].
    pub fn send(
        &self,
        queue: &str,
        body: &str,
        group_id: Option<&str>,
        dedup_id: Option<&str>,
        delay_seconds: u32,
    ) -> Result<String, LocalError> {
        let now = now_ms();
        let conn = self.conn();
        if let Some(d) = dedup_id {
            let seen: Option<String> = conn
                .query_row(
                    "SELECT id FROM cm_queue WHERE queue = ?1 AND dedup_id = ?2 AND sent_ms > ?3",
                    params![queue, d, now - 300_000],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = seen {
                return Ok(id);
            }
        }
        let id = random_id();
        conn.execute(
            "INSERT INTO cm_queue (id, queue, body, group_id, dedup_id, visible_at_ms, sent_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                queue,
                body,
                group_id,
                dedup_id,
                now + i64::from(delay_seconds) * 1000,
                now
            ],
        )?;
        drop(conn);
        self.sent.send_modify(|n| *n = n.wrapping_add(1));
        Ok(id)
    }

    /// A receiver that sees a change whenever a message is sent to any queue of this store
    /// (by an `action.queue` node, the API, …): what the embedded queue poller waits on
    /// instead of polling.
    pub fn subscribe_sends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.sent.subscribe()
    }

    /// When the earliest message of a queue becomes visible (ms since the epoch; in the past
    /// when one is visible now), or `None` when the queue is empty: how long a poller may
    /// wait before receiving again.
    pub fn next_visible_ms(&self, queue: &str) -> Result<Option<i64>, LocalError> {
        Ok(self.conn().query_row(
            "SELECT MIN(visible_at_ms) FROM cm_queue WHERE queue = ?1",
            params![queue],
            |r| r.get::<_, Option<i64>>(0),
        )?)
    }

    /// Receives up to `max` visible messages of a queue, oldest first, hiding them for
    /// `visibility_seconds` (delete them once processed, as with SQS).
    pub fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility_seconds: u32,
    ) -> Result<Vec<QueueMessage>, LocalError> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT id, body, group_id, receive_count FROM cm_queue
                 WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![queue, now, max as i64], |r| {
                Ok(QueueMessage {
                    id: r.get(0)?,
                    queue: queue.to_owned(),
                    body: r.get(1)?,
                    group_id: r.get(2)?,
                    receive_count: r.get::<_, u32>(3)? + 1,
                })
            })?;
            for m in rows {
                out.push(m?);
            }
            for m in &out {
                tx.execute(
                    "UPDATE cm_queue SET visible_at_ms = ?1, receive_count = receive_count + 1 WHERE id = ?2",
                    params![now + i64::from(visibility_seconds) * 1000, m.id],
                )?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Deletes a received message.
    pub fn delete_message(&self, id: &str) -> Result<(), LocalError> {
        let n = self
            .conn()
            .execute("DELETE FROM cm_queue WHERE id = ?1", params![id])?;
        if n == 0 {
            return Err(LocalError::NotFound(format!("no message `{id}`")));
        }
        Ok(())
    }

    /// Messages waiting on a queue (visible or not).
    pub fn queue_depth(&self, queue: &str) -> Result<u64, LocalError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM cm_queue WHERE queue = ?1",
            params![queue],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    // ---- approvals

    /// One approval.
    pub fn approval(&self, id: &str) -> Result<Approval, LocalError> {
        let row: Option<(String, String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT request, status, decision FROM cm_approvals WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (request, status, decision) =
            row.ok_or_else(|| LocalError::NotFound(format!("no approval `{id}`")))?;
        decode_approval(id, &request, &status, decision.as_deref())
    }

    /// Approvals, newest first; only pending ones with `pending_only`.
    pub fn approvals(&self, pending_only: bool) -> Result<Vec<Approval>, LocalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, request, status, decision FROM cm_approvals
             WHERE (?1 = 0 OR status = 'pending') ORDER BY created_ms DESC, id",
        )?;
        let rows = stmt.query_map(params![pending_only as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, request, status, decision) = row?;
            out.push(decode_approval(
                &id,
                &request,
                &status,
                decision.as_deref(),
            )?);
        }
        Ok(out)
    }

    /// Marks a pending approval decided and returns it (with its task token). Deciding twice
    /// is a [`LocalError::Conflict`].
    pub fn decide(
        &self,
        id: &str,
        approved: bool,
        decision: &Value,
    ) -> Result<Approval, LocalError> {
        let status = if approved { "approved" } else { "rejected" };
        let n = self.conn().execute(
            "UPDATE cm_approvals SET status = ?1, decision = ?2 WHERE id = ?3 AND status = 'pending'",
            params![status, decision.to_string(), id],
        )?;
        if n == 0 {
            let current = self.approval(id)?;
            return Err(LocalError::Conflict(format!(
                "approval `{id}` is already {}",
                serde_json::to_value(current.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )));
        }
        self.approval(id)
    }

    /// Returns a decided approval to pending (the decision could not be delivered).
    pub fn reopen(&self, id: &str) -> Result<(), LocalError> {
        self.conn().execute(
            "UPDATE cm_approvals SET status = 'pending', decision = NULL WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }
}

fn decode_approval(
    id: &str,
    request: &str,
    status: &str,
    decision: Option<&str>,
) -> Result<Approval, LocalError> {
    let corrupt = |e: String| LocalError::Corrupt(format!("approval {id}"), e);
    let request: ApprovalRequest =
        serde_json::from_str(request).map_err(|e| corrupt(e.to_string()))?;
    let status = match status {
        "pending" => ApprovalStatus::Pending,
        "approved" => ApprovalStatus::Approved,
        "rejected" => ApprovalStatus::Rejected,
        other => return Err(corrupt(format!("status `{other}`"))),
    };
    let decision = decision
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(Approval {
        request,
        status,
        decision,
    })
}

impl Approvals for LocalStore {
    fn create<'a>(&'a self, request: ApprovalRequest) -> BoxFuture<'a, Result<(), NodeError>> {
        let r = (|| -> Result<(), LocalError> {
            let text = serde_json::to_string(&request)
                .map_err(|e| LocalError::Corrupt(request.id.clone(), e.to_string()))?;
            self.conn().execute(
                "INSERT OR IGNORE INTO cm_approvals (id, request, status, created_ms)
                 VALUES (?1, ?2, 'pending', ?3)",
                params![request.id, text, request.created_ms],
            )?;
            Ok(())
        })();
        Box::pin(async move { r.map_err(NodeError::from) })
    }
}

impl BreakerStore for LocalStore {
    fn load<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<Option<BreakerState>, NodeError>> {
        let r = (|| -> Result<Option<BreakerState>, LocalError> {
            let text: Option<String> = self
                .conn()
                .query_row(
                    "SELECT state FROM cm_breakers WHERE target = ?1",
                    params![target],
                    |r| r.get(0),
                )
                .optional()?;
            text.map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| LocalError::Corrupt(format!("breaker {target}"), e.to_string()))
            })
            .transpose()
        })();
        Box::pin(async move { r.map_err(NodeError::from) })
    }

    fn save<'a>(
        &'a self,
        target: &'a str,
        state: BreakerState,
    ) -> BoxFuture<'a, Result<(), NodeError>> {
        let r = (|| -> Result<(), LocalError> {
            let text = serde_json::to_string(&state)
                .map_err(|e| LocalError::Corrupt(format!("breaker {target}"), e.to_string()))?;
            self.conn().execute(
                "INSERT OR REPLACE INTO cm_breakers (target, state) VALUES (?1, ?2)",
                params![target, text],
            )?;
            Ok(())
        })();
        Box::pin(async move { r.map_err(NodeError::from) })
    }
}

impl DeadLetters for LocalStore {
    fn put<'a>(&'a self, letter: DeadLetter) -> BoxFuture<'a, Result<(), NodeError>> {
        let r = (|| -> Result<(), LocalError> {
            let text = serde_json::to_string(&letter).map_err(|e| {
                LocalError::Corrupt(format!("dead letter {}", letter.id), e.to_string())
            })?;
            self.conn().execute(
                "INSERT OR REPLACE INTO cm_dead_letters (id, workflow_id, first_failed_ms, letter)
                 VALUES (?1, ?2, ?3, ?4)",
                params![letter.id, letter.workflow_id, letter.first_failed_ms, text],
            )?;
            Ok(())
        })();
        Box::pin(async move { r.map_err(NodeError::from) })
    }

    fn list<'a>(
        &'a self,
        workflow_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, NodeError>> {
        let r = (|| -> Result<Vec<DeadLetter>, LocalError> {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT id, letter FROM cm_dead_letters WHERE (?1 IS NULL OR workflow_id = ?1)
                 ORDER BY first_failed_ms, id LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![workflow_id, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, text) = row?;
                out.push(serde_json::from_str(&text).map_err(|e| {
                    LocalError::Corrupt(format!("dead letter {id}"), e.to_string())
                })?);
            }
            Ok(out)
        })();
        Box::pin(async move { r.map_err(NodeError::from) })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<DeadLetter>, NodeError>> {
        let r = (|| -> Result<Option<DeadLetter>, LocalError> {
            let text: Option<String> = self
                .conn()
                .query_row(
                    "SELECT letter FROM cm_dead_letters WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            text.map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| LocalError::Corrupt(format!("dead letter {id}"), e.to_string()))
            })
            .transpose()
        })();
        Box::pin(async move { r.map_err(NodeError::from) })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, NodeError>> {
        let r = self
            .conn()
            .execute("DELETE FROM cm_dead_letters WHERE id = ?1", params![id])
            .map(|n| n > 0)
            .map_err(LocalError::from);
        Box::pin(async move { r.map_err(NodeError::from) })
    }
}

impl cm_store::DatasetStore for LocalStore {
    async fn put_record(&self, record: DatasetRecord) -> cm_store::Result<()> {
        // The item as Step Functions' putItem would have written it (what `put_record` keeps
        // beside the record).
        let item = serde_json::json!({
            "pk": {"S": record.dataset}, "sk": {"S": record.key},
            "data": {"S": record.data.to_string()}, "runId": {"S": record.run_id},
            "nodeId": {"S": record.node_id}, "storedAt": {"S": record.stored_at},
        });
        LocalStore::put_record(self, &record, &item)
            .map_err(|e| cm_store::StoreError::Backend(e.to_string()))
    }

    async fn list_records(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> cm_store::Result<cm_store::Page<DatasetRecord>> {
        cm_store::check_limit(limit)?;
        let after = cm_store::parse_record_cursor(cursor.as_deref())?;
        let mut items = self
            .records(dataset, after.as_deref(), limit + 1)
            .map_err(|e| cm_store::StoreError::Backend(e.to_string()))?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| cm_store::record_cursor(&r.key))
        } else {
            None
        };
        Ok(cm_store::Page { items, next_cursor })
    }
}
