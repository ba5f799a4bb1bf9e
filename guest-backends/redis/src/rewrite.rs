//! Rewriting a stream in place: the host hands over the places of the
//! records to keep (entry ids, see `ids.rs`), and every other entry the host
//! has seen is removed, exactly by id. Entries added after the host read the
//! stream are never touched.
//!
//! Nothing changes before `commit`. Removals after the first kept entry are
//! staged in a list beside the stream (`{prefix}:quire:rewrite:{stream}:staged`);
//! `commit` renames it to `...:commit` and then deletes in steps of a thousand
//! ids, each step one script (pop the ids, delete them) so a crash never
//! deletes an id twice or leaves one popped and not deleted; a read-write
//! open finishes a `...:commit` list a crash left and drops a `...:staged`
//! one. Entries before the first kept one go with one exact `XTRIM MINID`
//! (never approximate). In quarantine mode each removed entry is first
//! copied, with its original id and every field, to the quarantine stream in
//! the same script step.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use quire_guest::types::{PluginError, RecordPlace};

use crate::client::Client;
use crate::entries;
use crate::ids::EntryId;
use crate::resp::Reply;

/// Ids deleted (or moved) per script step.
const STEP: usize = 1000;

/// Deletes a step of ids popped from the list `KEYS[2]` from stream
/// `KEYS[1]`; with `KEYS[3]`, copies each entry there first.
const FINISH: &str = r#"
local ids = redis.call('LPOP', KEYS[2], tonumber(ARGV[1]))
if not ids then return 0 end
for _, id in ipairs(ids) do
  if KEYS[3] then
    local found = redis.call('XRANGE', KEYS[1], id, id)
    if #found == 1 then
      local args = {'XADD', KEYS[3], '*', 'original_id', id, 'source', KEYS[1]}
      for _, f in ipairs(found[1][2]) do table.insert(args, f) end
      redis.call(unpack(args))
    end
  end
  redis.call('XDEL', KEYS[1], id)
end
return #ids
"#;

/// A rewrite of one stream.
pub struct StreamRewrite {
    client: Rc<RefCell<Client>>,
    key: String,
    /// Where removed entries are copied first (quarantine mode).
    quarantine: Option<String>,
    /// Entries fetched and not yet matched, oldest first.
    pending: RefCell<VecDeque<(EntryId, u64)>>,
    /// The last entry fetched.
    fetched_to: RefCell<Option<EntryId>>,
    /// The stream has no entries after `fetched_to` (as of the last fetch).
    exhausted: RefCell<bool>,
    first_kept: RefCell<Option<EntryId>>,
    /// Removed before the first kept entry (trimmed, unless quarantining).
    before_first: RefCell<u64>,
    last_before_first: RefCell<Option<EntryId>>,
    staged: RefCell<Vec<EntryId>>,
    staged_total: RefCell<u64>,
}

/// The lists a rewrite of `stream` keeps its removals in.
pub fn staged_key(prefix: &str, stream: &str) -> String {
    format!("{prefix}:quire:rewrite:{stream}:staged")
}

fn commit_key(prefix: &str, stream: &str, quarantine: bool) -> String {
    let kind = if quarantine {
        "commit-quarantine"
    } else {
        "commit"
    };
    format!("{prefix}:quire:rewrite:{stream}:{kind}")
}

impl StreamRewrite {
    /// Starts a rewrite of `key`; `quarantine` names the stream removed
    /// entries are copied to first.
    pub fn new(
        client: Rc<RefCell<Client>>,
        key: String,
        quarantine: Option<String>,
    ) -> Result<Self, PluginError> {
        {
            let mut c = client.borrow_mut();
            let staged = staged_key(c.layout.prefix(), &key);
            c.conn
                .call(vec!["DEL", staged.as_str()], "start a rewrite")?;
        }
        Ok(StreamRewrite {
            client,
            key,
            quarantine,
            pending: RefCell::default(),
            fetched_to: RefCell::default(),
            exhausted: RefCell::new(false),
            first_kept: RefCell::default(),
            before_first: RefCell::new(0),
            last_before_first: RefCell::default(),
            staged: RefCell::default(),
            staged_total: RefCell::new(0),
        })
    }

    /// The next entry of the stream, oldest first.
    fn next_entry(&self) -> Result<Option<(EntryId, u64)>, PluginError> {
        if self.pending.borrow().is_empty() && !*self.exhausted.borrow() {
            let from = *self.fetched_to.borrow();
            let mut client = self.client.borrow_mut();
            let reply = crate::streams::page_from(&mut client, &self.key, from, true, STEP)?;
            let list =
                entries::entries(&reply).map_err(|e| client.conn.failure("rewrite a stream", e))?;
            if list.len() < STEP {
                *self.exhausted.borrow_mut() = true;
            }
            let mut pending = self.pending.borrow_mut();
            for entry in &list {
                let Some(id) = entry.id else {
                    return Err(client.conn.failure(
                        "rewrite a stream",
                        format!(
                            "entry id `{}` of {} is not ms-seq",
                            entry.id_text(),
                            self.key
                        ),
                    ));
                };
                pending.push_back((id, entry.bytes()));
                *self.fetched_to.borrow_mut() = Some(id);
            }
        }
        Ok(self.pending.borrow_mut().pop_front())
    }

    fn remove(&self, id: EntryId) -> Result<(), PluginError> {
        if self.first_kept.borrow().is_none() && self.quarantine.is_none() {
            *self.before_first.borrow_mut() += 1;
            *self.last_before_first.borrow_mut() = Some(id);
            return Ok(());
        }
        self.staged.borrow_mut().push(id);
        if self.staged.borrow().len() >= STEP {
            self.flush_staged()?;
        }
        Ok(())
    }

    fn flush_staged(&self) -> Result<(), PluginError> {
        let ids = std::mem::take(&mut *self.staged.borrow_mut());
        if ids.is_empty() {
            return Ok(());
        }
        let mut client = self.client.borrow_mut();
        let staged = staged_key(client.layout.prefix(), &self.key);
        let mut command = vec!["RPUSH".to_string(), staged];
        command.extend(ids.iter().map(|id| id.to_string()));
        client.conn.call(command, "stage removals")?;
        *self.staged_total.borrow_mut() += ids.len() as u64;
        Ok(())
    }

    /// Keeps the entries at `places` (in order; merged neighbours unpacked),
    /// and removes every entry before each that is not kept.
    pub fn copy(&self, places: &[RecordPlace]) -> Result<(), PluginError> {
        for place in places {
            let mut expect = place.offset;
            let mut remaining = place.stored_bytes;
            while remaining > 0 {
                let want = EntryId::from_offset(expect);
                let Some((id, size)) = self.next_entry()? else {
                    return Err(self.changed(format!("entry {want} is gone")));
                };
                if id < want {
                    self.remove(id)?;
                    continue;
                }
                if id > want || size > remaining {
                    return Err(self.changed(format!(
                        "no entry {want} of {remaining} bytes (found {id}, {size} bytes)"
                    )));
                }
                if self.first_kept.borrow().is_none() {
                    *self.first_kept.borrow_mut() = Some(id);
                }
                remaining -= size;
                expect = expect.saturating_add(size);
            }
        }
        Ok(())
    }

    fn changed(&self, what: String) -> PluginError {
        PluginError::InvalidState(format!(
            "{}: {what}; the stream changed since it was read, nothing was removed",
            self.key
        ))
    }

    /// Removes what was not kept, up to `seen` (the last entry the host read).
    pub fn commit(&self, seen: Option<EntryId>) -> Result<u64, PluginError> {
        let Some(seen) = seen else {
            return Err(PluginError::InvalidState(format!(
                "{} was not read in this session: a rewrite removes only what the host has seen",
                self.key
            )));
        };
        // Whatever the host saw after the last kept entry is not kept.
        while let Some((id, _)) = self.peek_until(seen)? {
            self.remove(id)?;
        }
        self.flush_staged()?;
        let mut client = self.client.borrow_mut();
        let prefix = client.layout.prefix().to_string();
        let quarantine = self.quarantine.is_some();
        if *self.staged_total.borrow() > 0 {
            let staged = staged_key(&prefix, &self.key);
            let commit = commit_key(&prefix, &self.key, quarantine);
            client.conn.call(
                vec!["RENAME", staged.as_str(), commit.as_str()],
                "commit a rewrite",
            )?;
        }
        // Exact trimming: MINID without `~` removes every id below it and no other.
        let trim_below = match *self.first_kept.borrow() {
            Some(first) if *self.before_first.borrow() > 0 => Some(first),
            None => self.last_before_first.borrow().map(EntryId::next),
            Some(_) => None,
        };
        if let Some(below) = trim_below {
            let below = below.to_string();
            client.conn.call(
                vec!["XTRIM", self.key.as_str(), "MINID", below.as_str()],
                "trim a stream",
            )?;
        }
        let quarantine_key = self.quarantine.clone();
        finish(&mut client, &self.key, quarantine_key.as_deref())?;
        let reply = client.conn.call(
            vec!["MEMORY", "USAGE", self.key.as_str(), "SAMPLES", "0"],
            "measure a stream",
        )?;
        Ok(reply.integer().unwrap_or(0).max(0) as u64)
    }

    /// The next entry at or before `seen`.
    fn peek_until(&self, seen: EntryId) -> Result<Option<(EntryId, u64)>, PluginError> {
        match self.next_entry()? {
            Some((id, size)) if id <= seen => Ok(Some((id, size))),
            Some(other) => {
                self.pending.borrow_mut().push_front(other);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The newest entry of `unit` a read or scan has seen.
    pub fn seen(&self, unit: &str) -> Option<EntryId> {
        self.client.borrow().seen.get(unit).copied()
    }

    /// Drops the staged removals.
    pub fn abort(&self) -> Result<(), PluginError> {
        let mut client = self.client.borrow_mut();
        let staged = staged_key(client.layout.prefix(), &self.key);
        client
            .conn
            .call(vec!["DEL", staged.as_str()], "abort a rewrite")?;
        Ok(())
    }
}

/// Runs the committed removals of `stream` to the end.
pub fn finish(
    client: &mut Client,
    stream: &str,
    quarantine: Option<&str>,
) -> Result<u64, PluginError> {
    let prefix = client.layout.prefix().to_string();
    let list = commit_key(&prefix, stream, quarantine.is_some());
    let mut done = 0u64;
    loop {
        let mut command = vec!["EVAL".to_string(), FINISH.into()];
        match quarantine {
            Some(q) => command.extend(["3".into(), stream.into(), list.clone(), q.into()]),
            None => command.extend(["2".into(), stream.into(), list.clone()]),
        }
        command.push(STEP.to_string());
        let reply = client.conn.call(command, "remove entries")?;
        match reply {
            Reply::Integer(0) => return Ok(done),
            Reply::Integer(n) if n > 0 => done += n as u64,
            other => {
                return Err(client.conn.failure(
                    "remove entries",
                    format!("the script answered {}", other.describe()),
                ));
            }
        }
    }
}

/// Rewrites a crash interrupted: staged lists are dropped (never
/// committed), committed ones finished. One note per stream, for the
/// open report.
pub fn finish_interrupted(client: &mut Client) -> Result<Vec<(String, String)>, PluginError> {
    let prefix = client.layout.prefix().to_string();
    let pattern = format!("{prefix}:quire:rewrite:*");
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    loop {
        let reply = client.conn.call(
            vec![
                "SCAN".to_string(),
                cursor.clone(),
                "MATCH".into(),
                pattern.clone(),
                "COUNT".into(),
                "1000".into(),
            ],
            "find interrupted rewrites",
        )?;
        let (Some(next), Some(found)) = (
            reply.items().and_then(|i| i.first()).and_then(Reply::bytes),
            reply.items().and_then(|i| i.get(1)).and_then(Reply::items),
        ) else {
            return Err(client
                .conn
                .failure("find interrupted rewrites", reply.describe()));
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
    let head = format!("{prefix}:quire:rewrite:");
    let mut notes = Vec::new();
    for key in keys {
        let rest = &key[head.len()..];
        if let Some(stream) = rest.strip_suffix(":staged") {
            client
                .conn
                .call(vec!["DEL", key.as_str()], "drop an interrupted rewrite")?;
            notes.push((
                stream.to_string(),
                "a rewrite interrupted before its commit was dropped; the stream is as it was"
                    .into(),
            ));
        } else if let Some(stream) = rest.strip_suffix(":commit") {
            let n = finish(client, stream, None)?;
            notes.push((
                stream.to_string(),
                format!(
                    "a committed rewrite interrupted by a crash was finished ({n} entries removed)"
                ),
            ));
        } else if let Some(stream) = rest.strip_suffix(":commit-quarantine") {
            let q = match client.layout.parse(stream) {
                Some((store, _)) => client.layout.quarantine_key(&store, stream),
                None => continue,
            };
            let n = finish(client, stream, Some(&q))?;
            notes.push((stream.to_string(), format!("a committed quarantine interrupted by a crash was finished ({n} entries moved to {q})")));
        }
    }
    Ok(notes)
}
