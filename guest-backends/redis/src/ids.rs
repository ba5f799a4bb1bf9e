//! Stream entry ids, and how they become record places.
//!
//! A record's place in a unit is its entry id packed into the `offset`
//! (`ms << 20 | seq`) and its size in `stored-bytes`. Ids never change, so
//! a place read in one call still names the same entry in the next, whoever
//! else writes or trims meanwhile. The host merges neighbouring places
//! whose `offset + stored-bytes` meets the next `offset`; a merged place is
//! unpacked the same way, entry by entry (see [`chain`]).

use std::fmt;

/// Bits of the packed offset that hold the sequence number.
const SEQ_BITS: u32 = 20;
/// The highest millisecond a packed offset can hold (the year 2527).
pub const MAX_MS: u64 = (1 << (64 - SEQ_BITS)) - 1;
/// The highest sequence number a packed offset can hold.
pub const MAX_SEQ: u64 = (1 << SEQ_BITS) - 1;

/// A stream entry id, `ms-seq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl EntryId {
    /// Parses `ms-seq` (or a bare `ms`, which Redis reads as `ms-0`).
    pub fn parse(text: &[u8]) -> Option<EntryId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The packed offset, when the id fits (every id Redis generates until
    /// the year 2527 with fewer than a million entries in one millisecond).
    pub fn offset(self) -> Option<u64> {
        (self.ms <= MAX_MS && self.seq <= MAX_SEQ).then_some(self.ms << SEQ_BITS | self.seq)
    }

    /// The id a packed offset names.
    pub fn from_offset(offset: u64) -> EntryId {
        EntryId {
            ms: offset >> SEQ_BITS,
            seq: offset & MAX_SEQ,
        }
    }

    /// The next id after this one.
    pub fn next(self) -> EntryId {
        if self.seq == u64::MAX {
            EntryId {
                ms: self.ms + 1,
                seq: 0,
            }
        } else {
            EntryId {
                ms: self.ms,
                seq: self.seq + 1,
            }
        }
    }
}

/// Bytes an entry is counted as (what size retention weighs): its field
/// names and values. The same entry always counts the same.
pub fn entry_bytes<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    fields
        .into_iter()
        .map(|f| f.len() as u64)
        .sum::<u64>()
        .max(1)
}

/// Unpacks a (possibly merged) place: the entry at `offset`, then, while
/// the sizes so far fall short of `stored_bytes`, the entry whose offset is
/// where the last one ended. `size_of` looks an entry up (`None`: gone).
pub fn chain(
    offset: u64,
    stored_bytes: u64,
    mut size_of: impl FnMut(EntryId) -> Result<Option<u64>, String>,
) -> Result<Vec<EntryId>, String> {
    let mut ids = Vec::new();
    let mut at = offset;
    let mut covered = 0u64;
    while covered < stored_bytes {
        let id = EntryId::from_offset(at);
        let size = size_of(id)?
            .ok_or_else(|| format!("entry {id} is gone (the stream changed since it was read)"))?;
        covered += size;
        if covered > stored_bytes {
            return Err(format!(
                "place {offset}+{stored_bytes} does not end at an entry boundary"
            ));
        }
        ids.push(id);
        at = at
            .checked_add(size)
            .ok_or_else(|| format!("place {offset}+{stored_bytes} overflows"))?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_parse_as_redis_writes_them() {
        assert_eq!(
            EntryId::parse(b"1700000000000-3"),
            Some(EntryId {
                ms: 1700000000000,
                seq: 3
            })
        );
        assert_eq!(EntryId::parse(b"5"), Some(EntryId { ms: 5, seq: 0 }));
        for bad in [
            &b""[..],
            b"-",
            b"1-",
            b"-1",
            b"a-1",
            b"1-2-3",
            b"18446744073709551616-0",
        ] {
            assert_eq!(
                EntryId::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ids_beyond_the_packing_have_no_offset() {
        assert_eq!(
            EntryId {
                ms: MAX_MS + 1,
                seq: 0
            }
            .offset(),
            None
        );
        assert_eq!(
            EntryId {
                ms: 1,
                seq: MAX_SEQ + 1
            }
            .offset(),
            None
        );
    }

    proptest! {
        #[test]
        fn packing_keeps_order_and_identity(a in 0..=MAX_MS, b in 0..=MAX_SEQ, c in 0..=MAX_MS, d in 0..=MAX_SEQ) {
            let x = EntryId { ms: a, seq: b };
            let y = EntryId { ms: c, seq: d };
            prop_assert_eq!(EntryId::from_offset(x.offset().unwrap()), x);
            prop_assert_eq!(x.cmp(&y), x.offset().unwrap().cmp(&y.offset().unwrap()));
        }

        /// The host merges places whose ends meet; unpacking a merge gives
        /// back exactly the entries merged, never one lying between them.
        #[test]
        fn a_merged_place_unpacks_to_exactly_its_entries(
            seqs in proptest::collection::btree_set(0u64..5000, 1..40),
            sizes in proptest::collection::vec(1u64..60, 40),
            keep in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let entries: Vec<(u64, u64)> = seqs.iter().zip(&sizes)
                .map(|(s, n)| (EntryId { ms: 1_700_000_000_000, seq: *s }.offset().unwrap(), *n))
                .collect();
            let size_of = |id: EntryId| -> Result<Option<u64>, String> {
                let off = id.offset().unwrap();
                Ok(entries.iter().find(|e| e.0 == off).map(|e| e.1))
            };
            // The host's merge, as in its compaction pass.
            let mut places: Vec<(u64, u64, Vec<u64>)> = Vec::new();
            for (i, (off, size)) in entries.iter().enumerate() {
                if !keep[i] { continue; }
                match places.last_mut() {
                    Some(last) if last.0 + last.1 == *off => { last.1 += size; last.2.push(*off); }
                    _ => places.push((*off, *size, vec![*off])),
                }
            }
            for (off, len, merged) in places {
                let ids = chain(off, len, size_of).unwrap();
                let offs: Vec<u64> = ids.iter().map(|i| i.offset().unwrap()).collect();
                prop_assert_eq!(offs, merged);
            }
        }
    }
}
