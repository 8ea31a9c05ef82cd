//! Handlers and the router.

use crate::auth::{Caller, Role, now_s};
use crate::error::{ApiError, ApiResult};
use crate::runtime::Runtime;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cm_store::{
    AuditEvent, Created, FormResponse, Page, Route, RunQuery, RunRecord, RunStatus, Store,
    WorkflowQuery, WorkflowSummary, WorkflowVersion, WorkflowWrite,
};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::atomic::Ordering;
use utoipa::{IntoParams, ToSchema};

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Organisation ids: lowercase letters, digits and `-`, 1–15 characters, starting with a letter
/// or digit (they prefix state machine names: `<org>.<workflow>` fits Step Functions' 80).
pub fn valid_org(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= 15
        && org
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !org.starts_with('-')
}

// ---------------------------------------------------------------- extractors

impl<S: Store, R: Runtime> FromRequestParts<AppState<S, R>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S, R>,
    ) -> Result<Caller, ApiError> {
        // Claims an authorizer in front of the API already verified (API Gateway).
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = match header {
            Some(h) => h.strip_prefix("Bearer ").ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?,
            None => {
                // Browsers cannot set headers on WebSocket upgrades: `?token=` there.
                let from_query = (parts.uri.path() == "/ws")
                    .then(|| {
                        parts
                            .uri
                            .query()
                            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
                    })
                    .flatten();
                from_query.ok_or_else(|| {
                    ApiError::Unauthorized(
                        "missing bearer token: send `Authorization: Bearer <token>` (locally: `concertmaster token`)"
                            .into(),
                    )
                })?
            }
        };
        let claims = state.tokens.verify(token, now_s())?;
        if !valid_org(&claims.org) {
            return Err(ApiError::Unauthorized(format!(
                "the token's org `{}` is not a valid organisation id (lowercase letters, digits, -; at most 15)",
                claims.org
            )));
        }
        Ok(Caller {
            subject: claims.sub,
            org: claims.org,
            role: claims.role,
        })
    }
}

/// A path parameter whose rejections are API errors.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::BadRequest(format!("bad path parameter: {}", e.body_text())))
    }
}

/// Query parameters whose rejections are API errors.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::BadRequest(format!("bad query parameter: {}", e.body_text())))
    }
}

/// An optional JSON body: empty means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge("the body exceeds the size limit".into())
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| ApiError::BadRequest(format!("the body is not the expected JSON: {e}")))
    }
}

/// A JSON body whose rejections are API errors.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest(format!(
                "the body is not valid JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::BadRequest(format!(
                "the body does not have the expected shape: {}",
                e.body_text()
            ))),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge("the body exceeds the size limit".into()))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

pub(crate) fn limit(l: Option<usize>) -> usize {
    l.unwrap_or(50)
}

pub(crate) async fn audit<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    caller: &Caller,
    action: &str,
    target: String,
    details: Value,
) -> ApiResult<()> {
    st.store
        .append(
            &caller.org,
            AuditEvent {
                at_ms: now_ms(),
                actor: caller.subject.clone(),
                action: action.into(),
                target,
                details,
            },
        )
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- workflows

/// A workflow with its latest definition and validation findings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDoc {
    /// State.
    #[schema(value_type = Object)]
    pub workflow: WorkflowSummary,
    /// The latest version's document.
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Validation findings of the latest version (errors block publishing, not saving).
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<cm_compiler::Finding>,
}

/// Body of create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkflow {
    /// The workflow document (`id`, `name`, `nodes`, `edges`, …).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// List it as a template (admins only).
    #[serde(default)]
    pub is_template: bool,
}

/// Body of update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWorkflow {
    /// The new document (its `id` must match the path).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Only write if this is still the latest version (optimistic concurrency).
    pub expected_version: Option<u32>,
    /// Change the template flag (admins only).
    pub is_template: Option<bool>,
}

/// Parses a workflow document; parse errors are 422s with the located problem.
fn parse_workflow(def: &Value) -> ApiResult<cm_model::Workflow> {
    let text = def.to_string();
    cm_model::from_json_str(&text).map_err(|e| ApiError::InvalidWorkflow {
        message: format!("the document is not a workflow: {e}"),
        findings: json!([{"code": e.code(), "severity": "error", "path": "", "message": e.to_string()}]),
    })
}

fn findings<S, R>(st: &AppState<S, R>, wf: &cm_model::Workflow) -> Vec<cm_compiler::Finding> {
    cm_compiler::validate(wf, &st.registry)
}

/// Query of the workflow list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListWorkflowsQuery {
    /// Substring of id, name or description.
    pub search: Option<String>,
    /// Only templates (true) or non-templates (false).
    pub templates: Option<bool>,
    /// Cursor from the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

#[utoipa::path(post, path = "/v1/workflows", tag = "workflows", request_body = CreateWorkflow,
    responses((status = 201, description = "Created (version 1)", body = WorkflowDoc),
              (status = 409, description = "The id exists", body = crate::error::ErrorBody),
              (status = 422, description = "Not a workflow document", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn create_workflow<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWorkflow>,
) -> ApiResult<(StatusCode, Json<WorkflowDoc>)> {
    caller.require(Role::Editor)?;
    if body.is_template {
        caller.require(Role::Admin)?;
    }
    let wf = parse_workflow(&body.definition)?;
    let found = findings(&st, &wf);
    let summary = st
        .store
        .create_workflow(
            &caller.org,
            &wf.id,
            WorkflowWrite {
                name: wf.name.clone(),
                description: wf.description.clone(),
                definition: body.definition.clone(),
                is_template: body.is_template,
                actor: caller.subject.clone(),
                at_ms: now_ms(),
            },
        )
        .await?;
    audit(
        &st,
        &caller,
        "workflow.create",
        format!("workflow:{}", wf.id),
        json!({"version": 1}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(WorkflowDoc {
            workflow: summary,
            definition: body.definition,
            findings: found,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/workflows", tag = "workflows", params(ListWorkflowsQuery),
    responses((status = 200, description = "A page of workflows", body = Object)),
    security(("bearer" = [])))]
async fn list_workflows<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListWorkflowsQuery>,
) -> ApiResult<Json<Page<WorkflowSummary>>> {
    Ok(Json(
        st.store
            .list_workflows(
                &caller.org,
                WorkflowQuery {
                    search: q.search,
                    templates: q.templates,
                    cursor: q.cursor,
                    limit: limit(q.limit),
                },
            )
            .await?,
    ))
}

async fn load_doc<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    id: &str,
) -> ApiResult<WorkflowDoc> {
    let summary = st.store.get_workflow(org, id).await?;
    let v = st
        .store
        .get_version(org, id, summary.latest_version)
        .await?;
    let found = match serde_json::from_value::<cm_model::Workflow>(v.definition.clone()) {
        Ok(wf) => findings(st, &wf),
        Err(_) => Vec::new(),
    };
    Ok(WorkflowDoc {
        workflow: summary,
        definition: v.definition,
        findings: found,
    })
}

#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, description = "The workflow and its latest definition", body = WorkflowDoc),
              (status = 404, description = "No such workflow in your organisation", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn get_workflow<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WorkflowDoc>> {
    Ok(Json(load_doc(&st, &caller.org, &id).await?))
}

#[utoipa::path(put, path = "/v1/workflows/{id}", tag = "workflows", request_body = UpdateWorkflow,
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, description = "The new version", body = WorkflowDoc),
              (status = 404, description = "No such workflow", body = crate::error::ErrorBody),
              (status = 409, description = "expectedVersion is not the latest", body = crate::error::ErrorBody),
              (status = 422, description = "Not a workflow document, or the id differs", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn update_workflow<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateWorkflow>,
) -> ApiResult<Json<WorkflowDoc>> {
    caller.require(Role::Editor)?;
    let wf = parse_workflow(&body.definition)?;
    if wf.id != id {
        return Err(ApiError::InvalidWorkflow {
            message: format!(
                "the document's id `{}` differs from the path's `{id}`",
                wf.id
            ),
            findings: json!([{"code": "workflow.id_mismatch", "severity": "error", "path": "/id", "message": "the id cannot change"}]),
        });
    }
    let current = st.store.get_workflow(&caller.org, &id).await?;
    if body.is_template.is_some_and(|t| t != current.is_template) {
        caller.require(Role::Admin)?;
    }
    let summary = st
        .store
        .update_workflow(
            &caller.org,
            &id,
            body.expected_version,
            WorkflowWrite {
                name: wf.name.clone(),
                description: wf.description.clone(),
                definition: body.definition.clone(),
                is_template: body.is_template.unwrap_or(current.is_template),
                actor: caller.subject.clone(),
                at_ms: now_ms(),
            },
        )
        .await?;
    audit(
        &st,
        &caller,
        "workflow.update",
        format!("workflow:{id}"),
        json!({"version": summary.latest_version}),
    )
    .await?;
    let found = findings(&st, &wf);
    Ok(Json(WorkflowDoc {
        workflow: summary,
        definition: body.definition,
        findings: found,
    }))
}

#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
              (status = 404, description = "No such workflow", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn delete_workflow<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    // Checked first so that a missing workflow stays a 404 and touches no schedule.
    st.store.get_workflow(&caller.org, &id).await?;
    if let Some(schedules) = &st.schedules {
        schedules.delete(&caller.org, &id).await?;
    }
    st.store.delete_workflow(&caller.org, &id).await?;
    st.store.delete_routes(&caller.org, &id).await?;
    st.trigger_changes.notify();
    audit(
        &st,
        &caller,
        "workflow.delete",
        format!("workflow:{id}"),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Cursor from the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/workflows/{id}/versions", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), PageQuery),
    responses((status = 200, description = "Versions, newest first", body = Object),
              (status = 404, description = "No such workflow", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn list_versions<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<WorkflowVersion>>> {
    Ok(Json(
        st.store
            .list_versions(&caller.org, &id, q.cursor, limit(q.limit))
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/workflows/{id}/versions/{version}", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), ("version" = u32, Path, description = "Version")),
    responses((status = 200, description = "The version", body = Object),
              (status = 404, description = "No such workflow or version", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn get_version<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(String, u32)>,
) -> ApiResult<Json<WorkflowVersion>> {
    Ok(Json(st.store.get_version(&caller.org, &id, version).await?))
}

/// Validation result.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// No error findings.
    pub valid: bool,
    /// Every finding.
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<cm_compiler::Finding>,
}

#[utoipa::path(post, path = "/v1/validate", tag = "workflows", request_body(content = Object, description = "A workflow document"),
    responses((status = 200, description = "Findings", body = Validation),
              (status = 422, description = "Not a workflow document", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn validate_doc<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    _caller: Caller,
    ApiJson(def): ApiJson<Value>,
) -> ApiResult<Json<Validation>> {
    let wf = parse_workflow(&def)?;
    let f = findings(&st, &wf);
    Ok(Json(Validation {
        valid: !f.iter().any(|f| f.is_error()),
        findings: f,
    }))
}

fn compile_options<S, R>(st: &AppState<S, R>, org: &str) -> cm_compiler::CompileOptions {
    cm_compiler::CompileOptions {
        state_machine_arn_prefix: format!("{}{org}.", st.config.state_machine_arn_prefix),
        // Store nodes write into `<org>#<dataset>`: organisations never share a dataset.
        dataset_namespace: Some(org.to_owned()),
        ..st.config.compile.clone()
    }
}

fn compile<S, R>(st: &AppState<S, R>, org: &str, def: &Value) -> ApiResult<cm_compiler::Compiled> {
    let wf = parse_workflow(def)?;
    cm_compiler::compile(&wf, &st.registry, &compile_options(st, org)).map_err(|e| {
        ApiError::InvalidWorkflow {
            message: e.to_string(),
            findings: serde_json::to_value(e.findings()).unwrap_or_default(),
        }
    })
}

/// Version selector.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The version (default: the latest).
    pub version: Option<u32>,
}

#[utoipa::path(get, path = "/v1/workflows/{id}/compile", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), VersionQuery),
    responses((status = 200, description = "ASL definition, state→node map, execution type, figures", body = Object),
              (status = 404, description = "No such workflow or version", body = crate::error::ErrorBody),
              (status = 422, description = "The version does not validate", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn compile_workflow<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> ApiResult<Json<Value>> {
    let summary = st.store.get_workflow(&caller.org, &id).await?;
    let v = st
        .store
        .get_version(
            &caller.org,
            &id,
            q.version.unwrap_or(summary.latest_version),
        )
        .await?;
    let c = compile(&st, &caller.org, &v.definition)?;
    Ok(Json(serde_json::to_value(&c).unwrap_or_default()))
}

/// Body of publish.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishBody {
    /// The version to publish (default: the latest).
    pub version: Option<u32>,
}

/// What publishing did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// The workflow.
    #[schema(value_type = Object)]
    pub workflow: WorkflowSummary,
    /// The state machine ARN.
    pub state_machine: String,
    /// `STANDARD` or `EXPRESS`.
    pub execution_type: String,
    /// The public form's API URL (`GET` its definition, `POST` responses), for a form trigger.
    pub form_url: Option<String>,
    /// The builder's page for the form (what to send people to), for a form trigger when the
    /// deployment has a builder.
    pub form_page_url: Option<String>,
    /// The webhook URL (keep it secret: the token is the credential), for a webhook trigger.
    pub hook_url: Option<String>,
}

/// A keyed, stable id for a public route (`hook` tokens, `form` ids): HMAC of org and workflow
/// under the token key, so it is unguessable and needs no storage to re-derive.
fn route_token<S, R>(st: &AppState<S, R>, kind: &str, org: &str, workflow: &str) -> String {
    use base64::Engine as _;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(st.tokens.bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{kind}\n{org}\n{workflow}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    let n = if kind == "hook" { 32 } else { 12 };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..n])
}

#[utoipa::path(post, path = "/v1/workflows/{id}/publish", tag = "workflows", request_body = PublishBody,
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, description = "Published", body = Published),
              (status = 404, description = "No such workflow or version", body = crate::error::ErrorBody),
              (status = 422, description = "The version does not validate", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn publish<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<PublishBody>,
) -> ApiResult<Json<Published>> {
    caller.require(Role::Editor)?;
    let summary = st.store.get_workflow(&caller.org, &id).await?;
    let version = body.version.unwrap_or(summary.latest_version);
    let v = st.store.get_version(&caller.org, &id, version).await?;
    let compiled = compile(&st, &caller.org, &v.definition)?;
    let trigger_node = trigger_node(&v.definition).cloned().unwrap_or(Value::Null);
    let trigger = trigger_node
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    check_trigger_config(&trigger_node, &trigger)?;
    let express = compiled.execution_type == cm_compiler::ExecutionType::Express;
    let name = format!("{}.{id}", caller.org);
    let arn = st
        .runtime
        .register(&name, &compiled.definition, express)
        .await?;
    // The cloud's schedule follows the version being published (before it is recorded as
    // published: a failure here leaves the previous publish in force).
    if let Some(schedules) = &st.schedules {
        if trigger == "trigger.schedule" {
            let t = cm_nodes::trigger::schedule::ScheduleTrigger::from_config(
                trigger_node.get("config").unwrap_or(&Value::Null),
            )
            .map_err(|e| ApiError::Internal(format!("schedule checked but not parsed: {e}")))?;
            schedules.put(&caller.org, &id, &t.schedule).await?;
        } else {
            schedules.delete(&caller.org, &id).await?;
        }
    }
    let workflow = st
        .store
        .publish(&caller.org, &id, version, &arn, &caller.subject, now_ms())
        .await?;
    let base = st.config.public_url.trim_end_matches('/');
    let mut form_url = None;
    let mut form_page_url = None;
    let mut hook_url = None;
    if trigger == "trigger.form" {
        let key = route_token(&st, "form", &caller.org, &id);
        st.store
            .put_route(Route {
                kind: "form".into(),
                key: key.clone(),
                org: caller.org.clone(),
                workflow_id: id.clone(),
            })
            .await?;
        form_url = Some(format!("{base}/v1/forms/{key}"));
        form_page_url = st
            .config
            .builder_url
            .as_deref()
            .map(|b| format!("{}/forms/{key}", b.trim_end_matches('/')));
    }
    if trigger == "trigger.webhook" {
        let token = route_token(&st, "hook", &caller.org, &id);
        st.store
            .put_route(Route {
                kind: "hook".into(),
                key: cm_nodes::trigger::webhook::path_token_id(&token),
                org: caller.org.clone(),
                workflow_id: id.clone(),
            })
            .await?;
        hook_url = Some(format!("{base}/hooks/{token}"));
    }
    // Triggers that fire without a request: the embedded scheduler and queue poller find
    // them by kind (`RouteIndex`); a route left from an earlier version with another trigger
    // is ignored there (they read the published version's trigger).
    if let Some(kind) = match trigger.as_str() {
        "trigger.schedule" => Some("schedule"),
        "trigger.queue" => Some("queue"),
        _ => None,
    } {
        st.store
            .put_route(Route {
                kind: kind.into(),
                key: format!("{}/{id}", caller.org),
                org: caller.org.clone(),
                workflow_id: id.clone(),
            })
            .await?;
    }
    st.trigger_changes.notify();
    audit(
        &st,
        &caller,
        "workflow.publish",
        format!("workflow:{id}"),
        json!({"version": version, "stateMachine": arn}),
    )
    .await?;
    Ok(Json(Published {
        workflow,
        state_machine: arn,
        execution_type: if express { "EXPRESS" } else { "STANDARD" }.into(),
        form_url,
        form_page_url,
        hook_url,
    }))
}

/// The trigger node of a workflow document (the node whose type starts with `trigger.`).
pub(crate) fn trigger_node(definition: &Value) -> Option<&Value> {
    definition
        .get("nodes")
        .and_then(Value::as_array)
        .and_then(|n| {
            n.iter().find(|n| {
                n.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("trigger."))
            })
        })
}

/// Refuses (422) a schedule or queue trigger whose config the scheduler or poller could not
/// use (the config schema lets through, e.g., a cron expression with a bad field).
fn check_trigger_config(node: &Value, trigger: &str) -> ApiResult<()> {
    let config = node.get("config").unwrap_or(&Value::Null);
    let checked = match trigger {
        "trigger.schedule" => {
            cm_nodes::trigger::schedule::ScheduleTrigger::from_config(config).map(|_| ())
        }
        "trigger.queue" => cm_nodes::trigger::queue::QueueConfig::parse(config).map(|_| ()),
        _ => Ok(()),
    };
    checked.map_err(|e| {
        let node_id = node.get("id").and_then(Value::as_str).unwrap_or_default();
        ApiError::InvalidWorkflow {
            message: format!("node `{node_id}` ({trigger}): {e}"),
            findings: json!([{"code": "trigger.invalid_config", "severity": "error", "nodeId": node_id,
                "path": "/config", "message": e.to_string()}]),
        }
    })
}

/// Body of create-from-template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FromTemplate {
    /// The template workflow's id.
    pub template_id: String,
    /// The new workflow's id.
    pub id: String,
    /// The new workflow's name (default: the template's).
    pub name: Option<String>,
}

#[utoipa::path(get, path = "/v1/templates", tag = "workflows", params(PageQuery),
    responses((status = 200, description = "Workflows marked as templates", body = Object)),
    security(("bearer" = [])))]
async fn list_templates<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<WorkflowSummary>>> {
    Ok(Json(
        st.store
            .list_workflows(
                &caller.org,
                WorkflowQuery {
                    search: None,
                    templates: Some(true),
                    cursor: q.cursor,
                    limit: limit(q.limit),
                },
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/workflows/from-template", tag = "workflows", request_body = FromTemplate,
    responses((status = 201, description = "Created from the template", body = WorkflowDoc),
              (status = 404, description = "No such template", body = crate::error::ErrorBody),
              (status = 409, description = "The new id exists", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn from_template<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiJson(body): ApiJson<FromTemplate>,
) -> ApiResult<(StatusCode, Json<WorkflowDoc>)> {
    caller.require(Role::Editor)?;
    let t = st
        .store
        .get_workflow(&caller.org, &body.template_id)
        .await?;
    if !t.is_template {
        return Err(ApiError::NotFound(format!(
            "template `{}` does not exist",
            body.template_id
        )));
    }
    let v = st
        .store
        .get_version(&caller.org, &t.id, t.latest_version)
        .await?;
    let mut def = v.definition;
    def["id"] = json!(body.id);
    if let Some(n) = &body.name {
        def["name"] = json!(n);
    }
    def["version"] = json!(1);
    create_workflow(
        State(st),
        caller,
        ApiJson(CreateWorkflow {
            definition: def,
            is_template: false,
        }),
    )
    .await
}

// ---------------------------------------------------------------- node types

/// Node type list query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeTypeQuery {
    /// trigger | transform | condition | action | flow.
    #[param(pattern = "^(trigger|transform|condition|action|flow)$")]
    pub category: Option<String>,
    /// Substring of type id, title or description.
    pub search: Option<String>,
}

#[utoipa::path(get, path = "/v1/node-types", tag = "node types", params(NodeTypeQuery),
    responses((status = 200, description = "Descriptors", body = Object),
              (status = 400, description = "Unknown category", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn list_node_types<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<NodeTypeQuery>,
) -> ApiResult<Json<Value>> {
    let category = q
        .category
        .as_deref()
        .map(str::parse::<cm_registry::Category>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let list = st.registry.list(&cm_registry::ListFilter {
        category,
        search: q.search,
    });
    Ok(Json(json!({"items": list})))
}

#[utoipa::path(get, path = "/v1/node-types/{type}", tag = "node types",
    params(("type" = String, Path, description = "Type id, e.g. action.http")),
    responses((status = 200, description = "The latest descriptor with its config schema", body = Object),
              (status = 404, description = "No such type", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn get_node_type<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    _caller: Caller,
    ApiPath(ty): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let t = st
        .registry
        .latest(&ty)
        .ok_or_else(|| ApiError::NotFound(format!("node type `{ty}` does not exist")))?;
    Ok(Json(
        serde_json::to_value(t.descriptor()).unwrap_or_default(),
    ))
}

// ---------------------------------------------------------------- runs

/// Body of start-run.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRun {
    /// The run input (the trigger's output).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub input: Value,
    /// Starting twice with the same key returns the first run.
    pub idempotency_key: Option<String>,
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        b[..8].copy_from_slice(&now_ms().to_le_bytes());
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Starts a run of the published version (used by the API, forms, hooks, the scheduler, the
/// queue poller and dead-letter redrives).
pub(crate) async fn start_run_of<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    workflow: &WorkflowSummary,
    input: Value,
    idempotency_key: Option<String>,
    actor: &str,
    retry_of: Option<String>,
) -> ApiResult<Created<RunRecord>> {
    let (Some(version), Some(sm)) = (workflow.published_version, workflow.state_machine.clone())
    else {
        return Err(ApiError::Conflict(format!(
            "workflow `{}` is not published; publish it first (POST /v1/workflows/{}/publish)",
            workflow.id, workflow.id
        )));
    };
    let v = st.store.get_version(org, &workflow.id, version).await?;
    let trigger = trigger_node(&v.definition).cloned().unwrap_or(Value::Null);
    let trigger_type = trigger
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("trigger.manual")
        .to_owned();
    let input = if trigger_type == "trigger.manual" {
        cm_nodes::trigger::manual::accept(trigger.get("config").unwrap_or(&Value::Null), input)
            .map_err(node_input_error)?
    } else {
        input
    };
    // With an idempotency key the run id derives from it, so a retried start finds the first
    // run (and the runtime's start, idempotent by execution name, the same execution).
    let id = match &idempotency_key {
        Some(k) => {
            let id = keyed_id(org, &workflow.id, k);
            if let Ok(existing) = st.store.get_run(org, &id).await {
                return Ok(Created::Existing(existing));
            }
            id
        }
        None => random_id(),
    };
    // Started first so the record carries the real execution ARN (Express ARNs cannot be
    // predicted); the live tracker catches up on events it saw before the record existed.
    // The start time is read before starting: the cloud's `run.started` event id is this
    // time, and it must not be later than the first node's start.
    let started_at_ms = now_ms();
    let arn = match st.runtime.start(&sm, &id, input.clone()).await {
        Ok(arn) => arn,
        // The execution name is taken: another start with the same key may have recorded
        // its run meanwhile.
        Err(ApiError::Conflict(m)) if idempotency_key.is_some() => {
            return match st.store.get_run(org, &id).await {
                Ok(existing) => Ok(Created::Existing(existing)),
                Err(_) => Err(ApiError::Conflict(m)),
            };
        }
        Err(e) => return Err(e),
    };
    let run = RunRecord {
        id: id.clone(),
        workflow_id: workflow.id.clone(),
        workflow_version: version,
        execution_arn: arn,
        status: RunStatus::Running,
        trigger: trigger_type,
        input,
        output: None,
        error: None,
        cause: None,
        idempotency_key,
        started_by: actor.to_owned(),
        started_at_ms,
        ended_at_ms: None,
        retry_of,
    };
    let created = st.store.create_run(org, run).await?;
    if let Created::New(run) = &created {
        st.metrics.runs_started.fetch_add(1, Ordering::Relaxed);
        st.hub.run_created(&run.execution_arn);
    }
    Ok(created)
}

/// The run id of an idempotency key: a UUID-shaped hash of organisation, workflow and key.
fn keyed_id(org: &str, workflow: &str, key: &str) -> String {
    use sha2::Digest;
    let d = Sha256::digest(format!("{org}\n{workflow}\n{key}").as_bytes());
    let h: String = d[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn node_input_error(e: cm_nodes::NodeError) -> ApiError {
    let details = match &e {
        cm_nodes::NodeError::ValidationFailed { errors, .. } => json!({"violations": errors}),
        _ => json!({}),
    };
    match e {
        cm_nodes::NodeError::InvalidConfig(m) => {
            ApiError::Conflict(format!("the workflow's trigger config is invalid: {m}"))
        }
        cm_nodes::NodeError::Internal(m) => ApiError::Internal(m),
        other => ApiError::InvalidInput {
            message: other.to_string(),
            details,
        },
    }
}

#[utoipa::path(post, path = "/v1/workflows/{id}/runs", tag = "runs", request_body = StartRun,
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 201, description = "Started", body = Object),
              (status = 200, description = "A run with this idempotency key exists: that run", body = Object),
              (status = 404, description = "No such workflow", body = crate::error::ErrorBody),
              (status = 409, description = "Not published", body = crate::error::ErrorBody),
              (status = 422, description = "The input does not fit the trigger", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn start_run<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<StartRun>,
) -> ApiResult<(StatusCode, Json<RunRecord>)> {
    caller.require(Role::Editor)?;
    let wf = st.store.get_workflow(&caller.org, &id).await?;
    let created = start_run_of(
        &st,
        &caller.org,
        &wf,
        body.input,
        body.idempotency_key,
        &caller.subject,
        None,
    )
    .await?;
    Ok(match created {
        Created::New(run) => {
            audit(
                &st,
                &caller,
                "run.start",
                format!("run:{}", run.id),
                json!({"workflowId": id}),
            )
            .await?;
            (StatusCode::CREATED, Json(run))
        }
        Created::Existing(run) => (StatusCode::OK, Json(run)),
    })
}

/// Brings a stored RUNNING run up to date with the runtime (a restart may have missed its end).
async fn fresh_run<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    id: &str,
) -> ApiResult<RunRecord> {
    let run = st.store.get_run(org, id).await?;
    if run.status != RunStatus::Running {
        return Ok(run);
    }
    let Ok(view) = st
        .runtime
        .describe_run(&run.execution_arn, run.started_at_ms)
        .await
    else {
        return Ok(run);
    };
    if view.status == RunStatus::Running {
        return Ok(run);
    }
    // Finished by whoever got there first (the follower, run-events); an output too large
    // for the store is left out rather than failing every read of the run.
    crate::live::finish_run(
        &st.store,
        org,
        id,
        cm_store::RunEnd {
            status: view.status,
            output: view.output,
            error: view.error,
            cause: view.cause,
            at_ms: view.stop_ms.unwrap_or_else(now_ms),
        },
    )
    .await
    .or_else(|e| match e {
        cm_store::StoreError::Conflict(_) => Ok(()),
        e => Err(e),
    })?;
    Ok(st.store.get_run(org, id).await?)
}

#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run", body = Object),
              (status = 404, description = "No such run in your organisation", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn get_run<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunRecord>> {
    Ok(Json(fresh_run(&st, &caller.org, &id).await?))
}

/// Run list query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Only this workflow's runs.
    pub workflow_id: Option<String>,
    /// RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED.
    #[param(pattern = "^(RUNNING|SUCCEEDED|FAILED|TIMED_OUT|ABORTED)$")]
    pub status: Option<String>,
    /// Cursor.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(RunListQuery),
    responses((status = 200, description = "Runs, newest first", body = Object),
              (status = 400, description = "Bad status, cursor or limit", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn list_runs<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RunListQuery>,
) -> ApiResult<Json<Page<RunRecord>>> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            RunStatus::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "status `{s}` is not one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"
                ))
            })
        })
        .transpose()?;
    Ok(Json(
        st.store
            .list_runs(
                &caller.org,
                RunQuery {
                    workflow_id: q.workflow_id,
                    status,
                    cursor: q.cursor,
                    limit: limit(q.limit),
                },
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "Cancelled (ABORTED)", body = Object),
              (status = 404, description = "No such run", body = crate::error::ErrorBody),
              (status = 409, description = "The run has ended", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn cancel_run<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunRecord>> {
    caller.require(Role::Editor)?;
    let run = fresh_run(&st, &caller.org, &id).await?;
    if run.status != RunStatus::Running {
        return Err(ApiError::Conflict(format!(
            "run `{id}` has ended ({}); only running runs can be cancelled",
            run.status.as_str()
        )));
    }
    st.runtime
        .stop(
            &run.execution_arn,
            &format!("cancelled by {}", caller.subject),
        )
        .await?;
    audit(&st, &caller, "run.cancel", format!("run:{id}"), json!({})).await?;
    Ok(Json(fresh_run(&st, &caller.org, &id).await?))
}

/// Body of redrive.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveBody {
    /// `false` (default): continue the same run from the node that failed, on its version.
    /// `true`: start a new run of the latest published version with the same input.
    #[serde(default)]
    pub latest: bool,
}

#[utoipa::path(post, path = "/v1/runs/{id}/redrive", tag = "runs", request_body = RedriveBody,
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "Redriven (same run) or retried (the new run)", body = Object),
              (status = 404, description = "No such run", body = crate::error::ErrorBody),
              (status = 409, description = "The run cannot be redriven (running or succeeded)", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn redrive_run<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<RedriveBody>,
) -> ApiResult<Json<RunRecord>> {
    caller.require(Role::Editor)?;
    let run = fresh_run(&st, &caller.org, &id).await?;
    if matches!(run.status, RunStatus::Running | RunStatus::Succeeded) {
        return Err(ApiError::Conflict(format!(
            "run `{id}` is {}; only failed, timed-out or aborted runs can be redriven",
            run.status.as_str()
        )));
    }
    if body.latest {
        let wf = st.store.get_workflow(&caller.org, &run.workflow_id).await?;
        let new = start_run_of(
            &st,
            &caller.org,
            &wf,
            run.input.clone(),
            None,
            &caller.subject,
            Some(id.clone()),
        )
        .await?
        .into_inner();
        audit(
            &st,
            &caller,
            "run.retry",
            format!("run:{id}"),
            json!({"newRun": new.id}),
        )
        .await?;
        return Ok(Json(new));
    }
    st.runtime.redrive(&run.execution_arn).await?;
    st.store.reopen_run(&caller.org, &id).await?;
    audit(&st, &caller, "run.redrive", format!("run:{id}"), json!({})).await?;
    Ok(Json(st.store.get_run(&caller.org, &id).await?))
}

/// History query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a larger id.
    pub after: Option<u64>,
    /// At most this many (1–1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/runs/{id}/events", tag = "runs",
    params(("id" = String, Path, description = "Run id"), EventsQuery),
    responses((status = 200, description = "Execution history events (Step Functions shape)", body = Object),
              (status = 404, description = "No such run", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn run_events<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let run = st.store.get_run(&caller.org, &id).await?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let events = st
        .runtime
        .history_of_run(
            &run.execution_arn,
            run.started_at_ms,
            q.after.unwrap_or(0),
            limit,
        )
        .await?;
    let items: Vec<Value> = events.into_iter().map(|e| e.aws).collect();
    Ok(Json(json!({"items": items})))
}

#[utoipa::path(get, path = "/v1/runs/{id}/nodes", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run's node executions in start order", body = Object),
              (status = 404, description = "No such run", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn run_nodes<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    st.store.get_run(&caller.org, &id).await?;
    let items = st.store.list_node_executions(&caller.org, &id).await?;
    Ok(Json(json!({"items": items})))
}

// ---------------------------------------------------------------- forms and hooks

async fn form_route<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    form_id: &str,
) -> ApiResult<(Route, WorkflowSummary, Value)> {
    let missing = || ApiError::NotFound(format!("form `{form_id}` does not exist"));
    let route = st
        .store
        .get_route("form", form_id)
        .await
        .map_err(|_| missing())?;
    let wf = st
        .store
        .get_workflow(&route.org, &route.workflow_id)
        .await
        .map_err(|_| missing())?;
    let version = wf.published_version.ok_or_else(missing)?;
    let v = st.store.get_version(&route.org, &wf.id, version).await?;
    let config = v
        .definition
        .get("nodes")
        .and_then(Value::as_array)
        .and_then(|n| {
            n.iter()
                .find(|n| n.get("type").and_then(Value::as_str) == Some("trigger.form"))
        })
        .and_then(|n| n.get("config"))
        .cloned()
        .ok_or_else(missing)?;
    Ok((route, wf, config))
}

#[utoipa::path(get, path = "/v1/forms/{formId}", tag = "forms",
    params(("formId" = String, Path, description = "Form id (from publish)")),
    responses((status = 200, description = "The form: title, description, JSON Schema, UI schema, labels", body = Object),
              (status = 404, description = "No such form", body = crate::error::ErrorBody)))]
async fn get_form<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    ApiPath(form_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (_, _, config) = form_route(&st, &form_id).await?;
    let def = cm_nodes::trigger::form::definition(&config).map_err(node_input_error)?;
    Ok(Json(serde_json::to_value(def).unwrap_or_default()))
}

/// A form submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Submission {
    /// The fields.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Submitting twice with the same key stores one response and starts one run.
    pub client_key: Option<String>,
}

/// What a submission did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    /// Response id.
    pub response_id: String,
    /// The run it started.
    pub run_id: Option<String>,
    /// The form's success message.
    pub message: String,
}

#[utoipa::path(post, path = "/v1/forms/{formId}/responses", tag = "forms", request_body = Submission,
    params(("formId" = String, Path, description = "Form id")),
    responses((status = 201, description = "Stored; the run started", body = Submitted),
              (status = 200, description = "Already submitted with this clientKey", body = Submitted),
              (status = 404, description = "No such form", body = crate::error::ErrorBody),
              (status = 422, description = "The fields do not satisfy the form's schema", body = crate::error::ErrorBody)))]
async fn submit_form<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    ApiPath(form_id): ApiPath<String>,
    ApiJson(body): ApiJson<Submission>,
) -> ApiResult<(StatusCode, Json<Submitted>)> {
    let (route, wf, config) = form_route(&st, &form_id).await?;
    let response =
        cm_nodes::trigger::form::accept(&config, body.data, now_ms()).map_err(node_input_error)?;
    let message = config
        .get("successMessage")
        .and_then(Value::as_str)
        .unwrap_or("Thank you!")
        .to_owned();
    let stored = st
        .store
        .add_response(
            &route.org,
            FormResponse {
                id: response.id.clone(),
                workflow_id: wf.id.clone(),
                client_key: body.client_key.clone(),
                data: response.data.clone(),
                submitted_at_ms: response.submitted_ms,
                run_id: None,
            },
        )
        .await?;
    let resp = match stored {
        Created::Existing(r) => {
            return Ok((
                StatusCode::OK,
                Json(Submitted {
                    response_id: r.id,
                    run_id: r.run_id,
                    message,
                }),
            ));
        }
        Created::New(r) => r,
    };
    let run = match start_run_of(
        &st,
        &route.org,
        &wf,
        response.run_input(),
        Some(format!("form-response:{}", resp.id)),
        "form",
        None,
    )
    .await
    {
        Ok(run) => run.into_inner(),
        Err(e) => {
            // Stored, but no run: keep the submission as a dead letter to re-drive.
            crate::dead_letters::record(
                &st,
                &route.org,
                &wf.id,
                "trigger.form",
                response.run_input(),
                &e,
            )
            .await;
            return Err(e);
        }
    };
    st.store
        .set_response_run(&route.org, &wf.id, &resp.id, &run.id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            response_id: resp.id,
            run_id: Some(run.id),
            message,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/workflows/{id}/responses", tag = "forms",
    params(("id" = String, Path, description = "Workflow id"), PageQuery),
    responses((status = 200, description = "Form responses, newest first", body = Object),
              (status = 404, description = "No such workflow", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn list_responses<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<FormResponse>>> {
    st.store.get_workflow(&caller.org, &id).await?;
    Ok(Json(
        st.store
            .list_responses(&caller.org, &id, q.cursor, limit(q.limit))
            .await?,
    ))
}

/// What a webhook call did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The run started.
    pub run_id: String,
}

#[utoipa::path(post, path = "/hooks/{token}", tag = "webhooks",
    params(("token" = String, Path, description = "The hook's path token (from publish)")),
    request_body(content = Object, description = "JSON or form-encoded body, as the trigger accepts"),
    responses((status = 202, description = "Accepted; the run started", body = Accepted),
              (status = 400, description = "Body does not parse", body = crate::error::ErrorBody),
              (status = 401, description = "Signature missing or wrong", body = crate::error::ErrorBody),
              (status = 404, description = "No such hook", body = crate::error::ErrorBody),
              (status = 413, description = "Body too large", body = crate::error::ErrorBody),
              (status = 415, description = "Content type not accepted", body = crate::error::ErrorBody)))]
async fn hook<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    ApiPath(token): ApiPath<String>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    use cm_nodes::trigger::webhook;
    let missing = || ApiError::NotFound("no hook at this URL".to_owned());
    if !webhook::is_path_token(&token) {
        return Err(missing());
    }
    let route = st
        .store
        .get_route("hook", &webhook::path_token_id(&token))
        .await
        .map_err(|_| missing())?;
    let wf = st
        .store
        .get_workflow(&route.org, &route.workflow_id)
        .await
        .map_err(|_| missing())?;
    let version = wf.published_version.ok_or_else(missing)?;
    let v = st.store.get_version(&route.org, &wf.id, version).await?;
    let config = v
        .definition
        .get("nodes")
        .and_then(Value::as_array)
        .and_then(|n| {
            n.iter()
                .find(|n| n.get("type").and_then(Value::as_str) == Some("trigger.webhook"))
        })
        .and_then(|n| n.get("config"))
        .cloned()
        .ok_or_else(missing)?;
    let mut request = webhook::WebhookRequest::new(method.as_str()).body(body.to_vec());
    for (k, v) in &headers {
        if let Ok(v) = v.to_str() {
            request = request.header(k.as_str(), v);
        }
    }
    if let Some(q) = uri.query() {
        request = request.query_string(q);
    }
    let input = webhook::accept(&config, &request, &*st.secrets, now_ms())
        .await
        .map_err(|e| {
            let status = e.status();
            let message = e.to_string();
            match status {
                401 => ApiError::Unauthorized(message),
                413 => ApiError::TooLarge(message),
                415 => ApiError::UnsupportedMediaType(message),
                500 => ApiError::Internal(message),
                _ => ApiError::BadRequest(message),
            }
        })?;
    let run = match start_run_of(&st, &route.org, &wf, input.clone(), None, "webhook", None).await {
        Ok(run) => run.into_inner(),
        Err(e) => {
            // Accepted (signature and body are fine) but no run: a dead letter to re-drive.
            crate::dead_letters::record(&st, &route.org, &wf.id, "trigger.webhook", input, &e)
                .await;
            return Err(e);
        }
    };
    Ok((StatusCode::ACCEPTED, Json(Accepted { run_id: run.id })))
}

// ---------------------------------------------------------------- approvals

fn desk<S, R>(
    st: &AppState<S, R>,
) -> ApiResult<&std::sync::Arc<dyn crate::approvals::ApprovalDesk>> {
    st.approvals
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("approvals are not available in this deployment".into()))
}

/// Approval list query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// Only pending approvals (default true).
    pub pending: Option<bool>,
}

#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalQuery),
    responses((status = 200, description = "Approvals of your organisation's runs, newest first", body = crate::approvals::ApprovalList)),
    security(("bearer" = [])))]
async fn list_approvals<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ApprovalQuery>,
) -> ApiResult<Json<crate::approvals::ApprovalList>> {
    let all = desk(&st)?
        .list(&caller.org, q.pending.unwrap_or(true))
        .await?;
    // Also only approvals of runs this organisation's store knows.
    let mut mine = Vec::new();
    for a in all {
        if st.store.get_run(&caller.org, &a.run_id).await.is_ok() {
            mine.push(a);
        }
    }
    Ok(Json(crate::approvals::ApprovalList { items: mine }))
}

async fn my_approval<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    caller: &Caller,
    id: &str,
) -> ApiResult<crate::approvals::ApprovalView> {
    let a = desk(st)?.get(id).await?;
    st.store
        .get_run(&caller.org, &a.run_id)
        .await
        .map_err(|_| ApiError::NotFound(format!("approval `{id}` does not exist")))?;
    Ok(a)
}

#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals",
    params(("id" = String, Path, description = "Approval id")),
    responses((status = 200, description = "The approval", body = crate::approvals::ApprovalView),
              (status = 404, description = "No such approval in your organisation", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn get_approval<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<crate::approvals::ApprovalView>> {
    Ok(Json(my_approval(&st, &caller, &id).await?))
}

/// A decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    /// Approve (true) or reject (false).
    pub approve: bool,
    /// Comment shown in the run.
    #[serde(default)]
    pub comment: String,
}

#[utoipa::path(post, path = "/v1/approvals/{id}/decision", tag = "approvals", request_body = Decision,
    params(("id" = String, Path, description = "Approval id")),
    responses((status = 200, description = "Decided; the run continues on `approved` or `rejected`", body = crate::approvals::ApprovalView),
              (status = 404, description = "No such approval", body = crate::error::ErrorBody),
              (status = 409, description = "Already decided, or the run ended", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn decide<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Decision>,
) -> ApiResult<Json<crate::approvals::ApprovalView>> {
    caller.require(Role::Editor)?;
    let a = my_approval(&st, &caller, &id).await?;
    if !a.approvers.is_empty() && !a.approvers.iter().any(|p| p == &caller.subject) {
        caller.require(Role::Admin).map_err(|_| {
            ApiError::Forbidden(format!(
                "only {} (or an admin) may decide approval `{id}`",
                a.approvers.join(", ")
            ))
        })?;
    }
    let decided = desk(&st)?
        .decide(&id, body.approve, &body.comment, &caller.subject)
        .await?;
    audit(
        &st,
        &caller,
        "approval.decide",
        format!("approval:{id}"),
        json!({"approve": body.approve, "runId": a.run_id}),
    )
    .await?;
    Ok(Json(decided))
}

// ---------------------------------------------------------------- audit, health, metrics

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(PageQuery),
    responses((status = 200, description = "Audit events, newest first", body = Object),
              (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn list_audit<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    caller.require(Role::Admin)?;
    Ok(Json(
        st.store
            .list_audit(&caller.org, q.cursor, limit(q.limit))
            .await?,
    ))
}

/// Health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The server is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

async fn metrics<S: Store, R: Runtime>(State(st): State<AppState<S, R>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn openapi_json() -> Json<Value> {
    Json(crate::openapi::document())
}

/// What no route took: the builder's files when the deployment serves them, else a 404.
async fn fallback<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    crate::builder::serve(st.config.builder_dir.as_deref(), &method, &uri).await
}

async fn count<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    st.metrics.count(&route, res.status().as_u16());
    res
}

/// The router.
pub fn router<S: Store, R: Runtime>(state: AppState<S, R>) -> Router {
    let max = state.config.max_body_bytes;
    Router::new()
        .route(
            "/v1/workflows",
            post(create_workflow::<S, R>).get(list_workflows::<S, R>),
        )
        .route("/v1/workflows/from-template", post(from_template::<S, R>))
        .route(
            "/v1/workflows/{id}",
            get(get_workflow::<S, R>)
                .put(update_workflow::<S, R>)
                .delete(delete_workflow::<S, R>),
        )
        .route("/v1/workflows/{id}/versions", get(list_versions::<S, R>))
        .route(
            "/v1/workflows/{id}/versions/{version}",
            get(get_version::<S, R>),
        )
        .route("/v1/workflows/{id}/compile", get(compile_workflow::<S, R>))
        .route("/v1/workflows/{id}/publish", post(publish::<S, R>))
        .route("/v1/workflows/{id}/runs", post(start_run::<S, R>))
        .route("/v1/workflows/{id}/responses", get(list_responses::<S, R>))
        .route("/v1/validate", post(validate_doc::<S, R>))
        .route("/v1/templates", get(list_templates::<S, R>))
        .route("/v1/node-types", get(list_node_types::<S, R>))
        .route("/v1/node-types/{type}", get(get_node_type::<S, R>))
        .route("/v1/runs", get(list_runs::<S, R>))
        .route("/v1/runs/{id}", get(get_run::<S, R>))
        .route("/v1/runs/{id}/cancel", post(cancel_run::<S, R>))
        .route("/v1/runs/{id}/redrive", post(redrive_run::<S, R>))
        .route("/v1/runs/{id}/events", get(run_events::<S, R>))
        .route("/v1/runs/{id}/nodes", get(run_nodes::<S, R>))
        .route("/v1/forms/{formId}", get(get_form::<S, R>))
        .route("/v1/forms/{formId}/responses", post(submit_form::<S, R>))
        .route("/hooks/{token}", post(hook::<S, R>))
        .route("/v1/approvals", get(list_approvals::<S, R>))
        .route("/v1/approvals/{id}", get(get_approval::<S, R>))
        .route("/v1/approvals/{id}/decision", post(decide::<S, R>))
        .route(
            "/v1/dead-letters",
            get(crate::dead_letters::list_dead_letters::<S, R>),
        )
        .route(
            "/v1/dead-letters/{id}",
            axum::routing::delete(crate::dead_letters::delete_dead_letter::<S, R>),
        )
        .route(
            "/v1/dead-letters/{id}/redrive",
            post(crate::dead_letters::redrive_dead_letter::<S, R>),
        )
        .route(
            "/v1/queues/{queue}/messages",
            post(crate::triggers::send_message::<S, R>),
        )
        .route(
            "/v1/datasets/{name}/records",
            get(crate::datasets::list_records::<S, R>),
        )
        .route("/v1/audit", get(list_audit::<S, R>))
        .route("/ws", get(crate::ws::upgrade::<S, R>))
        .route("/v1/live/tickets", post(live_ticket::<S, R>))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::<S, R>))
        .route("/openapi.json", get(openapi_json))
        .fallback(fallback::<S, R>)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count::<S, R>,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max))
        .with_state(state)
}

/// How long a live ticket is good for: enough to open the socket it was asked for.
pub const LIVE_TICKET_SECONDS: i64 = 60;

/// A short-lived token to open the live status WebSocket with.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveTicket {
    /// The token: pass it as `?token=` when opening the WebSocket (browsers cannot set
    /// headers on the upgrade). An HS256 token of the caller's identity (subject,
    /// organisation, role) signed with this deployment's key.
    pub token: String,
    /// When it stops being accepted (RFC 3339); an open socket stays open.
    pub expires_at: String,
    /// Seconds from now until then.
    pub expires_in_seconds: i64,
}

/// `POST /v1/live/tickets`: a short-lived token for the live status WebSocket. The socket
/// accepts only tokens signed with the deployment's key; behind API Gateway the caller holds
/// an identity provider's token (Cognito) instead, and exchanges it here.
#[utoipa::path(post, path = "/v1/live/tickets", tag = "runs",
    responses((status = 201, description = "A token for the WebSocket (`GET /ws?token=…` embedded, the WebSocket API's URL in the cloud), good for 60 s", body = LiveTicket),
              (status = 401, description = "No valid token", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn live_ticket<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<LiveTicket>)> {
    caller.require(Role::Viewer)?;
    let now = now_s();
    let exp = now + LIVE_TICKET_SECONDS;
    let token = st.tokens.mint(&crate::auth::Claims {
        sub: caller.subject.clone(),
        org: caller.org.clone(),
        role: caller.role,
        exp,
        iat: now,
        nbf: None,
    });
    Ok((
        StatusCode::CREATED,
        Json(LiveTicket {
            token,
            expires_at: cm_engine::time::iso(exp * 1000),
            expires_in_seconds: LIVE_TICKET_SECONDS,
        }),
    ))
}
