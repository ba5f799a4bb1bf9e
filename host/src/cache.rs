//! The compiled-component cache.
//!
//! `Component::deserialize` runs native code from its input, so the cache
//! only ever reads files this host wrote: a file name is the SHA-256 of the
//! engine's compatibility hash and the component bytes, and files are
//! written to a temporary name and renamed into place.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept, unless overridden.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("QUIRE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("quire").join("components"))
}

/// The cache key of `bytes` under `engine`.
pub fn key(engine: &Engine, bytes: &[u8]) -> String {
    struct Feed<'a>(&'a mut Sha256);
    impl Hasher for Feed<'_> {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut digest = Sha256::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut Feed(&mut digest));
    digest.update(bytes);
    format!("{:x}", digest.finalize())
}

/// Outcome of a load, for `plugin check` and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Deserialized from the cache.
    Hit,
    /// Compiled, then stored.
    Stored,
    /// Compiled; no cache directory (or it was not writable).
    Bypassed,
}

/// Loads `bytes` as a component, from the cache when possible.
pub fn load(
    engine: &Engine,
    bytes: &[u8],
    dir: Option<&Path>,
) -> anyhow::Result<(Component, CacheUse)> {
    let Some(dir) = dir else {
        return Ok((
            Component::new(engine, bytes).map_err(wasm_err)?,
            CacheUse::Bypassed,
        ));
    };
    let path = dir.join(format!("{}.cwasm", key(engine, bytes)));
    if path.is_file() {
        // SAFETY: the file is named by the digest of the engine and the
        // component, and only `store` below writes such names.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, CacheUse::Hit)),
            Err(e) => tracing::warn!("ignoring unreadable cache entry {}: {e:#}", path.display()),
        }
    }
    let component = Component::new(engine, bytes).map_err(wasm_err)?;
    match store(&component, dir, &path) {
        Ok(()) => Ok((component, CacheUse::Stored)),
        Err(e) => {
            tracing::warn!(
                "could not write the component cache at {}: {e:#}",
                dir.display()
            );
            Ok((component, CacheUse::Bypassed))
        }
    }
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let serialized = component.serialize().map_err(wasm_err)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, &serialized)?;
    temp.as_file().sync_all()?;
    temp.persist(path)?;
    Ok(())
}

fn wasm_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}
