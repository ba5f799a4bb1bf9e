//! `quire:persistence@0.3.0`, the version this host is written against:
//! records cross in bulk layouts (`record-batch`, `stored-batch`,
//! `meta-batch`). Its types are the host's own; older versions convert
//! into them.
#![allow(missing_docs)]

/// The version string components export.
pub const VERSION: &str = "0.3.0";

/// The `backend-plugin` world.
pub mod backend {
    wasmtime::component::bindgen!({
        path: "../wit/v0.3",
        world: "backend-plugin",
        exports: { default: async },
    });
}

/// The `retention-policy` world.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit/v0.3",
        world: "retention-policy",
        exports: { default: async },
        with: { "quire:persistence/types": super::backend::quire::persistence::types },
    });
}
