//! The permanent policy's configuration: an empty JSON object.
//!
//! There is nothing to configure, but a field given here is almost certainly
//! meant for another policy (a `window_seconds` for the rolling window), so
//! it is refused rather than ignored.

use serde_json::{Map, Value};

/// What the configuration error says is expected.
pub const EXPECTED: &str = "expected `{}` (the permanent policy takes no fields)";

/// Checks `text` is an empty JSON object; blank text counts as `{}`.
pub fn parse(text: &str) -> Result<(), String> {
    let fields = object(text)?;
    match fields.keys().next() {
        None => Ok(()),
        Some(name) => Err(format!("unknown field `{name}`; {EXPECTED}")),
    }
}

/// The fields of the JSON object in `text`; blank text is the empty object.
fn object(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(format!(
            "configuration is not a JSON object: `{other}`; {EXPECTED}"
        )),
        Err(e) => Err(format!("configuration is not valid JSON ({e}); {EXPECTED}")),
    }
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
