//! The platform-floor experiments of figures 1 and 6: the ndjson plugin
//! built twice more from the same sources, once checking each line with
//! serde_json alone (the native program's own check, run inside the
//! sandbox) and once checking nothing (appends write the batch's text as
//! given; scans and reads only read, split and hand over lines: what the
//! sandbox itself costs). Built on first use into target directories of
//! their own; never part of quire.

use std::path::{Path, PathBuf};

#[path = "../build_guests.rs"]
mod build_guests;

/// The two experimental builds of the ndjson plugin.
pub struct Variants {
    /// Checks lines with serde_json only (no fast path).
    pub serde_check: PathBuf,
    /// Checks nothing.
    pub no_check: PathBuf,
}

/// Builds both variants (cargo, wasm32-wasip2, release).
pub fn build() -> Variants {
    Variants {
        serde_check: variant("bench-serde-check"),
        no_check: no_check(),
    }
}

/// Builds only the variant that checks nothing (the floor).
pub fn no_check() -> PathBuf {
    variant("bench-no-check")
}

/// The ndjson plugin built with `quire-guest/{feature}`, in a target
/// directory of its own.
fn variant(feature: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let dir = format!("bench-guests-{feature}");
    let features = [format!("quire-guest/{feature}")];
    let features: Vec<&str> = features.iter().map(String::as_str).collect();
    build_guests::build_guests(root, &["quire-ndjson"], &features, &dir).join("quire_ndjson.wasm")
}
