//! What the quire host and the guest helper crate both know about records,
//! written once: the one-pass lift of a line's head (`head`), a record
//! batch's parts as both build them (`columns`), the walk that checks a
//! record batch's layout (`layout`), the table that names each kind
//! and store once per batch (`names`), and the single-byte edits the
//! differential tests of both sides run (`edits`).
#![deny(missing_docs)]

mod bytes;
pub mod columns;
pub mod edits;
pub mod head;
pub mod layout;
pub mod names;
