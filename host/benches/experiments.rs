//! The platform-floor experiments (quire_bench figures 1 and 6,
//! backends_bench figure 3): a backend plugin built twice more from the
//! same sources, once checking each line with serde_json alone (the native
//! program's own check, run inside the sandbox) and once checking nothing
//! (appends write the batch's text as given; scans and reads only read,
//! split and hand over lines: what the sandbox itself costs). Built on
//! first use into target directories of their own; never part of quire.

use std::path::{Path, PathBuf};

#[path = "../build_guests.rs"]
mod build_guests;

/// The two experimental builds of one backend plugin.
pub struct Variants {
    /// Checks lines with serde_json only (no fast path).
    pub serde_check: PathBuf,
    /// Checks nothing.
    pub no_check: PathBuf,
}

impl Variants {
    /// Builds both variants of the backend crate `krate` (cargo,
    /// wasm32-wasip2, release).
    pub fn of(krate: &str) -> Self {
        Variants {
            serde_check: variant(krate, "bench-serde-check"),
            no_check: no_check(krate),
        }
    }
}

/// Builds only the variant of `krate` that checks nothing (the floor).
pub fn no_check(krate: &str) -> PathBuf {
    variant(krate, "bench-no-check")
}

/// The backend crate `krate` built with `quire-guest/{feature}`, in a
/// target directory of its own.
fn variant(krate: &str, feature: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let dir = format!("bench-guests-{feature}");
    let features = [format!("quire-guest/{feature}")];
    let features: Vec<&str> = features.iter().map(String::as_str).collect();
    build_guests::build_guests(root, &[krate], &features, &dir)
        .join(format!("{}.wasm", krate.replace('-', "_")))
}
