//! Property tests: the line reader and record classifier on arbitrary bytes.

use proptest::prelude::*;
use quire_guest::lines::LineReader;
use quire_guest::record::{Verdict, classify};

proptest! {
    /// Lines cover the input exactly, offsets are where the bytes are, and
    /// the chunk size never changes the result.
    #[test]
    fn lines_tile_the_input(data in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 1usize..64) {
        let mut reader = LineReader::with_chunk(&data[..], 0, 1, chunk);
        let mut rebuilt = Vec::new();
        let mut number = 1;
        while let Some(line) = reader.next_line().unwrap() {
            prop_assert_eq!(line.offset as usize, rebuilt.len());
            prop_assert_eq!(line.number, number);
            prop_assert_eq!(&data[line.offset as usize..line.offset as usize + line.bytes.len()], line.bytes);
            prop_assert!(!line.bytes.contains(&b'\n'));
            rebuilt.extend_from_slice(line.bytes);
            if line.terminated { rebuilt.push(b'\n'); } else { prop_assert_eq!(rebuilt.len(), data.len()); }
            number += 1;
        }
        prop_assert_eq!(rebuilt, data);
    }

    /// Any bytes classify without panicking; a record is valid JSON with kind and timestamp.
    #[test]
    fn classify_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300), terminated: bool) {
        let line: Vec<u8> = line.into_iter().filter(|&b| b != b'\n').collect();
        if let Verdict::Record { json, timestamp, .. } = classify(&line, terminated) {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            prop_assert!(value["kind"].is_string());
            prop_assert_eq!(value["timestamp"].as_f64(), Some(timestamp));
        }
    }

    /// Damage after valid records never changes their verdicts (no resync loss).
    #[test]
    fn valid_records_survive_surrounding_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut data = b"{\"kind\":\"event\",\"timestamp\":1}\n".to_vec();
        data.extend(&garbage);
        data.extend_from_slice(b"\n{\"kind\":\"audit\",\"timestamp\":2}\n");
        let mut reader = LineReader::new(&data[..], 0, 1);
        let mut kinds = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            if let Verdict::Record { kind, .. } = classify(line.bytes, line.terminated) {
                kinds.push(kind.into_owned());
            }
        }
        prop_assert_eq!(kinds.first().map(String::as_str), Some("event"));
        prop_assert_eq!(kinds.last().map(String::as_str), Some("audit"));
    }
}
