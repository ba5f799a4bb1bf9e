//! Backend options: `codec`, `codec.<store>`, `max-bytes`, `bucket`,
//! `block-records`, `stream-bytes`, `compress-level`.

use std::collections::BTreeMap;

use quire_guest::options::Options;
use quire_guest::types::PluginError;

use crate::codec::{Codec, CodecSettings};
use crate::layout::{BucketMode, check_store_name};

/// Option names with a fixed spelling (`codec.<store>` comes on top).
pub const OPTIONS: &[&str] = &[
    "codec",
    "max-bytes",
    "bucket",
    "block-records",
    "stream-bytes",
    "compress-level",
];
/// Segment size at which the live segment is sealed and a new one begun.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Records per compact block: the durability window of `buffered` appends.
pub const DEFAULT_BLOCK_RECORDS: u64 = 64;
/// JSON bytes per deflate stream: bounds what one damaged frame can cost.
pub const DEFAULT_STREAM_BYTES: u64 = 1 << 20;
/// Deflate level of compact blocks: zlib-rs's quick path, three to four
/// times the speed of zlib's default 6 for blocks about 1.5 times larger.
pub const DEFAULT_COMPRESS_LEVEL: u8 = 1;

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Codec of new segments of stores without their own.
    pub codec: Codec,
    /// Codec of new segments, per store.
    pub store_codecs: BTreeMap<String, Codec>,
    /// Rotation size.
    pub max_bytes: u64,
    /// Time bucket granularity.
    pub bucket: BucketMode,
    /// Compact block and stream sizes.
    pub settings: CodecSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            codec: Codec::JsonCrc32,
            store_codecs: BTreeMap::new(),
            max_bytes: DEFAULT_MAX_BYTES,
            bucket: BucketMode::Day,
            settings: CodecSettings {
                block_records: DEFAULT_BLOCK_RECORDS,
                stream_bytes: DEFAULT_STREAM_BYTES,
                compress_level: DEFAULT_COMPRESS_LEVEL,
            },
        }
    }
}

fn codec(name: &str, value: &str) -> Result<Codec, PluginError> {
    Codec::parse(value).ok_or_else(|| {
        PluginError::InvalidConfig(format!(
            "option `{name}`: unknown codec `{value}`; codecs: {}",
            Codec::ALL.map(Codec::name).join(", ")
        ))
    })
}

fn positive(options: &Options, name: &str, default: u64) -> Result<u64, PluginError> {
    match options.u64_or(name, default)? {
        0 => Err(PluginError::InvalidConfig(format!(
            "option `{name}` must be at least 1"
        ))),
        n => Ok(n),
    }
}

impl Config {
    /// Parses options; unknown names and bad values are refused.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, PluginError> {
        let mut config = Config::default();
        let (per_store, fixed): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(name, _)| name.starts_with("codec."));
        for (name, value) in &per_store {
            let store = &name["codec.".len()..];
            check_store_name(store)
                .map_err(|e| PluginError::InvalidConfig(format!("option `{name}`: {e}")))?;
            config
                .store_codecs
                .insert(store.into(), codec(name, value)?);
        }
        let options = Options::new(fixed, OPTIONS)?;
        if let Some(value) = options.get("codec") {
            config.codec = codec("codec", value)?;
        }
        if let Some(value) = options.get("bucket") {
            config.bucket = BucketMode::parse(value).ok_or_else(|| {
                PluginError::InvalidConfig(format!(
                    "option `bucket` must be `day`, `hour` or `none`, got `{value}`"
                ))
            })?;
        }
        config.max_bytes = positive(&options, "max-bytes", DEFAULT_MAX_BYTES)?;
        config.settings.block_records = positive(&options, "block-records", DEFAULT_BLOCK_RECORDS)?;
        config.settings.stream_bytes = positive(&options, "stream-bytes", DEFAULT_STREAM_BYTES)?;
        config.settings.compress_level =
            match options.u64_or("compress-level", DEFAULT_COMPRESS_LEVEL.into())? {
                level @ 1..=9 => level as u8,
                level => {
                    return Err(PluginError::InvalidConfig(format!(
                        "option `compress-level` must be 1 (fastest) to 9 (smallest), got {level}"
                    )));
                }
            };
        Ok(config)
    }

    /// Codec for new segments of `store`.
    pub fn codec_for(&self, store: &str) -> Codec {
        self.store_codecs.get(store).copied().unwrap_or(self.codec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn options_parse_and_refuse() {
        let c = Config::parse(pairs(&[
            ("codec", "compact"),
            ("codec.crm", "json-crc32"),
            ("max-bytes", "1000"),
            ("bucket", "hour"),
            ("block-records", "8"),
            ("compress-level", "9"),
        ]))
        .unwrap();
        assert_eq!(c.codec_for("gps"), Codec::Compact);
        assert_eq!(c.codec_for("crm"), Codec::JsonCrc32);
        assert_eq!(c.max_bytes, 1000);
        assert_eq!(c.bucket, BucketMode::Hour);
        assert_eq!(c.settings.block_records, 8);
        assert_eq!(c.settings.compress_level, 9);
        let d = Config::parse(vec![]).unwrap();
        assert_eq!(
            (d.codec, d.max_bytes, d.bucket, d.settings.compress_level),
            (Codec::JsonCrc32, 64 << 20, BucketMode::Day, 1)
        );
        for bad in [
            &[("codec", "zip")][..],
            &[("codec.a/b", "compact")],
            &[("size", "1")],
            &[("bucket", "week")],
            &[("max-bytes", "0")],
            &[("block-records", "x")],
            &[("compress-level", "0")],
            &[("compress-level", "10")],
        ] {
            assert!(
                matches!(
                    Config::parse(pairs(bad)),
                    Err(PluginError::InvalidConfig(_))
                ),
                "{bad:?}"
            );
        }
    }
}
