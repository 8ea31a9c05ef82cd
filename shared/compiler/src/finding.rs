//! Validation findings: one located problem each, with a stable code.

use schemars::JsonSchema;
use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot be compiled or would fail at run time.
    Error,
    /// The workflow compiles, but probably does not do what was meant.
    Warning,
}

/// One problem found in a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable machine-readable code, e.g. `edge.unknown_target` (see `docs/validation.md`).
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// Node the finding is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Index of the edge in `edges` the finding is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<usize>,
    /// JSON Pointer into the workflow document (e.g. `/nodes/3/config/url`).
    pub path: String,
    /// Nodes involved, in order (e.g. the nodes of a cycle).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Finding {
    /// An error finding at `path`.
    pub fn error(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity: Severity::Error,
            node_id: None,
            edge: None,
            path: path.into(),
            nodes: Vec::new(),
            message: message.into(),
        }
    }

    /// A warning finding at `path`.
    pub fn warning(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, path, message)
        }
    }

    /// Attaches the node id.
    pub fn node(mut self, id: &str) -> Self {
        self.node_id = Some(id.to_owned());
        self
    }

    /// Attaches the edge index.
    pub fn edge(mut self, index: usize) -> Self {
        self.edge = Some(index);
        self
    }

    /// Attaches the list of nodes involved.
    pub fn involving(mut self, nodes: Vec<String>) -> Self {
        self.nodes = nodes;
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]", self.code)?;
        if let Some(n) = &self.node_id {
            write!(f, " node `{n}`")?;
        }
        if let Some(e) = self.edge {
            write!(f, " edge #{e}")?;
        }
        write!(
            f,
            " at {}: {}",
            if self.path.is_empty() {
                "/"
            } else {
                &self.path
            },
            self.message
        )
    }
}

/// Escapes a JSON Pointer reference token (RFC 6901).
pub fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
