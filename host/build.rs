//! Builds the built-in plugins in `guest-backends/` for wasm32-wasip2 so that
//! `cargo build` and `cargo test` need nothing else (wasmtime's test-programs
//! pattern). The components are embedded in the binary by `src/builtin.rs`.

#[path = "build_guests.rs"]
mod build_guests;

use build_guests::build_guests;
use std::path::PathBuf;

const GUESTS: &[(&str, &str)] = &[
    ("quire-ndjson", "quire_ndjson"),
    ("quire-memory", "quire_memory"),
    ("quire-rotating", "quire_rotating"),
    ("quire-segmented", "quire_segmented"),
    ("quire-retention-standard", "quire_retention_standard"),
    ("quire-retention-permanent", "quire_retention_permanent"),
    (
        "quire-retention-rolling-window",
        "quire_retention_rolling_window",
    ),
    ("quire-retention-ephemeral", "quire_retention_ephemeral"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for watched in [
        "guest-backends",
        "wit",
        "Cargo.lock",
        "host/build_guests.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wasm_dir = build_guests(
        &root,
        &GUESTS.iter().map(|g| g.0).collect::<Vec<_>>(),
        &[],
        "guests",
    );
    let mut table = String::new();
    for (package, artifact) in GUESTS {
        let path = wasm_dir.join(format!("{artifact}.wasm"));
        table.push_str(&format!(
            "(\"{package}\", include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    std::fs::write(out.join("builtin_components.rs"), format!("&[\n{table}]")).unwrap();
}
