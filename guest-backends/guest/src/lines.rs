//! Reading newline-delimited data in chunks, with each line's byte offset and
//! 1-based number, in memory bounded by the longest line.

use std::io::{self, Read};

/// One line as found in the data. `bytes` excludes the newline.
pub struct Line<'a> {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// 1-based line number, counted from where the scanner started.
    pub number: u64,
    /// The line's bytes, without the trailing newline.
    pub bytes: &'a [u8],
    /// False for a last line that ends at end of file without a newline.
    pub terminated: bool,
    /// True when the line is known to be UTF-8 (checked with its
    /// neighbours, many lines at once); false when unknown.
    pub utf8: bool,
}

impl Line<'_> {
    /// Bytes the line occupies on disk, newline included.
    pub fn stored_len(&self) -> u64 {
        self.bytes.len() as u64 + u64::from(self.terminated)
    }
}

/// Splits a reader into lines, reading `chunk` bytes at a time.
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    offset: u64,
    number: u64,
    chunk: usize,
    /// `buf[..utf8_until]` is known to be UTF-8, up to a line end.
    utf8_until: usize,
    /// `buf[..utf8_checked]` has been checked (whatever the outcome).
    utf8_checked: usize,
}

impl<R: Read> LineReader<R> {
    /// Starts at byte `offset`, line `first_line` (the reader is positioned there).
    pub fn new(reader: R, offset: u64, first_line: u64) -> Self {
        Self::with_chunk(reader, offset, first_line, 1 << 20)
    }

    /// As `new`, with an explicit read size (tests use small ones).
    pub fn with_chunk(reader: R, offset: u64, first_line: u64, chunk: usize) -> Self {
        let chunk = chunk.max(1);
        Self {
            reader,
            buf: vec![0; chunk],
            start: 0,
            end: 0,
            eof: false,
            offset,
            number: first_line,
            chunk,
            utf8_until: 0,
            utf8_checked: 0,
        }
    }

    /// Offset of the next line to be returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of the next line to be returned.
    pub fn line_number(&self) -> u64 {
        self.number
    }

    /// The next line, or `None` at end of data.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let mut searched = self.start;
        loop {
            if let Some(pos) = memchr(b'\n', &self.buf[searched..self.end]) {
                let nl = searched + pos;
                let line_start = self.start;
                self.start = nl + 1;
                if nl >= self.utf8_checked {
                    self.check_utf8(line_start, nl);
                }
                return Ok(Some(self.emit(line_start, nl, true)));
            }
            searched = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line_start = self.start;
                self.start = self.end;
                return Ok(Some(self.emit(line_start, self.end, false)));
            }
            // Make room: slide the partial line to the front, grow if it fills the buffer.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                searched -= self.start;
                self.end -= self.start;
                self.utf8_until = self.utf8_until.saturating_sub(self.start);
                self.utf8_checked = self.utf8_checked.saturating_sub(self.start);
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grow = self.buf.len().max(self.chunk);
                self.buf.resize(self.buf.len() + grow, 0);
            }
            let n = read_retrying(&mut self.reader, &mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }

    /// Checks UTF-8 once for every whole line buffered from the one at
    /// `from` (ending at `nl`) on: one pass over up to a chunk instead of
    /// a call per line. Lines before the first bad byte are marked; the
    /// check starts again after it.
    fn check_utf8(&mut self, from: usize, nl: usize) {
        let last_nl = memchr::memrchr(b'\n', &self.buf[nl..self.end]).map_or(nl, |p| nl + p);
        match simdutf8::compat::from_utf8(&self.buf[from..last_nl]) {
            Ok(_) => {
                self.utf8_until = last_nl;
                self.utf8_checked = last_nl + 1;
            }
            Err(e) => {
                let bad = from + e.valid_up_to();
                self.utf8_until = bad;
                self.utf8_checked = bad + 1;
            }
        }
    }

    fn emit(&mut self, from: usize, to: usize, terminated: bool) -> Line<'_> {
        let line = Line {
            offset: self.offset,
            number: self.number,
            bytes: &self.buf[from..to],
            terminated,
            utf8: terminated && to <= self.utf8_until,
        };
        self.offset += (to - from) as u64 + u64::from(terminated);
        self.number += 1;
        line
    }
}

fn read_retrying<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Position of the first `needle` in `haystack` (word-at-a-time search).
pub fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr(needle, haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8], chunk: usize) -> Vec<(u64, u64, Vec<u8>, bool)> {
        let mut r = LineReader::with_chunk(data, 0, 1, chunk);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.offset, l.number, l.bytes.to_vec(), l.terminated));
        }
        out
    }

    #[test]
    fn offsets_and_numbers_do_not_depend_on_chunk_size() {
        let data = b"ab\n\ncdef\nlast";
        let want = vec![
            (0, 1, b"ab".to_vec(), true),
            (3, 2, b"".to_vec(), true),
            (4, 3, b"cdef".to_vec(), true),
            (9, 4, b"last".to_vec(), false),
        ];
        for chunk in [1, 2, 3, 5, 64] {
            assert_eq!(collect(data, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn lines_are_marked_utf8_only_when_they_are() {
        let mut data = Vec::new();
        for i in 0..200 {
            match i % 7 {
                3 => data.extend_from_slice(b"bad \xff\xfe byte"),
                5 => data.extend_from_slice("é\u{1F600} ok".as_bytes()),
                6 => data.extend_from_slice(&"é".as_bytes()[..1]),
                _ => data.extend_from_slice(format!("line {i}").as_bytes()),
            }
            data.push(b'\n');
        }
        data.extend_from_slice(b"torn tail");
        for chunk in [1, 3, 7, 64, 1 << 20] {
            let mut reader = LineReader::with_chunk(&data[..], 0, 1, chunk);
            let mut marked = 0;
            while let Some(line) = reader.next_line().unwrap() {
                let valid = std::str::from_utf8(line.bytes).is_ok() && line.terminated;
                assert!(
                    !line.utf8 || valid,
                    "line {} marked but not UTF-8",
                    line.number
                );
                marked += usize::from(line.utf8);
            }
            // Every chunk size leaves some lines to be checked one by one
            // (those after a bad one in a run), but most are marked.
            assert!(marked > 100, "chunk {chunk}: only {marked} marked");
        }
    }
}
