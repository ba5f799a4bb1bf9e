//! Size of the codecs on two typical streams, printed by a normal test
//! (`cargo test -p quire-segmented ratio -- --nocapture`). Only
//! losslessness is asserted: sizes are reported, not promised.

use std::io::Cursor;

use crate::codec::{Codec, CodecSettings, FrameEncoder};
use crate::decode::{Entry, SegmentDecoder};
use crate::header::SegmentHeader;

/// A deterministic pseudo-random sequence (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// GPS/sensor readings: one truck, a fix every ~second with microseconds.
fn gps(n: usize) -> Vec<String> {
    let mut rng = Lcg(17);
    let (mut lat, mut lon, mut heading) = (52.520_008_f64, 13.404_954_f64, 90.0_f64);
    let mut ts = 1_795_219_200.0_f64;
    (0..n)
        .map(|_| {
            ts += 1.0 + (rng.next() * 1000.0).round() / 1_000_000.0;
            heading = (heading + (rng.next() - 0.5) * 10.0).rem_euclid(360.0);
            lat += (rng.next() - 0.5) * 0.0002;
            lon += (rng.next() - 0.5) * 0.0002;
            let speed = 40.0 + rng.next() * 30.0;
            format!(
                r#"{{"kind":"metric","store":"gps","timestamp":{ts:.6},"device":"truck-17","lat":{lat:.6},"lon":{lon:.6},"speed":{speed:.2},"heading":{heading:.1}}}"#
            )
        })
        .collect()
}

/// Papyra actor events, dead letters and audits.
fn actor_events(n: usize) -> Vec<String> {
    let mut rng = Lcg(42);
    let types = [
        "UserCreated",
        "UserUpdated",
        "OrderPlaced",
        "OrderShipped",
        "PaymentFailed",
    ];
    let mut ts = 1_700_000_000.123_f64;
    (0..n)
        .map(|i| {
            ts += rng.next() * 0.05;
            let actor = (rng.next() * 500.0) as u32;
            match i % 10 {
                9 => format!(
                    r#"{{"kind": "dead_letter", "system_id": "local", "target": "actor://user/{actor}", "message_type": "Ping", "payload": "undeliverable", "timestamp": {ts}}}"#
                ),
                8 => format!(
                    r#"{{"kind": "audit", "system_id": "local", "timestamp": {ts}, "total_actors": {}, "alive_actors": {}, "registry_size": {}, "dead_letters_count": {i}}}"#,
                    500 + actor,
                    480 + actor / 2,
                    900 + actor
                ),
                _ => format!(
                    r#"{{"kind": "event", "system_id": "local", "actor_address": "actor://user/{actor}", "event_type": "{}", "payload": {{"id": {actor}, "amount": {:.2}}}, "timestamp": {ts}}}"#,
                    types[(rng.next() * 5.0) as usize],
                    rng.next() * 1000.0
                ),
            }
        })
        .collect()
}

/// Encodes `records` into one segment and decodes it back.
fn round_trip(records: &[String], codec: Codec, block: u64, level: u8) -> (usize, Vec<String>) {
    let mut enc = FrameEncoder::new(
        codec,
        CodecSettings {
            block_records: block,
            stream_bytes: 1 << 20,
            compress_level: level,
        },
    );
    enc.raw_frame(&SegmentHeader::new(codec, "s", 1, 0.0).to_body())
        .unwrap();
    for r in records {
        enc.push(r.as_bytes()).unwrap();
    }
    enc.flush_block().unwrap();
    let data = enc.out().to_vec();
    let mut dec = SegmentDecoder::new(Cursor::new(&data), data.len() as u64, 1 << 16);
    let mut back = Vec::new();
    while let Some(e) = dec.next_entry().unwrap() {
        match e {
            Entry::Record(r) => back.push(r.json),
            Entry::Header(_) => {}
            Entry::Damage(d) => panic!("damage in a fresh segment: {d:?}"),
        }
    }
    (data.len(), back)
}

#[test]
fn ratio_of_compact_to_json_crc32_on_gps_and_actor_streams() {
    for (name, records) in [
        ("gps/sensor", gps(10_000)),
        ("papyra actor events", actor_events(10_000)),
    ] {
        let ndjson: usize = records.iter().map(|r| r.len() + 1).sum();
        let (json_bytes, back) = round_trip(&records, Codec::JsonCrc32, 1, 1);
        assert_eq!(back, records, "json-crc32 is lossless");
        println!(
            "{name}: {} records, NDJSON {:.1} B/record, json-crc32 {:.1} B/record",
            records.len(),
            ndjson as f64 / records.len() as f64,
            json_bytes as f64 / records.len() as f64
        );
        for (block, level) in [(1, 1), (64, 1), (1, 6), (64, 6)] {
            let (bytes, back) = round_trip(&records, Codec::Compact, block, level);
            assert!(
                back == records,
                "compact (block {block}, level {level}) is lossless, byte for byte"
            );
            println!(
                "  compact, block {block:>2}, level {level}: {:.1} B/record, {:.1}x smaller than json-crc32",
                bytes as f64 / records.len() as f64,
                json_bytes as f64 / bytes as f64
            );
        }
    }
}
