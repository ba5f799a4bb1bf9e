//! `quire:persistence@0.1.0`: 0.2 without receipts, the durability
//! snapshot and the open report. Its `types` interface is 0.2's; what else
//! differs is converted here or answered in `backends.rs`.
#![allow(missing_docs)]

use super::{BackendInfo, MetaBatch, OpenConfig, PolicyError, UnitVerdict};

/// The version string components export.
pub const VERSION: &str = "0.1.0";

/// The `backend-plugin` world.
pub mod backend {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "backend-plugin",
        exports: { default: async },
        with: { "quire:persistence/types": crate::wit::v0_3::backend::quire::persistence::types },
    });
}

/// The `retention-policy` world.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "retention-policy",
        exports: { default: async },
        with: { "quire:persistence/types": crate::wit::v0_3::backend::quire::persistence::types },
    });
}

use backend::exports::quire::persistence::backend as b;
use policy::exports::quire::persistence::policy as p;

pub fn info(i: b::BackendInfo) -> BackendInfo {
    BackendInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        path_is_file: i.path_is_file,
        persistent: i.persistent,
    }
}

pub fn open_config(c: &OpenConfig) -> b::OpenConfig {
    b::OpenConfig {
        root: c.root.clone(),
        target: c.target.clone(),
        read_only: c.read_only,
        options: c.options.clone(),
    }
}

pub fn metas(batch: &MetaBatch) -> Vec<p::RecordMeta> {
    super::batch::metas(batch)
        .map(|(kind, store, timestamp, stored_bytes)| p::RecordMeta {
            kind: kind.to_string(),
            store: store.to_string(),
            timestamp,
            stored_bytes,
        })
        .collect()
}

pub fn policy_error(e: p::PolicyError) -> PolicyError {
    match e {
        p::PolicyError::InvalidConfig(m) => PolicyError::InvalidConfig(m),
        p::PolicyError::InvalidState(m) => PolicyError::InvalidState(m),
    }
}

pub fn verdict(v: p::UnitVerdict) -> UnitVerdict {
    match v {
        p::UnitVerdict::Keep => UnitVerdict::Keep,
        p::UnitVerdict::Drop => UnitVerdict::Drop,
        p::UnitVerdict::Filter => UnitVerdict::Filter,
    }
}
