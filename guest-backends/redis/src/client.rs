//! The backend's state over one connection: the layout, the append script,
//! the id clock, what the server promises, and what was accepted.

use std::collections::BTreeMap;

use quire_guest::batch::EnvelopeRef;
use quire_guest::types::{PluginError, SyncLevel};

use crate::append::{self, IdClock};
use crate::conn::{Connection, Target};
use crate::keys::Layout;
use crate::server::{self, Durable, ServerFacts};

/// Accepted and not yet known durable, per store.
#[derive(Default, Clone, Copy)]
pub struct Counts {
    /// Records accepted since the store was opened.
    pub accepted: u64,
    /// Of those, acknowledged by the server but not known to be synced.
    pub unsynced: u64,
}

/// One open store's client.
pub struct Client {
    /// The connection.
    pub conn: Connection,
    /// Stream keys.
    pub layout: Layout,
    /// Opened read-only: appends refused.
    pub read_only: bool,
    /// On a server that cannot sync, answer durable requests as written
    /// (reported: such records stay counted as unsynced) instead of failing.
    pub accept_unsynced: bool,
    sha: Option<String>,
    clock: IdClock,
    facts: Option<(u64, ServerFacts)>,
    /// Per store.
    pub counts: BTreeMap<String, Counts>,
    /// Per stream, the newest entry a read or scan has seen: a rewrite
    /// removes nothing after it (entries the host has not seen).
    pub seen: BTreeMap<String, crate::ids::EntryId>,
    /// Streams whose next rewrite copies removed entries to quarantine.
    pub quarantine_next: std::collections::BTreeSet<String>,
    /// Per stream, the last entry appended and not yet known synced, and
    /// the connection it was appended on.
    unsynced_tails: BTreeMap<String, crate::ids::EntryId>,
    unsynced_on: u64,
    /// Streams a scan found entries that are not records in: their next
    /// rewrite (the repair) removes those; any other rewrite keeps them.
    pub damage_reported: std::collections::BTreeSet<String>,
}

impl Client {
    /// A client for `target`; connects (and fails, naming the address)
    /// before the store is handed out.
    pub fn open(
        target: Target,
        prefix: &str,
        read_only: bool,
        accept_unsynced: bool,
    ) -> Result<Client, PluginError> {
        let layout = Layout::new(prefix).map_err(PluginError::InvalidConfig)?;
        let mut client = Client {
            conn: Connection::new(target),
            layout,
            read_only,
            accept_unsynced,
            sha: None,
            clock: IdClock::default(),
            facts: None,
            counts: BTreeMap::new(),
            seen: BTreeMap::new(),
            quarantine_next: Default::default(),
            damage_reported: Default::default(),
            unsynced_tails: BTreeMap::new(),
            unsynced_on: 0,
        };
        client.conn.call(vec!["PING"], "connect")?;
        Ok(client)
    }

    /// Notes that a read or scan of `key` has seen entry `id`.
    pub fn saw(&mut self, key: &str, id: crate::ids::EntryId) {
        match self.seen.get_mut(key) {
            Some(newest) => *newest = (*newest).max(id),
            None => {
                self.seen.insert(key.to_string(), id);
            }
        }
    }

    /// What the server promises (asked again after every reconnect).
    pub fn facts(&mut self) -> Result<ServerFacts, PluginError> {
        let connects = self.conn.connects();
        match &self.facts {
            Some((at, facts)) if *at == connects && connects > 0 => Ok(facts.clone()),
            _ => {
                let facts = server::probe(&mut self.conn)?;
                self.facts = Some((self.conn.connects(), facts.clone()));
                Ok(facts)
            }
        }
    }

    /// Appends a batch, once, all or nothing; returns its stored bytes.
    pub fn append(
        &mut self,
        records: &[EnvelopeRef<'_>],
        level: SyncLevel,
    ) -> Result<u64, PluginError> {
        if self.read_only {
            return Err(PluginError::InvalidState(
                "store was opened read-only".into(),
            ));
        }
        let planned = append::plan(&self.layout, records)?;
        // A durable append the server cannot keep is refused before it is sent.
        if level == SyncLevel::Durable
            && !self.accept_unsynced
            && let Durable::Not(reason) = self.facts()?.durable
        {
            return Err(self.cannot_be_durable(
                "durable append",
                &reason,
                "nothing of this batch was written",
            ));
        }
        let tails = append::send(&mut self.conn, &mut self.sha, &mut self.clock, &planned)?;
        // Under `appendfsync always` the reply itself came after the sync.
        let synced = self.facts()?.durable == Durable::EveryReply;
        if !synced {
            self.unsynced_tails.extend(tails);
            self.unsynced_on = self.conn.connects();
        }
        for r in records {
            let counts = self.counts.entry(r.store.to_string()).or_default();
            counts.accepted += 1;
            counts.unsynced += u64::from(!synced);
        }
        self.sync(level)?;
        Ok(planned.bytes)
    }

    /// The error for a durable request the server cannot keep: `what` says
    /// what became of the records.
    fn cannot_be_durable(&self, operation: &str, reason: &str, what: &str) -> PluginError {
        self.conn.failure(
            operation,
            format!(
                "the server cannot promise durable writes: {reason}; {what} (or open with \
                 -o accept-unsynced=true: durable requests are then answered once the server \
                 has the records, which stay reported as unsynced)"
            ),
        )
    }

    /// Brings acknowledged appends to `level`.
    pub fn sync(&mut self, level: SyncLevel) -> Result<(), PluginError> {
        if level != SyncLevel::Durable || self.counts.values().all(|c| c.unsynced == 0) {
            return Ok(());
        }
        match self.facts()?.durable {
            Durable::EveryReply => {}
            Durable::WaitAof => {
                // WAITAOF waits for this connection's writes only. After a
                // reconnect, the records must still be there (a restarted
                // server may have lost them), and a marker write on this
                // connection makes the wait cover everything before it.
                if self.conn.connects() != self.unsynced_on {
                    for (key, id) in self.unsynced_tails.clone() {
                        let id = id.to_string();
                        let hit = self.conn.call(
                            vec!["XRANGE", key.as_str(), id.as_str(), id.as_str()],
                            "sync",
                        )?;
                        if hit.items().is_none_or(|i| i.is_empty()) {
                            let unsynced: u64 = self.counts.values().map(|c| c.unsynced).sum();
                            return Err(self.conn.failure(
                                "sync",
                                format!(
                                    "entry {id} of {key}, acknowledged before the connection broke, \
                                     is no longer on the server: {unsynced} record(s) not known \
                                     durable may be lost"
                                ),
                            ));
                        }
                    }
                    let marker = format!("{}:quire:sync", self.layout.prefix());
                    self.conn.call(vec!["INCR", marker.as_str()], "sync")?;
                }
                let timeout = "0";
                let reply = self
                    .conn
                    .call(vec!["WAITAOF", "1", "0", timeout], "WAITAOF")?;
                let local = reply
                    .items()
                    .and_then(|i| i.first())
                    .and_then(|n| n.integer());
                if local != Some(1) {
                    return Err(self.conn.failure(
                        "WAITAOF",
                        format!(
                            "the server did not confirm its fsync ({})",
                            reply.describe()
                        ),
                    ));
                }
            }
            // The downgrade asked for: the records stay counted as unsynced.
            Durable::Not(_) if self.accept_unsynced => return Ok(()),
            Durable::Not(reason) => {
                let unsynced: u64 = self.counts.values().map(|c| c.unsynced).sum();
                return Err(self.cannot_be_durable(
                    "sync",
                    &reason,
                    &format!("{unsynced} record(s) the server acknowledged are not synced"),
                ));
            }
        }
        self.counts.values_mut().for_each(|c| c.unsynced = 0);
        self.unsynced_tails.clear();
        Ok(())
    }
}
