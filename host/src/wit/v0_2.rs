//! `quire:persistence@0.2.0`: records crossed one by one, as four strings
//! each. Its `types` interface is a subset of 0.3's, so both share the Rust
//! types; the backend records are converted here, and batches are taken
//! apart and put together for it.
#![allow(missing_docs)]

use super::batch;
use super::{Receipt, ReceiptFilter, ReceiptKind, StoreDurability, StoredBatch, StoredRecord};

/// The version string components export.
pub const VERSION: &str = "0.2.0";

/// The `backend-plugin` world.
pub mod backend {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "backend-plugin",
        exports: { default: async },
        with: { "quire:persistence/types": crate::wit::v0_3::backend::quire::persistence::types },
    });
}

/// The `retention-policy` world.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "retention-policy",
        exports: { default: async },
        with: { "quire:persistence/types": crate::wit::v0_3::backend::quire::persistence::types },
    });
}

use backend::exports::quire::persistence::backend as b;
use policy::exports::quire::persistence::policy as p;

super::per_record_conversions!();

fn receipt_kind(k: ReceiptKind) -> b::ReceiptKind {
    match k {
        ReceiptKind::Purged => b::ReceiptKind::Purged,
        ReceiptKind::Quarantined => b::ReceiptKind::Quarantined,
    }
}

pub fn receipt(r: &Receipt) -> b::Receipt {
    b::Receipt {
        kind: receipt_kind(r.kind),
        unit: r.unit.clone(),
        store: r.store.clone(),
        at: r.at,
        json: r.json.clone(),
    }
}

pub fn receipt_back(r: b::Receipt) -> Receipt {
    Receipt {
        kind: match r.kind {
            b::ReceiptKind::Purged => ReceiptKind::Purged,
            b::ReceiptKind::Quarantined => ReceiptKind::Quarantined,
        },
        unit: r.unit,
        store: r.store,
        at: r.at,
        json: r.json,
    }
}

pub fn receipt_filter(f: &ReceiptFilter) -> b::ReceiptFilter {
    b::ReceiptFilter {
        stores: f.stores.clone(),
        kinds: f.kinds.iter().copied().map(receipt_kind).collect(),
        since: f.since,
        until: f.until,
        limit: f.limit,
    }
}

pub fn durability(d: b::StoreDurability) -> StoreDurability {
    StoreDurability {
        store: d.store,
        codec: d.codec,
        live_unit: d.live_unit,
        accepted: d.accepted,
        buffered: d.buffered,
        unsynced: d.unsynced,
    }
}

/// A cursor's records as a batch; every record must be of the cursor's unit.
pub fn stored_batch(records: Vec<StoredRecord>, unit: &str) -> wasmtime::Result<StoredBatch> {
    if let Some(r) = records.iter().find(|r| r.unit != unit) {
        return Err(wasmtime::format_err!(
            "returned a record of unit `{}` from a cursor over `{unit}`",
            crate::text::clean(&r.unit)
        ));
    }
    Ok(batch::stored_from_records(records))
}
