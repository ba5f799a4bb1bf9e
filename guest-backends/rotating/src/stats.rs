//! What a rotated file holds, for its manifest entry: size, valid records,
//! time range, checksum, and whether every line is a valid record. Kept up
//! to date while a file is written, or computed from its data.

use std::path::Path;

use quire_guest::atomic::AtomicFile;
use quire_guest::batch::EnvelopeRef;
use quire_guest::checksum::{Crc32, line_crc32s};
use quire_guest::errors::IoContext;
use quire_guest::linefile::{SCAN_CHUNK, open_lines};
use quire_guest::record::{self, Verdict};
use quire_guest::types::PluginError;

#[cfg(test)]
use crate::sums::LineSums;
use crate::sums::{self, LineSum};

/// Contents of one file.
#[derive(Clone, Default)]
pub struct FileStats {
    /// Bytes.
    pub bytes: u64,
    /// Valid records.
    pub records: u64,
    /// Oldest and newest record timestamp.
    pub min_timestamp: Option<f64>,
    pub max_timestamp: Option<f64>,
    /// Lines that are not valid records.
    pub damaged_lines: u64,
    /// Offset and length of a last line without a newline: a torn append.
    pub torn_tail: Option<(u64, u64)>,
    crc: Crc32,
    /// Every line's length and checksum, for the sidecar of the sealed file.
    lines: Vec<LineSum>,
    /// Scratch for line checksums.
    crcs: Vec<u32>,
}

/// The state of a [`FileStats`] at some point, to go back to without
/// copying every line's checksum.
#[derive(Clone)]
pub struct StatsMark {
    /// The counts then (no lines of their own).
    stats: FileStats,
    /// How many lines there were.
    lines: usize,
}

impl StatsMark {
    /// Bytes counted then.
    pub fn bytes(&self) -> u64 {
        self.stats.bytes
    }
}

/// Each record's line as [`FileStats::add_records`] takes it (timestamp,
/// length with the newline), from a batch's columns.
pub fn lines_of<'a>(
    timestamps: &'a [f64],
    json_lens: &'a [u32],
) -> impl Iterator<Item = (f64, u32)> + 'a {
    timestamps
        .iter()
        .zip(json_lens)
        .map(|(&timestamp, &len)| (timestamp, len + 1))
}

/// One record's line as [`FileStats::add_records`] takes it.
pub fn line_of(record: EnvelopeRef<'_>) -> (f64, u32) {
    (record.timestamp, record.json.len() as u32 + 1)
}

impl FileStats {
    /// Counts a record line (newline included) with its timestamp.
    pub fn add_record(&mut self, line: &[u8], timestamp: f64) {
        let len = u32::try_from(line.len()).unwrap_or(u32::MAX);
        self.add_records(line, [(timestamp, len)]);
    }

    /// Counts record lines written together (`text`, newlines included),
    /// each given as its timestamp and length with its newline: one
    /// checksum pass over the whole text, and no search for line ends
    /// (a search per line was a twentieth of an append). Lengths that do
    /// not add up to the text's lines are not trusted: the lines are then
    /// found in the text.
    pub fn add_records(
        &mut self,
        text: &[u8],
        records: impl IntoIterator<Item = (f64, u32)>,
    ) -> u64 {
        self.count(text);
        let first_line = self.lines.len();
        let (mut oldest, mut newest) = (
            self.min_timestamp.unwrap_or(f64::INFINITY),
            self.max_timestamp.unwrap_or(f64::NEG_INFINITY),
        );
        // Comparisons, not `f64::min`: wasm calls a function for that.
        let (mut added, mut end, mut described) = (0u64, 0usize, true);
        for (timestamp, len) in records {
            if timestamp < oldest {
                oldest = timestamp;
            }
            if timestamp > newest {
                newest = timestamp;
            }
            // Every given line must end at a newline of the text.
            end = end.saturating_add(len as usize);
            described &= len > 0 && end <= text.len() && text[end - 1] == b'\n';
            let crc = self.crcs.get(added as usize).copied().unwrap_or(0);
            self.lines.push(LineSum { len, crc });
            added += 1;
        }
        // ... and they must be all of its lines.
        described &= end == text.len() && added as usize == self.crcs.len();
        if !described {
            self.lines.truncate(first_line);
            let lines = &mut self.lines;
            sums::each_line_with(text, &self.crcs, |_, sum| lines.push(sum));
        }
        if added > 0 {
            self.min_timestamp = Some(oldest);
            self.max_timestamp = Some(newest);
        }
        self.records += added;
        added
    }

    /// Counts bytes that are no record.
    fn add_damage(&mut self, line: &[u8]) {
        self.add_bytes(line);
        self.damaged_lines += 1;
    }

    fn add_bytes(&mut self, bytes: &[u8]) {
        self.count(bytes);
        let lines = &mut self.lines;
        sums::each_line_with(bytes, &self.crcs, |_, sum| lines.push(sum));
    }

    /// Counts bytes into the size and the file's CRC-32, and takes each of
    /// their lines' CRC-32s into `crcs`.
    fn count(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        self.crc.update(bytes);
        self.crcs.clear();
        line_crc32s(bytes, &mut self.crcs);
    }

    /// Where things stand, to [`FileStats::rewind`] to.
    pub fn mark(&self) -> StatsMark {
        StatsMark {
            stats: self.clone_counts(),
            lines: self.lines.len(),
        }
    }

    /// Goes back to `mark`, taken earlier from these stats; false (and
    /// nothing changed) when they no longer reach that far.
    pub fn rewind(&mut self, mark: &StatsMark) -> bool {
        if self.lines.len() < mark.lines {
            return false;
        }
        self.lines.truncate(mark.lines);
        let lines = std::mem::take(&mut self.lines);
        *self = FileStats {
            lines,
            ..mark.stats.clone_counts()
        };
        true
    }

    /// A copy of everything but the lines (and scratch).
    fn clone_counts(&self) -> FileStats {
        FileStats {
            bytes: self.bytes,
            records: self.records,
            min_timestamp: self.min_timestamp,
            max_timestamp: self.max_timestamp,
            damaged_lines: self.damaged_lines,
            torn_tail: self.torn_tail,
            crc: self.crc,
            lines: Vec::new(),
            crcs: Vec::new(),
        }
    }

    /// Writes the line checksums of a file with these contents beside
    /// `data`, its path.
    pub fn save_sums(&self, data: &Path) -> Result<(), PluginError> {
        crate::sums::save(data, self.bytes, self.crc32(), &self.lines)
    }

    /// The same, durable but not yet in place (see [`crate::sums::prepare`]).
    pub fn prepare_sums(&self, data: &Path) -> Result<AtomicFile, PluginError> {
        crate::sums::prepare(data, self.bytes, self.crc32(), &self.lines)
    }

    /// The sidecar of a file with these contents.
    #[cfg(test)]
    pub fn sums(&self) -> LineSums {
        LineSums {
            data_bytes: self.bytes,
            data_crc32: self.crc32(),
            lines: self.lines.clone(),
        }
    }

    /// CRC32 of every byte counted so far.
    pub fn crc32(&self) -> u32 {
        self.crc.value()
    }

    /// Whether every line is a valid record.
    pub fn is_clean(&self) -> bool {
        self.damaged_lines == 0
    }

    /// Reads `path` line by line and classifies each line as a scan would.
    pub fn of_file(path: &Path, label: &str) -> Result<Self, PluginError> {
        let mut lines = open_lines(path, label, 0, 1, SCAN_CHUNK)?;
        let mut stats = Self::default();
        let mut with_newline = Vec::new();
        while let Some(line) = lines.next_line().ctx("read", label)? {
            with_newline.clear();
            with_newline.extend_from_slice(line.bytes);
            if line.terminated {
                with_newline.push(b'\n');
            } else {
                stats.torn_tail = Some((line.offset, line.stored_len()));
            }
            match record::classify_line(&line) {
                Verdict::Record { timestamp, .. } => stats.add_record(&with_newline, timestamp),
                Verdict::Damaged(..) => stats.add_damage(&with_newline),
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_valid_lines_but_checksums_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let text = "{\"kind\":\"event\",\"timestamp\":5}\nnot json\n\n{\"kind\":\"audit\",\"timestamp\":2.5}\n{\"kind\":\"ev";
        std::fs::write(&path, text).unwrap();
        let stats = FileStats::of_file(&path, "f").unwrap();
        assert_eq!(stats.records, 2);
        assert_eq!(stats.damaged_lines, 3);
        assert_eq!(stats.bytes, text.len() as u64);
        assert_eq!(
            (stats.min_timestamp, stats.max_timestamp),
            (Some(2.5), Some(5.0))
        );
        let tail = text.rfind('\n').unwrap() as u64 + 1;
        assert_eq!(stats.torn_tail, Some((tail, text.len() as u64 - tail)));
        assert_eq!(
            {
                let (len, crc) = quire_guest::checksum::file_crc32(&path, "f").unwrap();
                (crc, len)
            },
            (crc32fast::hash(text.as_bytes()), text.len() as u64)
        );
        assert_eq!(stats.crc32(), crc32fast::hash(text.as_bytes()));
    }

    /// Line sums from the lengths a caller gives are the line sums found in
    /// the text; lengths that do not describe the text are not used.
    #[test]
    fn given_line_lengths_give_the_lines_found_in_the_text() {
        let lines = [
            "{\"kind\":\"a\",\"timestamp\":3}\n",
            "{\"kind\":\"b\",\"x\":[1,2],\"timestamp\":1}\n",
        ];
        let text = lines.concat();
        let mut found = FileStats::default();
        found.add_bytes(text.as_bytes());
        let (a, b) = (lines[0].len() as u32, lines[1].len() as u32);
        for given in [
            vec![(3.0, a), (1.0, b)],
            vec![(3.0, b), (1.0, a)],
            vec![(3.0, 0), (1.0, a + b)],
            vec![(3.0, 5), (1.0, 7)],
            vec![(3.0, a + b)],
            vec![(3.0, a), (1.0, b), (2.0, 1)],
        ] {
            let mut stats = FileStats::default();
            let added = stats.add_records(text.as_bytes(), given.clone());
            assert_eq!(added, given.len() as u64);
            assert_eq!(stats.lines, found.lines, "{given:?}");
            assert_eq!(stats.bytes, text.len() as u64);
            let oldest = given.iter().map(|g| g.0).fold(f64::INFINITY, f64::min);
            assert_eq!(
                (stats.min_timestamp, stats.max_timestamp),
                (Some(oldest), Some(3.0))
            );
        }
    }

    #[test]
    fn stats_kept_while_writing_match_stats_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut kept = FileStats::default();
        let mut text = String::new();
        for (i, ts) in [3.0, 1.0, 2.0].into_iter().enumerate() {
            let line = format!("{{\"kind\":\"event\",\"n\":{i},\"timestamp\":{ts}}}\n");
            kept.add_record(line.as_bytes(), ts);
            text.push_str(&line);
        }
        std::fs::write(&path, &text).unwrap();
        let read = FileStats::of_file(&path, "f").unwrap();
        assert!(read.is_clean() && read.torn_tail.is_none());
        assert_eq!(
            (
                kept.bytes,
                kept.records,
                kept.crc32(),
                kept.min_timestamp,
                kept.max_timestamp
            ),
            (
                read.bytes,
                read.records,
                read.crc32(),
                read.min_timestamp,
                read.max_timestamp
            )
        );
    }
}
