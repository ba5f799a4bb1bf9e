//! Printing reports for people or as JSON, and progress bars on a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::progress::Progress;
use crate::report::{CompactionReport, Receipt, RecoveryReport, ScanReport};

/// Writes one line of a report on stdout; a closed pipe ends the program
/// with success (the reader has what it wanted).
pub fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("failed printing to stdout: {e}");
    }
}

/// Writes report text for people: each line with its control characters
/// escaped, so plugin words cannot drive the terminal.
pub fn report_line(text: &str) {
    for part in text.split('\n') {
        line(format_args!("{}", crate::text::clean(part)));
    }
}

/// Prints `value` as pretty JSON on stdout (JSON escapes control characters itself).
pub fn json(value: &impl Serialize) {
    line(format_args!(
        "{}",
        serde_json::to_string_pretty(value).expect("reports serialize")
    ));
}

/// A bar on stderr, only when stderr is a terminal.
pub struct Bar(Mutex<Option<ProgressBar>>);

impl Bar {
    pub fn new() -> Self {
        Bar(Mutex::new(None))
    }
}

impl Progress for Bar {
    fn begin(&self, phase: &str, total: u64) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total).with_message(phase.to_string());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        *self.0.lock().unwrap() = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.0.lock().unwrap().as_ref() {
            bar.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.0.lock().unwrap().take() {
            bar.finish_and_clear();
        }
    }
}

pub fn scan_text(report: &ScanReport) {
    for finding in &report.anomalies {
        outln!("{}", finding.render());
    }
    if report.anomaly_count as usize > report.anomalies.len() {
        outln!(
            "... and {} more",
            report.anomaly_count as usize - report.anomalies.len()
        );
    }
    let verdict = if report.healthy() {
        "healthy".to_string()
    } else {
        format!("{} anomalies", report.anomaly_count)
    };
    outln!(
        "scanned {} unit(s), {} bytes, {} valid records: {verdict}",
        report.units,
        report.bytes_scanned,
        report.records
    );
    outln!("checksums: {}", report.integrity);
}

pub fn receipt_text(r: &Receipt) {
    let place = r
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| r.unit.clone());
    let mut line = if r.action.starts_with("skipped") {
        format!(
            "{place}: {} (unchanged, {} bytes)",
            r.action, r.bytes_before
        )
    } else {
        format!(
            "{}: {place} ({} -> {} bytes, {} records kept, {} anomalies removed)",
            r.action, r.bytes_before, r.bytes_after, r.records_kept, r.anomalies_removed
        )
    };
    if let Some(q) = &r.quarantined_to {
        line.push_str(&format!("; original kept at {}", q.display()));
    }
    outln!("{line}");
    if let Some(u) = &r.unverified {
        let ranges: Vec<String> = u
            .ranges
            .iter()
            .map(|b| format!("{}..{}", b.offset, b.end()))
            .collect();
        outln!(
            "    {} record(s) no checksum vouches for (bytes {}): {}",
            u.records,
            ranges.join(", "),
            match (u.kept, &u.set_aside) {
                (true, _) => "KEPT as asked, unverified".to_string(),
                (false, Some(path)) =>
                    format!("dropped, their lines set aside in {}", path.display()),
                (false, None) => "dropped (the original is kept whole above)".to_string(),
            }
        );
    }
}

pub fn recovery_text(report: &RecoveryReport) {
    if report.before.healthy() && report.receipts.is_empty() {
        outln!("no anomalies: nothing to recover");
        return;
    }
    outln!(
        "found {} anomalies; mode {}",
        report.before.anomaly_count,
        report.mode
    );
    for r in &report.receipts {
        receipt_text(r);
    }
    if report.after.healthy() {
        outln!("re-scan: healthy ({} valid records)", report.after.records);
    } else {
        outln!("re-scan: {} anomalies remain", report.after.anomaly_count);
        for f in &report.after.anomalies {
            outln!("  {}", f.render());
        }
    }
}

pub fn compaction_text(r: &CompactionReport) {
    outln!("policy: {}", r.policy);
    for u in &r.units {
        let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        outln!(
            "  {}: {} ({} -> {} records, {} -> {} bytes)",
            u.unit,
            u.action,
            count(u.records_before),
            count(u.records_after),
            u.bytes_before,
            u.bytes_after
        );
    }
    outln!(
        "{}records {} -> {}, bytes {} -> {} ({} reclaimed)",
        if r.dry_run {
            "dry run, nothing changed: "
        } else {
            ""
        },
        r.records_before,
        r.records_after,
        r.bytes_before,
        r.bytes_after,
        r.bytes_reclaimed
    );
}
