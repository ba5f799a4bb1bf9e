//! One face for retention policies of every WIT version the host loads:
//! 0.2 and 0.1 policies take records one by one, so a `meta-batch` is taken
//! apart for them.

use wasmtime::component::ResourceAny;
use wasmtime::{Result as WasmResult, Store};

use super::{MetaBatch, PolicyError, UnitInfo, UnitVerdict, v0_1, v0_2, v0_3};
use crate::sandbox::PluginState;

type Ctx<'a> = &'a mut Store<PluginState>;
type Policy<T> = WasmResult<Result<T, PolicyError>>;

/// A pre-linked retention policy of some version.
pub enum PolicyPre {
    /// `quire:persistence@0.3.0`.
    V3(v0_3::policy::RetentionPolicyPre<PluginState>),
    /// `quire:persistence@0.2.0`.
    V2(v0_2::policy::RetentionPolicyPre<PluginState>),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::policy::RetentionPolicyPre<PluginState>),
}

/// An instantiated retention policy of some version.
pub enum PolicyInstance {
    /// `quire:persistence@0.3.0`.
    V3(v0_3::policy::RetentionPolicy),
    /// `quire:persistence@0.2.0`.
    V2(v0_2::policy::RetentionPolicy),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::policy::RetentionPolicy),
}

impl PolicyPre {
    /// Pre-links `instance_pre` as a policy of `version`.
    pub fn new(
        version: &str,
        instance_pre: wasmtime::component::InstancePre<PluginState>,
    ) -> WasmResult<Self> {
        Ok(match version {
            v0_1::VERSION => PolicyPre::V1(v0_1::policy::RetentionPolicyPre::new(instance_pre)?),
            v0_2::VERSION => PolicyPre::V2(v0_2::policy::RetentionPolicyPre::new(instance_pre)?),
            _ => PolicyPre::V3(v0_3::policy::RetentionPolicyPre::new(instance_pre)?),
        })
    }

    /// The WIT version the component was built against.
    pub fn version(&self) -> &'static str {
        match self {
            PolicyPre::V3(_) => v0_3::VERSION,
            PolicyPre::V2(_) => v0_2::VERSION,
            PolicyPre::V1(_) => v0_1::VERSION,
        }
    }

    /// Instantiates the component in `store`.
    pub async fn instantiate(&self, store: Ctx<'_>) -> WasmResult<PolicyInstance> {
        Ok(match self {
            PolicyPre::V3(pre) => PolicyInstance::V3(pre.instantiate_async(store).await?),
            PolicyPre::V2(pre) => PolicyInstance::V2(pre.instantiate_async(store).await?),
            PolicyPre::V1(pre) => PolicyInstance::V1(pre.instantiate_async(store).await?),
        })
    }
}

/// Calls `$call` on one version's evaluator.
macro_rules! on {
    ($p:ident, $call:ident, $store:ident $(, $arg:expr)*) => {
        $p.quire_persistence_policy().evaluator().$call($store $(, $arg)*).await
    };
}

impl PolicyInstance {
    /// `evaluator.create`.
    pub async fn create(&self, store: Ctx<'_>, config: &str, now: f64) -> Policy<ResourceAny> {
        Ok(match self {
            PolicyInstance::V3(p) => on!(p, call_create, store, config, now)?,
            PolicyInstance::V2(p) => {
                on!(p, call_create, store, config, now)?.map_err(v0_2::policy_error)
            }
            PolicyInstance::V1(p) => {
                on!(p, call_create, store, config, now)?.map_err(v0_1::policy_error)
            }
        })
    }

    /// `evaluator.describe`.
    pub async fn describe(&self, store: Ctx<'_>, e: ResourceAny) -> WasmResult<String> {
        match self {
            PolicyInstance::V3(p) => on!(p, call_describe, store, e),
            PolicyInstance::V2(p) => on!(p, call_describe, store, e),
            PolicyInstance::V1(p) => on!(p, call_describe, store, e),
        }
    }

    /// `evaluator.plan-units`.
    pub async fn plan_units(
        &self,
        store: Ctx<'_>,
        e: ResourceAny,
        units: &[UnitInfo],
    ) -> WasmResult<Vec<UnitVerdict>> {
        Ok(match self {
            PolicyInstance::V3(p) => on!(p, call_plan_units, store, e, units)?,
            PolicyInstance::V2(p) => on!(p, call_plan_units, store, e, units)?
                .into_iter()
                .map(v0_2::verdict)
                .collect(),
            PolicyInstance::V1(p) => on!(p, call_plan_units, store, e, units)?
                .into_iter()
                .map(v0_1::verdict)
                .collect(),
        })
    }

    /// `evaluator.observe`.
    pub async fn observe(&self, store: Ctx<'_>, e: ResourceAny, batch: &MetaBatch) -> Policy<()> {
        Ok(match self {
            PolicyInstance::V3(p) => on!(p, call_observe, store, e, batch)?,
            PolicyInstance::V2(p) => {
                on!(p, call_observe, store, e, &v0_2::metas(batch))?.map_err(v0_2::policy_error)
            }
            PolicyInstance::V1(p) => {
                on!(p, call_observe, store, e, &v0_1::metas(batch))?.map_err(v0_1::policy_error)
            }
        })
    }

    /// `evaluator.decide`.
    pub async fn decide(
        &self,
        store: Ctx<'_>,
        e: ResourceAny,
        batch: &MetaBatch,
    ) -> Policy<Vec<bool>> {
        Ok(match self {
            PolicyInstance::V3(p) => on!(p, call_decide, store, e, batch)?,
            PolicyInstance::V2(p) => {
                on!(p, call_decide, store, e, &v0_2::metas(batch))?.map_err(v0_2::policy_error)
            }
            PolicyInstance::V1(p) => {
                on!(p, call_decide, store, e, &v0_1::metas(batch))?.map_err(v0_1::policy_error)
            }
        })
    }
}
