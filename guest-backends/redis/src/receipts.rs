//! Receipts kept in one stream, `{prefix}:quire:receipts` (not a record
//! stream: the layout never lists it as a unit).

use quire_guest::backend::{Receipt, ReceiptFilter};
use quire_guest::receipts::{kind_from, kind_name, matches};
use quire_guest::types::PluginError;

use crate::client::Client;
use crate::entries;
use crate::streams::PAGE;

fn key(client: &Client) -> String {
    format!("{}:quire:receipts", client.layout.prefix())
}

/// Stores a receipt (one entry, fields named as the WIT names them).
pub fn put(client: &mut Client, receipt: &Receipt) -> Result<(), PluginError> {
    let key = key(client);
    client.conn.call(
        vec![
            "XADD".to_string(),
            key,
            "*".into(),
            "kind".into(),
            kind_name(receipt.kind).into(),
            "unit".into(),
            receipt.unit.clone(),
            "store".into(),
            receipt.store.clone().unwrap_or_default(),
            "at".into(),
            receipt.at.to_string(),
            "json".into(),
            receipt.json.clone(),
        ],
        "keep a receipt",
    )?;
    Ok(())
}

/// Receipts that pass `filter`, oldest first.
pub fn list(client: &mut Client, filter: &ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
    let key = key(client);
    let mut out = Vec::new();
    let mut from = None;
    loop {
        let reply = crate::streams::page_from(client, &key, from, true, PAGE)?;
        let list = entries::entries(&reply).map_err(|e| client.conn.failure("list receipts", e))?;
        for entry in &list {
            let field = |name: &str| {
                String::from_utf8_lossy(entry.field(name).unwrap_or_default()).into_owned()
            };
            // Entries someone else added to the stream are not receipts.
            let Some(kind) = kind_from(&field("kind")) else {
                continue;
            };
            let store = field("store");
            let receipt = Receipt {
                kind,
                unit: field("unit"),
                store: (!store.is_empty()).then_some(store),
                at: field("at").parse().unwrap_or(0.0),
                json: field("json"),
            };
            if matches(&receipt, filter) {
                out.push(receipt);
                if filter.limit.is_some_and(|l| out.len() >= l as usize) {
                    return Ok(out);
                }
            }
        }
        match list.last().and_then(|last| last.id) {
            Some(last) if list.len() == PAGE => from = Some(last),
            _ => return Ok(out),
        }
    }
}
