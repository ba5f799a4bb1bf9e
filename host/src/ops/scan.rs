//! Scan: validate every unit, in budgeted steps, without changing anything.

use crate::error::Result;
use crate::metrics;
use crate::progress::Progress;
use crate::report::{Finding, MAX_FINDINGS, ScanReport};
use crate::store::Store;

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
        let mut report = ScanReport::default();
        let note = |report: &mut ScanReport, found: Vec<crate::wit::Anomaly>| {
            report.anomaly_count += found.len() as u64;
            for a in found {
                if report.anomalies.len() < MAX_FINDINGS {
                    report
                        .anomalies
                        .push(Finding::new(&a, self.unit_path(&a.unit)));
                }
            }
        };
        let layout = session.check_layout()?;
        note(&mut report, layout);
        let units = session.units()?;
        progress.begin("scan", units.iter().map(|u| u.bytes).sum());
        for unit in &units {
            report.units += 1;
            let mut offset = 0;
            loop {
                let chunk = session.validate(&unit.id, unit.bytes, offset, super::SCAN_BUDGET)?;
                progress.advance(chunk.next_offset.saturating_sub(offset));
                report.bytes_scanned += chunk.next_offset.saturating_sub(offset);
                report.records += chunk.records;
                note(&mut report, chunk.anomalies);
                offset = chunk.next_offset;
                if chunk.done {
                    break;
                }
            }
        }
        progress.finish();
        Ok(report)
    }
}
