//! Builds the hostile test plugin in `tests/plugins/hostile` for
//! wasm32-wasip2 (the same way `host/build.rs` builds the built-ins) and
//! tells the test crate where it is: `HOSTILE_PLUGIN_WASM`.

#[path = "../host/build_guests.rs"]
mod build_guests;

use build_guests::build_guests;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for watched in [
        "tests/plugins",
        "guest-backends/guest",
        "wit",
        "Cargo.lock",
        "host/build_guests.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let wasm_dir = build_guests(
        &root,
        &["quire-hostile-plugin", "quire-hostile-policy"],
        &[],
        "test-guests",
    );
    for (file, var) in [
        ("quire_hostile_plugin.wasm", "HOSTILE_PLUGIN_WASM"),
        ("quire_hostile_policy.wasm", "HOSTILE_POLICY_WASM"),
    ] {
        let wasm = wasm_dir.join(file);
        assert!(wasm.is_file(), "{file} was not built at {}", wasm.display());
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
}
