//! `{{ secrets.NAME }}` references: resolved by the runner just before a node runs, from a
//! [`Secrets`] port, and redacted from everything the node returns or raises.
//!
//! Secret values never enter the state machine's data: the compiler leaves the reference text
//! in the node's config, so run history shows `{{ secrets.API_TOKEN }}`, not the token.

use crate::{BoxFuture, NodeError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// Looks up secret values by name (a local file or environment in the embedded engine; SSM
/// Parameter Store or Secrets Manager in the cloud).
pub trait Secrets: Send + Sync {
    /// The value of secret `name`, or `None` if there is no such secret. `Err` is reserved
    /// for a store that cannot answer (it becomes `ConcertMaster.Internal`).
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, NodeError>>;
}

/// Whether `name` is a valid secret name (letters, digits, `_`, `-`, `.`, `/`; 1–128).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
}

/// The secret names a string references, in order (`"Bearer {{ secrets.TOKEN }}"` → `TOKEN`).
pub fn references(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let expr = after[..end].trim();
        if let Some(name) = expr.strip_prefix("secrets.")
            && valid_name(name)
        {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

/// Secret values that must not leave a node: every occurrence is replaced by `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: BTreeSet<String>,
}

impl Redactor {
    /// Adds a value to hide (values shorter than 4 characters are hidden too, but only as a
    /// whole string, so `"a"` does not mangle every word).
    pub fn add(&mut self, value: &str) {
        if !value.is_empty() {
            self.values.insert(value.to_owned());
        }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `s` with every secret value replaced by `***`.
    pub fn redact(&self, s: &str) -> String {
        let mut out = s.to_owned();
        // Longest first, so a secret containing another is hidden whole.
        let mut values: Vec<&String> = self.values.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            if v.len() >= 4 {
                out = out.replace(v.as_str(), "***");
            } else if out == *v {
                out = "***".into();
            }
        }
        out
    }

    /// A JSON value with every string (and object key) redacted.
    pub fn redact_value(&self, v: Value) -> Value {
        if self.is_empty() {
            return v;
        }
        match v {
            Value::String(s) => Value::String(self.redact(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|i| self.redact_value(i)).collect())
            }
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| (self.redact(&k), self.redact_value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Replaces every `{{ secrets.NAME }}` in the strings of `config` with the secret's value,
/// recording the values in `redactor`. A missing secret is `ConcertMaster.SecretNotFound`
/// naming the secret and the config field (never a value).
pub async fn resolve(
    config: Value,
    secrets: &dyn Secrets,
    redactor: &mut Redactor,
) -> Result<Value, NodeError> {
    let mut names = BTreeSet::new();
    collect(&config, &mut names);
    if names.is_empty() {
        return Ok(config);
    }
    let mut values = BTreeMap::new();
    for name in names {
        match secrets.get(&name).await? {
            Some(v) => {
                redactor.add(&v);
                values.insert(name, v);
            }
            None => {
                let field = locate(&config, &name, String::new()).unwrap_or_default();
                return Err(NodeError::SecretNotFound(format!(
                    "secret `{name}` (referenced at config{field}) is not defined"
                )));
            }
        }
    }
    Ok(substitute(config, &values))
}

fn collect(v: &Value, names: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => names.extend(references(s).into_iter().map(str::to_owned)),
        Value::Array(items) => items.iter().for_each(|i| collect(i, names)),
        Value::Object(m) => m.values().for_each(|i| collect(i, names)),
        _ => {}
    }
}

/// The JSON Pointer of the first string referencing `name`.
fn locate(v: &Value, name: &str, at: String) -> Option<String> {
    match v {
        Value::String(s) => references(s).contains(&name).then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| locate(x, name, format!("{at}/{i}"))),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, x)| locate(x, name, format!("{at}/{k}"))),
        _ => None,
    }
}

fn substitute(v: Value, values: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) if s.contains("{{") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else { break };
                out.push_str(&rest[..start]);
                let expr = after[..end].trim();
                match expr.strip_prefix("secrets.").and_then(|n| values.get(n)) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|i| substitute(i, values)).collect())
        }
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, i)| (k, substitute(i, values)))
                .collect(),
        ),
        other => other,
    }
}

/// Secrets from a JSON file (`{"NAME": "value"}`) and the environment
/// (`CONCERTMASTER_SECRET_<NAME>`, which wins): the embedded engine's secret store.
#[derive(Debug, Clone, Default)]
pub struct LocalSecrets {
    file: BTreeMap<String, String>,
    env_prefix: Option<String>,
}

impl LocalSecrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `{"NAME": "value", …}` from a JSON file. Non-string values and bad names are
    /// errors naming the file and key.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading secrets file {}: {e}", path.display()))?;
        let map: BTreeMap<String, Value> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "secrets file {} must be a JSON object of strings: {e}",
                path.display()
            )
        })?;
        let mut file = BTreeMap::new();
        for (k, v) in map {
            if !valid_name(&k) {
                return Err(format!(
                    "secrets file {}: `{k}` is not a valid secret name (letters, digits, _ - . /)",
                    path.display()
                ));
            }
            match v {
                Value::String(s) => {
                    file.insert(k, s);
                }
                _ => {
                    return Err(format!(
                        "secrets file {}: the value of `{k}` must be a string",
                        path.display()
                    ));
                }
            }
        }
        Ok(LocalSecrets {
            file,
            env_prefix: None,
        })
    }

    /// Also reads `<prefix><NAME>` environment variables (they override the file).
    pub fn with_env(mut self, prefix: &str) -> Self {
        self.env_prefix = Some(prefix.to_owned());
        self
    }

    /// Adds one secret.
    pub fn insert(mut self, name: &str, value: &str) -> Self {
        self.file.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl Secrets for LocalSecrets {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, NodeError>> {
        let from_env = self.env_prefix.as_ref().and_then(|p| {
            let key = format!("{p}{}", name.replace(['-', '.', '/'], "_"));
            std::env::var(key).ok()
        });
        let v = from_env.or_else(|| self.file.get(name).cloned());
        Box::pin(async move { Ok(v) })
    }
}

impl<S: Secrets + ?Sized> Secrets for Arc<S> {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, NodeError>> {
        (**self).get(name)
    }
}
