//! The contract every adapter runs: the semantics of [`MemoryStore`](crate::memory::MemoryStore)
//! (see its module docs) as checks.
//!
//! Each check is a `pub async fn check<S: Store>(store: &S)` that panics (like a test) when the
//! adapter breaks the contract. Every check works in organisations (and connection ids, route
//! keys) of its own, made by [`unique`], so checks can run concurrently, repeatedly, on one
//! shared store (the DynamoDB table is shared): a check never assumes the store is empty.
//!
//! Run them all with [`run_all`], or one test per check with [`contract_tests!`](crate::contract_tests):
//!
//! ```ignore
//! cm_store::contract_tests!(cm_store::memory::MemoryStore::new());
//! ```
//!
//! Times in the checks are small made-up numbers (the store never reads a clock).

use crate::{
    AuditEvent, Connection, Created, FormResponse, NodeExecution, Page, Result, Route, RouteIndex,
    RunEnd, RunQuery, RunRecord, RunStatus, Store, StoreError, WorkflowQuery, WorkflowSummary,
    WorkflowWrite,
};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::fmt::Debug;

/// What [`contract_tests!`](crate::contract_tests) builds for each check: something that holds
/// a store (and whatever must live as long as it, e.g. its temporary directory).
pub trait Fixture {
    /// The store.
    type Store: Store;
    /// The store to check.
    fn store(&self) -> &Self::Store;
}

impl Fixture for crate::memory::MemoryStore {
    type Store = Self;
    fn store(&self) -> &Self {
        self
    }
}

impl Fixture for crate::sqlite::SqliteStore {
    type Store = Self;
    fn store(&self) -> &Self {
        self
    }
}

/// A store and a guard that must outlive it.
impl<S: Store, G> Fixture for (S, G) {
    type Store = S;
    fn store(&self) -> &S {
        &self.0
    }
}

/// One `#[tokio::test]` per check (the calling crate needs `tokio` with the `macros` and
/// `rt-multi-thread` features). The argument is an expression evaluated in each test (inside an
/// `async fn`, so it may `.await`) that gives a [`Fixture`]: a store, or a `(store, guard)`.
/// Outer attributes before it (`#[ignore = "needs the emulator"]`, `#[cfg(…)]`) go on every
/// test.
///
/// ```ignore
/// mod memory {
///     cm_store::contract_tests!(cm_store::memory::MemoryStore::new());
/// }
/// mod dynamodb {
///     cm_store::contract_tests!(#[ignore = "needs the emulator"] make_store().await);
/// }
/// ```
#[macro_export]
macro_rules! contract_tests {
    (@checks $attrs:tt $make:expr; $($check:ident),* $(,)?) => {
        $($crate::contract_tests!(@one $attrs $make; $check);)*
    };
    (@one [$($attr:tt)*] $make:expr; $check:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attr)*
        async fn $check() {
            let fixture = $make;
            $crate::contract::$check($crate::contract::Fixture::store(&fixture)).await;
        }
    };
    // Attributes, one at a time (an expression may start with `#`, so they cannot be one
    // repetition before it).
    (@attrs [$($attrs:tt)*] #[$attr:meta] $($rest:tt)*) => {
        $crate::contract_tests!(@attrs [$($attrs)* #[$attr]] $($rest)*);
    };
    (@attrs [$($attrs:tt)*] $make:expr) => {
        $crate::contract_tests!(@checks [$($attrs)*] $make;
            workflows_create_get, workflows_org_isolation, workflows_paging,
            workflows_search_and_templates, workflows_update_and_versions, workflows_delete,
            workflows_publish, workflows_concurrent_writes, runs_create_idempotency,
            runs_concurrent_idempotency, runs_list_order_filters_paging, runs_finish_and_reopen,
            runs_org_isolation, node_executions, form_responses, routes, connections, audit,
            bad_cursors, limits);
    };
    ($($input:tt)*) => {
        $crate::contract_tests!(@attrs [] $($input)*);
    };
}

/// Every check, one after the other.
pub async fn run_all<S: Store>(store: &S) {
    workflows_create_get(store).await;
    workflows_org_isolation(store).await;
    workflows_paging(store).await;
    workflows_search_and_templates(store).await;
    workflows_update_and_versions(store).await;
    workflows_delete(store).await;
    workflows_publish(store).await;
    workflows_concurrent_writes(store).await;
    runs_create_idempotency(store).await;
    runs_concurrent_idempotency(store).await;
    runs_list_order_filters_paging(store).await;
    runs_finish_and_reopen(store).await;
    runs_org_isolation(store).await;
    node_executions(store).await;
    form_responses(store).await;
    routes(store).await;
    connections(store).await;
    audit(store).await;
    bad_cursors(store).await;
    limits(store).await;
}

// ---------------------------------------------------------------- helpers

/// `prefix-` and 16 random hex digits: an id no other check (or run of the suite) uses.
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS gives random bytes");
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}-{hex}")
}

#[track_caller]
fn not_found<T: Debug>(r: Result<T>, what: &str) {
    match r {
        Err(StoreError::NotFound { what: w, .. }) if w == what => {}
        other => panic!("expected {what} NotFound, got {other:?}"),
    }
}

#[track_caller]
fn conflict<T: Debug>(r: Result<T>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn invalid<T: Debug>(r: Result<T>) {
    match r {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[track_caller]
fn new<T: Debug>(r: Result<Created<T>>) -> T {
    match r {
        Ok(Created::New(t)) => t,
        other => panic!("expected Created::New, got {other:?}"),
    }
}

#[track_caller]
fn existing<T: Debug>(r: Result<Created<T>>) -> T {
    match r {
        Ok(Created::Existing(t)) => t,
        other => panic!("expected Created::Existing, got {other:?}"),
    }
}

fn write(name: &str, description: &str, is_template: bool, at_ms: i64) -> WorkflowWrite {
    WorkflowWrite {
        name: name.into(),
        description: description.into(),
        definition: json!({"name": name, "nodes": [{"id": "n1", "at": at_ms}]}),
        is_template,
        actor: "alice".into(),
        at_ms,
    }
}

fn run(id: &str, workflow_id: &str, started_at_ms: i64, key: Option<&str>) -> RunRecord {
    RunRecord {
        id: id.into(),
        workflow_id: workflow_id.into(),
        workflow_version: 1,
        execution_arn: format!(
            "arn:aws:states:us-east-1:123456789012:execution:{workflow_id}:{id}"
        ),
        status: RunStatus::Running,
        trigger: "trigger.manual".into(),
        input: json!({"run": id, "nested": {"list": [1, 2.5, "three", null, true]}}),
        output: None,
        error: None,
        cause: None,
        idempotency_key: key.map(Into::into),
        started_by: "alice".into(),
        started_at_ms,
        ended_at_ms: None,
        retry_of: None,
    }
}

fn end(status: RunStatus, at_ms: i64) -> RunEnd {
    RunEnd {
        status,
        output: (status == RunStatus::Succeeded).then(|| json!({"ok": true})),
        error: (status == RunStatus::Failed).then(|| "States.TaskFailed".to_owned()),
        cause: (status == RunStatus::Failed).then(|| "boom".to_owned()),
        at_ms,
    }
}

fn response(id: &str, workflow_id: &str, at_ms: i64, key: Option<&str>) -> FormResponse {
    FormResponse {
        id: id.into(),
        workflow_id: workflow_id.into(),
        client_key: key.map(Into::into),
        data: json!({"email": format!("{id}@example.com")}),
        submitted_at_ms: at_ms,
        run_id: None,
    }
}

fn query(search: Option<&str>, templates: Option<bool>, limit: usize) -> WorkflowQuery {
    WorkflowQuery {
        search: search.map(Into::into),
        templates,
        cursor: None,
        limit,
    }
}

/// Pages through a list to its end, checking page sizes; returns every item in order.
async fn drain<T, F, Fut>(limit: usize, mut next: F) -> Vec<T>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = next(cursor.take()).await.expect("a page");
        assert!(
            page.items.len() <= limit,
            "a page holds {} items, more than the limit {limit}",
            page.items.len()
        );
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
    panic!("the list never ended");
}

async fn workflow_ids<S: Store>(s: &S, org: &str, q: WorkflowQuery) -> Vec<String> {
    let limit = q.limit;
    let items = drain(limit, |cursor| {
        s.list_workflows(
            org,
            WorkflowQuery {
                cursor,
                ..q.clone()
            },
        )
    })
    .await;
    items.into_iter().map(|w| w.id).collect()
}

async fn run_ids<S: Store>(s: &S, org: &str, q: RunQuery) -> Vec<String> {
    let limit = q.limit;
    let items = drain(limit, |cursor| {
        s.list_runs(
            org,
            RunQuery {
                cursor,
                ..q.clone()
            },
        )
    })
    .await;
    items.into_iter().map(|r| r.id).collect()
}

fn runs(workflow_id: Option<&str>, status: Option<RunStatus>, limit: usize) -> RunQuery {
    RunQuery {
        workflow_id: workflow_id.map(Into::into),
        status,
        cursor: None,
        limit,
    }
}

// ---------------------------------------------------------------- workflows

/// Create, get, a second create of the id (`Conflict`), ids per organisation.
pub async fn workflows_create_get<S: Store>(s: &S) {
    let org = unique("org");
    let w = write("Billing sync", "Moves invoices", false, 1_000);
    let created = s
        .create_workflow(&org, "billing", w.clone())
        .await
        .expect("create");
    let expected = WorkflowSummary {
        id: "billing".into(),
        name: "Billing sync".into(),
        description: "Moves invoices".into(),
        latest_version: 1,
        published_version: None,
        state_machine: None,
        is_template: false,
        created_at_ms: 1_000,
        created_by: "alice".into(),
        updated_at_ms: 1_000,
        updated_by: "alice".into(),
    };
    assert_eq!(created, expected);
    assert_eq!(
        s.get_workflow(&org, "billing").await.expect("get"),
        expected
    );
    let v1 = s.get_version(&org, "billing", 1).await.expect("version 1");
    assert_eq!(
        (v1.workflow_id.as_str(), v1.version, &v1.definition),
        ("billing", 1, &w.definition)
    );
    assert_eq!((v1.created_at_ms, v1.created_by.as_str()), (1_000, "alice"));

    conflict(
        s.create_workflow(&org, "billing", write("Other", "", true, 2_000))
            .await,
    );
    assert_eq!(
        s.get_workflow(&org, "billing").await.expect("get"),
        expected,
        "a conflicting create writes nothing"
    );
    not_found(s.get_workflow(&org, "nope").await, "workflow");

    // Ids are per organisation.
    let other = unique("org");
    let theirs = s
        .create_workflow(&other, "billing", write("Theirs", "", true, 3_000))
        .await
        .expect("the same id in another organisation");
    assert_eq!(theirs.name, "Theirs");
    assert_eq!(
        s.get_workflow(&org, "billing").await.expect("get").name,
        "Billing sync"
    );
}

/// Every workflow method of another organisation: `NotFound` or empty, and no effect.
pub async fn workflows_org_isolation<S: Store>(s: &S) {
    let (a, b) = (unique("org"), unique("org"));
    s.create_workflow(&a, "wf", write("A's", "", false, 1))
        .await
        .expect("create");
    not_found(s.get_workflow(&b, "wf").await, "workflow");
    let listed = s
        .list_workflows(&b, query(None, None, 500))
        .await
        .expect("list");
    assert!(listed.items.is_empty() && listed.next_cursor.is_none());
    let searched = s
        .list_workflows(&b, query(Some("A's"), None, 500))
        .await
        .expect("search");
    assert!(searched.items.is_empty());
    not_found(
        s.update_workflow(&b, "wf", None, write("B", "", false, 2))
            .await,
        "workflow",
    );
    not_found(
        s.update_workflow(&b, "wf", Some(1), write("B", "", false, 2))
            .await,
        "workflow",
    );
    not_found(s.get_version(&b, "wf", 1).await, "workflow");
    not_found(s.list_versions(&b, "wf", None, 10).await, "workflow");
    not_found(s.publish(&b, "wf", 1, "arn:sm", "bob", 3).await, "workflow");
    not_found(s.delete_workflow(&b, "wf").await, "workflow");

    let mine = s.get_workflow(&a, "wf").await.expect("still there");
    assert_eq!(
        (
            mine.latest_version,
            mine.published_version,
            mine.name.as_str()
        ),
        (1, None, "A's")
    );
    // A tombstone is per organisation too.
    s.delete_workflow(&a, "wf").await.expect("delete");
    s.create_workflow(&b, "wf", write("B's", "", false, 4))
        .await
        .expect("B may use an id A deleted");
    not_found(s.get_workflow(&a, "wf").await, "workflow");
}

/// More workflows than a page: every page in id order, no gaps, no duplicates.
pub async fn workflows_paging<S: Store>(s: &S) {
    let org = unique("org");
    let n = 23;
    let mut ids: Vec<String> = (0..n).map(|i| format!("wf-{i:02}")).collect();
    for i in 0..n {
        // Created out of order.
        let id = &ids[(i * 7) % n];
        s.create_workflow(&org, id, write(id, "", i % 2 == 0, i as i64))
            .await
            .expect("create");
    }
    ids.sort();
    for limit in [1, 5, 22, 23, 500] {
        assert_eq!(
            workflow_ids(s, &org, query(None, None, limit)).await,
            ids,
            "paging by {limit}"
        );
    }
    let first = s
        .list_workflows(&org, query(None, None, 23))
        .await
        .expect("one page");
    assert_eq!(first.items.len(), 23);
    assert!(
        first.next_cursor.is_none(),
        "no cursor when the page holds the rest"
    );
}

/// Search (case-insensitive substring of id, name, description) and the template filter.
pub async fn workflows_search_and_templates<S: Store>(s: &S) {
    let org = unique("org");
    let all = [
        ("billing-sync", "Billing Sync", "Moves invoices", false),
        (
            "crm-import",
            "CRM import",
            "Imports contacts from the CRM",
            true,
        ),
        ("hello", "Hello ÅNGSTRÖM", "greets", true),
        (
            "ops-report",
            "Weekly report",
            "Sends the BILLING summary",
            false,
        ),
        ("quoted", "Say \"hi\" now", "with quotes 100%_", false),
    ];
    for (i, (id, name, desc, t)) in all.iter().enumerate() {
        s.create_workflow(&org, id, write(name, desc, *t, i as i64))
            .await
            .expect("create");
    }
    let search = |needle: &'static str, templates: Option<bool>| {
        let org = org.clone();
        async move { workflow_ids(s, &org, query(Some(needle), templates, 2)).await }
    };
    assert_eq!(
        search("billing", None).await,
        ["billing-sync", "ops-report"]
    );
    assert_eq!(
        search("BiLLiNg", None).await,
        ["billing-sync", "ops-report"]
    );
    assert_eq!(search("CRM", None).await, ["crm-import"]);
    assert_eq!(search("ångström", None).await, ["hello"], "Unicode case");
    assert_eq!(search("sy", None).await, ["billing-sync"], "a short needle");
    assert_eq!(search("\"hi\"", None).await, ["quoted"], "quotes");
    assert_eq!(
        search("100%_", None).await,
        ["quoted"],
        "LIKE metacharacters"
    );
    assert_eq!(search("0%", None).await, ["quoted"]);
    assert!(search("zzz-nothing", None).await.is_empty());
    assert!(search("%", None).await.len() == 1);
    assert_eq!(search("", None).await.len(), 5, "empty search matches all");
    assert_eq!(search("", Some(true)).await, ["crm-import", "hello"]);
    assert_eq!(
        search("", Some(false)).await,
        ["billing-sync", "ops-report", "quoted"]
    );
    assert_eq!(search("report", Some(false)).await, ["ops-report"]);
    assert!(search("report", Some(true)).await.is_empty());
    assert_eq!(
        workflow_ids(s, &org, query(None, Some(true), 1)).await,
        ["crm-import", "hello"]
    );

    // Search follows updates and deletes.
    s.update_workflow(&org, "hello", None, write("Hi", "waves", false, 10))
        .await
        .expect("update");
    assert!(search("ångström", None).await.is_empty());
    assert_eq!(search("waves", None).await, ["hello"]);
    assert_eq!(search("", Some(true)).await, ["crm-import"]);
    s.delete_workflow(&org, "crm-import").await.expect("delete");
    assert!(search("crm", None).await.is_empty());

    // Paging a search: every match once.
    let org2 = unique("org");
    let mut matching = Vec::new();
    for i in 0..30 {
        let id = format!("w{i:02}");
        let name = if i % 3 == 0 {
            "Nightly Export"
        } else {
            "Other"
        };
        if i % 3 == 0 {
            matching.push(id.clone());
        }
        s.create_workflow(&org2, &id, write(name, "", i % 2 == 0, i))
            .await
            .expect("create");
    }
    for limit in [1, 3, 4, 500] {
        assert_eq!(
            workflow_ids(s, &org2, query(Some("export"), None, limit)).await,
            matching
        );
    }
    let templates: Vec<String> = matching
        .iter()
        .filter(|id| id[1..].parse::<i64>().is_ok_and(|i| i % 2 == 0))
        .cloned()
        .collect();
    assert_eq!(
        workflow_ids(s, &org2, query(Some("EXP"), Some(true), 2)).await,
        templates
    );
}

/// Updates write new immutable versions; `expected_version` guards them.
pub async fn workflows_update_and_versions<S: Store>(s: &S) {
    let org = unique("org");
    let w1 = write("One", "first", false, 1_000);
    s.create_workflow(&org, "wf", w1.clone())
        .await
        .expect("create");
    let mut w2 = write("Two", "second", true, 2_000);
    w2.actor = "bob".into();
    let s2 = s
        .update_workflow(&org, "wf", None, w2.clone())
        .await
        .expect("update");
    assert_eq!(s2.latest_version, 2);
    assert_eq!(
        (s2.name.as_str(), s2.description.as_str()),
        ("Two", "second")
    );
    assert!(s2.is_template);
    assert_eq!((s2.created_at_ms, s2.created_by.as_str()), (1_000, "alice"));
    assert_eq!((s2.updated_at_ms, s2.updated_by.as_str()), (2_000, "bob"));
    assert_eq!(s.get_workflow(&org, "wf").await.expect("get"), s2);

    let w3 = write("Three", "third", false, 3_000);
    let s3 = s
        .update_workflow(&org, "wf", Some(2), w3.clone())
        .await
        .expect("update at the expected version");
    assert_eq!(s3.latest_version, 3);

    let m = conflict(
        s.update_workflow(&org, "wf", Some(2), write("Stale", "", false, 4_000))
            .await,
    );
    assert!(
        m.contains('3'),
        "the conflict names the latest version: {m}"
    );
    conflict(
        s.update_workflow(&org, "wf", Some(7), write("Ahead", "", false, 4_000))
            .await,
    );
    assert_eq!(
        s.get_workflow(&org, "wf").await.expect("get"),
        s3,
        "a refused update writes nothing"
    );
    not_found(s.get_version(&org, "wf", 4).await, "version");
    not_found(s.get_version(&org, "wf", 0).await, "version");

    // Versions are immutable.
    for (v, w) in [(1, &w1), (2, &w2), (3, &w3)] {
        let got = s.get_version(&org, "wf", v).await.expect("version");
        assert_eq!(got.version, v);
        assert_eq!(got.definition, w.definition);
        assert_eq!(
            (got.created_at_ms, got.created_by.as_str()),
            (w.at_ms, w.actor.as_str())
        );
    }
    let listed = drain(2, |c| s.list_versions(&org, "wf", c, 2)).await;
    assert_eq!(
        listed.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(listed[2].definition, w1.definition);
    let one = s
        .list_versions(&org, "wf", None, 3)
        .await
        .expect("versions");
    assert_eq!(one.items.len(), 3);
    assert!(one.next_cursor.is_none());
    not_found(
        s.update_workflow(&org, "nope", None, write("x", "", false, 1))
            .await,
        "workflow",
    );
}

/// Delete: everything about the workflow is `NotFound`, its id cannot be reused.
pub async fn workflows_delete<S: Store>(s: &S) {
    let org = unique("org");
    for id in ["keep", "gone"] {
        s.create_workflow(&org, id, write(id, "", false, 1))
            .await
            .expect("create");
    }
    s.update_workflow(&org, "gone", None, write("gone", "v2", false, 2))
        .await
        .expect("update");
    s.delete_workflow(&org, "gone").await.expect("delete");
    not_found(s.get_workflow(&org, "gone").await, "workflow");
    not_found(s.get_version(&org, "gone", 1).await, "workflow");
    not_found(s.list_versions(&org, "gone", None, 10).await, "workflow");
    not_found(
        s.update_workflow(&org, "gone", None, write("x", "", false, 3))
            .await,
        "workflow",
    );
    not_found(
        s.publish(&org, "gone", 1, "arn", "bob", 3).await,
        "workflow",
    );
    not_found(s.delete_workflow(&org, "gone").await, "workflow");
    conflict(
        s.create_workflow(&org, "gone", write("again", "", false, 4))
            .await,
    );
    not_found(s.get_workflow(&org, "gone").await, "workflow");
    assert_eq!(workflow_ids(s, &org, query(None, None, 10)).await, ["keep"]);
    assert_eq!(
        s.get_workflow(&org, "keep").await.expect("get").name,
        "keep"
    );
}

/// Publish points at an existing version and records the state machine.
pub async fn workflows_publish<S: Store>(s: &S) {
    let org = unique("org");
    s.create_workflow(&org, "wf", write("wf", "", false, 1))
        .await
        .expect("create");
    s.update_workflow(&org, "wf", None, write("wf", "", false, 2))
        .await
        .expect("update");
    let p = s
        .publish(&org, "wf", 1, "arn:sm:wf:1", "carol", 5_000)
        .await
        .expect("publish");
    assert_eq!(p.published_version, Some(1));
    assert_eq!(p.state_machine.as_deref(), Some("arn:sm:wf:1"));
    assert_eq!(p.latest_version, 2, "publishing does not write a version");
    assert_eq!((p.updated_at_ms, p.updated_by.as_str()), (5_000, "carol"));
    assert_eq!(s.get_workflow(&org, "wf").await.expect("get"), p);

    not_found(
        s.publish(&org, "wf", 3, "arn:sm:wf:3", "carol", 6_000)
            .await,
        "version",
    );
    not_found(
        s.publish(&org, "wf", 0, "arn:sm:wf:0", "carol", 6_000)
            .await,
        "version",
    );
    assert_eq!(
        s.get_workflow(&org, "wf").await.expect("get"),
        p,
        "a refused publish writes nothing"
    );
    let p2 = s
        .publish(&org, "wf", 2, "arn:sm:wf:2", "dave", 7_000)
        .await
        .expect("publish 2");
    assert_eq!(
        (p2.published_version, p2.state_machine.as_deref()),
        (Some(2), Some("arn:sm:wf:2"))
    );
    let listed = s
        .list_workflows(&org, query(None, None, 10))
        .await
        .expect("list");
    assert_eq!(listed.items, [p2]);
    not_found(
        s.publish(&org, "nope", 1, "arn", "carol", 8_000).await,
        "workflow",
    );
}

/// Racing writes of one workflow: one create wins, one conditional update wins.
pub async fn workflows_concurrent_writes<S: Store>(s: &S) {
    let org = unique("org");
    let creates = join_all(
        (0..8).map(|i| s.create_workflow(&org, "race", write(&format!("w{i}"), "", false, i))),
    )
    .await;
    let won = creates.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one create wins: {creates:?}");
    assert!(
        creates
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_))))
    );
    let updates = join_all((0..8).map(|i| {
        s.update_workflow(
            &org,
            "race",
            Some(1),
            write(&format!("u{i}"), "", false, 10 + i),
        )
    }))
    .await;
    assert_eq!(
        updates.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one update at version 1 wins: {updates:?}"
    );
    let wf = s.get_workflow(&org, "race").await.expect("get");
    assert_eq!(wf.latest_version, 2);
    let versions = s
        .list_versions(&org, "race", None, 10)
        .await
        .expect("versions");
    assert_eq!(versions.items.len(), 2);
}

// ---------------------------------------------------------------- runs

/// Runs: create, get, idempotency keys per (organisation, workflow), id conflicts.
pub async fn runs_create_idempotency<S: Store>(s: &S) {
    let org = unique("org");
    let r1 = run("r1", "wf-a", 1_000, Some("k1"));
    assert_eq!(new(s.create_run(&org, r1.clone()).await), r1);
    assert_eq!(s.get_run(&org, "r1").await.expect("get"), r1);

    let again = existing(
        s.create_run(&org, run("r2", "wf-a", 2_000, Some("k1")))
            .await,
    );
    assert_eq!(again, r1, "the same key returns the stored run");
    not_found(s.get_run(&org, "r2").await, "run");

    let other_wf = new(s
        .create_run(&org, run("r3", "wf-b", 3_000, Some("k1")))
        .await);
    assert_eq!(other_wf.id, "r3", "keys are per workflow");

    conflict(s.create_run(&org, run("r1", "wf-a", 4_000, None)).await);
    conflict(
        s.create_run(&org, run("r1", "wf-c", 4_000, Some("k2")))
            .await,
    );
    assert_eq!(s.get_run(&org, "r1").await.expect("get"), r1);
    // The refused run's key was not recorded.
    new(s
        .create_run(&org, run("r4", "wf-c", 5_000, Some("k2")))
        .await);
    // Without keys, nothing is deduplicated.
    new(s.create_run(&org, run("r5", "wf-a", 6_000, None)).await);
    new(s.create_run(&org, run("r6", "wf-a", 6_000, None)).await);

    // Ids and keys are per organisation.
    let b = unique("org");
    let theirs = new(s.create_run(&b, run("r2", "wf-a", 7_000, Some("k1"))).await);
    assert_eq!(theirs.id, "r2");
    new(s.create_run(&b, run("r1", "wf-a", 7_000, None)).await);
    assert_eq!(s.get_run(&org, "r1").await.expect("get"), r1);
    assert_eq!(s.get_run(&b, "r1").await.expect("get").started_at_ms, 7_000);

    // Every field round-trips.
    let mut full = run("r7", "wf-a", 8_000, Some("k7"));
    full.status = RunStatus::Failed;
    full.output = Some(json!({"a": [1, {"b": null}]}));
    full.error = Some("E".into());
    full.cause = Some("why".into());
    full.ended_at_ms = Some(9_000);
    full.retry_of = Some("r1".into());
    full.workflow_version = 42;
    full.trigger = "trigger.webhook".into();
    new(s.create_run(&org, full.clone()).await);
    assert_eq!(s.get_run(&org, "r7").await.expect("get"), full);
}

/// Racing creates with one idempotency key: one run is stored, every caller gets it.
pub async fn runs_concurrent_idempotency<S: Store>(s: &S) {
    let org = unique("org");
    let results = join_all(
        (0..8).map(|i| s.create_run(&org, run(&format!("race-{i}"), "wf", 1_000 + i, Some("k")))),
    )
    .await;
    let mut news = 0;
    let mut ids = Vec::new();
    for r in results {
        match r.expect("create") {
            Created::New(r) => {
                news += 1;
                ids.push(r.id);
            }
            Created::Existing(r) => ids.push(r.id),
        }
    }
    assert_eq!(news, 1, "exactly one run is stored");
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller gets the stored run");
    assert_eq!(run_ids(s, &org, runs(None, None, 100)).await, ids);
}

/// Runs newest first (start time, then id), filtered by workflow and status, paged.
pub async fn runs_list_order_filters_paging<S: Store>(s: &S) {
    let org = unique("org");
    let workflows = ["wf-a", "wf-b", "wf-c"];
    let mut all = Vec::new();
    for i in 0..31_i64 {
        // Created out of order, with ties on the start time.
        let i = (i * 13) % 31;
        let wf = workflows[(i % 3) as usize];
        let r = run(&format!("run-{i:02}"), wf, 1_000 + (i / 2) * 10, None);
        s.create_run(&org, r).await.expect("create");
        let status = match i % 4 {
            0 => RunStatus::Succeeded,
            1 => RunStatus::Failed,
            _ => RunStatus::Running,
        };
        if status != RunStatus::Running {
            s.finish_run(&org, &format!("run-{i:02}"), end(status, 5_000))
                .await
                .expect("finish");
        }
        all.push((1_000 + (i / 2) * 10, format!("run-{i:02}"), wf, status));
    }
    all.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let expect = |wf: Option<&str>, st: Option<RunStatus>| -> Vec<String> {
        all.iter()
            .filter(|r| wf.is_none_or(|w| r.2 == w) && st.is_none_or(|s| r.3 == s))
            .map(|r| r.1.clone())
            .collect()
    };
    for limit in [1, 7, 31, 500] {
        assert_eq!(
            run_ids(s, &org, runs(None, None, limit)).await,
            expect(None, None),
            "all runs by {limit}"
        );
    }
    for wf in workflows {
        assert_eq!(
            run_ids(s, &org, runs(Some(wf), None, 4)).await,
            expect(Some(wf), None),
            "{wf}"
        );
    }
    for st in [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed] {
        assert_eq!(
            run_ids(s, &org, runs(None, Some(st), 3)).await,
            expect(None, Some(st)),
            "{st:?}"
        );
        assert_eq!(
            run_ids(s, &org, runs(Some("wf-b"), Some(st), 2)).await,
            expect(Some("wf-b"), Some(st)),
            "wf-b {st:?}"
        );
    }
    assert!(
        run_ids(s, &org, runs(None, Some(RunStatus::Aborted), 5))
            .await
            .is_empty()
    );
    assert!(
        run_ids(s, &org, runs(Some("nope"), None, 5))
            .await
            .is_empty()
    );
    let page = s.list_runs(&org, runs(None, None, 31)).await.expect("list");
    assert_eq!(page.items.len(), 31);
    assert!(page.next_cursor.is_none());
    let first = &page.items[0];
    assert_eq!(*first, s.get_run(&org, &first.id).await.expect("get"));
}

/// `finish_run` only once, `reopen_run` only of an ended run.
pub async fn runs_finish_and_reopen<S: Store>(s: &S) {
    let org = unique("org");
    new(s.create_run(&org, run("r", "wf", 1_000, None)).await);
    invalid(
        s.finish_run(&org, "r", end(RunStatus::Running, 2_000))
            .await,
    );
    let done = s
        .finish_run(&org, "r", end(RunStatus::Succeeded, 2_000))
        .await
        .expect("finish");
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"ok": true})));
    assert_eq!(done.ended_at_ms, Some(2_000));
    assert_eq!(done.started_at_ms, 1_000);
    assert_eq!(s.get_run(&org, "r").await.expect("get"), done);

    conflict(s.finish_run(&org, "r", end(RunStatus::Failed, 3_000)).await);
    assert_eq!(
        s.get_run(&org, "r").await.expect("get"),
        done,
        "a second finish writes nothing"
    );
    not_found(
        s.finish_run(&org, "nope", end(RunStatus::Failed, 3_000))
            .await,
        "run",
    );

    let reopened = s.reopen_run(&org, "r").await.expect("reopen");
    assert_eq!(s.get_run(&org, "r").await.expect("get"), reopened);
    assert_eq!(reopened.status, RunStatus::Running);
    assert_eq!(
        (
            reopened.id.as_str(),
            reopened.started_at_ms,
            &reopened.input
        ),
        ("r", 1_000, &done.input),
        "reopening keeps the run's identity and input"
    );
    assert_eq!(
        (
            reopened.output,
            reopened.error,
            reopened.cause,
            reopened.ended_at_ms
        ),
        (None, None, None, None)
    );
    conflict(s.reopen_run(&org, "r").await);
    let failed = s
        .finish_run(&org, "r", end(RunStatus::Failed, 4_000))
        .await
        .expect("finish after reopening");
    assert_eq!(
        (
            failed.status,
            failed.error.as_deref(),
            failed.cause.as_deref()
        ),
        (RunStatus::Failed, Some("States.TaskFailed"), Some("boom"))
    );
    let again = s.reopen_run(&org, "r").await.expect("reopen");
    assert_eq!(again.status, RunStatus::Running);
    not_found(s.reopen_run(&org, "nope").await, "run");
    for st in [RunStatus::TimedOut, RunStatus::Aborted] {
        let id = format!("r-{}", st.as_str());
        new(s.create_run(&org, run(&id, "wf", 1_000, None)).await);
        let r = s
            .finish_run(&org, &id, end(st, 2_000))
            .await
            .expect("finish");
        assert_eq!(r.status, st);
    }
}

/// Every run method of another organisation: `NotFound` or empty, and no effect.
pub async fn runs_org_isolation<S: Store>(s: &S) {
    let (a, b) = (unique("org"), unique("org"));
    let r = run("r", "wf", 1_000, Some("k"));
    new(s.create_run(&a, r.clone()).await);
    not_found(s.get_run(&b, "r").await, "run");
    assert!(run_ids(s, &b, runs(None, None, 10)).await.is_empty());
    assert!(run_ids(s, &b, runs(Some("wf"), None, 10)).await.is_empty());
    assert!(
        run_ids(s, &b, runs(None, Some(RunStatus::Running), 10))
            .await
            .is_empty()
    );
    not_found(
        s.finish_run(&b, "r", end(RunStatus::Failed, 2_000)).await,
        "run",
    );
    not_found(s.reopen_run(&b, "r").await, "run");
    let node = NodeExecution {
        node_id: "n".into(),
        step: "s".into(),
        status: "running".into(),
        started_at_ms: 1,
        ended_at_ms: None,
        output_preview: None,
        error: None,
    };
    not_found(s.put_node_execution(&b, "r", node).await, "run");
    not_found(s.list_node_executions(&b, "r").await, "run");
    // B's key is B's: a run of B, not A's run.
    let theirs = new(s.create_run(&b, run("r-b", "wf", 2_000, Some("k"))).await);
    assert_eq!(theirs.id, "r-b");
    assert_eq!(s.get_run(&a, "r").await.expect("get"), r);
    assert!(
        s.list_node_executions(&a, "r")
            .await
            .expect("nodes")
            .is_empty()
    );
    assert_eq!(run_ids(s, &a, runs(None, None, 10)).await, ["r"]);
}

/// Node executions: upserted by (node id, step), listed in start order.
pub async fn node_executions<S: Store>(s: &S) {
    let org = unique("org");
    new(s.create_run(&org, run("r", "wf", 1, None)).await);
    new(s.create_run(&org, run("other", "wf", 1, None)).await);
    assert!(
        s.list_node_executions(&org, "r")
            .await
            .expect("nodes")
            .is_empty()
    );
    let visit = |node: &str, step: &str, started: i64| NodeExecution {
        node_id: node.into(),
        step: step.into(),
        status: "running".into(),
        started_at_ms: started,
        ended_at_ms: None,
        output_preview: None,
        error: None,
    };
    s.put_node_execution(&org, "r", visit("n1", "s1", 100))
        .await
        .expect("put");
    s.put_node_execution(&org, "r", visit("n2", "s1", 50))
        .await
        .expect("put");
    s.put_node_execution(&org, "r", visit("n1", "s2", 100))
        .await
        .expect("put");
    s.put_node_execution(&org, "other", visit("n9", "s1", 1))
        .await
        .expect("put");
    let done = NodeExecution {
        status: "succeeded".into(),
        ended_at_ms: Some(150),
        output_preview: Some("{\"ok\":true}".into()),
        error: Some("none".into()),
        ..visit("n1", "s1", 100)
    };
    s.put_node_execution(&org, "r", done.clone())
        .await
        .expect("replace");
    // A succeeded visit is not made running again (a late or repeated write of its start);
    // a failed one may be (its node runs again when the run is redriven).
    s.put_node_execution(&org, "r", visit("n1", "s1", 100))
        .await
        .expect("a late start is no error");
    let failed = NodeExecution {
        status: "failed".into(),
        ended_at_ms: Some(60),
        ..visit("n2", "s1", 50)
    };
    s.put_node_execution(&org, "r", failed).await.expect("put");
    s.put_node_execution(&org, "r", visit("n2", "s1", 50))
        .await
        .expect("put");
    let listed = s.list_node_executions(&org, "r").await.expect("nodes");
    assert_eq!(
        listed,
        [visit("n2", "s1", 50), done, visit("n1", "s2", 100)],
        "start order; ties in the order first put; a replaced visit keeps its place; succeeded stays succeeded"
    );
    assert_eq!(
        s.list_node_executions(&org, "other")
            .await
            .expect("nodes")
            .len(),
        1
    );
    not_found(
        s.put_node_execution(&org, "nope", visit("n", "s", 1)).await,
        "run",
    );
    not_found(s.list_node_executions(&org, "nope").await, "run");
}

// ---------------------------------------------------------------- forms

/// Form responses: idempotent by client key (per workflow), run recorded, newest first.
pub async fn form_responses<S: Store>(s: &S) {
    let org = unique("org");
    let r1 = response("r1", "wf", 100, Some("c1"));
    assert_eq!(new(s.add_response(&org, r1.clone()).await), r1);
    assert_eq!(
        existing(
            s.add_response(&org, response("r2", "wf", 200, Some("c1")))
                .await
        ),
        r1
    );
    new(s.add_response(&org, response("r3", "wf", 300, None)).await);
    conflict(s.add_response(&org, response("r1", "wf", 400, None)).await);
    conflict(
        s.add_response(&org, response("r1", "wf", 400, Some("c9")))
            .await,
    );
    new(s
        .add_response(&org, response("r9", "wf", 400, Some("c9")))
        .await);
    let elsewhere = new(s
        .add_response(&org, response("r2", "wf-2", 200, Some("c1")))
        .await);
    assert_eq!(
        elsewhere.workflow_id, "wf-2",
        "client keys are per workflow"
    );

    s.set_response_run(&org, "wf", "r1", "run-1")
        .await
        .expect("set run");
    not_found(
        s.set_response_run(&org, "wf", "nope", "run-1").await,
        "response",
    );
    not_found(
        s.set_response_run(&org, "wf-2", "r1", "run-1").await,
        "response",
    );
    let listed = drain(2, |c| s.list_responses(&org, "wf", c, 2)).await;
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r9", "r3", "r1"]);
    assert_eq!(listed[2].run_id.as_deref(), Some("run-1"));
    assert_eq!(listed[2].data, r1.data);
    assert_eq!(
        existing(
            s.add_response(&org, response("r5", "wf", 500, Some("c1")))
                .await
        )
        .run_id,
        Some("run-1".into())
    );

    // Paging with ties on the submission time.
    let org2 = unique("org");
    let mut expected = Vec::new();
    for i in 0..13_i64 {
        let i = (i * 5) % 13;
        let id = format!("resp-{i:02}");
        new(s
            .add_response(&org2, response(&id, "wf", 1_000 + (i / 3), None))
            .await);
        expected.push((1_000 + (i / 3), id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    for limit in [1, 4, 13, 500] {
        let got: Vec<String> = drain(limit, |c| s.list_responses(&org2, "wf", c, limit))
            .await
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, expected, "responses by {limit}");
    }

    // Another organisation sees nothing and may reuse keys.
    let b = unique("org");
    let page = s.list_responses(&b, "wf", None, 10).await.expect("list");
    assert!(page.items.is_empty() && page.next_cursor.is_none());
    not_found(
        s.set_response_run(&b, "wf", "r1", "run-x").await,
        "response",
    );
    new(s
        .add_response(&b, response("r1", "wf", 100, Some("c1")))
        .await);
    assert_eq!(
        drain(10, |c| s.list_responses(&org, "wf", c, 10))
            .await
            .iter()
            .find(|r| r.id == "r1")
            .and_then(|r| r.run_id.clone()),
        Some("run-1".into()),
        "B's writes do not touch A's responses"
    );
}

// ---------------------------------------------------------------- routes

/// Routes: put, replace (same organisation only), get, delete a workflow's routes.
pub async fn routes<S: Store>(s: &S) {
    let (a, b) = (unique("org"), unique("org"));
    let key = unique("key");
    let route = |kind: &str, org: &str, wf: &str| Route {
        kind: kind.into(),
        key: key.clone(),
        org: org.into(),
        workflow_id: wf.into(),
    };
    s.put_route(route("form", &a, "wf1")).await.expect("put");
    assert_eq!(
        s.get_route("form", &key).await.expect("get"),
        route("form", &a, "wf1")
    );
    s.put_route(route("form", &a, "wf2"))
        .await
        .expect("replace");
    assert_eq!(
        s.get_route("form", &key).await.expect("get"),
        route("form", &a, "wf2")
    );
    conflict(s.put_route(route("form", &b, "wfb")).await);
    assert_eq!(
        s.get_route("form", &key).await.expect("get"),
        route("form", &a, "wf2"),
        "another organisation cannot take a route"
    );
    s.put_route(route("hook", &b, "wf2"))
        .await
        .expect("another kind");
    not_found(s.get_route("form", &unique("key")).await, "route");
    not_found(s.get_route("other", &key).await, "route");

    s.delete_routes(&b, "wf2").await.expect("delete B's");
    assert_eq!(s.get_route("form", &key).await.expect("A's stays").org, a);
    not_found(s.get_route("hook", &key).await, "route");
    s.put_route(route("hook", &b, "wf2"))
        .await
        .expect("put again");
    s.delete_routes(&a, "wf1").await.expect("delete nothing");
    assert_eq!(
        s.get_route("form", &key).await.expect("still").workflow_id,
        "wf2"
    );
    s.delete_routes(&a, "wf2").await.expect("delete");
    not_found(s.get_route("form", &key).await, "route");
    assert_eq!(s.get_route("hook", &key).await.expect("B's stays").org, b);
    s.put_route(route("form", &b, "wfb"))
        .await
        .expect("a freed key");
    s.delete_routes(&a, "wf2").await.expect("idempotent");
}

/// [`RouteIndex`] (adapters that have it; not part of [`run_all`] and
/// [`contract_tests!`](crate::contract_tests), which every adapter runs): `list_routes` lists
/// one kind's routes of every organisation, by key, and follows puts, replacements and
/// deletes.
pub async fn routes_by_kind<S: Store + RouteIndex>(s: &S) {
    let (a, b) = (unique("org"), unique("org"));
    // A kind of its own, so that concurrent checks on a shared store do not show up.
    let (kind, other) = (unique("kind"), unique("kind"));
    let route = |kind: &str, org: &str, wf: &str| Route {
        kind: kind.into(),
        key: format!("{org}/{wf}"),
        org: org.into(),
        workflow_id: wf.into(),
    };
    assert_eq!(s.list_routes(&kind).await.expect("list"), vec![], "empty");
    s.put_route(route(&kind, &b, "w2")).await.expect("put");
    s.put_route(route(&kind, &a, "w1")).await.expect("put");
    s.put_route(route(&kind, &a, "w2")).await.expect("put");
    s.put_route(route(&other, &a, "w3")).await.expect("put");
    let mut expected = vec![
        route(&kind, &a, "w1"),
        route(&kind, &a, "w2"),
        route(&kind, &b, "w2"),
    ];
    expected.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(
        s.list_routes(&kind).await.expect("list"),
        expected,
        "every organisation's routes of the kind, by key"
    );
    assert_eq!(
        s.list_routes(&other).await.expect("list"),
        vec![route(&other, &a, "w3")]
    );
    // A replaced route is listed as it is now.
    let moved = Route {
        workflow_id: "w9".into(),
        ..route(&kind, &a, "w1")
    };
    s.put_route(moved.clone()).await.expect("replace");
    assert!(s.list_routes(&kind).await.expect("list").contains(&moved));
    s.delete_routes(&a, "w2").await.expect("delete");
    s.delete_routes(&a, "w9").await.expect("delete");
    assert_eq!(
        s.list_routes(&kind).await.expect("list"),
        vec![route(&kind, &b, "w2")],
        "deleted routes are gone; another organisation's stay"
    );
    assert!(
        s.list_routes(&unique("kind"))
            .await
            .expect("list")
            .is_empty()
    );
}

// ---------------------------------------------------------------- connections

/// Connections and subscriptions, scoped to the connection's organisation.
pub async fn connections<S: Store>(s: &S) {
    let (a, b) = (unique("org"), unique("org"));
    let prefix = unique("conn");
    let id = |n: u8| format!("{prefix}-{n}");
    let conn = |n: u8, org: &str| Connection {
        id: id(n),
        org: org.into(),
        subject: format!("user-{n}"),
        connected_at_ms: i64::from(n),
    };
    let topic = format!("run:{}", unique("r"));
    let subs = |org: String, topic: String| async move {
        s.subscribers(&org, &topic)
            .await
            .expect("subscribers")
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(s.get_connection(&id(1)).await.expect("get"), None);
    for (n, org) in [(1, &a), (2, &a), (3, &b)] {
        s.put_connection(conn(n, org)).await.expect("put");
        s.subscribe(&id(n), &topic).await.expect("subscribe");
    }
    assert_eq!(
        s.get_connection(&id(3)).await.expect("get"),
        Some(conn(3, &b))
    );
    s.subscribe(&id(1), &topic).await.expect("subscribe twice");
    assert_eq!(
        s.subscribers(&a, &topic).await.expect("subscribers"),
        [conn(1, &a), conn(2, &a)]
    );
    assert_eq!(subs(b.clone(), topic.clone()).await, [id(3)]);
    assert!(subs(a.clone(), format!("{topic}-other")).await.is_empty());
    assert!(subs(unique("org"), topic.clone()).await.is_empty());
    not_found(s.subscribe(&unique("conn"), &topic).await, "connection");

    s.unsubscribe(&id(2), &topic).await.expect("unsubscribe");
    s.unsubscribe(&id(2), &topic)
        .await
        .expect("unsubscribe twice");
    s.unsubscribe(&unique("conn"), &topic)
        .await
        .expect("unknown");
    assert_eq!(subs(a.clone(), topic.clone()).await, [id(1)]);

    // Re-putting a connection keeps its subscriptions; moving it drops them.
    s.subscribe(&id(2), "workflow:x").await.expect("subscribe");
    s.put_connection(conn(2, &a)).await.expect("put again");
    assert_eq!(subs(a.clone(), "workflow:x".into()).await, [id(2)]);
    s.put_connection(conn(3, &a)).await.expect("moved");
    assert!(subs(b.clone(), topic.clone()).await.is_empty());
    assert_eq!(subs(a.clone(), topic.clone()).await, [id(1)]);

    s.delete_connection(&id(1)).await.expect("delete");
    s.delete_connection(&id(1)).await.expect("delete twice");
    assert_eq!(
        s.get_connection(&id(1)).await.expect("get"),
        None,
        "deleted"
    );
    assert!(subs(a.clone(), topic.clone()).await.is_empty());
    s.put_connection(conn(1, &a)).await.expect("back");
    assert!(
        subs(a.clone(), topic.clone()).await.is_empty(),
        "deleting a connection removes its subscriptions"
    );
    not_found(
        s.subscribe(&unique("conn"), "workflow:x").await,
        "connection",
    );
}

// ---------------------------------------------------------------- audit

/// The audit log: newest first, paged, per organisation.
pub async fn audit<S: Store>(s: &S) {
    let (a, b) = (unique("org"), unique("org"));
    let event = |i: i64| AuditEvent {
        at_ms: 1_000 + i,
        actor: format!("user-{}", i % 3),
        action: "workflow.update".into(),
        target: format!("workflow:wf-{i}"),
        details: json!({"version": i, "list": [i]}),
    };
    for i in 0..12 {
        s.append(&a, event(i)).await.expect("append");
    }
    s.append(&b, event(99)).await.expect("append");
    let expected: Vec<AuditEvent> = (0..12).rev().map(event).collect();
    for limit in [1, 5, 12, 500] {
        assert_eq!(
            drain(limit, |c| s.list_audit(&a, c, limit)).await,
            expected,
            "audit by {limit}"
        );
    }
    assert_eq!(drain(5, |c| s.list_audit(&b, c, 5)).await, [event(99)]);
    let none = s.list_audit(&unique("org"), None, 5).await.expect("list");
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

// ---------------------------------------------------------------- cursors and limits

/// Cursors this store did not return, or returned for another list, are `Invalid`.
pub async fn bad_cursors<S: Store>(s: &S) {
    let org = unique("org");
    for id in ["a", "b"] {
        s.create_workflow(&org, id, write(id, "", false, 1))
            .await
            .expect("create");
        s.update_workflow(&org, id, None, write(id, "", false, 2))
            .await
            .expect("update");
        new(s.create_run(&org, run(id, "wf", 1, None)).await);
        new(s.add_response(&org, response(id, "wf", 1, None)).await);
        s.append(
            &org,
            AuditEvent {
                at_ms: 1,
                actor: "a".into(),
                action: "x".into(),
                target: "y".into(),
                details: Value::Null,
            },
        )
        .await
        .expect("append");
    }
    let workflow_cursor = s
        .list_workflows(&org, query(None, None, 1))
        .await
        .expect("list")
        .next_cursor
        .expect("a cursor");
    let run_cursor = s
        .list_runs(&org, runs(None, None, 1))
        .await
        .expect("list")
        .next_cursor
        .expect("a cursor");
    let mut bad: Vec<String> = ["", "!!!", "bm9wZQ", "e30", "W10", "WzEsMiwzXQ", "null"]
        .into_iter()
        .map(String::from)
        .collect();
    bad.push(format!("{workflow_cursor}x"));
    for c in bad.iter().chain([&run_cursor]) {
        let q = WorkflowQuery {
            cursor: Some(c.clone()),
            ..query(None, None, 10)
        };
        invalid(s.list_workflows(&org, q).await);
    }
    for c in bad.iter().chain([&workflow_cursor]) {
        let q = RunQuery {
            cursor: Some(c.clone()),
            ..runs(None, None, 10)
        };
        invalid(s.list_runs(&org, q).await);
        invalid(s.list_versions(&org, "a", Some(c.clone()), 10).await);
        invalid(s.list_responses(&org, "wf", Some(c.clone()), 10).await);
        invalid(s.list_audit(&org, Some(c.clone()), 10).await);
    }
    for c in [&run_cursor] {
        invalid(s.list_versions(&org, "a", Some(c.clone()), 10).await);
        invalid(s.list_audit(&org, Some(c.clone()), 10).await);
    }
}

/// Limits outside 1..=500 are `Invalid` on every list.
pub async fn limits<S: Store>(s: &S) {
    let org = unique("org");
    s.create_workflow(&org, "wf", write("wf", "", false, 1))
        .await
        .expect("create");
    for limit in [0, 501, usize::MAX] {
        invalid(s.list_workflows(&org, query(None, None, limit)).await);
        invalid(
            s.list_workflows(&org, query(Some("w"), Some(true), limit))
                .await,
        );
        invalid(s.list_runs(&org, runs(None, None, limit)).await);
        invalid(
            s.list_runs(&org, runs(Some("wf"), Some(RunStatus::Running), limit))
                .await,
        );
        invalid(s.list_versions(&org, "wf", None, limit).await);
        invalid(s.list_responses(&org, "wf", None, limit).await);
        invalid(s.list_audit(&org, None, limit).await);
    }
    for limit in [1, 500] {
        s.list_workflows(&org, query(None, None, limit))
            .await
            .expect("workflows");
        s.list_runs(&org, runs(None, None, limit))
            .await
            .expect("runs");
        s.list_versions(&org, "wf", None, limit)
            .await
            .expect("versions");
        s.list_responses(&org, "wf", None, limit)
            .await
            .expect("responses");
        s.list_audit(&org, None, limit).await.expect("audit");
    }
}

/// [`DatasetStore`](crate::DatasetStore) (memory, `cm-local`'s SQLite, the DynamoDB datasets
/// table; not part of [`run_all`]): records by key within their dataset, replaced on a second
/// put, paged with cursors, datasets apart from each other.
pub async fn datasets<S: crate::DatasetStore>(s: &S) {
    use crate::DatasetRecord;
    let (a, b) = (unique("org"), unique("org"));
    let (da, db) = (format!("{a}#leads"), format!("{b}#leads"));
    let record = |dataset: &str, key: &str, n: i64| DatasetRecord {
        dataset: dataset.into(),
        key: key.into(),
        data: serde_json::json!({"n": n, "nested": {"list": [1, "two", null]}}),
        run_id: format!("arn:aws:states:us-east-1:000000000000:execution:{dataset}:r{n}"),
        node_id: "save".into(),
        stored_at: "2026-11-26T10:00:00.000Z".into(),
    };
    let empty = s.list_records(&da, None, 10).await.expect("list");
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
    for (i, k) in ["k3", "k1", "k2", "k5", "k4"].iter().enumerate() {
        s.put_record(record(&da, k, i as i64)).await.expect("put");
    }
    s.put_record(record(&db, "k1", 99)).await.expect("put");
    // Replaced, not added.
    s.put_record(record(&da, "k2", 7)).await.expect("replace");

    let first = s.list_records(&da, None, 2).await.expect("page 1");
    let keys =
        |p: &crate::Page<DatasetRecord>| p.items.iter().map(|r| r.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&first), ["k1", "k2"]);
    assert_eq!(first.items[1], record(&da, "k2", 7));
    let second = s
        .list_records(&da, first.next_cursor.clone(), 2)
        .await
        .expect("page 2");
    assert_eq!(keys(&second), ["k3", "k4"]);
    let last = s
        .list_records(&da, second.next_cursor.clone(), 2)
        .await
        .expect("page 3");
    assert_eq!(keys(&last), ["k5"]);
    assert!(last.next_cursor.is_none(), "no cursor after the last page");
    let other = s.list_records(&db, None, 10).await.expect("other dataset");
    assert_eq!(other.items, vec![record(&db, "k1", 99)]);
    // Bad limits and foreign cursors are `Invalid`.
    for limit in [0, crate::MAX_PAGE + 1] {
        assert!(matches!(
            s.list_records(&da, None, limit).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let foreign = crate::Cursor::encode(vec![serde_json::json!("w"), serde_json::json!("x")]);
    assert!(matches!(
        s.list_records(&da, Some(foreign), 5).await,
        Err(StoreError::Invalid(_))
    ));
}
