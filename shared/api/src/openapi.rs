//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use schemars::JsonSchema;
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// `{items: [T]}`: a list that is not paged (node types, history events, node executions).
/// Only describes: those handlers build the JSON themselves.
#[derive(JsonSchema)]
pub struct Items<T> {
    /// The items.
    pub items: Vec<T>,
}

/// One execution history event in Step Functions' `GetExecutionHistory` shape, from the
/// embedded engine and from Step Functions alike: `input` / `output` in the details are JSON
/// text, as AWS returns them. Only describes: the runtimes build the JSON
/// ([`crate::runtime::RuntimeEvent::aws`]).
#[derive(JsonSchema)]
#[schemars(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// Event id (1, 2, …).
    pub id: u64,
    /// The event before it (0 for the first).
    pub previous_event_id: u64,
    /// When (RFC 3339).
    pub timestamp: String,
    /// Step Functions event type (`ExecutionStarted`, `TaskStateEntered`, …).
    #[schemars(rename = "type")]
    pub kind: String,
    /// The details object, named after the type (`stateEnteredEventDetails`,
    /// `taskSucceededEventDetails`, …).
    #[schemars(flatten)]
    pub details: Map<String, Value>,
}

/// Response bodies the handlers' annotations give as `Object` (their Rust types are other
/// crates' serde types, which utoipa cannot describe): (path, method, status) → the component
/// schema below that describes them.
#[rustfmt::skip]
pub const RESPONSE_SCHEMAS: &[(&str, &str, &str, &str)] = &[
    ("/v1/workflows", "get", "200", "WorkflowPage"),
    ("/v1/templates", "get", "200", "WorkflowPage"),
    ("/v1/workflows/{id}/versions", "get", "200", "WorkflowVersionPage"),
    ("/v1/workflows/{id}/versions/{version}", "get", "200", "WorkflowVersion"),
    ("/v1/workflows/{id}/compile", "get", "200", "Compiled"),
    ("/v1/workflows/{id}/runs", "post", "201", "RunRecord"),
    ("/v1/workflows/{id}/runs", "post", "200", "RunRecord"),
    ("/v1/workflows/{id}/responses", "get", "200", "FormResponsePage"),
    ("/v1/node-types", "get", "200", "NodeTypeList"),
    ("/v1/node-types/{type}", "get", "200", "NodeTypeDescriptor"),
    ("/v1/runs", "get", "200", "RunPage"),
    ("/v1/runs/{id}", "get", "200", "RunRecord"),
    ("/v1/runs/{id}/cancel", "post", "200", "RunRecord"),
    ("/v1/runs/{id}/redrive", "post", "200", "RunRecord"),
    ("/v1/runs/{id}/events", "get", "200", "HistoryEventList"),
    ("/v1/runs/{id}/nodes", "get", "200", "NodeExecutionList"),
    ("/v1/forms/{formId}", "get", "200", "FormDefinition"),
    ("/v1/dead-letters/{id}/redrive", "post", "200", "RunRecord"),
    ("/v1/audit", "get", "200", "AuditEventPage"),
];

/// Properties of component schemas whose Rust type is another crate's (`Object` in the
/// annotations) or a `serde_json::Value` of known shape: (schema, property, what it is).
const PROPERTY_SCHEMAS: &[(&str, &str, Property)] = &[
    ("WorkflowDoc", "workflow", Property::One("WorkflowSummary")),
    ("WorkflowDoc", "definition", Property::SavedWorkflow),
    ("WorkflowDoc", "findings", Property::Many("Finding")),
    ("Validation", "findings", Property::Many("Finding")),
    ("Published", "workflow", Property::One("WorkflowSummary")),
    ("WorkflowVersion", "definition", Property::SavedWorkflow),
    ("Compiled", "definition", Property::Object),
    ("FormDefinition", "schema", Property::Object),
    ("NodeTypeDescriptor", "configSchema", Property::JsonSchema),
];

/// A property's schema.
enum Property {
    /// The component.
    One(&'static str),
    /// An array of the component.
    Many(&'static str),
    /// A JSON object (an ASL definition, a form's JSON Schema).
    Object,
    /// A JSON Schema: an object or a boolean.
    JsonSchema,
    /// A saved workflow document: the body the server accepted, verbatim. It parses, but need
    /// not validate (saving does not require that; its findings say what is wrong), so it
    /// may break the Workflow schema's patterns and minimums, or have a node config that is
    /// not an object.
    SavedWorkflow,
}

/// The component schemas of the response bodies, derived with schemars from the types the
/// handlers serialize (cm-store, cm-compiler, cm-registry, cm-nodes), as they are serialized
/// (`Option` fields without `skip_serializing_if` are required and nullable), with the
/// definitions they use. Names clashing with different schemas are returned in the second
/// map (a test keeps it empty).
pub fn response_schemas() -> (Map<String, Value>, Map<String, Value>) {
    let mut g = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut out = Map::new();
    macro_rules! add {
        ($($name:literal => $ty:ty,)*) => {
            $(out.insert($name.into(), <$ty>::json_schema(&mut g).to_value());)*
        };
    }
    add! {
        "WorkflowSummary" => cm_store::WorkflowSummary,
        "WorkflowPage" => cm_store::Page<cm_store::WorkflowSummary>,
        "WorkflowVersion" => cm_store::WorkflowVersion,
        "WorkflowVersionPage" => cm_store::Page<cm_store::WorkflowVersion>,
        "Finding" => cm_compiler::Finding,
        "Compiled" => cm_compiler::Compiled,
        "RunRecord" => cm_store::RunRecord,
        "RunPage" => cm_store::Page<cm_store::RunRecord>,
        "NodeExecutionList" => Items<cm_store::NodeExecution>,
        "HistoryEventList" => Items<HistoryEvent>,
        "NodeTypeDescriptor" => cm_registry::NodeTypeDescriptor,
        "NodeTypeList" => Items<cm_registry::NodeTypeDescriptor>,
        "FormDefinition" => cm_nodes::trigger::form::FormDefinition,
        "FormResponsePage" => cm_store::Page<cm_store::FormResponse>,
        "AuditEventPage" => cm_store::Page<cm_store::AuditEvent>,
    }
    let mut clashes = Map::new();
    for (name, schema) in g.take_definitions(true) {
        match out.get(&name) {
            Some(existing) if *existing != schema => {
                clashes.insert(name, schema);
            }
            Some(_) => {}
            None => {
                out.insert(name, schema);
            }
        }
    }
    out.values_mut().for_each(absent_not_null);
    (out, clashes)
}

/// An `Option` member skipped when `None` (`skip_serializing_if`, so not required) is absent,
/// never `null`: its schema loses schemars' `null` (`nextCursor?: string`, not
/// `string | null`).
fn absent_not_null(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let required: Vec<Value> = m
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Object(props)) = m.get_mut("properties") {
                for (name, p) in props.iter_mut() {
                    if required.contains(&Value::String(name.clone())) {
                        continue;
                    }
                    if let Some(Value::Array(types)) = p.get_mut("type") {
                        types.retain(|t| t != "null");
                        if let [one] = types.as_slice() {
                            p["type"] = one.clone();
                        }
                    } else if let Some(Value::Array(any)) = p.get("anyOf")
                        && let [a, b] = any.as_slice()
                        && (*a == json!({"type": "null"}) || *b == json!({"type": "null"}))
                    {
                        let other = if *a == json!({"type": "null"}) { b } else { a }.clone();
                        let description = p.get("description").cloned();
                        *p = other;
                        if let (Some(d), Some(o)) = (description, p.as_object_mut()) {
                            o.insert("description".into(), d);
                        }
                    }
                }
            }
            m.values_mut().for_each(absent_not_null);
        }
        Value::Array(a) => a.iter_mut().for_each(absent_not_null),
        _ => {}
    }
}

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
        crate::routes::live_ticket,
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

    // The response bodies' schemas (schemars), then the responses and properties that use them.
    let (mut responses, _) = response_schemas();
    if let Some(components) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in responses.iter_mut() {
            rewrite_refs(schema);
            // The workflow document's definitions (request side) stay as they are.
            components
                .entry(name.clone())
                .or_insert_with(|| schema.clone());
        }
    }
    for (path, method, status, name) in RESPONSE_SCHEMAS {
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}/content/application~1json",
            path.replace('~', "~0").replace('/', "~1")
        );
        if let Some(content) = doc.pointer_mut(&pointer) {
            content["schema"] = json!({"$ref": format!("#/components/schemas/{name}")});
        }
    }
    for (schema, property, what) in PROPERTY_SCHEMAS {
        if let Some(p) = doc["components"]["schemas"][*schema]["properties"].get_mut(*property) {
            let description = p.get("description").cloned();
            let mut new = match what {
                Property::One(name) => {
                    json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}]})
                }
                Property::Many(name) => {
                    json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}})
                }
                Property::Object => json!({"type": "object", "additionalProperties": true}),
                Property::SavedWorkflow => json!({"type": "object", "additionalProperties": true}),
                Property::JsonSchema => {
                    json!({"type": ["object", "boolean"], "additionalProperties": true})
                }
            };
            let mut description = description
                .and_then(|d| d.as_str().map(str::to_owned))
                .unwrap_or_default();
            if let Property::SavedWorkflow = what {
                description.push_str(
                    " A workflow document (the Workflow schema) as saved: it parses, but need not \
                     validate (the findings say what is wrong).",
                );
            }
            if !description.is_empty() {
                new["description"] = description.trim_start().into();
            }
            *p = new;
        }
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
    open_free_form(&mut doc);
    doc
}

/// Adds `additionalProperties: true` to every object schema that says nothing of its members
/// (`{"type": "object"}`: a free-form value, a node's config): the same in JSON Schema, but
/// generators (openapi-typescript) read the bare form as "no members".
fn open_free_form(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let object = m.get("type").is_some_and(|t| {
                t == "object"
                    || t.as_array()
                        .is_some_and(|a| a.iter().any(|t| t == "object"))
            });
            let said = [
                "properties",
                "additionalProperties",
                "patternProperties",
                "$ref",
                "allOf",
                "oneOf",
                "anyOf",
            ]
            .iter()
            .any(|k| m.contains_key(*k));
            if object && !said {
                m.insert("additionalProperties".into(), Value::Bool(true));
            }
            m.values_mut().for_each(open_free_form);
        }
        Value::Array(a) => a.iter_mut().for_each(open_free_form),
        _ => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_of_the_table_is_patched() {
        let doc = document();
        for (schema, property, what) in PROPERTY_SCHEMAS {
            let p = &doc["components"]["schemas"][*schema]["properties"][*property];
            let patched = match what {
                Property::One(name) => p["allOf"][0]["$ref"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&format!("/{name}"))),
                Property::Many(name) => p["items"]["$ref"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&format!("/{name}"))),
                Property::Object | Property::JsonSchema | Property::SavedWorkflow => {
                    p["additionalProperties"] == true
                }
            };
            assert!(patched, "{schema}.{property}: {p}");
        }
    }
}
