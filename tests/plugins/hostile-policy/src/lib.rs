//! A hostile retention policy, for the tests that show the host contains
//! policies as it contains backends.
//!
//! Otherwise it keeps everything (and filters every unit, so that records
//! reach `observe` and `decide`). Its configuration is the attack's name:
//!
//! - `sleep-create`: sleep for an hour while being created.
//! - `sleep-decide`, `loop-decide`, `sleep-observe`: sleep for an hour, or
//!   spin forever, in that call.
//! - `short-decide`: return one decision too few.
//! - `none`: behave.
//! - blank: trap in `create` (a component that links but cannot start).
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::time::Duration;

use quire_guest::policy::{Evaluator, Guest, GuestEvaluator, MetaBatch, PolicyError, UnitVerdict};
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;
use quire_guest::policy_kit::RecordMeta;

struct HostilePolicy;

struct HostileEvaluator {
    attack: String,
}

impl Guest for HostilePolicy {
    type Evaluator = HostileEvaluator;
}

fn sleep_an_hour() {
    std::thread::sleep(Duration::from_secs(3600));
}

fn spin_forever() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl GuestEvaluator for HostileEvaluator {
    fn create(config: String, _now: f64) -> Result<Evaluator, PolicyError> {
        let attack = config.trim().trim_matches('"').to_string();
        match attack.as_str() {
            "sleep-create" => sleep_an_hour(),
            "" => panic!("hostile policy: no attack given, refusing to start"),
            _ => {}
        }
        Ok(Evaluator::new(HostileEvaluator { attack }))
    }

    fn describe(&self) -> String {
        format!("hostile policy (attack: {})", self.attack)
    }

    fn plan_units(&self, units: Vec<UnitInfo>) -> Vec<UnitVerdict> {
        vec![UnitVerdict::Filter; units.len()]
    }

    fn observe(&self, _batch: MetaBatch) -> Result<(), PolicyError> {
        if self.attack == "sleep-observe" {
            sleep_an_hour();
        }
        Ok(())
    }

    fn decide(&self, batch: MetaBatch) -> Result<Vec<bool>, PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        match self.attack.as_str() {
            "sleep-decide" => sleep_an_hour(),
            "loop-decide" => spin_forever(),
            "short-decide" => return Ok(vec![true; batch.len().saturating_sub(1)]),
            _ => {}
        }
        Ok(vec![true; batch.len()])
    }
}

#[cfg(target_family = "wasm")]
quire_guest::export_policy!(HostilePolicy);
