//! `quire._quire`: the Rust core of the `quire` Python package. This file
//! only registers; `store.rs` is the store, `convert.rs` turns Python
//! arguments into the library's types, `errors.rs` the exceptions.
#![deny(missing_docs)]

use pyo3::prelude::*;

mod convert;
mod errors;
mod store;

/// The extension module.
#[pymodule]
fn _quire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add("WIT_VERSION", quire::WIT_VERSION)?;
    m.add("BUILTIN_BACKENDS", quire::builtin::BACKENDS.to_vec())?;
    m.add("BUILTIN_POLICIES", quire::builtin::POLICIES.to_vec())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    Ok(())
}
