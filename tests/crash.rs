//! SIGKILL at many points during append, compaction and recovery; then every
//! acknowledged record must be there, in order, and scan clean or repairable.

use std::io::Write;
use std::time::Duration;

use quire_tests::Rng;
use quire_tests::cli::{
    Since, fixture, kill_after, killed_append, quire, quire_run, records, stderr,
};
use serde_json::Value;

fn ids(path: &std::path::Path) -> Vec<(u64, u64)> {
    records(path)
        .iter()
        .filter_map(|v| Some((v.get("round")?.as_u64()?, v.get("id")?.as_u64()?)))
        .collect()
}

#[test]
fn killed_appends_lose_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ndjson");
    let mut rng = Rng::seeded("crash test");
    let mut acked_per_round = Vec::new();
    for round in 0..30u64 {
        let mut cmd = quire(dir.path());
        cmd.args([
            "append",
            "--path",
            "log.ndjson",
            "--ack",
            "--batch-size",
            "8",
        ]);
        let lines = (0..1_000_000u64).map(move |id| {
            format!(
                "{{\"kind\":\"event\",\"system_id\":\"crash\",\"round\":{round},\"id\":{id},\"pad\":\"{}\",\"timestamp\":{id}}}\n",
                "x".repeat(40)
            )
        });
        // A third of the kills may land before anything is acknowledged
        // (while the plugin loads or the log opens); the rest come after
        // the first acknowledgement, however fast the machine is.
        let (since, delay) = Since::dealt(
            round,
            3,
            Duration::from_millis(20),
            Duration::from_millis(200),
            &mut rng,
        );
        let acked = killed_append(cmd, lines, since, delay);
        acked_per_round.push(acked);

        // After every kill: each round's records are a prefix in order, covering every ack.
        let found = ids(&path);
        for (r, &acked) in acked_per_round.iter().enumerate() {
            let got: Vec<u64> = found
                .iter()
                .filter(|(fr, _)| *fr == r as u64)
                .map(|(_, id)| *id)
                .collect();
            assert!(
                got.len() as u64 >= acked,
                "round {r}: {acked} acknowledged, {} on disk",
                got.len()
            );
            assert_eq!(
                got,
                (0..got.len() as u64).collect::<Vec<_>>(),
                "round {r}: records out of order or duplicated"
            );
        }
    }
    assert!(
        acked_per_round.iter().filter(|&&a| a > 0).count() > 10,
        "most rounds acknowledged something: {acked_per_round:?}"
    );
    let scan = quire_run(dir.path(), &["scan", "--path", "log.ndjson", "--json"], "");
    let report: Value = serde_json::from_slice(&scan.stdout).unwrap();
    for a in report["anomalies"].as_array().unwrap() {
        assert!(
            ["TRUNCATED_LINE", "CORRUPTED_LINE"].contains(&a["kind"].as_str().unwrap()),
            "{a}"
        );
    }
    let before = ids(&path);
    let fixed = quire_run(dir.path(), &["recover", "--path", "log.ndjson"], "");
    assert_eq!(fixed.status.code(), Some(0), "{}", stderr(&fixed));
    assert_eq!(ids(&path), before, "repair keeps every complete record");
}

#[test]
fn garbage_and_torn_tails_never_swallow_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ndjson");
    let append = |round: u64, n: u64| {
        let text: String = (0..n)
            .map(|id| {
                format!("{{\"kind\":\"event\",\"round\":{round},\"id\":{id},\"timestamp\":1}}\n")
            })
            .collect();
        let out = quire_run(dir.path(), &["append", "--path", "log.ndjson"], &text);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    append(0, 5);
    for (round, tail) in [&b"{\"kind\":\"ev"[..], b"\0\0\0\0\0\0", b"\xff\xfegarbage"]
        .iter()
        .enumerate()
    {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(tail)
            .unwrap();
        append(round as u64 + 1, 5);
    }
    let want: Vec<(u64, u64)> = (0..4).flat_map(|r| (0..5).map(move |i| (r, i))).collect();
    assert_eq!(ids(&path), want);
    let scan = quire_run(dir.path(), &["scan", "--path", "log.ndjson", "--json"], "");
    assert_eq!(scan.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&scan.stdout).unwrap();
    assert_eq!(
        report["anomaly_count"], 3,
        "each injected tail is one anomaly: {report}"
    );
    let fixed = quire_run(dir.path(), &["recover", "--path", "log.ndjson"], "");
    assert_eq!(fixed.status.code(), Some(0));
    assert_eq!(ids(&path), want);
}

fn write_log(path: &std::path::Path, n: u64) {
    let text: String = (0..n)
        .map(|id| format!("{{\"kind\":\"event\",\"round\":0,\"id\":{id},\"pad\":\"{}\",\"timestamp\":{id}}}\n", "y".repeat(100)))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn killed_compactions_leave_the_old_or_the_new_file_never_a_mix() {
    let mut rng = Rng::seeded("crash test");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ndjson");
    let n = 40_000u64;
    let (mut old, mut new) = (0, 0);
    for _ in 0..25 {
        write_log(&path, n);
        let mut cmd = quire(dir.path());
        cmd.args(["compact", "--path", "log.ndjson", "--max-records", "15000"]);
        kill_after(cmd, Duration::from_millis(rng.below(400)));
        let got: Vec<u64> = ids(&path).into_iter().map(|(_, id)| id).collect();
        if got.len() as u64 == n {
            assert_eq!(got, (0..n).collect::<Vec<_>>());
            old += 1;
        } else {
            assert_eq!(
                got,
                (n - 15_000..n).collect::<Vec<_>>(),
                "a compacted file holds exactly the newest records"
            );
            new += 1;
        }
        // A leftover temporary file is an orphan for scan, and recover removes it.
        let rec = quire_run(dir.path(), &["recover", "--path", "log.ndjson"], "");
        assert_eq!(rec.status.code(), Some(0), "{}", stderr(&rec));
        let scan = quire_run(dir.path(), &["scan", "--path", "log.ndjson"], "");
        assert_eq!(scan.status.code(), Some(0));
        assert!(!dir.path().join("log.ndjson.quire-tmp").exists());
    }
    eprintln!("compaction kills: {old} left the old file, {new} the compacted one");
}

/// The recovery that `killed_recoveries_finish_on_the_next_run` kills, then finishes.
const RECOVER: [&str; 7] = [
    "recover",
    "--path",
    "events.ndjson",
    "--mode",
    "quarantine",
    "--quarantine-dir",
    "q",
];

#[test]
fn killed_recoveries_finish_on_the_next_run() {
    let mut rng = Rng::seeded("crash test");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let clean = std::fs::read(fixture("papyra/clean.ndjson")).unwrap();
    for _ in 0..25 {
        // A large damaged file: the fixture's damage, then many valid lines.
        let mut damaged = std::fs::read(fixture("papyra/damaged.ndjson")).unwrap();
        damaged.truncate(damaged.len() - 153);
        for _ in 0..400 {
            damaged.extend_from_slice(&clean);
        }
        std::fs::write(&path, &damaged).unwrap();
        let valid = records(&path).len();
        // What a finished repair leaves: exactly the lines that are records.
        let repaired: Vec<u8> = damaged
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| {
                serde_json::from_slice::<Value>(l)
                    .is_ok_and(|v| v.get("kind").is_some() && v.get("timestamp").is_some())
            })
            .flatten()
            .copied()
            .collect();
        let mut cmd = quire(dir.path());
        cmd.args(RECOVER);
        kill_after(cmd, Duration::from_millis(rng.below(300)));
        let now = std::fs::read(&path).unwrap();
        assert!(
            now == damaged || now == repaired,
            "the file is the damaged original or fully repaired, never a mix"
        );
        let rec = quire_run(dir.path(), &RECOVER, "");
        assert_eq!(rec.status.code(), Some(0), "{}", stderr(&rec));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            repaired,
            "every valid record survives, byte for byte"
        );
        assert_eq!(records(&path).len(), valid);
    }
}
