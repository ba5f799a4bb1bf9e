//! checkpoint, receipts, migrate.

use std::path::PathBuf;

use clap::Args;

use super::args::{RunArgs, StoreArgs};
use super::output::{self, Bar};
use crate::migrate::{MigrateOptions, migrate as run_migration};
use crate::{Durability, ReceiptFilter, ReceiptKind, Result, StoreConfig};

#[derive(Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    store: StoreArgs,
}

/// Seals every live unit.
pub fn checkpoint(a: CheckpointArgs) -> Result<i32> {
    let store = a.store.open(false)?;
    let live_before = store.units()?.iter().filter(|u| !u.sealed).count();
    store.checkpoint()?;
    if a.store.run.json {
        output::json(&serde_json::json!({ "sealed": live_before }));
    } else {
        outln!("sealed {live_before} live units");
    }
    Ok(0)
}

#[derive(Args)]
pub struct ReceiptsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only receipts of this store (repeatable).
    #[arg(long)]
    store_name: Vec<String>,
    /// Only `purged` or `quarantined` receipts.
    #[arg(long)]
    kind: Option<String>,
    /// Only receipts written at or after SINCE (unix seconds).
    #[arg(long)]
    since: Option<f64>,
    /// Only receipts written at or before UNTIL (unix seconds).
    #[arg(long)]
    until: Option<f64>,
    /// At most N, oldest first.
    #[arg(long)]
    limit: Option<u32>,
}

/// Lists purge and quarantine receipts.
pub fn receipts(a: ReceiptsArgs) -> Result<i32> {
    let kinds = match a.kind.as_deref() {
        None => vec![],
        Some("purged") => vec![ReceiptKind::Purged],
        Some("quarantined") => vec![ReceiptKind::Quarantined],
        Some(other) => {
            return Err(crate::Error::Usage(format!(
                "--kind `{other}`: use purged or quarantined"
            )));
        }
    };
    let store = a.store.open(true)?;
    let receipts = store.receipts(&ReceiptFilter {
        stores: a.store_name,
        kinds,
        since: a.since,
        until: a.until,
        limit: a.limit,
    })?;
    let entries: Vec<crate::report::ReceiptEntry> = receipts
        .iter()
        .map(crate::report::ReceiptEntry::from)
        .collect();
    if a.store.run.json {
        output::json(&entries);
    } else {
        for r in &entries {
            outln!(
                "{} {} {} (store {}): {}",
                r.at,
                r.kind,
                r.unit,
                r.store.as_deref().unwrap_or("-"),
                r.details
            );
        }
        outln!("{} receipts", entries.len());
    }
    Ok(0)
}

#[derive(Args)]
pub struct MigrateArgs {
    /// Source backend: a built-in name or a .wasm component.
    #[arg(long)]
    from_backend: String,
    /// Source data path.
    #[arg(long)]
    from_path: Option<PathBuf>,
    /// Source backend option NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    from_option: Vec<String>,
    /// Target backend: a built-in name or a .wasm component.
    #[arg(long)]
    to_backend: String,
    /// Target data path.
    #[arg(long)]
    to_path: Option<PathBuf>,
    /// Target backend option NAME=VALUE (repeatable), e.g. codec=compact.
    #[arg(long, value_name = "NAME=VALUE")]
    to_option: Vec<String>,
    /// Copy every valid record even when the source has anomalies.
    #[arg(long)]
    skip_damaged: bool,
    /// Plugin limits and cache, and --json.
    #[command(flatten)]
    run: RunArgs,
}

fn side(run: &RunArgs, backend: &str, path: &Option<PathBuf>, options: &[String]) -> StoreArgs {
    StoreArgs {
        backend: backend.to_string(),
        path: path.clone(),
        options: options.to_vec(),
        run: run.clone(),
    }
}

/// Copies every record from one backend to another.
pub fn migrate(a: MigrateArgs) -> Result<i32> {
    let from = side(&a.run, &a.from_backend, &a.from_path, &a.from_option).open(true)?;
    let mut to_config: StoreConfig =
        side(&a.run, &a.to_backend, &a.to_path, &a.to_option).config(false)?;
    // One sync at the end, not one per batch.
    to_config.durability = Durability::Batch;
    let to = crate::Store::open(to_config)?;
    if !to.backend().persistent {
        eprintln!(
            "note: the `{}` backend keeps nothing after this process exits",
            to.backend().name
        );
    }
    let report = run_migration(
        &from,
        &to,
        MigrateOptions {
            skip_damaged: a.skip_damaged,
        },
        &Bar::new(),
    )?;
    if a.run.json {
        output::json(&report);
    } else {
        outln!(
            "migrated {} records from {} to {} ({} in the target before, {} after)",
            report.records_written,
            report.from_backend,
            report.to_backend,
            report.target_records_before,
            report.target_records_after
        );
        for (store, n) in &report.stores {
            outln!("  store {store}: {n}");
        }
        for (kind, n) in &report.kinds {
            outln!("  kind {kind}: {n}");
        }
        if report.source_anomalies > 0 {
            outln!(
                "  left behind: the records of {} anomalies in the source",
                report.source_anomalies
            );
        }
    }
    Ok(0)
}
