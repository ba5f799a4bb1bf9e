//! The shared wasmtime engine: configured once, with an epoch ticker at
//! whose every tick a computing guest yields, so that the wall-clock
//! timeout of [`crate::deadline`] gets to run.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances: how late, at most, a computing guest
/// notices its timeout.
pub const TICK: Duration = Duration::from_millis(10);

/// The process-wide engine. Compiled code and the cache key depend on its
/// configuration, so there is exactly one.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Synchronous calls across the boundary are much slower with the
        // component-model concurrency machinery on, and we use no p3 async.
        config.concurrency_support(false);
        config.max_wasm_stack(1 << 20);
        // `QUIRE_PERF_MAP=1` names guest functions for `perf` (in
        // /tmp/perf-PID.map), so a profile shows where a plugin spends time.
        if std::env::var_os("QUIRE_PERF_MAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).expect("the engine configuration is valid");
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("quire-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .expect("spawning the epoch thread");
        engine
    })
}
