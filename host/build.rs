//! Builds the built-in plugins in `guest-backends/` for wasm32-wasip2 so that
//! `cargo build` and `cargo test` need nothing else (wasmtime's test-programs
//! pattern). The components are embedded in the binary by `src/builtin.rs`.

#[path = "build_guests.rs"]
mod build_guests;

use build_guests::build_guests;
use std::path::PathBuf;

/// Every built-in plugin, once: (name users give, package, role). The
/// binary's table, the lists of names and the CLI help all come from here.
const BUILTINS: &[(&str, &str, &str)] = &[
    ("ndjson", "quire-ndjson", "backend"),
    ("memory", "quire-memory", "backend"),
    ("rotating", "quire-rotating", "backend"),
    ("segmented", "quire-segmented", "backend"),
    ("redis", "quire-redis", "backend"),
    ("standard", "quire-retention-standard", "policy"),
    ("permanent", "quire-retention-permanent", "policy"),
    ("rolling-window", "quire-retention-rolling-window", "policy"),
    ("ephemeral", "quire-retention-ephemeral", "policy"),
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
        &BUILTINS.iter().map(|g| g.1).collect::<Vec<_>>(),
        &[],
        "guests",
    );
    let mut table = String::new();
    for (name, package, _) in BUILTINS {
        let path = wasm_dir.join(format!("{}.wasm", package.replace('-', "_")));
        table.push_str(&format!(
            "(\"{name}\", include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    std::fs::write(out.join("builtin_components.rs"), format!("&[\n{table}]")).unwrap();
    let names = |role: &str| {
        BUILTINS
            .iter()
            .filter(|b| b.2 == role)
            .map(|b| format!("{:?}", b.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let backends: Vec<&str> = BUILTINS
        .iter()
        .filter(|b| b.2 == "backend")
        .map(|b| b.0)
        .collect();
    std::fs::write(
        out.join("builtin_names.rs"),
        format!(
            "/// Built-in backends by the name users give them.\n\
             pub const BACKENDS: &[&str] = &[{}];\n\
             /// Built-in retention policies by the name users give them.\n\
             pub const POLICIES: &[&str] = &[{}];\n\
             /// The CLI's help for `--backend`.\n\
             pub const BACKEND_HELP: &str = \"Backend: a built-in name ({}) or a path to a .wasm component.\";\n",
            names("backend"),
            names("policy"),
            backends.join(", "),
        ),
    )
    .unwrap();
}
