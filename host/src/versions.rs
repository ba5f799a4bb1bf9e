//! One face for plugins of every WIT version the host loads.
//!
//! Calls are written once against 0.2; a 0.1 plugin gets the same calls
//! with the 0.2 additions adapted: no receipts, no durability snapshot,
//! nothing repaired at open, and `drop-unit` without a receipt.

use wasmtime::component::ResourceAny;
use wasmtime::{Result as WasmResult, Store};

use crate::bindings::{
    Anomaly, BackendInfo, Envelope, OpenConfig, PluginError, PolicyError, ReadFilter, ReadOrder,
    Receipt, ReceiptFilter, RecordMeta, ScanChunk, StorageStats, StoreDurability, StoredRecord,
    SyncLevel, UnitInfo, UnitVerdict, v0_1, v0_2,
};
use crate::sandbox::PluginState;

type Ctx<'a> = &'a mut Store<PluginState>;
type Plugin<T> = WasmResult<Result<T, PluginError>>;

/// A pre-linked backend component of some version.
pub enum BackendPre {
    /// `quire:persistence@0.2.0`.
    V2(v0_2::backend::BackendPluginPre<PluginState>),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::backend::BackendPluginPre<PluginState>),
}

/// An instantiated backend of some version.
pub enum Backend {
    /// `quire:persistence@0.2.0`.
    V2(v0_2::backend::BackendPlugin),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::backend::BackendPlugin),
}

impl BackendPre {
    /// Instantiates the component in `store`.
    pub async fn instantiate(&self, store: Ctx<'_>) -> WasmResult<Backend> {
        Ok(match self {
            BackendPre::V2(pre) => Backend::V2(pre.instantiate_async(store).await?),
            BackendPre::V1(pre) => Backend::V1(pre.instantiate_async(store).await?),
        })
    }

    /// The WIT version the component was built against.
    pub fn version(&self) -> &'static str {
        match self {
            BackendPre::V2(_) => "0.2.0",
            BackendPre::V1(_) => "0.1.0",
        }
    }
}

/// Calls a function both versions have with the same signature.
macro_rules! both {
    ($self:ident, $iface:ident, $call:ident, $store:ident $(, $arg:expr)*) => {
        match $self {
            Backend::V2(p) => p.quire_persistence_backend().$iface().$call($store $(, $arg)*).await,
            Backend::V1(p) => p.quire_persistence_backend().$iface().$call($store $(, $arg)*).await,
        }
    };
}

impl Backend {
    /// `info`.
    pub async fn info(&self, store: Ctx<'_>) -> WasmResult<BackendInfo> {
        match self {
            Backend::V2(p) => p.quire_persistence_backend().call_info(store).await,
            Backend::V1(p) => {
                let i = p.quire_persistence_backend().call_info(store).await?;
                Ok(BackendInfo {
                    name: i.name,
                    version: i.version,
                    description: i.description,
                    path_is_file: i.path_is_file,
                    persistent: i.persistent,
                })
            }
        }
    }

    /// `store.open`.
    pub async fn open(&self, store: Ctx<'_>, config: &OpenConfig) -> Plugin<ResourceAny> {
        match self {
            Backend::V2(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_open(store, config)
                    .await
            }
            Backend::V1(p) => {
                let config = v0_1::backend::exports::quire::persistence::backend::OpenConfig {
                    root: config.root.clone(),
                    target: config.target.clone(),
                    read_only: config.read_only,
                    options: config.options.clone(),
                };
                p.quire_persistence_backend()
                    .store()
                    .call_open(store, &config)
                    .await
            }
        }
    }

    /// `store.open-report`; a 0.1 plugin repairs nothing at open.
    pub async fn open_report(&self, store: Ctx<'_>, h: ResourceAny) -> WasmResult<Vec<Anomaly>> {
        match self {
            Backend::V2(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_open_report(store, h)
                    .await
            }
            Backend::V1(_) => Ok(Vec::new()),
        }
    }

    /// `store.append`.
    pub async fn append(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        batch: &[Envelope],
        level: SyncLevel,
    ) -> Plugin<u64> {
        both!(self, store, call_append, store, h, batch, level)
    }

    /// `store.sync`.
    pub async fn sync(&self, store: Ctx<'_>, h: ResourceAny, level: SyncLevel) -> Plugin<()> {
        both!(self, store, call_sync, store, h, level)
    }

    /// `store.units`.
    pub async fn units(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<Vec<UnitInfo>> {
        both!(self, store, call_units, store, h)
    }

    /// `store.check-layout`.
    pub async fn check_layout(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<Vec<Anomaly>> {
        both!(self, store, call_check_layout, store, h)
    }

    /// `store.validate`.
    pub async fn validate(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        unit: &str,
        offset: u64,
        budget: u64,
    ) -> Plugin<ScanChunk> {
        both!(self, store, call_validate, store, h, unit, offset, budget)
    }

    /// `store.read`.
    pub async fn read(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        unit: &str,
        filter: &ReadFilter,
        order: ReadOrder,
    ) -> Plugin<ResourceAny> {
        both!(self, store, call_read, store, h, unit, filter, order)
    }

    /// `cursor.next`.
    pub async fn next(
        &self,
        store: Ctx<'_>,
        cursor: ResourceAny,
        max: u32,
    ) -> Plugin<Vec<StoredRecord>> {
        both!(self, cursor, call_next, store, cursor, max)
    }

    /// `store.rewrite`.
    pub async fn rewrite(&self, store: Ctx<'_>, h: ResourceAny, unit: &str) -> Plugin<ResourceAny> {
        both!(self, store, call_rewrite, store, h, unit)
    }

    /// `rewriter.write`.
    pub async fn rewrite_write(
        &self,
        store: Ctx<'_>,
        r: ResourceAny,
        batch: &[Envelope],
    ) -> Plugin<()> {
        both!(self, rewriter, call_write, store, r, batch)
    }

    /// `rewriter.commit`.
    pub async fn rewrite_commit(&self, store: Ctx<'_>, r: ResourceAny) -> Plugin<u64> {
        both!(self, rewriter, call_commit, store, r)
    }

    /// `rewriter.abort`.
    pub async fn rewrite_abort(&self, store: Ctx<'_>, r: ResourceAny) -> Plugin<()> {
        both!(self, rewriter, call_abort, store, r)
    }

    /// `store.drop-unit`; a 0.1 plugin keeps no receipt.
    pub async fn drop_unit(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        unit: &str,
        receipt: Option<&Receipt>,
    ) -> Plugin<()> {
        match self {
            Backend::V2(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_drop_unit(store, h, unit, receipt)
                    .await
            }
            Backend::V1(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_drop_unit(store, h, unit)
                    .await
            }
        }
    }

    /// `store.put-receipt`.
    pub async fn put_receipt(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        receipt: &Receipt,
    ) -> Plugin<()> {
        match self {
            Backend::V2(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_put_receipt(store, h, receipt)
                    .await
            }
            Backend::V1(_) => Ok(Err(too_old("put-receipt"))),
        }
    }

    /// `store.receipts`.
    pub async fn receipts(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        filter: &ReceiptFilter,
    ) -> Plugin<Vec<Receipt>> {
        match self {
            Backend::V2(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_receipts(store, h, filter)
                    .await
            }
            Backend::V1(_) => Ok(Err(too_old("receipts"))),
        }
    }

    /// `store.quarantine`.
    pub async fn quarantine(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        unit: &str,
        dir: &str,
        name: &str,
    ) -> Plugin<u64> {
        both!(self, store, call_quarantine, store, h, unit, dir, name)
    }

    /// `store.seal`.
    pub async fn seal(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<()> {
        both!(self, store, call_seal, store, h)
    }

    /// `store.stats`.
    pub async fn stats(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<StorageStats> {
        both!(self, store, call_stats, store, h)
    }

    /// `store.durability`.
    pub async fn durability(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<Vec<StoreDurability>> {
        match self {
            Backend::V2(p) => {
                p.quire_persistence_backend()
                    .store()
                    .call_durability(store, h)
                    .await
            }
            Backend::V1(_) => Ok(Err(too_old("durability"))),
        }
    }
}

fn too_old(what: &str) -> PluginError {
    PluginError::Unsupported(format!("{what}: the plugin speaks quire:persistence@0.1.0"))
}

/// A pre-linked retention policy of some version.
pub enum PolicyPre {
    /// `quire:persistence@0.2.0`.
    V2(v0_2::policy::RetentionPolicyPre<PluginState>),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::policy::RetentionPolicyPre<PluginState>),
}

/// An instantiated retention policy of some version.
pub enum PolicyInstance {
    /// `quire:persistence@0.2.0`.
    V2(v0_2::policy::RetentionPolicy),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::policy::RetentionPolicy),
}

type V1Policy = v0_1::policy::exports::quire::persistence::policy::PolicyError;

fn policy_error_v1(e: V1Policy) -> PolicyError {
    match e {
        V1Policy::InvalidConfig(m) => PolicyError::InvalidConfig(m),
        V1Policy::InvalidState(m) => PolicyError::InvalidState(m),
    }
}

fn metas_v1(
    batch: &[RecordMeta],
) -> Vec<v0_1::policy::exports::quire::persistence::policy::RecordMeta> {
    batch
        .iter()
        .map(
            |m| v0_1::policy::exports::quire::persistence::policy::RecordMeta {
                kind: m.kind.clone(),
                store: m.store.clone(),
                timestamp: m.timestamp,
                stored_bytes: m.stored_bytes,
            },
        )
        .collect()
}

impl PolicyPre {
    /// The WIT version the component was built against.
    pub fn version(&self) -> &'static str {
        match self {
            PolicyPre::V2(_) => "0.2.0",
            PolicyPre::V1(_) => "0.1.0",
        }
    }

    /// Instantiates the component in `store`.
    pub async fn instantiate(&self, store: Ctx<'_>) -> WasmResult<PolicyInstance> {
        Ok(match self {
            PolicyPre::V2(pre) => PolicyInstance::V2(pre.instantiate_async(store).await?),
            PolicyPre::V1(pre) => PolicyInstance::V1(pre.instantiate_async(store).await?),
        })
    }
}

impl PolicyInstance {
    /// `evaluator.create`.
    pub async fn create(
        &self,
        store: Ctx<'_>,
        config: &str,
        now: f64,
    ) -> WasmResult<Result<ResourceAny, PolicyError>> {
        match self {
            PolicyInstance::V2(p) => {
                p.quire_persistence_policy()
                    .evaluator()
                    .call_create(store, config, now)
                    .await
            }
            PolicyInstance::V1(p) => Ok(p
                .quire_persistence_policy()
                .evaluator()
                .call_create(store, config, now)
                .await?
                .map_err(policy_error_v1)),
        }
    }

    /// `evaluator.describe`.
    pub async fn describe(&self, store: Ctx<'_>, e: ResourceAny) -> WasmResult<String> {
        match self {
            PolicyInstance::V2(p) => {
                p.quire_persistence_policy()
                    .evaluator()
                    .call_describe(store, e)
                    .await
            }
            PolicyInstance::V1(p) => {
                p.quire_persistence_policy()
                    .evaluator()
                    .call_describe(store, e)
                    .await
            }
        }
    }

    /// `evaluator.plan-units`.
    pub async fn plan_units(
        &self,
        store: Ctx<'_>,
        e: ResourceAny,
        units: &[UnitInfo],
    ) -> WasmResult<Vec<UnitVerdict>> {
        use v0_1::policy::exports::quire::persistence::policy::UnitVerdict as V1;
        match self {
            PolicyInstance::V2(p) => {
                p.quire_persistence_policy()
                    .evaluator()
                    .call_plan_units(store, e, units)
                    .await
            }
            PolicyInstance::V1(p) => Ok(p
                .quire_persistence_policy()
                .evaluator()
                .call_plan_units(store, e, units)
                .await?
                .into_iter()
                .map(|v| match v {
                    V1::Keep => UnitVerdict::Keep,
                    V1::Drop => UnitVerdict::Drop,
                    V1::Filter => UnitVerdict::Filter,
                })
                .collect()),
        }
    }

    /// `evaluator.observe`.
    pub async fn observe(
        &self,
        store: Ctx<'_>,
        e: ResourceAny,
        batch: &[RecordMeta],
    ) -> WasmResult<Result<(), PolicyError>> {
        match self {
            PolicyInstance::V2(p) => {
                p.quire_persistence_policy()
                    .evaluator()
                    .call_observe(store, e, batch)
                    .await
            }
            PolicyInstance::V1(p) => Ok(p
                .quire_persistence_policy()
                .evaluator()
                .call_observe(store, e, &metas_v1(batch))
                .await?
                .map_err(policy_error_v1)),
        }
    }

    /// `evaluator.decide`.
    pub async fn decide(
        &self,
        store: Ctx<'_>,
        e: ResourceAny,
        batch: &[RecordMeta],
    ) -> WasmResult<Result<Vec<bool>, PolicyError>> {
        match self {
            PolicyInstance::V2(p) => {
                p.quire_persistence_policy()
                    .evaluator()
                    .call_decide(store, e, batch)
                    .await
            }
            PolicyInstance::V1(p) => Ok(p
                .quire_persistence_policy()
                .evaluator()
                .call_decide(store, e, &metas_v1(batch))
                .await?
                .map_err(policy_error_v1)),
        }
    }
}
