//! A retention policy instance, configured for one run.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::instance::{Caller, Instance};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::plugin::LoadedPolicy;
use crate::sandbox::Grants;
use crate::wit::batch::meta_batch;
use crate::wit::policies::PolicyInstance;
use crate::wit::{MetaBatch, PolicyError, UnitInfo, UnitVerdict};

/// A policy plugin with its evaluator. Policies get no directories at all.
///
/// A fault discards the instance like a backend's; the next call creates a
/// fresh evaluator from the same configuration (what it had observed is
/// gone, so a compaction that saw the fault has already stopped).
pub struct Policy {
    loaded: LoadedPolicy,
    config: String,
    now: f64,
    caller: Caller,
    live: Option<Instance<PolicyInstance>>,
    /// The policy's own one-line description.
    pub description: String,
}

/// Re-exported so callers can build metadata batches.
pub use crate::wit::UnitVerdict as Verdict;

/// What a policy is told about one record: no payload, just the facts
/// retention rules are written against. Kind and store are shared: a
/// compaction names a handful of them over millions of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The record's kind.
    pub kind: Arc<str>,
    /// Its store.
    pub store: Arc<str>,
    /// Its timestamp, Unix seconds.
    pub timestamp: f64,
    /// Bytes it occupies on disk, as the backend reported them.
    pub stored_bytes: u64,
}

fn metas(batch: &[Meta]) -> MetaBatch {
    meta_batch(
        batch
            .iter()
            .map(|m| (&*m.kind, &*m.store, m.timestamp, m.stored_bytes)),
    )
}

impl Policy {
    /// Instantiates `loaded` and configures it with `config` (JSON) at time `now`.
    pub fn create(loaded: &LoadedPolicy, config: &str, now: f64, limits: Limits) -> Result<Self> {
        let mut policy = Policy {
            loaded: loaded.clone(),
            config: config.to_string(),
            now,
            caller: Caller {
                label: loaded.label.clone(),
                limits,
                metrics: Arc::default(),
            },
            live: None,
            description: String::new(),
        };
        policy.ensure()?;
        let description = policy.call("describe", async |p| {
            Ok(Ok(p.plugin.describe(&mut p.store, p.handle).await?))
        })?;
        policy.description = crate::text::clean(&description).into_owned();
        Ok(policy)
    }

    /// Counts this policy's faults in `metrics` (`plugin_faults`), with the
    /// backend's.
    pub fn count_faults_in(&mut self, metrics: Arc<Metrics>) {
        self.caller.metrics = metrics;
    }

    fn ensure(&mut self) -> Result<()> {
        let (loaded, config, now) = (&self.loaded, &self.config, self.now);
        self.caller
            .ensure(&mut self.live, &Grants::default(), async |store| {
                let plugin = loaded.pre.instantiate(store).await?;
                Ok(match plugin.create(store, config, now).await? {
                    Ok(evaluator) => Ok((plugin, evaluator)),
                    Err(e) => Err(policy_error(&loaded.label, "create", e)),
                })
            })?;
        Ok(())
    }

    fn call<T>(
        &mut self,
        operation: &str,
        f: impl AsyncFnOnce(
            &mut Instance<PolicyInstance>,
        ) -> wasmtime::Result<std::result::Result<T, PolicyError>>,
    ) -> Result<T> {
        self.ensure()?;
        let label = &self.loaded.label;
        self.caller.call(&mut self.live, operation, f, |e| {
            policy_error(label, operation, e)
        })
    }

    /// Unit verdicts, one per unit.
    pub fn plan_units(&mut self, units: &[UnitInfo]) -> Result<Vec<UnitVerdict>> {
        let verdicts = self.call("plan-units", async |p| {
            Ok(Ok(p
                .plugin
                .plan_units(&mut p.store, p.handle, units)
                .await?))
        })?;
        if verdicts.len() != units.len() {
            let cause = format!(
                "returned {} verdicts for {} units",
                verdicts.len(),
                units.len()
            );
            return Err(self.caller.bad_return(&mut self.live, "plan-units", cause));
        }
        Ok(verdicts)
    }

    /// Pass one.
    pub fn observe(&mut self, batch: &[Meta]) -> Result<()> {
        let batch = metas(batch);
        self.call("observe", async |p| {
            p.plugin.observe(&mut p.store, p.handle, &batch).await
        })
    }

    /// Pass two: keep flags, one per record.
    pub fn decide(&mut self, batch: &[Meta]) -> Result<Vec<bool>> {
        let metas = metas(batch);
        let keep = self.call("decide", async |p| {
            p.plugin.decide(&mut p.store, p.handle, &metas).await
        })?;
        if keep.len() != batch.len() {
            let cause = format!(
                "returned {} decisions for {} records",
                keep.len(),
                batch.len()
            );
            return Err(self.caller.bad_return(&mut self.live, "decide", cause));
        }
        Ok(keep)
    }
}

fn policy_error(label: &str, operation: &str, e: PolicyError) -> Error {
    Error::Plugin {
        plugin: label.to_string(),
        operation: operation.into(),
        message: crate::text::clean(&crate::wit::describe_policy(&e)).into_owned(),
    }
}
