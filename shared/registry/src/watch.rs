//! Reloading plugin descriptors when their folder changes (used by `concertmaster dev`).

use crate::{Registry, RegistryError};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};

/// The result of (re)loading a plugin folder on top of a base registry.
pub struct Reload {
    /// Base types plus every plugin that loaded.
    pub registry: Registry,
    /// Files that failed to load (their types are absent from `registry`).
    pub errors: Vec<RegistryError>,
}

/// Loads `dir`'s plugin descriptors on top of a copy of `base`.
pub fn load(base: &Registry, dir: &Path) -> Result<Reload, RegistryError> {
    let mut registry = base.clone();
    let errors = registry.load_plugin_dir(dir)?;
    Ok(Reload { registry, errors })
}

/// Watches a plugin folder and hands a freshly loaded registry to a callback after each change.
/// Dropping the watcher stops it.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl PluginWatcher {
    /// Starts watching `dir`. `on_reload` runs on the watcher's thread after every change event
    /// that touches a descriptor file; a folder that cannot be read yields `Err`.
    pub fn start<F>(dir: PathBuf, base: Registry, on_reload: F) -> Result<Self, RegistryError>
    where
        F: Fn(Result<Reload, RegistryError>) + Send + 'static,
    {
        let watched = dir.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    Ok(ev) => {
                        !matches!(ev.kind, notify::EventKind::Access(_))
                            && ev.paths.iter().any(|p| {
                                p.extension()
                                    .and_then(|e| e.to_str())
                                    .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
                            })
                    }
                    Err(_) => true,
                };
                if relevant {
                    on_reload(load(&base, &watched));
                }
            })
            .map_err(|e| watch_error(&dir, e))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&dir, e))?;
        Ok(PluginWatcher { _watcher: watcher })
    }
}

fn watch_error(dir: &Path, e: notify::Error) -> RegistryError {
    RegistryError::PluginFile {
        path: dir.to_owned(),
        message: format!("cannot watch plugin folder: {e}"),
    }
}
