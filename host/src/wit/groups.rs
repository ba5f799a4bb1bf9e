//! `quire:groups@0.1.0`: consumer groups, an interface a backend may export
//! beside `backend` (the Redis backend does). Versioned on its own, so the
//! `quire:persistence` contract is unchanged for every other backend.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/groups/v0.1",
    world: "groups-plugin",
    exports: { default: async },
});

pub use exports::quire::groups::groups::{Delivery, GroupError};

/// A group error as the plugin error every call path knows.
pub fn plugin_error(e: GroupError) -> super::PluginError {
    match e {
        GroupError::Io(message) => {
            super::PluginError::Io(super::v0_3::backend::quire::persistence::types::IoFailure {
                operation: "consumer group".into(),
                target: String::new(),
                message,
            })
        }
        GroupError::Invalid(m) => super::PluginError::InvalidState(m),
        GroupError::Unsupported(m) => super::PluginError::Unsupported(m),
    }
}
