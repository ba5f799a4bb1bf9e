//! The Redis Streams backend: records in Papyra's streams,
//! `{prefix}:{store}:events|audits|dead_letters`, one field `data` holding
//! the record's JSON. A unit is a stream; a record's place is its entry id.
//! The plugin reaches exactly one server, the address the host granted.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]
#![deny(missing_docs)]

pub mod append;
pub mod client;
pub mod conn;
pub mod cursor;
pub mod entries;
pub mod groups;
pub mod ids;
pub mod keys;
pub mod quarantine;
pub mod receipts;
pub mod resp;
pub mod rewrite;
pub mod server;
pub mod streams;
pub mod target;

use std::cell::RefCell;
use std::rc::Rc;

use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestCursor, GuestRewriter, GuestStore, OpenConfig, Receipt,
    ReceiptFilter, Rewriter, Store, StoreDurability,
};
use quire_guest::batch;
use quire_guest::types::{
    Anomaly, AnomalyKind, PluginError, ReadFilter, ReadOrder, RecordBatch, RecordPlace, ScanChunk,
    StorageStats, StoredBatch, SyncLevel, UnitInfo,
};

use crate::client::Client;
use crate::cursor::StreamCursor;
use crate::rewrite::StreamRewrite;
use crate::server::Durable;

struct Redis;

struct RedisStore {
    client: Rc<RefCell<Client>>,
    /// What the read-write open finished or rolled back.
    opened: Vec<Anomaly>,
}

impl Guest for Redis {
    type Cursor = RedisCursor;
    type Rewriter = RedisRewriter;
    type Store = RedisStore;

    fn info() -> BackendInfo {
        BackendInfo {
            name: "redis".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Redis Streams in Papyra's layout ({prefix}:{store}:events|audits|\
                          dead_letters, field `data`); a unit is a stream"
                .into(),
            path_is_file: false,
            persistent: true,
            integrity: "no checksums: a scan finds entries that are not records (no `data`, \
                        invalid JSON or UTF-8, wrong kind), not a changed record that still parses"
                .into(),
        }
    }
}

impl GuestStore for RedisStore {
    fn open(config: OpenConfig) -> Result<Store, PluginError> {
        let settings = target::from_config(&config.target, config.options)?;
        let client = Client::open(
            settings.target,
            &settings.prefix,
            config.read_only,
            settings.accept_unsynced,
        )?;
        let mut client = client;
        let opened = if config.read_only {
            Vec::new()
        } else {
            rewrite::finish_interrupted(&mut client)?
                .into_iter()
                .map(|(stream, note)| {
                    quire_guest::anomalies::at(AnomalyKind::OrphanedUnit, &stream, 0, 0, note)
                })
                .collect()
        };
        let client = Rc::new(RefCell::new(client));
        groups::set_current(&client);
        Ok(Store::new(RedisStore { client, opened }))
    }

    fn open_report(&self) -> Vec<Anomaly> {
        self.opened.clone()
    }

    fn append(&self, batch: RecordBatch, level: SyncLevel) -> Result<u64, PluginError> {
        let records = batch::records(&batch)?;
        self.client.borrow_mut().append(&records, level)
    }

    fn sync(&self, level: SyncLevel) -> Result<(), PluginError> {
        self.client.borrow_mut().sync(level)
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        streams::units(&mut self.client.borrow_mut())
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        Ok(Vec::new())
    }

    fn validate(&self, unit: String, offset: u64, budget: u64) -> Result<ScanChunk, PluginError> {
        streams::validate(&mut self.client.borrow_mut(), &unit, offset, budget)
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        let parts = streams::unit_parts(&self.client.borrow(), &unit)?;
        Ok(Cursor::new(RedisCursor(StreamCursor::new(
            self.client.clone(),
            unit,
            parts,
            filter,
            order,
        ))))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        let (kind, quarantine, remove_damaged) = {
            let mut client = self.client.borrow_mut();
            let (store, kind) = streams::unit_parts(&client, &unit)?;
            if client.read_only {
                return Err(PluginError::InvalidState(
                    "store was opened read-only".into(),
                ));
            }
            let quarantine = client
                .quarantine_next
                .remove(&unit)
                .then(|| client.layout.quarantine_key(&store, &unit));
            // Entries that are not records go only in a repair: one a scan reported.
            let remove_damaged = client.damage_reported.remove(&unit);
            (kind, quarantine, remove_damaged)
        };
        let rewrite = StreamRewrite::new(
            self.client.clone(),
            unit.clone(),
            kind,
            quarantine,
            remove_damaged,
        );
        Ok(Rewriter::new(RedisRewriter { unit, rewrite }))
    }

    fn drop_unit(&self, unit: String, _receipt: Option<Receipt>) -> Result<(), PluginError> {
        streams::unit_parts(&self.client.borrow(), &unit)?;
        Err(PluginError::InvalidState(format!(
            "{unit} is a live stream and is never dropped whole: a rewrite removes the entries \
             read from it, and what other writers add meanwhile stays"
        )))
    }

    fn put_receipt(&self, receipt: Receipt) -> Result<(), PluginError> {
        receipts::put(&mut self.client.borrow_mut(), &receipt)
    }

    fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        receipts::list(&mut self.client.borrow_mut(), &filter)
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        let mut client = self.client.borrow_mut();
        streams::unit_parts(&client, &unit)?;
        quarantine::dump(&mut client, &unit, &dir, &name)
    }

    fn seal(&self) -> Result<(), PluginError> {
        Err(PluginError::Unsupported(
            "seal: a Redis stream has no sealed units; every stream stays appendable".into(),
        ))
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        let mut client = self.client.borrow_mut();
        let units = streams::units(&mut client)?;
        let facts = client.facts()?;
        let records: u64 = units.iter().filter_map(|u| u.records).sum();
        Ok(StorageStats {
            total_bytes: units.iter().map(|u| u.bytes).sum(),
            units,
            details: vec![
                (
                    "server".into(),
                    format!("redis {} at {}", facts.version, client.conn.addr()),
                ),
                ("persistence".into(), facts.persistence.clone()),
                (
                    "durable appends".into(),
                    durable_words(&facts.durable, client.accept_unsynced),
                ),
                ("records".into(), records.to_string()),
                (
                    "bytes".into(),
                    "the server's MEMORY USAGE per stream (every node counted)".into(),
                ),
            ],
        })
    }

    fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        let mut client = self.client.borrow_mut();
        let facts = client.facts()?;
        let codec = format!(
            "{} ({})",
            streams::CODEC,
            durable_words(&facts.durable, client.accept_unsynced)
        );
        Ok(client
            .counts
            .iter()
            .map(|(store, c)| StoreDurability {
                store: store.clone(),
                codec: codec.clone(),
                live_unit: None,
                accepted: c.accepted,
                buffered: 0,
                unsynced: c.unsynced,
            })
            .collect())
    }
}

/// What `durable` means on this server, in words.
fn durable_words(durable: &Durable, accept_unsynced: bool) -> String {
    match durable {
        Durable::Not(why) if accept_unsynced => {
            format!("durable answered as written (accept-unsynced): {why}")
        }
        Durable::EveryReply => "durable: the server syncs its AOF before every reply".into(),
        Durable::WaitAof => "durable: WAITAOF after the writes".into(),
        Durable::Not(why) => format!("durable refused: {why}"),
    }
}

struct RedisCursor(StreamCursor);

impl GuestCursor for RedisCursor {
    fn next(&self, max_records: u32, max_bytes: u32) -> Result<StoredBatch, PluginError> {
        self.0.next(max_records, max_bytes)
    }
}

struct RedisRewriter {
    unit: String,
    rewrite: StreamRewrite,
}

impl GuestRewriter for RedisRewriter {
    fn write(&self, _: RecordBatch) -> Result<(), PluginError> {
        Err(PluginError::Unsupported(
            "a stream is rewritten in place: give the places of the entries to keep (copy); \
             new entries cannot be written into the middle of a stream"
                .into(),
        ))
    }

    fn copy(&self, places: Vec<RecordPlace>) -> Result<(), PluginError> {
        self.rewrite.copy(&places)
    }

    fn commit(&self) -> Result<u64, PluginError> {
        let seen = self.rewrite_seen();
        self.rewrite.commit(seen)
    }

    fn abort(&self) -> Result<(), PluginError> {
        self.rewrite.abort()
    }
}

impl RedisRewriter {
    fn rewrite_seen(&self) -> Option<ids::EntryId> {
        self.rewrite.seen(&self.unit)
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_backend!(Redis);
