//! The node type reference (`docs/node-types.md`), generated from the descriptors so that it
//! cannot drift from what the validator enforces.

use crate::{
    Category, Execution, NativeState, NodeTypeDescriptor, PortRule, Registry, ServiceIntegration,
};
use serde_json::Value;
use std::fmt::Write as _;

/// Markdown reference of every type in the registry, grouped by category.
pub fn markdown(registry: &Registry) -> String {
    let mut out = String::new();
    out.push_str("# Node types\n\n");
    out.push_str("Generated from the registry by `concertmaster node-types --markdown`; do not edit by hand.\n");
    out.push_str("A field typed *template* must be one `{{ expression }}`; any string field may contain templates (see [workflow-format.md](workflow-format.md)).\n");
    for category in Category::ALL {
        let types: Vec<&NodeTypeDescriptor> = registry
            .list(&crate::ListFilter {
                category: Some(category),
                search: None,
            })
            .into_iter()
            .collect();
        if types.is_empty() {
            continue;
        }
        let _ = write!(out, "\n## {}\n", title_case(category.as_str()));
        for d in types {
            section(&mut out, d);
        }
    }
    out
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn section(out: &mut String, d: &NodeTypeDescriptor) {
    let _ = write!(
        out,
        "\n### `{}` (v{}): {}\n\n{}\n\n",
        d.type_id, d.version, d.title, d.description
    );
    let _ = writeln!(out, "- **Runs as:** {}", runs_as(&d.execution));
    let ports: Vec<String> = d
        .output_ports
        .iter()
        .map(|p| {
            if p.required {
                format!("`{}` (required)", p.name)
            } else {
                format!("`{}`", p.name)
            }
        })
        .collect();
    let _ = writeln!(out, "- **Output ports:** {}", ports.join(", "));
    for rule in &d.port_rules {
        match rule {
            PortRule::FromConfigArray {
                pointer,
                name_field,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "  - plus one port per element of `{pointer}`, named by its `{name_field}`"
                );
            }
            PortRule::WhenConfigEquals {
                pointer,
                equals,
                ports,
            } => {
                let names: Vec<String> = ports.iter().map(|p| format!("`{}`", p.name)).collect();
                let _ = writeln!(
                    out,
                    "  - when `{pointer}` is `{equals}`: {}",
                    names.join(", ")
                );
            }
        }
    }
    if let Some(rule) = d.default_retry.first() {
        let _ = writeln!(
            out,
            "- **Default retry:** {} — {} retries, {} s apart, backoff ×{}",
            rule.errors
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", "),
            rule.max_attempts,
            rule.interval_seconds,
            rule.backoff_rate
        );
    }
    if let Some(t) = d.default_timeout_seconds {
        let _ = writeln!(out, "- **Default timeout:** {t} s per attempt");
    }
    let props = d.config_schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = d
        .config_schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(props) = props.filter(|p| !p.is_empty()) {
        out.push_str(
            "\n| config field | type | required | default | notes |\n|---|---|---|---|---|\n",
        );
        for (name, schema) in props {
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} | {} |",
                type_of(schema),
                if required.contains(&name.as_str()) {
                    "yes"
                } else {
                    ""
                },
                schema
                    .get("default")
                    .map(|v| format!("`{v}`"))
                    .unwrap_or_default(),
                schema
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .replace('|', "\\|")
            );
        }
    }
}

fn runs_as(e: &Execution) -> String {
    match e {
        Execution::Trigger => {
            "the state machine's first state (a Pass seeding the run document)".into()
        }
        Execution::Native { state } => format!(
            "a native `{}` state",
            match state {
                NativeState::Pass => "Pass",
                NativeState::Choice => "Choice",
                NativeState::Wait => "Wait",
                NativeState::Map => "Map",
            }
        ),
        Execution::Service { integration } => format!(
            "a direct service integration (`{}`)",
            match integration {
                ServiceIntegration::DynamodbPutItem => "arn:aws:states:::dynamodb:putItem",
                ServiceIntegration::SqsSendMessage => "arn:aws:states:::sqs:sendMessage",
                ServiceIntegration::StartExecution =>
                    "arn:aws:states:::states:startExecution.sync:2",
            }
        ),
        Execution::NodeRunner { callback: false } => "a task on the node-runner".into(),
        Execution::NodeRunner { callback: true } => {
            "a task on the node-runner that waits for a task-token callback".into()
        }
        Execution::Plugin { .. } => "the plugin's executor".into(),
    }
}

fn type_of(schema: &Value) -> String {
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        return options
            .iter()
            .map(|o| format!("`{o}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.iter().map(type_of).collect::<Vec<_>>().join(" or ");
    }
    if schema.get("pattern").and_then(Value::as_str) == Some("^\\{\\{.*\\}\\}$") {
        return "*template*".into();
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" \\| "),
        _ => "any".into(),
    }
}
