//! Failed appends leave nothing behind. Storage faults are injected through
//! the seam in `fault`; after each one the files must be byte for byte what
//! they were before the batch, the store must read back exactly what it
//! acknowledged and scan clean (before and after a reopen), and the batch,
//! retried, must land once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use quire_guest::batch::Envelope;
use quire_guest::types::{PluginError, SyncLevel};

use crate::engine::Wal;
use crate::fault::Op;
use crate::fault::plan::{self, Fault};
use crate::tests::{DAY, batch, open_with, read_all, scan, snapshot};

const CODECS: [&str; 2] = ["json-crc32", "compact"];

/// Every directory under `dir`.
fn dirs(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string());
                stack.push(p);
            }
        }
    }
    out
}

/// What an append failed with, as `operation target: message`.
fn text(e: &PluginError) -> String {
    match e {
        PluginError::Io(f) => {
            assert!(!f.operation.is_empty() && !f.target.is_empty(), "{f:?}");
            format!("{} {}: {}", f.operation, f.target, f.message)
        }
        other => panic!("expected an I/O failure, got {other:?}"),
    }
}

/// A store under test and the records it acknowledged.
struct Subject {
    /// Dropped (closed) before its directory is removed.
    wal: Option<Wal>,
    dir: tempfile::TempDir,
    opts: Vec<(String, String)>,
    /// Per store, in append order.
    acked: BTreeMap<String, Vec<String>>,
}

impl Subject {
    fn new(opts: &[(&str, &str)]) -> Self {
        let mut s = Subject {
            wal: None,
            dir: tempfile::tempdir().unwrap(),
            opts: opts
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            acked: BTreeMap::new(),
        };
        s.wal = Some(s.open());
        s
    }

    fn open(&self) -> Wal {
        let opts: Vec<(&str, &str)> = self
            .opts
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        open_with(self.dir.path(), false, &opts)
    }

    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().unwrap()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ack(&mut self, b: &[Envelope]) {
        for e in b {
            self.acked
                .entry(e.store.clone())
                .or_default()
                .push(e.json.clone());
        }
    }

    fn append(&mut self, b: &[Envelope], level: SyncLevel) {
        self.wal().append(b.to_vec(), level).unwrap();
        self.ack(b);
    }

    /// Appends `b` with `faults` armed. When none fired the batch went
    /// through: `None`. Otherwise the append failed, and unless a step of
    /// the rollback was made to fail, every file and directory is as it
    /// was; returns the error's text.
    fn append_faulted(
        &mut self,
        b: &[Envelope],
        level: SyncLevel,
        faults: &[(Op, u64, Fault)],
    ) -> Option<String> {
        let files = snapshot(self.path());
        let directories = dirs(self.path());
        for &(op, nth, fault) in faults {
            plan::arm(op, nth, fault);
        }
        let result = self.wal().append(b.to_vec(), level);
        if plan::clear() == 0 {
            result.expect("nothing failed");
            self.ack(b);
            return None;
        }
        let e = text(&result.expect_err("a fault fired: the append fails"));
        if faults.iter().all(|f| f.0 != Op::Cut) {
            assert!(snapshot(self.path()) == files, "files changed: {e}");
            assert_eq!(dirs(self.path()), directories, "{e}");
        }
        Some(e)
    }

    /// Reads back exactly what was acknowledged and scans clean, then the
    /// same after a reopen (which has nothing to repair).
    fn check(&mut self, context: &str) {
        let expected: Vec<String> = self.acked.values().flatten().cloned().collect();
        for round in ["before", "after"] {
            assert_eq!(
                read_all(self.wal()),
                expected,
                "{context}: records {round} a reopen"
            );
            assert_eq!(
                scan(self.wal(), 333),
                (expected.len() as u64, vec![]),
                "{context}: scan {round} a reopen"
            );
            if round == "before" {
                self.wal = None;
                self.wal = Some(self.open());
                let report = self.wal().open_report();
                assert!(report.is_empty(), "{context}: {report:?}");
            }
        }
    }

    /// Fails the 1st, 2nd, ... operation of kind `op` that appending `b`
    /// makes, checking the store after each, until the batch goes through.
    /// Returns the failures' texts.
    fn fail_each(&mut self, b: &[Envelope], level: SyncLevel, op: Op, fault: Fault) -> Vec<String> {
        let mut texts = Vec::new();
        for nth in 1.. {
            let Some(e) = self.append_faulted(b, level, &[(op, nth, fault)]) else {
                break;
            };
            let context = format!("{op:?} {nth} {fault:?} {level:?}: {e}");
            assert!(e.contains("rolled back"), "{context}");
            self.check(&context);
            texts.push(e);
        }
        self.check("after the batch went through");
        texts
    }
}

#[test]
fn a_batch_failing_at_its_first_write_leaves_the_store_as_it_was() {
    for codec in CODECS {
        for fault in [Fault::NoSpace, Fault::Io] {
            let mut s = Subject::new(&[("codec", codec), ("block-records", "4")]);
            s.append(&batch("gps", 0, 10, DAY), SyncLevel::Written);
            let b = batch("gps", 10, 5, DAY);
            let e = s
                .append_faulted(&b, SyncLevel::Written, &[(Op::Write, 1, fault)])
                .expect("the write fails");
            assert!(
                e.starts_with("write wal/store=gps/date=2026-11-21/segment-000001.wal: "),
                "{e}"
            );
            if fault == Fault::Io {
                assert!(
                    e.contains("the batch was rolled back (store `gps` is as it was before it)"),
                    "{e}"
                );
            } else {
                // The disk is still full when the cut is synced.
                assert!(e.contains("syncing that failed"), "{e}");
            }
            s.check(&e);
            s.append(&b, SyncLevel::Written);
            s.check("retried");
        }
    }
}

#[test]
fn a_batch_failing_at_any_write_or_sync_while_rotating_by_size_leaves_the_store_as_it_was() {
    for codec in CODECS {
        for level in [SyncLevel::Written, SyncLevel::Durable] {
            for (op, fault) in [
                (Op::Write, Fault::Io),
                (Op::Write, Fault::NoSpace),
                (Op::Sync, Fault::Io),
                (Op::Sync, Fault::NoSpace),
            ] {
                let mut s = Subject::new(&[
                    ("codec", codec),
                    ("max-bytes", "400"),
                    ("bucket", "none"),
                    ("block-records", "3"),
                ]);
                s.append(&batch("gps", 0, 8, DAY), level);
                let failures = s.fail_each(&batch("gps", 8, 40, DAY), level, op, fault);
                let units = s.wal().units().unwrap().len();
                assert!(units >= 4, "{codec}: {units} units");
                // A write and a sync at least per segment the batch made.
                assert!(failures.len() >= 3, "{codec} {op:?}: {failures:?}");
            }
        }
    }
}

#[test]
fn a_batch_that_crosses_into_new_days_is_undone_with_the_seal_it_made() {
    for codec in CODECS {
        for (op, fault) in [
            (Op::Write, Fault::Io),
            (Op::Sync, Fault::Io),
            (Op::Write, Fault::NoSpace),
        ] {
            let mut s = Subject::new(&[("codec", codec), ("block-records", "2")]);
            s.append(&batch("gps", 0, 5, DAY + 10.0), SyncLevel::Written);
            let b = [
                batch("gps", 5, 3, DAY + 20.0),
                batch("gps", 8, 3, DAY + 86_400.0),
                batch("gps", 11, 3, DAY + 2.0 * 86_400.0),
            ]
            .concat();
            let failures = s.fail_each(&b, SyncLevel::Written, op, fault);
            assert!(failures.len() >= 3, "{failures:?}");
            let ids: Vec<String> = s.wal().units().unwrap().into_iter().map(|u| u.id).collect();
            assert_eq!(
                ids,
                [
                    "wal/store=gps/date=2026-11-21/segment-000001.wal",
                    "wal/store=gps/date=2026-11-22/segment-000002.wal",
                    "wal/store=gps/date=2026-11-23/segment-000003.wal"
                ]
            );
        }
    }
    // Without a reopen in between, the retry takes the numbers the failed
    // batch had taken: they were never seen.
    let mut s = Subject::new(&[]);
    s.append(&batch("gps", 0, 2, DAY), SyncLevel::Durable);
    let b = [batch("gps", 2, 2, DAY), batch("gps", 4, 2, DAY + 86_400.0)].concat();
    let e = s.append_faulted(&b, SyncLevel::Durable, &[(Op::Sync, 3, Fault::Io)]);
    assert!(e.unwrap().contains("rolled back"));
    s.append(&b, SyncLevel::Durable);
    let ids: Vec<String> = s.wal().units().unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(
        ids,
        [
            "wal/store=gps/date=2026-11-21/segment-000001.wal",
            "wal/store=gps/date=2026-11-22/segment-000002.wal"
        ]
    );
    s.check("retried");
}

#[test]
fn a_batch_over_several_stores_is_rolled_back_in_every_one() {
    for codec in CODECS {
        let mut s = Subject::new(&[("codec", codec), ("block-records", "2")]);
        s.append(
            &[batch("crm", 0, 3, DAY), batch("gps", 0, 4, DAY)].concat(),
            SyncLevel::Written,
        );
        // Stores go in name order: `aaa` (new) and `crm` are written
        // before `gps` fails.
        let b = [
            batch("gps", 4, 3, DAY),
            batch("aaa", 0, 2, DAY),
            batch("crm", 3, 3, DAY),
        ]
        .concat();
        let failures = s.fail_each(&b, SyncLevel::Written, Op::Write, Fault::Io);
        let last = failures.last().expect("failures");
        assert!(
            last.starts_with("write wal/store=gps/") &&
            last.contains("the batch was rolled back (stores `aaa`, `crm`, `gps` are as they were before it)"),
            "{last}"
        );
        // Where `aaa` failed (its first write), only `aaa` had been touched.
        let first = &failures[0];
        assert!(
            first.starts_with("write wal/store=aaa/")
                && first.contains("(store `aaa` is as it was before it)"),
            "{first}"
        );
    }
}

#[test]
fn a_failed_sync_under_durable_rolls_the_batch_back() {
    for codec in CODECS {
        let mut s = Subject::new(&[("codec", codec)]);
        s.append(&batch("gps", 0, 6, DAY), SyncLevel::Durable);
        let b = batch("gps", 6, 6, DAY);
        let e = s
            .append_faulted(&b, SyncLevel::Durable, &[(Op::Sync, 1, Fault::Io)])
            .unwrap();
        assert!(
            e.starts_with("sync wal/store=gps/date=2026-11-21/segment-000001.wal: ")
                && e.contains("the batch was rolled back"),
            "{e}"
        );
        s.check(&e);

        // A full disk fails the rollback's own sync too: the cut stands,
        // but is not known to be durable until the next append (or sync)
        // syncs it.
        s.append(&batch("gps", 12, 2, DAY), SyncLevel::Written);
        let e = s
            .append_faulted(&b, SyncLevel::Durable, &[(Op::Sync, 1, Fault::NoSpace)])
            .unwrap();
        assert!(
            e.contains("in store `gps` the batch was rolled back but syncing that failed (sync `wal/store=gps/date=2026-11-21/segment-000001.wal`")
                && e.contains("`wal/store=gps/date=2026-11-21/segment-000001.wal` past byte"),
            "{e}"
        );
        // The 2 written before were not synced by the rollback either.
        let d = s.wal().durability().unwrap();
        assert_eq!((d[0].accepted, d[0].buffered, d[0].unsynced), (2, 0, 2));
        // Still full: the next append finishes nothing and writes nothing.
        let e = s
            .append_faulted(&b, SyncLevel::Durable, &[(Op::Sync, 1, Fault::NoSpace)])
            .unwrap();
        assert!(
            e.contains("an earlier failed batch of store `gps` is not rolled back yet")
                && e.contains("nothing of the batch was written"),
            "{e}"
        );
        // A sync of the store finishes the rollback too: not while the disk
        // is full, and once there is space again the cut is synced.
        plan::arm(Op::Sync, 1, Fault::NoSpace);
        assert!(s.wal().sync(SyncLevel::Durable).is_err());
        plan::clear();
        s.wal().sync(SyncLevel::Durable).unwrap();
        let d = s.wal().durability().unwrap();
        assert_eq!((d[0].accepted, d[0].buffered, d[0].unsynced), (2, 0, 0));
        s.append(&b, SyncLevel::Durable);
        s.check("after the disk had space again");
    }
}

#[test]
fn records_held_by_buffered_appends_are_held_again_after_a_rolled_back_batch() {
    let mut s = Subject::new(&[("codec", "compact"), ("block-records", "64")]);
    s.append(&batch("gps", 0, 5, DAY), SyncLevel::Buffered);
    s.append(&batch("gps", 5, 3, DAY), SyncLevel::Buffered);
    let before = s.wal().durability().unwrap();
    assert_eq!((before[0].accepted, before[0].buffered), (8, 8));
    let b = batch("gps", 8, 4, DAY);
    let e = s
        .append_faulted(&b, SyncLevel::Durable, &[(Op::Write, 1, Fault::Io)])
        .unwrap();
    assert!(!e.contains("lost"), "{e}");
    assert_eq!(
        format!("{:?}", s.wal().durability().unwrap()),
        format!("{before:?}")
    );
    s.append(&b, SyncLevel::Buffered);
    s.check("held again");

    // When the rollback cannot finish, the segment is not resumed and what
    // it held is lost, and said to be.
    let mut s = Subject::new(&[("codec", "compact"), ("block-records", "64")]);
    s.append(&batch("gps", 0, 5, DAY), SyncLevel::Durable);
    s.append(&batch("gps", 5, 3, DAY), SyncLevel::Buffered);
    let e = s
        .append_faulted(&b, SyncLevel::Durable, &[(Op::Write, 1, Fault::NoSpace)])
        .unwrap();
    assert!(
        e.contains(
            "3 records that earlier `buffered` appends to `gps` held in memory were lost with it"
        ),
        "{e}"
    );
    s.acked.get_mut("gps").unwrap().truncate(5);
    let d = s.wal().durability().unwrap();
    assert_eq!((d[0].accepted, d[0].buffered), (5, 0));
    s.check("lost");
}

#[test]
fn a_rollback_that_fails_says_so_and_the_next_append_or_close_finishes_it() {
    for codec in CODECS {
        for finish_by_closing in [false, true] {
            let mut s = Subject::new(&[
                ("codec", codec),
                ("max-bytes", "600"),
                ("bucket", "none"),
                ("block-records", "2"),
            ]);
            s.append(&batch("gps", 0, 3, DAY), SyncLevel::Written);
            let before = snapshot(s.path());
            let b = batch("gps", 3, 20, DAY);
            // The 4th write comes after the batch sealed the live segment
            // and made a new one; the rollback's first removal fails.
            let faults = [(Op::Write, 4, Fault::Io), (Op::Cut, 1, Fault::Io)];
            let e = s
                .append_faulted(&b, SyncLevel::Written, &faults)
                .expect("the batch makes at least 7 writes under either codec");
            assert!(
                e.contains("rolling the batch back failed in store `gps` (remove `wal/store=gps/date=flat/segment-00000")
                    && e.contains("part of it may still be in `wal/store=gps/date=flat/segment-000001.wal` past byte")
                    && e.contains("segments numbered 2 and up"),
                "{e}"
            );
            assert!(snapshot(s.path()) != before, "the batch is partly there");
            assert!(s.wal().units().unwrap().len() > 1, "{e}");
            // Nothing more goes to the store while the disk still fails.
            let e = s
                .append_faulted(&b, SyncLevel::Written, &[(Op::Cut, 1, Fault::Io)])
                .unwrap();
            assert!(e.contains("is not rolled back yet"), "{e}");
            let unit = s.wal().units().unwrap()[0].id.clone();
            plan::arm(Op::Cut, 1, Fault::Io);
            assert!(s.wal().rewrite(&unit).is_err());
            plan::clear();
            if finish_by_closing {
                s.wal = None;
                assert!(snapshot(s.path()) == before);
                s.wal = Some(s.open());
            } else {
                s.append(&b, SyncLevel::Written);
            }
            s.check(&format!("{codec} finished by closing: {finish_by_closing}"));
        }
    }
}

#[test]
fn a_rollback_cut_short_at_any_step_leaves_a_store_that_opens_and_scans_clean() {
    for codec in CODECS {
        let opts = [
            ("codec", codec),
            ("max-bytes", "400"),
            ("bucket", "none"),
            ("block-records", "2"),
        ];
        let first = batch("gps", 0, 5, DAY);
        let b = batch("gps", 5, 30, DAY);
        for step in 1.. {
            let mut s = Subject::new(&opts);
            s.append(&first, SyncLevel::Written);
            // Late in the batch, after it sealed the live segment and made
            // several more; then the rollback stops at its `step`th cut.
            let faults = [(Op::Write, 7, Fault::Io), (Op::Cut, step, Fault::Io)];
            let e = s
                .append_faulted(&b, SyncLevel::Written, &faults)
                .expect("the batch makes at least 7 writes under either codec");
            let finished = !e.contains("rolling the batch back failed");
            // What a crash right then would leave.
            let image = tempfile::tempdir().unwrap();
            crate::tests::copy_tree(s.path(), image.path());
            let mut wal = open_with(image.path(), false, &opts);
            let report = wal.open_report();
            assert!(report.is_empty(), "{codec} step {step}: {report:?}");
            let got = read_all(&mut wal);
            let kept = got.len() - first.len();
            let expected: Vec<String> = first
                .iter()
                .chain(&b[..kept])
                .map(|e| e.json.clone())
                .collect();
            assert_eq!(
                got, expected,
                "{codec} step {step}: what is left of the batch is a prefix of it"
            );
            assert_eq!(
                scan(&mut wal, 333),
                (got.len() as u64, vec![]),
                "{codec} step {step}"
            );
            if finished {
                assert_eq!(kept, 0);
                assert!(step > 3, "{codec}: the rollback had several steps");
                break;
            }
            // The store itself finishes the rollback with the next append.
            s.append(&b, SyncLevel::Written);
            s.check(&format!("{codec} step {step}"));
        }
    }
}
