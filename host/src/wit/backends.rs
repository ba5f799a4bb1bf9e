//! One face for backends of every WIT version the host loads.
//!
//! Calls are written once against 0.3; a 0.2 plugin gets record batches
//! taken apart and put together (`v0_2.rs`); a 0.1 plugin additionally has
//! no receipts, no durability snapshot, nothing repaired at open, and
//! `drop-unit` without a receipt.

use wasmtime::component::ResourceAny;
use wasmtime::{Result as WasmResult, Store};

use super::batch::envelopes;
use super::{
    Anomaly, BackendInfo, OpenConfig, PluginError, ReadFilter, ReadOrder, Receipt, ReceiptFilter,
    RecordBatch, RecordPlace, ScanChunk, StorageStats, StoreDurability, StoredBatch, SyncLevel,
    UnitInfo, v0_1, v0_2, v0_3,
};
use crate::sandbox::PluginState;

type Ctx<'a> = &'a mut Store<PluginState>;
type Plugin<T> = WasmResult<Result<T, PluginError>>;

/// A pre-linked backend component of some version.
pub enum BackendPre {
    /// `quire:persistence@0.3.0`, with consumer groups when it exports them.
    V3(
        v0_3::backend::BackendPluginPre<PluginState>,
        Option<super::groups::GroupsPluginIndices>,
    ),
    /// `quire:persistence@0.2.0`.
    V2(v0_2::backend::BackendPluginPre<PluginState>),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::backend::BackendPluginPre<PluginState>),
}

/// An instantiated backend of some version.
pub enum Backend {
    /// `quire:persistence@0.3.0`, with consumer groups when it exports them.
    V3(
        v0_3::backend::BackendPlugin,
        Option<super::groups::GroupsPlugin>,
    ),
    /// `quire:persistence@0.2.0`.
    V2(v0_2::backend::BackendPlugin),
    /// `quire:persistence@0.1.0`.
    V1(v0_1::backend::BackendPlugin),
}

impl BackendPre {
    /// Pre-links `instance_pre` as a backend of `version`.
    pub fn new(
        version: &str,
        instance_pre: wasmtime::component::InstancePre<PluginState>,
    ) -> WasmResult<Self> {
        Ok(match version {
            v0_1::VERSION => BackendPre::V1(v0_1::backend::BackendPluginPre::new(instance_pre)?),
            v0_2::VERSION => BackendPre::V2(v0_2::backend::BackendPluginPre::new(instance_pre)?),
            _ => {
                // Only a component that exports the interface has groups.
                let groups = super::groups::GroupsPluginIndices::new(&instance_pre).ok();
                BackendPre::V3(v0_3::backend::BackendPluginPre::new(instance_pre)?, groups)
            }
        })
    }

    /// Instantiates the component in `store`.
    pub async fn instantiate(&self, store: Ctx<'_>) -> WasmResult<Backend> {
        Ok(match self {
            BackendPre::V3(pre, None) => Backend::V3(pre.instantiate_async(store).await?, None),
            BackendPre::V3(pre, Some(groups)) => {
                let instance = pre.instance_pre().instantiate_async(&mut *store).await?;
                let backend = v0_3::backend::BackendPlugin::new(&mut *store, &instance)?;
                let groups = groups.load(&mut *store, &instance)?;
                Backend::V3(backend, Some(groups))
            }
            BackendPre::V2(pre) => Backend::V2(pre.instantiate_async(store).await?),
            BackendPre::V1(pre) => Backend::V1(pre.instantiate_async(store).await?),
        })
    }

    /// The WIT version the component was built against.
    pub fn version(&self) -> &'static str {
        match self {
            BackendPre::V3(..) => v0_3::VERSION,
            BackendPre::V2(_) => v0_2::VERSION,
            BackendPre::V1(_) => v0_1::VERSION,
        }
    }
}

/// Calls a function every version has with the same signature.
macro_rules! all {
    ($self:ident, $iface:ident, $call:ident, $store:ident $(, $arg:expr)*) => {
        match $self {
            Backend::V3(p, _) => p.quire_persistence_backend().$iface().$call($store $(, $arg)*).await,
            Backend::V2(p) => p.quire_persistence_backend().$iface().$call($store $(, $arg)*).await,
            Backend::V1(p) => p.quire_persistence_backend().$iface().$call($store $(, $arg)*).await,
        }
    };
}

/// Calls `$call` on one version's plugin.
macro_rules! on {
    ($p:ident, $iface:ident, $call:ident, $store:ident $(, $arg:expr)*) => {
        $p.quire_persistence_backend().$iface().$call($store $(, $arg)*).await
    };
}

impl Backend {
    /// `info`.
    pub async fn info(&self, store: Ctx<'_>) -> WasmResult<BackendInfo> {
        match self {
            Backend::V3(p, _) => p.quire_persistence_backend().call_info(store).await,
            Backend::V2(p) => Ok(v0_2::info(
                p.quire_persistence_backend().call_info(store).await?,
            )),
            Backend::V1(p) => Ok(v0_1::info(
                p.quire_persistence_backend().call_info(store).await?,
            )),
        }
    }

    /// `store.open`.
    pub async fn open(&self, store: Ctx<'_>, config: &OpenConfig) -> Plugin<ResourceAny> {
        match self {
            Backend::V3(p, _) => {
                p.quire_persistence_backend()
                    .store()
                    .call_open(store, config)
                    .await
            }
            Backend::V2(p) => on!(p, store, call_open, store, &v0_2::open_config(config)),
            Backend::V1(p) => on!(p, store, call_open, store, &v0_1::open_config(config)),
        }
    }

    /// `store.open-report`; a 0.1 plugin repairs nothing at open.
    pub async fn open_report(&self, store: Ctx<'_>, h: ResourceAny) -> WasmResult<Vec<Anomaly>> {
        match self {
            Backend::V3(p, _) => on!(p, store, call_open_report, store, h),
            Backend::V2(p) => on!(p, store, call_open_report, store, h),
            Backend::V1(_) => Ok(Vec::new()),
        }
    }

    /// `store.append`.
    pub async fn append(
        &self,
        store: Ctx<'_>,
        h: ResourceAny,
        batch: &RecordBatch,
        level: SyncLevel,
    ) -> Plugin<u64> {
        match self {
            Backend::V3(p, _) => on!(p, store, call_append, store, h, batch, level),
            Backend::V2(p) => on!(p, store, call_append, store, h, &envelopes(batch), level),
            Backend::V1(p) => on!(p, store, call_append, store, h, &envelopes(batch), level),
        }
    }

    /// `store.sync`.
    pub async fn sync(&self, store: Ctx<'_>, h: ResourceAny, level: SyncLevel) -> Plugin<()> {
        all!(self, store, call_sync, store, h, level)
    }

    /// `store.units`.
    pub async fn units(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<Vec<UnitInfo>> {
        all!(self, store, call_units, store, h)
    }

    /// `store.check-layout`.
    pub async fn check_layout(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<Vec<Anomaly>> {
        all!(self, store, call_check_layout, store, h)
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
        all!(self, store, call_validate, store, h, unit, offset, budget)
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
        all!(self, store, call_read, store, h, unit, filter, order)
    }

    /// `cursor.next`; `unit` is the cursor's (0.2 and 0.1 name it per record).
    pub async fn next(
        &self,
        store: Ctx<'_>,
        cursor: ResourceAny,
        unit: &str,
        max_records: u32,
        max_bytes: u32,
    ) -> Plugin<StoredBatch> {
        let records = match self {
            Backend::V3(p, _) => {
                return on!(p, cursor, call_next, store, cursor, max_records, max_bytes);
            }
            Backend::V2(p) => on!(p, cursor, call_next, store, cursor, max_records)?,
            Backend::V1(p) => on!(p, cursor, call_next, store, cursor, max_records)?,
        };
        Ok(match records {
            Ok(records) => Ok(v0_2::stored_batch(records, unit)?),
            Err(e) => Err(e),
        })
    }

    /// `store.rewrite`.
    pub async fn rewrite(&self, store: Ctx<'_>, h: ResourceAny, unit: &str) -> Plugin<ResourceAny> {
        all!(self, store, call_rewrite, store, h, unit)
    }

    /// `rewriter.write`.
    pub async fn rewrite_write(
        &self,
        store: Ctx<'_>,
        r: ResourceAny,
        batch: &RecordBatch,
    ) -> Plugin<()> {
        match self {
            Backend::V3(p, _) => on!(p, rewriter, call_write, store, r, batch),
            Backend::V2(p) => on!(p, rewriter, call_write, store, r, &envelopes(batch)),
            Backend::V1(p) => on!(p, rewriter, call_write, store, r, &envelopes(batch)),
        }
    }

    /// `rewriter.copy`; older plugins have none (the host writes records).
    pub async fn rewrite_copy(
        &self,
        store: Ctx<'_>,
        r: ResourceAny,
        places: &[RecordPlace],
    ) -> Plugin<()> {
        match self {
            Backend::V3(p, _) => on!(p, rewriter, call_copy, store, r, places),
            Backend::V2(_) => Ok(Err(too_old("copy", v0_2::VERSION))),
            Backend::V1(_) => Ok(Err(too_old("copy", v0_1::VERSION))),
        }
    }

    /// `rewriter.commit`.
    pub async fn rewrite_commit(&self, store: Ctx<'_>, r: ResourceAny) -> Plugin<u64> {
        all!(self, rewriter, call_commit, store, r)
    }

    /// `rewriter.abort`.
    pub async fn rewrite_abort(&self, store: Ctx<'_>, r: ResourceAny) -> Plugin<()> {
        all!(self, rewriter, call_abort, store, r)
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
            Backend::V3(p, _) => on!(p, store, call_drop_unit, store, h, unit, receipt),
            Backend::V2(p) => {
                let receipt = receipt.map(v0_2::receipt);
                on!(p, store, call_drop_unit, store, h, unit, receipt.as_ref())
            }
            Backend::V1(p) => on!(p, store, call_drop_unit, store, h, unit),
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
            Backend::V3(p, _) => on!(p, store, call_put_receipt, store, h, receipt),
            Backend::V2(p) => on!(
                p,
                store,
                call_put_receipt,
                store,
                h,
                &v0_2::receipt(receipt)
            ),
            Backend::V1(_) => Ok(Err(too_old("put-receipt", v0_1::VERSION))),
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
            Backend::V3(p, _) => on!(p, store, call_receipts, store, h, filter),
            Backend::V2(p) => {
                let filter = v0_2::receipt_filter(filter);
                Ok(on!(p, store, call_receipts, store, h, &filter)?
                    .map(|r| r.into_iter().map(v0_2::receipt_back).collect()))
            }
            Backend::V1(_) => Ok(Err(too_old("receipts", v0_1::VERSION))),
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
        all!(self, store, call_quarantine, store, h, unit, dir, name)
    }

    /// `store.seal`.
    pub async fn seal(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<()> {
        all!(self, store, call_seal, store, h)
    }

    /// `store.stats`.
    pub async fn stats(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<StorageStats> {
        all!(self, store, call_stats, store, h)
    }

    /// `store.durability`.
    pub async fn durability(&self, store: Ctx<'_>, h: ResourceAny) -> Plugin<Vec<StoreDurability>> {
        match self {
            Backend::V3(p, _) => on!(p, store, call_durability, store, h),
            Backend::V2(p) => Ok(on!(p, store, call_durability, store, h)?
                .map(|d| d.into_iter().map(v0_2::durability).collect())),
            Backend::V1(_) => Ok(Err(too_old("durability", v0_1::VERSION))),
        }
    }
}

fn too_old(what: &str, version: &str) -> PluginError {
    PluginError::Unsupported(format!(
        "{what}: the plugin speaks quire:persistence@{version}"
    ))
}

impl Backend {
    /// The consumer-group interface, when the component exports it.
    pub fn groups(&self) -> Option<&super::groups::GroupsPlugin> {
        match self {
            Backend::V3(_, groups) => groups.as_ref(),
            _ => None,
        }
    }
}
