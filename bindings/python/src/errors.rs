//! The exception hierarchy: one Python class per `quire::Error` variant,
//! all under `quire.QuireError`, so callers catch as narrowly as they like.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    quire,
    QuireError,
    PyException,
    "Base class of every quire error."
);
create_exception!(
    quire,
    PluginError,
    QuireError,
    "A plugin returned an error of its own."
);
create_exception!(
    quire,
    PluginLoadError,
    PluginError,
    "A plugin could not be loaded."
);
create_exception!(
    quire,
    PluginFaultError,
    PluginError,
    "A plugin trapped, ran out of time or memory, or returned something impossible; it was restarted and no data was changed by the failed call."
);
create_exception!(
    quire,
    UnsupportedError,
    PluginError,
    "The backend does not implement the operation."
);
create_exception!(
    quire,
    StorePathError,
    QuireError,
    "The data path is unusable."
);
create_exception!(
    quire,
    StoreLockedError,
    QuireError,
    "Another process holds the store's write lock."
);
create_exception!(
    quire,
    InvalidRecordError,
    QuireError,
    "A record given to append is not acceptable."
);
create_exception!(
    quire,
    UsageError,
    QuireError,
    "An option or argument is not acceptable."
);
create_exception!(
    quire,
    NotRecoveredError,
    QuireError,
    "Recovery ran but a re-scan still finds anomalies."
);
create_exception!(quire, StoreClosedError, QuireError, "The store was closed.");

/// A library error on its way to Python (the orphan rule keeps `From`
/// off `quire::Error` itself).
pub struct Raised(pub quire::Error);

impl From<quire::Error> for Raised {
    fn from(e: quire::Error) -> Self {
        Raised(e)
    }
}

impl From<Raised> for PyErr {
    fn from(Raised(e): Raised) -> PyErr {
        use quire::Error as E;
        // `{:#}` keeps anyhow's context chain in the message.
        let message = match &e {
            E::Other(inner) => format!("{inner:#}"),
            other => other.to_string(),
        };
        match e {
            E::Load { .. } => PluginLoadError::new_err(message),
            E::Plugin { .. } => PluginError::new_err(message),
            E::Unsupported { .. } => UnsupportedError::new_err(message),
            E::Fault { .. } => PluginFaultError::new_err(message),
            E::Path { .. } => StorePathError::new_err(message),
            E::Locked { .. } => StoreLockedError::new_err(message),
            E::InvalidRecord(_) => InvalidRecordError::new_err(message),
            E::Usage(_) => UsageError::new_err(message),
            E::NotRecovered { .. } => NotRecoveredError::new_err(message),
            E::Other(_) => QuireError::new_err(message),
        }
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("QuireError", py.get_type::<QuireError>())?;
    m.add("PluginError", py.get_type::<PluginError>())?;
    m.add("PluginLoadError", py.get_type::<PluginLoadError>())?;
    m.add("PluginFaultError", py.get_type::<PluginFaultError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("StorePathError", py.get_type::<StorePathError>())?;
    m.add("StoreLockedError", py.get_type::<StoreLockedError>())?;
    m.add("InvalidRecordError", py.get_type::<InvalidRecordError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("NotRecoveredError", py.get_type::<NotRecoveredError>())?;
    m.add("StoreClosedError", py.get_type::<StoreClosedError>())?;
    Ok(())
}
