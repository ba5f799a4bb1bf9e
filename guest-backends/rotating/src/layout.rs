//! What is on disk: the category directories under the data root, and in
//! each its manifest, rotated files and leftover temporary files, with every
//! rotated file placed as sealed, live, or orphaned.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use quire_guest::atomic::TEMP_SUFFIX;
use quire_guest::errors::IoContext;
use quire_guest::types::PluginError;

use crate::manifest::{Loaded, Manifest};
use crate::naming::{self, RECEIPTS_DIR};

/// Where a rotated file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Listed in the manifest: never appended to again.
    Sealed,
    /// The highest-numbered file not in the manifest, above every sealed
    /// one: appends go here.
    Live,
    /// Not in the manifest and not the live file (a crash between creating
    /// a file and recording it, a file restored from elsewhere).
    Orphan,
}

/// One category directory as found.
#[derive(Debug, Clone)]
pub struct CategoryDir {
    /// Category name (the directory name).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// Its manifest file.
    pub manifest: Loaded,
    /// Rotated files: sequence number → size in bytes.
    pub files: BTreeMap<u64, u64>,
    /// Leftover temporary files: name → size in bytes.
    pub temps: BTreeMap<String, u64>,
    /// Line-checksum files (`NAME.ndjson.sums`): sequence number of the
    /// file they describe → size in bytes.
    pub sums: BTreeMap<u64, u64>,
}

impl CategoryDir {
    /// Reads one category directory.
    pub fn read(root: &Path, name: &str) -> Result<Self, PluginError> {
        let dir = root.join(name);
        let mut files = BTreeMap::new();
        let mut temps = BTreeMap::new();
        let mut sums = BTreeMap::new();
        for entry in fs::read_dir(&dir).ctx("list", name)? {
            let entry = entry.ctx("list", name)?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let is_temp = file.ends_with(TEMP_SUFFIX);
            let sequence = naming::parse_file_name(name, &file);
            let sums_of = file
                .strip_suffix(crate::sums::SUFFIX)
                .and_then(|data| naming::parse_file_name(name, data));
            if !is_temp && sequence.is_none() && sums_of.is_none() {
                continue;
            }
            let meta = entry.metadata().ctx("stat", &format!("{name}/{file}"))?;
            if !meta.is_file() {
                continue;
            }
            match (sequence, sums_of) {
                (Some(sequence), _) => {
                    files.insert(sequence, meta.len());
                }
                (None, Some(sequence)) => {
                    sums.insert(sequence, meta.len());
                }
                (None, None) => {
                    temps.insert(file, meta.len());
                }
            }
        }
        let manifest = Manifest::load(&dir, &format!("{name}/{}", naming::MANIFEST_NAME))?;
        Ok(Self {
            name: name.to_string(),
            dir,
            manifest,
            files,
            temps,
            sums,
        })
    }

    /// The manifest when it is readable.
    pub fn found(&self) -> Option<&Manifest> {
        match &self.manifest {
            Loaded::Found(m) => Some(m),
            _ => None,
        }
    }

    /// The live file's sequence number, if there is one. Without a readable
    /// manifest nothing is live: a file that may have been sealed is never
    /// appended to on a guess.
    pub fn live(&self) -> Option<u64> {
        let manifest = self.found()?;
        let (&highest, _) = self
            .files
            .iter()
            .rev()
            .find(|(seq, _)| manifest.entry(**seq).is_none())?;
        let above_sealed = manifest.highest().is_none_or(|h| highest > h);
        (above_sealed && highest >= manifest.next_sequence).then_some(highest)
    }

    /// Role of the file with this sequence number (which must exist).
    pub fn role(&self, sequence: u64, live: Option<u64>) -> Role {
        if self.found().is_some_and(|m| m.entry(sequence).is_some()) {
            Role::Sealed
        } else if live == Some(sequence) {
            Role::Live
        } else {
            Role::Orphan
        }
    }

    /// Sequence numbers of orphaned files.
    pub fn orphans(&self) -> Vec<u64> {
        let live = self.live();
        self.files
            .keys()
            .copied()
            .filter(|&seq| self.role(seq, live) == Role::Orphan)
            .collect()
    }

    /// Manifest entries whose file is gone.
    pub fn missing(&self) -> Vec<u64> {
        self.found()
            .map(|m| {
                m.files
                    .iter()
                    .map(|f| f.sequence)
                    .filter(|seq| !self.files.contains_key(seq))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The highest sequence number seen anywhere in this directory.
    pub fn highest_sequence(&self) -> u64 {
        let files = self.files.keys().next_back().copied().unwrap_or(0);
        let listed = self
            .found()
            .map(|m| {
                m.highest()
                    .unwrap_or(0)
                    .max(m.next_sequence.saturating_sub(1))
            })
            .unwrap_or(0);
        files.max(listed)
    }
}

/// Names of the category directories under `root`, sorted.
pub fn category_names(root: &Path) -> Result<Vec<String>, PluginError> {
    let label = root.display().to_string();
    let mut names = Vec::new();
    for entry in fs::read_dir(root).ctx("list", &label)? {
        let entry = entry.ctx("list", &label)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == RECEIPTS_DIR || !naming::is_category(&name) {
            continue;
        }
        if entry.file_type().ctx("stat", &name)?.is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Every category directory under `root`, sorted by name.
pub fn read_all(root: &Path) -> Result<Vec<CategoryDir>, PluginError> {
    category_names(root)?
        .iter()
        .map(|name| CategoryDir::read(root, name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SealedFile;
    use crate::stats::FileStats;

    fn touch(dir: &Path, name: &str, bytes: usize) {
        fs::write(dir.join(name), vec![b'\n'; bytes]).unwrap();
    }

    fn manifest(sealed: &[u64], next: u64) -> Manifest {
        let mut m = Manifest::empty("events");
        for &seq in sealed {
            m.add(SealedFile::new(
                naming::file_name("events", seq),
                seq,
                &FileStats::default(),
                1.0,
            ));
        }
        m.next_sequence = next;
        m
    }

    fn setup(files: &[u64], m: Option<&Manifest>) -> (tempfile::TempDir, CategoryDir) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("events");
        fs::create_dir(&dir).unwrap();
        for &seq in files {
            touch(&dir, &naming::file_name("events", seq), seq as usize);
        }
        if let Some(m) = m {
            m.save(&dir).unwrap();
        }
        let read = CategoryDir::read(root.path(), "events").unwrap();
        (root, read)
    }

    #[test]
    fn the_highest_unlisted_file_above_the_sealed_ones_is_live() {
        let (_root, cat) = setup(&[1, 2, 3], Some(&manifest(&[1, 2], 3)));
        assert_eq!(cat.live(), Some(3));
        assert!(cat.orphans().is_empty());
        assert_eq!(cat.files.get(&3), Some(&3));
    }

    #[test]
    fn unlisted_files_below_the_live_one_are_orphans() {
        let (_root, cat) = setup(&[1, 2, 3, 4], Some(&manifest(&[1], 2)));
        assert_eq!(cat.live(), Some(4));
        assert_eq!(cat.orphans(), vec![2, 3]);
    }

    #[test]
    fn a_number_already_given_out_is_never_live_again() {
        // 1 and 2 were sealed and 2 dropped; a file 2 reappearing is an orphan.
        let (_root, cat) = setup(&[1, 2], Some(&manifest(&[1], 3)));
        assert_eq!(cat.live(), None);
        assert_eq!(cat.orphans(), vec![2]);
        assert_eq!(cat.highest_sequence(), 2);
    }

    #[test]
    fn without_a_manifest_nothing_is_live() {
        let (_root, cat) = setup(&[1, 2], None);
        assert_eq!(cat.manifest, Loaded::Missing);
        assert_eq!(cat.live(), None);
        assert_eq!(cat.orphans(), vec![1, 2]);
    }

    #[test]
    fn temporaries_and_missing_files_are_found_and_strangers_ignored() {
        let (root, _) = setup(&[2], Some(&manifest(&[1, 2], 3)));
        let dir = root.path().join("events");
        touch(&dir, "events-0002.ndjson.quire-tmp", 5);
        touch(&dir, "notes.txt", 5);
        touch(&dir, "events-2.ndjson", 5);
        fs::create_dir(root.path().join("receipts")).unwrap();
        fs::create_dir(root.path().join(".hidden")).unwrap();
        touch(root.path(), ".quire-lock", 0);
        let all = read_all(root.path()).unwrap();
        assert_eq!(all.len(), 1);
        let cat = &all[0];
        assert_eq!(cat.missing(), vec![1]);
        assert_eq!(
            cat.temps.keys().cloned().collect::<Vec<_>>(),
            ["events-0002.ndjson.quire-tmp"]
        );
        assert_eq!(cat.files.keys().copied().collect::<Vec<_>>(), [2]);
    }
}
