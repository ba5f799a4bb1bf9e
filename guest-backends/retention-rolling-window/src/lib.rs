//! The rolling-window retention policy: keep what is younger than a window.
//!
//! Configuration: `{"window_seconds": S, "exact": false}` (see `config`).
//! Sealed units whose newest record is older than `now - window_seconds`
//! are dropped without being read. Without `exact`, every other unit whose
//! newest timestamp is known stays whole, as segments do in Kafka. With
//! `exact`, units that may hold records older than the cutoff are read and
//! those records removed. Units whose newest timestamp is unknown are always
//! read, record by record. See `plan` for the exact rules.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

mod config;
mod plan;
mod words;

use plan::Window;
use quire_guest::policy::{Evaluator, Guest, GuestEvaluator, MetaBatch, PolicyError, UnitVerdict};
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;
use quire_guest::policy_kit::Passes;
use quire_guest::policy_kit::RecordMeta;

struct RollingWindow;

struct RollingWindowEvaluator {
    window_seconds: f64,
    window: Window,
    passes: Passes,
}

impl Guest for RollingWindow {
    type Evaluator = RollingWindowEvaluator;
}

impl GuestEvaluator for RollingWindowEvaluator {
    fn create(config: String, now: f64) -> Result<Evaluator, PolicyError> {
        let config = config::parse(&config).map_err(PolicyError::InvalidConfig)?;
        // A NaN or infinite cutoff would quietly drop or keep everything.
        if !now.is_finite() {
            return Err(PolicyError::InvalidConfig(format!(
                "the current time given to create is `{now}`, not a finite Unix time"
            )));
        }
        Ok(Evaluator::new(RollingWindowEvaluator {
            window_seconds: config.window_seconds,
            window: Window::new(config, now),
            passes: Passes::default(),
        }))
    }

    fn describe(&self) -> String {
        let kept = format!(
            "keep records from the last {} (at or after {})",
            words::duration(self.window_seconds),
            words::utc(self.window.cutoff)
        );
        if self.window.exact {
            format!(
                "rolling window, exact: {kept}; sealed units wholly older are dropped, older records are removed from every other unit"
            )
        } else {
            format!(
                "rolling window: {kept}; sealed units wholly older are dropped, units straddling the cutoff stay whole, units without known timestamps are trimmed record by record"
            )
        }
    }

    fn plan_units(&self, units: Vec<UnitInfo>) -> Vec<UnitVerdict> {
        self.window.plan_units(&units)
    }

    fn observe(&self, batch: MetaBatch) -> Result<(), PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        self.passes.observe(batch.len())
    }

    fn decide(&self, batch: MetaBatch) -> Result<Vec<bool>, PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        self.passes.decide(batch.len())?;
        Ok(batch
            .iter()
            .map(|r| self.window.keeps(r.timestamp))
            .collect())
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_policy!(RollingWindow);
