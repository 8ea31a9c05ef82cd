//! The `cm_store::contract` suite against [`DynamoStore`] on a real DynamoDB emulator (moto
//! server), one test per check, all in one table created for this run.
//!
//! The tests are ignored by default: they need moto. `scripts/test` starts it and runs them
//! with `cargo test --workspace --test contract_moto -- --ignored` (by hand, `cargo test -p
//! cm-store-dynamodb -- --ignored`), with `CM_DYNAMODB_ENDPOINT` set to the
//! emulator's URL and dummy credentials (`AWS_ACCESS_KEY_ID=test`, …, region `us-east-1`);
//! requests are SigV4-signed by the SDK as against AWS. Run with `--ignored` but without the
//! endpoint, every test fails (it never passes without having run).

use aws_sdk_dynamodb::Client;
use cm_store::contract::unique;
use cm_store::{
    Created, RunEnd, RunRecord, RunStatus, RunStore, StoreError, WorkflowStore, WorkflowWrite,
};
use cm_store_dynamodb::{DynamoStore, MAX_DEFINITION_BYTES, MAX_RUN_VALUE_BYTES, client_from_env};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// One table per test process: every check works in organisations of its own.
fn table() -> &'static str {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("cm-contract-{}-{nanos}", std::process::id())
    })
}

/// A client of the emulator (one per test: each test has its own runtime).
async fn client() -> Client {
    let endpoint = std::env::var("CM_DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "CM_DYNAMODB_ENDPOINT is not set: these tests need moto (run them through scripts/test)"
    );
    client_from_env(Some(&endpoint)).await
}

/// The store on this run's table.
async fn store() -> DynamoStore {
    let store = DynamoStore::new(client().await, table());
    store.create_table().await.expect("create the table");
    store
}

// One test per check of the suite, each on this run's table (a `(store, guard)` fixture: the
// table outlives the tests, so there is nothing to guard).
cm_store::contract_tests!(
    #[ignore = "needs moto: run through scripts/test"]
    (store().await, ())
);

/// `RouteIndex` (a Query of gsi2), as on memory and SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through scripts/test"]
async fn routes_by_kind() {
    let store = store().await;
    cm_store::contract::routes_by_kind(&store).await;
    cm_store::contract::routes_by_kind(&store).await;
}

/// `DatasetStore` on the datasets table (the items Step Functions' putItem writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through scripts/test"]
async fn datasets_table() {
    let table =
        cm_store_dynamodb::DatasetsTable::new(client().await, format!("{}-datasets", table()));
    table
        .create_table()
        .await
        .expect("create the datasets table");
    cm_store::contract::datasets(&table).await;
}

// ---------------------------------------------------------------- this adapter's own limits

fn write(definition: Value) -> WorkflowWrite {
    WorkflowWrite {
        name: "Big".into(),
        description: String::new(),
        definition,
        is_template: false,
        actor: "alice".into(),
        at_ms: 1,
    }
}

fn run(id: &str, input: Value) -> RunRecord {
    RunRecord {
        id: id.into(),
        workflow_id: "wf".into(),
        workflow_version: 1,
        execution_arn: format!("arn:aws:states:us-east-1:123456789012:execution:wf:{id}"),
        status: RunStatus::Running,
        trigger: "trigger.manual".into(),
        input,
        output: None,
        error: None,
        cause: None,
        idempotency_key: None,
        started_by: "alice".into(),
        started_at_ms: 1,
        ended_at_ms: None,
        retry_of: None,
    }
}

#[track_caller]
fn invalid_naming<T: std::fmt::Debug>(r: cm_store::Result<T>, limit: usize) {
    match r {
        Err(StoreError::Invalid(m)) => {
            assert!(m.contains(&limit.to_string()), "names the limit: {m}");
            assert!(m.contains("bytes"), "names the size: {m}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Definitions, run inputs and outputs over the item budget are `Invalid` (naming size and
/// limit) and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through scripts/test"]
async fn oversized_documents_are_invalid() {
    let s = store().await;
    let org = unique("org");
    let big = |n: usize| json!({ "blob": "x".repeat(n) });
    invalid_naming(
        s.create_workflow(&org, "big", write(big(MAX_DEFINITION_BYTES)))
            .await,
        MAX_DEFINITION_BYTES,
    );
    assert!(matches!(
        s.get_workflow(&org, "big").await,
        Err(StoreError::NotFound { .. })
    ));
    s.create_workflow(&org, "wf", write(big(1_000)))
        .await
        .expect("a small one");
    invalid_naming(
        s.update_workflow(&org, "wf", Some(1), write(big(MAX_DEFINITION_BYTES)))
            .await,
        MAX_DEFINITION_BYTES,
    );
    assert_eq!(
        s.get_workflow(&org, "wf")
            .await
            .expect("get")
            .latest_version,
        1
    );
    // Just under the limit fits (the whole item stays under 400 KB).
    let fits = s
        .update_workflow(&org, "wf", Some(1), write(big(MAX_DEFINITION_BYTES - 100)))
        .await
        .expect("a definition just under the limit");
    assert_eq!(fits.latest_version, 2);

    invalid_naming(
        s.create_run(&org, run("big", big(MAX_RUN_VALUE_BYTES)))
            .await,
        MAX_RUN_VALUE_BYTES,
    );
    let r = s
        .create_run(&org, run("r", big(MAX_RUN_VALUE_BYTES - 100)))
        .await
        .expect("create");
    assert!(matches!(r, Created::New(_)));
    let end = |output: Value| RunEnd {
        status: RunStatus::Succeeded,
        output: Some(output),
        error: None,
        cause: None,
        at_ms: 2,
    };
    invalid_naming(
        s.finish_run(&org, "r", end(big(MAX_RUN_VALUE_BYTES))).await,
        MAX_RUN_VALUE_BYTES,
    );
    assert_eq!(
        s.get_run(&org, "r").await.expect("get").status,
        RunStatus::Running
    );
    let done = s
        .finish_run(&org, "r", end(big(MAX_RUN_VALUE_BYTES - 100)))
        .await
        .expect("input and output at their limits fit one item");
    assert_eq!(done.status, RunStatus::Succeeded);
}

/// Ids and keys with the key separator cannot collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through scripts/test"]
async fn separators_in_ids_do_not_collide() {
    let s = store().await;
    let org = unique("org");
    let keyed = |id: &str, wf: &str, key: &str| RunRecord {
        workflow_id: wf.into(),
        idempotency_key: Some(key.into()),
        ..run(id, json!({}))
    };
    for (id, wf, key) in [("r1", "a#b", "c"), ("r2", "a", "b#c"), ("r3", "a%23b", "c")] {
        let created = s
            .create_run(&org, keyed(id, wf, key))
            .await
            .expect("create");
        assert!(matches!(created, Created::New(_)), "{id}: {created:?}");
    }
    for id in ["x#RUN#y", "100%", "#"] {
        s.create_workflow(&org, id, write(json!({})))
            .await
            .expect("create");
        assert_eq!(s.get_workflow(&org, id).await.expect("get").id, id);
    }
}

/// A missing table is a `Backend` error naming it, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run through scripts/test"]
async fn missing_table_is_a_backend_error() {
    let name = unique("cm-missing");
    let s = DynamoStore::new(client().await, &name);
    match s.get_workflow("org", "wf").await {
        Err(StoreError::Backend(m)) => assert!(m.contains(&name), "names the table: {m}"),
        other => panic!("expected Backend, got {other:?}"),
    }
}
