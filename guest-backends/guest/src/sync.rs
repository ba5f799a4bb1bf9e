//! `fdatasync` for plugins. Rust's standard library on wasm32-wasip2 turns
//! `File::sync_data` into WASI's `descriptor.sync`, which the host serves
//! with a full `fsync`; the C library's `fdatasync` asks for
//! `descriptor.sync-data`. An append needs only its bytes and the file's
//! size on disk, which is what `fdatasync` keeps.

use std::fs::File;
use std::io;

/// Syncs `file`'s data (and the size needed to read it back) to disk.
pub fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(target_os = "wasi")]
    {
        use std::os::fd::AsRawFd;
        unsafe extern "C" {
            fn fdatasync(fd: i32) -> i32;
        }
        // SAFETY: the descriptor stays open while `file` is borrowed.
        if unsafe { fdatasync(file.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "wasi"))]
    #[allow(clippy::disallowed_methods)] // natively it is fdatasync
    file.sync_data()
}
