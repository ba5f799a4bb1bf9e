//! One writer per store across processes: an advisory lock on a file
//! beside the data, held for as long as a read-write store is open.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A held lock; released on drop (and by the kernel if the process dies).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// The lock file for a data path: `.NAME.quire-lock` beside a file,
/// `.quire-lock` inside a directory.
pub fn lock_path(data: &Path, path_is_file: bool) -> PathBuf {
    if path_is_file {
        let name = data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        data.with_file_name(format!(".{name}.quire-lock"))
    } else {
        data.join(".quire-lock")
    }
}

/// Takes the lock without waiting.
pub fn acquire(path: &Path) -> Result<WriterLock> {
    // The lock lies inside the plugin's grant: never follow a link there.
    let file = crate::grant_paths::open_for_write(path).map_err(|e| Error::Path {
        path: path.to_path_buf(),
        message: format!("cannot create lock file: {e}"),
    })?;
    match file.try_lock() {
        Ok(()) => Ok(WriterLock {
            _file: file,
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Path {
            path: path.to_path_buf(),
            message: format!("cannot lock: {e}"),
        }),
    }
}
