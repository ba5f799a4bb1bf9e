//! A real `redis-server` for the Redis backend's tests: started on a free
//! loopback port with its own temporary directory (AOF on, `appendfsync
//! always` unless asked otherwise), killed with SIGKILL and restarted on
//! the same port and data when a test wants, stopped when dropped. And a
//! small client for checking what the server holds, speaking RESP with the
//! backend's own parser.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../guest-backends/redis/src/resp.rs"]
#[allow(dead_code, missing_docs)]
pub mod resp;

pub use resp::Reply;

/// An entry's fields, name and value, in order.
pub type Fields = Vec<(String, Vec<u8>)>;

/// A running server.
pub struct RedisServer {
    /// Its address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server that syncs its append-only file before every reply.
    pub fn start() -> RedisServer {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// A server with these persistence settings.
    pub fn start_with(persistence: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--daemonize",
            "no",
            "--dir",
            dir.path().to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(persistence.iter().map(|s| s.to_string()));
        let mut server = RedisServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            args,
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://ADDR`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// The server's data directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Kills the server with SIGKILL (no chance to flush anything).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and data, and waits
    /// until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "the Redis backend's tests need `redis-server` on PATH \
                 (Debian: apt-get install redis-server)",
            );
        self.child = Some(child);
        let started = Instant::now();
        loop {
            // Any answer means it is up (one with a password answers NOAUTH).
            match self.try_cmd(&["PING"]) {
                Ok(Reply::Simple(pong)) if pong == b"PONG" => return,
                Ok(Reply::Error(e)) if e.starts_with("NOAUTH") => return,
                _ => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "redis-server did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut out = Vec::new();
        resp::encode(&mut out, args);
        stream.write_all(&out)?;
        resp::read_reply(&mut BufReader::new(stream), &resp::ReplyLimits::default())
    }

    /// Runs one command and returns its reply.
    pub fn cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> Reply {
        self.try_cmd(args).expect("a reply from the test server")
    }

    /// Entries of `key` as (id, fields), oldest first.
    pub fn entries(&self, key: &str) -> Vec<(String, Fields)> {
        let reply = self.cmd(&["XRANGE", key, "-", "+"]);
        reply
            .items()
            .unwrap()
            .iter()
            .map(|e| {
                let e = e.items().unwrap();
                let id = String::from_utf8(e[0].bytes().unwrap().to_vec()).unwrap();
                let fields = e[1]
                    .items()
                    .unwrap()
                    .chunks(2)
                    .map(|p| {
                        (
                            String::from_utf8_lossy(p[0].bytes().unwrap()).into_owned(),
                            p[1].bytes().unwrap().to_vec(),
                        )
                    })
                    .collect();
                (id, fields)
            })
            .collect()
    }

    /// `XADD key * field value ...`; the new entry's id.
    pub fn xadd(&self, key: &str, fields: &[(&str, &[u8])]) -> String {
        let mut args: Vec<Vec<u8>> = vec![b"XADD".to_vec(), key.into(), b"*".to_vec()];
        for (name, value) in fields {
            args.push(name.as_bytes().to_vec());
            args.push(value.to_vec());
        }
        let reply = self.cmd(&args);
        String::from_utf8(reply.bytes().expect("an id").to_vec()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
