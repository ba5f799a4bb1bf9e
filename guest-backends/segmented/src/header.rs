//! The header frame every segment begins with. The codec of a segment is
//! read from here, never from configuration.

use serde::{Deserialize, Serialize};

use crate::codec::Codec;

/// Version of the segment format.
pub const FORMAT: u32 = 1;

/// Body of a segment's first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentHeader {
    /// Always [`FORMAT`]; also what marks the frame as a header.
    pub quire_segment: u32,
    /// Codec of every other frame.
    pub codec: String,
    /// Store name.
    pub store: String,
    /// Segment number.
    pub segment: u64,
    /// When the segment was created (Unix seconds).
    pub created_at: f64,
}

impl SegmentHeader {
    /// A header for a new segment.
    pub fn new(codec: Codec, store: &str, segment: u64, created_at: f64) -> Self {
        Self {
            quire_segment: FORMAT,
            codec: codec.name().into(),
            store: store.into(),
            segment,
            created_at,
        }
    }

    /// The frame body.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a header serializes")
    }

    /// Parses a frame body as a header of a known format and codec.
    pub fn parse(body: &[u8]) -> Option<Self> {
        if !body.starts_with(b"{\"quire_segment\"") {
            return None;
        }
        let header: Self = serde_json::from_slice(body).ok()?;
        (header.quire_segment == FORMAT && Codec::parse(&header.codec).is_some()).then_some(header)
    }

    /// The codec (known, by `parse`).
    pub fn codec(&self) -> Codec {
        Codec::parse(&self.codec).unwrap_or(Codec::JsonCrc32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_records_are_not_headers() {
        let h = SegmentHeader::new(Codec::Compact, "gps", 7, 1_700_000_000.5);
        let body = h.to_body();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"quire_segment":1,"codec":"compact","store":"gps","segment":7,"created_at":1700000000.5}"#
        );
        assert_eq!(SegmentHeader::parse(&body), Some(h));
        assert_eq!(
            SegmentHeader::parse(br#"{"kind":"event","timestamp":1}"#),
            None
        );
        assert_eq!(
            SegmentHeader::parse(
                br#"{"quire_segment":1,"codec":"zstd","store":"x","segment":1,"created_at":1}"#
            ),
            None
        );
    }
}
