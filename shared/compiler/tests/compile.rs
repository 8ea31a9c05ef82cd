//! Lowering of each node kind, loops, execution type choice and AWS limits.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use cm_compiler::{CompileError, CompileOptions, Compiled, ExecutionType, StateRole, compile};
use cm_registry::Registry;
use serde_json::{Value, json};
use support::{Interp, Oracle};

fn compile_doc(doc: Value) -> Result<Compiled, CompileError> {
    let wf = cm_model::from_json_value(doc).expect("well-formed");
    compile(&wf, &Registry::builtin(), &CompileOptions::default())
}

fn ok(doc: Value) -> Compiled {
    let c = compile_doc(doc).unwrap_or_else(|e| panic!("{e}"));
    let problems = support::lint(&c.definition);
    assert!(
        problems.is_empty(),
        "{problems:#?}\n{}",
        c.definition_json()
    );
    c
}

fn chain(trigger: &str, nodes: Vec<Value>) -> Value {
    let mut all = vec![json!({"id": "start", "type": trigger})];
    all.extend(nodes);
    let edges: Vec<Value> = all
        .windows(2)
        .map(|w| json!({"from": w[0]["id"], "to": w[1]["id"]}))
        .collect();
    json!({"id": "wf", "name": "Test", "nodes": all, "edges": edges})
}

fn state<'a>(c: &'a Compiled, name: &str) -> &'a Value {
    c.definition["States"]
        .get(name)
        .unwrap_or_else(|| panic!("no state {name} in {}", c.definition_json()))
}

#[test]
fn trigger_seeds_the_run_document() {
    let c = ok(chain(
        "trigger.manual",
        vec![json!({"id": "call", "type": "action.http", "config": {"url": "https://x"}})],
    ));
    assert_eq!(c.definition["StartAt"], "start");
    let run = Interp::run(&c, &Oracle::default(), json!({"hello": 1}))
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(run.output["nodes"]["start"]["output"], json!({"hello": 1}));
    assert_eq!(run.output["run"]["workflowId"], "wf");
    assert_eq!(
        run.output["nodes"]["call"],
        json!({"output": {"from": "call"}, "port": "out"})
    );
}

#[test]
fn node_runner_task_shape() {
    let c = ok(chain(
        "trigger.manual",
        vec![
            json!({"id": "call", "type": "action.http", "timeoutSeconds": 20,
            "config": {"url": "https://api/{{ $.nodes.start.output.id }}", "headers": {"X-Id": "{{ $.nodes.start.output.id }}"}}}),
        ],
    ));
    let s = state(&c, "call");
    assert_eq!(s["Resource"], "arn:aws:states:::lambda:invoke");
    assert_eq!(s["Parameters"]["FunctionName"], "concertmaster-node-runner");
    let payload = &s["Parameters"]["Payload"];
    assert_eq!(
        payload["node"],
        json!({"id": "call", "type": "action.http", "typeVersion": 1})
    );
    assert_eq!(
        payload["config"]["url.$"],
        "States.Format('https://api/{}', $.nodes.start.output.id)"
    );
    assert_eq!(
        payload["config"]["headers"]["X-Id.$"],
        "$.nodes.start.output.id"
    );
    assert_eq!(payload["input.$"], "$.nodes.start.output");
    assert_eq!(s["TimeoutSeconds"], 20);
    assert_eq!(s["ResultPath"], "$.nodes.call");
    let retry = s["Retry"][0]["ErrorEquals"].as_array().unwrap();
    assert!(
        retry.contains(&json!("ConcertMaster.Http.5xx")),
        "{retry:?}"
    );
    assert_eq!(s["Retry"][0]["JitterStrategy"], "FULL");
}

#[test]
fn node_retry_and_catch_override_defaults() {
    let c = ok(json!({"id": "wf", "name": "T",
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "call", "type": "action.http", "config": {"url": "x"},
             "retry": [{"errors": ["ConcertMaster.Http.5xx"], "intervalSeconds": 2, "maxAttempts": 5, "backoffRate": 1.5, "maxDelaySeconds": 20, "jitter": "none"}],
             "onError": {"action": "continue", "errors": ["ConcertMaster.Http.4xx"]}},
            {"id": "next", "type": "action.http", "config": {"url": "x"}}
        ],
        "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "next"}]}));
    let s = state(&c, "call");
    assert_eq!(
        s["Retry"],
        json!([{"ErrorEquals": ["ConcertMaster.Http.5xx"], "IntervalSeconds": 2, "MaxAttempts": 5, "BackoffRate": 1.5, "MaxDelaySeconds": 20, "JitterStrategy": "NONE"}])
    );
    assert_eq!(
        s["Catch"][0]["ErrorEquals"],
        json!(["ConcertMaster.Http.4xx"])
    );
    assert_eq!(s["Catch"][0]["Next"], "call.caught");
    // "continue": the error is recorded and the run goes on to `next`.
    let oracle = Oracle {
        failures: [("call".to_owned(), "ConcertMaster.Http.4xx".to_owned())].into(),
        ..Oracle::default()
    };
    let run = Interp::run(&c, &oracle, json!({}))
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(
        run.output["nodes"]["call"]["error"]["Error"],
        "ConcertMaster.Http.4xx"
    );
    assert_eq!(run.output["nodes"]["call"]["port"], "out");
    assert!(run.started.iter().any(|s| s.node == "next"));
    // An error the catch does not name fails the run.
    let oracle = Oracle {
        failures: [("call".to_owned(), "ConcertMaster.Http.5xx".to_owned())].into(),
        ..Oracle::default()
    };
    assert_eq!(
        Interp::run(&c, &oracle, json!({})).unwrap_err().error,
        "ConcertMaster.Http.5xx"
    );
}

#[test]
fn set_fields_is_a_native_pass() {
    let c = ok(chain(
        "trigger.manual",
        vec![
            json!({"id": "shape", "type": "transform.set", "config": {"fields": {"name": "{{ $.nodes.start.output.n }}", "kind": "lead", "tags": ["a", "{{ $.nodes.start.output.t }}"]}}}),
        ],
    ));
    let s = state(&c, "shape");
    assert_eq!(s["Type"], "Pass");
    let run = Interp::run(&c, &Oracle::default(), json!({"n": "Ada", "t": "vip"}))
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(run.output["nodes"]["shape"]["output"]["name"], "Ada");
    assert_eq!(run.output["nodes"]["shape"]["output"]["kind"], "lead");
    assert_eq!(
        s["Parameters"]["output"]["tags.$"],
        "States.Array('a', $.nodes.start.output.t)"
    );
}

#[test]
fn merge_of_references_is_native_otherwise_a_task() {
    let native = ok(chain(
        "trigger.manual",
        vec![
            json!({"id": "m", "type": "transform.merge", "config": {"sources": ["{{ $.nodes.start.output.a }}", "{{ $.nodes.start.output.b }}"]}}),
        ],
    ));
    assert_eq!(state(&native, "m")["Type"], "Pass");
    let run = Interp::run(
        &native,
        &Oracle::default(),
        json!({"a": {"x": 1}, "b": {"y": 2}}),
    )
    .map_err(|f| f.cause)
    .unwrap();
    assert_eq!(run.output["nodes"]["m"]["output"], json!({"x": 1, "y": 2}));
    let deep = ok(chain(
        "trigger.manual",
        vec![
            json!({"id": "m", "type": "transform.merge", "config": {"sources": ["{{ $.nodes.start.output.a }}"], "deep": true}}),
        ],
    ));
    assert_eq!(state(&deep, "m")["Type"], "Task");
}

#[test]
fn store_and_queue_are_direct_service_integrations() {
    let c = ok(chain(
        "trigger.webhook",
        vec![
            json!({"id": "save", "type": "action.store", "config": {"dataset": "orders", "key": "{{ $.nodes.start.output.body.id }}", "record": "{{ $.nodes.start.output.body }}"}}),
            json!({"id": "save2", "type": "action.store", "config": {"dataset": "audit", "record": {"id": "{{ $.nodes.start.output.body.id }}", "at": "{{ $$.State.EnteredTime }}"}}}),
            json!({"id": "send", "type": "action.queue", "config": {"queue": "fulfilment", "message": {"order": "{{ $.nodes.start.output.body.id }}"}, "delaySeconds": 5}}),
        ],
    ));
    let save = state(&c, "save");
    assert_eq!(save["Resource"], "arn:aws:states:::dynamodb:putItem");
    assert_eq!(save["Parameters"]["TableName"], "concertmaster-datasets");
    assert_eq!(save["Parameters"]["Item"]["pk"], json!({"S": "orders"}));
    assert_eq!(
        save["Parameters"]["Item"]["sk"]["S.$"],
        "States.Format('{}', $.nodes.start.output.body.id)"
    );
    assert_eq!(
        save["Parameters"]["Item"]["data"]["S.$"],
        "States.JsonToString($.nodes.start.output.body)"
    );
    // A record built from templates is rendered by a Pass first.
    assert_eq!(state(&c, "save2.record")["Next"], "save2");
    assert_eq!(c.state_map["save2.record"].role, StateRole::Prepare);
    let send = state(&c, "send");
    assert_eq!(send["Resource"], "arn:aws:states:::sqs:sendMessage");
    assert_eq!(
        send["Parameters"]["QueueUrl"],
        "https://sqs.us-east-1.amazonaws.com/000000000000/fulfilment"
    );
    assert_eq!(
        send["Parameters"]["MessageBody"]["order.$"],
        "$.nodes.start.output.body.id"
    );
    assert_eq!(send["Parameters"]["DelaySeconds"], 5);
    let input = json!({"body": {"id": "o-1"}});
    let run = Interp::run(&c, &Oracle::default(), input)
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(run.output["nodes"]["send"]["output"]["messageId"], "m-1");
}

#[test]
fn compile_options_name_the_deployment() {
    let wf = cm_model::from_json_value(chain(
        "trigger.manual",
        vec![
            json!({"id": "call", "type": "action.http", "config": {"url": "x"}}),
            json!({"id": "save", "type": "action.store", "config": {"dataset": "d", "record": 1}}),
            json!({"id": "child", "type": "flow.subworkflow", "config": {"workflowId": "billing"}}),
        ],
    ))
    .unwrap();
    let opts = CompileOptions {
        node_runner_function: "arn:aws:lambda:eu-west-1:1:function:runner".into(),
        datasets_table: "prod-datasets".into(),
        dataset_namespace: Some("org_42".into()),
        queue_url_prefix: "https://q/".into(),
        state_machine_arn_prefix: "arn:aws:states:eu-west-1:1:stateMachine:cm-".into(),
    };
    let c = compile(&wf, &Registry::builtin(), &opts).unwrap();
    assert_eq!(
        state(&c, "call")["Parameters"]["FunctionName"],
        "arn:aws:lambda:eu-west-1:1:function:runner"
    );
    assert_eq!(
        state(&c, "save")["Parameters"]["TableName"],
        "prod-datasets"
    );
    assert_eq!(
        state(&c, "save")["Parameters"]["Item"]["pk"]["S"],
        "org_42#d"
    );
    let child = state(&c, "child");
    assert_eq!(
        child["Resource"],
        "arn:aws:states:::states:startExecution.sync:2"
    );
    assert_eq!(
        child["Parameters"]["StateMachineArn"],
        "arn:aws:states:eu-west-1:1:stateMachine:cm-billing"
    );
    assert_eq!(c.execution_type, ExecutionType::Standard);
    assert!(
        c.execution_type_reason.contains(".sync"),
        "{}",
        c.execution_type_reason
    );
}

#[test]
fn wait_nodes() {
    let c = ok(chain(
        "trigger.manual",
        vec![
            json!({"id": "pause", "type": "flow.wait", "config": {"seconds": 30}}),
            json!({"id": "until", "type": "flow.wait", "config": {"until": "{{ $.nodes.start.output.at }}"}}),
            json!({"id": "after", "type": "action.http", "config": {"url": "x"}}),
        ],
    ));
    assert_eq!(state(&c, "pause")["Seconds"], 30);
    assert_eq!(
        state(&c, "until")["TimestampPath"],
        "$.nodes.start.output.at"
    );
    // A node after waits receives the data from before them.
    assert_eq!(
        state(&c, "after")["Parameters"]["Payload"]["input.$"],
        "$.nodes.start.output"
    );
}

#[test]
fn approval_parks_on_a_task_token_and_forces_standard() {
    let doc = json!({"id": "wf", "name": "T",
        "nodes": [
            {"id": "start", "type": "trigger.webhook"},
            {"id": "ask", "type": "flow.approval", "config": {"title": "OK?", "timeoutSeconds": 3600}},
            {"id": "yes", "type": "action.http", "config": {"url": "x"}},
            {"id": "no", "type": "action.http", "config": {"url": "x"}}
        ],
        "edges": [{"from": "start", "to": "ask"}, {"from": "ask", "fromPort": "approved", "to": "yes"}, {"from": "ask", "fromPort": "rejected", "to": "no"}]});
    let c = ok(doc.clone());
    let ask = state(&c, "ask");
    assert_eq!(
        ask["Resource"],
        "arn:aws:states:::lambda:invoke.waitForTaskToken"
    );
    assert_eq!(
        ask["Parameters"]["Payload"]["context"]["taskToken.$"],
        "$$.Task.Token"
    );
    assert_eq!(ask["TimeoutSeconds"], 3600);
    assert_eq!(c.execution_type, ExecutionType::Standard);
    assert!(c.execution_type_reason.contains("callback"));
    for (port, ran, not) in [("approved", "yes", "no"), ("rejected", "no", "yes")] {
        let oracle = Oracle {
            ports: [("ask".to_owned(), port.to_owned())].into(),
            ..Oracle::default()
        };
        let run = Interp::run(&c, &oracle, json!({}))
            .map_err(|f| f.cause)
            .unwrap();
        let started: Vec<&str> = run.started.iter().map(|s| s.node.as_str()).collect();
        assert!(
            started.contains(&ran) && !started.contains(&not),
            "{port}: {started:?}"
        );
    }
    // Forcing Express is refused with the reason.
    let mut express = doc;
    express["settings"] = json!({"executionType": "express"});
    let err = compile_doc(express).unwrap_err();
    let f = err
        .findings()
        .iter()
        .find(|f| f.code == "settings.express_incompatible")
        .unwrap();
    assert!(
        f.message.contains("`ask` waits for a callback"),
        "{}",
        f.message
    );
}

#[test]
fn express_is_chosen_for_short_event_driven_workflows() {
    let quick = ok(chain(
        "trigger.webhook",
        vec![
            json!({"id": "call", "type": "action.http", "timeoutSeconds": 10, "config": {"url": "x"}}),
        ],
    ));
    assert_eq!(
        quick.execution_type,
        ExecutionType::Express,
        "{}",
        quick.execution_type_reason
    );
    let worst = quick.stats.worst_case_seconds.unwrap();
    // 10 s x 4 attempts + 1 + 2 + 4 s of backoff.
    assert!((worst - 47.0).abs() < 1e-9, "{worst}");
    let slow = ok(chain(
        "trigger.webhook",
        vec![
            json!({"id": "call", "type": "action.http", "timeoutSeconds": 100, "config": {"url": "x"}}),
        ],
    ));
    assert_eq!(slow.execution_type, ExecutionType::Standard);
    assert!(
        slow.execution_type_reason.contains("exceeds"),
        "{}",
        slow.execution_type_reason
    );
    let manual = ok(chain(
        "trigger.manual",
        vec![
            json!({"id": "call", "type": "action.http", "timeoutSeconds": 10, "config": {"url": "x"}}),
        ],
    ));
    assert_eq!(manual.execution_type, ExecutionType::Standard);
    // http's default timeout is 60 s: 4 attempts + backoff stay under 300 s, 200 s do not.
    let default_timeout = ok(chain(
        "trigger.webhook",
        vec![json!({"id": "call", "type": "action.http", "config": {"url": "x"}})],
    ));
    assert_eq!(
        default_timeout.execution_type,
        ExecutionType::Express,
        "{}",
        default_timeout.execution_type_reason
    );
    let mut forced = chain(
        "trigger.manual",
        vec![
            json!({"id": "call", "type": "action.http", "timeoutSeconds": 200, "config": {"url": "x"}}),
        ],
    );
    forced["settings"] = json!({"executionType": "express"});
    let c = ok(forced);
    assert_eq!(c.execution_type, ExecutionType::Express);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.code == "settings.express_may_time_out")
    );
}

fn loop_doc(items_per_loop: u32) -> Value {
    json!({
        "id": "loop", "name": "Loop",
        "settings": {"estimatedItemsPerLoop": items_per_loop},
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "each", "type": "flow.foreach", "config": {"items": "{{ $.nodes.start.output.rows }}", "maxConcurrency": 4}},
            {"id": "fetch", "type": "action.http", "config": {"url": "https://x/{{ $.item.id }}"}},
            {"id": "big", "type": "condition.if", "config": {"rules": [{"field": "$.item.size", "op": "gt", "value": 10}]}},
            {"id": "save", "type": "action.store", "config": {"dataset": "rows", "record": "{{ $.nodes.fetch.output }}"}},
            {"id": "result", "type": "transform.set", "config": {"fields": {"id": "{{ $.item.id }}"}}},
            {"id": "after", "type": "action.http", "config": {"url": "x", "body": "{{ $.nodes.each.output }}"}}
        ],
        "edges": [
            {"from": "start", "to": "each"},
            {"from": "each", "fromPort": "each", "to": "fetch"},
            {"from": "fetch", "to": "big"},
            {"from": "big", "fromPort": "true", "to": "save"},
            {"from": "big", "fromPort": "false", "to": "result"},
            {"from": "save", "to": "result"},
            {"from": "each", "fromPort": "done", "to": "after"}
        ]
    })
}

#[test]
fn foreach_becomes_a_map_over_its_body() {
    let c = ok(loop_doc(100));
    let map = state(&c, "each");
    assert_eq!(map["Type"], "Map");
    assert_eq!(map["ItemsPath"], "$.nodes.start.output.rows");
    assert_eq!(map["MaxConcurrency"], 4);
    assert_eq!(map["ItemSelector"]["item.$"], "$$.Map.Item.Value");
    let body = &map["ItemProcessor"]["States"];
    assert!(body.get("fetch").is_some() && body.get("save").is_some());
    assert_eq!(body["fetch"]["Parameters"]["Payload"]["input.$"], "$.item");
    assert!(
        c.definition["States"].get("fetch").is_none(),
        "body states stay inside the Map"
    );
    let run = Interp::run(
        &c,
        &Oracle::default(),
        json!({"rows": [{"id": 1, "size": 50}, {"id": 2, "size": 1}]}),
    )
    .map_err(|f| f.cause)
    .unwrap();
    assert_eq!(
        run.output["nodes"]["each"]["output"],
        json!([{"id": 1}, {"id": 2}])
    );
    let saves = run.started.iter().filter(|s| s.node == "save").count();
    assert_eq!(saves, 1, "only the big row is saved");
    let after = run.started.iter().find(|s| s.node == "after").unwrap();
    assert!(after.after.contains("result") && after.after.contains("each"));
}

#[test]
fn history_projection_enforces_the_standard_limit() {
    let small = ok(loop_doc(10));
    assert!(
        small.stats.projected_history_events < 1_000,
        "{:?}",
        small.stats
    );
    let err = compile_doc(loop_doc(2_000)).unwrap_err();
    let f = err
        .findings()
        .iter()
        .find(|f| f.code == "asl.history_too_long")
        .unwrap();
    assert!(f.message.contains("25000"), "{}", f.message);
}

#[test]
fn history_close_to_the_limit_warns_before_it_fails() {
    // Grow the loop estimate until the projection crosses 80 % of the limit: a warning must
    // show up before the error does.
    let mut warned = false;
    for items in (100..5_000).step_by(25) {
        match compile_doc(loop_doc(items)) {
            Ok(c)
                if c.warnings
                    .iter()
                    .any(|w| w.code == "asl.history_near_limit") =>
            {
                assert!(c.stats.projected_history_events > 20_000);
                warned = true;
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("failed before warning: {e}"),
        }
    }
    assert!(warned);
}

#[test]
fn oversize_definitions_are_refused() {
    let nodes: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("n{i}"), "type": "action.http", "config": {"url": "x", "headers": {"X-Pad": "p".repeat(30_000)}}}))
        .collect();
    let err = compile_doc(chain("trigger.manual", nodes)).unwrap_err();
    assert!(
        err.findings()
            .iter()
            .any(|f| f.code == "asl.definition_too_large"),
        "{err}"
    );
}

#[test]
fn invalid_workflows_do_not_compile() {
    let err = compile_doc(json!({"id": "wf", "name": "T", "nodes": []})).unwrap_err();
    assert!(err.to_string().contains("graph.no_trigger"), "{err}");
}

#[test]
fn output_is_deterministic() {
    let a = ok(loop_doc(10)).definition_json();
    for _ in 0..5 {
        assert_eq!(ok(loop_doc(10)).definition_json(), a);
    }
}

#[test]
fn plugins_run_through_their_executor() {
    let mut registry = Registry::builtin();
    let dir = std::env::temp_dir().join(format!("cm-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("crm.json"),
        json!({"type": "acme.crm_lookup", "version": 1, "category": "action", "title": "CRM", "description": "d",
               "configSchema": {"type": "object"},
               "execution": {"kind": "plugin", "executor": {"lambdaArn": "arn:aws:lambda:us-east-1:1:function:crm", "httpUrl": "http://127.0.0.1:9/run"}}})
        .to_string(),
    )
    .unwrap();
    assert!(registry.load_plugin_dir(&dir).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
    let wf = cm_model::from_json_value(chain(
        "trigger.manual",
        vec![json!({"id": "crm", "type": "acme.crm_lookup"})],
    ))
    .unwrap();
    let c = compile(&wf, &registry, &CompileOptions::default()).unwrap();
    assert_eq!(
        state(&c, "crm")["Parameters"]["FunctionName"],
        "arn:aws:lambda:us-east-1:1:function:crm"
    );
}

#[test]
fn every_retry_rule_counts_towards_the_worst_case() {
    let c = ok(chain(
        "trigger.webhook",
        vec![
            json!({"id": "call", "type": "action.http", "timeoutSeconds": 10, "config": {"url": "x"},
            "retry": [
                {"errors": ["ConcertMaster.Http.5xx"], "maxAttempts": 5, "intervalSeconds": 1, "backoffRate": 1.0},
                {"errors": ["ConcertMaster.Timeout"], "maxAttempts": 5, "intervalSeconds": 2, "backoffRate": 1.0}
            ]}),
        ],
    ));
    // 11 attempts of 10 s, 5 x 1 s + 5 x 2 s of waiting.
    assert_eq!(c.stats.worst_case_seconds, Some(125.0));
}

#[test]
fn a_branch_entered_through_two_ports_is_still_a_jump() {
    let c = ok(json!({"id": "wf", "name": "T",
    "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": "ask", "type": "flow.approval", "config": {"title": "OK?"}, "onError": {"action": "route", "errors": ["States.Timeout"]}},
        {"id": "pay", "type": "action.http", "config": {"url": "x"}},
        {"id": "tell", "type": "action.notify", "config": {"url": "x", "text": "no"}},
        {"id": "record", "type": "action.store", "config": {"dataset": "d", "record": 1}}
    ],
    "edges": [
        {"from": "start", "to": "ask"},
        {"from": "ask", "fromPort": "approved", "to": "pay"},
        {"from": "ask", "fromPort": "rejected", "to": "tell"},
        {"from": "ask", "fromPort": "error", "to": "tell"},
        {"from": "pay", "to": "record"},
        {"from": "tell", "to": "record"}
    ]}));
    let dispatch = state(&c, "ask.dispatch");
    let targets: Vec<&str> = dispatch["Choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Next"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["pay", "tell", "tell"]);
    assert!(
        c.definition["States"].get("record.guard").is_none(),
        "the join needs no guard"
    );
    for (port, fail, ran) in [
        ("approved", false, "pay"),
        ("rejected", false, "tell"),
        ("approved", true, "tell"),
    ] {
        let mut oracle = Oracle {
            ports: [("ask".to_owned(), port.to_owned())].into(),
            ..Oracle::default()
        };
        if fail {
            oracle
                .failures
                .insert("ask".into(), "States.Timeout".into());
        }
        let run = Interp::run(&c, &oracle, json!({}))
            .map_err(|f| f.cause)
            .unwrap();
        let started: Vec<&str> = run.started.iter().map(|s| s.node.as_str()).collect();
        assert!(
            started.contains(&ran) && started.contains(&"record"),
            "{port}/{fail}: {started:?}"
        );
    }
}

#[test]
fn state_names_stay_within_80_characters() {
    let long = "n".repeat(64);
    let port = "p".repeat(60);
    let doc = json!({"id": "wf", "name": "T",
    "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": long, "type": "condition.switch", "config": {"cases": [
            {"port": port, "rules": [{"field": "$.a", "op": "exists"}]},
            {"port": format!("{port}x"), "rules": [{"field": "$.b", "op": "exists"}]}
        ]}},
        {"id": "a", "type": "action.http", "config": {"url": "x"}},
        {"id": "b", "type": "action.http", "config": {"url": "x"}}
    ],
    "edges": [
        {"from": "start", "to": long},
        {"from": long, "fromPort": port, "to": "a"},
        {"from": long, "fromPort": format!("{port}x"), "to": "b"}
    ]});
    let c = ok(doc);
    let names: Vec<&String> = c.state_map.keys().filter(|n| n.contains('~')).collect();
    assert_eq!(
        names.len(),
        2,
        "{:?}",
        c.state_map.keys().collect::<Vec<_>>()
    );
    assert!(names.iter().all(|n| n.len() <= 80));
}

#[test]
fn nested_loops_continue_after_the_inner_loop() {
    let c = ok(
        json!({"id": "nested", "name": "Nested", "settings": {"estimatedItemsPerLoop": 10},
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "orders", "type": "flow.foreach", "config": {"items": "{{ $.nodes.start.output.orders }}"}},
            {"id": "lines", "type": "flow.foreach", "config": {"items": "{{ $.item.lines }}"}},
            {"id": "price", "type": "transform.set", "config": {"fields": {"sku": "{{ $.item.sku }}"}}},
            {"id": "total", "type": "transform.set", "config": {"fields": {"lines": "{{ $.nodes.lines.output }}"}}}
        ],
        "edges": [
            {"from": "start", "to": "orders"},
            {"from": "orders", "fromPort": "each", "to": "lines"},
            {"from": "lines", "fromPort": "each", "to": "price"},
            {"from": "lines", "fromPort": "done", "to": "total"}
        ]}),
    );
    let run = Interp::run(
        &c,
        &Oracle::default(),
        json!({"orders": [{"lines": [{"sku": "a"}, {"sku": "b"}]}, {"lines": []}]}),
    )
    .map_err(|f| f.cause)
    .unwrap();
    assert_eq!(
        run.output["nodes"]["orders"]["output"],
        json!([{"lines": [{"sku": "a"}, {"sku": "b"}]}, {"lines": []}])
    );
}

fn jsonata_doc(nodes: Vec<Value>, edges: Vec<(&str, &str, &str)>) -> Value {
    json!({
        "id": "wf", "name": "JSONata",
        "settings": {"queryLanguage": "JSONata", "estimatedItemsPerLoop": 10},
        "nodes": nodes,
        "edges": edges.into_iter().map(|(a, p, b)| json!({"from": a, "fromPort": p, "to": b})).collect::<Vec<_>>()
    })
}

#[test]
fn jsonata_mode_runs_every_native_node() {
    let c = ok(jsonata_doc(
        vec![
            json!({"id": "start", "type": "trigger.webhook"}),
            json!({"id": "shape", "type": "transform.set", "config": {"fields": {
                "email": "{{ $lowercase($nodes.start.output.body.email) }}",
                "greeting": "Hello {{ $nodes.start.output.body.name }}!",
                "tags": ["new", "{{ $nodes.start.output.body.tier }}"],
                "total": "{{ $sum($nodes.start.output.body.lines.amount) }}"
            }}}),
            json!({"id": "company", "type": "condition.if", "config": {"rules": [
                {"field": "$.nodes.shape.output.email", "op": "regex", "value": "@(example|acme)\\.com$"}
            ]}}),
            json!({"id": "both", "type": "transform.merge", "config": {"sources": ["{{ $nodes.shape.output }}", {"b2b": true}]}}),
            json!({"id": "pause", "type": "flow.wait", "config": {"seconds": "{{ $count($nodes.start.output.body.lines) }}"}}),
            json!({"id": "save", "type": "action.store", "config": {"dataset": "leads", "key": "{{ $nodes.shape.output.email }}", "record": {"lead": "{{ $nodes.both.output }}"}}}),
            json!({"id": "send", "type": "action.queue", "config": {"queue": "crm", "message": {"email": "{{ $nodes.shape.output.email }}"}}}),
        ],
        vec![
            ("start", "out", "shape"),
            ("shape", "out", "company"),
            ("company", "true", "both"),
            ("both", "out", "pause"),
            ("pause", "out", "save"),
            ("save", "out", "send"),
        ],
    ));
    assert_eq!(c.definition["QueryLanguage"], "JSONata");
    assert!(
        state(&c, "company")["Choices"][0]["Condition"]
            .as_str()
            .unwrap()
            .starts_with("{%")
    );
    let input = json!({"body": {"email": "Ada@Example.COM", "name": "Ada", "tier": "gold", "lines": [{"amount": 2}, {"amount": 3}]}});
    let run = Interp::run(&c, &Oracle::default(), input)
        .map_err(|f| f.cause)
        .unwrap();
    let shape = &run.output["nodes"]["shape"]["output"];
    assert_eq!(shape["email"], "ada@example.com");
    assert_eq!(shape["greeting"], "Hello Ada!");
    assert_eq!(shape["tags"], json!(["new", "gold"]));
    assert_eq!(shape["total"].as_f64(), Some(5.0));
    assert_eq!(run.output["nodes"]["company"]["port"], "true");
    assert_eq!(run.output["nodes"]["both"]["output"]["b2b"], true);
    assert_eq!(
        state(&c, "pause")["Seconds"]
            .as_str()
            .map(|s| s.starts_with("{%")),
        Some(true)
    );
    assert_eq!(run.output["nodes"]["send"]["output"]["messageId"], "m-1");
    // A consumer address takes the false port: nothing after the condition runs.
    let gmail =
        json!({"body": {"email": "ada@gmail.com", "name": "Ada", "tier": "gold", "lines": []}});
    let run = Interp::run(&c, &Oracle::default(), gmail)
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(run.output["nodes"]["company"]["port"], "false");
    assert!(!run.started.iter().any(|s| s.node == "save"));
}

#[test]
fn jsonata_mode_tasks_catch_errors_in_the_catcher() {
    let c = ok(jsonata_doc(
        vec![
            json!({"id": "start", "type": "trigger.manual"}),
            json!({"id": "call", "type": "action.http", "config": {"url": "https://x/{{ $nodes.start.output.id }}"}, "onError": {"action": "route"}}),
            json!({"id": "ok", "type": "action.http", "config": {"url": "x"}}),
            json!({"id": "alert", "type": "action.notify", "config": {"url": "x", "text": "failed: {{ $nodes.call.error.Error }}"}}),
        ],
        vec![
            ("start", "out", "call"),
            ("call", "out", "ok"),
            ("call", "error", "alert"),
        ],
    ));
    let call = state(&c, "call");
    assert!(
        call["Arguments"]["Payload"]["config"]["url"]
            .as_str()
            .unwrap()
            .starts_with("{%")
    );
    assert!(call["Catch"][0]["Output"].is_string());
    assert!(
        c.definition["States"].get("call.caught").is_none(),
        "no separate catch state in JSONata mode"
    );
    let oracle = Oracle {
        failures: [("call".to_owned(), "ConcertMaster.Http.5xx".to_owned())].into(),
        ..Oracle::default()
    };
    let run = Interp::run(&c, &oracle, json!({"id": 7}))
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(run.output["nodes"]["call"]["port"], "error");
    assert_eq!(
        run.output["nodes"]["call"]["error"]["Error"],
        "ConcertMaster.Http.5xx"
    );
    let started: Vec<&str> = run.started.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(started, ["start", "call", "alert"]);
}

#[test]
fn jsonata_mode_loops() {
    let c = ok(jsonata_doc(
        vec![
            json!({"id": "start", "type": "trigger.manual"}),
            json!({"id": "each", "type": "flow.foreach", "config": {"items": "{{ $nodes.start.output.rows[size > 1] }}"}}),
            json!({"id": "row", "type": "transform.set", "config": {"fields": {"id": "{{ $item.id }}", "at": "{{ $index }}"}}}),
            json!({"id": "count", "type": "transform.set", "config": {"fields": {"n": "{{ $count($nodes.each.output) }}"}}}),
        ],
        vec![
            ("start", "out", "each"),
            ("each", "each", "row"),
            ("each", "done", "count"),
        ],
    ));
    let rows =
        json!({"rows": [{"id": "a", "size": 5}, {"id": "b", "size": 1}, {"id": "c", "size": 9}]});
    let run = Interp::run(&c, &Oracle::default(), rows)
        .map_err(|f| f.cause)
        .unwrap();
    let ids: Vec<&str> = run.output["nodes"]["each"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(
        run.output["nodes"]["count"]["output"]["n"].as_f64(),
        Some(2.0)
    );
}

#[test]
fn the_jsonata_example_routes_business_signups_to_sales() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/signup-triage-jsonata.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let c = ok(doc);
    let business =
        json!({"body": {"email": " Grace@Hopper.dev ", "name": "grace  hopper", "seats": 12}});
    let run = Interp::run(&c, &Oracle::default(), business)
        .map_err(|f| f.cause)
        .unwrap();
    let person = &run.output["nodes"]["person"]["output"];
    assert_eq!(person["email"], "grace@hopper.dev");
    assert_eq!(person["domain"], "hopper.dev");
    let started: Vec<&str> = run.started.iter().map(|s| s.node.as_str()).collect();
    assert!(
        started.contains(&"notify_sales")
            && started.contains(&"store_lead")
            && !started.contains(&"onboarding"),
        "{started:?}"
    );
    let consumer = json!({"body": {"email": "ada@gmail.com", "name": "ada"}});
    let run = Interp::run(&c, &Oracle::default(), consumer)
        .map_err(|f| f.cause)
        .unwrap();
    let started: Vec<&str> = run.started.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(started, ["signup", "person", "business", "onboarding"]);
}

#[test]
fn jsonata_parallel_branches_return_only_their_own_entries() {
    let c = ok(jsonata_doc(
        vec![
            json!({"id": "start", "type": "trigger.manual"}),
            json!({"id": "a", "type": "action.http", "config": {"url": "x"}}),
            json!({"id": "b", "type": "action.http", "config": {"url": "x"}}),
            json!({"id": "j", "type": "transform.merge", "config": {"sources": ["{{ $nodes.a.output }}", "{{ $nodes.b.output }}"]}}),
        ],
        vec![
            ("start", "out", "a"),
            ("start", "out", "b"),
            ("a", "out", "j"),
            ("b", "out", "j"),
        ],
    ));
    let branch_end = &state(&c, "parallel.1")["Branches"][0]["States"]["a"]["Output"];
    assert!(
        branch_end.as_str().unwrap().contains("$sift"),
        "{branch_end}"
    );
    let run = Interp::run(&c, &Oracle::default(), json!({}))
        .map_err(|f| f.cause)
        .unwrap();
    assert_eq!(run.output["nodes"]["j"]["output"], json!({"from": "b"}));
    assert_eq!(run.output["nodes"]["a"]["port"], "out");
    assert_eq!(
        run.output["nodes"]["start"]["port"], "out",
        "entries from before the Parallel survive"
    );
}
