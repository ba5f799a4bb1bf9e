//! Which units and records fall outside the window.
//!
//! The cutoff is `now - window_seconds`; a record is inside when its
//! timestamp is at or after the cutoff. Units are judged by the timestamps
//! their backend knows without reading them:
//!
//! - newest record before the cutoff: the whole unit is outside. A sealed
//!   unit is dropped; the live one is never dropped, so it is kept (or, with
//!   `exact`, filtered so its old records go).
//! - newest record unknown: the unit cannot be judged whole, so it is read
//!   and filtered record by record.
//! - otherwise, without `exact`, the unit is kept whole even if its oldest
//!   records are past the cutoff (segment granularity, as in Kafka); with
//!   `exact`, a unit whose oldest record may be before the cutoff is filtered.

use quire_guest::policy::UnitVerdict;
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;

use crate::config::Config;

/// The window, fixed at the `now` of one run.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Records with `timestamp >= cutoff` are inside.
    pub cutoff: f64,
    /// Trim straddling units record by record.
    pub exact: bool,
}

impl Window {
    /// The window ending at `now`.
    pub fn new(config: Config, now: f64) -> Self {
        Window {
            cutoff: now - config.window_seconds,
            exact: config.exact,
        }
    }

    /// The verdict for one unit.
    pub fn unit_verdict(&self, unit: &UnitInfo) -> UnitVerdict {
        let Some(max) = known(unit.max_timestamp) else {
            return UnitVerdict::Filter;
        };
        if max < self.cutoff {
            return match (unit.sealed, self.exact) {
                (true, _) => UnitVerdict::Drop,
                (false, false) => UnitVerdict::Keep,
                (false, true) => UnitVerdict::Filter,
            };
        }
        if !self.exact {
            return UnitVerdict::Keep;
        }
        match known(unit.min_timestamp) {
            Some(min) if min >= self.cutoff => UnitVerdict::Keep,
            _ => UnitVerdict::Filter,
        }
    }

    /// Verdicts for units, index for index.
    pub fn plan_units(&self, units: &[UnitInfo]) -> Vec<UnitVerdict> {
        units.iter().map(|u| self.unit_verdict(u)).collect()
    }

    /// Whether a record of a filtered unit stays.
    pub fn keeps(&self, timestamp: f64) -> bool {
        timestamp >= self.cutoff
    }
}

/// A timestamp the backend actually knows: NaN says nothing about age.
fn known(timestamp: Option<f64>) -> Option<f64> {
    timestamp.filter(|t| !t.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_000_000.0;
    const DAY: f64 = 86_400.0;

    fn window(exact: bool) -> Window {
        Window::new(
            Config {
                window_seconds: DAY,
                exact,
            },
            NOW,
        )
    }

    fn unit(sealed: bool, min: Option<f64>, max: Option<f64>) -> UnitInfo {
        UnitInfo {
            id: "wal/store=orders/segment-000001.wal".into(),
            store: Some("orders".into()),
            bytes: 4096,
            records: Some(10),
            min_timestamp: min,
            max_timestamp: max,
            sealed,
            codec: "json-crc32".into(),
        }
    }

    const CUTOFF: f64 = NOW - DAY;

    #[test]
    fn sealed_unit_entirely_before_cutoff_is_dropped() {
        for exact in [false, true] {
            let v =
                window(exact).unit_verdict(&unit(true, Some(CUTOFF - 50.0), Some(CUTOFF - 1.0)));
            assert_eq!(v, UnitVerdict::Drop, "exact={exact}");
        }
    }

    #[test]
    fn newest_record_at_cutoff_is_inside() {
        let v = window(false).unit_verdict(&unit(true, Some(CUTOFF - 50.0), Some(CUTOFF)));
        assert_eq!(v, UnitVerdict::Keep);
        assert!(window(false).keeps(CUTOFF));
        assert!(!window(false).keeps(CUTOFF - 0.001));
    }

    #[test]
    fn straddling_unit_kept_whole_unless_exact() {
        let straddling = unit(true, Some(CUTOFF - 10.0), Some(CUTOFF + 10.0));
        assert_eq!(window(false).unit_verdict(&straddling), UnitVerdict::Keep);
        assert_eq!(window(true).unit_verdict(&straddling), UnitVerdict::Filter);
    }

    #[test]
    fn unit_entirely_inside_is_kept_even_when_exact() {
        let young = unit(true, Some(CUTOFF), Some(NOW));
        assert_eq!(window(true).unit_verdict(&young), UnitVerdict::Keep);
        assert_eq!(window(false).unit_verdict(&young), UnitVerdict::Keep);
    }

    #[test]
    fn exact_filters_when_oldest_is_unknown() {
        let no_min = unit(true, None, Some(NOW));
        assert_eq!(window(true).unit_verdict(&no_min), UnitVerdict::Filter);
        assert_eq!(window(false).unit_verdict(&no_min), UnitVerdict::Keep);
    }

    #[test]
    fn unknown_newest_is_filtered() {
        for exact in [false, true] {
            for sealed in [false, true] {
                for max in [None, Some(f64::NAN)] {
                    let v = window(exact).unit_verdict(&unit(sealed, None, max));
                    assert_eq!(v, UnitVerdict::Filter, "exact={exact} sealed={sealed}");
                }
            }
        }
    }

    #[test]
    fn live_unit_is_never_dropped() {
        let old_live = unit(false, Some(0.0), Some(CUTOFF - 1.0));
        assert_eq!(window(false).unit_verdict(&old_live), UnitVerdict::Keep);
        assert_eq!(window(true).unit_verdict(&old_live), UnitVerdict::Filter);
        let straddling_live = unit(false, Some(CUTOFF - 1.0), Some(NOW));
        assert_eq!(
            window(false).unit_verdict(&straddling_live),
            UnitVerdict::Keep
        );
        assert_eq!(
            window(true).unit_verdict(&straddling_live),
            UnitVerdict::Filter
        );
    }

    #[test]
    fn verdicts_come_index_for_index() {
        let units = [
            unit(true, Some(0.0), Some(1.0)),
            unit(true, None, None),
            unit(true, Some(CUTOFF - 1.0), Some(CUTOFF + 1.0)),
            unit(false, Some(NOW - 5.0), Some(NOW)),
        ];
        assert_eq!(
            window(false).plan_units(&units),
            vec![
                UnitVerdict::Drop,
                UnitVerdict::Filter,
                UnitVerdict::Keep,
                UnitVerdict::Keep
            ]
        );
    }

    #[test]
    fn nan_record_timestamps_are_outside() {
        assert!(!window(true).keeps(f64::NAN));
    }
}
