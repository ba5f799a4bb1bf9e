//! Where a store's data is: a file or directory the plugin is granted, or
//! the one server address a network backend may reach.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::StoreConfig;
use crate::wit::BackendInfo;

/// What a store's plugin is granted, and what it is asked to open.
pub(crate) struct Location {
    /// The directory granted (the plugin's root), if any.
    pub data_dir: Option<PathBuf>,
    /// The one server address granted, if any.
    pub network: Option<SocketAddr>,
    /// What to open: a file name or sub-path inside the grant, or the URL.
    pub target: String,
    /// The directories this open created, outermost first: removed again
    /// if the plugin then refuses to open (a mistyped path leaves nothing
    /// behind).
    pub created: Vec<PathBuf>,
}

impl Location {
    /// Removes the directories [`resolve`] created, after the open failed,
    /// while the caller still holds the writer lock whose file is `lock`:
    /// only directories that hold nothing else, innermost first, so a store
    /// another process has started using in the meantime is never touched.
    pub(crate) fn undo(&self, lock: Option<&Path>) {
        let Some(innermost) = self.created.last() else {
            return;
        };
        // (The lock's path may be relative, the created ones are absolute.)
        let lock_name = lock.and_then(Path::file_name);
        let only_the_lock = std::fs::read_dir(innermost).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| lock_name.is_some_and(|l| e.file_name() == l))
        });
        if !only_the_lock {
            return;
        }
        if let Some(lock) = lock {
            let _ = std::fs::remove_file(lock);
        }
        for dir in self.created.iter().rev() {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// A path of the form `SCHEME://IP:PORT[/REST]`: the address to grant.
/// `None` when the path is not a URL at all.
pub(crate) fn network_address(path: &Path) -> Option<std::result::Result<SocketAddr, String>> {
    let text = path.to_str()?;
    let (scheme, rest) = text.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
    {
        return None;
    }
    let host = rest.split('/').next().unwrap_or_default();
    Some(host.parse::<SocketAddr>().map_err(|_| {
        format!(
            "`{host}` is not IP:PORT: a network store is reached at an IP literal \
             (plugins look up no names), e.g. {scheme}://127.0.0.1:6379"
        )
    }))
}

/// Works out what to grant and what to open for `config`.
pub(crate) fn resolve(config: &StoreConfig, info: &BackendInfo) -> Result<Location> {
    if let Some(address) = network_address(&config.path) {
        let address = address.map_err(|message| Error::Path {
            path: config.path.clone(),
            message,
        })?;
        if config.network.is_some_and(|granted| granted != address) {
            return Err(Error::Usage(format!(
                "the store is at {address} but the network grant is {}",
                config.network.expect("checked")
            )));
        }
        return Ok(Location {
            data_dir: None,
            network: Some(address),
            target: config.path.to_string_lossy().into_owned(),
            created: Vec::new(),
        });
    }
    let (data_dir, target, created) = resolve_local(config, info)?;
    Ok(Location {
        data_dir,
        network: config.network,
        target,
        created,
    })
}

/// Works out the directory to grant and the target inside it.
#[allow(clippy::type_complexity)]
fn resolve_local(
    config: &StoreConfig,
    info: &BackendInfo,
) -> Result<(Option<PathBuf>, String, Vec<PathBuf>)> {
    let path = &config.path;
    let bad = |message: String| Error::Path {
        path: path.clone(),
        message,
    };
    if !info.persistent {
        return Ok((None, String::new(), Vec::new()));
    }
    if info.path_is_file {
        if path.is_dir() {
            return Err(bad(format!(
                "is a directory; the `{}` backend stores one file: give a file path",
                info.name
            )));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("has no usable file name".into()))?
            .to_string();
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(bad(format!(
                "directory {} does not exist",
                parent.display()
            )));
        }
        if config.read_only && !path.exists() {
            return Err(bad("does not exist".into()));
        }
        let dir = parent
            .canonicalize()
            .map_err(|e| bad(format!("cannot resolve directory: {e}")))?;
        Ok((Some(dir), name, Vec::new()))
    } else {
        if path.is_file() {
            return Err(bad(format!(
                "is a file; the `{}` backend stores a directory",
                info.name
            )));
        }
        let mut created = Vec::new();
        if !path.exists() {
            if config.read_only {
                return Err(bad("does not exist".into()));
            }
            created = create_dir_durably(path, None, config)
                .map_err(|e| bad(format!("cannot create directory: {e}")))?;
        }
        let dir = path
            .canonicalize()
            .map_err(|e| bad(format!("cannot resolve directory: {e}")))?;
        Ok((Some(dir), String::new(), created))
    }
}

/// Creates `path` (never through a link inside `grant`) and syncs each
/// parent that gained an entry, so the directory survives power loss before
/// the plugin writes into it.
pub(crate) fn create_dir_durably(
    path: &Path,
    grant: Option<&Path>,
    #[allow(unused_variables)] config: &StoreConfig,
) -> std::io::Result<Vec<PathBuf>> {
    let created = crate::grant_paths::create_dir_within(path, grant)?;
    for created in &created {
        let parent = created.parent().unwrap_or(Path::new("/"));
        let dir = std::fs::File::open(parent)?;
        dir.sync_all()?;
        #[cfg(feature = "test-support")]
        if let Some(tracker) = &config.sync_tracker {
            tracker.note_dir(&dir);
        }
    }
    Ok(created)
}
