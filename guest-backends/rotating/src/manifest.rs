//! The manifest of one category: every sealed file with its size, record
//! count, checksum and time range, and the next sequence number. It is
//! rewritten atomically (temporary file, sync, rename, directory sync) on
//! every seal, rewrite and removal, so it is always one whole version.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use quire_guest::atomic::AtomicFile;
use quire_guest::types::PluginError;

use crate::naming::MANIFEST_NAME;
use crate::stats::FileStats;

/// Format version written in every manifest.
const FORMAT: u32 = 1;

/// One category's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (`1`).
    pub quire_rotating: u32,
    /// The category it describes.
    pub category: String,
    /// The sequence number the next new file gets. Never goes down, so
    /// numbers are not reused after files were dropped.
    pub next_sequence: u64,
    /// Sealed files, by sequence number.
    pub files: Vec<SealedFile>,
}

/// A sealed file as it was when sealed (or last rewritten).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedFile {
    /// File name inside the category directory.
    pub name: String,
    /// Its sequence number.
    pub sequence: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Valid records in it.
    pub records: u64,
    /// CRC32 (IEEE) of the whole file.
    pub crc32: u32,
    /// Oldest and newest record timestamp; `None` when it holds no record.
    pub min_timestamp: Option<f64>,
    pub max_timestamp: Option<f64>,
    /// True when every line was a valid record. Only then may a scan trust
    /// the checksum instead of reading the lines.
    pub clean: bool,
    /// When it was sealed, in Unix seconds.
    pub sealed_at: f64,
    /// When a rewrite last replaced it, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewritten_at: Option<f64>,
    /// Whether its line checksums were written beside it (manifests of
    /// earlier versions have only the whole file's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub line_sums: bool,
    /// False for a file taken in without any checksum to vouch for its
    /// bytes (found outside the manifest, with no line checksums that
    /// match): its records stay unverified until an operator decides.
    #[serde(default = "verified_by_default", skip_serializing_if = "is_true")]
    pub verified: bool,
}

fn verified_by_default() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl SealedFile {
    /// The entry for a file with these contents.
    pub fn new(name: String, sequence: u64, stats: &FileStats, sealed_at: f64) -> Self {
        Self {
            name,
            sequence,
            bytes: stats.bytes,
            records: stats.records,
            crc32: stats.crc32(),
            min_timestamp: stats.min_timestamp,
            max_timestamp: stats.max_timestamp,
            clean: stats.is_clean(),
            sealed_at,
            rewritten_at: None,
            line_sums: true,
            verified: true,
        }
    }

    /// Takes the contents of a replacement, keeping when it was sealed.
    pub fn replace_contents(&mut self, stats: &FileStats, at: f64) {
        let sealed_at = self.sealed_at;
        *self = Self::new(self.name.clone(), self.sequence, stats, sealed_at);
        self.rewritten_at = Some(at);
    }
}

/// What a category directory's manifest file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// No manifest file.
    Missing,
    /// A manifest.
    Found(Manifest),
    /// A manifest file that does not parse (the reason).
    Unreadable(String),
}

impl Manifest {
    /// An empty manifest: nothing sealed, numbering starts at 1.
    pub fn empty(category: &str) -> Self {
        Self {
            quire_rotating: FORMAT,
            category: category.to_string(),
            next_sequence: 1,
            files: Vec::new(),
        }
    }

    /// Reads the manifest in `dir`.
    pub fn load(dir: &Path, label: &str) -> Result<Loaded, PluginError> {
        let text = match fs::read(dir.join(MANIFEST_NAME)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(quire_guest::errors::io("read", label, e)),
        };
        Ok(match serde_json::from_slice::<Manifest>(&text) {
            Ok(m) if m.quire_rotating == FORMAT => Loaded::Found(m),
            Ok(m) => Loaded::Unreadable(format!(
                "manifest format {} (this backend reads {FORMAT})",
                m.quire_rotating
            )),
            Err(e) => Loaded::Unreadable(format!("manifest does not parse: {e}")),
        })
    }

    /// Writes the manifest into `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), PluginError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| {
            PluginError::InvalidState(format!("manifest of `{}`: {e}", self.category))
        })?;
        let mut file = AtomicFile::create(&dir.join(MANIFEST_NAME))?;
        file.write(&text)?;
        file.commit()?;
        Ok(())
    }

    /// The entry of the sealed file with this sequence number.
    pub fn entry(&self, sequence: u64) -> Option<&SealedFile> {
        self.files.iter().find(|f| f.sequence == sequence)
    }

    /// The same, to change.
    pub fn entry_mut(&mut self, sequence: u64) -> Option<&mut SealedFile> {
        self.files.iter_mut().find(|f| f.sequence == sequence)
    }

    /// Adds a sealed file, keeping the list in sequence order and the next
    /// number above it.
    pub fn add(&mut self, file: SealedFile) {
        self.next_sequence = self.next_sequence.max(file.sequence + 1);
        self.files.retain(|f| f.sequence != file.sequence);
        let at = self.files.partition_point(|f| f.sequence < file.sequence);
        self.files.insert(at, file);
    }

    /// Removes a sealed file's entry; the numbering is not touched.
    pub fn remove(&mut self, sequence: u64) -> Option<SealedFile> {
        let at = self.files.iter().position(|f| f.sequence == sequence)?;
        Some(self.files.remove(at))
    }

    /// Highest sequence number listed, if any.
    pub fn highest(&self) -> Option<u64> {
        self.files.last().map(|f| f.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(sequence: u64, records: u64) -> SealedFile {
        let mut stats = FileStats::default();
        for i in 0..records {
            stats.add_record(
                format!("{{\"kind\":\"event\",\"timestamp\":{i}}}\n").as_bytes(),
                i as f64,
            );
        }
        SealedFile::new(
            crate::naming::file_name("events", sequence),
            sequence,
            &stats,
            10.0,
        )
    }

    #[test]
    fn entries_stay_in_order_and_numbers_only_go_up() {
        let mut m = Manifest::empty("events");
        m.add(sealed(2, 1));
        m.add(sealed(1, 3));
        assert_eq!(
            m.files.iter().map(|f| f.sequence).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(m.next_sequence, 3);
        m.remove(2);
        m.remove(1);
        assert!(m.files.is_empty());
        assert_eq!(
            m.next_sequence, 3,
            "dropping files never lowers the numbering"
        );
    }

    #[test]
    fn survives_a_round_trip_through_disk_with_exact_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path(), "m").unwrap(), Loaded::Missing);
        let mut m = Manifest::empty("events");
        let mut entry = sealed(1, 2);
        entry.min_timestamp = Some(1700000000.123456);
        m.add(entry);
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path(), "m").unwrap(), Loaded::Found(m));
        assert!(!dir.path().join("MANIFEST.json.quire-tmp").exists());
    }

    #[test]
    fn damage_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(MANIFEST_NAME), "{\"quire_rotating\":1,").unwrap();
        assert!(matches!(
            Manifest::load(dir.path(), "m").unwrap(),
            Loaded::Unreadable(_)
        ));
    }

    #[test]
    fn a_replacement_keeps_when_the_file_was_sealed() {
        let mut entry = sealed(4, 5);
        let stats = FileStats::default();
        entry.replace_contents(&stats, 20.0);
        assert_eq!(
            (
                entry.records,
                entry.bytes,
                entry.sealed_at,
                entry.rewritten_at
            ),
            (0, 0, 10.0, Some(20.0))
        );
        assert_eq!(entry.min_timestamp, None);
    }
}
