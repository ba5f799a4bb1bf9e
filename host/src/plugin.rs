//! Finding, checking and pre-linking plugin components.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use crate::cache::{self, CacheUse};
use crate::engine::engine;
use crate::error::{Error, Result};
use crate::sandbox::PluginState;
use crate::wit::{WIT_PACKAGE, WIT_VERSION, WIT_VERSIONS};
use crate::wit::{backends::BackendPre, policies::PolicyPre};

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Compiled into the binary, by short name (`ndjson`, `memory`, `standard`).
    Builtin(String),
    /// A component file.
    File(PathBuf),
}

impl PluginSource {
    /// `NAME` for a built-in, anything ending in `.wasm` or containing a `/` for a file.
    pub fn parse(text: &str) -> Self {
        if text.ends_with(".wasm") || text.contains('/') {
            PluginSource::File(PathBuf::from(text))
        } else {
            PluginSource::Builtin(text.to_string())
        }
    }

    /// How errors name the plugin.
    pub fn label(&self) -> String {
        match self {
            PluginSource::Builtin(name) => format!("`{name}` (built-in)"),
            PluginSource::File(path) => format!("`{}`", path.display()),
        }
    }
}

/// Which world a plugin must implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A storage backend: `backend-plugin`.
    Backend,
    /// A retention policy: `retention-policy`.
    Policy,
}

impl Role {
    fn interface(self) -> &'static str {
        match self {
            Role::Backend => "backend",
            Role::Policy => "policy",
        }
    }
    fn world(self) -> &'static str {
        match self {
            Role::Backend => "backend-plugin",
            Role::Policy => "retention-policy",
        }
    }
}

/// A checked, pre-linked component, ready to instantiate many times.
pub struct Loaded<P> {
    /// The plugin's label for errors.
    pub label: String,
    /// The pre-instantiated component.
    pub pre: P,
    /// Whether the compile cache served it.
    pub cache: CacheUse,
}

/// A loaded backend.
pub type LoadedBackend = Arc<Loaded<BackendPre>>;
/// A loaded policy.
pub type LoadedPolicy = Arc<Loaded<PolicyPre>>;

fn bytes_of(source: &PluginSource, role: Role) -> Result<std::borrow::Cow<'static, [u8]>> {
    match source {
        PluginSource::Builtin(name) => crate::builtin::component(name).map(Into::into).ok_or_else(|| {
            let names = match role {
                Role::Backend => crate::builtin::BACKENDS,
                Role::Policy => crate::builtin::POLICIES,
            };
            Error::Load {
                plugin: source.label(),
                message: format!(
                    "no built-in {} of that name; built-ins are: {}; or give a path to a .wasm component",
                    role.interface(),
                    names.join(", ")
                ),
            }
        }),
        PluginSource::File(path) => std::fs::read(path).map(Into::into).map_err(|e| Error::Load {
            plugin: source.label(),
            message: format!("cannot read the file: {e}"),
        }),
    }
}

/// Checks that `component` exports the interface `role` needs, at a
/// version this host speaks, and explains precisely when it does not.
/// Returns the version it exports.
pub fn check_exports(component: &Component, role: Role, label: &str) -> Result<&'static str> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let prefix = format!("{WIT_PACKAGE}/{}", role.interface());
    for version in WIT_VERSIONS {
        if exports.iter().any(|e| *e == format!("{prefix}@{version}")) {
            return Ok(version);
        }
    }
    let wanted = format!("{prefix}@{WIT_VERSION}");
    let spoken = WIT_VERSIONS.join(", ");
    let message = match exports.iter().find(|e| e.starts_with(&prefix)) {
        Some(other) => format!(
            "exports `{other}` but this host speaks `{prefix}` at versions {spoken}; rebuild the \
             plugin against wit/v0.3 (quire:persistence@{WIT_VERSION}) or use a quire release that \
             supports its version"
        ),
        None if exports.iter().any(|e| e.starts_with(WIT_PACKAGE)) => format!(
            "is a quire plugin of another kind (exports {}); expected a `{}` component exporting `{wanted}`",
            exports.join(", "),
            role.world()
        ),
        None => format!(
            "is not a quire {} plugin: it exports {} but not `{wanted}` (world `{WIT_PACKAGE}/{}@{WIT_VERSION}`)",
            role.interface(),
            if exports.is_empty() {
                "no interfaces".to_string()
            } else {
                exports.join(", ")
            },
            role.world()
        ),
    };
    Err(Error::Load {
        plugin: label.to_string(),
        message,
    })
}

/// Reads and compiles a component (from the cache when it can).
fn compile_any(
    source: &PluginSource,
    role: Role,
    cache_dir: Option<&Path>,
) -> Result<(Component, CacheUse)> {
    let bytes = bytes_of(source, role)?;
    let label = source.label();
    if !bytes.starts_with(b"\0asm") {
        return Err(Error::Load {
            plugin: label,
            message: "is not a WebAssembly file".into(),
        });
    }
    cache::load(engine(), &bytes, cache_dir).map_err(|e| Error::Load {
        plugin: label.clone(),
        message: format!(
            "is not a valid WebAssembly component ({e:#}); build plugins with `cargo build --target wasm32-wasip2`"
        ),
    })
}

fn compile(
    source: &PluginSource,
    role: Role,
    cache_dir: Option<&Path>,
) -> Result<(Component, CacheUse, &'static str)> {
    let (component, cache) = compile_any(source, role, cache_dir)?;
    let version = check_exports(&component, role, &source.label())?;
    Ok((component, cache, version))
}

/// The one linker every plugin is pre-linked with: WASI, with the file
/// calls the host serves itself, and the checksum interface. Built once; it depends on nothing but the
/// engine.
fn linker() -> &'static Linker<PluginState> {
    static LINKER: std::sync::OnceLock<Linker<PluginState>> = std::sync::OnceLock::new();
    LINKER.get_or_init(|| {
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links once");
        crate::wasi_files::link(&mut linker).expect("the host's file calls link once");
        crate::checksum::link(&mut linker).expect("the checksum interface links once");
        linker
    })
}

fn link_error(label: &str, e: wasmtime::Error) -> Error {
    Error::Load {
        plugin: label.to_string(),
        message: format!(
            "needs something the sandbox does not provide ({e:#}); plugins may import WASI 0.2 and quire's checksum interface only"
        ),
    }
}

/// Loads a backend component.
pub fn load_backend(source: &PluginSource, cache_dir: Option<&Path>) -> Result<LoadedBackend> {
    let (component, cache, version) = compile(source, Role::Backend, cache_dir)?;
    link_backend(source.label(), &component, cache, version)
}

fn link_backend(
    label: String,
    component: &Component,
    cache: CacheUse,
    version: &str,
) -> Result<LoadedBackend> {
    let instance_pre = linker()
        .instantiate_pre(component)
        .map_err(|e| link_error(&label, e))?;
    let pre = BackendPre::new(version, instance_pre).map_err(|e| link_error(&label, e))?;
    Ok(Arc::new(Loaded { label, pre, cache }))
}

/// Loads a retention policy component.
pub fn load_policy(source: &PluginSource, cache_dir: Option<&Path>) -> Result<LoadedPolicy> {
    let (component, cache, version) = compile(source, Role::Policy, cache_dir)?;
    link_policy(source.label(), &component, cache, version)
}

fn link_policy(
    label: String,
    component: &Component,
    cache: CacheUse,
    version: &str,
) -> Result<LoadedPolicy> {
    let instance_pre = linker()
        .instantiate_pre(component)
        .map_err(|e| link_error(&label, e))?;
    let pre = PolicyPre::new(version, instance_pre).map_err(|e| link_error(&label, e))?;
    Ok(Arc::new(Loaded { label, pre, cache }))
}

/// A component of either kind.
pub enum LoadedAny {
    /// A storage backend.
    Backend(LoadedBackend),
    /// A retention policy.
    Policy(LoadedPolicy),
}

/// Loads a component, compiled once, as whichever kind it is: for `plugin
/// check`, which does not know beforehand. A built-in name is looked up
/// among backends, then policies.
pub fn load_any(source: &PluginSource, cache_dir: Option<&Path>) -> Result<LoadedAny> {
    let role = match source {
        PluginSource::Builtin(name) if crate::builtin::POLICIES.contains(&name.as_str()) => {
            Role::Policy
        }
        _ => Role::Backend,
    };
    let (component, cache) = compile_any(source, role, cache_dir)?;
    let label = source.label();
    match check_exports(&component, Role::Backend, &label) {
        Ok(version) => link_backend(label, &component, cache, version).map(LoadedAny::Backend),
        Err(not_backend) => match check_exports(&component, Role::Policy, &label) {
            Ok(version) => link_policy(label, &component, cache, version).map(LoadedAny::Policy),
            Err(_) => Err(not_backend),
        },
    }
}
