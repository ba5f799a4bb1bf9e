//! Names on disk: which category directory a kind goes to, what rotated
//! files are called, and what a unit id means.

use quire_guest::atomic::TEMP_SUFFIX;

/// Directory of the receipt book, beside the categories (never a category).
pub const RECEIPTS_DIR: &str = "receipts";
/// The manifest of one category, inside its directory.
pub const MANIFEST_NAME: &str = "MANIFEST.json";
/// Extension of every rotated file.
const EXTENSION: &str = ".ndjson";
/// Longest category name: file names (`NAME-0001.ndjson.quire-tmp`) must stay
/// far below the usual 255-byte limit.
const MAX_CATEGORY_LEN: usize = 64;
/// Sequence numbers are written with at least this many digits.
const MIN_DIGITS: usize = 4;

/// The category directory for a record kind: Papyra's three kinds get
/// Papyra's directory names, any other kind its own name when that name is
/// safe as a directory name.
pub fn category_for_kind(kind: &str) -> Result<&str, String> {
    match kind {
        "event" => Ok("events"),
        "audit" => Ok("audits"),
        "dead_letter" => Ok("dead_letters"),
        other if is_category(other) => Ok(other),
        other => Err(format!(
            "kind `{}` cannot name a directory: use 1 to {MAX_CATEGORY_LEN} characters from \
             A-Z a-z 0-9 _ - ., not starting with `.`, and not `{RECEIPTS_DIR}`",
            other.escape_debug()
        )),
    }
}

/// Whether `name` is a usable category directory name.
pub fn is_category(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CATEGORY_LEN
        && !name.starts_with('.')
        && name != RECEIPTS_DIR
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `events-0001.ndjson`: the file with sequence number `sequence`. Widens
/// past 9999 on its own.
pub fn file_name(category: &str, sequence: u64) -> String {
    format!("{category}-{sequence:0MIN_DIGITS$}{EXTENSION}")
}

/// The sequence number of a rotated file of `category`, if `name` is one.
/// Only the canonical spelling counts, so no two names share a number.
pub fn parse_file_name(category: &str, name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(category)?
        .strip_prefix('-')?
        .strip_suffix(EXTENSION)?;
    if digits.len() < MIN_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sequence: u64 = digits.parse().ok()?;
    (sequence > 0 && file_name(category, sequence) == name).then_some(sequence)
}

/// What a unit id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitName {
    /// A rotated file: `events/events-0003.ndjson`.
    Rotated { category: String, sequence: u64 },
    /// A temporary file left by an interrupted atomic write, in a category
    /// directory or the receipt book: `events/events-0003.ndjson.quire-tmp`.
    Temporary { dir: String, file: String },
}

/// The unit id of a rotated file: its path relative to the data root.
pub fn unit_id(category: &str, sequence: u64) -> String {
    format!("{category}/{}", file_name(category, sequence))
}

/// Reads a unit id; `None` for anything that is not one of ours.
pub fn parse_unit(id: &str) -> Option<UnitName> {
    let (dir, file) = id.split_once('/')?;
    if file.contains('/') {
        return None;
    }
    if let Some(stem) = file.strip_suffix(TEMP_SUFFIX) {
        let ours =
            !stem.is_empty() && !stem.starts_with('.') && (dir == RECEIPTS_DIR || is_category(dir));
        return ours.then(|| UnitName::Temporary {
            dir: dir.to_string(),
            file: file.to_string(),
        });
    }
    if !is_category(dir) {
        return None;
    }
    let sequence = parse_file_name(dir, file)?;
    Some(UnitName::Rotated {
        category: dir.to_string(),
        sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papyra_kinds_get_papyra_directories_and_others_their_own_name() {
        assert_eq!(category_for_kind("event"), Ok("events"));
        assert_eq!(category_for_kind("audit"), Ok("audits"));
        assert_eq!(category_for_kind("dead_letter"), Ok("dead_letters"));
        assert_eq!(category_for_kind("metric"), Ok("metric"));
        assert_eq!(category_for_kind("gps.v2-raw"), Ok("gps.v2-raw"));
        for unsafe_kind in [
            "", ".", "..", ".hidden", "a/b", "a\\b", "ü", "receipts", "a b",
        ] {
            assert!(category_for_kind(unsafe_kind).is_err(), "{unsafe_kind:?}");
        }
        assert!(category_for_kind(&"k".repeat(65)).is_err());
    }

    #[test]
    fn file_names_widen_and_parse_only_canonically() {
        assert_eq!(file_name("events", 1), "events-0001.ndjson");
        assert_eq!(file_name("events", 9999), "events-9999.ndjson");
        assert_eq!(file_name("events", 10000), "events-10000.ndjson");
        assert_eq!(parse_file_name("events", "events-0001.ndjson"), Some(1));
        assert_eq!(
            parse_file_name("events", "events-10000.ndjson"),
            Some(10000)
        );
        for bad in [
            "events-1.ndjson",
            "events-00001.ndjson",
            "events-0000.ndjson",
            "events-0001.ndjson.quire-tmp",
            "audits-0001.ndjson",
            "events-00a1.ndjson",
            "events-+001.ndjson",
        ] {
            assert_eq!(parse_file_name("events", bad), None, "{bad}");
        }
        // A category whose name looks like a file of another one.
        assert_eq!(parse_file_name("a-0001", "a-0001-0002.ndjson"), Some(2));
        assert_eq!(parse_file_name("a", "a-0001-0002.ndjson"), None);
    }

    #[test]
    fn unit_ids_name_files_relative_to_the_data_root() {
        assert_eq!(unit_id("events", 3), "events/events-0003.ndjson");
        assert_eq!(
            parse_unit("events/events-0003.ndjson"),
            Some(UnitName::Rotated {
                category: "events".into(),
                sequence: 3
            })
        );
        assert_eq!(
            parse_unit("receipts/123-purged-x.quire-tmp"),
            Some(UnitName::Temporary {
                dir: "receipts".into(),
                file: "123-purged-x.quire-tmp".into()
            })
        );
        for bad in [
            "events-0003.ndjson",
            "../events/events-0003.ndjson",
            "events/../events-0003.ndjson",
            "events/sub/events-0003.ndjson",
            "receipts/receipts-0001.ndjson",
            "events/.quire-tmp",
            "events/MANIFEST.json",
        ] {
            assert_eq!(parse_unit(bad), None, "{bad}");
        }
    }
}
