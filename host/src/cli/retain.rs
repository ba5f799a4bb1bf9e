//! `--retain STORE=POLICY`: which retention policy a store follows.

use crate::plugin::PluginSource;
use crate::{Error, Result};

/// A policy named on the command line, with its configuration.
pub struct RetainSpec {
    /// The policy component.
    pub source: PluginSource,
    /// Its JSON configuration.
    pub config: String,
}

/// Seconds in `7d`, `12h`, `30m`, `90s` or a bare number of seconds.
pub fn duration_seconds(text: &str) -> Result<f64> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return Err(bad_duration(text)),
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n * scale),
        _ => Err(bad_duration(text)),
    }
}

fn bad_duration(text: &str) -> Error {
    Error::Usage(format!(
        "`{text}` is not a duration: use a positive number with s, m, h, d or w (e.g. 7d)"
    ))
}

/// Parses `STORE=permanent`, `STORE=rolling-window:7d[:exact]`,
/// `STORE=ephemeral[:N]` or `STORE=PLUGIN.wasm[:JSON]`.
pub fn parse(spec: &str) -> Result<(String, RetainSpec)> {
    let usage = || {
        Error::Usage(format!(
            "--retain `{spec}`: expected STORE=permanent, STORE=rolling-window:7d[:exact], \
             STORE=ephemeral[:N] or STORE=PLUGIN.wasm[:JSON]"
        ))
    };
    let (store, policy) = spec.split_once('=').ok_or_else(usage)?;
    if store.is_empty() {
        return Err(usage());
    }
    let (name, args) = match policy.split_once(':') {
        Some((name, args)) => (name, Some(args)),
        None => (policy, None),
    };
    let builtin = |name: &str, config: serde_json::Value| RetainSpec {
        source: PluginSource::Builtin(name.into()),
        config: config.to_string(),
    };
    let parsed = match (name, args) {
        ("permanent", None) => builtin("permanent", serde_json::json!({})),
        ("rolling-window", Some(args)) => {
            let (window, exact) = match args.split_once(':') {
                Some((w, "exact")) => (w, true),
                Some(_) => return Err(usage()),
                None => (args, false),
            };
            builtin(
                "rolling-window",
                serde_json::json!({ "window_seconds": duration_seconds(window)?, "exact": exact }),
            )
        }
        ("ephemeral", args) => {
            let keep: u32 = match args {
                None => 1,
                Some(n) => n.parse().map_err(|_| usage())?,
            };
            builtin("ephemeral", serde_json::json!({ "keep_sealed": keep }))
        }
        (path, config) if path.ends_with(".wasm") => RetainSpec {
            source: PluginSource::File(path.into()),
            config: config.unwrap_or("{}").to_string(),
        },
        _ => return Err(usage()),
    };
    Ok((store.to_string(), parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_specs() {
        assert_eq!(duration_seconds("7d").unwrap(), 604_800.0);
        assert_eq!(duration_seconds("90").unwrap(), 90.0);
        assert!(duration_seconds("-1h").is_err());
        assert!(duration_seconds("3y").is_err());
        let (store, spec) = parse("gps=rolling-window:2h:exact").unwrap();
        assert_eq!(store, "gps");
        assert_eq!(spec.source, PluginSource::Builtin("rolling-window".into()));
        assert_eq!(spec.config, r#"{"exact":true,"window_seconds":7200.0}"#);
        assert_eq!(
            parse("t=ephemeral:3").unwrap().1.config,
            r#"{"keep_sealed":3}"#
        );
        assert!(parse("=permanent").is_err());
        assert!(parse("x=forever").is_err());
        assert!(parse("x=rolling-window").is_err());
    }
}
