//! A live backend instance with its open storage, restarted after a fault.
//!
//! Calls go through [`Caller`]; after a fault the next call builds a fresh
//! instance from the pre-linked component and re-opens the storage.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use crate::error::{Error, Result};
use crate::instance::{Caller, Instance};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::plugin::LoadedBackend;
use crate::sandbox::Grants;
use crate::wit::backends::Backend;
use crate::wit::{OpenConfig, PluginError};

pub(crate) type Live = Instance<Backend>;

/// A backend plugin with its grants, limits and open storage.
pub struct Session {
    pub(crate) loaded: LoadedBackend,
    grants: Grants,
    caller: Caller,
    config: OpenConfig,
    live: Option<Live>,
    /// Counts instances started: cursors and rewriters belong to one.
    generation: u64,
}

impl Session {
    /// Whether record places are the backend's own addresses rather than
    /// byte offsets in a file: a store reached over the network (no
    /// directory granted). Redis packs entry ids into them; they are
    /// unrelated to a unit's size (places the host merges, the backend
    /// unpacks: see `guest-backends/redis/src/ids.rs`).
    pub(crate) fn places_are_addresses(&self) -> bool {
        self.grants.network.is_some() && self.grants.data.is_none()
    }
}

/// The error for a plugin's own refusal of `operation`; its words are
/// escaped here, once, for every terminal, log and report they reach.
pub(crate) fn plugin_error(label: &str, operation: &str, e: PluginError) -> Error {
    let (plugin, operation) = (label.to_string(), operation.to_string());
    match e {
        PluginError::Unsupported(message) => Error::Unsupported {
            plugin,
            operation,
            message: crate::text::clean(&message).into_owned(),
        },
        e => Error::Plugin {
            plugin,
            operation,
            message: crate::text::clean(&crate::wit::describe(&e)).into_owned(),
        },
    }
}

impl Session {
    /// Instantiates the plugin and opens its storage.
    pub fn open(
        loaded: LoadedBackend,
        grants: Grants,
        limits: Limits,
        config: OpenConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let caller = Caller {
            label: loaded.label.clone(),
            limits,
            metrics,
        };
        let mut session = Session {
            loaded,
            grants,
            caller,
            config,
            live: None,
            generation: 0,
        };
        session.live()?;
        Ok(session)
    }

    fn live(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            self.generation += 1;
        }
        let (loaded, config) = (&self.loaded, &self.config);
        self.caller
            .ensure(&mut self.live, &self.grants, async |store| {
                let plugin = loaded.pre.instantiate(store).await?;
                Ok(match plugin.open(store, config).await? {
                    Ok(handle) => Ok((plugin, handle)),
                    Err(e) => Err(plugin_error(&loaded.label, "open", e)),
                })
            })
    }

    /// Runs one call into the plugin. `f` gets the live instance and returns
    /// wasmtime's result wrapping the plugin's own.
    pub(crate) fn call<T>(
        &mut self,
        operation: &str,
        f: impl AsyncFnOnce(&mut Live) -> wasmtime::Result<std::result::Result<T, PluginError>>,
    ) -> Result<T> {
        self.live()?;
        let label = &self.loaded.label;
        self.caller.call(&mut self.live, operation, f, |e| {
            plugin_error(label, operation, e)
        })
    }

    /// Discards the instance after an impossible return value and returns
    /// the fault for it.
    pub(crate) fn bad_return(&mut self, operation: &str, cause: String) -> Error {
        self.caller.bad_return(&mut self.live, operation, cause)
    }

    /// The instance a resource made now would belong to, if one is live.
    pub(crate) fn generation(&self) -> Option<u64> {
        self.live.as_ref().map(|_| self.generation)
    }

    /// The error for a cursor or rewriter whose instance was discarded after
    /// a fault (already reported): it is gone with its instance.
    pub(crate) fn stale(&self, operation: &str) -> Error {
        Error::Fault {
            plugin: self.loaded.label.clone(),
            operation: operation.into(),
            cause: "was restarted after an earlier fault; this cursor or rewrite went with it"
                .into(),
        }
    }

    /// Drops a resource the plugin handed out (cursor, rewriter) made by
    /// instance `generation`; one of a discarded instance is already gone.
    pub(crate) fn drop_resource(&mut self, resource: ResourceAny, generation: u64) {
        if self.generation() == Some(generation) {
            self.caller.drop_resource(&mut self.live, resource);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(handle) = self.live.as_ref().map(|l| l.handle) {
            self.caller.drop_resource(&mut self.live, handle);
        }
    }
}
