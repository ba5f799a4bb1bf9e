//! What a plugin may touch: its grants, its limits, and the WASI context
//! built from exactly those.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Where the data directory appears inside the plugin.
pub const DATA_DIR: &str = "/data";
/// Where the quarantine directory appears inside the plugin.
pub const QUARANTINE_DIR: &str = "/quarantine";

/// Resource limits per plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most linear memory the plugin may grow to.
    pub memory_bytes: usize,
    /// Longest a single call may run.
    pub call_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            call_deadline: Duration::from_secs(30),
        }
    }
}

/// The directories a plugin is given. Nothing else is visible to it: no
/// environment, no arguments, no network, no stdio.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// The data directory, and whether it may be written.
    pub data: Option<(PathBuf, bool)>,
    /// The quarantine directory (always writable), when one was asked for.
    pub quarantine: Option<PathBuf>,
    /// Crash tests only: notes every sync the plugin makes.
    pub sync_tracker: Option<std::sync::Arc<crate::power_loss::SyncTracker>>,
}

/// Per-instance host state.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) sync_tracker: Option<std::sync::Arc<crate::power_loss::SyncTracker>>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl PluginState {
    /// State for a fresh instance under `grants` and `limits`.
    pub fn new(grants: &Grants, limits: &Limits) -> anyhow::Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_blocking_current_thread(true)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        if let Some((dir, writable)) = &grants.data {
            let perms = if *writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(dir, DATA_DIR, perms)
                .map_err(|e| anyhow::anyhow!("granting data directory {}: {e:#}", dir.display()))?;
        }
        if let Some(dir) = &grants.quarantine {
            wasi.preopened_dir(dir, QUARANTINE_DIR, FsPerms::ReadWrite)
                .map_err(|e| {
                    anyhow::anyhow!("granting quarantine directory {}: {e:#}", dir.display())
                })?;
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(8)
            .tables(64)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            sync_tracker: grants.sync_tracker.clone(),
        })
    }

    /// The plugin's resources (open files and directories).
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}
