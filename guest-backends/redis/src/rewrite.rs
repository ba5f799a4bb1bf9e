//! Rewriting a stream in place: the host hands over the places of the
//! records to keep (entry ids, see `ids.rs`), and every other entry the host
//! has seen is removed, exactly by id. Entries added after the host read the
//! stream are never touched, and entries that are not records are removed
//! only by a repair (a scan of the stream reported them in this session);
//! compaction leaves them for `recover`.
//!
//! Nothing changes before `commit`. Removals after the first kept entry are
//! staged in a list of this rewrite's own
//! (`{prefix}:quire:rewrite:{stream}:staged:{token}`), which expires by
//! itself if the rewrite is abandoned. `commit` is one script: the exact
//! `XTRIM MINID` of the entries before the first kept one (never the
//! approximate `~`), and the staged list renamed to `...:commit:{token}` and
//! made permanent. The committed removals then go a thousand ids per script
//! step (pop them, delete them), so a crash never deletes an id twice or
//! leaves one popped and not deleted; any read-write open finishes a
//! committed list it finds (two processes finishing one list only share the
//! work). In quarantine mode each removed entry is first copied, with its
//! original id and every field, to the quarantine stream in the same step.

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

/// How long an abandoned staged list lives (refreshed on every push).
const STAGED_TTL_MS: &str = "900000";

/// Trims the prefix, then commits the staged removals, atomically.
/// KEYS: stream, staged list, commit list. ARGV[1]: the MINID bound or ''.
const COMMIT: &str = r#"
if ARGV[1] ~= '' then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1]) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[3])
  redis.call('PERSIST', KEYS[3])
end
return 1
"#;

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

/// One entry of the walk: its id, size, and whether it is a record.
type Walked = (EntryId, u64, bool);

/// A rewrite of one stream.
pub struct StreamRewrite {
    client: Rc<RefCell<Client>>,
    key: String,
    /// This rewrite's own name for its lists.
    token: String,
    /// The kind the stream is for (what a record in it must be).
    kind: String,
    /// Where removed entries are copied first (quarantine mode).
    quarantine: Option<String>,
    /// Remove entries that are not records (a repair), or keep them.
    remove_damaged: bool,
    /// Entries fetched and not yet matched, oldest first.
    pending: RefCell<VecDeque<Walked>>,
    /// The last entry fetched.
    fetched_to: RefCell<Option<EntryId>>,
    /// The first entry that stays (kept by the host, or left as not a record).
    first_kept: RefCell<Option<EntryId>>,
    /// Removed before the first kept entry (trimmed, unless quarantining).
    before_first: RefCell<u64>,
    last_before_first: RefCell<Option<EntryId>>,
    staged: RefCell<Vec<EntryId>>,
}

/// The list a rewrite stages its removals in.
fn staged_key(prefix: &str, stream: &str, token: &str) -> String {
    format!("{prefix}:quire:rewrite:{stream}:staged:{token}")
}

fn commit_key(prefix: &str, stream: &str, token: &str, quarantine: bool) -> String {
    let kind = if quarantine {
        "commit-quarantine"
    } else {
        "commit"
    };
    format!("{prefix}:quire:rewrite:{stream}:{kind}:{token}")
}

/// A name no other rewrite uses: the time and a process-random hash.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    format!("{nanos:x}-{:016x}", h.finish())
}

impl StreamRewrite {
    /// Starts a rewrite of `key` (a stream for `kind`); `quarantine` names
    /// the stream removed entries are copied to first; `remove_damaged`
    /// says whether entries that are not records go too (a repair).
    pub fn new(
        client: Rc<RefCell<Client>>,
        key: String,
        kind: String,
        quarantine: Option<String>,
        remove_damaged: bool,
    ) -> Self {
        StreamRewrite {
            client,
            key,
            token: new_token(),
            kind,
            quarantine,
            remove_damaged,
            pending: RefCell::default(),
            fetched_to: RefCell::default(),
            first_kept: RefCell::default(),
            before_first: RefCell::new(0),
            last_before_first: RefCell::default(),
            staged: RefCell::default(),
        }
    }

    /// The next entry of the stream, oldest first (fetched afresh whenever
    /// the last page is used up: the stream may have grown meanwhile).
    fn next_entry(&self) -> Result<Option<Walked>, PluginError> {
        if self.pending.borrow().is_empty() {
            let from = *self.fetched_to.borrow();
            let mut client = self.client.borrow_mut();
            let reply = crate::streams::page_from(&mut client, &self.key, from, true, STEP)?;
            let list =
                entries::entries(&reply).map_err(|e| client.conn.failure("rewrite a stream", e))?;
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
                pending.push_back((id, entry.bytes(), entry.record(&self.kind).is_ok()));
                *self.fetched_to.borrow_mut() = Some(id);
            }
        }
        Ok(self.pending.borrow_mut().pop_front())
    }

    /// An entry the host did not keep: removed, unless it is not a record
    /// and this is not a repair.
    fn not_kept(&self, (id, _, record): Walked) -> Result<(), PluginError> {
        if !record && !self.remove_damaged {
            return self.stays(id);
        }
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

    fn stays(&self, id: EntryId) -> Result<(), PluginError> {
        if self.first_kept.borrow().is_none() {
            *self.first_kept.borrow_mut() = Some(id);
        }
        Ok(())
    }

    fn flush_staged(&self) -> Result<(), PluginError> {
        let ids = std::mem::take(&mut *self.staged.borrow_mut());
        if ids.is_empty() {
            return Ok(());
        }
        let mut client = self.client.borrow_mut();
        let staged = staged_key(client.layout.prefix(), &self.key, &self.token);
        let mut push = vec!["RPUSH".to_string(), staged.clone()];
        push.extend(ids.iter().map(|id| id.to_string()));
        let expire = vec!["PEXPIRE".to_string(), staged, STAGED_TTL_MS.into()];
        for reply in client.conn.send(&[push, expire], "stage removals")? {
            client.conn.ok(reply, "stage removals")?;
        }
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
                let Some(walked) = self.next_entry()? else {
                    return Err(self.changed(format!("entry {want} is gone")));
                };
                let (id, size, _) = walked;
                if id < want {
                    self.not_kept(walked)?;
                    continue;
                }
                if id > want || size > remaining {
                    return Err(self.changed(format!(
                        "no entry {want} of {remaining} bytes (found {id}, {size} bytes)"
                    )));
                }
                self.stays(id)?;
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
        while let Some(walked) = self.peek_until(seen)? {
            self.not_kept(walked)?;
        }
        self.flush_staged()?;
        let mut client = self.client.borrow_mut();
        let prefix = client.layout.prefix().to_string();
        // Exact trimming: MINID without `~` removes every id below it and no other.
        let trim_below = match *self.first_kept.borrow() {
            Some(first) if *self.before_first.borrow() > 0 => Some(first),
            None => self.last_before_first.borrow().map(EntryId::next),
            Some(_) => None,
        };
        let staged = staged_key(&prefix, &self.key, &self.token);
        let commit = commit_key(&prefix, &self.key, &self.token, self.quarantine.is_some());
        let bound = trim_below.map(|b| b.to_string()).unwrap_or_default();
        client.conn.call(
            vec![
                "EVAL",
                COMMIT,
                "3",
                self.key.as_str(),
                staged.as_str(),
                commit.as_str(),
                bound.as_str(),
            ],
            "commit a rewrite",
        )?;
        finish(&mut client, &self.key, &commit, self.quarantine.as_deref())?;
        let reply = client.conn.call(
            vec!["MEMORY", "USAGE", self.key.as_str(), "SAMPLES", "0"],
            "measure a stream",
        )?;
        Ok(reply.integer().unwrap_or(0).max(0) as u64)
    }

    /// The next entry at or before `seen`.
    fn peek_until(&self, seen: EntryId) -> Result<Option<Walked>, PluginError> {
        match self.next_entry()? {
            Some(walked) if walked.0 <= seen => Ok(Some(walked)),
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
        let staged = staged_key(client.layout.prefix(), &self.key, &self.token);
        client
            .conn
            .call(vec!["DEL", staged.as_str()], "abort a rewrite")?;
        Ok(())
    }
}

/// Runs the committed removals in `list` of `stream` to the end.
pub fn finish(
    client: &mut Client,
    stream: &str,
    list: &str,
    quarantine: Option<&str>,
) -> Result<u64, PluginError> {
    let mut done = 0u64;
    loop {
        let mut command = vec!["EVAL".to_string(), FINISH.into()];
        match quarantine {
            Some(q) => command.extend(["3".into(), stream.into(), list.into(), q.into()]),
            None => command.extend(["2".into(), stream.into(), list.into()]),
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

/// Committed removals a crash (or another process, still at work) left
/// unfinished are finished; staged lists are left to expire (one may
/// belong to a rewrite still running). One note per list, for the open
/// report.
pub fn finish_interrupted(client: &mut Client) -> Result<Vec<(String, String)>, PluginError> {
    let prefix = client.layout.prefix().to_string();
    let head = format!("{prefix}:quire:rewrite:");
    let pattern = format!("{head}*:commit*");
    let keys = crate::streams::scan_keys(client, &pattern, "list", "find unfinished rewrites")?;
    let mut notes = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(&head) else {
            continue;
        };
        if let Some((stream, _)) = rest.rsplit_once(":commit-quarantine:") {
            let Some((store, _)) = client.layout.parse(stream) else {
                continue;
            };
            let q = client.layout.quarantine_key(&store, stream);
            let n = finish(client, stream, &key, Some(&q))?;
            notes.push((
                stream.to_string(),
                format!(
                    "a committed quarantine left unfinished was finished ({n} entries moved to {q})"
                ),
            ));
        } else if let Some((stream, _)) = rest.rsplit_once(":commit:") {
            if client.layout.parse(stream).is_none() {
                continue;
            }
            let n = finish(client, stream, &key, None)?;
            notes.push((
                stream.to_string(),
                format!("a committed rewrite left unfinished was finished ({n} entries removed)"),
            ));
        }
    }
    Ok(notes)
}
