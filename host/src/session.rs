//! A live backend instance, and the one place where plugin calls are made.
//!
//! Every call runs under the CPU deadline; a trap, deadline or impossible
//! return value discards the instance (a trapped store is poisoned) and the
//! next call builds a fresh one from the pre-linked component and re-opens
//! the storage.

use std::sync::Arc;

use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

use crate::bindings::{OpenConfig, PluginError};
use crate::engine;
use crate::error::{Error, Result};
use crate::metrics::{self, Metrics};
use crate::plugin::LoadedBackend;
use crate::sandbox::{Grants, Limits, PluginState};

pub(crate) struct Live {
    pub store: Store<PluginState>,
    pub plugin: crate::versions::Backend,
    pub handle: ResourceAny,
}

/// A backend plugin with its grants, limits and open storage.
pub struct Session {
    pub(crate) loaded: LoadedBackend,
    grants: Grants,
    limits: Limits,
    config: OpenConfig,
    live: Option<Live>,
    /// Counts contained faults (`plugin_faults`).
    metrics: Arc<Metrics>,
}

/// Builds a fresh store under the session's limits.
pub(crate) fn new_store(grants: &Grants, limits: &Limits) -> Result<Store<PluginState>> {
    let mut store = Store::new(engine::engine(), PluginState::new(grants, limits)?);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(engine::ticks(limits.call_deadline));
    store.epoch_deadline_trap();
    Ok(store)
}

/// Describes a wasmtime error from a call: trap, deadline, or host failure.
pub(crate) fn fault_cause(e: &wasmtime::Error, limits: &Limits) -> String {
    let text = format!("{e:#}");
    // `trap_on_grow_failure` turns a denied grow into this trap.
    if text.contains("forcing trap when growing memory") {
        return format!(
            "exceeded its memory limit of {} MiB",
            limits.memory_bytes >> 20
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("exceeded its CPU deadline of {:?}", limits.call_deadline),
        Some(trap) => {
            // The wasm backtrace is for plugin authors (QUIRE_LOG=debug); operators get the trap.
            tracing::debug!("plugin trap: {text}");
            let panic = text
                .lines()
                .find(|l| l.contains("panicked"))
                .map(|l| format!(" ({})", l.trim()));
            format!("trapped: {trap}{}", panic.unwrap_or_default())
        }
        None => format!("failed: {text}"),
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
        let mut session = Session {
            loaded,
            grants,
            limits,
            config,
            live: None,
            metrics,
        };
        session.live()?;
        Ok(session)
    }

    fn start(&self) -> Result<Live> {
        let mut store = new_store(&self.grants, &self.limits)?;
        let plugin = self
            .loaded
            .pre
            .instantiate(&mut store)
            .map_err(|e| Error::Fault {
                plugin: self.loaded.label.clone(),
                operation: "instantiate".into(),
                cause: fault_cause(&e, &self.limits),
            })?;
        let opened = plugin.open(&mut store, &self.config);
        match opened {
            Ok(Ok(handle)) => Ok(Live {
                store,
                plugin,
                handle,
            }),
            Ok(Err(e)) => Err(self.plugin_error("open", e)),
            Err(e) => Err(Error::Fault {
                plugin: self.loaded.label.clone(),
                operation: "open".into(),
                cause: fault_cause(&e, &self.limits),
            }),
        }
    }

    fn live(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            let started = self.start();
            if let Err(Error::Fault { .. }) = &started {
                metrics::add(&self.metrics.plugin_faults, 1);
            }
            self.live = Some(started?);
        }
        Ok(self.live.as_mut().expect("just started"))
    }

    pub(crate) fn plugin_error(&self, operation: &str, e: PluginError) -> Error {
        let (plugin, operation) = (self.loaded.label.clone(), operation.to_string());
        match e {
            PluginError::Unsupported(message) => Error::Unsupported {
                plugin,
                operation,
                message,
            },
            e => Error::Plugin {
                plugin,
                operation,
                message: crate::bindings::describe(&e),
            },
        }
    }

    /// Runs one call into the plugin. `f` gets the live instance and returns
    /// wasmtime's result wrapping the plugin's own.
    pub(crate) fn call<T>(
        &mut self,
        operation: &str,
        f: impl FnOnce(&mut Live) -> wasmtime::Result<std::result::Result<T, PluginError>>,
    ) -> Result<T> {
        let deadline = engine::ticks(self.limits.call_deadline);
        let live = self.live()?;
        live.store.set_epoch_deadline(deadline);
        match f(live) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.plugin_error(operation, e)),
            Err(e) => Err(self.fault(operation, fault_cause(&e, &self.limits))),
        }
    }

    /// Discards the instance after a fault and returns the error for it.
    pub(crate) fn fault(&mut self, operation: &str, cause: String) -> Error {
        self.live = None;
        metrics::add(&self.metrics.plugin_faults, 1);
        tracing::warn!(plugin = %self.loaded.label, operation, "plugin faulted: {cause}; instance discarded");
        Error::Fault {
            plugin: self.loaded.label.clone(),
            operation: operation.into(),
            cause,
        }
    }

    /// Drops a resource the plugin handed out (cursor, rewriter); failures
    /// only matter if the instance is already gone.
    pub(crate) fn drop_resource(&mut self, resource: ResourceAny) {
        if let Some(live) = self.live.as_mut() {
            let _ = resource.resource_drop(&mut live.store);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut live) = self.live.take() {
            let _ = live.handle.resource_drop(&mut live.store);
        }
    }
}
