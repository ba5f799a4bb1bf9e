//! Records no checksum vouches for. Where a backend holds a checksum and
//! the bytes no longer match it, it reports the stretch as a
//! `checksum-mismatch` anomaly; a record inside one may parse and still not
//! be what was written. Repair never copies such a record into a
//! replacement (which would seal it under a fresh checksum) unless the
//! operator asks, and names every one it drops.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::read_batch::RecordView;
use crate::report::{ByteRange, Unverified};
use crate::session::Session;
use crate::wit::AnomalyKind;

/// The stretches of `unit` its checksums disown, sorted and merged: found
/// by validating the whole unit again, so none is missed when the scan's
/// report was full. `Ok(Err(why))` when there are too many to act on: the
/// caller leaves that unit as it is and goes on with the others.
pub fn disowned_ranges(
    session: &mut Session,
    unit: &str,
    bytes: u64,
) -> Result<std::result::Result<Vec<ByteRange>, String>> {
    let mut ranges = Vec::new();
    let mut too_many = false;
    super::scan::validate_unit(session, unit, bytes, |_, anomalies| {
        if too_many {
            return;
        }
        ranges.extend(
            anomalies
                .iter()
                .filter(|a| a.kind == AnomalyKind::ChecksumMismatch && a.length > 0)
                .map(|a| ByteRange {
                    offset: a.offset,
                    length: a.length,
                }),
        );
        // A plugin may report without end: memory stays bounded by merging.
        if ranges.len() > MAX_RANGES {
            ranges = merge(std::mem::take(&mut ranges));
            too_many = ranges.len() > MAX_RANGES / 2;
        }
    })?;
    let ranges = merge(ranges);
    if too_many || ranges.len() > MAX_RANGES / 2 {
        return Ok(Err(format!(
            "more than {} separate stretches its checksums disown",
            MAX_RANGES / 2
        )));
    }
    Ok(Ok(ranges))
}

/// The disowned stretches a scan report names, by unit.
pub struct Disowned(std::collections::BTreeMap<String, Vec<ByteRange>>);

impl Disowned {
    /// From a scan's findings (the whole list: a capped report does not do).
    pub fn of(findings: &[crate::report::Finding]) -> Self {
        let mut by_unit: std::collections::BTreeMap<String, Vec<ByteRange>> = Default::default();
        for f in findings {
            if f.kind == AnomalyKind::ChecksumMismatch.label() && f.length > 0 {
                by_unit.entry(f.unit.clone()).or_default().push(ByteRange {
                    offset: f.offset,
                    length: f.length,
                });
            }
        }
        Self(by_unit.into_iter().map(|(u, r)| (u, merge(r))).collect())
    }

    /// Whether the record at `offset` (`stored_bytes` long) of `unit`
    /// touches a disowned byte.
    pub fn covers(&self, unit: &str, offset: u64, stored_bytes: u64) -> bool {
        self.0
            .get(unit)
            .is_some_and(|ranges| overlaps(ranges, offset, stored_bytes))
    }
}

/// Whether `offset..offset + len` (at least one byte) touches one of the
/// sorted, merged `ranges`.
fn overlaps(ranges: &[ByteRange], offset: u64, len: u64) -> bool {
    let end = offset.saturating_add(len.max(1));
    let at = ranges.partition_point(|r| r.end() <= offset);
    ranges.get(at).is_some_and(|r| r.offset < end)
}

/// Most separate disowned stretches one unit may have (16 MiB of ranges).
const MAX_RANGES: usize = 1 << 20;

/// Sorts ranges and joins those that touch or overlap.
fn merge(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    ranges.sort_by_key(|r| r.offset);
    let mut out: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.offset <= last.end() => {
                last.length = last.end().max(r.end()) - last.offset;
            }
            _ => out.push(r),
        }
    }
    out
}

/// Sorts the records of one unit into verified and not, during its rewrite.
pub struct Sorter {
    disowned: Vec<ByteRange>,
    keep: bool,
    tally: Unverified,
    /// Where dropped records go, opened at the first one.
    aside: Option<Aside>,
}

/// A file of the exact lines of dropped records.
struct Aside {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Sorter {
    /// For a unit with these disowned stretches. `keep` keeps unverified
    /// records (reported as such); otherwise they are written to `aside`,
    /// if given, and dropped.
    pub fn new(disowned: Vec<ByteRange>, keep: bool, aside: Option<PathBuf>) -> Self {
        Self {
            disowned,
            keep,
            tally: Unverified {
                records: 0,
                kept: keep,
                ranges: Vec::new(),
                set_aside: None,
            },
            aside: aside.map(|path| Aside { path, out: None }),
        }
    }

    /// Whether `record` goes into the replacement.
    pub fn keep(&mut self, record: &RecordView<'_>) -> Result<bool> {
        let start = record.offset;
        if !overlaps(&self.disowned, start, record.stored_bytes) {
            return Ok(true);
        }
        self.tally.records += 1;
        let range = ByteRange {
            offset: start,
            length: record.stored_bytes,
        };
        match self.tally.ranges.last_mut() {
            Some(last) if last.end() == range.offset => last.length += range.length,
            _ => self.tally.ranges.push(range),
        }
        if self.keep {
            return Ok(true);
        }
        if let Some(aside) = &mut self.aside {
            aside.write(record.json)?;
        }
        Ok(false)
    }

    /// Flushes and syncs the file of dropped records, and its directory:
    /// called before the rewritten unit replaces the original.
    pub fn make_durable(&mut self) -> Result<()> {
        let Some(Aside {
            path,
            out: Some(out),
        }) = &mut self.aside
        else {
            return Ok(());
        };
        out.flush().map_err(|e| aside_error(path, &e))?;
        out.get_ref()
            .sync_all()
            .map_err(|e| aside_error(path, &e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| aside_error(path, &e))?;
        }
        Ok(())
    }

    /// What was found, once the rewrite is done (`None` when every record
    /// verified); the file of dropped records is synced.
    pub fn finish(mut self) -> Result<Option<Unverified>> {
        self.make_durable()?;
        if let Some(aside) = self.aside.take()
            && aside.out.is_some()
        {
            self.tally.set_aside = Some(aside.path);
        }
        Ok((self.tally.records > 0).then_some(self.tally))
    }
}

impl Aside {
    fn write(&mut self, json: &str) -> Result<()> {
        if self.out.is_none() {
            let file = crate::grant_paths::create_new(&self.path)
                .map_err(|e| aside_error(&self.path, &e))?;
            self.out = Some(BufWriter::new(file));
        }
        let out = self.out.as_mut().expect("just opened");
        out.write_all(json.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| aside_error(&self.path, &e))
    }
}

fn aside_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Path {
        path: path.to_path_buf(),
        message: format!("cannot set aside unverified records: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u64, length: u64) -> ByteRange {
        ByteRange { offset, length }
    }

    #[test]
    fn ranges_merge_when_they_touch() {
        assert_eq!(
            merge(vec![r(50, 10), r(0, 10), r(10, 5), r(55, 20), r(100, 1)]),
            [r(0, 15), r(50, 25), r(100, 1)]
        );
    }

    fn view(offset: u64, stored_bytes: u64) -> RecordView<'static> {
        RecordView {
            kind: "event",
            store: "s",
            timestamp: 1.0,
            json: "{\"kind\":\"event\",\"timestamp\":1}",
            unit: "u",
            offset,
            stored_bytes,
        }
    }

    #[test]
    fn a_record_touching_a_disowned_byte_is_unverified() {
        let dir = tempfile::tempdir().unwrap();
        let aside = dir.path().join("aside");
        let mut sorter = Sorter::new(vec![r(100, 10), r(300, 1)], false, Some(aside.clone()));
        let kept: Vec<bool> = [(0, 100), (100, 5), (105, 20), (125, 175), (300, 32)]
            .into_iter()
            .map(|(o, n)| sorter.keep(&view(o, n)).unwrap())
            .collect();
        assert_eq!(kept, [true, false, false, true, false]);
        let tally = sorter.finish().unwrap().unwrap();
        assert_eq!((tally.records, tally.kept), (3, false));
        assert_eq!(tally.ranges, [r(100, 25), r(300, 32)]);
        assert_eq!(tally.set_aside.as_deref(), Some(aside.as_path()));
        let text = std::fs::read_to_string(&aside).unwrap();
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn kept_on_request_and_said_so() {
        let mut sorter = Sorter::new(vec![r(0, 1)], true, None);
        assert!(sorter.keep(&view(0, 40)).unwrap());
        let tally = sorter.finish().unwrap().unwrap();
        assert_eq!((tally.records, tally.kept), (1, true));
        let mut clean = Sorter::new(vec![], false, None);
        assert!(clean.keep(&view(0, 40)).unwrap());
        assert!(clean.finish().unwrap().is_none());
    }
}
