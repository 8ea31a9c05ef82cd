use super::*;
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn builtins_register_and_cover_every_category() {
    let r = Registry::builtin();
    assert!(r.len() >= 20, "{}", r.len());
    for c in Category::ALL {
        assert!(
            !r.list(&ListFilter {
                category: Some(c),
                search: None
            })
            .is_empty(),
            "no built-in {c:?}"
        );
    }
    for id in [
        "trigger.manual",
        "trigger.webhook",
        "trigger.form",
        "trigger.schedule",
        "trigger.queue",
        "transform.set",
        "transform.filter",
        "transform.aggregate",
        "transform.validate",
        "transform.merge",
        "condition.if",
        "condition.switch",
        "action.http",
        "action.store",
        "action.queue",
        "action.notify",
        "flow.wait",
        "flow.approval",
        "flow.foreach",
        "flow.subworkflow",
    ] {
        assert!(r.get(id, 1).is_ok(), "{id} missing");
    }
}

#[test]
fn lookup_errors_name_what_exists() {
    let r = Registry::builtin();
    assert!(matches!(
        r.get("action.nope", 1),
        Err(RegistryError::UnknownType { .. })
    ));
    match r.get("action.http", 7) {
        Err(RegistryError::UnknownVersion { available, .. }) => assert_eq!(available, vec![1]),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
}

#[test]
fn config_validation_reports_pointers() {
    let r = Registry::builtin();
    let http = r.get("action.http", 1).expect("http");
    assert!(
        http.validate_config(&json!({"url": "https://x"}))
            .is_empty()
    );
    let errors =
        http.validate_config(&json!({"url": "https://x", "method": "FETCH", "timeoutSeconds": 0}));
    let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert!(pointers.contains(&"/method"), "{errors:?}");
    assert!(pointers.contains(&"/timeoutSeconds"), "{errors:?}");
    let missing = http.validate_config(&json!({}));
    assert_eq!(missing.len(), 1);
    assert!(missing[0].message.contains("url"), "{missing:?}");
}

#[test]
fn rule_language_nests() {
    let r = Registry::builtin();
    let iff = r.get("condition.if", 1).expect("if");
    let ok = json!({"rules": [{"any": [{"field": "$.a", "op": "gt", "value": 3}, {"not": {"field": "$.b", "op": "exists"}}]}]});
    assert!(
        iff.validate_config(&ok).is_empty(),
        "{:?}",
        iff.validate_config(&ok)
    );
    let bad = json!({"rules": [{"field": "a", "op": "gt"}]});
    assert!(!iff.validate_config(&bad).is_empty());
}

#[test]
fn ports_follow_config() {
    let r = Registry::builtin();
    let switch = r.get("condition.switch", 1).expect("switch").descriptor();
    let ports: Vec<_> = switch
        .output_ports(
            &json!({"cases": [{"port": "gold", "rules": []}, {"port": "silver", "rules": []}]}),
        )
        .into_iter()
        .map(|p| (p.name, p.required))
        .collect();
    assert_eq!(
        ports,
        [
            ("gold".into(), true),
            ("silver".into(), true),
            ("default".into(), false)
        ]
    );
    let validate = r
        .get("transform.validate", 1)
        .expect("validate")
        .descriptor();
    assert_eq!(
        validate.output_ports(&json!({"onInvalid": "route"})).len(),
        2
    );
    assert_eq!(validate.output_ports(&json!({}))[0].name, "out");
}

#[test]
fn filter_by_category_and_search() {
    let r = Registry::builtin();
    let triggers = r.list(&ListFilter {
        category: Some(Category::Trigger),
        search: None,
    });
    assert_eq!(triggers.len(), 5);
    let found = r.list(&ListFilter {
        category: None,
        search: Some("HMAC".into()),
    });
    assert_eq!(
        found.iter().map(|d| d.type_id.as_str()).collect::<Vec<_>>(),
        ["trigger.webhook"]
    );
}

fn plugin_yaml(type_id: &str) -> String {
    format!(
        "type: {type_id}\nversion: 1\ncategory: action\ntitle: CRM lookup\ndescription: Looks a contact up\n\
         configSchema:\n  type: object\n  properties:\n    email: {{type: string}}\n  required: [email]\n\
         execution:\n  kind: plugin\n  executor:\n    httpUrl: http://127.0.0.1:9000/run\n    lambdaArn: arn:aws:lambda:eu-west-1:123456789012:function:crm\n"
    )
}

#[test]
fn plugins_load_from_a_folder_and_bad_files_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("crm.yaml"), plugin_yaml("acme.crm_lookup")).expect("write");
    std::fs::write(dir.path().join("broken.json"), "{ not json").expect("write");
    std::fs::write(dir.path().join("clash.yml"), plugin_yaml("action.http")).expect("write");
    std::fs::write(dir.path().join("README.md"), "ignored").expect("write");
    let mut r = Registry::builtin();
    let before = r.len();
    let errors = r.load_plugin_dir(dir.path()).expect("folder readable");
    assert_eq!(r.len(), before + 1);
    let crm = r.get("acme.crm_lookup", 1).expect("plugin registered");
    assert!(matches!(crm.source(), Source::Plugin(_)));
    assert_eq!(crm.validate_config(&json!({})).len(), 1);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("broken.json")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("clash.yml") && m.contains("already registered")),
        "{messages:?}"
    );
}

#[test]
fn plugin_descriptors_are_checked() {
    let mut r = Registry::empty();
    let mut d: NodeTypeDescriptor = serde_norway::from_str(&plugin_yaml("acme.x")).expect("yaml");
    d.execution = Execution::Plugin {
        executor: PluginExecutor {
            lambda_arn: None,
            http_url: None,
        },
    };
    assert!(r.register(d.clone()).is_err(), "executor without target");
    d.execution = Execution::NodeRunner { callback: false };
    d.config_schema = json!({"type": "nonsense"});
    let err = r.register(d.clone()).expect_err("bad schema");
    assert!(err.to_string().contains("configSchema"), "{err}");
    d.type_id = "NoDots".into();
    assert!(r.register(d.clone()).is_err());
    d.type_id = "acme.hook".into();
    d.config_schema = json!({"type": "object"});
    d.category = Category::Trigger;
    d.execution = Execution::Plugin {
        executor: PluginExecutor {
            lambda_arn: Some("f".into()),
            http_url: None,
        },
    };
    let err = r.register(d).expect_err("plugin trigger");
    assert!(err.to_string().contains("cannot be triggers"), "{err}");
}

#[test]
fn watcher_reloads_when_a_descriptor_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = mpsc::channel();
    let _w = watch::PluginWatcher::start(dir.path().to_owned(), Registry::builtin(), move |r| {
        let _ = tx.send(r.map(|r| r.registry.get("acme.crm_lookup", 1).is_ok()));
    })
    .expect("watch");
    std::fs::write(dir.path().join("crm.yaml"), plugin_yaml("acme.crm_lookup")).expect("write");
    // Several events may arrive (create, modify); wait until one sees the type.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let seen = rx
            .recv_timeout(left)
            .expect("reload event")
            .expect("folder readable");
        if seen {
            break;
        }
    }
}

#[test]
fn type_id_rules() {
    assert!(is_valid_type_id("acme.crm_lookup"));
    assert!(is_valid_type_id("a.b.c2"));
    for bad in ["acme", "Acme.x", "acme.", ".x", "acme.x-y"] {
        assert!(!is_valid_type_id(bad), "{bad}");
    }
}
