//! `quire plugin check`: load a component and say what it is.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use crate::plugin::{self, LoadedAny, PluginSource};
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
    let described = match plugin::load_any(&source, cache.as_deref())? {
        LoadedAny::Backend(loaded) => {
            // Instantiates it: a component that links but cannot start fails here.
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
        LoadedAny::Policy(loaded) => {
            let description =
                match crate::Policy::create(&loaded, "", crate::now(), Limits::default()) {
                    Ok(policy) => policy.description,
                    // It started and refused an empty configuration: it works, it needs options.
                    Err(e @ Error::Plugin { .. }) => format!("(needs configuration: {e})"),
                    Err(e) => return Err(e),
                };
            Described {
                plugin: loaded.label.clone(),
                role: "retention policy",
                wit: format!("{}@{}", crate::WIT_PACKAGE, loaded.pre.version()),
                name: None,
                version: None,
                description,
                compile_cache: format!("{:?}", loaded.cache),
            }
        }
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
