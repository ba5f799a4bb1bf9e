//! A retention policy instance, configured for one run.

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::{PolicyError, RecordMeta, UnitInfo, UnitVerdict};
use crate::error::{Error, Result};
use crate::plugin::LoadedPolicy;
use crate::sandbox::{Grants, Limits, PluginState};
use crate::session::{fault_cause, new_store};
use crate::versions::PolicyInstance;

/// A policy plugin with its evaluator. Policies get no directories at all.
pub struct Policy {
    label: String,
    limits: Limits,
    store: Store<PluginState>,
    plugin: PolicyInstance,
    evaluator: ResourceAny,
    /// The policy's own one-line description.
    pub description: String,
}

/// Re-exported so callers can build metadata batches.
pub use crate::bindings::{RecordMeta as Meta, UnitVerdict as Verdict};

impl Policy {
    /// Instantiates `loaded` and configures it with `config` (JSON) at time `now`.
    pub fn create(loaded: &LoadedPolicy, config: &str, now: f64, limits: Limits) -> Result<Self> {
        let label = loaded.label.clone();
        let fault = |op: &str, e: wasmtime::Error| Error::Fault {
            plugin: label.clone(),
            operation: op.into(),
            cause: fault_cause(&e, &limits),
        };
        let mut store = new_store(&Grants::default(), &limits)?;
        let plugin = loaded
            .pre
            .instantiate(&mut store)
            .map_err(|e| fault("instantiate", e))?;
        let evaluator = plugin
            .create(&mut store, config, now)
            .map_err(|e| fault("create", e))?
            .map_err(|e| policy_error(&label, "create", e))?;
        let description = plugin
            .describe(&mut store, evaluator)
            .map_err(|e| fault("describe", e))?;
        Ok(Policy {
            label,
            limits,
            store,
            plugin,
            evaluator,
            description,
        })
    }

    fn fault(&self, operation: &str, e: wasmtime::Error) -> Error {
        Error::Fault {
            plugin: self.label.clone(),
            operation: operation.into(),
            cause: fault_cause(&e, &self.limits),
        }
    }

    /// Unit verdicts, one per unit.
    pub fn plan_units(&mut self, units: &[UnitInfo]) -> Result<Vec<UnitVerdict>> {
        let verdicts = self
            .plugin
            .plan_units(&mut self.store, self.evaluator, units)
            .map_err(|e| self.fault("plan-units", e))?;
        if verdicts.len() != units.len() {
            return Err(Error::Fault {
                plugin: self.label.clone(),
                operation: "plan-units".into(),
                cause: format!(
                    "returned {} verdicts for {} units",
                    verdicts.len(),
                    units.len()
                ),
            });
        }
        Ok(verdicts)
    }

    /// Pass one.
    pub fn observe(&mut self, batch: &[RecordMeta]) -> Result<()> {
        self.plugin
            .observe(&mut self.store, self.evaluator, batch)
            .map_err(|e| self.fault("observe", e))?
            .map_err(|e| policy_error(&self.label, "observe", e))
    }

    /// Pass two: keep flags, one per record.
    pub fn decide(&mut self, batch: &[RecordMeta]) -> Result<Vec<bool>> {
        let keep = self
            .plugin
            .decide(&mut self.store, self.evaluator, batch)
            .map_err(|e| self.fault("decide", e))?
            .map_err(|e| policy_error(&self.label, "decide", e))?;
        if keep.len() != batch.len() {
            return Err(Error::Fault {
                plugin: self.label.clone(),
                operation: "decide".into(),
                cause: format!(
                    "returned {} decisions for {} records",
                    keep.len(),
                    batch.len()
                ),
            });
        }
        Ok(keep)
    }
}

fn policy_error(label: &str, operation: &str, e: PolicyError) -> Error {
    Error::Plugin {
        plugin: label.to_string(),
        operation: operation.into(),
        message: crate::bindings::describe_policy(&e),
    }
}
