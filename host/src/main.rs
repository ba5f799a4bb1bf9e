//! The `quire` command: Papyra's operator surface over sandboxed plugins.

fn main() {
    std::process::exit(quire::cli_main());
}
