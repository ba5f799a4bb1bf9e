//! The permanent retention policy: nothing is ever removed.
//!
//! Configuration: `{}` (blank counts as `{}`; any field is refused). Every
//! unit is kept whole without being read, so a compaction under this policy
//! costs one `units` call and changes nothing. Should the host filter a unit
//! anyway, every record is kept.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

mod config;
mod plan;

use quire_guest::policy::{Evaluator, Guest, GuestEvaluator, MetaBatch, PolicyError, UnitVerdict};
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;
use quire_guest::policy_kit::Passes;
use quire_guest::policy_kit::RecordMeta;

struct Permanent;

struct PermanentEvaluator {
    passes: Passes,
}

impl Guest for Permanent {
    type Evaluator = PermanentEvaluator;
}

impl GuestEvaluator for PermanentEvaluator {
    fn create(config: String, _now: f64) -> Result<Evaluator, PolicyError> {
        config::parse(&config).map_err(PolicyError::InvalidConfig)?;
        Ok(Evaluator::new(PermanentEvaluator {
            passes: Passes::default(),
        }))
    }

    fn describe(&self) -> String {
        "permanent: keep every record forever; units are neither read nor removed".into()
    }

    fn plan_units(&self, units: Vec<UnitInfo>) -> Vec<UnitVerdict> {
        plan::plan_units(&units)
    }

    fn observe(&self, batch: MetaBatch) -> Result<(), PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        self.passes.observe(batch.len())
    }

    fn decide(&self, batch: MetaBatch) -> Result<Vec<bool>, PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        self.passes.decide(batch.len())?;
        Ok(vec![true; batch.len()])
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_policy!(Permanent);
