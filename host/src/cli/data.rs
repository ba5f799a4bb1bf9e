//! append, read, inspect, metrics.

use std::io::{BufRead, BufWriter, Write};

use clap::Args;
use serde::Serialize;

use super::args::StoreArgs;
use super::output::{self, Bar};
use crate::{Batch, Durability, Error, ReadQuery, Result, now};

#[derive(Args)]
pub struct AppendArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Records per append call (one group commit each).
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// per-write (fdatasync before each acknowledgement), every-n:N, batch (written, synced at the
    /// end) or buffered (the backend may hold records in memory until the end).
    #[arg(long, default_value = "per-write")]
    durability: String,
    /// Print `ack N` on stdout after each acknowledged batch (N = records so far).
    #[arg(long)]
    ack: bool,
}

#[derive(Serialize)]
struct AppendSummary {
    appended: u64,
    rejected: u64,
}

pub fn append(a: AppendArgs) -> Result<i32> {
    let mut config = a.store.config(false)?;
    config.durability = a.durability.parse::<Durability>()?;
    let store = crate::Store::open(config)?;
    for finding in store.open_report() {
        eprintln!("repaired on open: {}", finding.render());
    }
    let batch_size = a.batch_size.max(1);
    let (mut appended, mut rejected) = (0u64, 0u64);
    let mut batch = Batch::new();
    let stdout = std::io::stdout();
    let commit = |batch: &mut Batch, appended: &mut u64| -> Result<()> {
        let n = batch.len() as u64;
        store.append_batch(std::mem::take(batch))?;
        *appended += n;
        if a.ack {
            let mut out = stdout.lock();
            let _ = writeln!(out, "ack {appended}");
            let _ = out.flush();
        }
        Ok(())
    };
    // Lines go straight into the batch (no string per line). One clock
    // reading per batch: a record without a timestamp gets the time its
    // batch began.
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let mut line = Vec::new();
    let mut batch_time = now();
    for number in 1u64.. {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::Usage(format!("reading stdin line {number}: {e}")))?;
        if read == 0 {
            break;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text,
            Err(e) => {
                rejected += 1;
                eprintln!("stdin line {number}: not UTF-8 ({e}); skipped");
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        if batch.is_empty() {
            batch_time = now();
        }
        if let Err(e) = batch.push_json_line(text, batch_time) {
            rejected += 1;
            eprintln!("stdin line {number}: {e}; skipped");
        }
        if batch.len() >= batch_size {
            commit(&mut batch, &mut appended)?;
        }
    }
    if !batch.is_empty() {
        commit(&mut batch, &mut appended)?;
    }
    store.flush()?;
    if a.store.run.json {
        output::json(&AppendSummary { appended, rejected });
    } else if !a.ack {
        outln!(
            "appended {appended} records{}",
            if rejected > 0 {
                format!(", rejected {rejected}")
            } else {
                String::new()
            }
        );
    }
    Ok(if rejected > 0 { 1 } else { 0 })
}

#[derive(Args)]
pub struct ReadArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this kind (repeatable).
    #[arg(long)]
    kind: Vec<String>,
    /// Only this store / system_id (repeatable).
    #[arg(long)]
    store_name: Vec<String>,
    /// Only records with timestamp >= SINCE (unix seconds).
    #[arg(long)]
    since: Option<f64>,
    /// Only records with timestamp < UNTIL (unix seconds).
    #[arg(long)]
    until: Option<f64>,
    /// Only records with timestamp <= AS_OF (unix seconds): the history as it stood then.
    #[arg(long)]
    as_of: Option<f64>,
    /// Only the newest N matching records.
    #[arg(long)]
    limit: Option<usize>,
    /// Newest first.
    #[arg(long)]
    newest_first: bool,
    /// Print each record wrapped with where it is stored: {"unit","offset","bytes","record"}.
    #[arg(long)]
    with_location: bool,
}

pub fn read(a: ReadArgs) -> Result<i32> {
    let store = a.store.open(true)?;
    let query = ReadQuery {
        kinds: a.kind,
        stores: a.store_name,
        since: a.since,
        until: match (a.until, a.as_of.map(f64::next_up)) {
            (Some(u), Some(t)) => Some(u.min(t)),
            (u, t) => u.or(t),
        },
        limit: a.limit,
        newest_first: a.newest_first,
    };
    // Records are data: written byte for byte to a pipe or file. On a
    // terminal, a damaged record's control characters are escaped.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let shown = |json: &str| -> String {
        if terminal {
            crate::text::clean(json).into_owned()
        } else {
            json.to_string()
        }
    };
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    // The read's own errors and stdout's are told apart by keeping the latter here.
    let mut stdout_error: Option<std::io::Error> = None;
    let result = store.read(&query, |r| {
        let written = if a.with_location {
            writeln!(
                out,
                "{{\"unit\":{},\"offset\":{},\"bytes\":{},\"record\":{}}}",
                serde_json::Value::from(r.unit),
                r.offset,
                r.stored_bytes,
                shown(r.json)
            )
        } else if terminal {
            writeln!(out, "{}", shown(r.json))
        } else {
            out.write_all(r.json.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
        };
        written.map_err(|e| {
            stdout_error = Some(e);
            Error::Usage("stdout closed".into())
        })
    });
    let flushed = match stdout_error {
        Some(e) => Err(e),
        None => result.map(|_| out.flush())?,
    };
    match flushed {
        Ok(()) => Ok(0),
        // A closed pipe (`quire read | head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Error::Usage(format!("writing stdout: {e}"))),
    }
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Also print the metrics counters.
    #[arg(long)]
    show_metrics: bool,
    /// Also print the newest N records.
    #[arg(long)]
    limit: Option<usize>,
}

pub fn inspect(a: InspectArgs) -> Result<i32> {
    let store = a.store.open(true)?;
    let report = store.inspect(&Bar::new())?;
    let sample = match a.limit {
        Some(n) => store.read_all(&ReadQuery {
            limit: Some(n),
            ..ReadQuery::default()
        })?,
        None => Vec::new(),
    };
    if a.store.run.json {
        #[derive(Serialize)]
        struct Full<'a> {
            #[serde(flatten)]
            report: &'a crate::report::InspectReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            metrics: Option<crate::metrics::MetricsSnapshot>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            newest: Vec<serde_json::Value>,
        }
        let newest = sample
            .iter()
            .map(|r| serde_json::from_str(&r.envelope.json).unwrap_or_default())
            .collect();
        output::json(&Full {
            report: &report,
            metrics: a.show_metrics.then(|| store.metrics()),
            newest,
        });
        return Ok(0);
    }
    outln!("backend: {} {}", report.backend, report.backend_version);
    outln!("path: {}", report.path.display());
    outln!("bytes: {}  records: {}", report.total_bytes, report.records);
    for u in &report.units {
        let records = u
            .records
            .map(|n| format!(", {n} records"))
            .unwrap_or_default();
        let span = match (u.min_timestamp, u.max_timestamp) {
            (Some(lo), Some(hi)) => format!(", timestamps {lo} .. {hi}"),
            _ => String::new(),
        };
        outln!(
            "  unit {} ({}, {}): {} bytes{records}{span}",
            u.id,
            u.codec,
            if u.sealed { "sealed" } else { "live" },
            u.bytes
        );
    }
    for (kind, n) in &report.kinds {
        outln!("  kind {kind}: {n}");
    }
    for (s, n) in &report.stores {
        outln!("  store {s}: {n}");
    }
    if let (Some(lo), Some(hi)) = (report.min_timestamp, report.max_timestamp) {
        outln!("timestamps: {lo} .. {hi}");
    }
    for (k, v) in &report.details {
        outln!("  {k}: {v}");
    }
    for r in &report.receipts {
        outln!(
            "  receipt {} {} (store {}) at {}: {}",
            r.kind,
            r.unit,
            r.store.as_deref().unwrap_or("-"),
            r.at,
            r.details
        );
    }
    for r in &sample {
        outln!("{}", r.envelope.json);
    }
    if a.show_metrics {
        outln!(
            "metrics: {}",
            serde_json::to_string(&store.metrics()).expect("serializes")
        );
    }
    Ok(0)
}

#[derive(Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Prometheus text exposition instead of JSON.
    #[arg(long)]
    prometheus: bool,
}

/// Scans the store (read-only) and prints the counters it produced plus
/// storage gauges: what a cron job or exporter scrapes.
pub fn metrics(a: MetricsArgs) -> Result<i32> {
    let store = a.store.open(true)?;
    let scan = store.scan(&Bar::new())?;
    let snapshot = store.metrics();
    if a.prometheus {
        print!("{}", snapshot.prometheus());
        outln!(
            "# HELP quire_stored_bytes Bytes the store occupies.\n# TYPE quire_stored_bytes gauge\nquire_stored_bytes {}",
            scan.bytes_scanned
        );
        outln!(
            "# HELP quire_stored_records Valid records in the store.\n# TYPE quire_stored_records gauge\nquire_stored_records {}",
            scan.records
        );
    } else {
        #[derive(Serialize)]
        struct Out {
            counters: crate::metrics::MetricsSnapshot,
            stored_bytes: u64,
            stored_records: u64,
        }
        output::json(&Out {
            counters: snapshot,
            stored_bytes: scan.bytes_scanned,
            stored_records: scan.records,
        });
    }
    Ok(0)
}
