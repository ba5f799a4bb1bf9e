//! scan, recover, compact, startup-check, doctor.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::args::StoreArgs;
use super::output::{self, Bar};
use crate::plugin;

use crate::{
    Error, PolicySpec, RecoveryMode, RecoveryOptions, Result, RetentionSpec, StartupMode, Store,
    now,
};

const HEALTHY: i32 = 0;
const ANOMALIES: i32 = 2;

#[derive(Args)]
pub struct ScanArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub fn scan(a: ScanArgs) -> Result<i32> {
    let store = a.store.open(true)?;
    let report = store.scan(&Bar::new())?;
    if a.store.run.json {
        output::json(&report)
    } else {
        output::scan_text(&report)
    }
    Ok(if report.healthy() { HEALTHY } else { ANOMALIES })
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Repair,
    Quarantine,
}

impl From<Mode> for RecoveryMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Repair => RecoveryMode::Repair,
            Mode::Quarantine => RecoveryMode::Quarantine,
        }
    }
}

#[derive(Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// repair: rewrite keeping every valid record; quarantine: keep the damaged original aside first.
    #[arg(long, value_enum, default_value = "repair")]
    mode: Mode,
    /// Where quarantined originals (and their receipts) go; required by quarantine mode.
    #[arg(long)]
    quarantine_dir: Option<PathBuf>,
    /// Keep records whose checksums no longer vouch for them (reported as
    /// unverified) instead of dropping them from the live history.
    #[arg(long)]
    keep_unverified: bool,
}

fn open_for_recovery(
    store: &StoreArgs,
    mode: Mode,
    quarantine_dir: &Option<PathBuf>,
) -> Result<Store> {
    if matches!(mode, Mode::Quarantine) && quarantine_dir.is_none() {
        return Err(Error::Usage(
            "--mode quarantine needs --quarantine-dir DIR (where the damaged originals are kept)"
                .into(),
        ));
    }
    let mut config = store.config(false)?;
    config.quarantine_dir = quarantine_dir.clone();
    Store::open(config)
}

pub fn recover(a: RecoverArgs) -> Result<i32> {
    let store = open_for_recovery(&a.store, a.mode, &a.quarantine_dir)?;
    let options = RecoveryOptions {
        mode: a.mode.into(),
        keep_unverified: a.keep_unverified,
    };
    let report = store.recover_with(options, &Bar::new())?;
    if a.store.run.json {
        output::json(&report)
    } else {
        output::recovery_text(&report)
    }
    Ok(if report.after.healthy() {
        HEALTHY
    } else {
        ANOMALIES
    })
}

#[derive(Args)]
pub struct CompactArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Keep only the newest N records.
    #[arg(long)]
    max_records: Option<u64>,
    /// Drop records older than this many seconds.
    #[arg(long)]
    max_age: Option<f64>,
    /// Keep the newest records that fit in this many bytes on disk.
    #[arg(long)]
    max_bytes: Option<u64>,
    /// Configuration JSON for the standard policy (e.g. per-kind overrides:
    /// '{"per_kind": {"audit": {"max_records": 10}}}') and for --retention plugins.
    #[arg(long, value_name = "JSON")]
    retention_config: Option<String>,
    /// A retention policy component to apply (repeatable; applied in order, after the standard limits).
    #[arg(long, value_name = "PLUGIN.wasm")]
    retention: Vec<PathBuf>,
    /// Retention for one store (repeatable): STORE=permanent, STORE=rolling-window:7d[:exact],
    /// STORE=ephemeral[:N], or STORE=PLUGIN.wasm[:JSON]. Stores without one follow the
    /// standard limits above, or are kept.
    #[arg(long, value_name = "STORE=POLICY")]
    retain: Vec<String>,
    /// Report what would change without changing anything.
    #[arg(long)]
    dry_run: bool,
}

/// The flags as a [`RetentionSpec`]. `--retention-config` configures the
/// standard policy, or the `--retention` components when no limit is given.
fn retention_spec(a: &CompactArgs) -> Result<RetentionSpec> {
    let mut spec = RetentionSpec::standard(a.max_records, a.max_age, a.max_bytes);
    let config = match &a.retention_config {
        Some(text) => Some(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).map_err(
                |e| Error::Usage(format!("--retention-config is not a JSON object: {e}")),
            )?,
        ),
        None => None,
    };
    let plugins_take_config = !a.retention.is_empty()
        && a.max_records.is_none()
        && a.max_age.is_none()
        && a.max_bytes.is_none();
    if !plugins_take_config {
        spec.standard_config = config;
    }
    for retain in &a.retain {
        let usage = || {
            Error::Usage(format!(
                "--retain `{retain}`: expected STORE=permanent, STORE=rolling-window:7d[:exact], \
                 STORE=ephemeral[:N] or STORE=PLUGIN.wasm[:JSON]"
            ))
        };
        let (store, policy) = retain.split_once('=').ok_or_else(usage)?;
        if store.is_empty() {
            return Err(usage());
        }
        let policy = PolicySpec::parse(policy).map_err(|_| usage())?;
        // The name is not empty (checked above): only a second policy fails.
        spec.retain(store, policy)
            .map_err(|_| Error::Usage(format!("--retain names store `{store}` twice")))?;
    }
    for path in &a.retention {
        let config = a.retention_config.clone().unwrap_or_default();
        spec.then(PolicySpec::file(path, config)?);
    }
    Ok(spec)
}

pub fn compact(a: CompactArgs) -> Result<i32> {
    let spec = retention_spec(&a)?;
    let mut runs = spec.runs(a.store.limits()?, a.store.cache().as_deref(), now())?;
    let store = a.store.open(a.dry_run)?;
    let mut reports = Vec::new();
    for retention in &mut runs {
        let report = store.compact(retention, a.dry_run, &Bar::new())?;
        if !a.store.run.json {
            output::compaction_text(&report);
        }
        reports.push(report);
    }
    if a.store.run.json {
        if reports.len() == 1 {
            output::json(&reports[0])
        } else {
            output::json(&reports)
        }
    }
    Ok(HEALTHY)
}

#[derive(Args)]
pub struct StartupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// ignore, scan-only, recover or fail-on-anomaly.
    #[arg(long, default_value = "fail-on-anomaly")]
    mode: String,
    /// How `--mode recover` recovers.
    #[arg(long, value_enum, default_value = "repair")]
    recovery_mode: Mode,
    /// Quarantine directory for `--recovery-mode quarantine`.
    #[arg(long)]
    quarantine_dir: Option<PathBuf>,
}

pub fn startup_check(a: StartupArgs) -> Result<i32> {
    let mut mode: StartupMode = a.mode.parse()?;
    if let StartupMode::Recover(_) = mode {
        mode = StartupMode::Recover(a.recovery_mode.into());
    }
    let store = match mode {
        StartupMode::Recover(_) => open_for_recovery(&a.store, a.recovery_mode, &a.quarantine_dir)?,
        _ => a.store.open(true)?,
    };
    let report = store.startup_check(mode, &Bar::new())?;
    if a.store.run.json {
        output::json(&report);
    } else {
        if let Some(scan) = &report.scan {
            output::scan_text(scan);
        }
        if let Some(recovery) = &report.recovery {
            output::recovery_text(recovery);
        }
        outln!(
            "startup check ({}): {}",
            report.mode,
            if report.ok { "ok" } else { "FAILED" }
        );
    }
    Ok(if report.ok { HEALTHY } else { ANOMALIES })
}

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Recover when anomalies are found (without it, doctor only diagnoses).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Quarantine directory for `--mode quarantine`.
    #[arg(long)]
    quarantine_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Check {
    check: String,
    ok: bool,
    detail: String,
}

pub fn doctor(a: DoctorArgs) -> Result<i32> {
    let mut checks = Vec::new();
    let mut push = |check: &str, result: std::result::Result<String, String>| {
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        checks.push(Check {
            check: check.into(),
            ok,
            detail,
        });
        ok
    };
    let cache = a.store.cache();
    let plugin_ok = push(
        "plugin loads",
        plugin::load_backend(&a.store.source(), cache.as_deref())
            .map(|l| format!("{} ({:?} compile cache)", l.label, l.cache))
            .map_err(|e| e.to_string()),
    );
    let path_ok = plugin_ok
        && push(
            "data path",
            match a
                .store
                .path
                .as_ref()
                .map(|p| (p, crate::location::network_address(p)))
            {
                // A server: the open below is what reaches it.
                Some((p, Some(addr))) => {
                    addr.map(|a| format!("{} is the server at {a}", p.display()))
                }
                Some((p, None)) if p.exists() => Ok(format!("{} exists", p.display())),
                Some((p, None)) => Err(format!("{} does not exist", p.display())),
                None => Err("no --path given".into()),
            },
        );
    let mut remaining = 0;
    if path_ok {
        let store = match a.mode {
            Some(mode) => open_for_recovery(&a.store, mode, &a.quarantine_dir),
            None => a.store.open(true),
        };
        match store {
            Err(e) => {
                push("open", Err(e.to_string()));
                remaining = usize::MAX;
            }
            Ok(store) => {
                push(
                    "open",
                    Ok(format!(
                        "backend {} {}",
                        store.backend().name,
                        store.backend().version
                    )),
                );
                let scan = store.scan(&Bar::new())?;
                remaining = scan.anomaly_count as usize;
                push(
                    "scan",
                    if scan.healthy() {
                        Ok(format!("{} valid records", scan.records))
                    } else {
                        Err(format!(
                            "{} anomalies, first: {}",
                            scan.anomaly_count,
                            scan.anomalies
                                .first()
                                .map(|f| f.render())
                                .unwrap_or_default()
                        ))
                    },
                );
                if let (Some(mode), false) = (a.mode, scan.healthy()) {
                    let report = store.recover(mode.into(), &Bar::new())?;
                    remaining = report.after.anomaly_count as usize;
                    push(
                        "recover",
                        if report.after.healthy() {
                            Ok(format!(
                                "{} receipts, re-scan healthy",
                                report.receipts.len()
                            ))
                        } else {
                            Err(format!("{} anomalies remain", report.after.anomaly_count))
                        },
                    );
                }
            }
        }
    }
    if a.store.run.json {
        output::json(&checks);
    } else {
        for c in &checks {
            outln!(
                "[{}] {}: {}",
                if c.ok { " ok " } else { "FAIL" },
                c.check,
                c.detail
            );
        }
    }
    Ok(if checks.iter().all(|c| c.ok) {
        HEALTHY
    } else if remaining > 0 && plugin_ok {
        ANOMALIES
    } else {
        1
    })
}
