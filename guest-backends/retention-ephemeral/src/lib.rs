//! The ephemeral retention policy: keep the live unit and the newest few
//! sealed ones, as Igniter's `ephemeral` strategy does for one segment.
//!
//! Configuration: `{"keep_sealed": N}` (default 1; see `config`). Whole
//! units are kept or dropped without being read; no record is ever judged
//! on its own, so should the host filter a unit anyway every record stays.
//! Ranking rules, including units with unknown timestamps, are in `plan`.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

mod config;
mod plan;

use quire_guest::policy::{Evaluator, Guest, GuestEvaluator, MetaBatch, PolicyError, UnitVerdict};
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;
use quire_guest::policy_kit::Passes;
use quire_guest::policy_kit::RecordMeta;

struct Ephemeral;

struct EphemeralEvaluator {
    keep_sealed: u32,
    passes: Passes,
}

impl Guest for Ephemeral {
    type Evaluator = EphemeralEvaluator;
}

impl GuestEvaluator for EphemeralEvaluator {
    fn create(config: String, _now: f64) -> Result<Evaluator, PolicyError> {
        let config = config::parse(&config).map_err(PolicyError::InvalidConfig)?;
        Ok(Evaluator::new(EphemeralEvaluator {
            keep_sealed: config.keep_sealed,
            passes: Passes::default(),
        }))
    }

    fn describe(&self) -> String {
        let unranked =
            "sealed units without a known latest timestamp cannot be ranked and are kept";
        match self.keep_sealed {
            0 => format!("ephemeral: keep only the live unit, drop every sealed unit; {unranked}"),
            n => {
                let newest = if n == 1 {
                    "the newest sealed unit".to_string()
                } else {
                    format!("the {n} newest sealed units")
                };
                format!(
                    "ephemeral: keep the live unit and {newest} (by latest record timestamp), drop older sealed units; {unranked}"
                )
            }
        }
    }

    fn plan_units(&self, units: Vec<UnitInfo>) -> Vec<UnitVerdict> {
        plan::plan_units(&units, self.keep_sealed)
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
quire_guest::export_policy!(Ephemeral);
