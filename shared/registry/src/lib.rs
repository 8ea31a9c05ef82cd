//! The node type registry.
//!
//! Every node in a workflow names a type (`action.http`) and a type version. The registry maps
//! that pair to a [`NodeTypeDescriptor`]: what the node is called, its config JSON Schema, its
//! output ports, how it runs (native ASL state, AWS service integration, a task on the
//! node-runner, or a plugin executor) and its default retry policy.
//!
//! Built-in types come from [`builtin`]; plugin types are loaded at run time from descriptor
//! files (JSON or YAML) in a folder ([`Registry::load_plugin_dir`]) and can be reloaded when the
//! folder changes ([`watch::PluginWatcher`]).

pub mod builtin;
mod descriptor;
pub mod docs;
pub mod watch;

pub use descriptor::{
    Category, Execution, NativeState, NodeTypeDescriptor, PluginExecutor, PortRule, PortSpec,
    ServiceIntegration,
};

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a lookup or registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No descriptor has this type id.
    #[error("unknown node type `{type_id}`")]
    UnknownType {
        /// The type id asked for.
        type_id: String,
    },
    /// The type exists, but not in this version.
    #[error("node type `{type_id}` has no version {version} (available: {available:?})")]
    UnknownVersion {
        /// The type id asked for.
        type_id: String,
        /// The version asked for.
        version: u32,
        /// Versions that exist.
        available: Vec<u32>,
    },
    /// A descriptor with the same type id and version is already registered.
    #[error("node type `{type_id}` version {version} is already registered")]
    Duplicate {
        /// Type id.
        type_id: String,
        /// Version.
        version: u32,
    },
    /// The descriptor itself is unusable (bad id, bad schema, plugin without executor…).
    #[error("invalid descriptor for `{type_id}`: {message}")]
    InvalidDescriptor {
        /// Type id as written in the descriptor.
        type_id: String,
        /// What is wrong.
        message: String,
    },
    /// A plugin descriptor file could not be read or parsed.
    #[error("plugin file {}: {message}", path.display())]
    PluginFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// One violation of a node's config against its type's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigViolation {
    /// JSON Pointer into the node's config (`""` for the config itself).
    pub pointer: String,
    /// Human-readable message from the validator.
    pub message: String,
}

/// A descriptor together with its compiled config validator.
pub struct RegisteredType {
    descriptor: NodeTypeDescriptor,
    validator: jsonschema::Validator,
    source: Source,
}

/// Where a registered type came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Shipped with ConcertMaster.
    Builtin,
    /// Loaded from a plugin descriptor file.
    Plugin(PathBuf),
}

impl RegisteredType {
    /// The descriptor.
    pub fn descriptor(&self) -> &NodeTypeDescriptor {
        &self.descriptor
    }

    /// Where the type came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Validates a node config against the type's schema, returning every violation.
    pub fn validate_config(&self, config: &Value) -> Vec<ConfigViolation> {
        self.validator
            .iter_errors(config)
            .map(|e| ConfigViolation {
                pointer: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect()
    }
}

/// Filter for [`Registry::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this category.
    pub category: Option<Category>,
    /// Case-insensitive substring of type id, title or description.
    pub search: Option<String>,
}

/// The set of known node types. Cheap to clone (descriptors are shared).
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<String, BTreeMap<u32, Arc<RegisteredType>>>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// A registry with every built-in type.
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        for d in builtin::descriptors() {
            // Built-in descriptors are tested to register cleanly (see tests).
            if let Err(e) = r.insert(d, Source::Builtin) {
                panic!("built-in descriptor is invalid: {e}");
            }
        }
        r
    }

    /// Registers a descriptor (checks its id, ports and schema).
    pub fn register(&mut self, d: NodeTypeDescriptor) -> Result<(), RegistryError> {
        self.insert(d, Source::Builtin)
    }

    fn insert(&mut self, d: NodeTypeDescriptor, source: Source) -> Result<(), RegistryError> {
        let invalid = |message: String| RegistryError::InvalidDescriptor {
            type_id: d.type_id.clone(),
            message,
        };
        if !is_valid_type_id(&d.type_id) {
            return Err(invalid(
                "type ids are dot-separated lowercase words, e.g. `acme.crm_lookup`".into(),
            ));
        }
        if d.version == 0 {
            return Err(invalid("version starts at 1".into()));
        }
        if matches!(source, Source::Plugin(_)) && !matches!(d.execution, Execution::Plugin { .. }) {
            return Err(invalid(
                "plugin descriptors must use `execution: {kind: plugin, ...}`".into(),
            ));
        }
        if matches!(d.execution, Execution::Plugin { .. }) && d.category == Category::Trigger {
            return Err(invalid(
                "plugins cannot be triggers: runs start from the built-in trigger types".into(),
            ));
        }
        if d.category == Category::Trigger && !matches!(d.execution, Execution::Trigger) {
            return Err(invalid(
                "trigger types must use `execution: {kind: trigger}`".into(),
            ));
        }
        if let Execution::Plugin { executor } = &d.execution
            && executor.lambda_arn.is_none()
            && executor.http_url.is_none()
        {
            return Err(invalid(
                "a plugin executor needs `lambdaArn` (cloud) and/or `httpUrl` (local)".into(),
            ));
        }
        for p in &d.output_ports {
            if !cm_model::is_valid_node_id(&p.name) {
                return Err(invalid(format!(
                    "port name `{}` is not an identifier",
                    p.name
                )));
            }
        }
        jsonschema::draft202012::meta::validate(&d.config_schema)
            .map_err(|e| invalid(format!("configSchema is not a valid JSON Schema: {e}")))?;
        let validator = jsonschema::draft202012::new(&d.config_schema)
            .map_err(|e| invalid(format!("configSchema does not compile: {e}")))?;
        let versions = self.types.entry(d.type_id.clone()).or_default();
        if versions.contains_key(&d.version) {
            return Err(RegistryError::Duplicate {
                type_id: d.type_id.clone(),
                version: d.version,
            });
        }
        versions.insert(
            d.version,
            Arc::new(RegisteredType {
                descriptor: d,
                validator,
                source,
            }),
        );
        Ok(())
    }

    /// Looks up a type by id and version.
    pub fn get(&self, type_id: &str, version: u32) -> Result<&Arc<RegisteredType>, RegistryError> {
        let versions = self
            .types
            .get(type_id)
            .ok_or_else(|| RegistryError::UnknownType {
                type_id: type_id.to_owned(),
            })?;
        versions
            .get(&version)
            .ok_or_else(|| RegistryError::UnknownVersion {
                type_id: type_id.to_owned(),
                version,
                available: versions.keys().copied().collect(),
            })
    }

    /// The latest version of a type.
    pub fn latest(&self, type_id: &str) -> Option<&Arc<RegisteredType>> {
        self.types.get(type_id)?.values().next_back()
    }

    /// Every registered type (all versions), sorted by type id then version, filtered.
    pub fn list(&self, filter: &ListFilter) -> Vec<&NodeTypeDescriptor> {
        let needle = filter.search.as_ref().map(|s| s.to_lowercase());
        self.types
            .values()
            .flat_map(|v| v.values())
            .map(|t| &t.descriptor)
            .filter(|d| filter.category.is_none_or(|c| d.category == c))
            .filter(|d| {
                needle.as_ref().is_none_or(|n| {
                    d.type_id.to_lowercase().contains(n)
                        || d.title.to_lowercase().contains(n)
                        || d.description.to_lowercase().contains(n)
                })
            })
            .collect()
    }

    /// Number of registered (type, version) pairs.
    pub fn len(&self) -> usize {
        self.types.values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Registers every `*.json`, `*.yaml` and `*.yml` descriptor file in `dir` (not recursive).
    ///
    /// Each file holds one descriptor or an array of descriptors. Files are processed in name
    /// order; a bad file does not stop the others: its error is returned in the list and none of
    /// its descriptors is registered.
    pub fn load_plugin_dir(&mut self, dir: &Path) -> Result<Vec<RegistryError>, RegistryError> {
        let entries = std::fs::read_dir(dir).map_err(|e| RegistryError::PluginFile {
            path: dir.to_owned(),
            message: format!("cannot read plugin folder: {e}"),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_descriptor_file(p))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        for path in files {
            if let Err(e) = self.load_plugin_file(&path) {
                errors.push(e);
            }
        }
        Ok(errors)
    }

    /// Registers the descriptors of one plugin file, all or nothing.
    pub fn load_plugin_file(&mut self, path: &Path) -> Result<usize, RegistryError> {
        let file_err = |message: String| RegistryError::PluginFile {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let value: Value = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| file_err(e.to_string()))?
        } else {
            serde_norway::from_str(&text).map_err(|e| file_err(e.to_string()))?
        };
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut parsed = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let d: NodeTypeDescriptor = serde_json::from_value(item)
                .map_err(|e| file_err(format!("descriptor #{i}: {e}")))?;
            parsed.push(d);
        }
        // All or nothing: register into a copy, then swap.
        let mut next = self.clone();
        for d in &parsed {
            next.insert(d.clone(), Source::Plugin(path.to_owned()))
                .map_err(|e| file_err(e.to_string()))?;
        }
        *self = next;
        Ok(parsed.len())
    }
}

/// Whether a path looks like a plugin descriptor file.
pub fn is_descriptor_file(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
}

/// Type ids: two or more dot-separated segments of `[a-z][a-z0-9_]*`.
pub fn is_valid_type_id(id: &str) -> bool {
    let segments: Vec<&str> = id.split('.').collect();
    id.len() <= 100
        && segments.len() >= 2
        && segments.iter().all(|s| {
            let mut c = s.chars();
            matches!(c.next(), Some(f) if f.is_ascii_lowercase())
                && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

#[cfg(test)]
mod tests;
