//! Small file-system steps with the syncs that make them durable.

use std::fs;
use std::path::Path;

use quire_guest::atomic::sync_dir;
use quire_guest::errors;
use quire_guest::types::PluginError;

/// Now, in Unix seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Creates `root/rel` and any missing directory on the way, syncing each
/// parent after a creation so the new entry survives power loss.
pub fn ensure_dirs(root: &Path, rel: &str) -> Result<(), PluginError> {
    let mut dir = root.to_path_buf();
    let mut label = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let parent = dir.clone();
        dir.push(part);
        if !label.is_empty() {
            label.push('/');
        }
        label.push_str(part);
        if !dir.is_dir() {
            match fs::create_dir(&dir) {
                Ok(()) => sync_dir(&parent)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(errors::io("create directory", &label, e)),
            }
        }
    }
    Ok(())
}

/// Removes a file; false when it was not there.
pub fn remove_if_exists(path: &Path, label: &str) -> Result<bool, PluginError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(errors::io("remove", label, e)),
    }
}

/// Removes a directory if it is empty (and syncs its parent); leaves it
/// otherwise.
pub fn remove_dir_if_empty(dir: &Path) -> Result<(), PluginError> {
    let empty = fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if empty
        && fs::remove_dir(dir).is_ok()
        && let Some(parent) = dir.parent()
    {
        sync_dir(parent)?;
    }
    Ok(())
}
