//! One place where plugin calls are made, for backends and policies alike.
//!
//! A call runs under the wall-clock timeout; a trap, a timeout, a refused
//! limit or an impossible return value discards the instance (a trapped
//! store is poisoned, a cancelled one is mid-call), counts a fault, and
//! becomes an [`Error::Fault`] naming the plugin, the operation and the
//! cause. The next call builds a fresh instance.

use std::sync::Arc;

use wasmtime::Trap;
use wasmtime::component::{ResourceAny, ResourceTableError};

use crate::deadline;
use crate::engine;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::metrics::{self, Metrics};
use crate::sandbox::{Grants, PluginState};

/// wasmtime's store, named apart from [`crate::Store`].
pub(crate) type WasmStore = wasmtime::Store<PluginState>;

/// A live instance: its store, its bindings, and the one resource the host
/// works through (a backend's open store, a policy's evaluator).
pub(crate) struct Instance<P> {
    pub store: WasmStore,
    pub plugin: P,
    pub handle: ResourceAny,
}

/// Who is being called, under which limits, counted where.
#[derive(Clone)]
pub(crate) struct Caller {
    /// The plugin's label for errors.
    pub label: String,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

/// Builds a fresh store under `limits`: the limiter, and a yield at every
/// epoch tick so that the deadline timer gets to run while the guest computes.
pub(crate) fn new_store(grants: &Grants, limits: &Limits) -> Result<WasmStore> {
    let mut store = WasmStore::new(engine::engine(), PluginState::new(grants, limits)?);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    Ok(store)
}

impl Caller {
    /// A fault of `operation` for `cause`, counted and logged. The caller
    /// must discard the instance.
    pub fn fault(&self, operation: &str, cause: String) -> Error {
        metrics::add(&self.metrics.plugin_faults, 1);
        let plugin = crate::text::clean(&self.label);
        tracing::warn!(%plugin, operation, "plugin faulted: {cause}; instance discarded");
        Error::Fault {
            plugin: self.label.clone(),
            operation: operation.into(),
            cause,
        }
    }

    /// The fault for the outcome of a call that did not return a value:
    /// `None` is a timeout, `Some(e)` a trap or host failure.
    fn fault_of(
        &self,
        operation: &str,
        state: &mut PluginState,
        e: Option<wasmtime::Error>,
    ) -> Error {
        let cause = match e {
            None => format!("exceeded its timeout of {:?}", self.limits.timeout),
            Some(e) => cause_of(&e, state),
        };
        self.fault(operation, cause)
    }

    /// Runs `call` once on a fresh instance with `grants`, which is then
    /// dropped: for questions with no state behind them (`info`).
    pub fn once<T>(
        &self,
        grants: &Grants,
        operation: &str,
        call: impl AsyncFnOnce(&mut WasmStore) -> wasmtime::Result<T>,
    ) -> Result<T> {
        let mut store = new_store(grants, &self.limits)?;
        match deadline::within(self.limits.timeout, call(&mut store)) {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(self.fault_of(operation, store.data_mut(), Some(e))),
            None => Err(self.fault_of(operation, store.data_mut(), None)),
        }
    }

    /// Makes an instance in `slot` if there is none: `start` instantiates
    /// and prepares it, under the same timeout as any call. Its outer error
    /// is a fault, its inner one the plugin's own refusal.
    pub fn ensure<'s, P>(
        &self,
        slot: &'s mut Option<Instance<P>>,
        grants: &Grants,
        start: impl AsyncFnOnce(&mut WasmStore) -> wasmtime::Result<Result<(P, ResourceAny)>>,
    ) -> Result<&'s mut Instance<P>> {
        if slot.is_none() {
            let mut store = new_store(grants, &self.limits)?;
            let (plugin, handle) = match deadline::within(self.limits.timeout, start(&mut store)) {
                Some(Ok(Ok(started))) => started,
                Some(Ok(Err(refused))) => return Err(refused),
                Some(Err(e)) => return Err(self.fault_of("open", store.data_mut(), Some(e))),
                None => return Err(self.fault_of("open", store.data_mut(), None)),
            };
            *slot = Some(Instance {
                store,
                plugin,
                handle,
            });
        }
        Ok(slot.as_mut().expect("just filled"))
    }

    /// Runs `call` on the instance in `slot` (made by [`Caller::ensure`])
    /// under the timeout. The plugin's own error goes through `own`; a
    /// fault empties the slot.
    pub fn call<P, T, E>(
        &self,
        slot: &mut Option<Instance<P>>,
        operation: &str,
        call: impl AsyncFnOnce(&mut Instance<P>) -> wasmtime::Result<std::result::Result<T, E>>,
        own: impl FnOnce(E) -> Error,
    ) -> Result<T> {
        let Some(instance) = slot.as_mut() else {
            return Err(self.fault(
                operation,
                "has no live instance (an earlier start failed)".into(),
            ));
        };
        instance.store.data_mut().limiter.denied = None;
        instance.store.data_mut().storage_error = None;
        let failure = match deadline::within(self.limits.timeout, call(instance)) {
            Some(Ok(Ok(value))) => return Ok(value),
            Some(Ok(Err(e))) => {
                let seen = instance.store.data_mut().storage_error.take();
                return Err(with_storage_error(own(e), seen));
            }
            Some(Err(e)) => Some(e),
            None => None,
        };
        let mut dead = slot.take().expect("checked above");
        Err(self.fault_of(operation, dead.store.data_mut(), failure))
    }

    /// Drops a resource the plugin handed out (a cursor, a rewriter, the
    /// root handle). The guest's destructor runs under the timeout too; if it
    /// fails, the instance goes (its resources with it).
    pub fn drop_resource<P>(&self, slot: &mut Option<Instance<P>>, resource: ResourceAny) {
        let Some(instance) = slot.as_mut() else {
            return;
        };
        let dropped = deadline::within(
            self.limits.timeout,
            resource.resource_drop_async(&mut instance.store),
        );
        if !matches!(dropped, Some(Ok(()))) {
            slot.take();
        }
    }

    /// A value the plugin returned that cannot be true: the instance in
    /// `slot` is discarded and the call is a fault.
    pub fn bad_return<P>(
        &self,
        slot: &mut Option<Instance<P>>,
        operation: &str,
        cause: String,
    ) -> Error {
        slot.take();
        self.fault(operation, cause)
    }
}

/// Puts what the file system said (seen by the host: "No space left on
/// device") before a plugin's error about a failed write, which the guest's
/// libc reduces to "I/O error".
fn with_storage_error(e: Error, seen: Option<String>) -> Error {
    match (e, seen) {
        (
            Error::Plugin {
                plugin,
                operation,
                message,
            },
            Some(seen),
        ) if !message.contains(&seen) => Error::Plugin {
            plugin,
            operation,
            message: format!("{seen}: {message}"),
        },
        (e, _) => e,
    }
}

/// Describes a wasmtime error from a call: a refused limit, a trap, or a
/// host failure.
pub(crate) fn cause_of(e: &wasmtime::Error, state: &mut PluginState) -> String {
    if let Some(denied) = state.limiter.denied.take() {
        return denied;
    }
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ResourceTableError>(),
            Some(ResourceTableError::Full)
        )
    }) {
        return format!(
            "exceeded its limit of {} open handles (files, directories, streams, pollables)",
            state.open_handles
        );
    }
    let text = format!("{e:#}");
    match e.downcast_ref::<Trap>() {
        Some(trap) => {
            // The wasm backtrace is for plugin authors (QUIRE_LOG=debug); operators get the trap.
            tracing::debug!("plugin trap: {}", crate::text::clean(&text));
            let panic = text
                .lines()
                .find(|l| l.contains("panicked"))
                .map(|l| format!(" ({})", crate::text::clean(l.trim())));
            format!("trapped: {trap}{}", panic.unwrap_or_default())
        }
        None => format!("failed: {text}"),
    }
}
