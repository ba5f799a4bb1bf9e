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
    scan_with_chunk(data, 16 + data.len() % 200)
}

fn scan_with_chunk(data: &[u8], chunk: usize) -> Vec<Seen> {
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

/// A length prefix that lies can lead the checksums taken ahead into a
/// frame nested in the next frame's body; the scan itself resyncs onto the
/// next real frame, and must not be handed the nested frame's checksum.
#[test]
fn checksums_taken_ahead_follow_the_scan_past_a_lying_length() {
    let bodies: Vec<Vec<u8>> = (0..12u8)
        .map(|i| {
            let mut nested = Vec::new();
            frames::encode(&[b'n', i], &mut nested).unwrap();
            nested.extend_from_slice(b"zzzz");
            nested
        })
        .collect();
    let (clean, spans) = segment(&bodies);
    for k in 0..bodies.len() - 1 {
        let mut data = clean.clone();
        // Frame k's length now ends 4 bytes later: where frame k + 1's body,
        // and the frame nested in it, begin.
        let (start, end) = spans[k];
        let lying = (end - start - frames::OVERHEAD + 4) as u32;
        data[start as usize..start as usize + 4].copy_from_slice(&lying.to_be_bytes());
        let whole = scan_with_chunk(&data, 1 << 20);
        assert_eq!(
            format!("{whole:?}"),
            format!("{:?}", scan_with_chunk(&data, 16)),
            "frame {k}"
        );
        let frames: Vec<u64> = whole
            .iter()
            .filter_map(|s| match s {
                Seen::Frame(offset, _) => Some(*offset),
                Seen::Damage(_) => None,
            })
            .collect();
        // The scan resyncs onto the frame nested in frame k's own body (a
        // valid frame), then goes on with frame k + 1.
        let expected: Vec<u64> = (0..spans.len())
            .map(|i| if i == k { spans[i].0 + 4 } else { spans[i].0 })
            .collect();
        assert_eq!(frames, expected, "frame {k}");
    }
}

proptest! {
    /// Arbitrary bytes never panic, and what the scanner reports covers the
    /// input exactly once.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = scan(&data);
        let _ = frames::decode(&data);
    }

    /// The window's size (and so which frames' checksums are taken
    /// together, ahead of the scan) changes nothing a scan reports, in
    /// valid, flipped and spliced data alike.
    #[test]
    fn window_size_changes_nothing(
        bodies in bodies(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        lying_lengths in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=15), 0..3),
        junk in proptest::collection::vec(any::<u8>(), 0..40),
        at in any::<prop::sample::Index>(),
    ) {
        let (mut data, spans) = segment(&bodies);
        for (i, mask) in flips {
            let i = i.index(data.len());
            data[i] ^= mask;
        }
        // A length prefix a little off: plausible, so the frames ahead are
        // placed wrongly when their checksums are taken together.
        for (frame, mask) in lying_lengths {
            let (start, _) = spans[frame.index(spans.len())];
            data[start as usize + 3] ^= mask;
        }
        let cut = at.index(data.len() + 1);
        data.splice(cut..cut, junk);
        let seen = |chunk| format!("{:?}", scan_with_chunk(&data, chunk));
        let reference = seen(16);
        for chunk in [23, 100, 333, 4096, 1 << 20] {
            prop_assert_eq!(&seen(chunk), &reference, "chunk {}", chunk);
        }
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
