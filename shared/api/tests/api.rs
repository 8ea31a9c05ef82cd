//! The HTTP API end to end (router in process, in-memory store, in-memory engine with the real
//! node handlers): every endpoint's success and error paths, organisation isolation, roles.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use cm_api::auth::Role;
use serde_json::{Value, json};
use support::{Api, hello};

#[tokio::test]
async fn auth_is_required_and_checked() {
    let api = Api::new().await;
    let (s, b) = api.call("GET", "/v1/workflows", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(b["code"], "unauthorized");
    assert!(b["message"].as_str().unwrap().contains("Bearer"), "{b}");
    let (s, b) = api.call("GET", "/v1/workflows", Some("x.y.z"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let other = cm_api::auth::TokenKey::generate()
        .unwrap()
        .mint(&cm_api::auth::Claims {
            sub: "a".into(),
            org: "acme".into(),
            role: Role::Admin,
            exp: cm_api::auth::now_s() + 60,
            iat: 0,
            nbf: None,
        });
    let (s, b) = api.call("GET", "/v1/workflows", Some(&other), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(b["message"].as_str().unwrap().contains("signature"), "{b}");
    // Viewers read but cannot write; only admins delete.
    let viewer = api.token("acme", Role::Viewer);
    let (s, _) = api.call("GET", "/v1/workflows", Some(&viewer), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&viewer),
            Some(json!({"definition": hello("h")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(b["code"], "forbidden");
    let editor = api.token("acme", Role::Editor);
    let (s, _) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&editor),
            Some(json!({"definition": hello("h")})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .call("DELETE", "/v1/workflows/h", Some(&editor), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.call("GET", "/v1/audit", Some(&editor), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn workflows_are_versioned_validated_and_compiled() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Admin);
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&t),
            Some(json!({"definition": hello("hello")})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["workflow"]["latestVersion"], 1);
    assert_eq!(b["findings"], json!([]));
    // Existing id.
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&t),
            Some(json!({"definition": hello("hello")})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // Not a workflow: 422 with the located problem.
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&t),
            Some(json!({"definition": {"id": "x", "nodes": 3}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["code"], "invalid_workflow");
    assert!(
        b["details"]["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nodes"),
        "{b}"
    );
    // Malformed JSON and wrong content type.
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/workflows")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{nope"))
        .unwrap();
    let (s, b) = api.raw(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/workflows")
        .header("authorization", format!("Bearer {t}"))
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let (s, _) = api.raw(req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Too large.
    let big =
        json!({"definition": {"id": "big", "name": "x".repeat(70_000), "nodes": [], "edges": []}});
    let (s, b) = api.call("POST", "/v1/workflows", Some(&t), Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");

    // Update → version 2; a stale expectedVersion conflicts; the id cannot change.
    let mut v2 = hello("hello");
    v2["name"] = json!("Hello v2");
    let (s, b) = api
        .call(
            "PUT",
            "/v1/workflows/hello",
            Some(&t),
            Some(json!({"definition": v2, "expectedVersion": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["workflow"]["latestVersion"], 2);
    let (s, b) = api
        .call(
            "PUT",
            "/v1/workflows/hello",
            Some(&t),
            Some(json!({"definition": v2, "expectedVersion": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = api
        .call(
            "PUT",
            "/v1/workflows/hello",
            Some(&t),
            Some(json!({"definition": hello("other")})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (_, b) = api
        .call("GET", "/v1/workflows/hello/versions", Some(&t), None)
        .await;
    let versions: Vec<u64> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1]);
    let (s, b) = api
        .call("GET", "/v1/workflows/hello/versions/1", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["definition"]["name"], "Hello");
    let (s, _) = api
        .call("GET", "/v1/workflows/hello/versions/9", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An invalid version saves (a draft) but reports findings, and does not compile.
    let mut broken = hello("hello");
    broken["edges"] = json!([{"from": "start", "to": "nowhere"}]);
    let (s, b) = api
        .call(
            "PUT",
            "/v1/workflows/hello",
            Some(&t),
            Some(json!({"definition": broken})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error"),
        "{b}"
    );
    let (s, b) = api
        .call("GET", "/v1/workflows/hello/compile", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(!b["details"]["findings"].as_array().unwrap().is_empty());
    let (s, b) = api
        .call(
            "GET",
            "/v1/workflows/hello/compile?version=2",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["definition"]["States"].is_object(), "{b}");
    assert!(b["stateMap"].is_object());
    let (s, b) = api
        .call("POST", "/v1/validate", Some(&t), Some(broken.clone()))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["valid"], false);
    let (s, b) = api
        .call("POST", "/v1/workflows/hello/publish", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

    // List with search, templates, paging.
    for i in 0..7 {
        let (s, _) = api
            .call(
                "POST",
                "/v1/workflows",
                Some(&t),
                Some(json!({"definition": hello(&format!("w{i}")), "isTemplate": i % 2 == 0})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/workflows?limit=3&cursor={c}"),
            None => "/v1/workflows?limit=3".into(),
        };
        let (s, b) = api.call("GET", &path, Some(&t), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        seen.extend(
            b["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["id"].as_str().unwrap().to_owned()),
        );
        match b["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let (_, b) = api.call("GET", "/v1/templates", Some(&t), None).await;
    assert_eq!(b["items"].as_array().unwrap().len(), 4);
    let (_, b) = api
        .call("GET", "/v1/workflows?search=w3", Some(&t), None)
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    let (s, b) = api
        .call("GET", "/v1/workflows?limit=0", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = api
        .call("GET", "/v1/workflows?cursor=garbage", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // From a template.
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows/from-template",
            Some(&t),
            Some(json!({"templateId": "w0", "id": "mine", "name": "Mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["definition"]["name"], "Mine");
    let (s, _) = api
        .call(
            "POST",
            "/v1/workflows/from-template",
            Some(&t),
            Some(json!({"templateId": "w1", "id": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "w1 is not a template");

    // Delete (admin); the id is gone.
    let (s, _) = api.call("DELETE", "/v1/workflows/w6", Some(&t), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.call("GET", "/v1/workflows/w6", Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The audit log saw it all.
    let (_, b) = api.call("GET", "/v1/audit?limit=500", Some(&t), None).await;
    let actions: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[0], "workflow.delete");
    assert!(actions.contains(&"workflow.update") && actions.contains(&"workflow.create"));
}

#[tokio::test]
async fn node_types_are_listed_and_described() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Viewer);
    let (s, b) = api
        .call("GET", "/v1/node-types?category=action", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["category"] == "action")
    );
    let (_, b) = api
        .call("GET", "/v1/node-types?search=webhook", Some(&t), None)
        .await;
    assert!(!b["items"].as_array().unwrap().is_empty());
    let (s, b) = api
        .call("GET", "/v1/node-types?category=nope", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = api
        .call("GET", "/v1/node-types/action.http", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["configSchema"]["properties"]["url"].is_object(), "{b}");
    let (s, _) = api
        .call("GET", "/v1/node-types/nope.nope", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn published(api: &Api, t: &str, def: Value) -> Value {
    let id = def["id"].as_str().unwrap().to_owned();
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(t),
            Some(json!({"definition": def})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api
        .call(
            "POST",
            &format!("/v1/workflows/{id}/publish"),
            Some(t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

#[tokio::test]
async fn runs_start_finish_and_are_listed() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let (s, _) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&t),
            Some(json!({"definition": hello("hello")})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Not published yet.
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows/hello/runs",
            Some(&t),
            Some(json!({"input": {"name": "Ada"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["message"].as_str().unwrap().contains("publish"), "{b}");
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows/hello/publish",
            Some(&t),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["executionType"], "STANDARD");
    // The trigger's input schema is checked before anything starts.
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows/hello/runs",
            Some(&t),
            Some(json!({"input": {"nom": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["code"], "invalid_input");
    assert_eq!(b["details"]["violations"][0]["path"], "", "{b}");
    let (s, run) = api
        .call(
            "POST",
            "/v1/workflows/hello/runs",
            Some(&t),
            Some(json!({"input": {"name": "Ada"}, "idempotencyKey": "k1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    // Same key: the same run.
    let (s, again) = api
        .call(
            "POST",
            "/v1/workflows/hello/runs",
            Some(&t),
            Some(json!({"input": {"name": "Ada"}, "idempotencyKey": "k1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["id"], run["id"]);
    let done = api.finished(&t, &id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"]["nodes"]["greet"]["output"]["text"],
        "Hello Ada"
    );
    let (_, nodes) = api
        .call("GET", &format!("/v1/runs/{id}/nodes"), Some(&t), None)
        .await;
    let ids: Vec<&str> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["nodeId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["start", "greet"], "{nodes}");
    let (_, events) = api
        .call("GET", &format!("/v1/runs/{id}/events"), Some(&t), None)
        .await;
    let events = events["items"].as_array().unwrap();
    assert_eq!(events[0]["type"], "ExecutionStarted");
    let (_, tail) = api
        .call(
            "GET",
            &format!("/v1/runs/{id}/events?after=3"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(tail["items"][0]["id"], 4);
    // Lists and filters.
    let (_, b) = api
        .call(
            "GET",
            "/v1/runs?workflowId=hello&status=SUCCEEDED",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    let (_, b) = api
        .call("GET", "/v1/runs?status=FAILED", Some(&t), None)
        .await;
    assert!(b["items"].as_array().unwrap().is_empty());
    // Cancel and redrive refuse ended runs.
    let (s, _) = api
        .call("POST", &format!("/v1/runs/{id}/cancel"), Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = api
        .call("POST", &format!("/v1/runs/{id}/redrive"), Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = api.call("GET", "/v1/runs/nope", Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn runs_can_be_cancelled_and_redriven() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let slow = json!({"id": "slow", "name": "Slow", "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": "nap", "type": "flow.wait", "config": {"seconds": 3600}}],
        "edges": [{"from": "start", "to": "nap"}]});
    published(&api, &t, slow).await;
    let (_, run) = api
        .call("POST", "/v1/workflows/slow/runs", Some(&t), None)
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let (s, b) = api
        .call("POST", &format!("/v1/runs/{id}/cancel"), Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ABORTED");

    // A run failing on a refused address, then redriven: same run, from the failed node.
    let failing = json!({"id": "failing", "name": "Failing", "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": "call", "type": "action.http", "config": {"url": "http://127.0.0.1:9/x"}}],
        "edges": [{"from": "start", "to": "call"}]});
    published(&api, &t, failing).await;
    let (_, run) = api
        .call("POST", "/v1/workflows/failing/runs", Some(&t), None)
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let done = api.finished(&t, &id).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "ConcertMaster.Http.BlockedAddress");
    let (s, b) = api
        .call("POST", &format!("/v1/runs/{id}/redrive"), Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "RUNNING");
    let again = api.finished(&t, &id).await;
    assert_eq!(again["status"], "FAILED", "it fails the same way: {again}");
    // Retry on the latest version: a new run pointing back at this one.
    let (s, b) = api
        .call(
            "POST",
            &format!("/v1/runs/{id}/redrive"),
            Some(&t),
            Some(json!({"latest": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_ne!(b["id"], json!(id));
    assert_eq!(b["retryOf"], json!(id));
}

#[tokio::test]
async fn forms_validate_store_and_start_runs() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let form = json!({"id": "signup", "name": "Signup", "nodes": [
        {"id": "form", "type": "trigger.form", "config": {"title": "Sign up", "successMessage": "Welcome!", "schema": {
            "type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}}}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"who": "{{ $.nodes.form.output.email }}"}}}],
        "edges": [{"from": "form", "to": "keep"}]});
    let p = published(&api, &t, form).await;
    let url = p["formUrl"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://api.test")
        .to_owned();
    // Public: no token.
    let (s, b) = api.call("GET", &url, None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["title"], "Sign up");
    let (s, b) = api
        .call(
            "POST",
            &format!("{url}/responses"),
            None,
            Some(json!({"data": {"email": "nope"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["details"]["violations"][0]["path"], "/email");
    let (s, b) = api
        .call(
            "POST",
            &format!("{url}/responses"),
            None,
            Some(json!({"data": {"email": "ada@example.com"}, "clientKey": "c1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["message"], "Welcome!");
    let run_id = b["runId"].as_str().unwrap().to_owned();
    let (s, again) = api
        .call(
            "POST",
            &format!("{url}/responses"),
            None,
            Some(json!({"data": {"email": "ada@example.com"}, "clientKey": "c1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["responseId"], b["responseId"]);
    assert_eq!(again["runId"], json!(run_id));
    let done = api.finished(&t, &run_id).await;
    assert_eq!(
        done["output"]["nodes"]["keep"]["output"]["who"], "ada@example.com",
        "{done}"
    );
    let (_, list) = api
        .call("GET", "/v1/workflows/signup/responses", Some(&t), None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (s, _) = api.call("GET", "/v1/forms/unknown-form", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn webhooks_check_signatures_and_start_runs() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let hooked = json!({"id": "orders", "name": "Orders", "nodes": [
        {"id": "hook", "type": "trigger.webhook", "config": {"secret": "hook_key"}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"order": "{{ $.nodes.hook.output.body.id }}"}}}],
        "edges": [{"from": "hook", "to": "keep"}]});
    let p = published(&api, &t, hooked).await;
    let path = p["hookUrl"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://api.test")
        .to_owned();
    let body = r#"{"id": "o-1"}"#;
    let post = |sig: Option<String>, path: String| {
        let mut req = axum::http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json");
        if let Some(s) = sig {
            req = req.header("x-signature-256", s);
        }
        req.body(axum::body::Body::from(body)).unwrap()
    };
    let (s, b) = api.raw(post(None, path.clone())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let (s, _) = api.raw(post(Some("sha256=00".into()), path.clone())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let good = cm_nodes::trigger::webhook::sign(support::HOOK_SECRET.as_bytes(), body.as_bytes());
    let (s, b) = api.raw(post(Some(good.clone()), path.clone())).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let run = api.finished(&t, b["runId"].as_str().unwrap()).await;
    assert_eq!(
        run["output"]["nodes"]["keep"]["output"]["order"], "o-1",
        "{run}"
    );
    assert_eq!(run["trigger"], "trigger.webhook");
    let (s, _) = api
        .raw(post(
            Some(good),
            "/hooks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn approvals_are_decided_through_the_api() {
    let api = Api::new().await;
    let t = api.token("acme", Role::Editor);
    let wf = json!({"id": "spend", "name": "Spend", "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": "ok", "type": "flow.approval", "config": {"title": "Spend {{ $.nodes.start.output.amount }}?"}},
        {"id": "paid", "type": "transform.set", "config": {"fields": {"paid": true}}}],
        "edges": [{"from": "start", "to": "ok"}, {"from": "ok", "fromPort": "approved", "to": "paid"}]});
    published(&api, &t, wf).await;
    let mut live = api.state.hub.subscribe();
    let (_, run) = api
        .call(
            "POST",
            "/v1/workflows/spend/runs",
            Some(&t),
            Some(json!({"input": {"amount": 5}})),
        )
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    // Wait for the approval node to start (its request is recorded when its task runs).
    loop {
        let ev = live.recv().await.unwrap();
        if ev.event.node_id.as_deref() == Some("ok") && ev.event.kind == "node.started" {
            break;
        }
    }
    let approval = loop {
        let (_, b) = api.call("GET", "/v1/approvals", Some(&t), None).await;
        if let Some(a) = b["items"].as_array().unwrap().first() {
            break a.clone();
        }
        // The task is being invoked: wait for the next engine event.
        let _ = live.recv().await;
    };
    assert_eq!(approval["title"], "Spend 5?");
    assert_eq!(approval["runId"], json!(run_id));
    let id = approval["id"].as_str().unwrap().to_owned();
    // Another organisation sees nothing.
    let stranger = api.token("globex", Role::Admin);
    let (_, b) = api
        .call("GET", "/v1/approvals", Some(&stranger), None)
        .await;
    assert!(b["items"].as_array().unwrap().is_empty());
    let (s, _) = api
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(&stranger),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = api
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(&t),
            Some(json!({"approve": true, "comment": "fine"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "approved");
    let (s, _) = api
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(&t),
            Some(json!({"approve": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let done = api.finished(&t, &run_id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["nodes"]["ok"]["output"]["comment"], "fine");
}

#[tokio::test]
async fn another_organisation_sees_nothing_anywhere() {
    let api = Api::new().await;
    let a = api.token("acme", Role::Admin);
    let b = api.token("globex", Role::Admin);
    let form = json!({"id": "f", "name": "F", "nodes": [
        {"id": "form", "type": "trigger.form", "config": {"title": "T", "schema": {"type": "object"}}}], "edges": []});
    published(&api, &a, form).await;
    published(&api, &a, hello("hello")).await;
    let (_, run) = api
        .call(
            "POST",
            "/v1/workflows/hello/runs",
            Some(&a),
            Some(json!({"input": {"name": "x"}})),
        )
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    api.finished(&a, &run_id).await;
    for (method, path, body) in [
        ("GET", "/v1/workflows/hello".to_owned(), None),
        (
            "PUT",
            "/v1/workflows/hello".to_owned(),
            Some(json!({"definition": hello("hello")})),
        ),
        ("DELETE", "/v1/workflows/hello".to_owned(), None),
        ("GET", "/v1/workflows/hello/versions".to_owned(), None),
        ("GET", "/v1/workflows/hello/versions/1".to_owned(), None),
        ("GET", "/v1/workflows/hello/compile".to_owned(), None),
        ("POST", "/v1/workflows/hello/publish".to_owned(), None),
        (
            "POST",
            "/v1/workflows/hello/runs".to_owned(),
            Some(json!({"input": {"name": "x"}})),
        ),
        ("GET", "/v1/workflows/f/responses".to_owned(), None),
        ("GET", format!("/v1/runs/{run_id}"), None),
        ("POST", format!("/v1/runs/{run_id}/cancel"), None),
        ("POST", format!("/v1/runs/{run_id}/redrive"), None),
        ("GET", format!("/v1/runs/{run_id}/events"), None),
        ("GET", format!("/v1/runs/{run_id}/nodes"), None),
        (
            "POST",
            "/v1/workflows/from-template".to_owned(),
            Some(json!({"templateId": "hello", "id": "copy"})),
        ),
    ] {
        let (s, body) = api.call(method, &path, Some(&b), body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    for path in ["/v1/workflows", "/v1/runs", "/v1/templates", "/v1/audit"] {
        let (s, body) = api.call("GET", path, Some(&b), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            body["items"].as_array().unwrap().is_empty(),
            "{path}: {body}"
        );
    }
    // The same id in another organisation is a different workflow.
    let (s, _) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(&b),
            Some(json!({"definition": hello("hello")})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn operations_endpoints_and_unknown_paths() {
    let api = Api::new().await;
    let (s, b) = api.call("GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
    let (s, b) = api.call("GET", "/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["code"], "not_found");
    let (s, b) = api.call("GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b.as_str()
            .unwrap()
            .contains("concertmaster_http_responses_total{route=\"/nope\"")
            || b.as_str()
                .unwrap()
                .contains("concertmaster_http_responses_total"),
        "{b}"
    );
}

/// Records a store node wrote are listed per organisation: the same dataset name in another
/// organisation is another dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_list_the_records_of_your_organisation() {
    let api = Api::new().await;
    let storing = |id: &str| {
        json!({"id": id, "name": "Store", "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "save", "type": "action.store", "config": {"dataset": "leads",
                "key": "{{ $.nodes.start.output.email }}", "record": {"email": "{{ $.nodes.start.output.email }}", "n": 1}}}],
            "edges": [{"from": "start", "to": "save"}]})
    };
    for org in ["acme", "globex"] {
        let t = api.token(org, Role::Editor);
        api.publish(&t, storing("keep")).await;
        let emails: &[&str] = if org == "acme" {
            &["c@x.test", "a@x.test", "b@x.test"]
        } else {
            &["z@x.test"]
        };
        for email in emails {
            let (s, run) = api
                .call(
                    "POST",
                    "/v1/workflows/keep/runs",
                    Some(&t),
                    Some(json!({"input": {"email": email}})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{run}");
            let done = api.finished(&t, run["id"].as_str().unwrap()).await;
            assert_eq!(done["status"], "SUCCEEDED", "{done}");
        }
    }
    let viewer = api.token("acme", Role::Viewer);
    let (s, page) = api
        .call(
            "GET",
            "/v1/datasets/leads/records?limit=2",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["dataset"], "leads");
    let keys: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a@x.test", "b@x.test"]);
    assert_eq!(
        page["items"][0]["data"],
        json!({"email": "a@x.test", "n": 1})
    );
    assert_eq!(page["items"][0]["nodeId"], "save");
    let cursor = page["nextCursor"].as_str().unwrap();
    let (s, rest) = api
        .call(
            "GET",
            &format!("/v1/datasets/leads/records?limit=2&cursor={cursor}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rest}");
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["key"], "c@x.test");
    assert!(rest.get("nextCursor").is_none(), "{rest}");
    let g = api.token("globex", Role::Viewer);
    let (_, other) = api
        .call("GET", "/v1/datasets/leads/records", Some(&g), None)
        .await;
    assert_eq!(other["items"].as_array().unwrap().len(), 1, "{other}");
    assert_eq!(other["items"][0]["key"], "z@x.test");
    let (_, none) = api
        .call("GET", "/v1/datasets/nothing/records", Some(&viewer), None)
        .await;
    assert_eq!(none["items"], json!([]));
    // Bad names, cursors and limits; no token.
    for (path, code) in [
        ("/v1/datasets/Leads/records", "bad_request"),
        ("/v1/datasets/leads/records?cursor=nope", "bad_request"),
        ("/v1/datasets/leads/records?limit=0", "bad_request"),
    ] {
        let (s, b) = api.call("GET", path, Some(&viewer), None).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}: {b}"
        );
    }
    let (s, _) = api
        .call("GET", "/v1/datasets/leads/records", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A deployment without a dataset store says so.
    let bare = Api::build(false).await;
    let t = bare.token("acme", Role::Viewer);
    let (s, b) = bare
        .call("GET", "/v1/datasets/leads/records", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("not available"),
        "{b}"
    );
}
