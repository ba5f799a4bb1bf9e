//! Building guest crates for wasm32-wasip2 from a build script. Shared by
//! `host/build.rs` (built-in plugins), `tests/build.rs` (test plugins) and
//! `tests/guest_unit_tests.rs` (the record helpers' tests, run in wasm).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cargo build --release --target wasm32-wasip2` for `packages` (with
/// `features`, e.g. `quire-guest/bench-no-check`) in a target directory of
/// their own (the outer build holds its own lock), and returns the
/// directory holding the `.wasm` files.
#[allow(dead_code)] // `tests/guest_unit_tests.rs` uses only `guest_cargo`.
pub fn build_guests(root: &Path, packages: &[&str], features: &[&str], dir_name: &str) -> PathBuf {
    let target_dir = guest_target_dir(root, dir_name);
    let mut cmd = guest_cargo(root, &["build"], &target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    let status = cmd
        .status()
        .expect("running cargo to build the guest components");
    assert!(
        status.success(),
        "building guest components failed; is the target installed? run `rustup target add wasm32-wasip2`"
    );
    target_dir.join("wasm32-wasip2").join("release")
}

/// `dir_name` under the workspace's target directory (`CARGO_TARGET_DIR`
/// when set).
pub fn guest_target_dir(root: &Path, dir_name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(dir_name)
}

/// `cargo SUBCOMMAND --release --target wasm32-wasip2 --target-dir DIR` at
/// `root`, built as the guests are: with wasm SIMD, without the outer
/// build's flags (they are for the host), stripped.
pub fn guest_cargo(root: &Path, subcommand: &[&str], target_dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(subcommand)
        .args(["--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(target_dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key == "RUSTFLAGS"
            || key.starts_with("CARGO_PROFILE_")
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "CARGO_BUILD_TARGET"
            || key.starts_with("CARGO_TARGET_WASM32")
        {
            cmd.env_remove(key);
        }
    }
    // wasm SIMD: the vectorised newline search (memchr), UTF-8 check
    // (simdutf8) and string scan of `quire_guest::head` use it.
    cmd.env(
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        "-Ctarget-feature=+simd128",
    )
    .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
    .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    cmd
}
