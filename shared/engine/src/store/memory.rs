//! In-memory [`Store`]: for tests, benchmarks and one-shot runs. Nothing survives the process.

use super::{
    Ack, Close, Created, ExecutionRecord, ListQuery, StateMachineRecord, Status, Store, StoreError,
};
use crate::history::HistoryEvent;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct State {
    machines: HashMap<String, StateMachineRecord>,
    revisions: HashMap<(String, u64), String>,
    executions: BTreeMap<u64, (ExecutionRecord, Vec<HistoryEvent>)>,
    by_arn: HashMap<String, u64>,
    by_name: HashMap<(String, String), u64>,
}

/// A [`Store`] in a mutex-guarded map.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied write (each write is one
        // push/insert), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn put_state_machine(&self, sm: StateMachineRecord) -> Ack<()> {
        let mut s = self.lock();
        s.revisions
            .insert((sm.arn.clone(), sm.revision), sm.definition.clone());
        s.machines.insert(sm.arn.clone(), sm);
        Ack::Ready(Ok(()))
    }

    fn state_machine(&self, arn: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        Ok(self.lock().machines.get(arn).cloned())
    }

    fn definition(&self, arn: &str, revision: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .revisions
            .get(&(arn.to_owned(), revision))
            .cloned())
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        let mut v: Vec<_> = self.lock().machines.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    fn create_execution(&self, rec: ExecutionRecord, events: Vec<HistoryEvent>) -> Ack<Created> {
        let mut s = self.lock();
        let key = (rec.state_machine_arn.clone(), rec.name.clone());
        if let Some(seq) = s.by_name.get(&key)
            && let Some((existing, _)) = s.executions.get(seq)
        {
            return Ack::Ready(Ok(Created::Existing(Box::new(existing.clone()))));
        }
        s.by_name.insert(key, rec.seq);
        s.by_arn.insert(rec.arn.clone(), rec.seq);
        s.executions.insert(rec.seq, (rec, events));
        Ack::Ready(Ok(Created::New))
    }

    fn append(&self, seq: u64, events: Vec<HistoryEvent>, close: Option<Close>) -> Ack<()> {
        let mut s = self.lock();
        let Some((rec, history)) = s.executions.get_mut(&seq) else {
            return Ack::Ready(Err(StoreError::Corrupt(format!("no execution #{seq}"))));
        };
        history.extend(events);
        if let Some(c) = close {
            rec.status = c.status;
            rec.output = c.output;
            rec.error = c.error;
            rec.cause = c.cause;
            rec.stop_ms = Some(c.stop_ms);
        }
        Ack::Ready(Ok(()))
    }

    fn reopen(&self, seq: u64, redrive_count: u32, events: Vec<HistoryEvent>) -> Ack<()> {
        let mut s = self.lock();
        let Some((rec, history)) = s.executions.get_mut(&seq) else {
            return Ack::Ready(Err(StoreError::Corrupt(format!("no execution #{seq}"))));
        };
        rec.status = Status::Running;
        rec.redrive_count = redrive_count;
        rec.output = None;
        rec.error = None;
        rec.cause = None;
        rec.stop_ms = None;
        history.extend(events);
        Ack::Ready(Ok(()))
    }

    fn execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let s = self.lock();
        Ok(s.by_arn
            .get(arn)
            .and_then(|seq| s.executions.get(seq))
            .map(|(r, _)| r.clone()))
    }

    fn list_executions(&self, q: &ListQuery) -> Result<Vec<ExecutionRecord>, StoreError> {
        let s = self.lock();
        let upper = q.before_seq.unwrap_or(u64::MAX);
        Ok(s.executions
            .range(..upper)
            .rev()
            .map(|(_, (r, _))| r)
            .filter(|r| {
                q.state_machine_arn
                    .as_deref()
                    .is_none_or(|a| a == r.state_machine_arn)
                    && q.status.is_none_or(|st| st == r.status)
            })
            .take(q.limit)
            .cloned()
            .collect())
    }

    fn events(
        &self,
        seq: u64,
        after: u64,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let s = self.lock();
        let Some((_, history)) = s.executions.get(&seq) else {
            return Ok(Vec::new());
        };
        Ok(if reverse {
            history
                .iter()
                .rev()
                .filter(|e| after == 0 || e.id < after)
                .take(limit)
                .cloned()
                .collect()
        } else {
            history
                .iter()
                .filter(|e| e.id > after)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    fn running(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        Ok(self
            .lock()
            .executions
            .values()
            .filter(|(r, _)| r.status == Status::Running)
            .map(|(r, _)| r.clone())
            .collect())
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .executions
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0))
    }
}
