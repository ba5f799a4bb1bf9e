//! `quire group`: consumer groups (Redis Streams) from the command line.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::StoreArgs;
use crate::Result;
use crate::ops::groups::GroupDelivery;

/// Consumer groups of a backend that has them (`-b redis`).
#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group on the record streams (all of them unless --unit).
    Create(CreateArgs),
    /// Read new entries as a consumer: one JSON line each on stdout
    /// (exit 2 when some are not records; they stay pending, named by id).
    Read(ReadArgs),
    /// Acknowledge entries of one unit.
    Ack(AckArgs),
    /// What a group has pending, per unit.
    Pending(PendingArgs),
    /// Take over entries pending longer than --min-idle-ms (a consumer died holding them).
    Claim(ClaimArgs),
}

/// The store, the group and the units every group command takes.
#[derive(Args)]
pub struct GroupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The consumer group.
    #[arg(long)]
    group: String,
    /// Only this unit (stream; repeatable). Default: every record stream.
    #[arg(long)]
    unit: Vec<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    on: GroupArgs,
    /// Where the group starts: `0` (every entry) or `$` (only new ones).
    #[arg(long, default_value = "0")]
    start: String,
}

#[derive(Args)]
pub struct ReadArgs {
    #[command(flatten)]
    on: GroupArgs,
    /// The consumer reading.
    #[arg(long)]
    consumer: String,
    /// Most entries per unit.
    #[arg(long, default_value_t = 100)]
    count: u32,
    /// Wait up to this long for new entries (inside the plugin timeout).
    #[arg(long, default_value_t = 0)]
    block_ms: u64,
    /// Acknowledge every record printed (entries that are not records stay pending).
    #[arg(long)]
    ack: bool,
}

#[derive(Args)]
pub struct AckArgs {
    #[command(flatten)]
    on: GroupArgs,
    /// Entry ids to acknowledge (of the one --unit).
    #[arg(required = true)]
    ids: Vec<String>,
}

#[derive(Args)]
pub struct PendingArgs {
    #[command(flatten)]
    on: GroupArgs,
    /// Oldest pending entries listed per unit.
    #[arg(long, default_value_t = 10)]
    limit: u32,
}

#[derive(Args)]
pub struct ClaimArgs {
    #[command(flatten)]
    on: GroupArgs,
    /// The consumer taking them over.
    #[arg(long)]
    consumer: String,
    /// Only entries pending at least this long.
    #[arg(long)]
    min_idle_ms: u64,
    /// Most entries per unit.
    #[arg(long, default_value_t = 100)]
    count: u32,
}

pub fn run(command: GroupCommand) -> Result<i32> {
    match command {
        GroupCommand::Create(a) => {
            let store = a.on.store.open(false)?;
            let made = store.group_create(&a.on.group, &a.on.unit, &a.start)?;
            for unit in &made {
                outln!("created group {} on {unit}", a.on.group);
            }
            if made.is_empty() {
                outln!(
                    "group {} already exists on every unit asked for",
                    a.on.group
                );
            }
            Ok(0)
        }
        GroupCommand::Read(a) => {
            let store = a.on.store.open(false)?;
            let got = store.group_read(
                &a.on.group,
                &a.consumer,
                &a.on.unit,
                a.count,
                Duration::from_millis(a.block_ms),
            )?;
            let problems = print_deliveries(&got);
            if a.ack {
                for (unit, ids) in records_by_unit(&got) {
                    store.group_ack(&a.on.group, &unit, &ids)?;
                }
            }
            Ok(if problems > 0 { 2 } else { 0 })
        }
        GroupCommand::Ack(a) => {
            let [unit] = a.on.unit.as_slice() else {
                return Err(crate::Error::Usage("ack takes exactly one --unit".into()));
            };
            let store = a.on.store.open(false)?;
            let n = store.group_ack(&a.on.group, unit, &a.ids)?;
            outln!(
                "acknowledged {n} of {} (the others were not pending)",
                a.ids.len()
            );
            Ok(0)
        }
        GroupCommand::Pending(a) => {
            let store = a.on.store.open(true)?;
            let states = store.group_pending(&a.on.group, &a.on.unit, a.limit)?;
            if a.on.store.run.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&states).map_err(anyhow::Error::from)?
                );
                return Ok(0);
            }
            for s in &states {
                outln!("{}: {} pending", s.unit, s.pending);
                for e in &s.entries {
                    outln!(
                        "  {} held by {} for {} ms, delivered {} time(s)",
                        e.id,
                        e.consumer,
                        e.idle_ms,
                        e.deliveries
                    );
                }
            }
            Ok(0)
        }
        GroupCommand::Claim(a) => {
            let store = a.on.store.open(false)?;
            let got = store.group_claim(
                &a.on.group,
                &a.consumer,
                &a.on.unit,
                Duration::from_millis(a.min_idle_ms),
                a.count,
            )?;
            let problems = print_deliveries(&got);
            Ok(if problems > 0 { 2 } else { 0 })
        }
    }
}

/// One JSON line per delivery (the record itself under `record`, or the
/// `problem`); each problem also on stderr. Returns how many had one.
fn print_deliveries(got: &[GroupDelivery]) -> usize {
    let mut problems = 0;
    for d in got {
        let head = format!(
            r#"{{"unit":{},"id":{},"deliveries":{}"#,
            serde_json::Value::from(d.unit.as_str()),
            serde_json::Value::from(d.id.as_str()),
            d.deliveries
        );
        match (printed_as_record(d), &d.problem) {
            (Some(json), None) => outln!("{head},\"record\":{json}}}"),
            (_, problem) => {
                problems += 1;
                let problem = problem
                    .clone()
                    .unwrap_or_else(|| "the plugin returned no JSON".into());
                eprintln!("{} {}: not a record, left pending: {problem}", d.unit, d.id);
                outln!("{head},\"problem\":{}}}", serde_json::Value::from(problem));
            }
        }
    }
    problems
}

fn records_by_unit(got: &[GroupDelivery]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for d in got.iter().filter(|d| printed_as_record(d).is_some()) {
        match out.iter_mut().find(|(u, _)| *u == d.unit) {
            Some((_, ids)) => ids.push(d.id.clone()),
            None => out.push((d.unit.clone(), vec![d.id.clone()])),
        }
    }
    out
}

/// The record a delivery is printed as (embedded as stored, so it must
/// really be JSON); `None` when it is printed as a problem (left pending).
fn printed_as_record(d: &GroupDelivery) -> Option<&str> {
    d.json
        .as_deref()
        .filter(|_| d.problem.is_none())
        .filter(|j| serde_json::from_str::<serde::de::IgnoredAny>(j).is_ok())
}
