//! Consumer groups, for backends that have them (Redis Streams): a group's
//! consumers share a unit's records, each delivered to one of them and
//! pending until acknowledged. An entry that is not a record is delivered
//! with the reason and its id, never dropped and left pending unseen.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::session::Session;
use crate::store::Store;
use crate::wit::groups::{self, GroupError};

/// One entry handed to a consumer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupDelivery {
    /// The unit (stream) it is in.
    pub unit: String,
    /// Its id (`ms-seq`).
    pub id: String,
    /// The record's JSON, when the entry is a record.
    pub json: Option<String>,
    /// Why the entry is not a record; it stays pending until acknowledged.
    pub problem: Option<String>,
    /// Times delivered, this one included.
    pub deliveries: u64,
}

/// One pending entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupPendingEntry {
    /// Its id.
    pub id: String,
    /// The consumer holding it.
    pub consumer: String,
    /// Since it was last delivered.
    pub idle_ms: u64,
    /// Times delivered.
    pub deliveries: u64,
}

/// A group's pending entries in one unit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupPending {
    /// The unit.
    pub unit: String,
    /// Entries pending in it.
    pub pending: u64,
    /// The oldest of them, as many as asked for.
    pub entries: Vec<GroupPendingEntry>,
}

fn delivery(d: groups::Delivery) -> GroupDelivery {
    // The plugin's words: escaped once for every terminal and log.
    let clean = |s: String| crate::text::clean(&s).into_owned();
    GroupDelivery {
        unit: clean(d.unit),
        id: clean(d.id),
        json: d.json,
        problem: d.problem.map(clean),
        deliveries: d.deliveries,
    }
}

impl Session {
    /// Runs a groups call; a backend without the interface says so.
    fn group_call<T>(
        &mut self,
        operation: &str,
        f: impl AsyncFnOnce(
            &groups::exports::quire::groups::groups::Guest,
            &mut crate::instance::WasmStore,
        ) -> wasmtime::Result<std::result::Result<T, GroupError>>,
    ) -> Result<T> {
        self.call(operation, async |l| {
            let Some(plugin) = l.plugin.groups() else {
                return Ok(Err(crate::wit::PluginError::Unsupported(
                    "this backend has no consumer groups (the redis backend has)".into(),
                )));
            };
            Ok(f(plugin.quire_groups_groups(), &mut l.store)
                .await?
                .map_err(groups::plugin_error))
        })
    }
}

impl Store {
    /// Creates `group` on `units` (empty: every unit) from `start` (`0`:
    /// the first entry; `$`: new entries only). Returns where it was made.
    pub fn group_create(&self, group: &str, units: &[String], start: &str) -> Result<Vec<String>> {
        self.session().group_call("group create", async |g, s| {
            g.call_create(s, group, units, start).await
        })
    }

    /// Reads up to `count` new entries per unit as `consumer` of `group`,
    /// waiting up to `block` when there are none. The wait must end inside
    /// the per-call timeout, with a second to spare.
    pub fn group_read(
        &self,
        group: &str,
        consumer: &str,
        units: &[String],
        count: u32,
        block: Duration,
    ) -> Result<Vec<GroupDelivery>> {
        if block + Duration::from_secs(1) > self.config.limits.timeout {
            return Err(Error::Usage(format!(
                "a read that blocks {block:?} would outlast the plugin timeout of {:?}: block \
                 for at most a second less",
                self.config.limits.timeout
            )));
        }
        let block_ms = block.as_millis().min(u32::MAX as u128) as u32;
        let got = self.session().group_call("group read", async |g, s| {
            g.call_read(s, group, consumer, units, count, block_ms)
                .await
        })?;
        Ok(got.into_iter().map(delivery).collect())
    }

    /// Acknowledges `ids` of `unit` for `group`; how many were pending.
    pub fn group_ack(&self, group: &str, unit: &str, ids: &[String]) -> Result<u64> {
        self.session().group_call("group ack", async |g, s| {
            g.call_ack(s, group, unit, ids).await
        })
    }

    /// What `group` has pending per unit, the oldest `limit` entries listed.
    pub fn group_pending(
        &self,
        group: &str,
        units: &[String],
        limit: u32,
    ) -> Result<Vec<GroupPending>> {
        let got = self.session().group_call("group pending", async |g, s| {
            g.call_pending(s, group, units, limit).await
        })?;
        Ok(got
            .into_iter()
            .map(|p| GroupPending {
                unit: crate::text::clean(&p.unit).into_owned(),
                pending: p.pending,
                entries: p
                    .entries
                    .into_iter()
                    .map(|e| GroupPendingEntry {
                        id: crate::text::clean(&e.id).into_owned(),
                        consumer: crate::text::clean(&e.consumer).into_owned(),
                        idle_ms: e.idle_ms,
                        deliveries: e.deliveries,
                    })
                    .collect(),
            })
            .collect())
    }

    /// Hands `consumer` up to `count` entries per unit that have been
    /// pending for at least `min_idle` (another consumer died holding them).
    pub fn group_claim(
        &self,
        group: &str,
        consumer: &str,
        units: &[String],
        min_idle: Duration,
        count: u32,
    ) -> Result<Vec<GroupDelivery>> {
        let idle = min_idle.as_millis().min(u64::MAX as u128) as u64;
        let got = self.session().group_call("group claim", async |g, s| {
            g.call_claim(s, group, consumer, units, idle, count).await
        })?;
        Ok(got.into_iter().map(delivery).collect())
    }
}
