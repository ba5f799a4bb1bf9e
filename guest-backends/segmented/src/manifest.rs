//! `<segment>.manifest.json`: what a sealed segment holds, written
//! atomically when it is sealed or rewritten.

use std::path::{Path, PathBuf};

use quire_guest::atomic::AtomicFile;
use quire_guest::types::PluginError;
use serde::{Deserialize, Serialize};

use crate::layout::{MANIFEST_SUFFIX, PENDING_SUFFIX};

/// Version of the manifest format.
pub const SCHEMA: u32 = 1;

/// Everything known about a sealed segment without reading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// Segment number.
    pub segment: u64,
    /// Store name.
    pub store: String,
    /// Codec of the segment's frames (as its header says).
    pub codec: String,
    /// Bucket directory label.
    pub bucket: String,
    /// Valid records in the segment: the true count.
    pub records: u64,
    /// Size of the segment file.
    pub bytes: u64,
    /// Oldest and newest record timestamps; for a segment without records,
    /// the time the segment was created, so retention by age can still act.
    pub min_timestamp: f64,
    pub max_timestamp: f64,
    /// CRC32 of the whole segment file.
    pub crc32: u32,
    /// When the segment was sealed (or last rewritten).
    pub sealed_at: f64,
    /// Damaged regions known when the manifest was written (a segment
    /// sealed as it was after a crash). A scan decodes such a segment even
    /// when its checksum matches, so the damage stays visible until repaired.
    #[serde(default)]
    pub damaged: u64,
}

/// Path of the manifest of the segment at `segment`.
pub fn path_for(segment: &Path) -> PathBuf {
    with_suffix(segment, MANIFEST_SUFFIX)
}

/// Path of the pending manifest a rewrite of `segment` commits.
pub fn pending_path_for(segment: &Path) -> PathBuf {
    with_suffix(segment, PENDING_SUFFIX)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Reads a manifest: `Ok(None)` when there is none, `Err` with the reason
/// when it exists but is unreadable or not schema 1.
pub fn read(path: &Path) -> Result<Option<Manifest>, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read manifest: {e}")),
    };
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("manifest is not valid: {e}"))?;
    if manifest.schema != SCHEMA {
        return Err(format!(
            "manifest schema {} is not {SCHEMA}",
            manifest.schema
        ));
    }
    Ok(Some(manifest))
}

/// Writes a manifest atomically: temporary file, sync, rename, directory sync.
pub fn write(path: &Path, manifest: &Manifest) -> Result<(), PluginError> {
    crate::fault::check(crate::fault::Op::Write)
        .map_err(|e| quire_guest::errors::io("write", &path.display().to_string(), e))?;
    let mut text = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    text.push(b'\n');
    let mut file = AtomicFile::create(path)?;
    file.write(&text)?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_refuse_bad_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("segment-000001.wal");
        let path = path_for(&seg);
        assert!(path.ends_with("segment-000001.wal.manifest.json"));
        assert_eq!(read(&path), Ok(None));
        let m = Manifest {
            schema: SCHEMA,
            segment: 1,
            store: "gps".into(),
            codec: "compact".into(),
            bucket: "2026-11-21".into(),
            records: 3,
            bytes: 400,
            min_timestamp: 1_795_239_000.123_456,
            max_timestamp: 1_795_239_001.5,
            crc32: 0xdead_beef,
            sealed_at: 1_795_239_100.0,
            damaged: 0,
        };
        write(&path, &m).unwrap();
        assert_eq!(read(&path), Ok(Some(m)));
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().contains("not valid"));
        std::fs::write(&path, r#"{"schema":2}"#).unwrap();
        assert!(read(&path).is_err());
    }
}
