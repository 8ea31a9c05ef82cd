//! The OpenAPI document: 3.1, every route documented, every reference resolvable, every
//! operation with its error responses.
#![allow(clippy::unwrap_used)]

use serde_json::Value;

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_covers_every_route_and_resolves() {
    let doc = cm_api::openapi::document();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let src = include_str!("../src/routes.rs");
    // Every `.route("<path>", …)` of the router is a documented path.
    let routes: Vec<&str> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .map(|l| &l[..l.find('"').unwrap()])
        .collect();
    assert!(routes.len() >= 25, "{routes:?}");
    for r in &routes {
        assert!(doc["paths"].get(*r).is_some(), "{r} is not documented");
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            let secured = op.get("security").is_some();
            if secured {
                assert!(
                    responses.contains_key("401") || path == "/ws",
                    "{method} {path} is secured but does not document 401"
                );
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
