//! Reading a stream in pages, oldest or newest first, filtered per record,
//! in memory bounded by a page whatever the stream's length.

use std::cell::RefCell;
use std::rc::Rc;

use quire_guest::batch::{BatchBuilder, EnvelopeRef};
use quire_guest::record;
use quire_guest::types::{PluginError, ReadFilter, ReadOrder, StoredBatch};

use crate::client::Client;
use crate::entries;
use crate::ids::EntryId;

/// Where a cursor stands.
pub struct StreamCursor {
    client: Rc<RefCell<Client>>,
    key: String,
    store: String,
    kind: String,
    filter: ReadFilter,
    order: ReadOrder,
    /// The last entry returned (the next page starts after it).
    last: RefCell<Option<EntryId>>,
    done: RefCell<bool>,
}

impl StreamCursor {
    /// A cursor over stream `key` (of `store` and `kind`).
    pub fn new(
        client: Rc<RefCell<Client>>,
        key: String,
        (store, kind): (String, String),
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Self {
        // A stream holds one store and one kind: a filter that excludes
        // either has nothing to read here.
        let excluded = !filter.stores.is_empty() && !filter.stores.contains(&store)
            || !filter.kinds.is_empty() && !filter.kinds.contains(&kind);
        StreamCursor {
            client,
            key,
            store,
            kind,
            filter,
            order,
            last: RefCell::new(None),
            done: RefCell::new(excluded),
        }
    }

    /// The next batch: at most `max_records`, stopping once `max_bytes` of
    /// text is reached; empty at the end.
    pub fn next(&self, max_records: u32, max_bytes: u32) -> Result<StoredBatch, PluginError> {
        let mut out = BatchBuilder::for_cursor(max_records, max_bytes);
        let mut client = self.client.borrow_mut();
        while !*self.done.borrow() && !out.full(max_records.max(1), max_bytes.max(1)) {
            let want = (max_records as usize)
                .saturating_sub(out.len())
                .clamp(1, crate::streams::PAGE);
            let last = *self.last.borrow();
            let reply = crate::streams::page(&mut client, &self.key, self.order, last, true, want)?;
            let list =
                entries::entries(&reply).map_err(|e| client.conn.failure("read a stream", e))?;
            let mut consumed = 0;
            // Noted once per page: the newest entry handed on.
            let mut newest = None;
            for entry in &list {
                if out.full(max_records.max(1), max_bytes.max(1)) {
                    break;
                }
                consumed += 1;
                let Some(id) = entry.id else {
                    // An id that cannot be parsed cannot be paged past.
                    *self.done.borrow_mut() = true;
                    break;
                };
                *self.last.borrow_mut() = Some(id);
                newest = newest.max(Some(id));
                // Scan reports what is skipped here; read and scan agree.
                let Ok(found) = entry.record(&self.kind) else {
                    continue;
                };
                if !record::matches(&self.filter, &found.kind, &self.store, found.timestamp) {
                    continue;
                }
                let offset = entry.offset().expect("a readable record has a packed id");
                out.push_stored(
                    EnvelopeRef {
                        kind: &found.kind,
                        store: &self.store,
                        timestamp: found.timestamp,
                        json: found.json,
                    },
                    offset,
                    entry.bytes(),
                );
            }
            if let Some(id) = newest {
                client.saw(&self.key, id);
            }
            if consumed == list.len() && list.len() < want {
                *self.done.borrow_mut() = true;
            }
        }
        Ok(out.finish_stored())
    }
}
