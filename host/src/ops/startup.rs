//! The startup check an application (or init container) runs before use.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::recover::RecoveryMode;
use crate::report::{RecoveryReport, ScanReport};
use crate::store::Store;

/// What to do at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// Nothing.
    Ignore,
    /// Scan and report; never fail, never change.
    ScanOnly,
    /// Scan; recover if damaged (then the re-scan must be clean).
    Recover(RecoveryMode),
    /// Scan; fail if anything is found.
    FailOnAnomaly,
}

impl std::str::FromStr for StartupMode {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Ok(match text.replace('_', "-").as_str() {
            "ignore" => StartupMode::Ignore,
            "scan-only" => StartupMode::ScanOnly,
            "recover" => StartupMode::Recover(RecoveryMode::Repair),
            "fail-on-anomaly" => StartupMode::FailOnAnomaly,
            _ => {
                return Err(Error::Usage(format!(
                    "unknown startup mode `{text}`: use ignore, scan-only, recover or fail-on-anomaly"
                )));
            }
        })
    }
}

/// What the check found and did.
#[derive(Debug, Clone, Serialize)]
pub struct StartupReport {
    /// `ignore`, `scan-only`, `recover` or `fail-on-anomaly`.
    pub mode: String,
    /// The scan, unless ignored.
    pub scan: Option<ScanReport>,
    /// The recovery, when one ran.
    pub recovery: Option<RecoveryReport>,
    /// True when the store may be used.
    pub ok: bool,
}

impl Store {
    /// Runs the startup check. `FailOnAnomaly` and an unsuccessful `Recover`
    /// return a report with `ok == false`; the caller decides to stop.
    pub fn startup_check(
        &self,
        mode: StartupMode,
        progress: &dyn Progress,
    ) -> Result<StartupReport> {
        let name = match mode {
            StartupMode::Ignore => "ignore",
            StartupMode::ScanOnly => "scan-only",
            StartupMode::Recover(_) => "recover",
            StartupMode::FailOnAnomaly => "fail-on-anomaly",
        };
        let mut report = StartupReport {
            mode: name.into(),
            scan: None,
            recovery: None,
            ok: true,
        };
        match mode {
            StartupMode::Ignore => {}
            StartupMode::ScanOnly => report.scan = Some(self.scan(progress)?),
            StartupMode::FailOnAnomaly => {
                let scan = self.scan(progress)?;
                report.ok = scan.healthy();
                report.scan = Some(scan);
            }
            StartupMode::Recover(recovery_mode) => {
                let scan = self.scan(progress)?;
                // A torn tail the open cut after copying it to quarantine
                // leaves a healthy scan; its receipt is still reported.
                if !scan.healthy() || self.has_open_copies() {
                    let recovery = self.recover(recovery_mode, progress)?;
                    report.ok = recovery.after.healthy();
                    report.recovery = Some(recovery);
                }
                report.scan = Some(scan);
            }
        }
        Ok(report)
    }
}
