//! [`MemoryStore`]: every port in process memory, behind one mutex. It is the reference
//! semantics every adapter matches (the `contract` suite, feature `contract`, checks them):
//!
//! - **Workflows** are listed by id (ascending). A deleted workflow leaves a tombstone: its id
//!   cannot be created again (`Conflict`), and everything else about it is `NotFound`. Its
//!   versions go with it. Versions are immutable and listed newest first; `publish` needs an
//!   existing version and leaves `latest_version` alone. `update_workflow` with an
//!   `expected_version` that is not the latest is a `Conflict` naming the latest.
//! - **Search** is a case-insensitive (Unicode lowercase) substring of the id, the name or the
//!   description; an empty search matches everything.
//! - **Runs** are listed newest first: by `started_at_ms` descending, then id descending. An
//!   idempotency key is unique per (org, workflow): creating a run with a used key returns the
//!   stored run (`Created::Existing`) and writes nothing, whatever the new run's id; otherwise
//!   an existing run id is a `Conflict`. `finish_run` only moves a `RUNNING` run (a second
//!   finish is a `Conflict`; finishing *to* `RUNNING` is `Invalid`); `reopen_run` only moves
//!   an ended run back to `RUNNING` (clearing its end, output, error and cause; a running run
//!   is a `Conflict`), after which it can finish again.
//! - **Node executions** are keyed by (node id, step): a put replaces the visit in place.
//!   They are listed by `started_at_ms`, then by when the visit was first put.
//! - **Form responses** are listed newest first (`submitted_at_ms`, then id, descending); a
//!   `client_key` is unique per (org, workflow); a response id is unique per (org, workflow).
//! - **Routes** are global by (kind, key) but owned by an organisation: putting a route whose
//!   key another organisation holds is a `Conflict`; `delete_routes` only removes the given
//!   organisation's routes. `list_routes` ([`crate::RouteIndex`]) lists one kind's
//!   routes of every organisation by key.
//! - **Connections** are global by id. Subscriptions belong to the connection's organisation;
//!   re-putting a connection with another organisation drops its subscriptions. Subscribing a
//!   connection that does not exist is `NotFound`; unsubscribing and deleting are idempotent.
//!   `subscribers` lists by connection id.
//! - **Audit** events are listed newest first in append order (not by `at_ms`, which the
//!   caller gives).
//!
//! Every list checks its limit ([`check_limit`]) and then its cursor (a cursor of another list,
//! or anything this store did not return, is `Invalid`) before looking anything up.

use crate::{
    AuditEvent, AuditStore, Connection, ConnectionStore, Created, Cursor, FormResponse, FormStore,
    NodeExecution, Page, Result, Route, RouteIndex, RouteStore, RunEnd, RunQuery, RunRecord,
    RunStatus, RunStore, StoreError, WorkflowQuery, WorkflowStore, WorkflowSummary,
    WorkflowVersion, WorkflowWrite, check_limit,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The in-memory store: the reference semantics (see the module docs).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// By (org, id), so that a range is one organisation's workflows by id.
    workflows: BTreeMap<(String, String), Workflow>,
    /// Deleted workflows (org, id): the ids cannot be reused.
    tombstones: HashSet<(String, String)>,
    /// By (org, id).
    runs: HashMap<(String, String), Run>,
    /// (org, workflow, idempotency key) → run id.
    run_keys: HashMap<(String, String, String), String>,
    /// By (org, workflow, id).
    responses: HashMap<(String, String, String), FormResponse>,
    /// (org, workflow, client key) → response id.
    response_keys: HashMap<(String, String, String), String>,
    /// By (kind, key).
    routes: HashMap<(String, String), Route>,
    /// By id.
    connections: HashMap<String, Connection>,
    /// (connection id, topic).
    subscriptions: BTreeSet<(String, String)>,
    /// (org, seq, event) in append order.
    audit: Vec<(String, i64, AuditEvent)>,
    /// Dataset records by (dataset, key).
    records: BTreeMap<(String, String), crate::DatasetRecord>,
    /// The last sequence number handed out (audit events, node executions).
    seq: i64,
}

#[derive(Debug)]
struct Workflow {
    summary: WorkflowSummary,
    versions: BTreeMap<u32, WorkflowVersion>,
}

#[derive(Debug)]
struct Run {
    record: RunRecord,
    /// (first-put sequence, visit).
    nodes: Vec<(i64, NodeExecution)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every method validates before it mutates, so a panic cannot leave half a write.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    fn workflow(&self, org: &str, id: &str) -> Result<&Workflow> {
        self.workflows
            .get(&(org.to_owned(), id.to_owned()))
            .ok_or_else(|| StoreError::not_found("workflow", id))
    }

    fn workflow_mut(&mut self, org: &str, id: &str) -> Result<&mut Workflow> {
        self.workflows
            .get_mut(&(org.to_owned(), id.to_owned()))
            .ok_or_else(|| StoreError::not_found("workflow", id))
    }

    fn run_mut(&mut self, org: &str, id: &str) -> Result<&mut Run> {
        self.runs
            .get_mut(&(org.to_owned(), id.to_owned()))
            .ok_or_else(|| StoreError::not_found("run", id))
    }
}

/// Cuts `items` (already filtered, ordered and holding up to `limit + 1` items) to a page.
fn page<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}

impl WorkflowStore for MemoryStore {
    async fn create_workflow(
        &self,
        org: &str,
        id: &str,
        write: WorkflowWrite,
    ) -> Result<WorkflowSummary> {
        let mut st = self.state();
        let key = (org.to_owned(), id.to_owned());
        check_workflow_absent(
            st.workflows.contains_key(&key),
            st.tombstones.contains(&key),
            id,
        )?;
        let (summary, version) = new_workflow(id, write);
        st.workflows.insert(
            key,
            Workflow {
                summary: summary.clone(),
                versions: BTreeMap::from([(1, version)]),
            },
        );
        Ok(summary)
    }

    async fn get_workflow(&self, org: &str, id: &str) -> Result<WorkflowSummary> {
        Ok(self.state().workflow(org, id)?.summary.clone())
    }

    async fn list_workflows(
        &self,
        org: &str,
        query: WorkflowQuery,
    ) -> Result<Page<WorkflowSummary>> {
        let limit = check_limit(query.limit)?;
        let after = keys::parse_workflow(query.cursor.as_deref())?;
        let needle = search_needle(query.search.as_deref());
        let st = self.state();
        let start = match after {
            Some(id) => Bound::Excluded((org.to_owned(), id)),
            None => Bound::Included((org.to_owned(), String::new())),
        };
        let items = st
            .workflows
            .range((start, Bound::Unbounded))
            .take_while(|((o, _), _)| o == org)
            .map(|(_, w)| &w.summary)
            .filter(|s| query.templates.is_none_or(|t| s.is_template == t))
            .filter(|s| {
                needle
                    .as_deref()
                    .is_none_or(|n| search_text(&s.id, &s.name, &s.description).contains(n))
            })
            .take(limit + 1)
            .cloned()
            .collect();
        Ok(page(items, limit, |s| keys::workflow(&s.id)))
    }

    async fn update_workflow(
        &self,
        org: &str,
        id: &str,
        expected_version: Option<u32>,
        write: WorkflowWrite,
    ) -> Result<WorkflowSummary> {
        let mut st = self.state();
        let wf = st.workflow_mut(org, id)?;
        check_expected(id, wf.summary.latest_version, expected_version)?;
        let version = wf.summary.latest_version + 1;
        wf.versions.insert(
            version,
            WorkflowVersion {
                workflow_id: id.to_owned(),
                version,
                definition: write.definition,
                created_at_ms: write.at_ms,
                created_by: write.actor.clone(),
            },
        );
        let s = &mut wf.summary;
        s.latest_version = version;
        s.name = write.name;
        s.description = write.description;
        s.is_template = write.is_template;
        s.updated_at_ms = write.at_ms;
        s.updated_by = write.actor;
        Ok(s.clone())
    }

    async fn delete_workflow(&self, org: &str, id: &str) -> Result<()> {
        let mut st = self.state();
        let key = (org.to_owned(), id.to_owned());
        if st.workflows.remove(&key).is_none() {
            return Err(StoreError::not_found("workflow", id));
        }
        st.tombstones.insert(key);
        Ok(())
    }

    async fn get_version(&self, org: &str, id: &str, version: u32) -> Result<WorkflowVersion> {
        let st = self.state();
        st.workflow(org, id)?
            .versions
            .get(&version)
            .cloned()
            .ok_or_else(|| version_not_found(id, version))
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
        let st = self.state();
        let items = st
            .workflow(org, id)?
            .versions
            .range((
                Bound::Unbounded,
                before.map_or(Bound::Unbounded, Bound::Excluded),
            ))
            .rev()
            .take(limit + 1)
            .map(|(_, v)| v.clone())
            .collect();
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
        let mut st = self.state();
        let wf = st.workflow_mut(org, id)?;
        if !wf.versions.contains_key(&version) {
            return Err(version_not_found(id, version));
        }
        let s = &mut wf.summary;
        s.published_version = Some(version);
        s.state_machine = Some(state_machine.to_owned());
        s.updated_at_ms = at_ms;
        s.updated_by = actor.to_owned();
        Ok(s.clone())
    }
}

impl RunStore for MemoryStore {
    async fn create_run(&self, org: &str, run: RunRecord) -> Result<Created<RunRecord>> {
        let mut st = self.state();
        if let Some(k) = &run.idempotency_key {
            let key = (org.to_owned(), run.workflow_id.clone(), k.clone());
            if let Some(existing) = st.run_keys.get(&key) {
                let existing = (org.to_owned(), existing.clone());
                if let Some(r) = st.runs.get(&existing) {
                    return Ok(Created::Existing(r.record.clone()));
                }
            }
        }
        let key = (org.to_owned(), run.id.clone());
        if st.runs.contains_key(&key) {
            return Err(run_exists(&run.id));
        }
        if let Some(k) = &run.idempotency_key {
            st.run_keys.insert(
                (org.to_owned(), run.workflow_id.clone(), k.clone()),
                run.id.clone(),
            );
        }
        st.runs.insert(
            key,
            Run {
                record: run.clone(),
                nodes: Vec::new(),
            },
        );
        Ok(Created::New(run))
    }

    async fn get_run(&self, org: &str, id: &str) -> Result<RunRecord> {
        self.state()
            .runs
            .get(&(org.to_owned(), id.to_owned()))
            .map(|r| r.record.clone())
            .ok_or_else(|| StoreError::not_found("run", id))
    }

    async fn list_runs(&self, org: &str, query: RunQuery) -> Result<Page<RunRecord>> {
        let limit = check_limit(query.limit)?;
        let before = keys::parse_run(query.cursor.as_deref())?;
        let st = self.state();
        let mut items: Vec<&RunRecord> = st
            .runs
            .iter()
            .filter(|((o, _), _)| o == org)
            .map(|(_, r)| &r.record)
            .filter(|r| {
                query
                    .workflow_id
                    .as_deref()
                    .is_none_or(|w| r.workflow_id == w)
            })
            .filter(|r| query.status.is_none_or(|s| r.status == s))
            .filter(|r| {
                before
                    .as_ref()
                    .is_none_or(|(at, id)| (r.started_at_ms, r.id.as_str()) < (*at, id.as_str()))
            })
            .collect();
        items.sort_unstable_by(|a, b| {
            (b.started_at_ms, b.id.as_str()).cmp(&(a.started_at_ms, a.id.as_str()))
        });
        let items = items.into_iter().take(limit + 1).cloned().collect();
        Ok(page(items, limit, |r| keys::run(r.started_at_ms, &r.id)))
    }

    async fn finish_run(&self, org: &str, id: &str, end: RunEnd) -> Result<RunRecord> {
        check_end(&end)?;
        let mut st = self.state();
        let r = &mut st.run_mut(org, id)?.record;
        if r.status != RunStatus::Running {
            return Err(run_ended(id, r.status));
        }
        r.status = end.status;
        r.output = end.output;
        r.error = end.error;
        r.cause = end.cause;
        r.ended_at_ms = Some(end.at_ms);
        Ok(r.clone())
    }

    async fn reopen_run(&self, org: &str, id: &str) -> Result<RunRecord> {
        let mut st = self.state();
        let r = &mut st.run_mut(org, id)?.record;
        if r.status == RunStatus::Running {
            return Err(run_running(id));
        }
        r.status = RunStatus::Running;
        r.output = None;
        r.error = None;
        r.cause = None;
        r.ended_at_ms = None;
        Ok(r.clone())
    }

    async fn put_node_execution(&self, org: &str, run_id: &str, node: NodeExecution) -> Result<()> {
        let mut st = self.state();
        st.run_mut(org, run_id)?;
        let seq = st.next_seq();
        let run = st.run_mut(org, run_id)?;
        match run
            .nodes
            .iter_mut()
            .find(|(_, n)| n.node_id == node.node_id && n.step == node.step)
        {
            Some((_, n)) => {
                if !(node.status == "running" && n.status == "succeeded") {
                    *n = node;
                }
            }
            None => run.nodes.push((seq, node)),
        }
        Ok(())
    }

    async fn list_node_executions(&self, org: &str, run_id: &str) -> Result<Vec<NodeExecution>> {
        let st = self.state();
        let run = st
            .runs
            .get(&(org.to_owned(), run_id.to_owned()))
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        let mut nodes: Vec<&(i64, NodeExecution)> = run.nodes.iter().collect();
        nodes.sort_by_key(|(seq, n)| (n.started_at_ms, *seq));
        Ok(nodes.into_iter().map(|(_, n)| n.clone()).collect())
    }
}

impl FormStore for MemoryStore {
    async fn add_response(
        &self,
        org: &str,
        response: FormResponse,
    ) -> Result<Created<FormResponse>> {
        let mut st = self.state();
        if let Some(k) = &response.client_key {
            let key = (org.to_owned(), response.workflow_id.clone(), k.clone());
            if let Some(id) = st.response_keys.get(&key) {
                let existing = (org.to_owned(), response.workflow_id.clone(), id.clone());
                if let Some(r) = st.responses.get(&existing) {
                    return Ok(Created::Existing(r.clone()));
                }
            }
        }
        let key = (
            org.to_owned(),
            response.workflow_id.clone(),
            response.id.clone(),
        );
        if st.responses.contains_key(&key) {
            return Err(response_exists(&response.id));
        }
        if let Some(k) = &response.client_key {
            st.response_keys.insert(
                (org.to_owned(), response.workflow_id.clone(), k.clone()),
                response.id.clone(),
            );
        }
        st.responses.insert(key, response.clone());
        Ok(Created::New(response))
    }

    async fn set_response_run(
        &self,
        org: &str,
        workflow_id: &str,
        response_id: &str,
        run_id: &str,
    ) -> Result<()> {
        let mut st = self.state();
        let key = (
            org.to_owned(),
            workflow_id.to_owned(),
            response_id.to_owned(),
        );
        let r = st
            .responses
            .get_mut(&key)
            .ok_or_else(|| StoreError::not_found("response", response_id))?;
        r.run_id = Some(run_id.to_owned());
        Ok(())
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
        let st = self.state();
        let mut items: Vec<&FormResponse> = st
            .responses
            .iter()
            .filter(|((o, w, _), _)| o == org && w == workflow_id)
            .map(|(_, r)| r)
            .filter(|r| {
                before
                    .as_ref()
                    .is_none_or(|(at, id)| (r.submitted_at_ms, r.id.as_str()) < (*at, id.as_str()))
            })
            .collect();
        items.sort_unstable_by(|a, b| {
            (b.submitted_at_ms, b.id.as_str()).cmp(&(a.submitted_at_ms, a.id.as_str()))
        });
        let items = items.into_iter().take(limit + 1).cloned().collect();
        Ok(page(items, limit, |r| {
            keys::response(r.submitted_at_ms, &r.id)
        }))
    }
}

impl RouteStore for MemoryStore {
    async fn put_route(&self, route: Route) -> Result<()> {
        let mut st = self.state();
        let key = (route.kind.clone(), route.key.clone());
        if let Some(existing) = st.routes.get(&key) {
            check_route_owner(existing, &route)?;
        }
        st.routes.insert(key, route);
        Ok(())
    }

    async fn get_route(&self, kind: &str, key: &str) -> Result<Route> {
        self.state()
            .routes
            .get(&(kind.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| route_not_found(kind, key))
    }

    async fn delete_routes(&self, org: &str, workflow_id: &str) -> Result<()> {
        self.state()
            .routes
            .retain(|_, r| !(r.org == org && r.workflow_id == workflow_id));
        Ok(())
    }
}

impl RouteIndex for MemoryStore {
    async fn list_routes(&self, kind: &str) -> Result<Vec<Route>> {
        let mut routes: Vec<Route> = self
            .state()
            .routes
            .values()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect();
        routes.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(routes)
    }
}

impl ConnectionStore for MemoryStore {
    async fn put_connection(&self, connection: Connection) -> Result<()> {
        let mut st = self.state();
        let moved = st
            .connections
            .get(&connection.id)
            .is_some_and(|c| c.org != connection.org);
        if moved {
            st.subscriptions.retain(|(id, _)| *id != connection.id);
        }
        st.connections.insert(connection.id.clone(), connection);
        Ok(())
    }

    async fn get_connection(&self, id: &str) -> Result<Option<Connection>> {
        Ok(self.state().connections.get(id).cloned())
    }

    async fn delete_connection(&self, id: &str) -> Result<()> {
        let mut st = self.state();
        st.connections.remove(id);
        st.subscriptions.retain(|(c, _)| c != id);
        Ok(())
    }

    async fn subscribe(&self, id: &str, topic: &str) -> Result<()> {
        let mut st = self.state();
        if !st.connections.contains_key(id) {
            return Err(StoreError::not_found("connection", id));
        }
        st.subscriptions.insert((id.to_owned(), topic.to_owned()));
        Ok(())
    }

    async fn unsubscribe(&self, id: &str, topic: &str) -> Result<()> {
        self.state()
            .subscriptions
            .remove(&(id.to_owned(), topic.to_owned()));
        Ok(())
    }

    async fn subscribers(&self, org: &str, topic: &str) -> Result<Vec<Connection>> {
        let st = self.state();
        let mut found: Vec<Connection> = st
            .subscriptions
            .iter()
            .filter(|(_, t)| t == topic)
            .filter_map(|(id, _)| st.connections.get(id))
            .filter(|c| c.org == org)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }
}

impl crate::DatasetStore for MemoryStore {
    async fn put_record(&self, record: crate::DatasetRecord) -> Result<()> {
        self.state()
            .records
            .insert((record.dataset.clone(), record.key.clone()), record);
        Ok(())
    }

    async fn list_records(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<crate::DatasetRecord>> {
        check_limit(limit)?;
        let after = crate::parse_record_cursor(cursor.as_deref())?;
        let from = match after {
            Some(k) => Bound::Excluded((dataset.to_owned(), k)),
            None => Bound::Included((dataset.to_owned(), String::new())),
        };
        let items: Vec<crate::DatasetRecord> = self
            .state()
            .records
            .range((from, Bound::Unbounded))
            .take_while(|((d, _), _)| d == dataset)
            .take(limit + 1)
            .map(|(_, r)| r.clone())
            .collect();
        Ok(page(items, limit, |r| crate::record_cursor(&r.key)))
    }
}

impl AuditStore for MemoryStore {
    async fn append(&self, org: &str, event: AuditEvent) -> Result<()> {
        let mut st = self.state();
        let seq = st.next_seq();
        st.audit.push((org.to_owned(), seq, event));
        Ok(())
    }

    async fn list_audit(
        &self,
        org: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<AuditEvent>> {
        let limit = check_limit(limit)?;
        let before = keys::parse_audit(cursor.as_deref())?;
        let st = self.state();
        let found: Vec<(i64, AuditEvent)> = st
            .audit
            .iter()
            .rev()
            .filter(|(o, seq, _)| o == org && before.is_none_or(|b| *seq < b))
            .take(limit + 1)
            .map(|(_, seq, e)| (*seq, e.clone()))
            .collect();
        let Page { items, next_cursor } = page(found, limit, |(seq, _)| keys::audit(*seq));
        Ok(Page {
            items: items.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }
}

// ---------------------------------------------------------------- shared by the adapters

/// The text a workflow search looks in: the lowercased id, name and description, separated by
/// a unit separator (U+001F) so that a needle cannot match across two fields.
pub(crate) fn search_text(id: &str, name: &str, description: &str) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        id.to_lowercase(),
        name.to_lowercase(),
        description.to_lowercase()
    )
}

/// The lowercased search needle; `None` (match everything) for no or an empty search.
pub(crate) fn search_needle(search: Option<&str>) -> Option<String> {
    search.filter(|s| !s.is_empty()).map(str::to_lowercase)
}

/// `Conflict` unless a workflow id is free (neither live nor deleted).
pub(crate) fn check_workflow_absent(live: bool, deleted: bool, id: &str) -> Result<()> {
    if live {
        return Err(StoreError::Conflict(format!(
            "workflow `{id}` exists already"
        )));
    }
    if deleted {
        return Err(StoreError::Conflict(format!(
            "workflow `{id}` was deleted; its id cannot be reused"
        )));
    }
    Ok(())
}

/// The summary and version 1 of a new workflow.
pub(crate) fn new_workflow(id: &str, write: WorkflowWrite) -> (WorkflowSummary, WorkflowVersion) {
    let summary = WorkflowSummary {
        id: id.to_owned(),
        name: write.name,
        description: write.description,
        latest_version: 1,
        published_version: None,
        state_machine: None,
        is_template: write.is_template,
        created_at_ms: write.at_ms,
        created_by: write.actor.clone(),
        updated_at_ms: write.at_ms,
        updated_by: write.actor.clone(),
    };
    let version = WorkflowVersion {
        workflow_id: id.to_owned(),
        version: 1,
        definition: write.definition,
        created_at_ms: write.at_ms,
        created_by: write.actor,
    };
    (summary, version)
}

/// `Conflict` naming the latest version unless `expected` (if given) is the latest.
pub(crate) fn check_expected(id: &str, latest: u32, expected: Option<u32>) -> Result<()> {
    match expected {
        Some(e) if e != latest => Err(StoreError::Conflict(format!(
            "workflow `{id}` is at version {latest}, not {e}"
        ))),
        _ => Ok(()),
    }
}

/// `NotFound` for version `version` of workflow `id`.
pub(crate) fn version_not_found(id: &str, version: u32) -> StoreError {
    StoreError::not_found("version", format!("{id}@{version}"))
}

/// `Conflict` for an existing run id.
pub(crate) fn run_exists(id: &str) -> StoreError {
    StoreError::Conflict(format!("run `{id}` exists already"))
}

/// `Conflict` for finishing a run that ended.
pub(crate) fn run_ended(id: &str, status: RunStatus) -> StoreError {
    StoreError::Conflict(format!(
        "run `{id}` has ended already ({})",
        status.as_str()
    ))
}

/// `Conflict` for reopening a run that is running.
pub(crate) fn run_running(id: &str) -> StoreError {
    StoreError::Conflict(format!("run `{id}` is running"))
}

/// `Invalid` unless `end` is a final status.
pub(crate) fn check_end(end: &RunEnd) -> Result<()> {
    if end.status == RunStatus::Running {
        return Err(StoreError::Invalid("a run cannot finish as RUNNING".into()));
    }
    Ok(())
}

/// `Conflict` for an existing response id.
pub(crate) fn response_exists(id: &str) -> StoreError {
    StoreError::Conflict(format!("response `{id}` exists already"))
}

/// `Conflict` if `existing` belongs to another organisation than `new`.
pub(crate) fn check_route_owner(existing: &Route, new: &Route) -> Result<()> {
    if existing.org != new.org {
        return Err(route_taken(&new.kind, &new.key));
    }
    Ok(())
}

/// `Conflict` for a route key another organisation holds.
pub(crate) fn route_taken(kind: &str, key: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{kind} route `{key}` belongs to another organisation"
    ))
}

/// `NotFound` for a route.
pub(crate) fn route_not_found(kind: &str, key: &str) -> StoreError {
    StoreError::not_found("route", format!("{kind}/{key}"))
}

/// The cursors of this crate's adapters: a tag naming the list, then the last item's sort key.
pub(crate) mod keys {
    use super::{Cursor, Result, StoreError, Value};

    fn decode(cursor: &str, tag: &str, len: usize) -> Result<Cursor> {
        let c = Cursor::decode(cursor)?;
        if c.0.len() != len || c.str(0)? != tag {
            return Err(StoreError::Invalid("cursor does not fit this list".into()));
        }
        Ok(c)
    }

    /// After workflow `id`.
    pub(crate) fn workflow(id: &str) -> String {
        Cursor::encode(vec![Value::from("w"), Value::from(id)])
    }

    /// The id a workflow cursor continues after.
    pub(crate) fn parse_workflow(cursor: Option<&str>) -> Result<Option<String>> {
        cursor
            .map(|c| Ok(decode(c, "w", 2)?.str(1)?.to_owned()))
            .transpose()
    }

    /// Before version `v`.
    pub(crate) fn version(v: u32) -> String {
        Cursor::encode(vec![Value::from("v"), Value::from(v)])
    }

    /// The version a version cursor continues before.
    pub(crate) fn parse_version(cursor: Option<&str>) -> Result<Option<u32>> {
        cursor
            .map(|c| {
                u32::try_from(decode(c, "v", 2)?.int(1)?)
                    .map_err(|_| StoreError::Invalid("cursor does not fit this list".into()))
            })
            .transpose()
    }

    /// Before the run started at `at` with id `id`.
    pub(crate) fn run(at: i64, id: &str) -> String {
        Cursor::encode(vec![Value::from("r"), Value::from(at), Value::from(id)])
    }

    /// The (started, id) a run cursor continues before.
    pub(crate) fn parse_run(cursor: Option<&str>) -> Result<Option<(i64, String)>> {
        cursor
            .map(|c| {
                let c = decode(c, "r", 3)?;
                Ok((c.int(1)?, c.str(2)?.to_owned()))
            })
            .transpose()
    }

    /// Before the response submitted at `at` with id `id`.
    pub(crate) fn response(at: i64, id: &str) -> String {
        Cursor::encode(vec![Value::from("f"), Value::from(at), Value::from(id)])
    }

    /// The (submitted, id) a response cursor continues before.
    pub(crate) fn parse_response(cursor: Option<&str>) -> Result<Option<(i64, String)>> {
        cursor
            .map(|c| {
                let c = decode(c, "f", 3)?;
                Ok((c.int(1)?, c.str(2)?.to_owned()))
            })
            .transpose()
    }

    /// Before audit event `seq`.
    pub(crate) fn audit(seq: i64) -> String {
        Cursor::encode(vec![Value::from("a"), Value::from(seq)])
    }

    /// The sequence number an audit cursor continues before.
    pub(crate) fn parse_audit(cursor: Option<&str>) -> Result<Option<i64>> {
        cursor.map(|c| decode(c, "a", 2)?.int(1)).transpose()
    }
}
