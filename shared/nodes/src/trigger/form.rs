//! `trigger.form`: a public form rendered from a JSON Schema; each valid submission is stored
//! and starts a run.
//!
//! [`definition`] gives what the public page and the builder's preview render: title,
//! description, the fields' JSON Schema, the optional `uiSchema` (layout hints in the
//! react-jsonschema-form convention), the submit button's label and the message shown after a
//! successful submission.
//!
//! [`accept`] checks a submission (a JSON object) against the schema — draft 2020-12 unless
//! the schema says otherwise, with `format` asserted (`email`, `date`, `uri`, …) — and lists
//! every violation in a `ConcertMaster.ValidationFailed` (`{"path": <JSON Pointer>, "message"}`,
//! e.g. `/email`), so the page can mark each field. A valid submission becomes a
//! [`FormResponse`] (a random id, the time, the data) for the caller to store; the run input is
//! the submitted fields alone ([`FormResponse::run_input`]), so later nodes read
//! `$.nodes.<form>.output.<field>`. Use the response id as the execution name to make the
//! start idempotent.

use crate::NodeError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Label of the submit button when the config has none.
pub const DEFAULT_SUBMIT_LABEL: &str = "Submit";

/// Message shown after a successful submission when the config has none.
pub const DEFAULT_SUCCESS_MESSAGE: &str = "Thank you! Your response has been recorded.";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    title: String,
    #[serde(default)]
    description: Option<String>,
    schema: Value,
    #[serde(default)]
    ui_schema: Option<Value>,
    #[serde(default)]
    submit_label: Option<String>,
    #[serde(default)]
    success_message: Option<String>,
}

/// The public definition of a form: what its page renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FormDefinition {
    /// The form's title.
    pub title: String,
    /// Text shown under the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the fields (an object schema).
    pub schema: Value,
    /// Layout hints (widgets, order, placeholders), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_schema: Option<Value>,
    /// The submit button's label ([`DEFAULT_SUBMIT_LABEL`] unless configured).
    pub submit_label: String,
    /// Shown after a successful submission ([`DEFAULT_SUCCESS_MESSAGE`] unless configured).
    pub success_message: String,
}

/// A valid submission, for the caller to store (and to show in the form's responses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormResponse {
    /// A random id: 32 lowercase hex digits.
    pub id: String,
    /// When it was submitted (ms since the epoch).
    pub submitted_ms: i64,
    /// The submitted fields, as received.
    pub data: Value,
}

impl FormResponse {
    /// The run input: the submitted fields.
    pub fn run_input(&self) -> Value {
        self.data.clone()
    }

    /// [`submitted_ms`](Self::submitted_ms) as RFC 3339.
    pub fn submitted_at(&self) -> String {
        super::rfc3339_ms(self.submitted_ms)
    }
}

/// The form's public definition, from a `trigger.form` config. Errors
/// (`ConcertMaster.InvalidConfig`): an unknown or mistyped field, an empty `title`, a `schema`
/// that does not compile or does not describe an object, a `uiSchema` that is not an object.
pub fn definition(config: &Value) -> Result<FormDefinition, NodeError> {
    let cfg: Config = super::trigger_config(config)?;
    if cfg.title.trim().is_empty() {
        return Err(NodeError::InvalidConfig(
            "config.title: the form needs a title".into(),
        ));
    }
    check_schema(&cfg.schema)?;
    if let Some(ui) = &cfg.ui_schema
        && !ui.is_object()
    {
        return Err(NodeError::InvalidConfig(format!(
            "config.uiSchema: must be an object, not {}",
            super::type_name(ui)
        )));
    }
    Ok(FormDefinition {
        title: cfg.title,
        description: cfg.description.filter(|d| !d.is_empty()),
        schema: cfg.schema,
        ui_schema: cfg.ui_schema,
        submit_label: cfg
            .submit_label
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SUBMIT_LABEL.to_owned()),
        success_message: cfg
            .success_message
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SUCCESS_MESSAGE.to_owned()),
    })
}

fn check_schema(schema: &Value) -> Result<(), NodeError> {
    let Some(obj) = schema.as_object() else {
        return Err(NodeError::InvalidConfig(format!(
            "config.schema: must be a JSON Schema object, not {}",
            super::type_name(schema)
        )));
    };
    match obj.get("type") {
        None => {}
        Some(Value::String(t)) if t == "object" => {}
        Some(other) => {
            return Err(NodeError::InvalidConfig(format!(
                "config.schema/type: a form's schema must describe an object (`\"type\": \"object\"`), not {other}"
            )));
        }
    }
    jsonschema::options()
        .build(schema)
        .map(|_| ())
        .map_err(|e| {
            NodeError::InvalidConfig(format!("config.schema is not a valid JSON Schema: {e}"))
        })
}

/// Checks a submission and makes its [`FormResponse`] (id from the system's random source,
/// `submitted_ms` = `now_ms`).
///
/// Errors: `ConcertMaster.InvalidConfig` as for [`definition`]; `ConcertMaster.InvalidInput`
/// when the submission is not a JSON object or exceeds [`super::MAX_RUN_INPUT_BYTES`];
/// `ConcertMaster.ValidationFailed` listing every violation of the schema.
pub fn accept(config: &Value, submission: Value, now_ms: i64) -> Result<FormResponse, NodeError> {
    let form = definition(config)?;
    if !submission.is_object() {
        return Err(NodeError::InvalidInput(format!(
            "a form submission must be a JSON object of fields, not {}",
            super::type_name(&submission)
        )));
    }
    super::validate_with_schema(
        &form.schema,
        &submission,
        "config.schema",
        "the form submission",
        true,
    )?;
    super::check_run_input_size(&submission)?;
    Ok(FormResponse {
        id: super::random_id()?,
        submitted_ms: now_ms,
        data: submission,
    })
}
