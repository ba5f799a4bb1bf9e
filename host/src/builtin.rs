//! The plugins compiled into the binary.

/// (package name, component bytes) for every built-in plugin.
const COMPONENTS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

/// Built-in backends by the name users give them.
pub const BACKENDS: &[&str] = &["ndjson", "memory", "rotating", "segmented"];
/// Built-in retention policies by the name users give them.
pub const POLICIES: &[&str] = &["standard", "permanent", "rolling-window", "ephemeral"];

/// The component of a built-in backend or policy, by its short name.
pub fn component(name: &str) -> Option<&'static [u8]> {
    let package = match name {
        "ndjson" => "quire-ndjson",
        "memory" => "quire-memory",
        "rotating" => "quire-rotating",
        "segmented" => "quire-segmented",
        "standard" => "quire-retention-standard",
        "permanent" => "quire-retention-permanent",
        "rolling-window" => "quire-retention-rolling-window",
        "ephemeral" => "quire-retention-ephemeral",
        _ => return None,
    };
    COMPONENTS
        .iter()
        .find(|(p, _)| *p == package)
        .map(|(_, bytes)| *bytes)
}
