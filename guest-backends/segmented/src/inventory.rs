//! What is on disk: every store directory, segment, manifest, pending
//! manifest and temporary file, found by listing (nothing is read).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use quire_guest::errors::{self, IoContext};
use quire_guest::types::PluginError;

use crate::layout::{
    self, Bucket, HIGH_WATER_FILE, MANIFEST_SUFFIX, PENDING_SUFFIX, RECEIPTS_DIR, SegmentRef,
    WAL_DIR,
};

/// Files of one segment number in one bucket directory.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFiles {
    /// Where it is.
    pub seg: SegmentRef,
    /// Size of the segment file; `None` when only its manifest is there.
    pub bytes: Option<u64>,
    /// Whether `<segment>.manifest.json` exists.
    pub manifest: bool,
    /// Whether a rewrite's pending manifest exists.
    pub pending: bool,
}

/// One store directory.
#[derive(Debug, Clone, Default)]
pub struct StoreFiles {
    /// Segments by (number, bucket): oldest first.
    pub segments: BTreeMap<(u64, String), SegmentFiles>,
    /// Temporary files: (unit id, bytes).
    pub temps: Vec<(String, u64)>,
    /// The high-water mark file's number (0 when absent).
    pub high_water: u64,
}

impl StoreFiles {
    /// Highest segment number any file of this store names.
    pub fn highest_number(&self) -> u64 {
        let temps = self
            .temps
            .iter()
            .filter_map(|(id, _)| layout::number_prefix(id.rsplit('/').next().unwrap_or("")));
        self.segments
            .keys()
            .map(|(n, _)| *n)
            .chain(temps)
            .chain([self.high_water])
            .max()
            .unwrap_or(0)
    }

    /// The live segment: the highest-numbered one, if its file exists and
    /// it has no manifest. A segment below a sealed one is never live.
    pub fn live(&self) -> Option<&SegmentFiles> {
        self.segments
            .values()
            .next_back()
            .filter(|s| s.bytes.is_some() && !s.manifest)
    }
}

/// Everything under `wal/`.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Stores by name.
    pub stores: BTreeMap<String, StoreFiles>,
    /// Temporary files in the receipts directory: (unit id, bytes).
    pub receipt_temps: Vec<(String, u64)>,
}

fn entries(dir: &Path, label: &str) -> Result<Vec<(String, fs::Metadata)>, PluginError> {
    let list = match fs::read_dir(dir) {
        Ok(list) => list,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(errors::io("list", label, e)),
    };
    let mut out = Vec::new();
    for entry in list {
        let entry = entry.ctx("list", label)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let meta = entry.metadata().ctx("stat", &format!("{label}/{name}"))?;
        out.push((name, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl Inventory {
    /// Lists the layout under `data_root`. Names that are not this
    /// backend's are left alone and not reported.
    pub fn scan(data_root: &Path) -> Result<Self, PluginError> {
        let mut inv = Inventory::default();
        let wal = data_root.join(WAL_DIR);
        for (name, meta) in entries(&wal, WAL_DIR)? {
            if name == RECEIPTS_DIR && meta.is_dir() {
                let rel = format!("{WAL_DIR}/{RECEIPTS_DIR}");
                for (file, meta) in entries(&wal.join(RECEIPTS_DIR), &rel)? {
                    if meta.is_file() && layout::is_temp_name(&file) {
                        inv.receipt_temps
                            .push((format!("{rel}/{file}"), meta.len()));
                    }
                }
                continue;
            }
            let Some(store) = name.strip_prefix("store=") else {
                continue;
            };
            if !meta.is_dir() || layout::check_store_name(store).is_err() {
                continue;
            }
            let files = inv.stores.entry(store.to_string()).or_default();
            scan_store(&wal.join(&name), store, files)?;
        }
        Ok(inv)
    }

    /// The files of `seg`, if any exist.
    pub fn find(&self, seg: &SegmentRef) -> Option<&SegmentFiles> {
        self.stores
            .get(&seg.store)?
            .segments
            .get(&(seg.number, seg.bucket.clone()))
    }
}

fn scan_store(dir: &Path, store: &str, files: &mut StoreFiles) -> Result<(), PluginError> {
    let store_rel = layout::store_dir(store);
    for (name, meta) in entries(dir, &store_rel)? {
        if name == HIGH_WATER_FILE && meta.is_file() {
            files.high_water = fs::read_to_string(dir.join(&name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            continue;
        }
        if layout::is_temp_name(&name) && meta.is_file() {
            // e.g. `high-water.quire-tmp`: a mark write a crash interrupted.
            files
                .temps
                .push((format!("{store_rel}/{name}"), meta.len()));
            continue;
        }
        let Some(label) = name.strip_prefix("date=") else {
            continue;
        };
        if !meta.is_dir() || Bucket::parse(label).is_none() {
            continue;
        }
        let date_rel = format!("{store_rel}/{name}");
        for (file, meta) in entries(&dir.join(&name), &date_rel)? {
            if !meta.is_file() {
                continue;
            }
            if let Some(n) = layout::parse_segment_file(&file) {
                entry(files, store, label, n).bytes = Some(meta.len());
            } else if let Some(n) = file
                .strip_suffix(MANIFEST_SUFFIX)
                .and_then(layout::parse_segment_file)
            {
                entry(files, store, label, n).manifest = true;
            } else if let Some(n) = file
                .strip_suffix(PENDING_SUFFIX)
                .and_then(layout::parse_segment_file)
            {
                entry(files, store, label, n).pending = true;
            } else if layout::is_temp_name(&file) {
                files.temps.push((format!("{date_rel}/{file}"), meta.len()));
            }
        }
    }
    Ok(())
}

fn entry<'a>(
    files: &'a mut StoreFiles,
    store: &str,
    label: &str,
    number: u64,
) -> &'a mut SegmentFiles {
    files
        .segments
        .entry((number, label.to_string()))
        .or_insert_with(|| SegmentFiles {
            seg: SegmentRef {
                store: store.into(),
                bucket: label.into(),
                number,
            },
            bytes: None,
            manifest: false,
            pending: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_segments_manifests_temps_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("wal/store=gps/date=2026-11-21");
        fs::create_dir_all(&d).unwrap();
        fs::create_dir_all(dir.path().join("wal/store=../x")).ok();
        fs::create_dir_all(dir.path().join("wal/receipts")).unwrap();
        fs::write(d.join("segment-000001.wal"), b"abc").unwrap();
        fs::write(d.join("segment-000001.wal.manifest.json"), b"{}").unwrap();
        fs::write(d.join("segment-000002.wal"), b"abcd").unwrap();
        fs::write(d.join("segment-000004.wal.manifest.json"), b"{}").unwrap();
        fs::write(d.join("segment-000005.wal.quire-tmp"), b"t").unwrap();
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        fs::write(dir.path().join("wal/store=gps/high-water"), b"9\n").unwrap();
        fs::write(dir.path().join("wal/receipts/1-purged-x.quire-tmp"), b"r").unwrap();
        let inv = Inventory::scan(dir.path()).unwrap();
        let gps = &inv.stores["gps"];
        assert_eq!(gps.segments.len(), 3);
        assert_eq!(gps.segments[&(1, "2026-11-21".into())].bytes, Some(3));
        assert!(gps.segments[&(1, "2026-11-21".into())].manifest);
        assert_eq!(gps.segments[&(4, "2026-11-21".into())].bytes, None);
        assert_eq!(
            gps.temps,
            [(
                "wal/store=gps/date=2026-11-21/segment-000005.wal.quire-tmp".to_string(),
                1
            )]
        );
        assert_eq!(gps.high_water, 9);
        assert_eq!(gps.highest_number(), 9);
        // The highest entry is a manifest without its segment: nothing is live.
        assert!(gps.live().is_none());
        assert_eq!(inv.receipt_temps.len(), 1);
        assert_eq!(
            Inventory::scan(&dir.path().join("absent"))
                .unwrap()
                .stores
                .len(),
            0
        );
    }
}
