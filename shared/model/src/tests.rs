use super::*;
use proptest::prelude::*;
use serde_json::json;

const SAMPLE: &str = r#"{
  "id": "lead-intake",
  "name": "Lead intake",
  "version": 3,
  "nodes": [
    {"id": "form", "type": "trigger.form", "config": {"title": "Contact"}, "position": {"x": 0, "y": 0}},
    {"id": "check", "type": "condition.if", "typeVersion": 1, "config": {"rules": []},
     "retry": [{"errors": ["States.ALL"], "maxAttempts": 2, "jitter": "full"}],
     "timeoutSeconds": 10, "onError": {"action": "route"}}
  ],
  "edges": [{"from": "form", "to": "check"}, {"from": "check", "fromPort": "true", "to": "form"}],
  "settings": {"queryLanguage": "JSONata", "executionType": "express"},
  "metadata": {"viewport": {"zoom": 1.5}}
}"#;

#[test]
fn parses_every_field() {
    let w = from_json_str(SAMPLE).expect("parses");
    assert_eq!(w.id, "lead-intake");
    assert_eq!(w.version, 3);
    assert_eq!(w.nodes[0].type_version, 1, "typeVersion defaults to 1");
    assert_eq!(w.edges[0].from_port, "out");
    assert_eq!(w.edges[0].to_port, "in");
    assert_eq!(w.edges[1].from_port, "true");
    let check = w.node("check").expect("node");
    assert_eq!(
        check.on_error.as_ref().map(|e| e.action),
        Some(ErrorAction::Route)
    );
    let retry = &check.retry.as_ref().expect("retry")[0];
    assert_eq!(
        (
            retry.max_attempts,
            retry.interval_seconds,
            retry.backoff_rate
        ),
        (2, 1, 2.0)
    );
    assert_eq!(retry.jitter, Some(Jitter::Full));
    assert_eq!(w.settings.query_language, QueryLanguage::JSONata);
    assert_eq!(w.settings.execution_type, ExecutionTypeSetting::Express);
}

#[test]
fn round_trips_losslessly() {
    let w = from_json_str(SAMPLE).expect("parses");
    let again = from_json_str(&w.to_json_pretty()).expect("re-parses");
    assert_eq!(w, again);
    // Serialising the re-parsed value gives byte-identical text: the canonical form is stable.
    assert_eq!(w.to_json_pretty(), again.to_json_pretty());
}

#[test]
fn config_key_order_is_preserved() {
    let w = from_json_str(
        r#"{"id":"w","name":"n","nodes":[{"id":"a","type":"t","config":{"z":1,"a":2,"m":3}}]}"#,
    )
    .expect("parses");
    let keys: Vec<_> = w.nodes[0]
        .config
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["z", "a", "m"]);
}

#[test]
fn syntax_error_has_line_and_column() {
    let err = from_json_str("{\n  \"id\": \"x\",\n  \"name\": oops\n}").expect_err("fails");
    match err {
        ParseError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 11)),
        other => panic!("expected syntax error, got {other:?}"),
    }
}

#[test]
fn truncated_input_is_a_syntax_error() {
    let err = from_json_str("{\"id\": \"x\", \"nodes\": [").expect_err("fails");
    assert_eq!(err.code(), "parse.syntax");
}

#[test]
fn trailing_garbage_is_a_syntax_error() {
    let err = from_json_str(r#"{"id":"w","name":"n","nodes":[]} x"#).expect_err("fails");
    assert_eq!(err.code(), "parse.syntax");
}

#[test]
fn shape_error_names_the_path() {
    let err = from_json_str(
        r#"{"id":"w","name":"n","nodes":[{"id":"a","type":"t"},{"id":"b","type":"t","typeVersion":"two"}]}"#,
    )
    .expect_err("fails");
    match &err {
        ParseError::Shape { path, line, .. } => {
            assert_eq!(path, "nodes[1].typeVersion");
            assert_eq!(*line, 1);
        }
        other => panic!("expected shape error, got {other:?}"),
    }
    assert!(err.to_string().contains("nodes[1].typeVersion"), "{err}");
    assert_eq!(err.code(), "parse.shape");
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let err = from_json_str(r#"{"id":"w","name":"n","nodes":[{"id":"a","type":"t","confg":{}}]}"#)
        .expect_err("fails");
    let text = err.to_string();
    assert!(
        text.contains("nodes[0]") && text.contains("confg"),
        "{text}"
    );
}

#[test]
fn missing_required_field_is_reported() {
    let err = from_json_str(r#"{"id":"w","nodes":[]}"#).expect_err("fails");
    assert!(err.to_string().contains("missing field `name`"), "{err}");
}

#[test]
fn oversize_documents_are_refused_before_parsing() {
    let big = vec![b' '; MAX_WORKFLOW_BYTES + 1];
    assert_eq!(
        from_json_slice(&big).expect_err("too large").code(),
        "parse.too_large"
    );
}

#[test]
fn from_value_reports_paths() {
    let err = from_json_value(json!({"id": "w", "name": "n", "nodes": [{"id": 5, "type": "t"}]}))
        .expect_err("fails");
    assert!(err.to_string().starts_with("nodes[0].id"), "{err}");
}

#[test]
fn node_id_rules() {
    for ok in ["a", "_x", "fetch_records2", &"a".repeat(64)] {
        assert!(is_valid_node_id(ok), "{ok}");
    }
    for bad in ["", "1a", "a-b", "a.b", "a b", "ü", &"a".repeat(65)] {
        assert!(!is_valid_node_id(bad), "{bad}");
    }
    assert!(is_valid_workflow_id("lead-intake_2"));
    assert!(!is_valid_workflow_id("lead intake"));
}

#[test]
fn schema_describes_the_format() {
    let schema = workflow_json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["properties"]["nodes"].is_object());
    assert_eq!(schema["additionalProperties"], json!(false));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z{}$. ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_node() -> impl Strategy<Value = Node> {
    (
        "[a-z_][a-z0-9_]{0,10}",
        "[a-z]{1,8}\\.[a-z]{1,8}",
        1u32..4,
        arb_json(),
        proptest::option::of((-1e6f64..1e6, -1e6f64..1e6)),
        proptest::option::of(0u32..1000),
        proptest::option::of(prop_oneof![
            Just(ErrorAction::Fail),
            Just(ErrorAction::Continue),
            Just(ErrorAction::Route)
        ]),
    )
        .prop_map(|(id, ty, version, config, pos, timeout, action)| {
            let mut n = Node::new(id, ty);
            n.type_version = version;
            n.config = json!({ "value": config });
            n.position = pos.map(|(x, y)| Position { x, y });
            n.timeout_seconds = timeout;
            n.on_error = action.map(|action| ErrorHandling {
                action,
                errors: vec![],
            });
            n
        })
}

proptest! {
    #[test]
    fn any_workflow_round_trips(
        nodes in prop::collection::vec(arb_node(), 0..6),
        ports in prop::collection::vec(("[a-z]{1,4}", "[a-z]{1,4}", "[a-z]{1,4}"), 0..6),
        description in "[ -~]{0,20}",
    ) {
        let w = Workflow {
            id: "wf".into(),
            name: "name".into(),
            description,
            version: 2,
            nodes,
            edges: ports.into_iter().map(|(a, p, b)| Edge::from_port(a, p, b)).collect(),
            settings: Settings::default(),
            metadata: Map::new(),
        };
        let text = w.to_json_pretty();
        let back = from_json_str(&text).expect("re-parses");
        prop_assert_eq!(&back, &w);
        prop_assert_eq!(back.to_json_pretty(), text);
    }
}
