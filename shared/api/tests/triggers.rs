//! Triggers that fire without a request and dead letters, in process: the scheduler on a
//! manual clock (one run per tick, none twice across restarts and clock steps), the local
//! queue poller (runs per message, deletes, dead letters after the last receive), start
//! failures of webhooks, forms and ticks kept as dead letters and re-driven through the API,
//! and every error path of the new endpoints. Nothing sleeps: tests wait on the workers'
//! status and the live tracker's notifications.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use cm_api::auth::Role;
use cm_api::triggers::{ManualClock, QueuePoller, QueuePollerConfig, Scheduler};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::Api;
use tokio::sync::watch;

/// 2026-01-01T00:00:30Z: half a minute before a `rate(1 minute)` tick.
const T0: i64 = 1_767_225_630_000;
const MINUTE: i64 = 60_000;

/// Waits (bounded, so a bug fails instead of hanging) until the status satisfies `f`.
async fn until<T: Clone>(rx: &mut watch::Receiver<T>, f: impl FnMut(&T) -> bool) -> T {
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(f))
        .await
        .expect("the worker did not get there in 30 s")
        .unwrap()
        .clone()
}

fn ticking(id: &str) -> Value {
    json!({"id": id, "name": "Tick", "nodes": [
        {"id": "every", "type": "trigger.schedule", "config": {"expression": "rate(1 minute)", "input": {"n": 1}}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"at": "{{ $.nodes.every.output.scheduledTime }}"}}}],
        "edges": [{"from": "every", "to": "keep"}]})
}

fn queued(id: &str, queue: &str, batch: u32) -> Value {
    json!({"id": id, "name": "Orders", "nodes": [
        {"id": "msg", "type": "trigger.queue", "config": {"queue": queue, "batchSize": batch}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"order": "{{ $.nodes.msg.output.body.orderId }}"}}}],
        "edges": [{"from": "msg", "to": "keep"}]})
}

fn hooked(id: &str) -> Value {
    json!({"id": id, "name": "Hook", "nodes": [
        {"id": "hook", "type": "trigger.webhook", "config": {"secret": "hook_key"}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"order": "{{ $.nodes.hook.output.body.id }}"}}}],
        "edges": [{"from": "hook", "to": "keep"}]})
}

fn hook_request(
    path: &str,
    body: &str,
    content_type: &str,
) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", content_type)
        .header(
            "x-signature-256",
            cm_nodes::trigger::webhook::sign(support::HOOK_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap()
}

async fn dead_letters(api: &Api, t: &str, query: &str) -> Vec<Value> {
    let (s, b) = api
        .call("GET", &format!("/v1/dead-letters{query}"), Some(t), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn schedules_start_one_run_per_tick_across_restarts() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let clock = Arc::new(ManualClock::new(T0));
    let a = Scheduler::new(api.state.clone(), clock.clone());
    let mut status_a = a.status();
    let worker_a = a.spawn();
    let s = until(&mut status_a, |s| s.passes >= 1).await;
    assert_eq!(
        (s.schedules, s.next_fire_ms),
        (0, None),
        "nothing to do yet"
    );

    // Publishing wakes the scheduler, which then sleeps until the next tick.
    api.publish(&t, ticking("tick")).await;
    until(&mut status_a, |s| {
        s.schedules == 1 && s.next_fire_ms == Some(T0 + 30_000)
    })
    .await;
    assert!(api.runs(&t, "tick").await.is_empty(), "no tick yet");

    // The tick: exactly one run, with the tick's time and the configured input.
    clock.set(T0 + 30_000);
    let s = until(&mut status_a, |s| s.started == 1).await;
    assert_eq!((s.existing, s.dead_lettered), (0, 0));
    let runs = api.runs(&t, "tick").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0]["input"],
        json!({"scheduledTime": "2026-01-01T00:01:00.000Z", "input": {"n": 1}})
    );
    assert_eq!(runs[0]["trigger"], "trigger.schedule");
    assert_eq!(runs[0]["idempotencyKey"], "schedule:1767225660000");
    assert_eq!(runs[0]["startedBy"], "scheduler");
    let done = api.finished(&t, runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"]["nodes"]["keep"]["output"]["at"],
        "2026-01-01T00:01:00.000Z"
    );

    // A crash and a restart: the new scheduler goes on from the time it starts.
    worker_a.abort().await;
    let b = Scheduler::new(api.state.clone(), clock.clone());
    let mut status_b = b.status();
    let worker_b = b.spawn();
    until(&mut status_b, |s| {
        s.schedules == 1 && s.next_fire_ms == Some(T0 + 90_000)
    })
    .await;
    clock.advance(MINUTE);
    let s = until(&mut status_b, |s| s.started == 1).await;
    assert_eq!(s.existing, 0);
    assert_eq!(api.runs(&t, "tick").await.len(), 2);

    // A restart after the clock stepped back: the new scheduler sees that tick due again and
    // finds its run (same idempotency key) instead of starting another.
    worker_b.stop().await;
    clock.set(T0 + 50_000);
    let c = Scheduler::new(api.state.clone(), clock.clone());
    let mut status_c = c.status();
    let worker_c = c.spawn();
    until(&mut status_c, |s| s.next_fire_ms == Some(T0 + 90_000)).await;
    clock.set(T0 + 90_000);
    let s = until(&mut status_c, |s| s.existing == 1).await;
    assert_eq!(s.started, 0);
    assert_eq!(api.runs(&t, "tick").await.len(), 2);
    // A wake-up without a tick (another publish) starts nothing; the next tick starts one.
    api.publish(&t, ticking("other")).await;
    until(&mut status_c, |s| s.schedules == 2).await;
    clock.advance(MINUTE);
    until(&mut status_c, |s| s.started == 2).await;
    let runs = api.runs(&t, "tick").await;
    let mut times: Vec<&str> = runs
        .iter()
        .map(|r| r["input"]["scheduledTime"].as_str().unwrap())
        .collect();
    times.sort();
    assert_eq!(
        times,
        [
            "2026-01-01T00:01:00.000Z",
            "2026-01-01T00:02:00.000Z",
            "2026-01-01T00:03:00.000Z"
        ]
    );
    assert_eq!(api.runs(&t, "other").await.len(), 1);

    // Deleting the workflow wakes the schedulers; nothing is scheduled any more.
    let admin = api.token("acme", Role::Admin);
    for id in ["tick", "other"] {
        let (s, _) = api
            .call("DELETE", &format!("/v1/workflows/{id}"), Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let s = until(&mut status_c, |s| s.schedules == 0).await;
    assert_eq!(s.next_fire_ms, None);
    worker_c.stop().await;
}

#[tokio::test]
async fn a_tick_whose_run_cannot_start_is_a_dead_letter_until_redriven() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let clock = Arc::new(ManualClock::new(T0));
    let scheduler = Scheduler::new(api.state.clone(), clock.clone());
    let mut status = scheduler.status();
    let worker = scheduler.spawn();
    api.publish(&t, ticking("tick")).await;
    until(&mut status, |s| s.schedules == 1).await;
    api.fail_starts(true);
    clock.set(T0 + 30_000);
    until(&mut status, |s| s.dead_lettered == 1).await;
    assert!(api.runs(&t, "tick").await.is_empty());
    let letters = dead_letters(&api, &t, "?workflowId=tick").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["trigger"], "trigger.schedule");
    assert_eq!(
        letter["payload"],
        json!({"scheduledTime": "2026-01-01T00:01:00.000Z", "input": {"n": 1}})
    );
    assert_eq!(letter["error"], "ConcertMaster.Internal");
    assert_eq!(letter["attempts"], 1);
    assert!(letter.get("org").is_none(), "the organisation is not shown");

    api.fail_starts(false);
    let id = letter["id"].as_str().unwrap();
    let (s, run) = api
        .call(
            "POST",
            &format!("/v1/dead-letters/{id}/redrive"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["input"], letter["payload"]);
    assert_eq!(run["idempotencyKey"], json!(format!("dead-letter:{id}")));
    let done = api.finished(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert!(dead_letters(&api, &t, "").await.is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn queue_messages_start_runs_and_are_deleted() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let poller = QueuePoller::new(api.state.clone(), QueuePollerConfig::default());
    let mut status = poller.status();
    let worker = poller.spawn();
    until(&mut status, |s| s.passes >= 1).await;
    api.publish(&t, queued("orders", "orders", 2)).await;
    until(&mut status, |s| s.triggers == 1).await;

    let mut sent = Vec::new();
    for n in 1..=3 {
        let (s, b) = api
            .call(
                "POST",
                "/v1/queues/orders/messages",
                Some(&t),
                Some(json!({"orderId": n})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["queue"], "orders");
        assert_eq!(b["workflows"], json!(["orders"]));
        sent.push((b["messageId"].as_str().unwrap().to_owned(), n));
    }
    let s = until(&mut status, |s| s.started == 3).await;
    assert_eq!((s.existing, s.failed_starts, s.dead_lettered), (0, 0, 0));
    assert_eq!(api.local.queue_depth("orders").unwrap(), 0, "deleted");
    let runs = api.runs(&t, "orders").await;
    assert_eq!(runs.len(), 3);
    for (id, n) in &sent {
        let run = runs
            .iter()
            .find(|r| r["input"]["messageId"] == json!(id))
            .unwrap_or_else(|| panic!("no run for message {id}: {runs:?}"));
        assert_eq!(
            run["input"],
            json!({"messageId": id, "queue": "orders", "body": {"orderId": n}, "attributes": {}})
        );
        assert_eq!(run["trigger"], "trigger.queue");
        assert_eq!(run["idempotencyKey"], json!(format!("queue:{id}")));
        let done = api.finished(&t, run["id"].as_str().unwrap()).await;
        assert_eq!(done["output"]["nodes"]["keep"]["output"]["order"], json!(n));
    }
    // An action.queue node's send (straight to the local store) wakes the poller too.
    api.local
        .send("orders", r#"{"orderId": 4}"#, None, None, 0)
        .unwrap();
    until(&mut status, |s| s.started == 4).await;
    let (_, audit) = api
        .call(
            "GET",
            "/v1/audit",
            Some(&api.token("acme", Role::Admin)),
            None,
        )
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "queue.send" && e["target"] == "queue:orders"),
        "{audit}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_queue_message_whose_run_cannot_start_is_dead_lettered_after_its_last_receive() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    // No visibility timeout: a failed message is received again at once.
    let poller = QueuePoller::new(
        api.state.clone(),
        QueuePollerConfig {
            visibility_timeout_s: 0,
            max_receives: 3,
        },
    );
    let mut status = poller.status();
    let worker = poller.spawn();
    api.publish(&t, queued("orders", "orders", 1)).await;
    until(&mut status, |s| s.triggers == 1).await;
    api.fail_starts(true);
    let (s, b) = api
        .call(
            "POST",
            "/v1/queues/orders/messages",
            Some(&t),
            Some(json!({"orderId": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let message_id = b["messageId"].as_str().unwrap().to_owned();
    let s = until(&mut status, |s| s.dead_lettered == 1).await;
    assert_eq!((s.failed_starts, s.started), (2, 0), "{s:?}");
    assert_eq!(
        api.local.queue_depth("orders").unwrap(),
        0,
        "moved, not kept"
    );
    let letters = dead_letters(&api, &t, "?workflowId=orders").await;
    assert_eq!(letters.len(), 1);
    let letter = letters[0].clone();
    assert_eq!(letter["trigger"], "trigger.queue");
    assert_eq!(letter["attempts"], 3, "one per receive");
    assert_eq!(letter["error"], "ConcertMaster.Internal");
    assert_eq!(
        letter["payload"],
        json!({"messageId": message_id, "queue": "orders", "body": {"orderId": 7}, "attributes": {}})
    );
    let id = letter["id"].as_str().unwrap();
    let redrive = format!("/v1/dead-letters/{id}/redrive");

    // Re-driven while the runtime still fails: 500, kept, one more attempt.
    let (s, b) = api.call("POST", &redrive, Some(&t), None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert_eq!(b["code"], "internal");
    let kept = dead_letters(&api, &t, "").await;
    assert_eq!(kept[0]["attempts"], 4);
    assert!(kept[0]["lastFailedMs"].as_i64() >= letter["lastFailedMs"].as_i64());

    // Once the runtime works, the redrive starts the run.
    api.fail_starts(false);
    let (s, run) = api.call("POST", &redrive, Some(&t), None).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["input"], letter["payload"]);
    let done = api.finished(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(done["output"]["nodes"]["keep"]["output"]["order"], 7);
    assert!(dead_letters(&api, &t, "").await.is_empty());
    let (s, _) = api.call("POST", &redrive, Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "redriven letters are gone");

    // A message the trigger refuses (its run input would be over the size limit) is a dead
    // letter at once, whatever the runtime does.
    let big = format!("\"{}\"", "x".repeat(cm_nodes::trigger::MAX_RUN_INPUT_BYTES));
    api.local.send("orders", &big, None, None, 0).unwrap();
    until(&mut status, |s| s.dead_lettered == 2).await;
    let letters = dead_letters(&api, &t, "?workflowId=orders").await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["error"], "ConcertMaster.InvalidInput");
    assert_eq!(letters[0]["attempts"], 1);
    assert_eq!(api.local.queue_depth("orders").unwrap(), 0);
    worker.stop().await;
}

#[tokio::test]
async fn webhook_and_form_start_failures_are_dead_letters_that_can_be_redriven() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let p = api.publish(&t, hooked("orders")).await;
    let path = p["hookUrl"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://api.test")
        .to_owned();
    api.fail_starts(true);
    let body = r#"{"id": "o-1"}"#;
    let (s, b) = api.raw(hook_request(&path, body, "application/json")).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert_eq!(b["code"], "internal", "answered as before");
    // Refused input is answered with a 4xx and is not kept.
    let (s, _) = api.raw(hook_request(&path, "a=1", "text/plain")).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut unsigned = hook_request(&path, body, "application/json");
    unsigned.headers_mut().remove("x-signature-256");
    let (s, _) = api.raw(unsigned).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let letters = dead_letters(&api, &t, "").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = letters[0].clone();
    assert_eq!(letter["workflowId"], "orders");
    assert_eq!(letter["trigger"], "trigger.webhook");
    assert_eq!(letter["payload"]["body"], json!({"id": "o-1"}));
    assert_eq!(letter["payload"]["method"], "POST");
    assert!(
        letter["payload"]["headers"]
            .get("x-signature-256")
            .is_none(),
        "{letter}"
    );
    let id = letter["id"].as_str().unwrap().to_owned();

    // A form submission that is stored but cannot start its run.
    let form = json!({"id": "signup", "name": "Signup", "nodes": [
        {"id": "form", "type": "trigger.form", "config": {"title": "Sign up", "schema": {
            "type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}}}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"who": "{{ $.nodes.form.output.email }}"}}}],
        "edges": [{"from": "form", "to": "keep"}]});
    let p = api.publish(&t, form).await;
    let url = p["formUrl"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://api.test")
        .to_owned();
    let (s, _) = api
        .call(
            "POST",
            &format!("{url}/responses"),
            None,
            Some(json!({"data": {"email": "nope"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "invalid: not kept");
    let (s, _) = api
        .call(
            "POST",
            &format!("{url}/responses"),
            None,
            Some(json!({"data": {"email": "ada@example.com"}})),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let form_letters = dead_letters(&api, &t, "?workflowId=signup").await;
    assert_eq!(form_letters.len(), 1);
    assert_eq!(form_letters[0]["trigger"], "trigger.form");
    assert_eq!(
        form_letters[0]["payload"],
        json!({"email": "ada@example.com"})
    );
    assert_eq!(dead_letters(&api, &t, "").await.len(), 2);
    assert_eq!(dead_letters(&api, &t, "?limit=1").await.len(), 1);
    assert_eq!(dead_letters(&api, &t, "?workflowId=other").await.len(), 0);

    // Another organisation sees none of them and can act on none.
    let other = api.token("other", Role::Admin);
    assert!(dead_letters(&api, &other, "").await.is_empty());
    let redrive = format!("/v1/dead-letters/{id}/redrive");
    let (s, b) = api.call("POST", &redrive, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/v1/dead-letters/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Roles: viewers neither list nor redrive; editors do not delete.
    let viewer = api.token("acme", Role::Viewer);
    let (s, _) = api
        .call("GET", "/v1/dead-letters", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.call("POST", &redrive, Some(&viewer), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call("DELETE", &format!("/v1/dead-letters/{id}"), Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.call("GET", "/v1/dead-letters", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = api
        .call("GET", "/v1/dead-letters?limit=0", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = api
        .call("POST", "/v1/dead-letters/nope/redrive", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The webhook letter, re-driven once the runtime works.
    api.fail_starts(false);
    let (s, run) = api.call("POST", &redrive, Some(&t), None).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["trigger"], "trigger.webhook");
    assert_eq!(run["input"], letter["payload"]);
    let done = api.finished(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(done["output"]["nodes"]["keep"]["output"]["order"], "o-1");

    // The form letter: deleted by an admin.
    let admin = api.token("acme", Role::Admin);
    let form_id = form_letters[0]["id"].as_str().unwrap();
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/v1/dead-letters/{form_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/v1/dead-letters/{form_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(dead_letters(&api, &t, "").await.is_empty());

    // A letter whose workflow was deleted: 409, kept with the failure recorded.
    api.fail_starts(true);
    let (s, _) = api.raw(hook_request(&path, body, "application/json")).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    api.fail_starts(false);
    let (s, _) = api
        .call("DELETE", "/v1/workflows/orders", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let orphan = dead_letters(&api, &t, "").await[0].clone();
    let (s, b) = api
        .call(
            "POST",
            &format!(
                "/v1/dead-letters/{}/redrive",
                orphan["id"].as_str().unwrap()
            ),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("no longer exists"),
        "{b}"
    );
    let kept = dead_letters(&api, &t, "").await;
    assert_eq!(kept[0]["attempts"], 2);
    assert_eq!(kept[0]["error"], "ConcertMaster.StartFailed");
    assert!(
        kept[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("conflict: "),
        "{}",
        kept[0]
    );

    // Audited.
    let (_, audit) = api.call("GET", "/v1/audit", Some(&admin), None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"].as_str().unwrap().starts_with("dead-letter:"))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "dead-letter.redrive",
            "dead-letter.delete",
            "dead-letter.redrive"
        ],
        "{audit}"
    );
}

#[tokio::test]
async fn queue_and_dead_letter_endpoints_refuse_what_they_should() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let send = |queue: &str| format!("/v1/queues/{queue}/messages");
    // Nobody of this organisation reads the queue (another organisation's reader does).
    let other = api.token("other", Role::Editor);
    api.publish(&other, queued("orders", "shared", 1)).await;
    let (s, b) = api
        .call("POST", &send("shared"), Some(&t), Some(json!({"a": 1})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("no published workflow"),
        "{b}"
    );
    let (s, _) = api
        .call("POST", &send("shared"), Some(&other), Some(json!({"a": 1})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Roles, names, bodies.
    let viewer = api.token("other", Role::Viewer);
    let (s, _) = api
        .call("POST", &send("shared"), Some(&viewer), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .call("POST", &send("shared"), None, Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = api
        .call("POST", &send("bad.name"), Some(&other), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = api.call("POST", &send("shared"), Some(&other), None).await;
    assert_eq!(
        s,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "a JSON body is needed"
    );
    // A workflow republished with another trigger no longer reads it.
    let (s, b) = api
        .call(
            "PUT",
            "/v1/workflows/orders",
            Some(&other),
            Some(json!({"definition": support::hello("orders")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = api
        .call("POST", "/v1/workflows/orders/publish", Some(&other), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .call("POST", &send("shared"), Some(&other), Some(json!({"a": 1})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Schedules and queues the scheduler or poller could not use are refused at publish.
    let bad_cron = json!({"id": "bad", "name": "Bad", "nodes": [
        {"id": "every", "type": "trigger.schedule", "config": {"expression": "cron(0 12 ? * 8 *)"}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"a": 1}}}],
        "edges": [{"from": "every", "to": "keep"}]});
    let (s, _) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&t),
            Some(json!({"definition": bad_cron})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = api
        .call("POST", "/v1/workflows/bad/publish", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["code"], "invalid_workflow");
    assert!(
        b["message"].as_str().unwrap().contains("day-of-week"),
        "{b}"
    );
    assert_eq!(b["details"]["findings"][0]["nodeId"], "every");

    // A deployment without local queues or a dead-letter queue (the cloud).
    let cloud = Api::build(false).await;
    let t = cloud.token("acme", Role::Admin);
    cloud.publish(&t, queued("orders", "orders", 1)).await;
    let (s, b) = cloud
        .call("POST", &send("orders"), Some(&t), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("not available"),
        "{b}"
    );
    let (s, b) = cloud.call("GET", "/v1/dead-letters", Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, _) = cloud
        .call("POST", "/v1/dead-letters/x/redrive", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = cloud
        .call("DELETE", "/v1/dead-letters/x", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Without a dead-letter queue a failed webhook start is still answered as before.
    let p = cloud.publish(&t, hooked("hook")).await;
    let path = p["hookUrl"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://api.test")
        .to_owned();
    cloud.fail_starts(true);
    let (s, _) = cloud
        .raw(hook_request(&path, r#"{"id": 1}"#, "application/json"))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
}
