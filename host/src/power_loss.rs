//! A file layer for crash tests that tracks what plugins synced, so that a
//! test can "lose power": cut every file back to what was synced and remove
//! directory entries no directory sync made durable (LevelDB's and RocksDB's
//! fault-injection environments do the same for their own file systems).
//!
//! The host always serves WASI's `sync` and `sync-data` itself
//! (`wasi_files.rs`); with a tracker in the store's configuration each sync
//! is also noted. Without one nothing is recorded. Built with the
//! `test-support` feature only.
//!
//! The model, per POSIX: a file's content is durable up to its size at its
//! last `fsync`/`fdatasync`; a directory's entries are durable as of its last
//! `fsync`. Beyond that, appended bytes may be missing, partly present or
//! zeros (Pillai et al.). Two things are not modelled: a deleted or replaced
//! entry never comes back (the old inode is gone).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Synced {
    frozen: bool,
    /// Inode → size at its last sync.
    files: HashMap<u64, u64>,
    /// Directory → its entries (name → inode) at its last sync.
    dirs: HashMap<PathBuf, HashMap<OsString, u64>>,
    syncs: u64,
}

/// What plugins made durable under one directory tree.
pub struct SyncTracker {
    state: Mutex<Synced>,
}

impl std::fmt::Debug for SyncTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncTracker")
    }
}

/// What [`SyncTracker::lose_power`] did.
#[derive(Debug, Default, Clone)]
pub struct PowerLoss {
    /// Entries removed because no directory sync covered them.
    pub removed: Vec<PathBuf>,
    /// Files cut back, with (size before, size after).
    pub truncated: BTreeMap<PathBuf, (u64, u64)>,
    /// Files whose unsynced tail was overwritten with zeros.
    pub zeroed: Vec<PathBuf>,
    /// Syncs seen before the power went.
    pub syncs: u64,
}

fn entries(dir: &Path) -> std::io::Result<HashMap<OsString, u64>> {
    let mut out = HashMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        out.insert(entry.file_name(), entry.metadata()?.ino());
    }
    Ok(out)
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path, &fs::Metadata)) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        f(&path, &meta);
        if meta.is_dir() {
            walk(&path, f)?;
        }
    }
    Ok(())
}

impl SyncTracker {
    /// Starts tracking with everything now under `root` taken as durable.
    pub fn new(root: &Path) -> std::io::Result<Arc<Self>> {
        let mut state = Synced::default();
        state.dirs.insert(root.canonicalize()?, entries(root)?);
        walk(root, &mut |path, meta| {
            if meta.is_dir() {
                if let (Ok(p), Ok(e)) = (path.canonicalize(), entries(path)) {
                    state.dirs.insert(p, e);
                }
            } else {
                state.files.insert(meta.ino(), meta.len());
            }
        })?;
        Ok(Arc::new(Self {
            state: Mutex::new(state),
        }))
    }

    pub(crate) fn note_file(&self, file: &File) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.frozen {
            return;
        }
        if let Ok(meta) = file.metadata() {
            state.files.insert(meta.ino(), meta.len());
            state.syncs += 1;
        }
    }

    /// Notes a directory sync (the host's own, when it creates directories).
    pub(crate) fn note_dir(&self, dir: &File) {
        use std::os::fd::AsRawFd;
        let Ok(path) = fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.frozen {
            return;
        }
        if let Ok(e) = entries(&path) {
            state.dirs.insert(path, e);
            state.syncs += 1;
        }
    }

    /// Stops recording: what was durable when this is called is what
    /// survives. Call it at the crash point, before dropping the store.
    pub fn freeze(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).frozen = true;
    }

    /// Applies the power loss to `root`. `seed` picks, per file, whether
    /// an unsynced tail vanishes, survives in part, or turns into zeros.
    pub fn lose_power(&self, root: &Path, seed: u64) -> std::io::Result<PowerLoss> {
        self.freeze();
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut loss = PowerLoss {
            syncs: state.syncs,
            ..PowerLoss::default()
        };
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            // xorshift64: deterministic per seed, no dependency.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let root = root.canonicalize()?;
        let mut survivors = Vec::new();
        let mut removed_dirs: HashSet<PathBuf> = HashSet::new();
        let mut visit = vec![root.clone()];
        while let Some(dir) = visit.pop() {
            let durable = state.dirs.get(&dir);
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                let meta = fs::symlink_metadata(&path)?;
                let kept = durable.is_some_and(|d| d.contains_key(&entry.file_name()));
                if !kept {
                    if meta.is_dir() {
                        fs::remove_dir_all(&path)?;
                        removed_dirs.insert(path.clone());
                    } else {
                        fs::remove_file(&path)?;
                    }
                    loss.removed.push(path);
                } else if meta.is_dir() {
                    visit.push(path);
                } else if meta.is_file() {
                    survivors.push((path, meta));
                }
            }
        }
        for (path, meta) in survivors {
            let synced = state.files.get(&meta.ino()).copied().unwrap_or(0);
            if meta.len() <= synced {
                continue;
            }
            let unsynced = meta.len() - synced;
            let file = OpenOptions::new().write(true).open(&path)?;
            match next() % 3 {
                0 => {
                    file.set_len(synced)?;
                    loss.truncated.insert(path, (meta.len(), synced));
                }
                1 => {
                    let keep = synced + next() % unsynced;
                    file.set_len(keep)?;
                    loss.truncated.insert(path, (meta.len(), keep));
                }
                _ => {
                    let mut file = file;
                    file.seek(SeekFrom::Start(synced))?;
                    let zeros = vec![0u8; (next() % unsynced + 1) as usize];
                    file.write_all(&zeros)?;
                    loss.zeroed.push(path);
                }
            }
        }
        Ok(loss)
    }
}
