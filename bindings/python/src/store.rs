//! `quire.Store`: an open store. Every call that touches storage or a
//! plugin releases the GIL, so other Python threads (and asyncio's
//! `to_thread` workers appending at once, which group-commit) run meanwhile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use quire::progress::Silent;
use quire::{RecoveryMode, RecoveryOptions, StartupMode};

use crate::convert::{self, OpenArgs};
use crate::errors::{Raised, StoreClosedError};

/// An open quire store: any backend (a built-in name such as `ndjson`,
/// `rotating`, `segmented`, `memory`, or the path of a `.wasm` component).
#[pyclass(frozen, module = "quire")]
pub struct Store {
    /// `None` once closed. Calls clone the `Arc` and run without the mutex.
    inner: Mutex<Option<Arc<quire::Store>>>,
    info: quire::BackendInfo,
    path: PathBuf,
    read_only: bool,
}

impl Store {
    fn open(&self) -> PyResult<Arc<quire::Store>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreClosedError::new_err(format!("the store at {} is closed", self.path.display()))
            })
    }

    /// Runs `f` on the store without the GIL.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&quire::Store) -> quire::Result<T> + Send,
    ) -> PyResult<T> {
        let store = self.open()?;
        py.detach(|| f(&store)).map_err(|e| Raised(e).into())
    }
}

#[pymethods]
impl Store {
    /// Opens (creating if needed) the store at `path` with `backend`.
    #[new]
    #[pyo3(signature = (
        backend = "ndjson".to_string(),
        path = None,
        *,
        read_only = false,
        durability = "per-write".to_string(),
        options = None,
        quarantine_dir = None,
        network = None,
        memory_mib = None,
        timeout_seconds = None,
        cache_dir = None,
        cache = true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        backend: String,
        path: Option<PathBuf>,
        read_only: bool,
        durability: String,
        options: Option<Bound<'_, PyDict>>,
        quarantine_dir: Option<PathBuf>,
        network: Option<String>,
        memory_mib: Option<usize>,
        timeout_seconds: Option<f64>,
        cache_dir: Option<PathBuf>,
        cache: bool,
    ) -> PyResult<Self> {
        let config = OpenArgs {
            backend,
            path,
            read_only,
            durability,
            options,
            quarantine_dir,
            network,
            memory_mib,
            timeout_seconds,
            cache_dir,
            cache,
        }
        .config()?;
        let path = config.path.clone();
        // Opening may compile a component (seconds, the first time).
        let store = py.detach(|| quire::Store::open(config)).map_err(Raised)?;
        Ok(Store {
            info: store.backend().clone(),
            inner: Mutex::new(Some(Arc::new(store))),
            path,
            read_only,
        })
    }

    /// The backend: name, version, description, whether the path is a
    /// file, whether data persists, and what its checksums protect.
    #[getter]
    fn backend<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = PyDict::new(py);
        info.set_item("name", &self.info.name)?;
        info.set_item("version", &self.info.version)?;
        info.set_item("description", &self.info.description)?;
        info.set_item("path_is_file", self.info.path_is_file)?;
        info.set_item("persistent", self.info.persistent)?;
        info.set_item("integrity", &self.info.integrity)?;
        Ok(info)
    }

    /// The data file or directory (a `pathlib.Path`), or the server's
    /// address as given (`redis://IP:PORT`, a `str`: a path would fold its `//`).
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.path.to_string_lossy();
        if text.contains("://") {
            Ok(text.into_owned().into_pyobject(py)?.into_any())
        } else {
            Ok(self.path.clone().into_pyobject(py)?.into_any())
        }
    }

    /// Whether the store was opened without write access.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.open().is_err()
    }

    /// Appends records (JSON lines, UTF-8 bytes, or dicts), all or none;
    /// returns when they are as durable as the store's durability says.
    /// Returns how many were appended.
    fn append(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<usize> {
        let lines = convert::json_lines(records)?;
        let count = lines.len();
        self.call(py, move |store| {
            let now = quire::now();
            let records = lines
                .into_iter()
                .enumerate()
                .map(|(i, line)| {
                    quire::Record::from_json_string(line, now).map_err(|e| match e {
                        // Name the record: nothing of the batch was appended.
                        quire::Error::InvalidRecord(why) => quire::Error::InvalidRecord(format!(
                            "record {i} of {count} (none appended): {why}"
                        )),
                        other => other,
                    })
                })
                .collect::<quire::Result<Vec<_>>>()?;
            store.append(records)
        })?;
        Ok(count)
    }

    /// Matching records as dicts, oldest first (`limit` = the newest N).
    #[pyo3(signature = (*, kinds=None, stores=None, since=None, until=None, limit=None, newest_first=false))]
    #[allow(clippy::too_many_arguments)]
    fn read<'py>(
        &self,
        py: Python<'py>,
        kinds: Option<Vec<String>>,
        stores: Option<Vec<String>>,
        since: Option<f64>,
        until: Option<f64>,
        limit: Option<usize>,
        newest_first: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let lines = self.read_lines(py, kinds, stores, since, until, limit, newest_first)?;
        let loads = py.import("json")?.getattr("loads")?;
        let records = PyList::empty(py);
        for line in lines {
            records.append(loads.call1((line,))?)?;
        }
        Ok(records)
    }

    /// As `read`, each record as its stored JSON text.
    #[pyo3(signature = (*, kinds=None, stores=None, since=None, until=None, limit=None, newest_first=false))]
    #[allow(clippy::too_many_arguments)]
    fn read_lines(
        &self,
        py: Python<'_>,
        kinds: Option<Vec<String>>,
        stores: Option<Vec<String>>,
        since: Option<f64>,
        until: Option<f64>,
        limit: Option<usize>,
        newest_first: bool,
    ) -> PyResult<Vec<String>> {
        let query = convert::read_query(kinds, stores, since, until, limit, newest_first);
        self.call(py, move |store| {
            let mut lines = Vec::new();
            store.read(&query, |record| {
                lines.push(record.json.to_owned());
                Ok(())
            })?;
            Ok(lines)
        })
    }

    /// Validates every record without changing anything.
    fn scan(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let report = self.call(py, |store| store.scan(&Silent))?;
        convert::to_python(py, &report)
    }

    /// Rewrites damaged units keeping every valid record (`repair`), or
    /// copies the originals to the quarantine directory first (`quarantine`).
    #[pyo3(signature = (mode = "repair", *, keep_unverified = false))]
    fn recover(&self, py: Python<'_>, mode: &str, keep_unverified: bool) -> PyResult<Py<PyAny>> {
        let options = RecoveryOptions {
            mode: recovery_mode(mode)?,
            keep_unverified,
        };
        let report = self.call(py, move |store| store.recover_with(options, &Silent))?;
        convert::to_python(py, &report)
    }

    /// Applies retention physically; one report per policy run. `retention`
    /// is a dict: `max_records`, `max_age_seconds`, `max_bytes`,
    /// `standard_config`, `stores` ({store: {"plugin", "config"}}) and
    /// `policies` ([{"plugin": "./keep.wasm", "config": "{}"}]).
    #[pyo3(signature = (retention, *, dry_run = false))]
    fn compact(
        &self,
        py: Python<'_>,
        retention: &Bound<'_, PyAny>,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let spec = convert::retention_spec(retention)?;
        let reports = self.call(py, move |store| {
            let config = store.config();
            let mut runs = spec.runs(config.limits, config.cache_dir.as_deref(), quire::now())?;
            runs.iter_mut()
                .map(|run| store.compact(run, dry_run, &Silent))
                .collect::<quire::Result<Vec<_>>>()
        })?;
        convert::to_python(py, &reports)
    }

    /// Units, records, kinds, stores, time range and receipts.
    fn inspect(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let report = self.call(py, |store| store.inspect(&Silent))?;
        convert::to_python(py, &report)
    }

    /// Where acknowledged records stand: synced, unsynced, buffered.
    fn durability(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let report = self.call(py, |store| store.durability())?;
        convert::to_python(py, &report)
    }

    /// The store's counters (appends, bytes, syncs, scans, faults, ...).
    fn metrics(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::to_python(py, &self.open()?.metrics())
    }

    /// Sets every counter back to zero.
    fn reset_metrics(&self) -> PyResult<()> {
        self.open()?.metrics_handle().reset();
        Ok(())
    }

    /// What opening found and repaired (a torn tail, say).
    fn open_report(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::to_python(py, &self.open()?.open_report())
    }

    /// Makes every acknowledged record durable.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |store| store.flush())
    }

    /// Seals the live unit (backends with units) after making it durable.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |store| store.checkpoint())
    }

    /// `ignore`, `scan-only`, `recover` or `fail-on-anomaly`, as an actor
    /// system's startup runs it; the report's `ok` says whether to go on.
    #[pyo3(signature = (mode = "fail-on-anomaly", recovery = "repair"))]
    fn startup_check(&self, py: Python<'_>, mode: &str, recovery: &str) -> PyResult<Py<PyAny>> {
        let mut mode: StartupMode = mode.parse().map_err(Raised)?;
        if let StartupMode::Recover(_) = mode {
            mode = StartupMode::Recover(recovery_mode(recovery)?);
        }
        let report = self.call(py, move |store| store.startup_check(mode, &Silent))?;
        convert::to_python(py, &report)
    }

    /// Flushes and releases the store (and its writer lock), after the calls
    /// already running have returned; later calls raise `StoreClosedError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(store) = taken {
            py.detach(|| {
                let result = store.flush();
                // Calls already running hold clones: the store (and its
                // writer lock) goes when the last of them returns.
                while Arc::strong_count(&store) > 1 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                drop(store);
                result
            })
            .map_err(Raised)?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "quire.Store(backend={:?}, path={:?}{}{})",
            self.info.name,
            self.path.display().to_string(),
            if self.read_only {
                ", read_only=True"
            } else {
                ""
            },
            if self.closed() { ", closed" } else { "" }
        )
    }
}

fn recovery_mode(mode: &str) -> PyResult<RecoveryMode> {
    match mode {
        "repair" => Ok(RecoveryMode::Repair),
        "quarantine" => Ok(RecoveryMode::Quarantine),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "recovery mode `{other}`: use repair or quarantine"
        ))),
    }
}
