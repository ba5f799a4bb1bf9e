//! RESP2, the Redis wire protocol: commands out, replies in.
//!
//! Everything a server sends is untrusted: lengths are bounded before
//! anything is allocated, nesting is bounded, and every malformed reply is an
//! error naming what was wrong, never a panic or an unbounded read.

use std::io::{self, BufRead, Write};

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(Vec<u8>),
    /// `-ERR ...`: the server refused the command.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` bytes, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

/// Bounds on what a reply may claim, checked before allocating.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// Longest bulk string.
    pub max_bulk: usize,
    /// Most elements of one array.
    pub max_array: usize,
    /// Deepest nesting of arrays.
    pub max_depth: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_bulk: 64 << 20,
            max_array: 4 << 20,
            max_depth: 8,
        }
    }
}

/// The longest header or simple line a reply may have.
const MAX_LINE: usize = 64 << 10;

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    write!(out, "*{}\r\n", args.len()).expect("writing to a Vec");
    for arg in args {
        let arg = arg.as_ref();
        write!(out, "${}\r\n", arg.len()).expect("writing to a Vec");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn malformed(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Reads one line up to CRLF (not included), bounded by `MAX_LINE`.
fn read_line(input: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection mid-reply",
            ));
        }
        let (used, done) = match memchr_newline(available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..used]);
        input.consume(used);
        if line.len() > MAX_LINE + 2 {
            return Err(malformed(format!(
                "a reply line longer than {MAX_LINE} bytes"
            )));
        }
        if done {
            return match line.strip_suffix(b"\r\n") {
                Some(body) => Ok(body.to_vec()),
                None => Err(malformed("a reply line ends in a bare LF")),
            };
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn parse_int(text: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| malformed(format!("not a number: {:?}", String::from_utf8_lossy(text))))
}

/// A length header: `-1` (nil) or `0..=max`.
fn parse_len(text: &[u8], max: usize, what: &str) -> io::Result<Option<usize>> {
    match parse_int(text)? {
        -1 => Ok(None),
        n if n >= 0 && (n as u64) <= max as u64 => Ok(Some(n as usize)),
        n => Err(malformed(format!(
            "{what} length {n} is out of bounds (0..={max})"
        ))),
    }
}

/// Reads one whole reply.
pub fn read_reply(input: &mut impl BufRead, limits: &ReplyLimits) -> io::Result<Reply> {
    read_at(input, limits, 0)
}

fn read_at(input: &mut impl BufRead, limits: &ReplyLimits, depth: usize) -> io::Result<Reply> {
    let line = read_line(input)?;
    let (&tag, rest) = line
        .split_first()
        .ok_or_else(|| malformed("an empty reply line"))?;
    match tag {
        b'+' => Ok(Reply::Simple(rest.to_vec())),
        b'-' => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
        b':' => Ok(Reply::Integer(parse_int(rest)?)),
        b'$' => match parse_len(rest, limits.max_bulk, "bulk string")? {
            None => Ok(Reply::Bulk(None)),
            Some(n) => {
                let mut body = vec![0; n + 2];
                input.read_exact(&mut body)?;
                if !body.ends_with(b"\r\n") {
                    return Err(malformed("a bulk string is not followed by CRLF"));
                }
                body.truncate(n);
                Ok(Reply::Bulk(Some(body)))
            }
        },
        b'*' => {
            if depth >= limits.max_depth {
                return Err(malformed(format!(
                    "replies nested deeper than {}",
                    limits.max_depth
                )));
            }
            match parse_len(rest, limits.max_array, "array")? {
                None => Ok(Reply::Array(None)),
                Some(n) => {
                    // A claimed length is not trusted with memory up front.
                    let mut items = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        items.push(read_at(input, limits, depth + 1)?);
                    }
                    Ok(Reply::Array(Some(items)))
                }
            }
        }
        other => Err(malformed(format!("unknown reply type byte 0x{other:02x}"))),
    }
}

impl Reply {
    /// The reply as bytes (simple or bulk string).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Simple(b) | Reply::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// The elements of an array reply (nil reads as empty).
    pub fn items(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(Some(items)) => Some(items),
            Reply::Array(None) => Some(&[]),
            _ => None,
        }
    }

    /// The number of an integer reply.
    pub fn integer(&self) -> Option<i64> {
        match self {
            Reply::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Reply::Simple(b) => format!("+{}", String::from_utf8_lossy(b)),
            Reply::Error(e) => format!("-{e}"),
            Reply::Integer(n) => format!(":{n}"),
            Reply::Bulk(None) => "nil".into(),
            Reply::Bulk(Some(b)) => format!("{} bytes", b.len()),
            Reply::Array(None) => "nil array".into(),
            Reply::Array(Some(items)) => format!("array of {}", items.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes a reply the way a server would.
    fn write_reply(out: &mut Vec<u8>, reply: &Reply) {
        match reply {
            Reply::Simple(b) => {
                out.push(b'+');
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(e) => out.extend_from_slice(format!("-{e}\r\n").as_bytes()),
            Reply::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    write_reply(out, item);
                }
            }
        }
    }

    fn reply_strategy() -> impl Strategy<Value = Reply> {
        let line = proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| {
            b.into_iter()
                .filter(|c| *c != b'\r' && *c != b'\n')
                .collect()
        });
        let leaf = prop_oneof![
            line.clone().prop_map(Reply::Simple),
            "[a-zA-Z ]{0,20}".prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Integer),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(Reply::Bulk),
            Just(Reply::Array(None)),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            proptest::collection::vec(inner, 0..8).prop_map(|v| Reply::Array(Some(v)))
        })
    }

    fn parse(bytes: &[u8]) -> io::Result<Reply> {
        read_reply(
            &mut io::BufReader::with_capacity(7, bytes),
            &ReplyLimits::default(),
        )
    }

    proptest! {
        #[test]
        fn every_reply_reads_back_as_written(reply in reply_strategy()) {
            let mut wire = Vec::new();
            write_reply(&mut wire, &reply);
            prop_assert_eq!(parse(&wire).unwrap(), reply);
        }

        #[test]
        fn garbage_is_an_error_or_a_reply_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn a_cut_reply_is_an_error(reply in reply_strategy(), cut in any::<prop::sample::Index>()) {
            let mut wire = Vec::new();
            write_reply(&mut wire, &reply);
            let cut = cut.index(wire.len());
            prop_assert!(parse(&wire[..cut]).is_err());
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &["XADD", "k", "1-0", "data", "{\"a\":1}"]);
        assert_eq!(
            out,
            b"*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$3\r\n1-0\r\n$4\r\ndata\r\n$7\r\n{\"a\":1}\r\n"
        );
    }

    #[test]
    fn claimed_lengths_are_bounded_before_allocating() {
        let err = parse(b"$999999999999\r\n").unwrap_err();
        assert!(err.to_string().contains("out of bounds"), "{err}");
        let err = parse(b"*99999999999\r\n").unwrap_err();
        assert!(err.to_string().contains("out of bounds"), "{err}");
        let deep = "*1\r\n".repeat(20);
        let err = parse(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        let err = parse(b"$3\r\nabcXY").unwrap_err();
        assert!(err.to_string().contains("CRLF"), "{err}");
        let err = parse(b"!3\r\n").unwrap_err();
        assert!(err.to_string().contains("unknown reply type"), "{err}");
    }
}
