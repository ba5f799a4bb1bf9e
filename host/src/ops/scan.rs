//! Scan: validate every unit, in budgeted steps, without changing anything.

use crate::error::Result;
use crate::metrics;
use crate::progress::Progress;
use crate::report::{Finding, MAX_FINDINGS, ScanReport};
use crate::session::Session;
use crate::store::Store;
use crate::wit::Anomaly;

impl Store {
    /// Validates the layout and every unit; reports each anomaly located to
    /// the byte. Never changes data.
    pub fn scan(&self, progress: &dyn Progress) -> Result<ScanReport> {
        let result = self.scan_inner(progress);
        metrics::add(&self.metrics.scans, 1);
        match &result {
            Ok(report) => metrics::add(&self.metrics.anomalies_detected, report.anomaly_count),
            Err(_) => metrics::add(&self.metrics.scan_errors, 1),
        }
        result
    }

    fn scan_inner(&self, progress: &dyn Progress) -> Result<ScanReport> {
        let mut session = self.session();
        let mut report = ScanReport {
            // The plugin's words: escaped, and a line long at most.
            integrity: crate::text::clean(&self.info.integrity)
                .chars()
                .take(400)
                .collect(),
            ..ScanReport::default()
        };
        let at_address = session.places_are_addresses();
        let note = |report: &mut ScanReport, found: Vec<Anomaly>| {
            report.anomaly_count += found.len() as u64;
            for a in found {
                if report.anomalies.len() < MAX_FINDINGS {
                    let file = self.unit_path(&a.unit);
                    report.anomalies.push(Finding::new(&a, file, at_address));
                }
            }
        };
        let layout = session.check_layout()?;
        note(&mut report, layout);
        let units = session.units()?;
        progress.begin("scan", units.iter().map(|u| u.bytes).sum());
        for unit in &units {
            report.units += 1;
            validate_unit(&mut session, &unit.id, unit.bytes, |step, anomalies| {
                progress.advance(step.bytes);
                report.bytes_scanned += step.bytes;
                report.records += step.records;
                note(&mut report, anomalies);
            })?;
        }
        progress.finish();
        Ok(report)
    }
}

/// What one validation step covered.
pub(crate) struct Step {
    /// Bytes it moved on.
    pub bytes: u64,
    /// Valid records in them.
    pub records: u64,
}

/// Validates one unit (of `bytes` bytes when listed) from its start, in
/// budgeted steps, handing each step's anomalies to `each`.
pub(crate) fn validate_unit(
    session: &mut Session,
    unit: &str,
    bytes: u64,
    mut each: impl FnMut(Step, Vec<Anomaly>),
) -> Result<()> {
    let mut offset = 0;
    // Where places are addresses (Redis entry ids), a step's distance says
    // nothing about bytes: the unit's size counts once, when it is done.
    let addressed = session.places_are_addresses();
    loop {
        let chunk = session.validate(unit, bytes, offset, super::SCAN_BUDGET)?;
        let step = Step {
            bytes: match (addressed, chunk.done) {
                (false, _) => chunk.next_offset.saturating_sub(offset),
                (true, true) => bytes,
                (true, false) => 0,
            },
            records: chunk.records,
        };
        each(step, chunk.anomalies);
        offset = chunk.next_offset;
        if chunk.done {
            return Ok(());
        }
    }
}
