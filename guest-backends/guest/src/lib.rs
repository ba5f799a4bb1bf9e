//! Helpers for writing quire plugins in Rust.
//!
//! A backend implements the `backend-plugin` world of `quire:persistence`;
//! a retention policy implements `retention-policy`. This crate generates
//! both sets of bindings once and supplies what file backends share: reading
//! lines with their offsets, deciding what a line is, and replacing a file
//! atomically; and what policies share: the pass-order check and config
//! parsing. The built-in backends and policies use it themselves.
#![deny(missing_docs)]

pub mod anomalies;
pub mod append;
pub mod atomic;
pub mod batch;
pub mod checksum;
pub mod errors;
/// The one-pass fast path of [`record::classify`] (shared with the host).
pub use quire_records::head;
pub mod frames;
pub mod linefile;
pub mod lines;
pub mod memlog;
pub mod options;
pub mod policy_kit;
pub mod receipts;
pub mod record;
pub mod sync;

/// Bindings for the `backend-plugin` world, and the `export_backend!` macro.
#[allow(missing_docs)]
pub mod backend_bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.3",
        world: "backend-plugin",
        pub_export_macro: true,
        export_macro_name: "export_backend",
        default_bindings_module: "quire_guest::backend_bindings",
    });
}

/// Bindings for the `retention-policy` world, and the `export_policy!` macro.
#[allow(missing_docs)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.3",
        world: "retention-policy",
        pub_export_macro: true,
        export_macro_name: "export_policy",
        default_bindings_module: "quire_guest::policy_bindings",
    });
}

/// Exports a type as the backend of a component: `export_backend!(MyBackend);`.
pub use backend_bindings::export_backend;
/// The backend interface: traits to implement and records it uses.
pub use backend_bindings::exports::quire::persistence::backend;
/// The shared record types, as a backend sees them.
pub use backend_bindings::quire::persistence::types;
/// Exports a type as the retention policy of a component: `export_policy!(MyPolicy);`.
pub use policy_bindings::export_policy;
/// The retention policy interface.
pub use policy_bindings::exports::quire::persistence::policy;
