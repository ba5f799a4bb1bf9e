//! `quire:persistence@0.1.0`: 0.2 without receipts, the durability
//! snapshot and the open report. Its `types` interface is 0.2's; what else
//! differs is converted here or answered in `backends.rs`.
#![allow(missing_docs)]

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

super::per_record_conversions!();
