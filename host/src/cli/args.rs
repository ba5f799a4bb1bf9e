//! Arguments shared by the commands that open a store.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::{Error, Limits, PluginSource, Result, Store, StoreConfig};

/// Which data, through which backend, under which limits.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Data path: a file for the ndjson backend, a directory for directory backends,
    /// `redis://IP:PORT[/DB]` for the redis backend (the only address it may reach).
    #[arg(long, short = 'p')]
    pub path: Option<PathBuf>,
    #[arg(long, short = 'b', default_value = "ndjson", help = crate::builtin::BACKEND_HELP)]
    pub backend: String,
    /// Backend option NAME=VALUE (repeatable).
    #[arg(long = "option", short = 'o', value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// Plugin limits, compile cache and output format.
    #[command(flatten)]
    pub run: RunArgs,
}

/// How plugins run and how reports print: shared by every command.
#[derive(Args, Clone)]
pub struct RunArgs {
    /// Compiled-component cache directory (default: $QUIRE_CACHE_DIR or ~/.cache/quire/components).
    #[arg(long, env = "QUIRE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not use the compiled-component cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Most memory a plugin may use, in MiB.
    #[arg(long, default_value_t = 512)]
    pub plugin_memory_mib: usize,
    /// Longest a single plugin call may take, in seconds of wall-clock time
    /// (computing, sleeping and waiting on I/O all count).
    #[arg(long, default_value_t = 30.0)]
    pub plugin_timeout: f64,
    /// Most handles (files, directories, streams, pollables) a plugin may hold at once.
    #[arg(long, default_value_t = 1024)]
    pub plugin_handles: usize,
    /// Print the report as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

impl RunArgs {
    pub fn cache(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(crate::cache::default_dir)
        }
    }

    pub fn limits(&self) -> Result<Limits> {
        if !(self.plugin_timeout > 0.0 && self.plugin_timeout.is_finite()) {
            return Err(Error::Usage(
                "--plugin-timeout must be a positive number of seconds".into(),
            ));
        }
        if self.plugin_handles < 8 {
            return Err(Error::Usage(
                "--plugin-handles must be at least 8 (a plugin needs a few to open its data)"
                    .into(),
            ));
        }
        Ok(Limits {
            memory_bytes: self.plugin_memory_mib << 20,
            timeout: Duration::from_secs_f64(self.plugin_timeout),
            open_handles: self.plugin_handles,
        })
    }
}

impl StoreArgs {
    pub fn cache(&self) -> Option<PathBuf> {
        self.run.cache()
    }

    pub fn limits(&self) -> Result<Limits> {
        self.run.limits()
    }

    pub fn source(&self) -> PluginSource {
        PluginSource::parse(&self.backend)
    }

    /// The store configuration, read-only or read-write.
    pub fn config(&self, read_only: bool) -> Result<StoreConfig> {
        let source = self.source();
        let path = match &self.path {
            Some(p) => p.clone(),
            None if source == PluginSource::Builtin("memory".into()) => PathBuf::new(),
            None => {
                return Err(Error::Usage(
                    "--path is required (the data file or directory)".into(),
                ));
            }
        };
        let mut config = StoreConfig::new(source, path);
        config.read_only = read_only;
        config.cache_dir = self.cache();
        config.limits = self.limits()?;
        config.options = self
            .options
            .iter()
            .map(|o| {
                o.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| Error::Usage(format!("--option `{o}` must be NAME=VALUE")))
            })
            .collect::<Result<_>>()?;
        Ok(config)
    }

    pub fn open(&self, read_only: bool) -> Result<Store> {
        Store::open(self.config(read_only)?)
    }
}
