//! Unit verdicts: everything is kept whole, so no unit is ever read.

use quire_guest::policy::UnitVerdict;
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;

/// `keep` for every unit, index for index.
pub fn plan_units(units: &[UnitInfo]) -> Vec<UnitVerdict> {
    vec![UnitVerdict::Keep; units.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, sealed: bool, max: Option<f64>) -> UnitInfo {
        UnitInfo {
            id: id.into(),
            store: Some("orders".into()),
            bytes: 100,
            records: Some(3),
            min_timestamp: max.map(|m| m - 10.0),
            max_timestamp: max,
            sealed,
            codec: "ndjson".into(),
        }
    }

    #[test]
    fn every_unit_is_kept_whatever_its_age() {
        let units = [
            unit("a", true, Some(0.0)),
            unit("b", true, None),
            unit("c", false, Some(1e9)),
        ];
        let verdicts = plan_units(&units);
        assert_eq!(verdicts.len(), 3);
        assert!(verdicts.iter().all(|v| *v == UnitVerdict::Keep));
    }

    #[test]
    fn no_units_no_verdicts() {
        assert!(plan_units(&[]).is_empty());
    }
}
