//! The rolling window's configuration:
//! `{"window_seconds": S, "exact": false}`.
//!
//! `window_seconds` (required) is how long a record lives, a number greater
//! than zero. `exact` (default false) chooses between dropping whole sealed
//! units only (as Kafka and Igniter do: cheap, keeps a little extra) and also
//! trimming the records older than the cutoff out of the units that straddle
//! it. Unknown fields are refused: a misspelt `exact` would otherwise
//! silently fall back to the default.

use quire_guest::policy_kit::config_fields;
use serde_json::Value;

/// What the configuration error says is expected.
pub const EXPECTED: &str = r#"expected {"window_seconds": S (seconds, > 0), "exact": false}"#;

/// A parsed configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// How long a record lives, in seconds.
    pub window_seconds: f64,
    /// Trim records out of units straddling the cutoff, not only whole units.
    pub exact: bool,
}

/// Parses and checks `text`.
pub fn parse(text: &str) -> Result<Config, String> {
    let fields = config_fields(text, &["window_seconds", "exact"], EXPECTED)?;
    let window_seconds = match fields.get("window_seconds") {
        None => return Err(format!("missing field `window_seconds`; {EXPECTED}")),
        Some(value) => match value.as_f64() {
            Some(s) if s.is_finite() && s > 0.0 => s,
            _ => {
                return Err(format!(
                    "field `window_seconds` must be a number of seconds greater than 0, got `{value}`; {EXPECTED}"
                ));
            }
        },
    };
    let exact = match fields.get("exact") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(value) => {
            return Err(format!(
                "field `exact` must be true or false, got `{value}`; {EXPECTED}"
            ));
        }
    };
    Ok(Config {
        window_seconds,
        exact,
    })
}

#[cfg(test)]
mod tests {
    use super::{Config, parse};

    #[test]
    fn window_alone_means_whole_units() {
        assert_eq!(
            parse(r#"{"window_seconds": 604800}"#).unwrap(),
            Config {
                window_seconds: 604800.0,
                exact: false
            }
        );
    }

    #[test]
    fn exact_and_fractional_windows() {
        assert_eq!(
            parse(r#"{"window_seconds": 0.5, "exact": true}"#).unwrap(),
            Config {
                window_seconds: 0.5,
                exact: true
            }
        );
    }

    #[test]
    fn window_is_required() {
        for text in ["", "{}", r#"{"exact": true}"#] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("missing field `window_seconds`"), "{text}: {e}");
        }
    }

    #[test]
    fn window_must_be_a_positive_number() {
        for bad in ["0", "-1", "\"7d\"", "null", "true", "[60]", "{}"] {
            let e = parse(&format!(r#"{{"window_seconds": {bad}}}"#)).unwrap_err();
            assert!(e.contains("field `window_seconds`"), "{bad}: {e}");
        }
    }

    #[test]
    fn exact_must_be_a_bool() {
        let e = parse(r#"{"window_seconds": 60, "exact": "yes"}"#).unwrap_err();
        assert!(e.contains("field `exact`") && e.contains("\"yes\""), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let e = parse(r#"{"window_seconds": 60, "exakt": true}"#).unwrap_err();
        assert!(e.contains("unknown field `exakt`"), "{e}");
    }

    #[test]
    fn non_objects_and_bad_json_are_refused() {
        assert!(parse("60").unwrap_err().contains("not a JSON object"));
        assert!(
            parse("{\"window_seconds\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
