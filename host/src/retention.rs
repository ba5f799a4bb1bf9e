//! Retention per store: one policy evaluator for each named store and one
//! for the rest, applied by a single compaction.
//!
//! Each evaluator sees only its store's units and records, so a policy
//! reasons about one store at a time. A unit without a store (one NDJSON
//! file holding every store) is filtered record by record as soon as any
//! store has its own policy, because its records belong to several.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::policy::{Meta, Policy, Verdict};
use crate::wit::UnitInfo;

/// Which evaluator decides for a unit or record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Route {
    Default,
    Store(usize),
    Nobody,
}

/// The policies of one compaction run.
pub struct Retention {
    default: Option<Policy>,
    stores: Vec<(String, Policy)>,
}

impl Retention {
    /// One policy for every store.
    pub fn single(policy: Policy) -> Self {
        Self {
            default: Some(policy),
            stores: Vec::new(),
        }
    }

    /// `default` for stores without their own (none: keep them), then per-store policies.
    pub fn per_store(default: Option<Policy>, stores: BTreeMap<String, Policy>) -> Self {
        Self {
            default,
            stores: stores.into_iter().collect(),
        }
    }

    /// Counts every policy's faults in `metrics` (`plugin_faults`).
    pub fn count_faults_in(&mut self, metrics: &std::sync::Arc<crate::metrics::Metrics>) {
        let stores = self.stores.iter_mut().map(|(_, p)| p);
        for policy in self.default.iter_mut().chain(stores) {
            policy.count_faults_in(metrics.clone());
        }
    }

    fn route(&self, store: Option<&str>) -> Route {
        if let Some(i) = store.and_then(|store| self.stores.iter().position(|(s, _)| s == store)) {
            return Route::Store(i);
        }
        if self.default.is_some() {
            Route::Default
        } else {
            Route::Nobody
        }
    }

    fn policy(&mut self, route: Route) -> Option<&mut Policy> {
        match route {
            Route::Default => self.default.as_mut(),
            Route::Store(i) => Some(&mut self.stores[i].1),
            Route::Nobody => None,
        }
    }

    /// What the run keeps, in words.
    pub fn description(&self) -> String {
        let mut parts: Vec<String> = self
            .stores
            .iter()
            .map(|(s, p)| format!("store {s}: {}", p.description))
            .collect();
        match &self.default {
            Some(p) if parts.is_empty() => return p.description.clone(),
            Some(p) => parts.push(format!("other stores: {}", p.description)),
            None => parts.push("other stores: keep everything".into()),
        }
        parts.join("; ")
    }

    /// The description of the policy deciding for `store`.
    pub fn description_for(&self, store: Option<&str>) -> String {
        match self.route(store) {
            Route::Default => self
                .default
                .as_ref()
                .map(|p| p.description.clone())
                .unwrap_or_default(),
            Route::Store(i) => self.stores[i].1.description.clone(),
            Route::Nobody => "keep everything".into(),
        }
    }

    /// Verdicts for units, index for index.
    pub fn plan_units(&mut self, units: &[UnitInfo]) -> Result<Vec<Verdict>> {
        let mut verdicts = vec![Verdict::Keep; units.len()];
        let mut groups: BTreeMap<Route, Vec<usize>> = BTreeMap::new();
        for (i, unit) in units.iter().enumerate() {
            if unit.store.is_none() && !self.stores.is_empty() {
                verdicts[i] = Verdict::Filter;
                continue;
            }
            groups
                .entry(self.route(unit.store.as_deref()))
                .or_default()
                .push(i);
        }
        groups.remove(&Route::Nobody);
        for (route, members) in groups {
            let group: Vec<UnitInfo> = members.iter().map(|&i| units[i].clone()).collect();
            let policy = self.policy(route).expect("routed to an existing policy");
            for (i, verdict) in members.into_iter().zip(policy.plan_units(&group)?) {
                verdicts[i] = verdict;
            }
        }
        Ok(verdicts)
    }

    /// Splits a batch by evaluator, keeping each record's index.
    fn split(&self, batch: &[Meta]) -> BTreeMap<Route, Vec<usize>> {
        let mut groups: BTreeMap<Route, Vec<usize>> = BTreeMap::new();
        for (i, meta) in batch.iter().enumerate() {
            groups
                .entry(self.route(Some(&*meta.store)))
                .or_default()
                .push(i);
        }
        groups.remove(&Route::Nobody);
        groups
    }

    fn each_group(
        &mut self,
        batch: &[Meta],
        mut f: impl FnMut(&mut Policy, &[usize], Vec<Meta>) -> Result<()>,
    ) -> Result<()> {
        for (route, members) in self.split(batch) {
            let group: Vec<Meta> = members.iter().map(|&i| batch[i].clone()).collect();
            let policy = self.policy(route).expect("routed to an existing policy");
            f(policy, &members, group)?;
        }
        Ok(())
    }

    /// Pass one.
    pub fn observe(&mut self, batch: &[Meta]) -> Result<()> {
        if self.stores.is_empty() {
            return match &mut self.default {
                Some(policy) => policy.observe(batch),
                None => Ok(()),
            };
        }
        self.each_group(batch, |policy, _, group| policy.observe(&group))
    }

    /// Pass two: keep flags, one per record; records no policy covers are kept.
    pub fn decide(&mut self, batch: &[Meta]) -> Result<Vec<bool>> {
        if self.stores.is_empty() {
            return match &mut self.default {
                Some(policy) => policy.decide(batch),
                None => Ok(vec![true; batch.len()]),
            };
        }
        let mut keep = vec![true; batch.len()];
        self.each_group(batch, |policy, members, group| {
            for (&i, k) in members.iter().zip(policy.decide(&group)?) {
                keep[i] = k;
            }
            Ok(())
        })?;
        Ok(keep)
    }
}
