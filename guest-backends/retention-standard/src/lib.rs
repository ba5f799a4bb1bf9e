//! The standard retention policy: max records, max age, max bytes on disk,
//! with per-kind overrides.
//!
//! Rules apply in Papyra's order: age, then count, then size. Records are
//! grouped: a kind with an override is its own group, every other kind
//! shares the global limits. Within a group, "newest" means appended last.
//!
//! Count and size both keep a suffix of the age survivors, so one counting
//! pass (survivors and their bytes per group) is all the memory needed:
//! in pass two, the i-th survivor with `p` bytes before it is kept when
//! `i >= count - max_records` and `total - p <= max_bytes`.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::cell::RefCell;
use std::collections::BTreeMap;

use quire_guest::policy::{Evaluator, Guest, GuestEvaluator, MetaBatch, PolicyError, UnitVerdict};
use quire_guest::policy_bindings::quire::persistence::types::UnitInfo;
use quire_guest::policy_kit::RecordMeta;
use serde::Deserialize;

struct Standard;

#[derive(Deserialize, Default, Clone, Copy, Debug)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_records: Option<u64>,
    max_age_seconds: Option<f64>,
    max_bytes: Option<u64>,
}

impl Limits {
    fn over(self, base: Limits) -> Limits {
        Limits {
            max_records: self.max_records.or(base.max_records),
            max_age_seconds: self.max_age_seconds.or(base.max_age_seconds),
            max_bytes: self.max_bytes.or(base.max_bytes),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(flatten)]
    global: Limits,
    #[serde(default)]
    per_kind: BTreeMap<String, Limits>,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    survivors: u64,
    bytes: u64,
}

#[derive(PartialEq)]
enum Phase {
    Observing,
    Deciding,
}

struct StandardEvaluator {
    config: Config,
    now: f64,
    phase: RefCell<Phase>,
    /// Pass one: per group, age survivors and their bytes.
    totals: RefCell<BTreeMap<String, Tally>>,
    /// Pass two: per group, survivors and bytes seen so far.
    seen: RefCell<BTreeMap<String, Tally>>,
}

const REST: &str = "*";

impl StandardEvaluator {
    fn group<'a>(&self, kind: &'a str) -> (&'a str, Limits) {
        match self.config.per_kind.get(kind) {
            Some(limits) => (kind, limits.over(self.config.global)),
            None => (REST, self.config.global),
        }
    }

    fn young_enough(&self, limits: Limits, timestamp: f64) -> bool {
        limits
            .max_age_seconds
            .is_none_or(|age| timestamp >= self.now - age)
    }

    /// The longest any record may live, or `None` if some group keeps forever.
    fn longest_age(&self) -> Option<f64> {
        let mut ages = vec![self.config.global.max_age_seconds];
        ages.extend(
            self.config
                .per_kind
                .values()
                .map(|l| l.over(self.config.global).max_age_seconds),
        );
        ages.into_iter()
            .try_fold(f64::MIN, |acc, a| a.map(|a| acc.max(a)))
    }

    fn is_noop(&self) -> bool {
        let all = std::iter::once(self.config.global).chain(self.config.per_kind.values().copied());
        all.into_iter().all(|l| {
            l.max_records.is_none() && l.max_age_seconds.is_none() && l.max_bytes.is_none()
        })
    }
}

impl Guest for Standard {
    type Evaluator = StandardEvaluator;
}

impl GuestEvaluator for StandardEvaluator {
    fn create(config: String, now: f64) -> Result<Evaluator, PolicyError> {
        let config: Config = if config.trim().is_empty() {
            Config::default()
        } else {
            serde_json::from_str(&config).map_err(|e| {
                PolicyError::InvalidConfig(format!(
                    "{e}; expected {{\"max_records\": N, \"max_age_seconds\": S, \"max_bytes\": B, \"per_kind\": {{\"event\": {{...}}}}}}"
                ))
            })?
        };
        for limits in std::iter::once(&config.global).chain(config.per_kind.values()) {
            if limits
                .max_age_seconds
                .is_some_and(|a| a.is_nan() || a < 0.0)
            {
                return Err(PolicyError::InvalidConfig(
                    "max_age_seconds must be a non-negative number".into(),
                ));
            }
        }
        Ok(Evaluator::new(StandardEvaluator {
            config,
            now,
            phase: RefCell::new(Phase::Observing),
            totals: RefCell::default(),
            seen: RefCell::default(),
        }))
    }

    fn describe(&self) -> String {
        let show = |l: Limits| {
            let mut parts = Vec::new();
            if let Some(n) = l.max_records {
                parts.push(format!("newest {n} records"))
            }
            if let Some(a) = l.max_age_seconds {
                parts.push(format!("younger than {a}s"))
            }
            if let Some(b) = l.max_bytes {
                parts.push(format!("at most {b} bytes"))
            }
            if parts.is_empty() {
                "everything".to_string()
            } else {
                parts.join(", ")
            }
        };
        let mut text = format!("standard: keep {}", show(self.config.global));
        for (kind, limits) in &self.config.per_kind {
            text.push_str(&format!(
                "; `{kind}`: keep {}",
                show(limits.over(self.config.global))
            ));
        }
        text
    }

    fn plan_units(&self, units: Vec<UnitInfo>) -> Vec<UnitVerdict> {
        let cutoff = self.longest_age().map(|age| self.now - age);
        units
            .iter()
            .map(|unit| {
                if self.is_noop() {
                    UnitVerdict::Keep
                } else if unit.sealed
                    && matches!((cutoff, unit.max_timestamp), (Some(c), Some(max)) if max < c)
                {
                    UnitVerdict::Drop
                } else {
                    UnitVerdict::Filter
                }
            })
            .collect()
    }

    fn observe(&self, batch: MetaBatch) -> Result<(), PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        if *self.phase.borrow() != Phase::Observing {
            return Err(PolicyError::InvalidState("observe after decide".into()));
        }
        let mut totals = self.totals.borrow_mut();
        for meta in &batch {
            let (group, limits) = self.group(meta.kind);
            if self.young_enough(limits, meta.timestamp) {
                let tally = totals.entry(group.to_string()).or_default();
                tally.survivors += 1;
                tally.bytes += meta.stored_bytes;
            }
        }
        Ok(())
    }

    fn decide(&self, batch: MetaBatch) -> Result<Vec<bool>, PolicyError> {
        let batch: Vec<RecordMeta<'_>> = quire_guest::policy_kit::metas(&batch)?;
        *self.phase.borrow_mut() = Phase::Deciding;
        let totals = self.totals.borrow();
        let mut seen = self.seen.borrow_mut();
        let mut out = Vec::with_capacity(batch.len());
        for meta in &batch {
            let (group, limits) = self.group(meta.kind);
            if !self.young_enough(limits, meta.timestamp) {
                out.push(false);
                continue;
            }
            let total = totals.get(group).copied().ok_or_else(|| {
                PolicyError::InvalidState(format!(
                    "record of group `{group}` was not observed in pass one"
                ))
            })?;
            let before = seen.entry(group.to_string()).or_default();
            let by_count = limits
                .max_records
                .is_none_or(|n| before.survivors + n >= total.survivors);
            let by_size = limits
                .max_bytes
                .is_none_or(|b| total.bytes - before.bytes <= b);
            before.survivors += 1;
            before.bytes += meta.stored_bytes;
            out.push(by_count && by_size);
        }
        Ok(out)
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_policy!(Standard);
