//! Parsing with errors that say where the input is wrong.

use crate::Workflow;
use serde_json::Value;

/// Largest workflow document accepted, in bytes. Far above anything that compiles within the
/// 1 MB Step Functions definition limit; it exists so that hostile input cannot make the parser
/// allocate without bound.
pub const MAX_WORKFLOW_BYTES: usize = 8 * 1024 * 1024;

/// Why a document is not a workflow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not valid JSON (or not UTF-8).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the offending character.
        line: usize,
        /// 1-based column of the offending character.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// Valid JSON whose shape is not a workflow (missing field, wrong type, unknown field).
    #[error("{path}: {message} (line {line}, column {column})")]
    Shape {
        /// Location in the document, e.g. `nodes[2].typeVersion` (`.` for the root).
        path: String,
        /// 1-based line where the parser noticed the problem (0 when parsing a `Value`).
        line: usize,
        /// 1-based column where the parser noticed the problem (0 when parsing a `Value`).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The document exceeds [`MAX_WORKFLOW_BYTES`].
    #[error("workflow document is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the document.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },
}

impl ParseError {
    /// A stable machine-readable code for the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Syntax { .. } => "parse.syntax",
            ParseError::Shape { .. } => "parse.shape",
            ParseError::TooLarge { .. } => "parse.too_large",
        }
    }
}

/// Parses a workflow from JSON text.
pub fn from_json_str(text: &str) -> Result<Workflow, ParseError> {
    from_json_slice(text.as_bytes())
}

/// Parses a workflow from JSON bytes.
pub fn from_json_slice(bytes: &[u8]) -> Result<Workflow, ParseError> {
    if bytes.len() > MAX_WORKFLOW_BYTES {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: MAX_WORKFLOW_BYTES,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let workflow = serde_path_to_error::deserialize::<_, Workflow>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        classify(e.into_inner(), path)
    })?;
    de.end().map_err(|e| classify(e, String::new()))?;
    Ok(workflow)
}

fn classify(e: serde_json::Error, path: String) -> ParseError {
    use serde_json::error::Category;
    let message = strip_position(&e.to_string());
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ParseError::Syntax {
            line: e.line(),
            column: e.column(),
            message,
        },
        Category::Data => ParseError::Shape {
            path,
            line: e.line(),
            column: e.column(),
            message,
        },
    }
}

/// Converts an already-parsed JSON value (e.g. an HTTP request body) into a workflow.
pub fn from_json_value(value: Value) -> Result<Workflow, ParseError> {
    serde_path_to_error::deserialize::<_, Workflow>(value).map_err(|e| {
        let path = e.path().to_string();
        ParseError::Shape {
            path,
            line: 0,
            column: 0,
            message: strip_position(&e.into_inner().to_string()),
        }
    })
}

/// serde_json appends " at line X column Y" to its messages; the error carries those as fields.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
