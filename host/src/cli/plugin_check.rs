//! `quire plugin check`: load a component and say what it is.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use crate::plugin::{self, PluginSource};
use crate::{Error, Limits, Result};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Load a component, check its WIT version and world, and describe it.
    Check {
        /// The component (.wasm) or a built-in name.
        plugin: String,
        /// Compiled-component cache directory.
        #[arg(long, env = "QUIRE_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Described {
    plugin: String,
    role: &'static str,
    wit: String,
    name: Option<String>,
    version: Option<String>,
    description: String,
    compile_cache: String,
}

pub fn run(command: PluginCommand) -> Result<i32> {
    let PluginCommand::Check {
        plugin: text,
        cache_dir,
        json,
    } = command;
    let source = PluginSource::parse(&text);
    let cache = cache_dir.or_else(crate::cache::default_dir);
    let described = match plugin::load_backend(&source, cache.as_deref()) {
        Ok(loaded) => {
            let info = crate::backend_info(&loaded, Limits::default())?;
            Described {
                plugin: loaded.label.clone(),
                role: "backend",
                wit: format!("{}@{}", crate::WIT_PACKAGE, loaded.pre.version()),
                name: Some(info.name),
                version: Some(info.version),
                description: info.description,
                compile_cache: format!("{:?}", loaded.cache),
            }
        }
        Err(Error::Load { message, .. })
            if message.contains("another kind") || message.contains("no built-in") =>
        {
            let loaded = plugin::load_policy(&source, cache.as_deref())?;
            let policy = crate::Policy::create(&loaded, "", crate::now(), Limits::default());
            Described {
                plugin: loaded.label.clone(),
                role: "retention policy",
                wit: format!("{}@{}", crate::WIT_PACKAGE, loaded.pre.version()),
                name: None,
                version: None,
                description: policy
                    .map(|p| p.description)
                    .unwrap_or_else(|e| format!("(needs configuration: {e})")),
                compile_cache: format!("{:?}", loaded.cache),
            }
        }
        Err(e) => return Err(e),
    };
    if json {
        super::output::json(&described);
    } else {
        outln!(
            "{}: {} plugin for {}",
            described.plugin,
            described.role,
            described.wit
        );
        if let (Some(n), Some(v)) = (&described.name, &described.version) {
            outln!("  name {n}, version {v}");
        }
        outln!("  {}", described.description);
        outln!("  compile cache: {}", described.compile_cache);
    }
    Ok(0)
}
