//! `action.http` / `action.notify` end to end against a real local HTTP server, the network
//! policy (SSRF), redirects, retries and the circuit breaker.

#![allow(clippy::unwrap_used)]

mod http_support;

use cm_nodes::breaker::{BreakerConfig, Breakers};
use cm_nodes::http::{Cidr, HttpClient, NetworkPolicy, refused_range};
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::test_util::{self, ManualClock, MemoryBreakerStore};
use cm_nodes::{NodeError, NodeEvent, NodeOutput, NodeRef, NodeRunner, Services};
use http_support::{Behavior, Reply, TestServer};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOOPBACK_ONLY: &[&str] = &["127.0.0.1/32"];

fn services(allow: &[&str], secrets: LocalSecrets) -> Services {
    let mut s = test_util::services(secrets);
    s.http = HttpClient::new(NetworkPolicy {
        allow: allow.iter().map(|a| (*a).to_owned()).collect(),
    })
    .unwrap();
    s
}

fn runner(allow: &[&str]) -> NodeRunner {
    NodeRunner::builtin(services(allow, LocalSecrets::new()))
}

fn runner_with_secrets(secrets: LocalSecrets) -> NodeRunner {
    NodeRunner::builtin(services(LOOPBACK_ONLY, secrets))
}

async fn run(runner: &NodeRunner, node_type: &str, config: Value) -> Result<NodeOutput, NodeError> {
    runner
        .run(NodeEvent {
            node: NodeRef {
                id: "call".into(),
                node_type: node_type.into(),
                type_version: 1,
            },
            config,
            input: Value::Null,
            context: Default::default(),
        })
        .await
}

async fn http(runner: &NodeRunner, config: Value) -> Result<NodeOutput, NodeError> {
    run(runner, "action.http", config).await
}

// ---- requests and responses

#[tokio::test]
async fn get_json_with_query_and_headers() {
    let server = TestServer::start().await;
    server.reply(
        "/users",
        Reply::json(200, json!({"id": 1, "name": "Ada"})).header("X-Request-Id", "abc"),
    );
    let out = http(
        &runner(LOOPBACK_ONLY),
        json!({
            "url": server.url("/users?fixed=1"),
            "query": {"q": "a b&c", "n": 2, "on": true},
            "headers": {"X-Custom": "yes", "Accept": "application/json"}
        }),
    )
    .await
    .unwrap();
    assert_eq!(out.port, "out");
    assert_eq!(out.output["status"], 200);
    assert_eq!(out.output["body"], json!({"id": 1, "name": "Ada"}));
    assert_eq!(out.output["headers"]["x-request-id"], "abc");
    assert_eq!(out.output["headers"]["content-type"], "application/json");
    let req = server.last();
    assert_eq!(req.method, "GET");
    assert_eq!(req.target, "/users?fixed=1&q=a+b%26c&n=2&on=true");
    assert_eq!(req.header("x-custom"), Some("yes"));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert!(
        req.header("user-agent")
            .unwrap()
            .starts_with("ConcertMaster/")
    );
}

#[tokio::test]
async fn text_responses_are_strings_and_invalid_json_stays_text() {
    let server = TestServer::start().await;
    server.reply("/text", Reply::text(200, "hello"));
    server.reply(
        "/bad",
        Reply::new(200)
            .header("Content-Type", "application/json; charset=utf-8")
            .body("{not json"),
    );
    let r = runner(LOOPBACK_ONLY);
    let out = http(&r, json!({"url": server.url("/text")})).await.unwrap();
    assert_eq!(out.output["body"], "hello");
    let out = http(&r, json!({"url": server.url("/bad")})).await.unwrap();
    assert_eq!(out.output["body"], "{not json");
}

#[tokio::test]
async fn post_bodies_json_form_and_text() {
    let server = TestServer::start().await;
    server.route("/echo", vec![Behavior::Echo(201)]);
    let r = runner(LOOPBACK_ONLY);

    let out = http(
        &r,
        json!({"method": "POST", "url": server.url("/echo"), "body": {"a": [1, 2], "b": null}}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["status"], 201);
    let req = server.last();
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent, json!({"a": [1, 2], "b": null}));

    http(
        &r,
        json!({"method": "PUT", "url": server.url("/echo"), "bodyType": "form",
               "body": {"name": "Ada Lovelace", "age": 36, "ok": true}}),
    )
    .await
    .unwrap();
    let req = server.last();
    assert_eq!(req.method, "PUT");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.body_text(), "name=Ada+Lovelace&age=36&ok=true");

    http(
        &r,
        json!({"method": "PATCH", "url": server.url("/echo"), "bodyType": "text",
               "body": "plain words", "headers": {"Content-Type": "text/csv"}}),
    )
    .await
    .unwrap();
    let req = server.last();
    assert_eq!(req.method, "PATCH");
    assert_eq!(req.header("content-type"), Some("text/csv"));
    assert_eq!(req.body_text(), "plain words");

    let e = http(
        &r,
        json!({"method": "POST", "url": server.url("/echo"), "bodyType": "form", "body": [1]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
}

#[tokio::test]
async fn head_and_delete() {
    let server = TestServer::start().await;
    server.reply("/thing", Reply::text(200, "ignored for HEAD"));
    let r = runner(LOOPBACK_ONLY);
    let out = http(&r, json!({"method": "HEAD", "url": server.url("/thing")}))
        .await
        .unwrap();
    assert_eq!(out.output["status"], 200);
    assert_eq!(out.output["body"], "");
    assert_eq!(server.last().method, "HEAD");
    http(&r, json!({"method": "DELETE", "url": server.url("/thing")}))
        .await
        .unwrap();
    assert_eq!(server.last().method, "DELETE");
}

#[tokio::test]
async fn config_is_checked() {
    let r = runner(LOOPBACK_ONLY);
    for config in [
        json!({"url": "http://127.0.0.1:1/", "bogus": 1}),
        json!({"url": "http://127.0.0.1:1/", "method": "TRACE"}),
        json!({"url": "http://127.0.0.1:1/", "timeoutSeconds": 0}),
        json!({"url": "http://127.0.0.1:1/", "maxResponseBytes": 300000}),
        json!({"url": "http://127.0.0.1:1/", "query": {"a": [1]}}),
        json!({"url": "not a url"}),
        json!({"url": "ftp://127.0.0.1/file"}),
        json!({"url": "http://user:pw@127.0.0.1:1/"}),
        json!({"url": "http://127.0.0.1:1/", "auth": {"type": "header", "secret": "X"}}),
        json!({"url": "http://127.0.0.1:1/", "auth": {"type": "oauth", "secret": "X"}}),
    ] {
        let e = http(&r, config.clone()).await.unwrap_err();
        assert!(
            matches!(
                e.name(),
                "ConcertMaster.InvalidConfig" | "ConcertMaster.SecretNotFound"
            ),
            "{config}: {e:?}"
        );
    }
    let e = http(&r, json!({"url": "http://user:pw@127.0.0.1:1/"}))
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("pw"), "{e}");
}

// ---- auth from secrets

const TOKEN: &str = "tok-9f8e7d6c5b4a";

#[tokio::test]
async fn bearer_auth_from_a_secret_is_sent_and_never_shown() {
    let server = TestServer::start().await;
    server.route("/me", vec![Behavior::Echo(200)]);
    server.route("/denied", vec![Behavior::Echo(401)]);
    let r = runner_with_secrets(LocalSecrets::new().insert("API_TOKEN", TOKEN));
    let out = http(
        &r,
        json!({"url": server.url("/me"), "auth": {"type": "bearer", "secret": "API_TOKEN"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        server.last().header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let shown = out.output.to_string();
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(out.output["body"]["headers"]["authorization"], "***");

    let e = http(
        &r,
        json!({"url": server.url("/denied"), "auth": {"type": "bearer", "secret": "API_TOKEN"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.4xx");
    assert!(matches!(e, NodeError::Http4xx { status: 401, .. }));
    assert!(!e.to_string().contains(TOKEN), "{e}");
    assert!(e.to_string().contains("***"), "{e}");
}

#[tokio::test]
async fn basic_and_header_auth() {
    let server = TestServer::start().await;
    server.route("/me", vec![Behavior::Echo(200)]);
    let r = runner_with_secrets(
        LocalSecrets::new()
            .insert("BASIC", "ada:pa55-word-xyz")
            .insert("STRIPE", "sk_test_abcdef")
            .insert("KEY", TOKEN),
    );
    let out = http(
        &r,
        json!({"url": server.url("/me"), "auth": {"type": "basic", "secret": "BASIC"}}),
    )
    .await
    .unwrap();
    // base64("ada:pa55-word-xyz")
    assert_eq!(
        server.last().header("authorization"),
        Some("Basic YWRhOnBhNTUtd29yZC14eXo=")
    );
    let shown = out.output.to_string();
    assert!(!shown.contains("YWRhOnBhNTUtd29yZC14eXo="), "{shown}");
    assert!(!shown.contains("pa55-word-xyz"), "{shown}");

    http(
        &r,
        json!({"url": server.url("/me"), "auth": {"type": "basic", "secret": "STRIPE"}}),
    )
    .await
    .unwrap();
    // A value without `:` is a user name with an empty password: base64("sk_test_abcdef:").
    assert_eq!(
        server.last().header("authorization"),
        Some("Basic c2tfdGVzdF9hYmNkZWY6")
    );

    let out = http(
        &r,
        json!({"url": server.url("/me"),
               "auth": {"type": "header", "secret": "KEY", "header": "X-Api-Key"}}),
    )
    .await
    .unwrap();
    assert_eq!(server.last().header("x-api-key"), Some(TOKEN));
    assert!(server.last().header("authorization").is_none());
    assert!(!out.output.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_missing_auth_secret_is_secret_not_found() {
    let server = TestServer::start().await;
    let r = runner(LOOPBACK_ONLY);
    let e = http(
        &r,
        json!({"url": server.url("/"), "auth": {"type": "bearer", "secret": "NOPE"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.SecretNotFound");
    assert!(e.to_string().contains("NOPE"), "{e}");
    assert_eq!(server.requests().len(), 0);
}

// ---- statuses, retries, limits, transport failures

#[tokio::test]
async fn failing_statuses_map_to_named_errors() {
    let server = TestServer::start().await;
    server.reply("/404", Reply::json(404, json!({"error": "no such user"})));
    server.reply(
        "/429",
        Reply::text(429, "slow down").header("Retry-After", "60"),
    );
    server.reply("/500", Reply::text(500, &"boom ".repeat(200)));
    server.reply("/502", Reply::new(502));
    let r = runner(LOOPBACK_ONLY);

    let e = http(&r, json!({"url": server.url("/404")}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.4xx");
    assert!(e.to_string().contains("no such user"), "{e}");
    assert!(e.to_string().contains("/404"), "{e}");

    let e = http(&r, json!({"url": server.url("/429")}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.429");
    assert!(
        matches!(&e, NodeError::Http429 { retry_after: Some(60), message } if message.contains("slow down")),
        "{e:?}"
    );
    // 60 s is too long to wait in the node: raised at once for ASL Retry.
    assert_eq!(server.hits("/429"), 1);

    let e = http(&r, json!({"url": server.url("/500")}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.5xx");
    assert!(matches!(e, NodeError::Http5xx { status: 500, .. }));
    let NodeError::Http5xx { message, .. } = &e else {
        unreachable!()
    };
    assert!(message.matches("boom").count() <= 61, "{message}");
    assert_eq!(server.hits("/500"), 1);

    let e = http(&r, json!({"url": server.url("/502")}))
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::Http5xx { status: 502, .. }), "{e:?}");
    assert!(e.to_string().contains("Bad Gateway"), "{e}");
}

#[tokio::test]
async fn fail_on_status_false_returns_every_status() {
    let server = TestServer::start().await;
    server.reply("/500", Reply::json(500, json!({"oops": true})));
    let out = http(
        &runner(LOOPBACK_ONLY),
        json!({"url": server.url("/500"), "failOnStatus": false}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["status"], 500);
    assert_eq!(out.output["body"], json!({"oops": true}));
}

#[tokio::test]
async fn retry_after_is_honoured_in_the_node() {
    let server = TestServer::start().await;
    server.route(
        "/flaky",
        vec![
            Behavior::Reply(Reply::text(503, "busy").header("Retry-After", "0")),
            Behavior::Reply(Reply::text(429, "slow").header("Retry-After", "1")),
            Behavior::Reply(Reply::json(200, json!({"ok": true}))),
        ],
    );
    let r = runner(LOOPBACK_ONLY);
    let started = Instant::now();
    let out = http(&r, json!({"url": server.url("/flaky")}))
        .await
        .unwrap();
    assert_eq!(out.output["body"], json!({"ok": true}));
    assert_eq!(server.hits("/flaky"), 3);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // At most two in-node retries, then the error.
    server.reply("/busy", Reply::text(429, "slow").header("Retry-After", "0"));
    let e = http(&r, json!({"url": server.url("/busy")}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.429");
    assert_eq!(server.hits("/busy"), 3);

    // A wait that does not fit in the node's time limit is left to ASL Retry.
    server.reply(
        "/later",
        Reply::text(503, "later").header("Retry-After", "2"),
    );
    let e = http(
        &r,
        json!({"url": server.url("/later"), "timeoutSeconds": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.5xx");
    assert_eq!(server.hits("/later"), 1);
}

#[tokio::test]
async fn oversized_responses_are_refused() {
    let server = TestServer::start().await;
    server.reply("/big", Reply::text(200, &"x".repeat(5000)));
    server.reply(
        "/streamed",
        Reply::text(200, &"y".repeat(5000)).without_length(),
    );
    server.reply("/fits", Reply::text(200, &"z".repeat(100)));
    let r = runner(LOOPBACK_ONLY);
    for path in ["/big", "/streamed"] {
        let e = http(
            &r,
            json!({"url": server.url(path), "maxResponseBytes": 1000}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.name(),
            "ConcertMaster.Http.ResponseTooLarge",
            "{path}: {e}"
        );
        assert!(e.to_string().contains("1000"), "{e}");
    }
    let out = http(
        &r,
        json!({"url": server.url("/fits"), "maxResponseBytes": 100}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["body"].as_str().unwrap().len(), 100);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = TestServer::start().await;
    server.route("/hang", vec![Behavior::Hang]);
    let started = Instant::now();
    let e = http(
        &runner(LOOPBACK_ONLY),
        json!({"url": server.url("/hang"), "timeoutSeconds": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Timeout");
    assert!(e.to_string().contains("1 s"), "{e}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = http(
        &runner(LOOPBACK_ONLY),
        json!({"url": format!("http://127.0.0.1:{port}/x?key=abc")}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Retryable", "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(!e.to_string().contains("key=abc"), "{e}");
}

#[tokio::test]
async fn dns_failure_is_retryable() {
    let e = http(
        &runner(LOOPBACK_ONLY),
        json!({"url": "http://no-such-host.invalid/"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Retryable", "{e}");
    assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
}

// ---- the network policy

#[test]
fn default_policy_refuses_special_purpose_ranges() {
    let policy = NetworkPolicy::default();
    for ip in [
        "127.0.0.1",
        "127.255.0.9",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "192.0.2.10",
        "198.51.100.1",
        "203.0.113.1",
        "198.18.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "2002:7f00:1::1",
        "2001::1",
        "fec0::1",
    ] {
        let addr: IpAddr = ip.parse().unwrap();
        assert!(policy.check(addr).is_err(), "{ip} should be refused");
        assert!(refused_range(addr).is_some(), "{ip}");
    }
    for ip in [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "172.15.255.255",
        "100.128.0.1",
        "192.169.0.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        let addr: IpAddr = ip.parse().unwrap();
        assert_eq!(policy.check(addr), Ok(()), "{ip} should be allowed");
    }
    assert!(
        policy
            .check("127.0.0.1".parse().unwrap())
            .unwrap_err()
            .contains("loopback")
    );
    assert!(
        policy
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err()
            .contains("metadata")
    );
}

#[test]
fn the_allow_list_permits_networks() {
    let policy = NetworkPolicy {
        allow: vec!["10.0.0.0/8".into(), "fd00::/8".into(), "192.168.1.7".into()],
    };
    for ip in ["10.1.2.3", "::ffff:10.9.9.9", "fd00::5", "192.168.1.7"] {
        assert_eq!(policy.check(ip.parse().unwrap()), Ok(()), "{ip}");
    }
    for ip in ["192.168.1.8", "127.0.0.1", "fc00::1"] {
        assert!(policy.check(ip.parse().unwrap()).is_err(), "{ip}");
    }
    let lo = NetworkPolicy::allow_loopback();
    assert_eq!(lo.check("127.0.0.2".parse().unwrap()), Ok(()));
    assert_eq!(lo.check("::1".parse().unwrap()), Ok(()));
    assert!(lo.check("10.0.0.1".parse().unwrap()).is_err());
}

#[test]
fn cidrs_parse_and_bad_ones_are_refused_at_construction() {
    let c: Cidr = "10.1.2.3/8".parse().unwrap();
    assert_eq!(c.to_string(), "10.0.0.0/8");
    assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    assert!(
        "0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap())
    );
    for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129", ""] {
        let e = HttpClient::new(NetworkPolicy {
            allow: vec!["127.0.0.1/32".into(), bad.into()],
        })
        .unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
        assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
    }
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_and_private_targets() {
    let server = TestServer::start().await;
    server.reply("/", Reply::text(200, "should not be reached"));
    let port = server.port();
    let r = runner(&[]);
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://10.0.0.1/".into(),
        "http://172.16.0.1/".into(),
        "http://192.168.0.1/".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fe80::1]/".into(),
        "http://[fc00::1]/".into(),
    ] {
        let e = http(&r, json!({"url": url})).await.unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.Http.BlockedAddress", "{url}: {e}");
        let text = e.to_string();
        assert!(text.contains("CONCERTMASTER_ALLOW_NETWORKS"), "{text}");
        assert!(text.contains("--allow-network"), "{text}");
    }
    assert_eq!(server.requests().len(), 0);

    let e = http(&r, json!({"url": format!("http://localhost:{port}/")}))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`localhost`"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    let e = http(&r, json!({"url": "http://169.254.169.254/"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("169.254.169.254/32"), "{e}");
}

#[tokio::test]
async fn names_resolving_to_allowed_addresses_pass() {
    let server = TestServer::start().await;
    server.reply("/", Reply::text(200, "hi"));
    // localhost resolves to 127.0.0.1 (allowed) and maybe ::1 (refused, dropped).
    let out = http(
        &runner(LOOPBACK_ONLY),
        json!({"url": format!("http://localhost:{}/", server.port())}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["body"], "hi");
}

// ---- redirects

#[tokio::test]
async fn redirects_are_followed_when_allowed() {
    let server = TestServer::start().await;
    server.reply("/old", Reply::redirect(301, "/new?x=1"));
    server.route("/new", vec![Behavior::Echo(200)]);
    server.reply("/post-302", Reply::redirect(302, "/new"));
    server.reply("/post-303", Reply::redirect(303, "/new"));
    server.reply("/post-307", Reply::redirect(307, "/new"));
    server.reply(
        "/post-308",
        Reply::redirect(308, server.url("/new").as_str()),
    );
    let r = runner(LOOPBACK_ONLY);

    let out = http(&r, json!({"url": server.url("/old")})).await.unwrap();
    assert_eq!(out.output["body"]["path"], "/new?x=1");

    for (path, method, body) in [
        ("/post-302", "GET", ""),
        ("/post-303", "GET", ""),
        ("/post-307", "POST", r#"{"a":1}"#),
        ("/post-308", "POST", r#"{"a":1}"#),
    ] {
        let out = http(
            &r,
            json!({"method": "POST", "url": server.url(path), "body": {"a": 1}}),
        )
        .await
        .unwrap();
        assert_eq!(out.output["body"]["method"], method, "{path}");
        assert_eq!(out.output["body"]["body"], body, "{path}");
        let last = server.last();
        assert_eq!(
            last.header("content-type").is_some(),
            method == "POST",
            "{path}"
        );
    }
    // A body's own headers go with the body.
    let out = http(
        &r,
        json!({"method": "POST", "url": server.url("/post-303"), "body": {"a": 1},
               "headers": {"Content-Type": "application/vnd.x+json", "X-Keep": "1"}}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["body"]["method"], "GET");
    assert_eq!(server.last().header("content-type"), None);
    assert_eq!(server.last().header("x-keep"), Some("1"));
    // PUT keeps its method through 302.
    let out = http(
        &r,
        json!({"method": "PUT", "url": server.url("/post-302"), "body": {"a": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["body"]["method"], "PUT");
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_origin() {
    let first = TestServer::start().await;
    let second = TestServer::start().await;
    second.route("/land", vec![Behavior::Echo(200)]);
    first.reply("/go", Reply::redirect(302, second.url("/land").as_str()));
    first.route("/same", vec![Behavior::Echo(200)]);
    first.reply("/go-same", Reply::redirect(302, "/same"));
    let r = runner_with_secrets(LocalSecrets::new().insert("API_TOKEN", TOKEN));
    let auth = json!({"type": "bearer", "secret": "API_TOKEN"});

    http(&r, json!({"url": first.url("/go"), "auth": auth, "headers": {"Cookie": "c=1", "X-Other": "kept"}}))
        .await
        .unwrap();
    let landed = second.last();
    assert_eq!(landed.header("authorization"), None);
    assert_eq!(landed.header("cookie"), None);
    assert_eq!(landed.header("x-other"), Some("kept"));

    http(&r, json!({"url": first.url("/go-same"), "auth": auth}))
        .await
        .unwrap();
    assert_eq!(
        first.last().header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_refused() {
    let server = TestServer::start().await;
    let port = server.port();
    server.reply(
        "/to-other-loopback",
        Reply::redirect(302, &format!("http://127.0.0.2:{port}/")),
    );
    server.reply(
        "/to-v6-loopback",
        Reply::redirect(307, &format!("http://[::1]:{port}/")),
    );
    server.reply(
        "/to-metadata",
        Reply::redirect(301, "http://169.254.169.254/latest/meta-data/iam"),
    );
    server.reply(
        "/to-mapped",
        Reply::redirect(302, &format!("http://[::ffff:10.0.0.1]:{port}/")),
    );
    server.reply("/to-file", Reply::redirect(302, "file:///etc/passwd"));
    let r = runner(LOOPBACK_ONLY);
    for path in [
        "/to-other-loopback",
        "/to-v6-loopback",
        "/to-metadata",
        "/to-mapped",
    ] {
        let e = http(&r, json!({"url": server.url(path)}))
            .await
            .unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.Http.BlockedAddress", "{path}: {e}");
    }
    let e = http(&r, json!({"url": server.url("/to-file")}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig", "{e}");
}

#[tokio::test]
async fn redirect_loops_stop() {
    let server = TestServer::start().await;
    server.reply("/loop", Reply::redirect(302, "/loop"));
    let e = http(&runner(LOOPBACK_ONLY), json!({"url": server.url("/loop")}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidInput", "{e}");
    assert_eq!(server.hits("/loop"), 6);
}

// ---- action.notify

#[tokio::test]
async fn notify_posts_slack_json() {
    let server = TestServer::start().await;
    server.reply("/hook", Reply::text(200, "ok"));
    let r = runner(LOOPBACK_ONLY);
    let out = run(
        &r,
        "action.notify",
        json!({"url": server.url("/hook"), "text": "Deployed *v2*",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
               "username": "ConcertMaster"}),
    )
    .await
    .unwrap();
    assert_eq!(out.output, json!({"status": 200, "delivered": true}));
    let req = server.last();
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        sent,
        json!({"text": "Deployed *v2*",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
               "username": "ConcertMaster"})
    );

    run(
        &r,
        "action.notify",
        json!({"url": server.url("/hook"), "text": "plain"}),
    )
    .await
    .unwrap();
    let sent: Value = serde_json::from_slice(&server.last().body).unwrap();
    assert_eq!(sent, json!({"text": "plain"}));
}

#[tokio::test]
async fn notify_to_a_secret_url_never_shows_it() {
    let server = TestServer::start().await;
    server.reply("/services/T000/B000/XyZsecretPath", Reply::text(200, "ok"));
    server.reply(
        "/services/T000/B000/revokedPath",
        Reply::text(404, "no_team"),
    );
    let good = server.url("/services/T000/B000/XyZsecretPath");
    let revoked = server.url("/services/T000/B000/revokedPath");
    let r = runner_with_secrets(
        LocalSecrets::new()
            .insert("SLACK", &good)
            .insert("OLD_SLACK", &revoked)
            .insert("NOT_A_URL", "hooks.example.com/abc"),
    );
    let out = run(
        &r,
        "action.notify",
        json!({"secret": "SLACK", "text": "hi"}),
    )
    .await
    .unwrap();
    assert_eq!(out.output["delivered"], true);
    assert_eq!(server.hits("/services/T000/B000/XyZsecretPath"), 1);

    let e = run(
        &r,
        "action.notify",
        json!({"secret": "OLD_SLACK", "text": "hi"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.4xx");
    assert!(e.to_string().contains("no_team"), "{e}");
    assert!(!e.to_string().contains("revokedPath"), "{e}");

    let e = run(
        &r,
        "action.notify",
        json!({"secret": "NOT_A_URL", "text": "hi"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(!e.to_string().contains("abc"), "{e}");

    let e = run(
        &r,
        "action.notify",
        json!({"secret": "MISSING", "text": "hi"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.SecretNotFound");

    for config in [
        json!({"text": "hi"}),
        json!({"url": good, "secret": "SLACK", "text": "hi"}),
        json!({"url": good}),
        json!({"url": good, "text": "hi", "channel": "#x"}),
    ] {
        let e = run(&r, "action.notify", config.clone()).await.unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.InvalidConfig", "{config}");
    }
}

#[tokio::test]
async fn notify_is_refused_by_the_default_policy() {
    let server = TestServer::start().await;
    server.reply("/hook", Reply::text(200, "ok"));
    let e = run(
        &runner(&[]),
        "action.notify",
        json!({"url": server.url("/hook"), "text": "hi"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.BlockedAddress");
    assert_eq!(server.requests().len(), 0);
}

// ---- the circuit breaker

fn breaker_runner(clock: Arc<ManualClock>) -> NodeRunner {
    let mut s = services(LOOPBACK_ONLY, LocalSecrets::new());
    s.clock = clock;
    s.breakers = Breakers::new(
        Arc::new(MemoryBreakerStore::default()),
        BreakerConfig {
            failure_threshold: 2,
            window_ms: 60_000,
            open_ms: 30_000,
            probe_timeout_ms: 60_000,
        },
    );
    NodeRunner::builtin(s)
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_then_probes_and_closes() {
    let server = TestServer::start().await;
    server.route(
        "/svc",
        vec![
            Behavior::Reply(Reply::text(500, "down")),
            Behavior::Reply(Reply::text(500, "down")),
            Behavior::Reply(Reply::json(200, json!({"up": true}))),
        ],
    );
    let clock = ManualClock::at(1_700_000_000_000);
    let r = breaker_runner(clock.clone());
    let config = json!({"url": server.url("/svc")});

    for _ in 0..2 {
        let e = http(&r, config.clone()).await.unwrap_err();
        assert_eq!(e.name(), "ConcertMaster.Http.5xx");
    }
    clock.advance(1_000);
    let e = http(&r, config.clone()).await.unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.CircuitOpen");
    let text = e.to_string();
    assert!(
        text.contains(&format!("http://127.0.0.1:{}", server.port())),
        "{text}"
    );
    assert!(text.contains("2023-11-14T22:13:50Z"), "{text}");
    assert_eq!(server.hits("/svc"), 2, "an open breaker does not call");

    // Other targets are not affected.
    let other = TestServer::start().await;
    other.reply("/", Reply::text(200, "fine"));
    http(&r, json!({"url": other.url("/")})).await.unwrap();

    clock.advance(29_000);
    let out = http(&r, config.clone()).await.unwrap();
    assert_eq!(out.output["body"], json!({"up": true}));
    assert_eq!(server.hits("/svc"), 3, "the half-open probe went through");
    http(&r, config.clone()).await.unwrap();
    assert_eq!(server.hits("/svc"), 4, "closed again");
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let server = TestServer::start().await;
    server.reply("/svc", Reply::text(503, "down"));
    let clock = ManualClock::at(1_000_000);
    let r = breaker_runner(clock.clone());
    let config = json!({"url": server.url("/svc")});
    for _ in 0..2 {
        http(&r, config.clone()).await.unwrap_err();
    }
    assert_eq!(
        http(&r, config.clone()).await.unwrap_err().name(),
        "ConcertMaster.CircuitOpen"
    );
    clock.advance(30_000);
    assert_eq!(
        http(&r, config.clone()).await.unwrap_err().name(),
        "ConcertMaster.Http.5xx"
    );
    assert_eq!(server.hits("/svc"), 3);
    assert_eq!(
        http(&r, config.clone()).await.unwrap_err().name(),
        "ConcertMaster.CircuitOpen"
    );
    assert_eq!(server.hits("/svc"), 3);
}

#[tokio::test]
async fn client_errors_and_refused_connections_are_counted_correctly() {
    let server = TestServer::start().await;
    server.reply("/missing", Reply::text(404, "nope"));
    let clock = ManualClock::at(1_000_000);
    let r = breaker_runner(clock.clone());
    for _ in 0..4 {
        let e = http(&r, json!({"url": server.url("/missing")}))
            .await
            .unwrap_err();
        assert_eq!(
            e.name(),
            "ConcertMaster.Http.4xx",
            "4xx never opens the breaker"
        );
    }
    assert_eq!(server.hits("/missing"), 4);

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = json!({"url": format!("http://127.0.0.1:{port}/")});
    for _ in 0..2 {
        assert_eq!(
            http(&r, config.clone()).await.unwrap_err().name(),
            "ConcertMaster.Retryable"
        );
    }
    assert_eq!(
        http(&r, config.clone()).await.unwrap_err().name(),
        "ConcertMaster.CircuitOpen"
    );
}

#[tokio::test]
async fn https_client_builds_with_the_default_policy() {
    let s: Services = test_util::services(LocalSecrets::new());
    assert!(s.http.policy().allow.is_empty());
    // A refused https target fails on the policy, before any TLS.
    let e = s
        .http
        .check_url(&"https://10.0.0.1/".parse().unwrap())
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Http.BlockedAddress");
    // The TLS backend (rustls + ring + platform verifier) is set up by the first request: a
    // peer that hangs up during the handshake is a transport failure (`Retryable`), not a
    // client that could not be built (`Internal`).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let e = http(
        &runner(LOOPBACK_ONLY),
        json!({"url": format!("https://{addr}/")}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.Retryable", "{}", e.cause());
}
