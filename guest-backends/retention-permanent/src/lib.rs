//! The permanent retention policy: nothing is ever removed.
//!
//! Configuration: `{}` (blank counts as `{}`; any field is refused). Every
//! unit is kept whole without being read, so a compaction under this policy
//! costs one `units` call and changes nothing. Should the host filter a unit
//! anyway, every record is kept.

mod config;
mod passes;
mod plan;

use std::cell::RefCell;

use passes::Passes;
use quire_guest::policy::{Evaluator, Guest, GuestEvaluator, PolicyError, RecordMeta, UnitVerdict};
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;

struct Permanent;

struct PermanentEvaluator {
    passes: RefCell<Passes>,
}

impl Guest for Permanent {
    type Evaluator = PermanentEvaluator;
}

impl GuestEvaluator for PermanentEvaluator {
    fn create(config: String, _now: f64) -> Result<Evaluator, PolicyError> {
        config::parse(&config).map_err(PolicyError::InvalidConfig)?;
        Ok(Evaluator::new(PermanentEvaluator {
            passes: RefCell::default(),
        }))
    }

    fn describe(&self) -> String {
        "permanent: keep every record forever; units are neither read nor removed".into()
    }

    fn plan_units(&self, units: Vec<UnitInfo>) -> Vec<UnitVerdict> {
        plan::plan_units(&units)
    }

    fn observe(&self, batch: Vec<RecordMeta>) -> Result<(), PolicyError> {
        self.passes
            .borrow_mut()
            .observe(batch.len())
            .map_err(PolicyError::InvalidState)
    }

    fn decide(&self, batch: Vec<RecordMeta>) -> Result<Vec<bool>, PolicyError> {
        self.passes
            .borrow_mut()
            .decide(batch.len())
            .map_err(PolicyError::InvalidState)?;
        Ok(vec![true; batch.len()])
    }
}

quire_guest::export_policy!(Permanent);
