//! Inspect: what is stored, counted by kind and store, read-only.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::progress::Progress;
use crate::read::ReadQuery;
use crate::report::{InspectReport, ReceiptEntry, UnitSummary};
use crate::store::Store;
use crate::text::clean;
use crate::wit::ReceiptFilter;

impl Store {
    /// Storage facts plus a streaming count of records by kind and store.
    pub fn inspect(&self, progress: &dyn Progress) -> Result<InspectReport> {
        let stats = self.session().stats()?;
        let receipts = self.receipts(&ReceiptFilter {
            stores: vec![],
            kinds: vec![],
            since: None,
            until: None,
            limit: None,
        })?;
        let mut report = InspectReport {
            backend: self.info.name.clone(),
            backend_version: self.info.version.clone(),
            path: self.config.path.clone(),
            units: stats.units.iter().map(UnitSummary::from).collect(),
            total_bytes: stats.total_bytes,
            records: 0,
            kinds: BTreeMap::new(),
            stores: BTreeMap::new(),
            min_timestamp: None,
            max_timestamp: None,
            // The plugin's words, escaped for every reader.
            details: stats
                .details
                .iter()
                .map(|(k, v)| (clean(k).into_owned(), clean(v).into_owned()))
                .collect(),
            receipts: receipts.iter().map(ReceiptEntry::from).collect(),
        };
        progress.begin("inspect", stats.total_bytes);
        self.read(&ReadQuery::default(), |r| {
            progress.advance(r.stored_bytes);
            report.records += 1;
            *report.kinds.entry(r.kind.to_string()).or_default() += 1;
            *report.stores.entry(r.store.to_string()).or_default() += 1;
            let t = r.timestamp;
            report.min_timestamp = Some(report.min_timestamp.map_or(t, |m: f64| m.min(t)));
            report.max_timestamp = Some(report.max_timestamp.map_or(t, |m: f64| m.max(t)));
            Ok(())
        })?;
        progress.finish();
        Ok(report)
    }
}
