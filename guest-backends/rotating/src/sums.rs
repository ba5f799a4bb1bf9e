//! Line checksums of a sealed file, kept beside it (`events-0001.ndjson.sums`)
//! so that a scan can say which lines changed, not only that the file did.
//!
//! Binary, little-endian: `QLSUMS01`, the data file's size (u64) and CRC-32
//! (u32), the line count (u64), then per line its length with newline (u32)
//! and CRC-32 (u32), and last the CRC-32 of everything before it. A file
//! that does not check out as a whole is not trusted at all.
//!
//! Per line, not per block of bytes: lines are matched by their checksums,
//! so garbage inserted in the middle shifts nothing, a flipped bit costs
//! exactly the record it hit, and a line cut out is missed by name.

use std::fs;
use std::path::{Path, PathBuf};

use quire_guest::atomic::AtomicFile;
use quire_guest::checksum::{Crc32, crc32, line_crc32s};
use quire_guest::types::PluginError;

const MAGIC: &[u8; 8] = b"QLSUMS01";
const HEADER: usize = 8 + 8 + 4 + 8;
/// Suffix of a sidecar after its data file's name.
pub const SUFFIX: &str = ".sums";

/// One line as sealed: its length, newline included, and its CRC-32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSum {
    /// Bytes, newline included.
    pub len: u32,
    /// CRC-32 of those bytes.
    pub crc: u32,
}

/// The sidecar of one sealed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSums {
    /// Size of the data file it describes.
    pub data_bytes: u64,
    /// CRC-32 of the whole data file.
    pub data_crc32: u32,
    /// Every line, in order.
    pub lines: Vec<LineSum>,
}

/// The sidecar's path for a data file.
pub fn path_for(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(SUFFIX);
    PathBuf::from(name)
}

/// Bytes encoded per write: the sidecar of a 64 MiB file is a few MiB,
/// never held whole.
const ENCODE_STEP: usize = 64 << 10;

/// Encodes a sidecar a piece at a time, its own checksum last.
fn encode(
    data_bytes: u64,
    data_crc32: u32,
    lines: &[LineSum],
    mut put: impl FnMut(&[u8]) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    let mut crc = Crc32::new();
    let mut piece = Vec::with_capacity(ENCODE_STEP + 8);
    piece.extend_from_slice(MAGIC);
    piece.extend_from_slice(&data_bytes.to_le_bytes());
    piece.extend_from_slice(&data_crc32.to_le_bytes());
    piece.extend_from_slice(&(lines.len() as u64).to_le_bytes());
    for line in lines {
        piece.extend_from_slice(&line.len.to_le_bytes());
        piece.extend_from_slice(&line.crc.to_le_bytes());
        if piece.len() >= ENCODE_STEP {
            crc.update(&piece);
            put(&piece)?;
            piece.clear();
        }
    }
    crc.update(&piece);
    piece.extend_from_slice(&crc.value().to_le_bytes());
    put(&piece)
}

/// Writes the sidecar of `data` (`data_bytes` bytes, CRC-32 `data_crc32`,
/// these lines) atomically: synced, renamed, directory synced.
pub fn save(
    data: &Path,
    data_bytes: u64,
    data_crc32: u32,
    lines: &[LineSum],
) -> Result<(), PluginError> {
    prepare(data, data_bytes, data_crc32, lines)?.commit()?;
    Ok(())
}

/// The same, written and synced under its temporary name, to be put in
/// place (`commit`) once the data it describes is: a rewrite makes its
/// checksums durable before it replaces the data, so that a crash between
/// the two leaves checksums that name the new bytes.
pub fn prepare(
    data: &Path,
    data_bytes: u64,
    data_crc32: u32,
    lines: &[LineSum],
) -> Result<AtomicFile, PluginError> {
    let mut file = AtomicFile::create(&path_for(data))?;
    encode(data_bytes, data_crc32, lines, |piece| file.write(piece))?;
    file.sync()?;
    Ok(file)
}

/// The sum of every line of `text` (newline included; a last piece without
/// one counts as a line), with where it starts in `text`: one host call
/// for all their CRCs, which `scratch` holds.
pub fn each_line(text: &[u8], scratch: &mut Vec<u32>, each: impl FnMut(usize, LineSum)) {
    scratch.clear();
    line_crc32s(text, scratch);
    each_line_with(text, scratch, each);
}

/// [`each_line`] with the lines' CRC-32s already taken (`line_crc32s`).
pub fn each_line_with(text: &[u8], crcs: &[u32], mut each: impl FnMut(usize, LineSum)) {
    // memchr's SIMD search: a closure-per-byte split was the hottest loop of an append.
    let ends = memchr::memchr_iter(b'\n', text).map(|at| at + 1);
    let last = (!text.ends_with(b"\n") && !text.is_empty()).then_some(text.len());
    let mut start = 0;
    for (end, &crc) in ends.chain(last).zip(crcs) {
        // A line is far below 4 GiB (records are limited long before).
        let len = u32::try_from(end - start).unwrap_or(u32::MAX);
        each(start, LineSum { len, crc });
        start = end;
    }
}

impl LineSums {
    /// Encodes the sidecar.
    #[cfg(test)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode(self.data_bytes, self.data_crc32, &self.lines, |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })
        .expect("a vector takes every piece");
        out
    }

    /// Decodes a sidecar; the reason when it does not check out.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < HEADER + 4 || &bytes[..8] != MAGIC {
            return Err("not a line-checksum file".into());
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().expect("four bytes"));
        if crc32(body) != stored {
            return Err("the line-checksum file fails its own checksum".into());
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4"));
        let count = u64_at(20);
        let lines_bytes = (body.len() - HEADER) as u64;
        if count.checked_mul(8) != Some(lines_bytes) {
            return Err(format!(
                "the line-checksum file lists {count} lines in {lines_bytes} bytes"
            ));
        }
        let lines = body[HEADER..]
            .chunks_exact(8)
            .map(|pair| LineSum {
                len: u32::from_le_bytes(pair[..4].try_into().expect("4")),
                crc: u32::from_le_bytes(pair[4..].try_into().expect("4")),
            })
            .collect();
        Ok(Self {
            data_bytes: u64_at(8),
            data_crc32: u32_at(16),
            lines,
        })
    }

    /// Writes the sidecar of `data` atomically (synced, renamed, directory synced).
    #[cfg(test)]
    pub fn save(&self, data: &Path) -> Result<(), PluginError> {
        save(data, self.data_bytes, self.data_crc32, &self.lines)
    }

    /// Reads the sidecar of `data`: `Ok(None)` when there is none, the
    /// reason inside when it does not check out.
    pub fn load(data: &Path, label: &str) -> Result<Option<Result<Self, String>>, PluginError> {
        match fs::read(path_for(data)) {
            Ok(bytes) => Ok(Some(Self::from_bytes(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(quire_guest::errors::io(
                "read",
                &format!("{label}{SUFFIX}"),
                e,
            )),
        }
    }

    /// Reads the sidecar of `data` still under its temporary name (a
    /// rewrite cut short between its data and its checksums), if any.
    pub fn load_pending(
        data: &Path,
        label: &str,
    ) -> Result<Option<Result<Self, String>>, PluginError> {
        let temp = quire_guest::atomic::temp_path(&path_for(data));
        match fs::read(&temp) {
            Ok(bytes) => Ok(Some(Self::from_bytes(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(quire_guest::errors::io(
                "read",
                &format!("{label}{SUFFIX}"),
                e,
            )),
        }
    }

    /// Removes the sidecar of `data`, if there is one.
    pub fn remove(data: &Path, label: &str) -> Result<(), PluginError> {
        match fs::remove_file(path_for(data)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(quire_guest::errors::io(
                "remove",
                &format!("{label}{SUFFIX}"),
                e,
            )),
        }
    }
}

/// A stretch of the data that the line checksums do not vouch for: lines
/// that match no sealed line, and sealed lines not found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gap {
    /// Byte offset where it starts in the data as it is.
    pub offset: u64,
    /// Bytes of unverified lines there (0 when lines are only missing).
    pub length: u64,
    /// Lines in it that match no sealed line.
    pub unverified_lines: u64,
    /// Sealed lines that are not in the data.
    pub missing_lines: u64,
    /// Where the first of those was in the file as sealed.
    pub sealed_offset: u64,
    /// Their bytes, as sealed.
    pub missing_bytes: u64,
}

impl Gap {
    /// What a scan says about the lines here that match no sealed line.
    pub fn describe_unverified(&self) -> String {
        format!(
            "{} line(s) here match none of the line checksums sealed with the file: \
             changed or inserted since it was sealed",
            self.unverified_lines
        )
    }

    /// What a scan says about sealed lines changed in place.
    pub fn describe_changed(&self) -> String {
        format!(
            "{} line(s) here differ from the line(s) sealed in their place (the line \
             checksums sealed with the file do not match): changed since it was sealed",
            self.unverified_lines
        )
    }

    /// What a scan says about the sealed lines missing here.
    pub fn describe_missing(&self) -> String {
        format!(
            "{} line(s) sealed at bytes {}..{} of the file as it was sealed are not in \
             its data (changed, cut out or cut off); the data goes on at byte {}",
            self.missing_lines,
            self.sealed_offset,
            self.sealed_offset + self.missing_bytes,
            self.offset + self.length
        )
    }
}

/// Matches a file's lines, in order, against the lines that were sealed.
pub struct Aligner {
    sealed: Vec<LineSum>,
    next: usize,
    /// Where `sealed[next]` was in the file as sealed.
    sealed_at: u64,
    gap: Option<Gap>,
    /// Every sealed line as (crc, len, position), sorted: built at the first
    /// line that is not the next sealed one, so that matching picks up again
    /// after damage of any length.
    index: Option<Vec<(u32, u32, u32)>>,
}

impl Aligner {
    /// Starts at the first sealed line.
    pub fn new(sums: LineSums) -> Self {
        Self {
            sealed: sums.lines,
            next: 0,
            sealed_at: 0,
            gap: None,
            index: None,
        }
    }

    /// The first sealed line at or after `next` with these bytes, if any.
    fn find(&mut self, line: LineSum) -> Option<usize> {
        if self.sealed.get(self.next) == Some(&line) {
            return Some(self.next);
        }
        let sealed = &self.sealed;
        let index = self.index.get_or_insert_with(|| {
            let mut index: Vec<(u32, u32, u32)> = sealed
                .iter()
                .enumerate()
                .map(|(at, s)| (s.crc, s.len, u32::try_from(at).unwrap_or(u32::MAX)))
                .collect();
            index.sort_unstable();
            index
        });
        let next = u32::try_from(self.next).unwrap_or(u32::MAX);
        let at = index.partition_point(|&e| e < (line.crc, line.len, next));
        index
            .get(at)
            .filter(|e| e.0 == line.crc && e.1 == line.len)
            .map(|e| e.2 as usize)
    }

    fn gap_at(&mut self, offset: u64) -> &mut Gap {
        let sealed_at = self.sealed_at;
        self.gap.get_or_insert(Gap {
            offset,
            sealed_offset: sealed_at,
            ..Gap::default()
        })
    }

    /// Sealed lines from `next` on, `count` of them, are missing.
    fn skip(&mut self, offset: u64, count: usize) {
        if count == 0 {
            return;
        }
        let bytes: u64 = self.sealed[self.next..self.next + count]
            .iter()
            .map(|s| u64::from(s.len))
            .sum();
        let gap = self.gap_at(offset);
        gap.missing_lines += count as u64;
        gap.missing_bytes += bytes;
        self.next += count;
        self.sealed_at += bytes;
    }

    /// Takes the next line of the data; a gap it closes goes to `out`.
    pub fn line(&mut self, offset: u64, line: LineSum, out: &mut Vec<Gap>) {
        match self.find(line) {
            Some(at) => {
                self.skip(offset, at - self.next);
                out.extend(self.gap.take());
                self.next += 1;
                self.sealed_at += u64::from(line.len);
            }
            None => {
                let gap = self.gap_at(offset);
                gap.length = offset + u64::from(line.len) - gap.offset;
                gap.unverified_lines += 1;
            }
        }
    }

    /// The data ended at `end`: sealed lines not seen are missing.
    pub fn finish(&mut self, end: u64, out: &mut Vec<Gap>) {
        self.skip(end, self.sealed.len() - self.next);
        out.extend(self.gap.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sums_of(text: &[u8]) -> Vec<LineSum> {
        text.split_inclusive(|&b| b == b'\n')
            .map(|l| LineSum {
                len: l.len() as u32,
                crc: crc32fast::hash(l),
            })
            .collect()
    }

    fn align(sealed: &[u8], now: &[u8]) -> Vec<Gap> {
        let mut aligner = Aligner::new(LineSums {
            data_bytes: sealed.len() as u64,
            data_crc32: crc32fast::hash(sealed),
            lines: sums_of(sealed),
        });
        let mut out = Vec::new();
        let mut offset = 0;
        for line in now.split_inclusive(|&b| b == b'\n') {
            let sum = LineSum {
                len: line.len() as u32,
                crc: crc32fast::hash(line),
            };
            aligner.line(offset, sum, &mut out);
            offset += line.len() as u64;
        }
        aligner.finish(offset, &mut out);
        out
    }

    const TEXT: &[u8] = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4}\n";

    #[test]
    fn a_sidecar_round_trips_and_any_damage_to_it_is_refused() {
        let sums = LineSums {
            data_bytes: TEXT.len() as u64,
            data_crc32: crc32fast::hash(TEXT),
            lines: sums_of(TEXT),
        };
        let bytes = sums.to_bytes();
        assert_eq!(LineSums::from_bytes(&bytes), Ok(sums));
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(LineSums::from_bytes(&bad).is_err(), "flip at {at}");
        }
        assert!(LineSums::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn an_intact_file_has_no_gap() {
        assert_eq!(align(TEXT, TEXT), []);
    }

    #[test]
    fn a_changed_digit_is_one_line_changed_and_one_missing() {
        let now = TEXT.to_vec();
        let mut now = now;
        now[13] = b'7'; // {"a":2} -> {"a":7}
        assert_eq!(
            align(TEXT, &now),
            [Gap {
                offset: 8,
                length: 8,
                unverified_lines: 1,
                missing_lines: 1,
                sealed_offset: 8,
                missing_bytes: 8,
            }]
        );
    }

    #[test]
    fn inserted_garbage_shifts_nothing_after_it() {
        let mut now = TEXT[..16].to_vec();
        now.extend_from_slice(b"garbage\n{\"a\":2}\n");
        now.extend_from_slice(&TEXT[16..]);
        assert_eq!(
            align(TEXT, &now),
            [Gap {
                offset: 16,
                length: 16,
                unverified_lines: 2,
                missing_lines: 0,
                sealed_offset: 16,
                missing_bytes: 0,
            }]
        );
    }

    #[test]
    fn matching_picks_up_again_after_any_length_of_damage() {
        let sealed: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        // 10,000 lines in the middle zeroed in place.
        let lines: Vec<&[u8]> = sealed.split_inclusive(|&b| b == b'\n').collect();
        let start: usize = lines[..5_000].iter().map(|l| l.len()).sum();
        let end: usize = lines[..15_000].iter().map(|l| l.len()).sum();
        let mut now = sealed.clone();
        now[start..end - 1].fill(0);
        let gaps = align(&sealed, &now);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(
            (gaps[0].offset, gaps[0].length, gaps[0].missing_lines),
            (start as u64, (end - start) as u64, 10_000)
        );
    }

    #[test]
    fn a_cut_names_the_lines_it_took() {
        assert_eq!(
            align(TEXT, &TEXT[..20]),
            [Gap {
                offset: 16,
                length: 4,
                unverified_lines: 1,
                missing_lines: 2,
                sealed_offset: 16,
                missing_bytes: 16,
            }]
        );
        assert_eq!(
            align(TEXT, &TEXT[..16]),
            [Gap {
                offset: 16,
                length: 0,
                unverified_lines: 0,
                missing_lines: 2,
                sealed_offset: 16,
                missing_bytes: 16,
            }]
        );
    }

    proptest! {

    #[test]
    fn each_line_gives_every_line_with_its_start_and_sum(
        text in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..600),
    ) {
        let mut got = Vec::new();
        each_line(&text, &mut Vec::new(), |start, sum| got.push((start, sum)));
        let mut want = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive(|&b| b == b'\n') {
            want.push((start, LineSum { len: line.len() as u32, crc: crc32fast::hash(line) }));
            start += line.len();
        }
        prop_assert_eq!(got, want);
    }
        /// Whatever happens to the data, every line outside the gaps is a
        /// sealed line, in order, and gaps account for every sealed line
        /// not matched.
        #[test]
        fn lines_outside_gaps_are_sealed_lines(
            lines in proptest::collection::vec("[a-c]{0,3}", 1..40),
            at in 0usize..200,
            garbage in proptest::collection::vec(any::<u8>(), 0..12),
            cut in 0usize..12,
        ) {
            let sealed: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
            let at = at % (sealed.len() + 1);
            let mut now = sealed[..at].to_vec();
            now.extend_from_slice(&garbage);
            now.extend_from_slice(&sealed[(at + cut).min(sealed.len())..]);
            let gaps = align(&sealed, &now);
            let sealed_lines = sums_of(&sealed);
            let mut matched = Vec::new();
            let mut offset = 0u64;
            for line in now.split_inclusive(|&b| b == b'\n') {
                let inside = gaps.iter().any(|g| offset >= g.offset && offset < g.offset + g.length);
                if !inside {
                    matched.push(LineSum { len: line.len() as u32, crc: crc32fast::hash(line) });
                }
                offset += line.len() as u64;
            }
            // Lines outside gaps appear among the sealed lines in order.
            let mut it = sealed_lines.iter();
            for m in &matched {
                prop_assert!(it.any(|s| s == m), "a line outside every gap is not sealed");
            }
            let missing: u64 = gaps.iter().map(|g| g.missing_lines).sum();
            prop_assert_eq!(matched.len() as u64 + missing, sealed_lines.len() as u64);
            // Missing bytes, as sealed, are the bytes of the lines not matched.
            let missing_bytes: u64 = gaps.iter().map(|g| g.missing_bytes).sum();
            let matched_bytes: u64 = matched.iter().map(|m| u64::from(m.len)).sum();
            prop_assert_eq!(missing_bytes + matched_bytes, sealed.len() as u64);
        }
    }
}
