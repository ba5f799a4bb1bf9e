//! The Redis Streams backend against the same work done natively and by
//! Papyra, in one run, on one `redis-server` (started here on a free
//! loopback port with AOF `appendfsync always`, or `QUIRE_REDIS_URL`):
//!
//! 1. appends/s: quire (`Store::append_batch`, batches of 1,000, durable per
//!    write) vs a native Rust client pipelining 1,000 `XADD`s per write vs
//!    Papyra's `RedisStreamsPersistence.record_event` (one `XADD` each);
//! 2. reads/s of the whole stream: quire (`Store::read`, each record
//!    checked) vs native `XRANGE` pages of 1,000 with the same check
//!    (serde_json) vs Papyra's `list_events` (`XRANGE` of up to 50,000).
//!
//! ```text
//! cargo bench --bench redis_bench                  # 200k records
//! QUIRE_BENCH_RECORDS=50000 cargo bench --bench redis_bench
//! QUIRE_BENCH_PYTHON=/path/to/python cargo bench --bench redis_bench   # with papyra + redis-py
//! ```
//! Papyra's rows need a Python with `papyra` and `redis` importable
//! (`QUIRE_BENCH_PYTHON`, else `python3`); without one they are left out.
//! Timings are printed, never asserted; record counts are checked.

#[allow(dead_code)] // What the other benches share is not all needed here.
mod common;

#[path = "../../guest-backends/redis/src/resp.rs"]
#[allow(dead_code, missing_docs)]
mod resp;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{event_line, group, is_record, median, records_of, store_config, target_dir};
use quire::{Batch, Durability, ReadQuery};
use resp::{Reply, ReplyLimits};

const BATCH: usize = 1_000;
const REPS: usize = 3;

/// A server for the run (killed on drop), or the one named by `QUIRE_REDIS_URL`.
struct Server {
    addr: SocketAddr,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn get() -> Server {
        if let Ok(url) = std::env::var("QUIRE_REDIS_URL") {
            let addr = url
                .trim_start_matches("redis://")
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            return Server {
                addr,
                child: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
            ])
            .arg(dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis_bench needs redis-server on PATH (or QUIRE_REDIS_URL)");
        let server = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: Some(child),
            _dir: Some(dir),
        };
        let start = Instant::now();
        while Client::connect(server.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The native baseline: one connection, commands pipelined.
struct Client {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            stream: BufReader::with_capacity(256 << 10, stream),
            out: Vec::new(),
        };
        client.pipeline(&[vec!["PING".as_bytes()]])?;
        Ok(client)
    }

    fn pipeline(&mut self, commands: &[Vec<&[u8]>]) -> std::io::Result<Vec<Reply>> {
        self.out.clear();
        for c in commands {
            resp::encode(&mut self.out, c);
        }
        self.stream.get_mut().write_all(&self.out)?;
        let limits = ReplyLimits::default();
        (0..commands.len())
            .map(|_| resp::read_reply(&mut self.stream, &limits))
            .collect()
    }
}

fn flush(addr: SocketAddr) {
    Client::connect(addr)
        .unwrap()
        .pipeline(&[vec![&b"FLUSHALL"[..]]])
        .unwrap();
}

fn native_appends(addr: SocketAddr, lines: &[String]) -> f64 {
    let mut client = Client::connect(addr).unwrap();
    let start = Instant::now();
    for chunk in lines.chunks(BATCH) {
        let commands: Vec<Vec<&[u8]>> = chunk
            .iter()
            .map(|l| {
                vec![
                    &b"XADD"[..],
                    b"papyra:local:events",
                    b"*",
                    b"data",
                    l.as_bytes(),
                ]
            })
            .collect();
        for reply in client.pipeline(&commands).unwrap() {
            assert!(matches!(reply, Reply::Bulk(Some(_))), "{reply:?}");
        }
    }
    start.elapsed().as_secs_f64()
}

fn native_reads(addr: SocketAddr, expect: usize) -> f64 {
    let mut client = Client::connect(addr).unwrap();
    let start = Instant::now();
    let mut from = b"-".to_vec();
    let mut records = 0;
    loop {
        let count = BATCH.to_string();
        let reply = client
            .pipeline(&[vec![
                &b"XRANGE"[..],
                b"papyra:local:events",
                &from,
                b"+",
                b"COUNT",
                count.as_bytes(),
            ]])
            .unwrap()
            .pop()
            .unwrap();
        let entries = reply.items().unwrap();
        for e in entries {
            let e = e.items().unwrap();
            let fields = e[1].items().unwrap();
            let data = std::str::from_utf8(fields[1].bytes().unwrap()).unwrap();
            if is_record(data) {
                records += 1;
            }
        }
        match entries.last() {
            Some(last) if entries.len() == BATCH => {
                from = [b"(", last.items().unwrap()[0].bytes().unwrap()].concat();
            }
            _ => break,
        }
    }
    assert_eq!(records, expect);
    start.elapsed().as_secs_f64()
}

fn quire_store(addr: SocketAddr) -> quire::Store {
    let url = format!("redis://{addr}");
    let cache = target_dir().join("bench-data").join("cache");
    let config = store_config("redis", url.as_ref(), Durability::PerWrite, &cache);
    quire::Store::open(config).expect("opening the redis store")
}

fn quire_appends(addr: SocketAddr, batches: &[Vec<quire::Record>]) -> f64 {
    let store = quire_store(addr);
    let start = Instant::now();
    for batch in batches {
        store
            .append_batch(Batch::from(batch.as_slice()))
            .expect("append");
    }
    start.elapsed().as_secs_f64()
}

fn quire_reads(addr: SocketAddr, expect: usize) -> f64 {
    let store = quire_store(addr);
    let start = Instant::now();
    let mut n = 0;
    store
        .read(&ReadQuery::default(), |_| {
            n += 1;
            Ok(())
        })
        .expect("read");
    assert_eq!(n, expect);
    start.elapsed().as_secs_f64()
}

/// Papyra's appends/s and reads/s, from a Python with papyra and redis-py.
fn papyra(addr: SocketAddr, records: usize) -> Option<(f64, f64)> {
    let python = std::env::var("QUIRE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import sys, time, anyio
from papyra.persistence.backends.redis import RedisStreamsPersistence, RedisStreamsConfig
from papyra.persistence.models import PersistedEvent
url, n = sys.argv[1], int(sys.argv[2])
async def main():
    p = RedisStreamsPersistence(RedisStreamsConfig(url=url, prefix="papyrabench"))
    events = [PersistedEvent(system_id="local", actor_address=f"local:worker-{i % 32}", event_type="Tick",
              payload={"n": i, "note": "mailbox drained, next tick scheduled, supervisor ok"}, timestamp=1.7e9 + i)
              for i in range(n)]
    t = time.perf_counter()
    for e in events:
        await p.record_event(e)
    w = time.perf_counter() - t
    t = time.perf_counter()
    got = await p.list_events()
    r = time.perf_counter() - t
    assert len(got) == n, len(got)
    await p.aclose()
    print(n / w, n / r)
anyio.run(main)
"#;
    let out = Command::new(&python)
        .args([
            "-c",
            script,
            &format!("redis://{addr}"),
            &records.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "papyra rows left out: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().unwrap());
    Some((it.next()?, it.next()?))
}

fn main() {
    let records: usize = std::env::var("QUIRE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let server = Server::get();
    let addr = server.addr;
    let lines: Vec<String> = (0..records as u64)
        .map(|i| event_line(i, 1.7e9 + i as f64))
        .collect();
    let batches: Vec<Vec<quire::Record>> = lines.chunks(BATCH).map(records_of).collect();
    eprintln!(
        "{records} records of {} bytes on redis at {addr}",
        lines[0].len()
    );
    let (mut qa, mut na, mut qr, mut nr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..REPS {
        eprintln!("round {} of {REPS}", rep + 1);
        flush(addr);
        let q = quire_appends(addr, &batches);
        qr.push(records as f64 / quire_reads(addr, records));
        flush(addr);
        let n = native_appends(addr, &lines);
        nr.push(records as f64 / native_reads(addr, records));
        qa.push(records as f64 / q);
        na.push(records as f64 / n);
    }
    flush(addr);
    let papyra_records = (records / 20).max(1_000);
    let papyra = papyra(addr, papyra_records);
    let (qa, na, qr, nr) = (median(qa), median(na), median(qr), median(nr));
    println!(
        "| redis-server 7, AOF `appendfsync always`, {records} Papyra-shaped events | quire | native Rust client | ratio | Papyra (`RedisStreamsPersistence`, {papyra_records} events) | quire / Papyra |"
    );
    println!("|---|---|---|---|---|---|");
    let papyra_cells = |p: Option<f64>, q: f64| match p {
        Some(p) => (format!("{}/s", group(p)), format!("{:.0}x", q / p)),
        None => ("not run".into(), String::new()),
    };
    let (pa, pa_ratio) = papyra_cells(papyra.map(|p| p.0), qa);
    let (pr, pr_ratio) = papyra_cells(papyra.map(|p| p.1), qr);
    println!(
        "| appends, batches of {BATCH}, durable | {}/s | {}/s (1,000 XADDs per write) | {:.2} | {pa} (one XADD each) | {pa_ratio} |",
        group(qa),
        group(na),
        qa / na
    );
    println!(
        "| reads of the whole stream, each record checked | {}/s | {}/s (XRANGE pages of 1,000) | {:.2} | {pr} | {pr_ratio} |",
        group(qr),
        group(nr),
        qr / nr
    );
}
