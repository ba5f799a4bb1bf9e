//! The permanent policy's configuration: an empty JSON object.
//!
//! There is nothing to configure, but a field given here is almost certainly
//! meant for another policy (a `window_seconds` for the rolling window), so
//! it is refused rather than ignored.

use quire_guest::policy_kit::config_fields;

/// What the configuration error says is expected.
pub const EXPECTED: &str = "expected `{}` (the permanent policy takes no fields)";

/// Checks `text` is an empty JSON object; blank text counts as `{}`.
pub fn parse(text: &str) -> Result<(), String> {
    config_fields(text, &[], EXPECTED).map(drop)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn empty_object_and_blank_are_accepted() {
        parse("{}").unwrap();
        parse(" { } ").unwrap();
        parse("").unwrap();
        parse("  \n").unwrap();
    }

    #[test]
    fn any_field_is_refused_by_name() {
        let e = parse(r#"{"window_seconds": 60}"#).unwrap_err();
        assert!(e.contains("unknown field `window_seconds`"), "{e}");
    }

    #[test]
    fn non_objects_and_bad_json_are_refused() {
        assert!(parse("[]").unwrap_err().contains("not a JSON object"));
        assert!(parse("null").unwrap_err().contains("not a JSON object"));
        assert!(parse("{").unwrap_err().contains("not valid JSON"));
    }
}
