//! The embedding examples (`host/examples/actor_loop.rs`, threads, and
//! `tokio_actors.rs`, async tasks) are killed, restart and find every
//! acknowledged record; `cargo test` builds them beside us.

#[test]
fn actor_loop_example_survives_sigkill() {
    example_survives_sigkill("actor_loop");
}

#[test]
fn tokio_actors_example_survives_sigkill() {
    example_survives_sigkill("tokio_actors");
}

fn example_survives_sigkill(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        example.exists(),
        "{} is built by `cargo test` (the host crate's example)",
        example.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&example)
        .arg(dir.path())
        .env("QUIRE_CACHE_DIR", quire_tests::cli::shared_cache())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 missing, 0 duplicated"), "{text}");
    assert!(text.contains("every acknowledged record is there"));
}
