//! Which sealed units survive: the `keep_sealed` newest.
//!
//! "Newest" is by the unit's newest record timestamp, not by its position or
//! name: a unit rewritten by recovery, or segments numbered afresh after a
//! purge, can sit anywhere in the list. Equal timestamps rank the later unit
//! in the list as newer, since backends list units in append order.
//!
//! Sealed units whose newest timestamp is unknown cannot be ranked, so they
//! are kept and do not use up the quota. The live unit is always kept.
//! Units are ranked within their `store`: the host hands over one store's
//! units at a time, and a backend that lists several stores together still
//! gets `keep_sealed` units per store.

use std::collections::BTreeMap;

use quire_guest::policy::UnitVerdict;
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;

/// Verdicts for units, index for index: `drop` for ranked sealed units past
/// the `keep_sealed` newest of their store, `keep` for everything else.
pub fn plan_units(units: &[UnitInfo], keep_sealed: u32) -> Vec<UnitVerdict> {
    let mut ranked: BTreeMap<Option<&str>, Vec<(f64, usize)>> = BTreeMap::new();
    for (index, unit) in units.iter().enumerate() {
        if let Some(max) = unit.max_timestamp.filter(|t| !t.is_nan())
            && unit.sealed
        {
            ranked
                .entry(unit.store.as_deref())
                .or_default()
                .push((max, index));
        }
    }
    let mut verdicts = vec![UnitVerdict::Keep; units.len()];
    for mut sealed in ranked.into_values() {
        // Newest first: larger timestamp, then later position.
        sealed.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        for &(_, index) in sealed.iter().skip(keep_sealed as usize) {
            verdicts[index] = UnitVerdict::Drop;
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use UnitVerdict::{Drop, Keep};

    fn unit(store: &str, sealed: bool, max: Option<f64>) -> UnitInfo {
        UnitInfo {
            id: format!("{store}/{max:?}"),
            store: Some(store.into()),
            bytes: 512,
            records: None,
            min_timestamp: max.map(|m| m - 1.0),
            max_timestamp: max,
            sealed,
            codec: "json-crc32".into(),
        }
    }

    #[test]
    fn keeps_newest_sealed_and_live() {
        let units = [
            unit("s", true, Some(10.0)),
            unit("s", true, Some(30.0)),
            unit("s", true, Some(20.0)),
            unit("s", false, Some(40.0)),
        ];
        assert_eq!(plan_units(&units, 1), vec![Drop, Keep, Drop, Keep]);
        assert_eq!(plan_units(&units, 2), vec![Drop, Keep, Keep, Keep]);
        assert_eq!(plan_units(&units, 5), vec![Keep; 4]);
    }

    #[test]
    fn newest_by_timestamp_not_position() {
        // The last-listed sealed unit holds the oldest records.
        let units = [unit("s", true, Some(50.0)), unit("s", true, Some(5.0))];
        assert_eq!(plan_units(&units, 1), vec![Keep, Drop]);
    }

    #[test]
    fn ties_go_to_the_later_unit() {
        let units = [
            unit("s", true, Some(7.0)),
            unit("s", true, Some(7.0)),
            unit("s", true, Some(7.0)),
        ];
        assert_eq!(plan_units(&units, 1), vec![Drop, Drop, Keep]);
        assert_eq!(plan_units(&units, 2), vec![Drop, Keep, Keep]);
    }

    #[test]
    fn zero_keeps_only_the_live_unit() {
        let units = [unit("s", true, Some(1.0)), unit("s", false, None)];
        assert_eq!(plan_units(&units, 0), vec![Drop, Keep]);
    }

    #[test]
    fn live_unit_is_kept_however_old() {
        let units = [unit("s", false, Some(0.0)), unit("s", true, Some(99.0))];
        assert_eq!(plan_units(&units, 0), vec![Keep, Drop]);
    }

    #[test]
    fn unknown_timestamps_are_kept_and_do_not_count() {
        let units = [
            unit("s", true, None),
            unit("s", true, Some(f64::NAN)),
            unit("s", true, Some(1.0)),
            unit("s", true, Some(2.0)),
        ];
        assert_eq!(plan_units(&units, 1), vec![Keep, Keep, Drop, Keep]);
    }

    #[test]
    fn each_store_keeps_its_own_newest() {
        let units = [
            unit("a", true, Some(1.0)),
            unit("b", true, Some(100.0)),
            unit("a", true, Some(2.0)),
            unit("b", true, Some(200.0)),
        ];
        assert_eq!(plan_units(&units, 1), vec![Drop, Drop, Keep, Keep]);
    }

    #[test]
    fn no_units_no_verdicts() {
        assert!(plan_units(&[], 1).is_empty());
    }
}
