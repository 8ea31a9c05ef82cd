//! Real stream images: runs written through [`DynamoStore`] on a DynamoDB emulator (moto), the
//! table's stream read back with the DynamoDB Streams API, its records parsed as the Lambda
//! event's records (`aws_lambda_events`) and decoded by the status-pusher — proving the
//! decoding matches what DynamoDB puts in stream images, and the whole push (subscribers read
//! from DynamoDB too) gives the expected frames. moto has no WebSocket data plane: frames go to
//! the fake poster here; [`sdk_poster_posts_through_moto`] checks the Management API client
//! against moto's `PostToConnection`.
//!
//! The Streams API is called as JSON over HTTP (`DynamoDBStreams_20120810.*`): its records are
//! byte for byte what a Lambda event source mapping delivers in `Records[].dynamodb`.
//!
//! Ignored by default (they need moto): `scripts/test` runs them with `cargo test --workspace
//! --test stream_moto -- --ignored` and `CM_DYNAMODB_ENDPOINT` set to the emulator (by hand:
//! `cargo test -p status-pusher --test stream_moto -- --ignored`). Without the endpoint every
//! test fails.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use cm_live_cloud::events::Write;
use cm_live_cloud::test_util::{FakePoster, check_frames};
use cm_live_cloud::{Poster, SdkPoster, sdk_config};
use cm_store::{
    Connection, ConnectionStore, NodeExecution, RunEnd, RunRecord, RunStatus, RunStore,
};
use cm_store_dynamodb::DynamoStore;
use cm_store_dynamodb::stream::Change;
use serde_json::{Value, json};

fn endpoint() -> String {
    let endpoint = std::env::var("CM_DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "CM_DYNAMODB_ENDPOINT is not set: these tests need moto (run them through scripts/test)"
    );
    endpoint
}

/// A fresh table with a stream of `view`, through the store on it.
async fn table(view: StreamViewType) -> DynamoStore {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("cm-stream-{}-{nanos}-{}", std::process::id(), view.as_str());
    let aws = sdk_config(Some(&endpoint())).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), name);
    store.create_table().await.unwrap();
    store
        .client()
        .update_table()
        .table_name(store.table())
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    store
}

/// One DynamoDB Streams API call (JSON 1.0 protocol).
async fn streams(action: &str, body: Value) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(endpoint())
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDBStreams_20120810.{action}"))
        // moto routes by the credential scope's service; it does not check signatures.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20270115/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{action}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// Every record of the table's stream so far, as the Streams API gives them.
async fn stream_records(store: &DynamoStore) -> Vec<Value> {
    let table = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let arn = table
        .table()
        .unwrap()
        .latest_stream_arn()
        .unwrap()
        .to_owned();
    let described = streams("DescribeStream", json!({"StreamArn": arn})).await;
    let mut records = Vec::new();
    for shard in described["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = streams(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
        let mut iterator = it["ShardIterator"].clone();
        loop {
            let page = streams("GetRecords", json!({"ShardIterator": iterator})).await;
            let got = page["Records"].as_array().cloned().unwrap_or_default();
            if got.is_empty() {
                break;
            }
            records.extend(got);
            iterator = page["NextShardIterator"].clone();
            if iterator.is_null() {
                break;
            }
        }
    }
    records
}

/// The Streams API records as the records of a Lambda event.
fn event(records: &[Value]) -> Event {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

const ORG: &str = "a#c%me";
const OTHER: &str = "globex";

fn run(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        workflow_id: "hello#wf".into(),
        workflow_version: 2,
        execution_arn: format!("arn:aws:states:us-east-1:123456789012:execution:x.hello:{id}"),
        status: RunStatus::Running,
        trigger: "trigger.manual".into(),
        input: json!({"name": "Ada", "n": 1.5, "none": null}),
        output: None,
        error: None,
        cause: None,
        idempotency_key: Some("key-1".into()),
        started_by: "ada".into(),
        started_at_ms: 1_000,
        ended_at_ms: None,
        retry_of: None,
    }
}

fn visit(status: &str, ended: Option<i64>) -> NodeExecution {
    NodeExecution {
        node_id: "greet#1".into(),
        step: "Greet#0".into(),
        status: status.into(),
        started_at_ms: 1_100,
        ended_at_ms: ended,
        output_preview: ended.map(|_| "{\"text\":\"Hello Ada\"}".into()),
        error: None,
    }
}

/// A run through its life, as the API and a follower write it; returns the run as stored at
/// the end. Also two connections subscribed to the run: one of its organisation, one of
/// another organisation with a run of the same id.
async fn write_a_run(store: &DynamoStore) -> RunRecord {
    let id = "r#1";
    store.create_run(ORG, run(id)).await.unwrap();
    store.create_run(OTHER, run(id)).await.unwrap();
    for (c, org) in [("c1", ORG), ("g1", OTHER)] {
        store
            .put_connection(Connection {
                id: c.into(),
                org: org.into(),
                subject: "s".into(),
                connected_at_ms: 1,
            })
            .await
            .unwrap();
        store.subscribe(c, &format!("run:{id}")).await.unwrap();
    }
    store
        .put_node_execution(ORG, id, visit("running", None))
        .await
        .unwrap();
    store
        .put_node_execution(ORG, id, visit("succeeded", Some(1_250)))
        .await
        .unwrap();
    store
        .finish_run(
            ORG,
            id,
            RunEnd {
                status: RunStatus::Succeeded,
                output: Some(json!({"text": "Hello Ada"})),
                error: None,
                cause: None,
                at_ms: 1_300,
            },
        )
        .await
        .unwrap()
}

/// Everything of the run to its organisation's subscriber; to the other organisation's
/// subscriber of the same run id only its own run's start.
fn expected_frames() -> Value {
    json!({"g1": [
        {"type": "run.started", "topic": "run:r#1", "runId": "r#1", "eventId": 1000}
    ],
    "c1": [
        {"type": "run.started", "topic": "run:r#1", "runId": "r#1", "workflowId": "hello#wf", "eventId": 1000},
        {"type": "node.started", "topic": "run:r#1", "runId": "r#1", "workflowId": "hello#wf", "eventId": 1100, "nodeId": "greet#1"},
        {"type": "node.succeeded", "topic": "run:r#1", "runId": "r#1", "workflowId": "hello#wf", "eventId": 1250, "nodeId": "greet#1",
         "durationMs": 150, "outputPreview": "{\"text\":\"Hello Ada\"}"},
        {"type": "run.finished", "topic": "run:r#1", "runId": "r#1", "eventId": 1300, "status": "SUCCEEDED",
         "durationMs": 300, "outputPreview": "{\"text\":\"Hello Ada\"}"}
    ]})
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn new_image_records_decode_to_what_the_store_wrote() {
    let store = table(StreamViewType::NewImage).await;
    let finished = write_a_run(&store).await;
    let records = stream_records(&store).await;
    let event = event(&records);
    assert_eq!(event.records.len(), records.len());

    let decoded: Vec<_> = event
        .records
        .iter()
        .map(|r: &EventRecord| status_pusher::record(r).unwrap())
        .collect();
    let ours: Vec<(Write, &Change)> = decoded
        .iter()
        .filter_map(|r| r.new.as_ref().map(|c| (r.write, c)))
        .filter(|(_, c)| c.org() == ORG)
        .collect();
    // The run inserted, as created.
    let created = run("r#1");
    assert!(ours.iter().any(|(w, c)| *w == Write::Insert
        && **c
            == Change::Run {
                org: ORG.into(),
                run: created.clone()
            }));
    // Both writes of the visit, exactly as put.
    for (w, v) in [
        (Write::Insert, visit("running", None)),
        (Write::Modify, visit("succeeded", Some(1_250))),
    ] {
        assert!(
            ours.iter().any(|(ww, c)| *ww == w
                && **c
                    == Change::Node {
                        org: ORG.into(),
                        run_id: "r#1".into(),
                        node: v.clone()
                    }),
            "{w:?} {v:?} not in {ours:#?}"
        );
    }
    // The last image of the run is the finished run.
    let last_run = ours
        .iter()
        .rev()
        .find_map(|(_, c)| match c {
            Change::Run { run, .. } => Some(run.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_run, finished);
    // Connection, subscription and idempotency-key items are not changes; every run and node
    // image decoded. (moto also records a key-only INSERT image when an UpdateItem creates an
    // item, before its attributes — DynamoDB records one INSERT with the item — which decodes
    // to nothing.)
    let full_run_or_node = |r: &Value| {
        let pk = r["dynamodb"]["Keys"]["pk"]["S"]
            .as_str()
            .unwrap_or_default();
        let attrs = r["dynamodb"]["NewImage"].as_object().map_or(0, |m| m.len());
        pk.contains("#RUN#") && attrs > 2
    };
    let runs_and_nodes = records.iter().filter(|r| full_run_or_node(r)).count();
    let changes = decoded.iter().filter(|r| r.new.is_some()).count();
    let undecoded: Vec<&Value> = records
        .iter()
        .zip(&decoded)
        .filter(|(r, d)| d.new.is_none() && full_run_or_node(r))
        .map(|(r, _)| r)
        .collect();
    assert_eq!(changes, runs_and_nodes, "{undecoded:#?}");

    // The whole push, with subscribers read from DynamoDB: frames to the organisation's
    // subscriber only.
    let poster = FakePoster::new();
    let (report, response) = status_pusher::handle(&store, &poster, &event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.retry_from, None);
    check_frames(&poster, &expected_frames()).unwrap();

    // A connection gone meanwhile is deleted from the table (and its subscriptions).
    let poster = FakePoster::new();
    poster.gone("c1");
    let (report, _) = status_pusher::handle(&store, &poster, &event).await;
    assert_eq!(report.gone, ["c1"]);
    assert!(store.subscribers(ORG, "run:r#1").await.unwrap().is_empty());
    assert_eq!(store.subscribers(OTHER, "run:r#1").await.unwrap().len(), 1);
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn new_and_old_images_give_each_change_once() {
    let store = table(StreamViewType::NewAndOldImages).await;
    write_a_run(&store).await;
    // A late node execution after the run finished: the run item changes (its counter), its
    // status does not.
    store
        .put_node_execution(ORG, "r#1", visit("succeeded", Some(1_250)))
        .await
        .unwrap();
    let records = stream_records(&store).await;
    assert!(
        records
            .iter()
            .any(|r| r["dynamodb"].get("OldImage").is_some()),
        "{records:#?}"
    );
    let poster = FakePoster::new();
    let (report, _) = status_pusher::handle(&store, &poster, &event(&records)).await;
    assert_eq!(report.retry_from, None);
    check_frames(&poster, &expected_frames()).unwrap();
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn sdk_poster_posts_through_moto() {
    let aws = sdk_config(Some(&endpoint())).await;
    let poster = SdkPoster::new(&aws, Some(&endpoint()));
    poster
        .post("Ab1Cd2Ef3Gh4=", br#"{"type":"pong"}"#.to_vec())
        .await
        .unwrap();
}
