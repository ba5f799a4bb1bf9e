//! The plugins compiled into the binary (listed once, in `build.rs`).

/// (name, component bytes) for every built-in plugin.
const COMPONENTS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

include!(concat!(env!("OUT_DIR"), "/builtin_names.rs"));

/// The component of a built-in backend or policy, by its short name.
pub fn component(name: &str) -> Option<&'static [u8]> {
    COMPONENTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}
