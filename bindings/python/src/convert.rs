//! Python arguments into the library's types, and the library's reports
//! back into Python objects, both through serde and Python's `json`.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use quire::{Durability, Limits, PluginSource, ReadQuery, RetentionSpec, StoreConfig};
use serde::Serialize;

/// How `Store(...)` was asked to open.
pub struct OpenArgs<'py> {
    pub backend: String,
    pub path: Option<PathBuf>,
    pub read_only: bool,
    pub durability: String,
    pub options: Option<Bound<'py, PyDict>>,
    pub quarantine_dir: Option<PathBuf>,
    pub network: Option<String>,
    pub memory_mib: Option<usize>,
    pub timeout_seconds: Option<f64>,
    pub cache_dir: Option<PathBuf>,
    pub cache: bool,
}

impl OpenArgs<'_> {
    /// The store configuration these arguments describe.
    pub fn config(self) -> PyResult<StoreConfig> {
        let source = PluginSource::parse(&self.backend);
        let path = match self.path {
            Some(path) => path,
            None if source == PluginSource::Builtin("memory".into()) => PathBuf::new(),
            None => {
                return Err(PyValueError::new_err(format!(
                    "backend `{}` needs a path (its data file or directory)",
                    self.backend
                )));
            }
        };
        let mut config = StoreConfig::new(source, path);
        config.read_only = self.read_only;
        config.durability = self
            .durability
            .parse::<Durability>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        config.quarantine_dir = self.quarantine_dir;
        config.network = match self.network {
            Some(address) => Some(address.parse().map_err(|_| {
                PyValueError::new_err(format!(
                    "network `{address}` is not an IP address and port (e.g. 127.0.0.1:6379)"
                ))
            })?),
            None => None,
        };
        config.limits = limits(self.memory_mib, self.timeout_seconds)?;
        config.cache_dir = match (self.cache, self.cache_dir) {
            (false, _) => None,
            (true, Some(dir)) => Some(dir),
            (true, None) => config.cache_dir,
        };
        if let Some(options) = self.options {
            config.options = backend_options(&options)?;
        }
        Ok(config)
    }
}

fn limits(memory_mib: Option<usize>, timeout_seconds: Option<f64>) -> PyResult<Limits> {
    let mut limits = Limits::default();
    if let Some(mib) = memory_mib {
        if mib == 0 {
            return Err(PyValueError::new_err("memory_mib must be at least 1"));
        }
        limits.memory_bytes = mib << 20;
    }
    if let Some(seconds) = timeout_seconds {
        if !(seconds > 0.0 && seconds.is_finite()) {
            return Err(PyValueError::new_err(
                "timeout_seconds must be a positive number of seconds",
            ));
        }
        limits.timeout = Duration::from_secs_f64(seconds);
    }
    Ok(limits)
}

/// `{"max-records": 1000, "fsync": True}` as the name/value pairs backends take.
fn backend_options(options: &Bound<'_, PyDict>) -> PyResult<Vec<(String, String)>> {
    let mut pairs = Vec::with_capacity(options.len());
    for (name, value) in options.iter() {
        let name: String = name
            .extract()
            .map_err(|_| PyTypeError::new_err("backend option names must be strings"))?;
        let value = if let Ok(flag) = value.extract::<bool>() {
            flag.to_string()
        } else {
            value.str()?.to_string()
        };
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// A read's filters.
pub fn read_query(
    kinds: Option<Vec<String>>,
    stores: Option<Vec<String>>,
    since: Option<f64>,
    until: Option<f64>,
    limit: Option<usize>,
    newest_first: bool,
) -> ReadQuery {
    ReadQuery {
        kinds: kinds.unwrap_or_default(),
        stores: stores.unwrap_or_default(),
        since,
        until,
        limit,
        newest_first,
    }
}

/// Records to append as JSON lines: each a `str`, UTF-8 `bytes`, or an
/// object `json.dumps` takes (a dict, usually).
pub fn json_lines(records: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let py = records.py();
    if records.is_instance_of::<PyString>()
        || records.is_instance_of::<PyBytes>()
        || records.is_instance_of::<PyDict>()
    {
        return Err(PyTypeError::new_err(
            "append takes a list of records (JSON lines, bytes or dicts), not a single record",
        ));
    }
    let dumps = py.import("json")?.getattr("dumps")?;
    // Compact and UTF-8: the smallest line that reads back the same.
    let compact = PyDict::new(py);
    compact.set_item("separators", (",", ":"))?;
    compact.set_item("ensure_ascii", false)?;
    let mut lines = Vec::new();
    for (i, item) in records.try_iter()?.enumerate() {
        let item = item?;
        let line = if let Ok(text) = item.cast::<PyString>() {
            text.to_str()?.to_owned()
        } else if let Ok(bytes) = item.cast::<PyBytes>() {
            String::from_utf8(bytes.as_bytes().to_vec())
                .map_err(|e| PyValueError::new_err(format!("record {i} is not UTF-8 text: {e}")))?
        } else {
            dumps
                .call((&item,), Some(&compact))
                .map_err(|e| {
                    PyTypeError::new_err(format!(
                        "record {i} is neither a JSON line nor JSON-serializable: {e}"
                    ))
                })?
                .extract()?
        };
        lines.push(line);
    }
    Ok(lines)
}

/// A retention description (a dict with `max_records`, `max_age_seconds`,
/// `max_bytes`, `standard_config`, `stores`, `policies`) as a spec.
pub fn retention_spec(spec: &Bound<'_, PyAny>) -> PyResult<RetentionSpec> {
    let text: String = spec
        .py()
        .import("json")?
        .getattr("dumps")?
        .call1((spec,))?
        .extract()?;
    serde_json::from_str(&text)
        .map_err(|e| PyValueError::new_err(format!("retention is not understood: {e}")))
}

/// A report as plain Python data (dicts, lists, numbers, strings).
pub fn to_python<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| PyValueError::new_err(format!("report could not be encoded: {e}")))?;
    Ok(py
        .import("json")?
        .getattr("loads")?
        .call1((text,))?
        .unbind())
}
