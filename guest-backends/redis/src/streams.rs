//! The units of a Redis store: every record stream under the prefix, and
//! validating one entry by entry, all of it (never a sample).

use quire_guest::anomalies;
use quire_guest::types::{Anomaly, AnomalyKind, PluginError, ReadOrder, ScanChunk, UnitInfo};

use crate::client::Client;
use crate::entries;
use crate::ids::EntryId;
use crate::resp::Reply;

/// Entries fetched per `XRANGE` while validating or reading.
pub const PAGE: usize = 1000;

/// The codec name units report.
pub const CODEC: &str = "redis-stream";

/// Every key matching `pattern` whose type is `kind` (`stream`, `list`),
/// sorted and once each (SCAN may return a key twice).
pub fn scan_keys(
    client: &mut Client,
    pattern: &str,
    kind: &str,
    operation: &str,
) -> Result<Vec<String>, PluginError> {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    loop {
        let reply = client.conn.call_idempotent(
            vec![
                "SCAN",
                cursor.as_str(),
                "MATCH",
                pattern,
                "COUNT",
                "1000",
                "TYPE",
                kind,
            ],
            operation,
        )?;
        let (Some(next), Some(found)) = (
            reply.items().and_then(|i| i.first()).and_then(Reply::bytes),
            reply.items().and_then(|i| i.get(1)).and_then(Reply::items),
        ) else {
            return Err(client
                .conn
                .failure(operation, format!("SCAN answered {}", reply.describe())));
        };
        keys.extend(
            found
                .iter()
                .filter_map(Reply::bytes)
                .map(|k| String::from_utf8_lossy(k).into_owned()),
        );
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Every record stream under the prefix, by name, with its store and kind.
pub fn stream_keys(client: &mut Client) -> Result<Vec<(String, String, String)>, PluginError> {
    let pattern = client.layout.pattern();
    let keys = scan_keys(client, &pattern, "stream", "list streams")?;
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let (store, kind) = client.layout.parse(&key)?;
            Some((key, store, kind))
        })
        .collect())
}

/// The store and kind of `unit`, or `no-such-unit`.
pub fn unit_parts(client: &Client, unit: &str) -> Result<(String, String), PluginError> {
    client
        .layout
        .parse(unit)
        .ok_or_else(|| PluginError::NoSuchUnit(unit.to_string()))
}

/// Unit infos: length (`XLEN`) and the server's memory estimate, per stream.
pub fn units(client: &mut Client) -> Result<Vec<UnitInfo>, PluginError> {
    let keys = stream_keys(client)?;
    let mut commands = Vec::with_capacity(keys.len() * 2);
    for (key, _, _) in &keys {
        commands.push(vec!["XLEN".to_string(), key.clone()]);
        commands.push(vec![
            "MEMORY".into(),
            "USAGE".into(),
            key.clone(),
            "SAMPLES".into(),
            "0".into(),
        ]);
    }
    let replies = client.conn.send(&commands, "measure streams")?;
    Ok(keys
        .into_iter()
        .zip(replies.chunks(2))
        .map(|((key, store, _), r)| UnitInfo {
            id: key,
            store: Some(store),
            bytes: r[1].integer().unwrap_or(0).max(0) as u64,
            records: r[0].integer().map(|n| n.max(0) as u64),
            min_timestamp: None,
            max_timestamp: None,
            sealed: false,
            codec: CODEC.into(),
        })
        .collect())
}

/// One page of `key` in `order` (`XRANGE`, or `XREVRANGE` newest first):
/// at most `count` entries from `from` on (`exclusive`: after it; `None`:
/// from the end the order starts at).
pub fn page(
    client: &mut Client,
    key: &str,
    order: ReadOrder,
    from: Option<EntryId>,
    exclusive: bool,
    count: usize,
) -> Result<Reply, PluginError> {
    let (command, open_start, open_end) = match order {
        ReadOrder::OldestFirst => ("XRANGE", "-", "+"),
        ReadOrder::NewestFirst => ("XREVRANGE", "+", "-"),
    };
    let start = match from {
        None => open_start.to_string(),
        Some(id) if exclusive => format!("({id}"),
        Some(id) => id.to_string(),
    };
    let count = count.to_string();
    client.conn.call_idempotent(
        vec![
            command,
            key,
            start.as_str(),
            open_end,
            "COUNT",
            count.as_str(),
        ],
        "read a stream",
    )
}

/// [`page`] oldest first.
pub fn page_from(
    client: &mut Client,
    key: &str,
    from: Option<EntryId>,
    exclusive: bool,
    count: usize,
) -> Result<Reply, PluginError> {
    page(client, key, ReadOrder::OldestFirst, from, exclusive, count)
}

/// Validates `unit` from the entry packed in `offset` for about `budget`
/// bytes of entries; every damaged entry is reported with its id.
pub fn validate(
    client: &mut Client,
    unit: &str,
    offset: u64,
    budget: u64,
) -> Result<ScanChunk, PluginError> {
    let (_, kind) = unit_parts(client, unit)?;
    let from = (offset > 0).then(|| EntryId::from_offset(offset));
    let reply = page_from(client, unit, from, false, PAGE)?;
    let list = entries::entries(&reply).map_err(|e| client.conn.failure("read a stream", e))?;
    let mut anomalies: Vec<Anomaly> = Vec::new();
    let mut records = 0;
    let mut seen = 0u64;
    let mut next = None;
    let mut done = list.len() < PAGE;
    for (i, entry) in list.iter().enumerate() {
        if let Some(id) = entry.id {
            client.saw(unit, id);
        }
        let bytes = entry.bytes();
        seen += bytes;
        match entry.record(&kind) {
            Ok(_) => records += 1,
            Err((k, detail)) => {
                client.damage_reported.insert(unit.to_string());
                anomalies.push(anomalies::at(
                    k,
                    unit,
                    entry.offset().unwrap_or(0),
                    bytes,
                    detail,
                ));
            }
        }
        match entry.id.and_then(|id| id.next().offset()) {
            Some(after) => next = Some(after),
            None => {
                // Nothing after this id can be named: the walk ends here.
                if i + 1 < list.len() {
                    anomalies.push(anomalies::at(
                        AnomalyKind::InvalidRecord,
                        unit,
                        entry.offset().unwrap_or(0),
                        0,
                        format!(
                            "entries after {} cannot be addressed and were not checked",
                            entry.id_text()
                        ),
                    ));
                }
                done = true;
                break;
            }
        }
        if seen >= budget.max(1) && i + 1 < list.len() {
            done = false;
            break;
        }
    }
    Ok(ScanChunk {
        anomalies,
        records,
        next_offset: next.unwrap_or(offset),
        done,
    })
}
