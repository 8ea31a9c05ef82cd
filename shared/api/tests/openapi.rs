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

/// The schema `v` names, following `$ref`s and `allOf`s of one element.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            v = doc.pointer(r.strip_prefix('#').unwrap()).unwrap();
        } else if let Some([one]) = v.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            v = one;
        } else {
            return v;
        }
    }
}

/// Free-form objects in response bodies: nothing more can be said of them.
const FREE_FORM: &[(&str, &str)] = &[
    // The data and decision of an approval, the payload of a dead letter, a dataset record:
    // whatever the workflow put there.
    ("ApprovalView", "data"),
    ("ApprovalView", "decision"),
    ("DeadLetterView", "payload"),
    ("RecordView", "data"),
    // Saved workflow documents (they parse, but need not validate).
    ("WorkflowDoc", "definition"),
    ("WorkflowVersion", "definition"),
    // An ASL definition, JSON Schemas.
    ("Compiled", "definition"),
    ("FormDefinition", "schema"),
    ("NodeTypeDescriptor", "configSchema"),
    // A node's config (validated against its type's config schema) and tools' metadata.
    ("Node", "config"),
    ("Node", "metadata"),
    ("Workflow", "metadata"),
];

/// An object schema that says nothing about its members (`{"type": "object"}`, with
/// `additionalProperties: true` or not).
fn free_object(v: &Value) -> bool {
    let t = &v["type"];
    (t == "object" || t.as_array().is_some_and(|a| a.contains(&"object".into())))
        && [
            "properties",
            "patternProperties",
            "$ref",
            "allOf",
            "oneOf",
            "anyOf",
        ]
        .iter()
        .all(|k| v.get(*k).is_none())
        && v.get("additionalProperties").is_none_or(|a| *a == true)
}

#[test]
fn no_object_is_bare() {
    // openapi-typescript makes `{"type": "object"}` `Record<string, never>`; the document says
    // `additionalProperties: true` (the same in JSON Schema) for free-form objects.
    fn walk(v: &Value, at: &str) {
        match v {
            Value::Object(m) => {
                if free_object(v) {
                    assert_eq!(
                        m.get("additionalProperties"),
                        Some(&Value::Bool(true)),
                        "{at}"
                    );
                }
                m.iter().for_each(|(k, x)| walk(x, &format!("{at}/{k}")));
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{at}/{i}"))),
            _ => {}
        }
    }
    walk(&cm_api::openapi::document(), "");
}

/// Every object schema reachable from `v`: (component name, schema).
fn reachable<'a>(
    doc: &'a Value,
    v: &'a Value,
    name: &str,
    seen: &mut Vec<String>,
    out: &mut Vec<(String, &'a Value)>,
) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let target = r.rsplit('/').next().unwrap().to_owned();
                if !seen.contains(&target) {
                    seen.push(target.clone());
                    let t = doc.pointer(r.strip_prefix('#').unwrap()).unwrap();
                    reachable(doc, t, &target, seen, out);
                }
            }
            if m.contains_key("properties") {
                out.push((name.to_owned(), v));
            }
            for x in m.values() {
                reachable(doc, x, name, seen, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| reachable(doc, x, name, seen, out)),
        _ => {}
    }
}

#[test]
fn every_successful_json_response_has_a_schema() {
    let doc = cm_api::openapi::document();
    let mut bodies = 0;
    let mut objects = Vec::new();
    let mut seen = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(schema) = response.pointer("/content/application~1json/schema") else {
                    continue;
                };
                if !status.starts_with('2') || path == "/openapi.json" {
                    continue;
                }
                bodies += 1;
                let s = resolve(&doc, schema);
                assert!(
                    schema.get("$ref").is_some() || s.get("properties").is_some(),
                    "{method} {path} {status}: the body has no schema ({schema})"
                );
                reachable(&doc, schema, "", &mut seen, &mut objects);
            }
        }
    }
    assert!(bodies >= 30, "{bodies}");
    // …and no member of a response body is an object of unknown shape, except free-form
    // values (`true` / `{}` schemas, e.g. a run's input and output, are fine: any JSON).
    for (name, schema) in objects {
        for (property, p) in schema["properties"].as_object().unwrap() {
            let p = resolve(&doc, p);
            let items = &p["items"];
            assert!(
                !(free_object(p) || free_object(items))
                    || FREE_FORM.contains(&(name.as_str(), property.as_str())),
                "{name}.{property} is an object of unknown shape: {p}"
            );
        }
    }
}

#[test]
fn the_response_table_points_at_components() {
    let doc = cm_api::openapi::document();
    for (path, method, status, name) in cm_api::openapi::RESPONSE_SCHEMAS {
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}/content/application~1json/schema/$ref",
            path.replace('/', "~1")
        );
        assert_eq!(
            doc.pointer(&pointer).and_then(Value::as_str),
            Some(format!("#/components/schemas/{name}").as_str()),
            "{method} {path} {status}: no such response, or not {name}"
        );
        assert!(
            doc["components"]["schemas"][*name]["properties"].is_object(),
            "{name}"
        );
    }
}

#[test]
fn response_schemas_share_names_only_with_equal_or_request_side_schemas() {
    let (schemas, clashes) = cm_api::openapi::response_schemas();
    assert!(clashes.is_empty(), "{clashes:?}");
    let doc = cm_api::openapi::document();
    // The workflow document's definitions (deserialisation: defaulted fields optional) stay;
    // what the API serialises of those types (a node type's `defaultRetry`) validates against
    // them too.
    let workflow = cm_model::workflow_json_schema();
    let request_side = workflow["$defs"].as_object().unwrap();
    for (name, schema) in schemas {
        let text = schema
            .to_string()
            .replace("#/$defs/", "#/components/schemas/");
        let schema: Value = serde_json::from_str(&text).unwrap();
        let documented = &doc["components"]["schemas"][&name];
        // The same members (`document()` gives some of them a better schema: a `Value` that
        // is a workflow document, a JSON object).
        let members = |v: &Value| {
            let keys: Vec<String> = v["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (keys, v["required"].clone())
        };
        assert!(
            *documented == schema
                || request_side.contains_key(&name)
                || (schema.get("properties").is_some() && members(documented) == members(&schema)),
            "{name}: another schema of that name is in the document:\n{documented}\n{schema}"
        );
    }
}
