//! The `quire` CLI, built inside the test crate so tests can run (and kill) it.

fn main() {
    std::process::exit(quire::cli_main());
}
