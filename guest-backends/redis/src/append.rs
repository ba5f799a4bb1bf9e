//! Appends: one script call per batch, all or nothing, safe to retry.
//!
//! Every record gets an explicit entry id chosen here, consecutive across
//! the batch. The script first looks for the batch's first entry: if it is
//! there with the same data, an earlier attempt whose reply was lost
//! already stored the batch, and nothing is written twice. Otherwise it
//! checks that each stream's last id is below the ids planned for it (a
//! script that failed half-way would not roll back, so it must not fail
//! once it writes), then adds every entry. Another writer that got ahead
//! makes the script refuse before writing anything; the batch is planned
//! again above that writer's id.

use quire_guest::batch::EnvelopeRef;
use quire_guest::errors::rejected;
use quire_guest::types::PluginError;

use crate::conn::Connection;
use crate::ids::{self, EntryId};
use crate::keys::Layout;
use crate::resp::Reply;

/// The append script. KEYS: the batch's streams, in order of first use.
/// ARGV[1]: `retry` when an earlier attempt's reply was lost, else `first`;
/// then per record: `key index, id, data`.
pub const SCRIPT: &str = r#"
local function above(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
if ARGV[1] == 'retry' then
  -- Stored by the lost attempt only if every planned entry is there as planned.
  local found = 0
  for j = 2, #ARGV, 3 do
    local hit = redis.call('XRANGE', KEYS[tonumber(ARGV[j])], ARGV[j + 1], ARGV[j + 1])
    if #hit == 1 then
      local fields = hit[1][2]
      if #fields == 2 and fields[1] == 'data' and fields[2] == ARGV[j + 2] then
        found = found + 1
      end
    end
  end
  if found == (#ARGV - 1) / 3 then return {'stored'} end
  if found > 0 then return {'partly', tostring(found)} end
end
local seen = {}
for j = 2, #ARGV, 3 do
  local k = tonumber(ARGV[j])
  if not seen[k] then
    seen[k] = true
    if redis.call('EXISTS', KEYS[k]) == 1 then
      local info = redis.call('XINFO', 'STREAM', KEYS[k])
      for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' and not above(ARGV[j + 1], info[i + 1]) then
          return {'behind', KEYS[k], info[i + 1]}
        end
      end
    end
  end
end
for j = 2, #ARGV, 3 do
  redis.call('XADD', KEYS[tonumber(ARGV[j])], ARGV[j + 1], 'data', ARGV[j + 2])
end
return {'added'}
"#;

/// Most records one batch may hold (its ids share a millisecond or two).
pub const MAX_BATCH: usize = ids::MAX_SEQ as usize;

/// Attempts at one batch: reconnects after a dropped connection and
/// re-plans after another writer got ahead.
const ATTEMPTS: usize = 6;

/// A batch ready to send: its streams and its arguments, per record.
pub struct Planned {
    keys: Vec<String>,
    /// Per record: index into `keys` (0-based), and its data.
    records: Vec<(usize, Vec<u8>)>,
    /// Stored bytes of the batch.
    pub bytes: u64,
}

impl Planned {
    /// The last id each stream got, when the batch started at `first`.
    fn last_ids(&self, first: EntryId) -> Vec<(String, EntryId)> {
        let mut last: Vec<Option<EntryId>> = vec![None; self.keys.len()];
        for (i, (k, _)) in self.records.iter().enumerate() {
            last[*k] = Some(EntryId {
                ms: first.ms,
                seq: first.seq + i as u64,
            });
        }
        self.keys
            .iter()
            .zip(last)
            .filter_map(|(key, id)| Some((key.clone(), id?)))
            .collect()
    }
}

/// Which stream each record goes to; a record that names none is refused
/// with its index, before anything is sent.
pub fn plan(layout: &Layout, records: &[EnvelopeRef<'_>]) -> Result<Planned, PluginError> {
    if records.len() > MAX_BATCH {
        return Err(rejected(
            MAX_BATCH,
            format!("a batch holds at most {MAX_BATCH} records; split it"),
        ));
    }
    let mut keys: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(records.len());
    let mut bytes = 0;
    for (index, r) in records.iter().enumerate() {
        let key = layout
            .key(r.store, r.kind)
            .map_err(|reason| rejected(index, reason))?;
        // Batches are small in streams: a scan from the end finds repeats fast.
        let k = match keys.iter().rposition(|k| *k == key) {
            Some(k) => k,
            None => {
                keys.push(key);
                keys.len() - 1
            }
        };
        bytes += ids::entry_bytes([&b"data"[..], r.json.as_bytes()]);
        out.push((k, r.json.as_bytes().to_vec()));
    }
    Ok(Planned {
        keys,
        records: out,
        bytes,
    })
}

/// Where ids come from: never below the clock, never below the last batch.
#[derive(Default)]
pub struct IdClock {
    next: EntryId,
}

impl IdClock {
    /// The first id of a batch of `n`, with room for all `n` in the packing.
    fn take(&mut self, n: usize, above: Option<EntryId>) -> EntryId {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut first = self.next.max(EntryId { ms: now, seq: 0 });
        if let Some(above) = above {
            first = first.max(above.next());
        }
        if first.seq + n as u64 > ids::MAX_SEQ {
            first = EntryId {
                ms: first.ms + 1,
                seq: 0,
            };
        }
        self.next = EntryId {
            ms: first.ms,
            seq: first.seq + n as u64,
        };
        first
    }
}

/// Sends a planned batch until the server has it, once.
pub fn send(
    conn: &mut Connection,
    sha: &mut Option<String>,
    clock: &mut IdClock,
    batch: &Planned,
) -> Result<Vec<(String, EntryId)>, PluginError> {
    let mut above = None;
    let mut first = clock.take(batch.records.len(), above);
    let mut last_error = None;
    // Whether an attempt with the current ids may have reached the server.
    let mut maybe_sent = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // A server busy with a slow sync or script gets a moment.
            std::thread::sleep(std::time::Duration::from_millis(20 << attempt.min(5)));
        }
        let reply = match call_script(conn, sha, batch, first, maybe_sent) {
            Ok(reply) => reply,
            Err(e @ PluginError::Io(_)) => {
                // The reply was lost, or the server went away: the same ids
                // again, so a batch that did arrive is recognised.
                maybe_sent |= !matches!(&e, PluginError::Io(f) if f.message.contains("will load the script again"));
                last_error = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let items = reply.items().unwrap_or(&[]);
        match items.first().and_then(Reply::bytes) {
            Some(b"added") | Some(b"stored") => return Ok(batch.last_ids(first)),
            Some(b"partly") => {
                return Err(conn.failure(
                    "append",
                    format!(
                        "after a lost reply, only {} of the batch's {} records are in the streams \
                         as planned (someone removed or replaced entries meanwhile); not retried",
                        String::from_utf8_lossy(
                            items.get(1).and_then(Reply::bytes).unwrap_or(b"?")
                        ),
                        batch.records.len()
                    ),
                ));
            }
            Some(b"behind") => {
                let top = items.get(2).and_then(Reply::bytes).and_then(EntryId::parse);
                let Some(top) = top else {
                    return Err(conn.failure(
                        "append",
                        format!("the append script answered {}", reply.describe()),
                    ));
                };
                if top.ms > ids::MAX_MS {
                    let key = items
                        .get(1)
                        .and_then(Reply::bytes)
                        .map(String::from_utf8_lossy);
                    return Err(conn.failure(
                        "append",
                        format!(
                            "stream {} already holds id {top}, beyond the ids quire can address",
                            key.unwrap_or_default()
                        ),
                    ));
                }
                above = Some(top.max(above.unwrap_or(top)));
                first = clock.take(batch.records.len(), above);
                // New ids were never sent.
                maybe_sent = false;
            }
            _ => {
                return Err(conn.failure(
                    "append",
                    format!("the append script answered {}", reply.describe()),
                ));
            }
        }
    }
    if let (true, Some(e)) = (maybe_sent, last_error.take()) {
        return Err(quire_guest::errors::with_note(
            e,
            " (the batch may or may not be stored: an attempt reached the server and its reply was lost)",
        ));
    }
    Err(last_error.unwrap_or_else(|| {
        conn.failure(
            "append",
            format!("other writers kept getting ahead ({ATTEMPTS} attempts)"),
        )
    }))
}

fn call_script(
    conn: &mut Connection,
    sha: &mut Option<String>,
    batch: &Planned,
    first: EntryId,
    retry: bool,
) -> Result<Reply, PluginError> {
    let loaded = match sha {
        Some(sha) => sha.clone(),
        None => {
            let reply = conn.call(
                vec![&b"SCRIPT"[..], b"LOAD", SCRIPT.as_bytes()],
                "load the append script",
            )?;
            let loaded = reply
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(|| conn.failure("load the append script", reply.describe()))?;
            *sha = Some(loaded.clone());
            loaded
        }
    };
    let mut args: Vec<Vec<u8>> = Vec::with_capacity(4 + batch.keys.len() + 3 * batch.records.len());
    args.push(b"EVALSHA".to_vec());
    args.push(loaded.into_bytes());
    args.push(batch.keys.len().to_string().into_bytes());
    args.extend(batch.keys.iter().map(|k| k.as_bytes().to_vec()));
    args.push(if retry {
        b"retry".to_vec()
    } else {
        b"first".to_vec()
    });
    for (i, (k, data)) in batch.records.iter().enumerate() {
        let id = EntryId {
            ms: first.ms,
            seq: first.seq + i as u64,
        };
        args.push((k + 1).to_string().into_bytes());
        args.push(id.to_string().into_bytes());
        args.push(data.clone());
    }
    let reply = conn.send(&[args], "append")?.pop().expect("one reply");
    match reply {
        // A restarted server has forgotten the script: load it again.
        Reply::Error(e) if e.starts_with("NOSCRIPT") => {
            *sha = None;
            Err(conn.failure("append", format!("{e} (will load the script again)")))
        }
        Reply::Error(e) => {
            Err(conn.failure("append", format!("the server refused the batch: {e}")))
        }
        reply => Ok(reply),
    }
}
