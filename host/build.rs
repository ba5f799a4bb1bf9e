//! Builds the built-in plugins in `guest-backends/` for wasm32-wasip2 so that
//! `cargo build` and `cargo test` need nothing else (wasmtime's test-programs
//! pattern). The components are embedded in the binary by `src/builtin.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[(&str, &str)] = &[
    ("quire-ndjson", "quire_ndjson"),
    ("quire-memory", "quire_memory"),
    ("quire-retention-standard", "quire_retention_standard"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for watched in ["guest-backends", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wasm_dir = build_guests(
        &root,
        &GUESTS.iter().map(|g| g.0).collect::<Vec<_>>(),
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

/// Runs `cargo build --release --target wasm32-wasip2` for `packages` in a
/// target directory of their own (the outer build holds its own lock), and
/// returns the directory holding the `.wasm` files.
pub fn build_guests(root: &Path, packages: &[&str], dir_name: &str) -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(dir_name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's flags are for the host; guests get clean, stripped builds.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key == "RUSTFLAGS"
            || key.starts_with("CARGO_PROFILE_")
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "CARGO_BUILD_TARGET"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    let status = cmd
        .status()
        .expect("running cargo to build the guest components");
    assert!(
        status.success(),
        "building guest components failed; is the target installed? run `rustup target add wasm32-wasip2`"
    );
    target_dir.join("wasm32-wasip2").join("release")
}
