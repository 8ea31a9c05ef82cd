//! `trigger.manual`: a run started by hand (the builder's *Run* button, the API, the CLI).
//!
//! The run input is the input as given; an absent input (`null`) becomes `{}`, as with Step
//! Functions' `StartExecution`. When the config has an `inputSchema` (a JSON Schema, draft
//! 2020-12 unless it says otherwise), the input must satisfy it: every violation is listed in a
//! `ConcertMaster.ValidationFailed` as `{"path": <JSON Pointer>, "message": …}`. `format`
//! keywords are annotations here (as the draft specifies), not assertions.

use crate::NodeError;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    input_schema: Option<Value>,
}

/// Turns a manual start's input into the run input: `null` becomes `{}`, then the input is
/// checked against `config.inputSchema` (if set) and [`super::MAX_RUN_INPUT_BYTES`].
///
/// Errors: `ConcertMaster.InvalidConfig` for an unknown config field or an `inputSchema` that
/// is not a valid JSON Schema; `ConcertMaster.ValidationFailed` listing every violation;
/// `ConcertMaster.InvalidInput` for an input over the size limit.
pub fn accept(config: &Value, input: Value) -> Result<Value, NodeError> {
    let cfg: Config = super::trigger_config(config)?;
    let input = if input.is_null() { json!({}) } else { input };
    if let Some(schema) = &cfg.input_schema {
        super::validate_with_schema(schema, &input, "config.inputSchema", "the run input", false)?;
    }
    super::check_run_input_size(&input)?;
    Ok(input)
}
