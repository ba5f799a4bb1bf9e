//! When to start a new file: before a record that would take the live file
//! past `max-bytes` or `max-records`. An empty file takes any record, so a
//! record larger than the limit still goes in and rotation never stalls.

use std::ops::Range;

use quire_guest::options::Options;
use quire_guest::types::PluginError;

/// Option names this backend accepts.
pub const OPTION_NAMES: &[&str] = &["max-bytes", "max-records"];

/// Default `max-bytes`: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// Rotation thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// A file is not grown past this many bytes (unless one record is larger).
    pub max_bytes: u64,
    /// A file holds at most this many records, when set.
    pub max_records: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_records: None,
        }
    }
}

impl Limits {
    /// Reads `max-bytes` and `max-records`; both must be positive.
    pub fn from_options(options: &Options) -> Result<Self, PluginError> {
        let max_bytes = options.u64_or("max-bytes", DEFAULT_MAX_BYTES)?;
        let max_records = match options.get("max-records") {
            None => None,
            Some(_) => Some(options.u64_or("max-records", 0)?),
        };
        if max_bytes == 0 || max_records == Some(0) {
            return Err(PluginError::InvalidConfig(
                "`max-bytes` and `max-records` must be at least 1".into(),
            ));
        }
        Ok(Self {
            max_bytes,
            max_records,
        })
    }

    /// Whether a file holding `fill` still takes a record of `len` bytes.
    fn takes(&self, fill: Fill, len: u64) -> bool {
        fill.bytes == 0
            || (fill.bytes.saturating_add(len) <= self.max_bytes
                && self.max_records.is_none_or(|max| fill.records < max))
    }
}

/// How full a file is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fill {
    /// Bytes in it.
    pub bytes: u64,
    /// Records in it.
    pub records: u64,
}

/// A run of consecutive records of a batch that go into one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Indexes into the batch.
    pub records: Range<usize>,
    /// True when the run starts a new file (the live one is sealed first).
    pub new_file: bool,
}

/// Splits a batch, given each record's stored size, into runs per file.
/// `live` is the live file's fill, `None` when there is none.
pub fn plan(live: Option<Fill>, sizes: &[u64], limits: Limits) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut fill = live;
    for (index, &len) in sizes.iter().enumerate() {
        let current = match fill {
            Some(f) if limits.takes(f, len) => f,
            _ => {
                pieces.push(Piece {
                    records: index..index,
                    new_file: true,
                });
                Fill::default()
            }
        };
        match pieces.last_mut() {
            Some(piece) if piece.records.end == index => piece.records.end += 1,
            _ => pieces.push(Piece {
                records: index..index + 1,
                new_file: false,
            }),
        }
        fill = Some(Fill {
            bytes: current.bytes + len,
            records: current.records + 1,
        });
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: u64, max_records: Option<u64>) -> Limits {
        Limits {
            max_bytes,
            max_records,
        }
    }

    fn shape(pieces: &[Piece]) -> Vec<(usize, usize, bool)> {
        pieces
            .iter()
            .map(|p| (p.records.start, p.records.end, p.new_file))
            .collect()
    }

    #[test]
    fn fills_the_live_file_then_rotates_at_record_boundaries() {
        let live = Some(Fill {
            bytes: 60,
            records: 3,
        });
        let pieces = plan(live, &[20, 20, 50, 50, 10], limits(100, None));
        assert_eq!(
            shape(&pieces),
            vec![(0, 2, false), (2, 4, true), (4, 5, true)]
        );
    }

    #[test]
    fn no_live_file_means_the_first_record_opens_one() {
        assert_eq!(
            shape(&plan(None, &[1, 1], limits(100, None))),
            vec![(0, 2, true)]
        );
        assert!(plan(None, &[], limits(100, None)).is_empty());
    }

    #[test]
    fn a_record_larger_than_the_limit_still_goes_in_alone() {
        let pieces = plan(
            Some(Fill {
                bytes: 10,
                records: 1,
            }),
            &[500, 500, 5],
            limits(100, None),
        );
        assert_eq!(
            shape(&pieces),
            vec![(0, 1, true), (1, 2, true), (2, 3, true)]
        );
        // An empty live file takes it without rotating.
        let empty = plan(Some(Fill::default()), &[500], limits(100, None));
        assert_eq!(shape(&empty), vec![(0, 1, false)]);
    }

    #[test]
    fn record_count_limit_rotates_even_when_bytes_fit() {
        let pieces = plan(
            Some(Fill {
                bytes: 1,
                records: 1,
            }),
            &[1; 5],
            limits(u64::MAX, Some(2)),
        );
        assert_eq!(
            shape(&pieces),
            vec![(0, 1, false), (1, 3, true), (3, 5, true)]
        );
    }

    #[test]
    fn a_file_over_a_lowered_limit_is_left_at_once() {
        let over = Some(Fill {
            bytes: 1000,
            records: 9,
        });
        assert_eq!(
            shape(&plan(over, &[1], limits(100, None))),
            vec![(0, 1, true)]
        );
    }

    #[test]
    fn options_are_positive_whole_numbers() {
        let opts = |pairs: &[(&str, &str)]| {
            Options::new(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                OPTION_NAMES,
            )
            .and_then(|o| Limits::from_options(&o))
        };
        assert_eq!(opts(&[]).unwrap(), Limits::default());
        assert_eq!(
            opts(&[("max-bytes", "1000"), ("max-records", "7")]).unwrap(),
            limits(1000, Some(7))
        );
        for bad in [
            &[("max-bytes", "0")][..],
            &[("max-records", "0")],
            &[("max-records", "-1")],
            &[("max-bytes", "1MB")],
            &[("codec", "x")],
        ] {
            assert!(opts(bad).is_err(), "{bad:?}");
        }
    }
}
