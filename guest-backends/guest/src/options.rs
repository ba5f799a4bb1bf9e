//! Backend options from `open-config`: typed lookups, unknown names refused.

use crate::types::PluginError;

/// Name/value options with the names a backend accepts.
pub struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    /// Checks that every option name is in `known`.
    pub fn new(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Self, PluginError> {
        if let Some((name, _)) = pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            return Err(PluginError::InvalidConfig(format!(
                "unknown option `{name}`; this backend accepts: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        Ok(Self { pairs })
    }

    /// The raw value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` parsed as an unsigned integer, or `default`.
    pub fn u64_or(&self, name: &str, default: u64) -> Result<u64, PluginError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                PluginError::InvalidConfig(format!(
                    "option `{name}` must be a whole number, got `{v}`"
                ))
            }),
        }
    }
}
