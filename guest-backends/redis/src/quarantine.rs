//! Quarantine of a stream: a copy of every entry (id and fields, one JSON
//! line each) in the quarantine directory the host granted, and the next
//! rewrite of the stream moves each entry it removes, with its original id
//! and every field, into Papyra's quarantine stream.

use std::io::Write;

use quire_guest::errors::IoContext;
use quire_guest::types::PluginError;

use crate::client::Client;
use crate::entries;
use crate::ids::EntryId;

/// Writes every entry of `stream` to `dir/name`, synced; returns the bytes.
pub fn dump(client: &mut Client, stream: &str, dir: &str, name: &str) -> Result<u64, PluginError> {
    let path = std::path::Path::new(dir).join(name);
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx("create", &shown)?;
    let mut out = std::io::BufWriter::new(file);
    let mut from: Option<EntryId> = None;
    let mut written = 0u64;
    loop {
        let reply = crate::streams::page_from(client, stream, from, true, crate::streams::PAGE)?;
        let list =
            entries::entries(&reply).map_err(|e| client.conn.failure("quarantine a stream", e))?;
        for entry in &list {
            let fields: Vec<serde_json::Value> = entry
                .fields
                .chunks(2)
                .map(|pair| {
                    let text = |i: usize| {
                        let bytes = pair.get(i).and_then(|r| r.bytes()).unwrap_or(&[]);
                        match std::str::from_utf8(bytes) {
                            Ok(t) => serde_json::Value::from(t),
                            // Not text: the bytes, exactly.
                            Err(_) => serde_json::Value::from(bytes.to_vec()),
                        }
                    };
                    serde_json::Value::Array(vec![text(0), text(1)])
                })
                .collect();
            let line =
                serde_json::json!({ "stream": stream, "id": entry.id_text(), "fields": fields });
            let mut text = line.to_string();
            text.push('\n');
            out.write_all(text.as_bytes()).ctx("write", &shown)?;
            written += text.len() as u64;
            if let Some(id) = entry.id {
                from = Some(id);
            }
        }
        if list.len() < crate::streams::PAGE || from.is_none() {
            break;
        }
    }
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("write", &shown)?;
    file.sync_all().ctx("sync", &shown)?;
    client.quarantine_next.insert(stream.to_string());
    Ok(written)
}
