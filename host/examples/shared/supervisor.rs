//! The supervisor both embedding examples share: it starts the actor
//! system as a child process, kills it with SIGKILL mid-flight, restarts
//! it, and checks that every message an actor saw acknowledged (a line
//! `ack LIFE ACTOR SEQ` on the child's stdout) is in the log, once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use quire::{ReadQuery, Store};

/// Starts the child, kills it, and returns the acks it printed.
pub fn life(exe: &Path, dir: &Path, life: u64, run_for: Duration) -> Vec<(u64, usize, u64)> {
    let mut child = Command::new(exe)
        .args(["run", &dir.display().to_string(), &life.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the actor system");
    let stdout = child.stdout.take().unwrap();
    let (first_ack, started) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut p = line
                .strip_prefix("ack ")
                .into_iter()
                .flat_map(|rest| rest.split(' '))
                .map(|x| x.parse::<u64>().ok());
            if let (Some(Some(life)), Some(Some(actor)), Some(Some(seq))) =
                (p.next(), p.next(), p.next())
            {
                if acks.is_empty() {
                    let _ = first_ack.send(());
                }
                acks.push((life, actor as usize, seq));
            }
        }
        acks
    });
    // The clock starts at the first acknowledgement (opening may compile the plugin).
    let _ = started.recv_timeout(Duration::from_secs(120));
    std::thread::sleep(run_for);
    child.kill().expect("SIGKILL the actor system");
    child.wait().unwrap();
    reader.join().unwrap()
}

pub fn supervise(
    dir: PathBuf,
    lives: u64,
    open: impl Fn(&Path) -> quire::Result<Store>,
) -> quire::Result<()> {
    let exe = std::env::current_exe().expect("own path");
    let mut acknowledged = Vec::new();
    for n in 0..lives {
        let acks = life(&exe, &dir, n, Duration::from_millis(300 + 150 * n));
        println!("life {n}: killed after {} acknowledged appends", acks.len());
        acknowledged.extend(acks);
    }
    let store = open(&dir)?;
    let mut stored: HashMap<(u64, usize, u64), usize> = HashMap::new();
    for record in store.read_all(&ReadQuery::default())? {
        let v: serde_json::Value = serde_json::from_str(&record.envelope.json).unwrap();
        let actor: usize = v["actor_address"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        *stored
            .entry((
                v["payload"]["life"].as_u64().unwrap(),
                actor,
                v["payload"]["seq"].as_u64().unwrap(),
            ))
            .or_default() += 1;
    }
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|a| !stored.contains_key(a))
        .collect();
    let duplicated = stored.values().filter(|&&n| n > 1).count();
    println!(
        "restarted: {} acknowledged, {} stored, {} missing, {} duplicated",
        acknowledged.len(),
        stored.len(),
        missing.len(),
        duplicated
    );
    if !missing.is_empty() || duplicated > 0 || acknowledged.is_empty() {
        eprintln!("FAILED: first missing {:?}", missing.first());
        std::process::exit(1);
    }
    println!("every acknowledged record is there");
    Ok(())
}

/// `EXAMPLE run DIR LIFE` runs the actor system (`run`); `EXAMPLE [DIR]`
/// supervises three lives of it in DIR (a temporary directory by default).
pub fn main(
    run: fn(&Path, u64) -> quire::Result<()>,
    open: fn(&Path) -> quire::Result<Store>,
) -> quire::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") => run(Path::new(&args[2]), args[3].parse().expect("a life number")),
        Some(dir) => supervise(PathBuf::from(dir), 3, open),
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            supervise(dir.path().to_path_buf(), 3, open)
        }
    }
}
