//! What a plugin may touch: its grants, its limits, and the WASI context
//! built from exactly those.

use std::path::PathBuf;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::limits::{Limiter, Limits};

/// Where the data directory appears inside the plugin.
pub const DATA_DIR: &str = "/data";
/// Where the quarantine directory appears inside the plugin.
pub const QUARANTINE_DIR: &str = "/quarantine";

/// The directories a plugin is given. Nothing else is visible to it: no
/// environment, no arguments, no network, no stdio.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// The data directory, and whether it may be written.
    pub data: Option<(PathBuf, bool)>,
    /// The quarantine directory (always writable), when one was asked for.
    pub quarantine: Option<PathBuf>,
    /// The one server a network backend may connect to (TCP, this address
    /// only; no other host or port, no UDP, no name lookup).
    pub network: Option<std::net::SocketAddr>,
    /// Crash tests only: notes every sync the plugin makes.
    #[cfg(feature = "test-support")]
    pub sync_tracker: Option<std::sync::Arc<crate::power_loss::SyncTracker>>,
    /// Storage-fault tests only: fails the plugin's Nth write or sync.
    #[cfg(feature = "test-support")]
    pub faults: Option<std::sync::Arc<crate::fault_injection::FaultPlan>>,
}

/// Whether a plugin granted `server` may use `addr` for `usage`: connect
/// to exactly that address, and the implicit bind of the unspecified
/// address (port 0, same family) that wasmtime-wasi checks before a connect.
fn network_allows(
    server: std::net::SocketAddr,
    addr: std::net::SocketAddr,
    usage: wasmtime_wasi::sockets::SocketAddrUse,
) -> bool {
    use wasmtime_wasi::sockets::SocketAddrUse;
    match usage {
        SocketAddrUse::TcpConnect => addr == server,
        SocketAddrUse::TcpBind => {
            addr.ip().is_unspecified() && addr.port() == 0 && addr.is_ipv4() == server.is_ipv4()
        }
        _ => false,
    }
}

/// Per-instance host state.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The handle cap, for the fault that names it.
    pub(crate) open_handles: usize,
    #[cfg(feature = "test-support")]
    pub(crate) sync_tracker: Option<std::sync::Arc<crate::power_loss::SyncTracker>>,
    #[cfg(feature = "test-support")]
    pub(crate) faults: Option<std::sync::Arc<crate::fault_injection::FaultPlan>>,
    /// What the file system said when a plugin's write last failed.
    pub(crate) storage_error: Option<String>,
    /// The buffer stream writes are copied into from the plugin's memory,
    /// reused from write to write (see `wasi_files::copy_in`).
    pub(crate) write_buffer: bytes::BytesMut,
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
            .allow_tcp(grants.network.is_some())
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let server = grants.network;
        wasi.socket_addr_check(move |addr, usage| {
            let allowed = server.is_some_and(|server| network_allows(server, addr, usage));
            Box::pin(async move { allowed })
        });
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
        // Every open file, directory, stream, pollable and socket is an
        // entry in this table: capping it caps what a plugin can hoard.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.open_handles);
        Ok(Self {
            wasi: wasi.build(),
            table,
            limiter: Limiter::new(limits),
            open_handles: limits.open_handles,
            #[cfg(feature = "test-support")]
            sync_tracker: grants.sync_tracker.clone(),
            #[cfg(feature = "test-support")]
            faults: grants.faults.clone(),
            storage_error: None,
            write_buffer: bytes::BytesMut::new(),
        })
    }

    /// The plugin's resources (open files and directories).
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}
