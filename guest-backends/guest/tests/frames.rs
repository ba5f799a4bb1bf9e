//! Property tests: the frame codec and scanner on valid, cut, flipped and
//! arbitrary bytes.

use std::io::Cursor;

use proptest::prelude::*;
use quire_guest::frames::{
    self, Damage, DamageKind, Decoded, FrameScanner, Item, MAX_BODY, ScanRules,
};

/// What a scan yields, owned: frames as (offset, body), damage as is.
#[derive(Debug)]
enum Seen {
    Frame(u64, Vec<u8>),
    Damage(Damage),
}

fn scan(data: &[u8]) -> Vec<Seen> {
    let chunk = 16 + data.len() % 200;
    let mut scanner = FrameScanner::with_chunk(
        Cursor::new(data),
        0,
        data.len() as u64,
        ScanRules::default(),
        chunk,
    );
    let mut seen = Vec::new();
    let mut at = 0;
    while let Some(item) = scanner.next_item().unwrap() {
        match item {
            Item::Frame { offset, len, body } => {
                assert_eq!(offset, at, "items tile the input");
                assert_eq!(len, body.len() as u64 + frames::OVERHEAD);
                at = offset + len;
                seen.push(Seen::Frame(offset, body.to_vec()));
            }
            Item::Damage(d) => {
                assert_eq!(d.offset, at, "items tile the input");
                assert!(d.length > 0, "damage always makes progress");
                at = d.offset + d.length;
                seen.push(Seen::Damage(d));
            }
        }
        assert_eq!(scanner.offset(), at);
    }
    assert_eq!(at, data.len() as u64, "the scan reaches the end");
    seen
}

/// Encodes bodies; returns the bytes and each frame's (start, end).
fn segment(bodies: &[Vec<u8>]) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut data = Vec::new();
    let mut spans = Vec::new();
    for body in bodies {
        let start = data.len() as u64;
        frames::encode(body, &mut data).unwrap();
        spans.push((start, data.len() as u64));
    }
    (data, spans)
}

fn bodies() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..12)
}

proptest! {
    /// Arbitrary bytes never panic, and what the scanner reports covers the
    /// input exactly once.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = scan(&data);
        let _ = frames::decode(&data);
    }

    /// Frames wrapped in arbitrary bytes: still no panic, still tiled.
    #[test]
    fn frames_among_garbage_never_panic(
        bodies in bodies(),
        junk in proptest::collection::vec(any::<u8>(), 0..200),
        at in any::<prop::sample::Index>(),
    ) {
        let (mut data, _) = segment(&bodies);
        let cut = at.index(data.len() + 1);
        data.splice(cut..cut, junk);
        let _ = scan(&data);
    }

    /// Encoding then decoding gives the body back.
    #[test]
    fn round_trip(body in proptest::collection::vec(any::<u8>(), 1..5000)) {
        let mut out = Vec::new();
        frames::encode(&body, &mut out).unwrap();
        prop_assert_eq!(out.len() as u64, frames::frame_len(body.len()));
        prop_assert_eq!(frames::decode(&out), Decoded::Frame(&body, out.len() as u64));
        let seen = scan(&out);
        prop_assert!(matches!(&seen[..], [Seen::Frame(0, b)] if *b == body));
    }

    /// Cutting a valid segment anywhere keeps every whole frame before the
    /// cut and reports the rest as a truncated tail at the cut frame's start.
    #[test]
    fn truncation_is_a_truncated_tail(bodies in bodies(), at in any::<prop::sample::Index>()) {
        let (data, spans) = segment(&bodies);
        let cut = at.index(data.len() + 1) as u64;
        let seen = scan(&data[..cut as usize]);
        let whole: Vec<_> = spans.iter().take_while(|(_, end)| *end <= cut).collect();
        for (i, (start, _)) in whole.iter().enumerate() {
            prop_assert!(matches!(&seen[i], Seen::Frame(o, b) if o == start && *b == bodies[i]));
        }
        let boundary = whole.last().map_or(0, |(_, end)| *end);
        if boundary == cut {
            prop_assert_eq!(seen.len(), whole.len());
        } else {
            prop_assert_eq!(seen.len(), whole.len() + 1);
            match &seen[whole.len()] {
                Seen::Damage(d) => {
                    prop_assert_eq!(d.kind, DamageKind::TruncatedTail);
                    prop_assert_eq!(d.offset, boundary);
                    prop_assert_eq!(d.length, cut - boundary);
                    prop_assert!(d.tail);
                }
                other => prop_assert!(false, "expected a truncated tail, got {other:?}"),
            }
        }
    }

    /// One flipped bit is reported at the start of the frame it hit; every
    /// other frame reads back intact.
    #[test]
    fn bit_flips_are_located(bodies in bodies(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut data, spans) = segment(&bodies);
        let pos = at.index(data.len()) as u64;
        data[pos as usize] ^= 1 << bit;
        let hit = spans.iter().position(|(s, e)| (*s..*e).contains(&pos)).unwrap();
        let seen = scan(&data);
        let damage: Vec<&Damage> = seen.iter().filter_map(|s| match s { Seen::Damage(d) => Some(d), _ => None }).collect();
        prop_assert!(!damage.is_empty(), "a flipped bit is always found");
        let (start, end) = spans[hit];
        prop_assert_eq!(damage[0].offset, start);
        prop_assert!(damage[0].offset < end);
        let intact: Vec<(u64, &Vec<u8>)> = seen.iter().filter_map(|s| match s { Seen::Frame(o, b) => Some((*o, b)), _ => None }).collect();
        let expected: Vec<(u64, &Vec<u8>)> = spans.iter().zip(&bodies).enumerate()
            .filter(|(i, _)| *i != hit)
            .map(|(_, ((s, _), b))| (*s, b))
            .collect();
        prop_assert_eq!(intact, expected);
        // Damage in the last frame is the tail; elsewhere it is not.
        prop_assert_eq!(damage[0].tail, hit == bodies.len() - 1);
    }
}

#[test]
fn oversized_bodies_are_refused_and_garbage_lengths_never_allocate() {
    assert!(frames::encode(&vec![1; MAX_BODY as usize + 1], &mut Vec::new()).is_err());
    // A length of 4 GiB in a tiny file: reported, nothing allocated for it.
    let mut data = vec![0xff, 0xff, 0xff, 0xff];
    data.extend_from_slice(b"tiny");
    let seen = scan(&data);
    assert!(matches!(&seen[..], [Seen::Damage(d)] if d.kind == DamageKind::PartialWrite && d.tail));
}

#[test]
fn zeros_between_frames_are_corruption_not_the_end() {
    let (mut data, _) = segment(&[b"first".to_vec(), b"second".to_vec()]);
    data.splice(13..13, [0u8; 4096]);
    let seen = scan(&data);
    assert!(
        matches!(&seen[1], Seen::Damage(d) if d.kind == DamageKind::CorruptedFrame && d.offset == 13 && d.length == 4096 && !d.tail)
    );
    assert!(matches!(&seen[2], Seen::Frame(o, b) if *o == 13 + 4096 && b == b"second"));
}
