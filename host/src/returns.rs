//! Checks on what a plugin returns. A plugin's words are untrusted: a unit
//! id becomes a host path in reports, a cursor's records go to
//! applications and terminals, a scan's offsets drive the host's loop. A
//! value that cannot be true is a fault of the plugin, never data.

use crate::read_batch::RecordView;
use crate::wit::{Anomaly, ReadFilter};

/// A unit id must name something inside the backend's root: relative, no
/// `..`, no NUL. (`""` is allowed: some backends have one nameless unit.)
pub(crate) fn unit_id(id: &str) -> Result<(), String> {
    let shown = crate::text::clean(id);
    if id.starts_with('/') || id.starts_with('\\') {
        return Err(format!("named an absolute unit `{shown}`"));
    }
    if id.split(['/', '\\']).any(|part| part == "..") {
        return Err(format!("named a unit outside its root: `{shown}`"));
    }
    if id.contains('\0') {
        return Err(format!("named a unit with a NUL byte: `{shown}`"));
    }
    Ok(())
}

/// Every unit id among `anomalies`.
pub(crate) fn anomalies(anomalies: &[Anomaly]) -> Result<(), String> {
    anomalies.iter().try_for_each(|a| unit_id(&a.unit))
}

/// Whether `filter` lets every record through (then [`record`] has
/// nothing to check).
pub(crate) fn passes_all(filter: &ReadFilter) -> bool {
    filter.kinds.is_empty()
        && filter.stores.is_empty()
        && filter.since.is_none()
        && filter.until.is_none()
}

/// A record from a cursor opened with `filter`: it must pass the filter.
/// (Its unit is the cursor's: a batch comes from one unit.)
pub(crate) fn record(r: &RecordView<'_>, filter: &ReadFilter) -> Result<(), String> {
    if !filter.kinds.is_empty() && !filter.kinds.iter().any(|k| k == r.kind) {
        return Err(format!(
            "returned a record of kind `{}`, which the read filter excludes",
            crate::text::clean(r.kind)
        ));
    }
    if !filter.stores.is_empty() && !filter.stores.iter().any(|s| s == r.store) {
        return Err(format!(
            "returned a record of store `{}`, which the read filter excludes",
            crate::text::clean(r.store)
        ));
    }
    if filter.since.is_some_and(|since| r.timestamp < since)
        || filter.until.is_some_and(|until| r.timestamp >= until)
    {
        return Err(format!(
            "returned a record at {}, outside the read filter's time range",
            r.timestamp
        ));
    }
    // Raw control characters are not a fault: a damaged record may hold
    // them honestly. The CLI escapes them on a terminal.
    Ok(())
}

/// A scan step of a unit of `unit_bytes` bytes from `offset`: it moves
/// forward (unless done), stays inside the unit, and places its anomalies
/// inside it.
pub(crate) fn scan_step(
    unit: &str,
    unit_bytes: u64,
    offset: u64,
    next_offset: u64,
    done: bool,
    anomalies: &[Anomaly],
) -> Result<(), String> {
    let unit = crate::text::clean(unit);
    if next_offset < offset || (!done && next_offset == offset) {
        return Err(format!(
            "returned no progress at offset {offset} of `{unit}` (next-offset {next_offset})"
        ));
    }
    if next_offset > unit_bytes {
        return Err(format!(
            "scanned to offset {next_offset} of `{unit}`, which has {unit_bytes} bytes"
        ));
    }
    for a in anomalies {
        if a.offset.saturating_add(a.length) > unit_bytes {
            return Err(format!(
                "placed an anomaly at bytes {}..{} of `{unit}`, which has {unit_bytes} bytes",
                a.offset,
                a.offset.saturating_add(a.length)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_ids_stay_inside_the_root() {
        for good in [
            "",
            "events.ndjson",
            "wal/store=a/date=2026-01-01/segment-000001.wal",
            "a..b",
        ] {
            assert!(unit_id(good).is_ok(), "{good}");
        }
        for bad in [
            "/etc/passwd",
            "../../../../etc/passwd",
            "wal/../../x",
            "..",
            "a/..",
            "\\x",
            "a\0b",
        ] {
            assert!(unit_id(bad).is_err(), "{bad:?}");
        }
    }

    fn r<'a>(kind: &'a str, store: &'a str, timestamp: f64) -> RecordView<'a> {
        RecordView {
            kind,
            store,
            timestamp,
            json: r#"{"kind":"event","timestamp":10}"#,
            unit: "u",
            offset: 0,
            stored_bytes: 31,
        }
    }

    #[test]
    fn records_must_pass_the_filter_they_were_read_with() {
        let filter = ReadFilter {
            kinds: vec!["event".into()],
            stores: vec!["a".into()],
            since: Some(10.0),
            until: Some(20.0),
        };
        assert!(record(&r("event", "a", 10.0), &filter).is_ok());
        assert!(record(&r("audit", "a", 10.0), &filter).is_err());
        assert!(record(&r("event", "b", 10.0), &filter).is_err());
        assert!(record(&r("event", "a", 9.9), &filter).is_err());
        assert!(record(&r("event", "a", 20.0), &filter).is_err());
    }

    #[test]
    fn scans_move_forward_inside_the_unit() {
        assert!(scan_step("u", 100, 0, 50, false, &[]).is_ok());
        assert!(scan_step("u", 100, 50, 100, true, &[]).is_ok());
        assert!(
            scan_step("u", 100, 0, 0, true, &[]).is_ok(),
            "an empty unit"
        );
        assert!(scan_step("u", 100, 50, 50, false, &[]).is_err());
        assert!(scan_step("u", 100, 50, 40, true, &[]).is_err());
        assert!(scan_step("u", 100, 0, 101, true, &[]).is_err());
        let anomaly = |offset, length| Anomaly {
            kind: crate::wit::AnomalyKind::CorruptedRecord,
            unit: "u".into(),
            offset,
            length,
            line: None,
            detail: String::new(),
        };
        assert!(scan_step("u", 100, 0, 100, true, &[anomaly(90, 10)]).is_ok());
        assert!(scan_step("u", 100, 0, 100, true, &[anomaly(95, 10)]).is_err());
    }
}
