//! Replacing a file atomically: temporary file, sync, rename, directory sync.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::errors::IoContext;
use crate::types::PluginError;

/// Suffix of the temporary file a rewrite builds beside its target. A file
/// with this suffix after a crash is a rewrite that never committed.
pub const TEMP_SUFFIX: &str = ".quire-tmp";

/// The temporary path used while rewriting `target`.
pub fn temp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    target.with_file_name(name)
}

/// Syncs a directory so that creates and renames in it survive power loss.
pub fn sync_dir(dir: &Path) -> Result<(), PluginError> {
    let label = dir.display().to_string();
    File::open(dir)
        .ctx("open directory", &label)?
        .sync_all()
        .ctx("sync directory", &label)
}

/// The directory holding `path`.
pub fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A file being written beside `target`, swapped in by [`AtomicFile::commit`].
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates (truncating) the temporary file.
    pub fn create(target: &Path) -> Result<Self, PluginError> {
        let temp = temp_path(target);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .ctx("create", &temp.display().to_string())?;
        Ok(Self {
            target: target.to_path_buf(),
            temp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Appends bytes to the replacement.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let out = self.out.as_mut().ok_or_else(closed)?;
        out.write_all(bytes)
            .ctx("write", &self.temp.display().to_string())
    }

    /// Makes what was written durable under the temporary name, without
    /// putting it in place yet.
    pub fn sync(&mut self) -> Result<(), PluginError> {
        let label = self.temp.display().to_string();
        let out = self.out.as_mut().ok_or_else(closed)?;
        out.flush().ctx("write", &label)?;
        out.get_ref().sync_all().ctx("sync", &label)
    }

    /// Syncs the replacement, renames it over the target and syncs the
    /// directory. Returns the new size.
    pub fn commit(&mut self) -> Result<u64, PluginError> {
        let label = self.temp.display().to_string();
        let out = self.out.take().ok_or_else(closed)?;
        let swapped = (|| {
            let file = out
                .into_inner()
                .map_err(|e| crate::errors::io("write", &label, e.into_error()))?;
            file.sync_all().ctx("sync", &label)?;
            let size = file.metadata().ctx("stat", &label)?.len();
            drop(file);
            fs::rename(&self.temp, &self.target)
                .ctx("rename", &self.target.display().to_string())?;
            Ok(size)
        })();
        let size = match swapped {
            Ok(size) => size,
            Err(e) => {
                // Not swapped in (a full disk, say): the target is as it was,
                // and the half-written replacement goes.
                let _ = fs::remove_file(&self.temp);
                return Err(e);
            }
        };
        sync_dir(parent(&self.target))?;
        Ok(size)
    }

    /// Removes the replacement, leaving the target as it was.
    pub fn abort(&mut self) -> Result<(), PluginError> {
        if self.out.take().is_some() {
            fs::remove_file(&self.temp).ctx("remove", &self.temp.display().to_string())?;
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        let _ = self.abort();
    }
}

fn closed() -> PluginError {
    PluginError::InvalidState("the rewrite was already committed or aborted".into())
}

/// Copies `source` to a new file `dest` byte for byte and syncs it and its
/// directory. Refuses to overwrite. Returns the bytes copied.
pub fn copy_synced(source: &Path, dest: &Path, label: &str) -> Result<u64, PluginError> {
    let dest_label = dest.display().to_string();
    let mut from = File::open(source).ctx("open", label)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .ctx("create", &dest_label)?;
    let copied = std::io::copy(&mut from, &mut to).ctx("copy", &dest_label)?;
    to.sync_all().ctx("sync", &dest_label)?;
    sync_dir(parent(dest))?;
    Ok(copied)
}
