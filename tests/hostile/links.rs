//! Links a plugin plants inside its grant are never followed by the host:
//! not for the lock, not for receipts, not for the quarantine directory.

use super::*;

#[test]
fn a_lock_file_replaced_by_a_link_is_refused() {
    let fixture = Fixture::new();
    let planted_target = fixture.root().join("planted-lock");
    drop(fixture.open("plant-lock-link"));
    let lock = fixture.data().join(".quire-lock");
    assert!(
        std::fs::symlink_metadata(&lock)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the plugin did not manage to plant its link; the test proves nothing"
    );
    let err = Store::open(fixture.config("none"))
        .err()
        .expect("opened through a planted lock link");
    let message = err.to_string();
    assert!(matches!(err, Error::Path { .. }), "{err:?}");
    for part in [".quire-lock", "symbolic link"] {
        assert!(
            message.contains(part),
            "`{message}` does not mention `{part}`"
        );
    }
    assert!(
        !planted_target.exists(),
        "the host followed the link and created {}",
        planted_target.display()
    );
    // The operator removes the link; the store opens again.
    std::fs::remove_file(&lock).unwrap();
    fixture.open("none");
}

#[test]
fn a_receipt_is_never_written_through_a_planted_link() {
    let fixture = Fixture::new();
    let quarantine = fixture.root().join("quarantine");
    let mut config = fixture.config("plant-receipt-link");
    config.quarantine_dir = Some(quarantine.clone());
    let store = Store::open(config).unwrap();
    store.append(vec![record("event", 1.0)]).unwrap();
    // The hostile plugin reports damage forever, so recovery ends in some error
    // or report; what matters is where the receipt went.
    let outcome = store.recover(quire::RecoveryMode::Quarantine, &Silent);
    eprintln!("recovery: {:?}", outcome.as_ref().map(|r| r.receipts.len()));
    let planted_target = fixture.root().join("planted-receipt");
    assert!(
        !planted_target.exists(),
        "the host wrote a receipt through the plugin's link"
    );
    let receipts: Vec<PathBuf> = std::fs::read_dir(&quarantine)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".receipt.json"))
        .collect();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    let meta = std::fs::symlink_metadata(&receipts[0]).unwrap();
    assert!(
        meta.is_file(),
        "the receipt is not a regular file: {meta:?}"
    );
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipts[0]).unwrap()).unwrap();
    assert_eq!(receipt["unit"], "hostile");
}

#[test]
fn a_quarantine_directory_that_is_a_link_inside_the_data_is_refused() {
    let fixture = Fixture::new();
    let elsewhere = fixture.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    // As a plugin with the data directory could have left it.
    std::os::unix::fs::symlink("../elsewhere", fixture.data().join("quarantine")).unwrap();
    let mut config = fixture.config("none");
    config.quarantine_dir = Some(fixture.data().join("quarantine").join("q"));
    let err = Store::open(config)
        .err()
        .expect("granted a planted quarantine link");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
