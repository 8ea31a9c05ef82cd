//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT with claims sub, org, role (viewer|editor|admin), exp. Locally: `concertmaster token`.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ConcertMaster API",
        description = "Workflows (drawn or written as JSON) compiled to Amazon States Language and run on the embedded engine or AWS Step Functions. Every error is `{code, message, details}`; every authenticated call is scoped to the token's organisation.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::routes::create_workflow,
        crate::routes::list_workflows,
        crate::routes::get_workflow,
        crate::routes::update_workflow,
        crate::routes::delete_workflow,
        crate::routes::list_versions,
        crate::routes::get_version,
        crate::routes::validate_doc,
        crate::routes::compile_workflow,
        crate::routes::publish,
        crate::routes::list_templates,
        crate::routes::from_template,
        crate::routes::list_node_types,
        crate::routes::get_node_type,
        crate::routes::start_run,
        crate::routes::get_run,
        crate::routes::list_runs,
        crate::routes::cancel_run,
        crate::routes::redrive_run,
        crate::routes::run_events,
        crate::routes::run_nodes,
        crate::routes::get_form,
        crate::routes::submit_form,
        crate::routes::list_responses,
        crate::routes::hook,
        crate::routes::list_approvals,
        crate::routes::get_approval,
        crate::routes::decide,
        crate::datasets::list_records,
        crate::dead_letters::list_dead_letters,
        crate::dead_letters::redrive_dead_letter,
        crate::dead_letters::delete_dead_letter,
        crate::triggers::send_message,
        crate::routes::list_audit,
        crate::routes::healthz,
    ),
    components(schemas(crate::error::ErrorBody, crate::live::LiveEvent)),
    modifiers(&Security),
    tags(
        (name = "workflows", description = "Create, version, validate, compile and publish workflows"),
        (name = "node types", description = "The node palette"),
        (name = "runs", description = "Start, follow, cancel and redrive runs"),
        (name = "forms", description = "Public form pages and their responses"),
        (name = "webhooks", description = "Public hook URLs"),
        (name = "approvals", description = "Decide approval steps"),
        (name = "dead letters", description = "Trigger events whose run could not start: list, re-drive, delete"),
        (name = "queues", description = "Feed the local queues of queue-triggered workflows (embedded deployment)"),
        (name = "datasets", description = "Records that store nodes wrote"),
        (name = "audit", description = "Who did what"),
        (name = "operations", description = "Health, metrics, this document"),
    )
)]
struct Doc;

/// The document as JSON (OpenAPI 3.1), with the endpoints annotations cannot express
/// (`/ws`, `/metrics`, `/openapi.json`) added.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(Doc::openapi()).unwrap_or_default();
    let err = json!({"$ref": "#/components/schemas/ErrorBody"});
    let paths = &mut doc["paths"];
    paths["/ws"] = json!({"get": {
        "tags": ["runs"],
        "summary": "Live run status (WebSocket)",
        "description": "Upgrade to a WebSocket; authenticate with the bearer header or `?token=`. Send `{\"action\":\"subscribe\",\"topic\":\"run:<id>\",\"after\":<eventId>}` or `workflow:<id>`; receive LiveEvent frames with a `topic`, heartbeats every 20 s. See the LiveEvent schema.",
        "parameters": [{"name": "token", "in": "query", "required": false, "schema": {"type": "string"}, "description": "Bearer token (browsers)"}],
        "responses": {
            "101": {"description": "Switching to the WebSocket protocol"},
            "400": {"description": "Not a WebSocket upgrade", "content": {"application/json": {"schema": err}}},
            "401": {"description": "Missing or invalid token", "content": {"application/json": {"schema": err}}}
        },
        "security": [{"bearer": []}]
    }});
    paths["/metrics"] = json!({"get": {
        "tags": ["operations"], "summary": "Prometheus metrics (text exposition format)",
        "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}
    }});
    paths["/openapi.json"] = json!({"get": {
        "tags": ["operations"], "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}
    }});
    // The workflow document's own JSON Schema (cm-model), its definitions hoisted into the
    // components, in place of the free-form objects utoipa cannot describe.
    let mut workflow = cm_model::workflow_json_schema();
    let defs = workflow
        .as_object_mut()
        .and_then(|m| m.remove("$defs"))
        .unwrap_or_default();
    workflow.as_object_mut().map(|m| m.remove("$schema"));
    let mut schemas = serde_json::Map::new();
    schemas.insert("Workflow".into(), workflow);
    if let Value::Object(defs) = defs {
        schemas.extend(defs);
    }
    let mut schemas = Value::Object(schemas);
    rewrite_refs(&mut schemas);
    if let Some(components) = doc["components"]["schemas"].as_object_mut()
        && let Value::Object(extra) = schemas
    {
        components.extend(extra);
    }
    let workflow_ref = json!({"$ref": "#/components/schemas/Workflow"});
    for body in ["CreateWorkflow", "UpdateWorkflow"] {
        if let Some(p) = doc["components"]["schemas"][body]["properties"].as_object_mut() {
            let description = p["definition"]["description"].clone();
            p.insert(
                "definition".into(),
                json!({"allOf": [workflow_ref], "description": description}),
            );
        }
    }
    if let Some(content) =
        doc.pointer_mut("/paths/~1v1~1validate/post/requestBody/content/application~1json")
    {
        content["schema"] = workflow_ref.clone();
    }

    // Responses every operation of a kind can give, documented once here rather than on
    // each handler: authentication, roles, malformed requests, body limits.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in ops.iter_mut() {
                let secured = op.get("security").is_some();
                let has_params = op.get("parameters").is_some_and(|p| {
                    p.as_array()
                        .is_some_and(|a| a.iter().any(|p| p["in"] == "query" || p["in"] == "path"))
                });
                let has_body = op.get("requestBody").is_some();
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                let mut add = |code: &str, description: &str| {
                    responses.entry(code.to_owned()).or_insert_with(|| {
                        json!({"description": description, "content": {"application/json": {"schema": err}}})
                    });
                };
                if secured {
                    add("401", "Missing, invalid or expired bearer token");
                    if method != "get" {
                        add("403", "The token's role does not allow this");
                    }
                }
                if has_params || has_body || method != "get" {
                    add(
                        "400",
                        "Malformed request (parameter, cursor, limit or JSON body)",
                    );
                }
                if has_body {
                    add("413", "The body exceeds the size limit");
                    add("415", "The body is not JSON (Content-Type)");
                }
            }
        }
    }
    doc
}

/// `#/$defs/X` → `#/components/schemas/X`.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            m.values_mut().for_each(rewrite_refs);
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
