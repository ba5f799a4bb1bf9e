//! What a scan checks of a sealed file besides its lines: that its bytes
//! are the bytes that were sealed. The whole-file checksum says whether;
//! the line checksums beside it say which lines changed, went missing or
//! were inserted, and each such stretch becomes a `checksum-mismatch`
//! anomaly that repair drops (the host never keeps a record inside one).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use quire_guest::anomalies::at as anomaly;
use quire_guest::checksum::Crc32;
use quire_guest::errors::IoContext;
use quire_guest::types::{Anomaly, AnomalyKind, PluginError, ScanChunk};

use crate::manifest::SealedFile;
use crate::sums::{self, Aligner, Gap, LineSum, LineSums};

/// Bytes read per step while matching lines.
const READ_STEP: usize = 1 << 20;

/// A sealed file being checked, across the scan's steps.
pub struct SealedCheck {
    /// The unit.
    pub unit: String,
    /// Said once, at the end.
    notes: Vec<Anomaly>,
    /// Matching lines against the sealed ones, when the bytes changed and
    /// line checksums are there to say where.
    lines: Option<(Aligner, LineFeed)>,
}

/// How a check begins.
pub enum Start {
    /// Every byte is what was sealed and every line a record: nothing to read.
    Intact,
    /// Lines must be read.
    Check(Box<SealedCheck>),
}

/// Compares `path` (`size` bytes, CRC-32 `crc`) with what was sealed.
pub fn start(
    path: &Path,
    unit: &str,
    entry: &SealedFile,
    size: u64,
    crc: u32,
) -> Result<Start, PluginError> {
    let matches_entry = size == entry.bytes && crc == entry.crc32;
    let differs = || {
        if size != entry.bytes {
            format!("{size} bytes, the manifest says {}", entry.bytes)
        } else {
            format!("crc32 {crc:08x}, the manifest says {:08x}", entry.crc32)
        }
    };
    let mut check = SealedCheck {
        unit: unit.to_string(),
        notes: Vec::new(),
        lines: None,
    };
    let whole = |detail: String| anomaly(AnomalyKind::ChecksumMismatch, unit, 0, size, detail);
    if !entry.verified {
        check.notes.push(whole(
            "taken in without any checksum that vouches for its bytes: its records are unverified"
                .into(),
        ));
        return Ok(Start::Check(Box::new(check)));
    }
    let sums = if entry.line_sums {
        LineSums::load(path, unit)?
    } else {
        None
    };
    let describes_data = |s: &LineSums| s.data_bytes == size && s.data_crc32 == crc;
    let note = |detail: String| anomaly(AnomalyKind::ManifestMismatch, unit, 0, 0, detail);
    if matches_entry {
        // The bytes are what the manifest sealed: line checksums can only
        // be stale or damaged, never a reason to drop a record.
        let problem = match sums {
            Some(Ok(s)) if describes_data(&s) => None,
            Some(Ok(_)) => {
                Some("its line checksums describe other bytes (a rewrite cut short)".into())
            }
            Some(Err(reason)) => Some(reason),
            None if entry.line_sums => Some("its line checksums are missing".to_string()),
            None => None,
        };
        match problem {
            None if entry.clean => return Ok(Start::Intact),
            None => {}
            Some(reason) => check.notes.push(note(format!(
                "{reason}; the file matches its manifest checksum (repair writes them again)"
            ))),
        }
        return Ok(Start::Check(Box::new(check)));
    }
    // The bytes changed since the manifest entry: either a rewrite that
    // stopped before its manifest (its line checksums, in place or still
    // under their temporary name, describe exactly these bytes), or damage.
    let pending = LineSums::load_pending(path, unit)?.and_then(Result::ok);
    match sums {
        Some(Ok(s)) if describes_data(&s) => check.notes.push(note(format!(
            "{}; the bytes match the line checksums a rewrite wrote, so the manifest entry is \
             one rewrite behind (repair brings it up to date)",
            differs()
        ))),
        _ if pending.as_ref().is_some_and(describes_data) => check.notes.push(note(format!(
            "{}; a rewrite stopped after replacing the data, before its line checksums and \
             manifest (repair brings them up to date)",
            differs()
        ))),
        Some(Ok(s)) => {
            let file = File::open(path).ctx("open", unit)?;
            check.lines = Some((Aligner::new(s), LineFeed::new(file)));
        }
        other => {
            let reason = match other {
                Some(Err(reason)) => reason,
                _ => "no line checksums say where".into(),
            };
            check.notes.push(whole(format!(
                "{}, and {reason}: no record in it can be verified",
                differs()
            )));
        }
    }
    Ok(Start::Check(Box::new(check)))
}

impl SealedCheck {
    /// Adds what the lines up to the end of `chunk` show (and, when it is
    /// the last, everything left to say).
    pub fn after_chunk(&mut self, chunk: &mut ScanChunk, size: u64) -> Result<(), PluginError> {
        let mut gaps = Vec::new();
        if let Some((aligner, feed)) = &mut self.lines {
            let upto = if chunk.done { size } else { chunk.next_offset };
            feed.feed(aligner, upto, chunk.done, &mut gaps)
                .ctx("read", &self.unit)?;
            if chunk.done {
                aligner.finish(feed.end(), &mut gaps);
            }
        }
        for gap in gaps {
            // Lines changed where they were: one finding says it all.
            let in_place = gap.sealed_offset == gap.offset && gap.missing_bytes == gap.length;
            if in_place && gap.unverified_lines > 0 && gap.missing_lines > 0 {
                chunk.anomalies.push(anomaly(
                    AnomalyKind::ChecksumMismatch,
                    &self.unit,
                    gap.offset,
                    gap.length,
                    gap.describe_changed(),
                ));
                continue;
            }
            // Lines here that no sealed checksum vouches for: repair drops
            // any record among them.
            if gap.unverified_lines > 0 {
                chunk.anomalies.push(anomaly(
                    AnomalyKind::ChecksumMismatch,
                    &self.unit,
                    gap.offset,
                    gap.length,
                    gap.describe_unverified(),
                ));
            }
            // Sealed lines gone: marked where the data goes on without
            // them (their place as sealed is in the words).
            if gap.missing_lines > 0 {
                chunk.anomalies.push(anomaly(
                    AnomalyKind::ManifestMismatch,
                    &self.unit,
                    gap.offset + gap.length,
                    0,
                    gap.describe_missing(),
                ));
            }
        }
        if chunk.done {
            chunk.anomalies.append(&mut self.notes);
        }
        Ok(())
    }
}

/// A line's sum from its running CRC and length (a line is far below 4 GiB).
fn line_sum(crc: Crc32, len: u64) -> LineSum {
    LineSum {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        crc: crc.value(),
    }
}

/// Reads a file's lines in order and hands each, with its checksum, to an
/// [`Aligner`]. A line longer than a read step is never held whole: its
/// length and running CRC are carried instead.
struct LineFeed {
    file: File,
    /// Where reading stopped.
    at: u64,
    /// The unfinished line read so far: where it starts, its bytes' CRC and length.
    partial: Option<(u64, Crc32, u64)>,
    buf: Vec<u8>,
    crcs: Vec<u32>,
}

impl LineFeed {
    fn new(file: File) -> Self {
        Self {
            file,
            at: 0,
            partial: None,
            buf: Vec::new(),
            crcs: Vec::new(),
        }
    }

    /// Where reading stopped.
    fn end(&self) -> u64 {
        self.at
    }

    /// Hands over every whole line before `upto`; at the end, the
    /// unfinished last line too.
    fn feed(
        &mut self,
        aligner: &mut Aligner,
        upto: u64,
        at_end: bool,
        gaps: &mut Vec<Gap>,
    ) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(self.at))?;
        while self.at < upto {
            let want = READ_STEP.min((upto - self.at) as usize);
            self.buf.resize(want, 0);
            let n = self.file.read(&mut self.buf)?;
            if n == 0 {
                break;
            }
            self.step(n, aligner, gaps);
        }
        if at_end && let Some((start, crc, len)) = self.partial.take() {
            aligner.line(start, line_sum(crc, len), gaps);
        }
        Ok(())
    }

    /// Takes the `n` bytes just read into `buf`, starting at `at`.
    fn step(&mut self, n: usize, aligner: &mut Aligner, gaps: &mut Vec<Gap>) {
        let bytes = &self.buf[..n];
        let base = self.at;
        let mut from = 0usize;
        // First, the end of a line begun in an earlier step.
        if let Some((start, mut crc, len)) = self.partial.take() {
            match memchr::memchr(b'\n', bytes) {
                Some(nl) => {
                    crc.update(&bytes[..=nl]);
                    aligner.line(start, line_sum(crc, len + nl as u64 + 1), gaps);
                    from = nl + 1;
                }
                None => {
                    crc.update(bytes);
                    self.partial = Some((start, crc, len + n as u64));
                    self.at += n as u64;
                    return;
                }
            }
        }
        // Then every whole line, a host call for all of them.
        let whole_end = memchr::memrchr(b'\n', &bytes[from..]).map_or(from, |i| from + i + 1);
        let at = base + from as u64;
        sums::each_line(&bytes[from..whole_end], &mut self.crcs, |start, sum| {
            aligner.line(at + start as u64, sum, gaps)
        });
        // And the start of a line that goes on.
        if whole_end < n {
            let mut crc = Crc32::new();
            crc.update(&bytes[whole_end..]);
            self.partial = Some((base + whole_end as u64, crc, (n - whole_end) as u64));
        }
        self.at += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines longer than a read step, split anywhere, and an unfinished last
    /// line all reach the aligner whole, with the right offsets.
    #[test]
    fn long_lines_are_fed_whole_without_being_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut text = b"short\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', READ_STEP * 2 + 17));
        text.push(b'\n');
        text.extend_from_slice(b"mid\n");
        text.extend(std::iter::repeat_n(b'y', READ_STEP + 3));
        std::fs::write(&path, &text).unwrap();
        let sealed: Vec<LineSum> = text
            .split_inclusive(|&b| b == b'\n')
            .map(|l| LineSum {
                len: l.len() as u32,
                crc: crc32fast::hash(l),
            })
            .collect();
        let mut aligner = Aligner::new(LineSums {
            data_bytes: text.len() as u64,
            data_crc32: crc32fast::hash(&text),
            lines: sealed,
        });
        let mut feed = LineFeed::new(File::open(&path).unwrap());
        let mut gaps = Vec::new();
        // In two calls, the first ending inside the long line.
        feed.feed(&mut aligner, READ_STEP as u64 + 5, false, &mut gaps)
            .unwrap();
        feed.feed(&mut aligner, text.len() as u64, true, &mut gaps)
            .unwrap();
        aligner.finish(feed.end(), &mut gaps);
        assert_eq!(gaps, []);
        assert_eq!(feed.end(), text.len() as u64);
        assert!(
            feed.buf.capacity() <= READ_STEP,
            "a long line was held whole"
        );
    }
}
