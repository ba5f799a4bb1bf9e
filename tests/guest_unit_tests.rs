//! The guest helper crates' own unit tests, built for wasm32-wasip2 with
//! SIMD (as the guests are) and run inside wasmtime. Their SIMD paths are
//! written per target (SSE2 natively, simd128 in wasm), and the native run
//! of `cargo test` only ever exercises the first: here each crate's tests,
//! the differential ones against byte-at-a-time scans included, run against
//! the code the guests actually execute.

#[path = "../host/build_guests.rs"]
mod build_guests;

use std::path::{Path, PathBuf};

use build_guests::{guest_cargo, guest_target_dir};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command as WasiCommand;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The crates whose tests run in wasm too (the guest helper's own tests
/// use proptest, whose process plumbing does not build for wasm).
const CRATES: &[&str] = &["quire-records"];

/// A WASI command's state: its context and resource table.
struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Builds `package`'s unit tests as the guests are built (wasm32-wasip2,
/// simd128), in a target directory of their own; returns the test component.
fn build_tests(root: &Path, package: &str) -> PathBuf {
    let target_dir = guest_target_dir(root, "wasm-unit-tests");
    let mut cmd = guest_cargo(root, &["test", "--no-run", "--lib"], &target_dir);
    cmd.args(["-p", package, "--message-format=json"]);
    let output = cmd.output().expect("running cargo");
    assert!(
        output.status.success(),
        "building {package}'s tests for wasm32-wasip2 failed (is the target installed? \
         `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The one test executable cargo reports.
    let executables: Vec<PathBuf> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect();
    assert_eq!(executables.len(), 1, "{package}: {executables:?}");
    executables.into_iter().next().unwrap()
}

/// Runs a test component as a WASI command (stdout and stderr shown);
/// whether it exited successfully. A failed assertion aborts the run (wasm
/// has no unwinding), which is a trap here.
fn run_tests(component: &Path) -> Result<(), String> {
    let engine = Engine::new(Config::new().wasm_component_model(true)).unwrap();
    let component = Component::from_file(&engine, component).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let wasi = WasiCtxBuilder::new()
        .inherit_stdout()
        .inherit_stderr()
        .args(&["unit-tests", "--test-threads=1"])
        .build();
    let mut store = Store::new(
        &engine,
        Host {
            wasi,
            table: ResourceTable::new(),
        },
    );
    let command = WasiCommand::instantiate(&mut store, &component, &linker)
        .map_err(|e| format!("instantiating: {e:#}"))?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => Err("the tests reported failure".into()),
        Err(trap) => Err(format!(
            "the tests trapped (a failed assertion aborts): {trap:#}"
        )),
    }
}

#[test]
fn guest_helper_tests_pass_in_wasm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for package in CRATES {
        let component = build_tests(root, package);
        if let Err(e) = run_tests(&component) {
            panic!("{package}'s unit tests in wasm: {e}");
        }
    }
}
