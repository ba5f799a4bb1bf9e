//! CRC-32 for backends: computed by the host at native speed inside the
//! sandbox (the `checksum` import; wasm has no CRC instructions), by
//! `crc32fast` natively (tests). Both are the same IEEE CRC-32.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::errors::IoContext;
use crate::types::PluginError;

/// A running CRC-32.
#[derive(Clone, Copy, Debug, Default)]
pub struct Crc32(u32);

impl Crc32 {
    /// The CRC of nothing yet.
    pub fn new() -> Self {
        Self(0)
    }

    /// Continues from `value`, the CRC of the bytes before.
    pub fn resume(value: u32) -> Self {
        Self(value)
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.0 = crc32_from(self.0, bytes);
        }
    }

    /// The CRC of every byte added.
    pub fn value(&self) -> u32 {
        self.0
    }
}

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_from(0, bytes)
}

/// The CRC-32 of a message whose CRC-32 with one more byte, `last`, is
/// `crc_with_last`. A byte step of CRC-32 can be undone (each table entry
/// has its own top byte), so the CRCs of a batch's NDJSON lines, newline
/// included, give the CRCs of the records without them: one host call for
/// a whole batch instead of a table walk per record in wasm.
pub fn crc32_without_last(crc_with_last: u32, last: u8) -> u32 {
    let register = !crc_with_last;
    let index = TABLE_INDEX_BY_TOP_BYTE[(register >> 24) as usize];
    let before = ((register ^ TABLE[index as usize]) << 8) | u32::from(index ^ last);
    !before
}

/// The reflected IEEE CRC-32 table.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Which table entry has a given top byte (they are all different).
const TABLE_INDEX_BY_TOP_BYTE: [u8; 256] = {
    let mut index = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        index[(TABLE[i] >> 24) as usize] = i as u8;
        i += 1;
    }
    index
};

/// Bytes handed to the host per `crc32-lines` call (its limit is 16 MiB).
const LINES_PER_CALL: usize = 4 << 20;

/// Appends to `out` the CRC-32 of each line of `text` (newline included),
/// then of what follows the last newline, if anything.
pub fn line_crc32s(text: &[u8], out: &mut Vec<u32>) {
    let mut rest = text;
    while !rest.is_empty() {
        // Cut after a newline, so no line is split between calls; a line
        // longer than a call is checksummed on its own, a piece at a time.
        let piece = if rest.len() <= LINES_PER_CALL {
            rest.len()
        } else {
            match memchr::memrchr(b'\n', &rest[..LINES_PER_CALL]) {
                Some(at) => at + 1,
                None => match memchr::memchr(b'\n', rest) {
                    Some(at) => {
                        out.push(crc32(&rest[..=at]));
                        rest = &rest[at + 1..];
                        continue;
                    }
                    None => rest.len(),
                },
            }
        };
        lines_of(&rest[..piece], out);
        rest = &rest[piece..];
    }
}

#[cfg(target_family = "wasm")]
fn lines_of(piece: &[u8], out: &mut Vec<u32>) {
    if piece.len() > LINES_PER_CALL {
        // One unterminated piece: no host list that long.
        out.push(crc32(piece));
        return;
    }
    out.extend(crate::backend_bindings::quire::persistence::checksum::crc32_lines(piece));
}

#[cfg(not(target_family = "wasm"))]
fn lines_of(piece: &[u8], out: &mut Vec<u32>) {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', piece) {
        out.push(crc32fast::hash(&piece[start..=end]));
        start = end + 1;
    }
    if start < piece.len() {
        out.push(crc32fast::hash(&piece[start..]));
    }
}

/// Spans and bytes the host takes per `crc32-spans` call (its limits).
const SPANS_PER_CALL: usize = 1 << 20;
const SPAN_BYTES_PER_CALL: usize = 16 << 20;

/// Appends to `out` the CRC-32 of each span `bytes[starts[i]..][..lengths[i]]`,
/// in order: one host call for many short spans (frames' bodies) where a
/// call each would cost more than the table walk. The lists are as long
/// as each other and every span lies within `bytes`.
pub fn crc32_spans(bytes: &[u8], starts: &[u32], lengths: &[u32], out: &mut Vec<u32>) {
    assert_eq!(starts.len(), lengths.len(), "a length for every start");
    let mut at = 0;
    while at < starts.len() {
        // As many spans as one call takes; a span too long for any call is
        // checksummed on its own.
        let mut total = 0usize;
        let take = lengths[at..]
            .iter()
            .take(SPANS_PER_CALL)
            .take_while(|&&len| {
                total += len as usize;
                total <= SPAN_BYTES_PER_CALL
            })
            .count();
        if take == 0 {
            let (start, len) = (starts[at] as usize, lengths[at] as usize);
            out.push(crc32(&bytes[start..start + len]));
            at += 1;
            continue;
        }
        spans_of(bytes, &starts[at..at + take], &lengths[at..at + take], out);
        at += take;
    }
}

#[cfg(target_family = "wasm")]
fn spans_of(bytes: &[u8], starts: &[u32], lengths: &[u32], out: &mut Vec<u32>) {
    out.extend(
        crate::backend_bindings::quire::persistence::checksum::crc32_spans(bytes, starts, lengths),
    );
}

#[cfg(not(target_family = "wasm"))]
fn spans_of(bytes: &[u8], starts: &[u32], lengths: &[u32], out: &mut Vec<u32>) {
    out.extend(
        starts
            .iter()
            .zip(lengths)
            .map(|(&start, &len)| crc32fast::hash(&bytes[start as usize..][..len as usize])),
    );
}

/// Inputs at least this long go to the host; a call across the boundary
/// costs about what the table walk does for shorter ones.
#[cfg(target_family = "wasm")]
const HOST_FROM: usize = 256;

#[cfg(target_family = "wasm")]
fn crc32_from(initial: u32, bytes: &[u8]) -> u32 {
    if bytes.len() >= HOST_FROM {
        return crate::backend_bindings::quire::persistence::checksum::crc32(initial, bytes);
    }
    let mut hasher = crc32fast::Hasher::new_with_initial(initial);
    hasher.update(bytes);
    hasher.finalize()
}

#[cfg(not(target_family = "wasm"))]
fn crc32_from(initial: u32, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(initial);
    hasher.update(bytes);
    hasher.finalize()
}

/// Size and CRC32 of the whole file at `path`, read in 1 MiB chunks.
/// `label` names the file in errors.
pub fn file_crc32(path: &Path, label: &str) -> Result<(u64, u32), PluginError> {
    let mut file = File::open(path).ctx("open", label)?;
    let mut crc = Crc32::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok((total, crc.value())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::errors::io("read", label, e)),
        };
        crc.update(&buf[..n]);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_crc_of_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (len, crc) = file_crc32(&path, "f").unwrap();
        assert_eq!((len, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
    }

    #[test]
    fn a_last_byte_can_be_taken_off_a_crc() {
        let mut seen_tops = std::collections::BTreeSet::new();
        for entry in TABLE {
            assert!(
                seen_tops.insert(entry >> 24),
                "table top bytes are distinct"
            );
        }
        let mut message = Vec::new();
        for i in 0..3000u32 {
            let last = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
            let mut with = message.clone();
            with.push(last);
            assert_eq!(
                crc32_without_last(crc32fast::hash(&with), last),
                crc32fast::hash(&message),
                "{} bytes",
                message.len()
            );
            message.push((i % 251) as u8);
        }
    }

    #[test]
    fn line_crcs_cover_every_line_whatever_the_cuts() {
        let mut text = Vec::new();
        for i in 0..2000u32 {
            text.extend(std::iter::repeat_n(
                b'a' + (i % 26) as u8,
                (i as usize * 37) % 300,
            ));
            text.push(b'\n');
        }
        text.extend_from_slice(b"tail");
        let expected: Vec<u32> = text
            .split_inclusive(|&b| b == b'\n')
            .map(crc32fast::hash)
            .collect();
        let mut got = Vec::new();
        line_crc32s(&text, &mut got);
        assert_eq!(got, expected);
        // A line longer than a call's worth.
        let long: Vec<u8> = std::iter::repeat_n(b'x', LINES_PER_CALL + 10)
            .chain([b'\n', b'y', b'\n'])
            .collect();
        got.clear();
        line_crc32s(&long, &mut got);
        assert_eq!(
            got,
            [
                crc32fast::hash(&long[..LINES_PER_CALL + 11]),
                crc32fast::hash(b"y\n")
            ]
        );
    }

    #[test]
    fn spans_are_split_into_calls_the_host_takes() {
        let bytes: Vec<u8> = (0..(17u32 << 20)).map(|i| (i * 13 % 253) as u8).collect();
        let nine = 9u32 << 20;
        // Overlapping spans over the call's byte limit, a span longer than
        // any call, and short ones around them.
        let starts = [0, 5, 0, 1, 3, 0];
        let lengths = [nine, 100, nine, (17 << 20) - 1, 0, 64];
        let mut out = vec![7];
        crc32_spans(&bytes, &starts, &lengths, &mut out);
        let expected: Vec<u32> = std::iter::once(7)
            .chain(
                starts
                    .iter()
                    .zip(lengths)
                    .map(|(&s, l)| crc32fast::hash(&bytes[s as usize..][..l as usize])),
            )
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_running_crc_is_the_crc_of_everything_added() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for cut in [0, 1, 7, 4096, 9_999, 10_000] {
            let mut crc = Crc32::new();
            crc.update(&bytes[..cut]);
            let mut resumed = Crc32::resume(crc.value());
            resumed.update(&bytes[cut..]);
            assert_eq!(resumed.value(), crc32fast::hash(&bytes), "cut at {cut}");
        }
        assert_eq!(crc32(b""), 0);
    }
}
