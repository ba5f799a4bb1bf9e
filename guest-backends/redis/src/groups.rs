//! Consumer groups (`quire:groups`): Redis Streams groups over the store's
//! streams. Every entry handed out is named by stream and id; one that is
//! not a record comes with the reason instead of its JSON, so it is seen
//! and can be acknowledged rather than left pending forever.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::client::Client;
use crate::entries::Entry;
use crate::resp::Reply;

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/groups/v0.1",
        world: "groups-plugin",
    });
}

use bindings::exports::quire::groups::groups::{Delivery, GroupError, GroupState, PendingEntry};

thread_local! {
    /// The store this instance opened last: the groups act on it.
    static CURRENT: RefCell<Option<Rc<RefCell<Client>>>> = const { RefCell::new(None) };
}

/// Makes `client` the one the groups act on.
pub fn set_current(client: &Rc<RefCell<Client>>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(client.clone()));
}

fn with_client<T>(f: impl FnOnce(&mut Client) -> Result<T, GroupError>) -> Result<T, GroupError> {
    let client = CURRENT
        .with(|c| c.borrow().clone())
        .ok_or_else(|| GroupError::Unsupported("no store is open".into()))?;
    let mut client = client.borrow_mut();
    f(&mut client)
}

fn io(e: quire_guest::types::PluginError) -> GroupError {
    GroupError::Io(quire_guest::errors::describe(&e))
}

/// `units`, or every record stream when empty; each checked against the layout.
fn units_of(client: &mut Client, units: Vec<String>) -> Result<Vec<(String, String)>, GroupError> {
    if units.is_empty() {
        return Ok(crate::streams::stream_keys(client)
            .map_err(io)?
            .into_iter()
            .map(|(key, _, kind)| (key, kind))
            .collect());
    }
    units
        .into_iter()
        .map(|unit| match client.layout.parse(&unit) {
            Some((_, kind)) => Ok((unit, kind)),
            None => Err(GroupError::Invalid(format!(
                "`{unit}` is not a record stream under prefix `{}`",
                client.layout.prefix()
            ))),
        })
        .collect()
}

fn server_refused(client: &Client, operation: &str, e: &str) -> GroupError {
    GroupError::Invalid(format!(
        "{operation} on redis://{}: {e}",
        client.conn.addr()
    ))
}

/// Deliveries from one stream's entries (`[id, fields]` each; fields nil
/// for an entry deleted while pending).
fn deliveries(
    unit: &str,
    kind: &str,
    entries: &[Reply],
    times: impl Fn(&[u8]) -> u64,
) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(entries.len());
    for item in entries {
        let Some([id, fields]) = item.items() else {
            continue;
        };
        let raw_id = id.bytes().unwrap_or(&[]);
        let id_text = String::from_utf8_lossy(raw_id).into_owned();
        let (json, problem) = match fields {
            Reply::Array(Some(fields)) => {
                let entry = Entry {
                    id: crate::ids::EntryId::parse(raw_id),
                    raw_id,
                    fields,
                };
                match entry.record(kind) {
                    Ok(found) => (Some(found.json.to_string()), None),
                    Err((_, why)) => (None, Some(why)),
                }
            }
            _ => (
                None,
                Some(format!("entry {id_text} was deleted while pending")),
            ),
        };
        let deliveries = times(raw_id);
        out.push(Delivery {
            unit: unit.to_string(),
            id: id_text,
            json,
            problem,
            deliveries,
        });
    }
    out
}

struct RedisGroups;

impl bindings::exports::quire::groups::groups::Guest for RedisGroups {
    fn create(group: String, units: Vec<String>, start: String) -> Result<Vec<String>, GroupError> {
        with_client(|client| {
            let units = units_of(client, units)?;
            let mut created = Vec::new();
            for (unit, _) in units {
                let reply = client
                    .conn
                    .send(
                        &[vec![
                            "XGROUP",
                            "CREATE",
                            unit.as_str(),
                            group.as_str(),
                            start.as_str(),
                            "MKSTREAM",
                        ]],
                        "create a group",
                    )
                    .map_err(io)?
                    .pop()
                    .expect("one reply");
                match reply {
                    Reply::Error(e) if e.starts_with("BUSYGROUP") => {}
                    Reply::Error(e) => return Err(server_refused(client, "XGROUP CREATE", &e)),
                    _ => created.push(unit),
                }
            }
            Ok(created)
        })
    }

    fn read(
        group: String,
        consumer: String,
        units: Vec<String>,
        count: u32,
        block_ms: u32,
    ) -> Result<Vec<Delivery>, GroupError> {
        with_client(|client| {
            let units = units_of(client, units)?;
            if units.is_empty() {
                return Ok(Vec::new());
            }
            let mut command: Vec<String> = vec![
                "XREADGROUP".into(),
                "GROUP".into(),
                group.clone(),
                consumer.clone(),
                "COUNT".into(),
                count.max(1).to_string(),
            ];
            if block_ms > 0 {
                command.extend(["BLOCK".into(), block_ms.to_string()]);
            }
            command.push("STREAMS".into());
            command.extend(units.iter().map(|u| u.0.clone()));
            command.extend(units.iter().map(|_| ">".to_string()));
            let reply = client
                .conn
                .call_waiting(
                    command,
                    "read as a consumer",
                    Duration::from_millis(block_ms.into()),
                )
                .map_err(io)?;
            let mut out = Vec::new();
            for stream in reply.items().unwrap_or(&[]) {
                let Some([key, entries]) = stream.items() else {
                    continue;
                };
                let key = String::from_utf8_lossy(key.bytes().unwrap_or(&[])).into_owned();
                let kind = units
                    .iter()
                    .find(|u| u.0 == key)
                    .map(|u| u.1.clone())
                    .unwrap_or_default();
                out.extend(deliveries(
                    &key,
                    &kind,
                    entries.items().unwrap_or(&[]),
                    |_| 1,
                ));
            }
            Ok(out)
        })
    }

    fn ack(group: String, unit: String, ids: Vec<String>) -> Result<u64, GroupError> {
        with_client(|client| {
            units_of(client, vec![unit.clone()])?;
            if ids.is_empty() {
                return Ok(0);
            }
            let mut command = vec!["XACK".to_string(), unit, group];
            command.extend(ids);
            let reply = client
                .conn
                .send(&[command], "acknowledge")
                .map_err(io)?
                .pop()
                .expect("one reply");
            match reply {
                Reply::Integer(n) => Ok(n.max(0) as u64),
                Reply::Error(e) => Err(server_refused(client, "XACK", &e)),
                other => Err(GroupError::Io(format!(
                    "XACK answered {}",
                    other.describe()
                ))),
            }
        })
    }

    fn pending(
        group: String,
        units: Vec<String>,
        limit: u32,
    ) -> Result<Vec<GroupState>, GroupError> {
        with_client(|client| {
            let units = units_of(client, units)?;
            let mut out = Vec::new();
            for (unit, _) in units {
                let replies = client
                    .conn
                    .send(
                        &[
                            vec!["XPENDING".to_string(), unit.clone(), group.clone()],
                            vec![
                                "XPENDING".to_string(),
                                unit.clone(),
                                group.clone(),
                                "-".into(),
                                "+".into(),
                                limit.to_string(),
                            ],
                        ],
                        "list pending entries",
                    )
                    .map_err(io)?;
                if let Some(Reply::Error(e)) = replies.iter().find(|r| matches!(r, Reply::Error(_)))
                {
                    // A stream without this group has nothing pending for it.
                    if e.starts_with("NOGROUP") {
                        continue;
                    }
                    return Err(server_refused(client, "XPENDING", e));
                }
                let pending = replies[0]
                    .items()
                    .and_then(|i| i.first())
                    .and_then(Reply::integer)
                    .unwrap_or(0)
                    .max(0) as u64;
                let entries = replies[1]
                    .items()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(pending_entry)
                    .collect();
                out.push(GroupState {
                    unit,
                    pending,
                    entries,
                });
            }
            Ok(out)
        })
    }

    fn claim(
        group: String,
        consumer: String,
        units: Vec<String>,
        min_idle_ms: u64,
        count: u32,
    ) -> Result<Vec<Delivery>, GroupError> {
        with_client(|client| {
            let units = units_of(client, units)?;
            let mut out = Vec::new();
            for (unit, kind) in units {
                let listed = client
                    .conn
                    .send(
                        &[vec![
                            "XPENDING".to_string(),
                            unit.clone(),
                            group.clone(),
                            "IDLE".into(),
                            min_idle_ms.to_string(),
                            "-".into(),
                            "+".into(),
                            count.max(1).to_string(),
                        ]],
                        "list idle entries",
                    )
                    .map_err(io)?
                    .pop()
                    .expect("one reply");
                if let Reply::Error(e) = &listed {
                    if e.starts_with("NOGROUP") {
                        continue;
                    }
                    return Err(server_refused(client, "XPENDING", e));
                }
                let idle: Vec<PendingEntry> = listed
                    .items()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(pending_entry)
                    .collect();
                if idle.is_empty() {
                    continue;
                }
                let mut command = vec![
                    "XCLAIM".to_string(),
                    unit.clone(),
                    group.clone(),
                    consumer.clone(),
                    min_idle_ms.to_string(),
                ];
                command.extend(idle.iter().map(|p| p.id.clone()));
                let claimed = client
                    .conn
                    .send(&[command], "claim idle entries")
                    .map_err(io)?
                    .pop()
                    .expect("one reply");
                if let Reply::Error(e) = &claimed {
                    return Err(server_refused(client, "XCLAIM", e));
                }
                let times = |id: &[u8]| {
                    idle.iter()
                        .find(|p| p.id.as_bytes() == id)
                        .map_or(1, |p| p.deliveries + 1)
                };
                out.extend(deliveries(
                    &unit,
                    &kind,
                    claimed.items().unwrap_or(&[]),
                    times,
                ));
            }
            Ok(out)
        })
    }
}

/// One `[id, consumer, idle, deliveries]` of `XPENDING`'s extended form.
fn pending_entry(item: &Reply) -> Option<PendingEntry> {
    let [id, consumer, idle, times] = item.items()? else {
        return None;
    };
    Some(PendingEntry {
        id: String::from_utf8_lossy(id.bytes()?).into_owned(),
        consumer: String::from_utf8_lossy(consumer.bytes()?).into_owned(),
        idle_ms: idle.integer()?.max(0) as u64,
        deliveries: times.integer()?.max(0) as u64,
    })
}

#[cfg(target_family = "wasm")]
bindings::export!(RedisGroups with_types_in bindings);
