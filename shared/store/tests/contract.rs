//! The contract suite on the in-memory and SQLite stores, and SQLite's own behaviour
//! (persistence, migrations, schema versions).

#![allow(clippy::unwrap_used)]

use cm_store::memory::MemoryStore;
use cm_store::sqlite::SqliteStore;
use cm_store::{StoreError, WorkflowStore, WorkflowWrite};
use serde_json::json;
use tempfile::TempDir;

/// A SQLite store in a file of a fresh temporary directory (kept as long as the store).
fn sqlite_file() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("cm.db")).unwrap();
    (store, dir)
}

mod memory {
    use super::*;
    cm_store::contract_tests!(MemoryStore::new());
}

mod sqlite_file {
    use super::*;
    cm_store::contract_tests!(sqlite_file());
}

mod sqlite_in_memory {
    use super::*;
    cm_store::contract_tests!(SqliteStore::in_memory().unwrap());
}

/// `DatasetStore` on memory (cm-local's SQLite and DynamoDB run it in their crates).
#[tokio::test]
async fn datasets() {
    cm_store::contract::datasets(&MemoryStore::new()).await;
}

/// `RouteIndex` (memory and SQLite; not in the suite every adapter runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_kind() {
    cm_store::contract::routes_by_kind(&MemoryStore::new()).await;
    cm_store::contract::routes_by_kind(&SqliteStore::in_memory().unwrap()).await;
    let (store, _dir) = sqlite_file();
    cm_store::contract::routes_by_kind(&store).await;
    // Twice on one store: the check does not assume an empty store.
    cm_store::contract::routes_by_kind(&store).await;
}

/// The whole suite twice on one store: checks do not see each other's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_shares_one_store() {
    let (store, _dir) = sqlite_file();
    cm_store::contract::run_all(&store).await;
    cm_store::contract::run_all(&store).await;
    let memory = MemoryStore::new();
    cm_store::contract::run_all(&memory).await;
    cm_store::contract::run_all(&memory).await;
}

fn write(name: &str) -> WorkflowWrite {
    WorkflowWrite {
        name: name.into(),
        description: String::new(),
        definition: json!({"name": name}),
        is_template: false,
        actor: "alice".into(),
        at_ms: 1,
    }
}

#[tokio::test]
async fn sqlite_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cm.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_workflow("org", "wf", write("one"))
            .await
            .unwrap();
        store
            .update_workflow("org", "wf", Some(1), write("two"))
            .await
            .unwrap();
        store.delete_workflow("org", "wf").await.unwrap();
        store
            .create_workflow("org", "kept", write("kept"))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let kept = store.get_workflow("org", "kept").await.unwrap();
    assert_eq!(kept.name, "kept");
    assert!(matches!(
        store.create_workflow("org", "wf", write("again")).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store
        .list_workflows(
            "org",
            cm_store::WorkflowQuery {
                search: Some("KEP".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.items, [kept]);
}

fn schema_versions(path: &std::path::Path) -> Vec<i64> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut stmt = db
        .prepare("SELECT version FROM cp_schema_version ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cm.db");
    let expected: Vec<i64> = (1..=i64::from(SqliteStore::SCHEMA_VERSION)).collect();
    let first = SqliteStore::open(&path).unwrap();
    first
        .create_workflow("org", "wf", write("wf"))
        .await
        .unwrap();
    assert_eq!(schema_versions(&path), expected);
    // Opening again (while the first is open, and after) applies nothing more.
    let second = SqliteStore::open(&path).unwrap();
    drop(second);
    drop(first);
    let third = SqliteStore::open(&path).unwrap();
    assert_eq!(schema_versions(&path), expected);
    assert_eq!(third.get_workflow("org", "wf").await.unwrap().name, "wf");
    // The journal is WAL.
    let db = rusqlite::Connection::open(&path).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_shares_a_file_with_other_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cm.db");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE cm_datasets (pk TEXT PRIMARY KEY); PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store
        .create_workflow("org", "wf", write("wf"))
        .await
        .unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let user_version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(user_version, 7, "user_version is left to others");
    let n: i64 = db
        .query_row("SELECT count(*) FROM cm_datasets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cm.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = i64::from(SqliteStore::SCHEMA_VERSION) + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO cp_schema_version (version) VALUES (?1)",
            [newer],
        )
        .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Backend(m)) => {
            assert!(m.contains(&newer.to_string()) && m.contains("newer"), "{m}");
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

#[test]
fn sqlite_open_needs_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("cm.db");
    match SqliteStore::open(&path) {
        Err(StoreError::Backend(m)) => assert!(m.contains("does not exist"), "{m}"),
        other => panic!("expected a Backend error, got {other:?}"),
    }
    assert!(!dir.path().join("missing").exists());
    // A directory where the file should be.
    match SqliteStore::open(dir.path()) {
        Err(StoreError::Backend(m)) => assert!(m.contains("cannot open"), "{m}"),
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

/// Lists stay on their indexes (no full scans, no temporary sorts).
#[test]
fn sqlite_lists_use_their_indexes() {
    let store = SqliteStore::in_memory().unwrap();
    let cursor = cm_store::Cursor::encode(vec![json!("r"), json!(5), json!("run-5")]);
    for (wf, status) in [
        (None, None),
        (Some("wf"), None),
        (None, Some(cm_store::RunStatus::Failed)),
        (Some("wf"), Some(cm_store::RunStatus::Running)),
    ] {
        for cursor in [None, Some(cursor.clone())] {
            let q = cm_store::RunQuery {
                workflow_id: wf.map(Into::into),
                status,
                cursor,
                limit: 50,
            };
            let plan = store.explain_list_runs("org", &q).unwrap();
            assert!(plan.contains("USING INDEX"), "{q:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{q:?}: {plan}");
            assert!(!plan.contains("SCAN"), "{q:?}: {plan}");
        }
    }
    let wcursor = cm_store::Cursor::encode(vec![json!("w"), json!("wf-5")]);
    for templates in [None, Some(true)] {
        for search in [None, Some("ab"), Some("abc")] {
            for cursor in [None, Some(wcursor.clone())] {
                let q = cm_store::WorkflowQuery {
                    search: search.map(Into::into),
                    templates,
                    cursor,
                    limit: 50,
                };
                let plan = store.explain_list_workflows("org", &q).unwrap();
                let first = plan.lines().next().unwrap_or_default();
                if search.is_some_and(|s| s.len() >= 3) {
                    // Few trigram candidates (none here): they drive the query.
                    assert!(first.contains("INTEGER PRIMARY KEY"), "{q:?}: {plan}");
                    assert!(plan.contains("json_each"), "{q:?}: {plan}");
                } else {
                    assert!(!plan.contains("TEMP B-TREE"), "{q:?}: {plan}");
                    assert!(
                        first.contains("USING") && first.contains("INDEX"),
                        "{q:?}: {plan}"
                    );
                }
            }
        }
    }
}

/// Searches whose trigram candidates exceed the cap (dense: walk the index) or not (sparse:
/// candidates drive) give what the memory store gives.
#[tokio::test]
async fn sqlite_search_dense_and_sparse_agree_with_memory() {
    let sqlite = SqliteStore::in_memory().unwrap();
    let memory = MemoryStore::new();
    let data = |org: &'static str, n: usize| {
        (0..n).map(move |i| {
            let name = if i % 3 == 0 {
                format!("Other {i}")
            } else {
                format!("Nightly Export {i}")
            };
            let w = WorkflowWrite {
                name,
                description: format!("batch {}", i % 7),
                definition: json!({}),
                is_template: i % 4 == 0,
                actor: "a".into(),
                at_ms: i as i64,
            };
            (org, format!("wf-{i:04}"), w)
        })
    };
    let all: Vec<_> = data("a", 700).chain(data("b", 150)).collect();
    for org in ["a", "b"] {
        sqlite
            .bulk_insert_workflows(
                org,
                all.iter()
                    .filter(|(o, _, _)| *o == org)
                    .map(|(_, id, w)| (id.clone(), w.clone())),
            )
            .unwrap();
    }
    for (org, id, w) in &all {
        memory.create_workflow(org, id, w.clone()).await.unwrap();
    }
    for search in [
        "export",
        "nightly export 1",
        "batch 3",
        "other",
        "t 69",
        "zzz",
        "ex",
        "1",
    ] {
        for templates in [None, Some(true), Some(false)] {
            for limit in [37, 500] {
                let q = cm_store::WorkflowQuery {
                    search: Some(search.into()),
                    templates,
                    cursor: None,
                    limit,
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let (mut ca, mut cb) = (None, None);
                loop {
                    let pa = sqlite
                        .list_workflows(
                            "a",
                            cm_store::WorkflowQuery {
                                cursor: ca,
                                ..q.clone()
                            },
                        )
                        .await
                        .unwrap();
                    let pb = memory
                        .list_workflows(
                            "a",
                            cm_store::WorkflowQuery {
                                cursor: cb,
                                ..q.clone()
                            },
                        )
                        .await
                        .unwrap();
                    a.extend(pa.items);
                    b.extend(pb.items);
                    (ca, cb) = (pa.next_cursor, pb.next_cursor);
                    assert_eq!(ca.is_some(), cb.is_some(), "{q:?}");
                    if ca.is_none() {
                        break;
                    }
                }
                assert_eq!(a, b, "{q:?}");
            }
        }
    }
    // "export" has more trigram candidates than the cap: the dense plan.
    let plan = sqlite
        .explain_list_workflows(
            "a",
            &cm_store::WorkflowQuery {
                search: Some("export".into()),
                limit: 50,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(plan.lines().next().unwrap().contains("INDEX"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}
