//! Retention as data: the standard limits, per-store policies and policy
//! components one compaction applies. The CLI's flags and the bindings'
//! arguments both become a [`RetentionSpec`]; it is turned into
//! [`Retention`] runs here, once.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::plugin::{self, PluginSource};
use crate::policy::Policy;
use crate::retention::Retention;

/// One retention policy with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// A built-in policy's name (`standard`, `permanent`, `rolling-window`,
    /// `ephemeral`) or a component's path (ending in `.wasm` or containing `/`).
    pub plugin: String,
    /// The policy's JSON configuration (empty: its defaults). Given as a
    /// JSON object, it is taken as that object's text.
    #[serde(default, deserialize_with = "config_text")]
    pub config: String,
}

/// A configuration given as text, or as JSON to be written as text.
fn config_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

impl PolicySpec {
    /// Parses `permanent`, `rolling-window:7d[:exact]`, `ephemeral[:N]` or
    /// `PLUGIN.wasm[:JSON]`.
    pub fn parse(text: &str) -> Result<Self> {
        let usage = || {
            Error::Usage(format!(
                "retention policy `{text}`: expected permanent, rolling-window:7d[:exact], \
                 ephemeral[:N] or PLUGIN.wasm[:JSON]"
            ))
        };
        let (name, args) = match text.split_once(':') {
            Some((name, args)) => (name, Some(args)),
            None => (text, None),
        };
        let builtin = |name: &str, config: Value| PolicySpec {
            plugin: name.into(),
            config: config.to_string(),
        };
        Ok(match (name, args) {
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
            (path, config) if path.ends_with(".wasm") => PolicySpec {
                plugin: path.into(),
                config: config.unwrap_or("{}").to_string(),
            },
            _ => return Err(usage()),
        })
    }

    /// A policy component at `path`, read as a file whatever its name (a
    /// bare `keep` is `./keep`, never a built-in's name).
    pub fn file(path: &Path, config: impl Into<String>) -> Result<Self> {
        let text = path.to_str().ok_or_else(|| {
            Error::Usage(format!("{}: a policy path must be UTF-8", path.display()))
        })?;
        let plugin = match PluginSource::parse(text) {
            PluginSource::File(_) => text.to_string(),
            PluginSource::Builtin(_) => format!("./{text}"),
        };
        Ok(PolicySpec {
            plugin,
            config: config.into(),
        })
    }

    /// Where the component comes from.
    pub fn source(&self) -> PluginSource {
        PluginSource::parse(&self.plugin)
    }

    fn create(&self, limits: Limits, cache_dir: Option<&Path>, now: f64) -> Result<Policy> {
        let loaded = plugin::load_policy(&self.source(), cache_dir)?;
        Policy::create(&loaded, &self.config, now, limits)
    }
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

/// What a compaction keeps.
///
/// The standard policy's limits (`max_records`, `max_age_seconds`,
/// `max_bytes`, plus `standard_config` such as per-kind overrides) apply to
/// every store without a policy in `stores`; `policies` run after them, one
/// compaction each, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSpec {
    /// Keep only the newest N records.
    pub max_records: Option<u64>,
    /// Drop records older than this many seconds.
    pub max_age_seconds: Option<f64>,
    /// Keep the newest records that fit in this many bytes on disk.
    pub max_bytes: Option<u64>,
    /// More configuration for the standard policy, e.g.
    /// `{"per_kind": {"audit": {"max_records": 10}}}`.
    pub standard_config: Option<Map<String, Value>>,
    /// A policy for each named store.
    pub stores: BTreeMap<String, PolicySpec>,
    /// Policy components applied after the standard limits, in order.
    pub policies: Vec<PolicySpec>,
}

impl RetentionSpec {
    /// The standard policy's limits alone.
    pub fn standard(
        max_records: Option<u64>,
        max_age_seconds: Option<f64>,
        max_bytes: Option<u64>,
    ) -> Self {
        RetentionSpec {
            max_records,
            max_age_seconds,
            max_bytes,
            ..Self::default()
        }
    }

    /// Adds a policy for `store` (an error if it already has one).
    pub fn retain(&mut self, store: &str, policy: PolicySpec) -> Result<&mut Self> {
        if store.is_empty() {
            return Err(Error::Usage("a retained store needs a name".into()));
        }
        if self.stores.insert(store.into(), policy).is_some() {
            return Err(Error::Usage(format!(
                "store `{store}` is given two retention policies"
            )));
        }
        Ok(self)
    }

    /// Adds a policy component run after the standard limits.
    pub fn then(&mut self, policy: PolicySpec) -> &mut Self {
        self.policies.push(policy);
        self
    }

    /// The standard policy's configuration, if it has anything to enforce.
    pub fn standard_policy_config(&self) -> Option<String> {
        let mut config = self.standard_config.clone().unwrap_or_default();
        if let Some(n) = self.max_records {
            config.insert("max_records".into(), n.into());
        }
        if let Some(s) = self.max_age_seconds {
            config.insert("max_age_seconds".into(), s.into());
        }
        if let Some(b) = self.max_bytes {
            config.insert("max_bytes".into(), b.into());
        }
        (!config.is_empty()).then(|| Value::Object(config).to_string())
    }

    /// Loads every policy and assembles the compaction runs, in order.
    /// An empty spec is a usage error: compaction needs something to keep by.
    pub fn runs(
        &self,
        limits: Limits,
        cache_dir: Option<&Path>,
        now: f64,
    ) -> Result<Vec<Retention>> {
        let standard = match self.standard_policy_config() {
            Some(config) => Some(
                PolicySpec {
                    plugin: "standard".into(),
                    config,
                }
                .create(limits, cache_dir, now)?,
            ),
            None => None,
        };
        let mut runs = Vec::new();
        if self.stores.is_empty() {
            runs.extend(standard.map(Retention::single));
        } else {
            let mut stores = BTreeMap::new();
            for (store, spec) in &self.stores {
                stores.insert(store.clone(), spec.create(limits, cache_dir, now)?);
            }
            runs.push(Retention::per_store(standard, stores));
        }
        for spec in &self.policies {
            runs.push(Retention::single(spec.create(limits, cache_dir, now)?));
        }
        if runs.is_empty() {
            return Err(Error::Usage(
                "nothing to compact by: give a record, age or size limit, a per-store policy or a retention policy component".into(),
            ));
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_policies_parse() {
        assert_eq!(duration_seconds("7d").unwrap(), 604_800.0);
        assert_eq!(duration_seconds("90").unwrap(), 90.0);
        assert!(duration_seconds("-1h").is_err());
        assert!(duration_seconds("3y").is_err());
        let spec = PolicySpec::parse("rolling-window:2h:exact").unwrap();
        assert_eq!(
            spec.source(),
            PluginSource::Builtin("rolling-window".into())
        );
        assert_eq!(spec.config, r#"{"exact":true,"window_seconds":7200.0}"#);
        assert_eq!(
            PolicySpec::parse("ephemeral:3").unwrap().config,
            r#"{"keep_sealed":3}"#
        );
        let bare = PolicySpec::file(Path::new("keep"), "").unwrap();
        assert_eq!(bare.source(), PluginSource::File("./keep".into()));
        let file = PolicySpec::parse("./keep.wasm:{\"n\":1}").unwrap();
        assert_eq!(file.source(), PluginSource::File("./keep.wasm".into()));
        assert_eq!(file.config, r#"{"n":1}"#);
        assert!(PolicySpec::parse("forever").is_err());
        assert!(PolicySpec::parse("rolling-window").is_err());
    }

    #[test]
    fn the_standard_config_merges_limits_into_extra_configuration() {
        assert_eq!(RetentionSpec::default().standard_policy_config(), None);
        let mut spec = RetentionSpec::standard(Some(5), None, Some(100));
        spec.standard_config =
            serde_json::from_str(r#"{"per_kind":{"audit":{"max_records":1}}}"#).unwrap();
        assert_eq!(
            spec.standard_policy_config().unwrap(),
            r#"{"max_bytes":100,"max_records":5,"per_kind":{"audit":{"max_records":1}}}"#
        );
        assert!(
            spec.retain("gps", PolicySpec::parse("permanent").unwrap())
                .is_ok()
        );
        assert!(
            spec.retain("gps", PolicySpec::parse("permanent").unwrap())
                .is_err()
        );
    }

    #[test]
    fn a_spec_round_trips_through_json_and_refuses_unknown_fields() {
        let mut spec = RetentionSpec::standard(None, Some(60.0), None);
        spec.then(PolicySpec::parse("./p.wasm").unwrap());
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<RetentionSpec>(&text).unwrap(), spec);
        assert!(serde_json::from_str::<RetentionSpec>(r#"{"max_recrds": 1}"#).is_err());
        let given_as_object: RetentionSpec = serde_json::from_str(
            r#"{"stores": {"gps": {"plugin": "ephemeral", "config": {"keep_sealed": 2}}}}"#,
        )
        .unwrap();
        assert_eq!(given_as_object.stores["gps"].config, r#"{"keep_sealed":2}"#);
        assert!(
            serde_json::from_str::<RetentionSpec>(
                r#"{"policies": [{"plugin": "x.wasm", "cofig": "{}"}]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn an_empty_spec_is_refused_before_loading_anything() {
        let Err(err) = RetentionSpec::default().runs(Limits::default(), None, 0.0) else {
            panic!("an empty spec was accepted")
        };
        assert!(err.to_string().contains("nothing to compact by"), "{err}");
    }
}
