//! Handles are capped per instance: a plugin that hoards them is stopped
//! at its cap, and the host and every other plugin keep working.

use super::*;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn hoarding_handles_stops_at_the_cap_and_others_keep_working() {
    let fixture = Fixture::new();
    let store = fixture.open("hoard-handles");
    let before = open_descriptors();
    let err = store.append(vec![record("attack", 1.0)]).unwrap_err();
    let message = err.to_string();
    // The cap (64 in the tight limits) stops it: a fault naming the limit
    // or, if the plugin noticed the refusal itself, its own error.
    match &err {
        Error::Fault { cause, .. } => {
            assert!(cause.contains("limit of 64 open handles"), "{message}")
        }
        Error::Plugin { message: m, .. } => {
            let n: usize = m
                .split_whitespace()
                .find_map(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("{m}"));
            assert!(n < 64, "hoarded {n} handles past a cap of 64");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        open_descriptors() < before + 80,
        "the process holds {} descriptors after the attack (was {before})",
        open_descriptors()
    );
    // Another plugin loads and works in the same process...
    let tmp = tempfile::tempdir().unwrap();
    let other = Store::open(quire_tests::builtin_config(
        "ndjson",
        tmp.path().join("e.ndjson"),
        &[],
    ))
    .unwrap();
    other.append(vec![record("event", 1.0)]).unwrap();
    assert_eq!(other.read_all(&ReadQuery::default()).unwrap().len(), 1);
    // ...and so does the hoarder's store, on its next call.
    store.append(vec![record("event", 2.0)]).unwrap();
}

#[test]
fn the_cap_is_set_from_the_cli() {
    let fixture = Fixture::new();
    let hoard = |handles: &str| {
        fixture.cli(
            "append",
            &[
                "--option",
                "attack=hoard-handles",
                "--plugin-handles",
                handles,
            ],
            "{\"kind\":\"attack\",\"timestamp\":1}\n",
        )
    };
    let out = hoard("16");
    let err = quire_tests::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("limit of 16 open handles") || err.contains("hoarded"),
        "{err}"
    );
    let out = hoard("2");
    let err = quire_tests::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--plugin-handles must be at least 8"), "{err}");
}
