//! The ephemeral policy's configuration: `{"keep_sealed": N}`.
//!
//! `keep_sealed` (default 1) is how many sealed units survive besides the
//! live one; 0 keeps the live unit alone. Unknown fields are refused so a
//! misspelt name cannot silently fall back to the default.

use quire_guest::policy_kit::config_fields;

/// What the configuration error says is expected.
pub const EXPECTED: &str = r#"expected {"keep_sealed": N (whole number, default 1)}"#;

/// A parsed configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Sealed units kept, newest first.
    pub keep_sealed: u32,
}

/// Parses and checks `text`; blank text counts as `{}`.
pub fn parse(text: &str) -> Result<Config, String> {
    let fields = config_fields(text, &["keep_sealed"], EXPECTED)?;
    let keep_sealed = match fields.get("keep_sealed") {
        None => 1,
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                format!(
                    "field `keep_sealed` must be a whole number from 0 to {}, got `{value}`; {EXPECTED}",
                    u32::MAX
                )
            })?,
    };
    Ok(Config { keep_sealed })
}

#[cfg(test)]
mod tests {
    use super::{Config, parse};

    #[test]
    fn one_sealed_unit_by_default() {
        for text in ["", "{}"] {
            assert_eq!(parse(text).unwrap(), Config { keep_sealed: 1 });
        }
    }

    #[test]
    fn any_count_including_zero() {
        assert_eq!(
            parse(r#"{"keep_sealed": 0}"#).unwrap(),
            Config { keep_sealed: 0 }
        );
        assert_eq!(
            parse(r#"{"keep_sealed": 4294967295}"#).unwrap(),
            Config {
                keep_sealed: u32::MAX
            }
        );
    }

    #[test]
    fn count_must_be_a_whole_number_in_range() {
        for bad in ["-1", "1.5", "1.0", "4294967296", "\"2\"", "null", "true"] {
            let e = parse(&format!(r#"{{"keep_sealed": {bad}}}"#)).unwrap_err();
            assert!(e.contains("field `keep_sealed`"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let e = parse(r#"{"keep": 2}"#).unwrap_err();
        assert!(e.contains("unknown field `keep`"), "{e}");
    }

    #[test]
    fn non_objects_and_bad_json_are_refused() {
        assert!(parse("2").unwrap_err().contains("not a JSON object"));
        assert!(
            parse("{keep_sealed: 2}")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
