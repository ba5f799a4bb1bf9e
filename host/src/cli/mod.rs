//! The command-line interface. Exit codes follow Papyra: 0 healthy or done,
//! 2 anomalies found (or left after recovery), 1 errors and usage mistakes.

/// `println!` for reports: control characters (which only plugin words can
/// bring) are escaped line by line, and a reader that went away (`quire
/// inspect | head`) ends the program quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::report_line(&format!($($arg)*))
    };
}

mod args;
mod data;
mod group;
mod lifecycle;
mod maintain;
mod output;
mod plugin_check;

use clap::{Parser, Subcommand};

pub use args::StoreArgs;

/// Durable persistence, retention, compaction, scanning and recovery with
/// sandboxed WebAssembly storage plugins.
#[derive(Parser)]
#[command(name = "quire", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate every record; never changes data (exit 2 when anomalies are found).
    Scan(maintain::ScanArgs),
    /// Repair or quarantine damaged data, with a receipt per file, then re-scan.
    Recover(maintain::RecoverArgs),
    /// Apply retention physically, atomically.
    Compact(maintain::CompactArgs),
    /// Show what is stored: units, sizes, counts by kind and store.
    Inspect(data::InspectArgs),
    /// The check to run before an application starts.
    StartupCheck(maintain::StartupArgs),
    /// Check plugin, path, lock and data; optionally recover.
    Doctor(maintain::DoctorArgs),
    /// Counters and storage gauges as JSON or Prometheus text.
    Metrics(data::MetricsArgs),
    /// Append NDJSON records from stdin, in batches.
    Append(data::AppendArgs),
    /// Read records as NDJSON on stdout, with filters.
    Read(data::ReadArgs),
    /// Seal every live unit (a checkpoint); the next append opens fresh ones.
    Checkpoint(lifecycle::CheckpointArgs),
    /// List receipts of purged and quarantined units.
    Receipts(lifecycle::ReceiptsArgs),
    /// Copy every record from one backend to another, in order, and count them.
    Migrate(lifecycle::MigrateArgs),
    /// Consumer groups (`-b redis`): create, read as a consumer, ack, pending, claim.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Plugin tools.
    #[command(subcommand)]
    Plugin(plugin_check::PluginCommand),
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUIRE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .without_time()
        // Colour codes only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Scan(a) => maintain::scan(a),
        Command::Recover(a) => maintain::recover(a),
        Command::Compact(a) => maintain::compact(a),
        Command::Inspect(a) => data::inspect(a),
        Command::StartupCheck(a) => maintain::startup_check(a),
        Command::Doctor(a) => maintain::doctor(a),
        Command::Metrics(a) => data::metrics(a),
        Command::Append(a) => data::append(a),
        Command::Read(a) => data::read(a),
        Command::Checkpoint(a) => lifecycle::checkpoint(a),
        Command::Receipts(a) => lifecycle::receipts(a),
        Command::Migrate(a) => lifecycle::migrate(a),
        Command::Group(c) => group::run(c),
        Command::Plugin(c) => plugin_check::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors carry plugin words (messages, panics): escaped.
            eprintln!("error: {}", crate::text::clean(&e.to_string()));
            1
        }
    }
}
