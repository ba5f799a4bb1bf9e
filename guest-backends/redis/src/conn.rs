//! One connection to the granted server: connect, authenticate, select the
//! database, send commands (pipelined), read replies. A connection that
//! failed is dropped, and the next call connects afresh, so a server that
//! restarted between calls is simply reached again.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use quire_guest::types::{IoFailure, PluginError};

use crate::resp::{self, Reply, ReplyLimits};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server (an IP literal: the plugin may look up no names).
    pub addr: SocketAddr,
    /// Database number (`SELECT`).
    pub db: u32,
    /// Password for servers with `requirepass` (`AUTH`).
    pub password: Option<String>,
    /// How long a connect may take.
    pub connect_timeout: Duration,
    /// How long one reply may take to start arriving.
    pub io_timeout: Duration,
}

/// A lazily (re)connected client.
pub struct Connection {
    target: Target,
    stream: Option<BufReader<TcpStream>>,
    limits: ReplyLimits,
    out: Vec<u8>,
    connects: u64,
}

impl Connection {
    /// A client for `target`; nothing is connected until the first call.
    pub fn new(target: Target) -> Self {
        Connection {
            target,
            stream: None,
            limits: ReplyLimits::default(),
            out: Vec::new(),
            connects: 0,
        }
    }

    /// How many connections were made so far (a new one may reach a
    /// restarted server with another configuration).
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The server, for messages.
    pub fn addr(&self) -> SocketAddr {
        self.target.addr
    }

    /// An I/O failure naming the server and the operation.
    pub fn failure(&self, operation: &str, message: impl std::fmt::Display) -> PluginError {
        PluginError::Io(IoFailure {
            operation: operation.into(),
            target: format!("redis://{}/{}", self.target.addr, self.target.db),
            message: message.to_string(),
        })
    }

    fn connect(&mut self) -> Result<&mut BufReader<TcpStream>, PluginError> {
        if self.stream.is_none() {
            let t = &self.target;
            let stream = TcpStream::connect_timeout(&t.addr, t.connect_timeout)
                .map_err(|e| self.failure("connect", format!("cannot reach the server: {e}")))?;
            let timeouts = stream
                .set_read_timeout(Some(t.io_timeout))
                .and_then(|()| stream.set_write_timeout(Some(t.io_timeout)))
                .and_then(|()| stream.set_nodelay(true));
            if let Err(e) = timeouts {
                return Err(self.failure("connect", e));
            }
            self.stream = Some(BufReader::with_capacity(256 << 10, stream));
            self.connects += 1;
            let mut hello: Vec<Vec<Vec<u8>>> = Vec::new();
            if let Some(password) = &self.target.password {
                hello.push(vec![b"AUTH".to_vec(), password.as_bytes().to_vec()]);
            }
            if self.target.db != 0 {
                hello.push(vec![
                    b"SELECT".to_vec(),
                    self.target.db.to_string().into_bytes(),
                ]);
            }
            if !hello.is_empty() {
                let replies = self.send(&hello, "connect")?;
                for reply in replies {
                    if let Reply::Error(e) = reply {
                        self.stream = None;
                        return Err(self.failure("authenticate", e));
                    }
                }
            }
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    /// Sends `commands` in one write and reads one reply each. Replies that
    /// are server errors are returned as they are; a broken connection is
    /// an error and is dropped (the next call reconnects).
    pub fn send<A: AsRef<[u8]>>(
        &mut self,
        commands: &[Vec<A>],
        operation: &str,
    ) -> Result<Vec<Reply>, PluginError> {
        self.out.clear();
        for command in commands {
            resp::encode(&mut self.out, command);
        }
        let out = std::mem::take(&mut self.out);
        let result = self.exchange(&out, commands.len(), operation);
        self.out = out;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(
        &mut self,
        out: &[u8],
        replies: usize,
        operation: &str,
    ) -> Result<Vec<Reply>, PluginError> {
        let limits = self.limits;
        let stream = self.connect()?;
        let written = stream
            .get_mut()
            .write_all(out)
            .and_then(|()| stream.get_mut().flush());
        if let Err(e) = written {
            // wasip2 reports a refused connect at the first write.
            let message = if e.kind() == std::io::ErrorKind::NotConnected {
                format!("cannot reach the server (connection refused or unreachable: {e})")
            } else {
                format!("sending: {e}")
            };
            return Err(self.failure(operation, message));
        }
        let mut got = Vec::with_capacity(replies);
        for _ in 0..replies {
            let stream = self.stream.as_mut().expect("connected above");
            match resp::read_reply(stream, &limits) {
                Ok(reply) => got.push(reply),
                Err(e) => {
                    let message = match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                            "no reply within {:?} (the server accepted the connection but \
                             did not answer)",
                            self.target.io_timeout
                        ),
                        _ => format!("reading the reply: {e}"),
                    };
                    return Err(self.failure(operation, message));
                }
            }
        }
        Ok(got)
    }

    /// [`Connection::call`] for a command the server may hold for up to
    /// `wait` before it answers (a blocking read): the reply timeout is
    /// stretched by that much for this call only.
    pub fn call_waiting<A: AsRef<[u8]>>(
        &mut self,
        command: Vec<A>,
        operation: &str,
        wait: Duration,
    ) -> Result<Reply, PluginError> {
        self.connect()?;
        let timeout = self.target.io_timeout + wait;
        let set = |conn: &mut Self, t: Duration| {
            conn.stream
                .as_ref()
                .map(|s| s.get_ref().set_read_timeout(Some(t)))
                .transpose()
        };
        if let Err(e) = set(self, timeout) {
            return Err(self.failure(operation, e));
        }
        let reply = self.call(command, operation);
        let _ = set(self, self.target.io_timeout);
        reply
    }

    /// One command; a server error becomes a plugin error.
    pub fn call<A: AsRef<[u8]>>(
        &mut self,
        command: Vec<A>,
        operation: &str,
    ) -> Result<Reply, PluginError> {
        let reply = self
            .send(&[command], operation)?
            .pop()
            .expect("one reply per command");
        self.ok(reply, operation)
    }

    /// `reply`, or a plugin error when the server refused.
    pub fn ok(&self, reply: Reply, operation: &str) -> Result<Reply, PluginError> {
        match reply {
            Reply::Error(e) => Err(self.failure(operation, format!("the server refused: {e}"))),
            reply => Ok(reply),
        }
    }

    /// [`Connection::call`], retried once on a fresh connection when the
    /// connection broke (for commands that may safely run twice: reads).
    pub fn call_idempotent<A: AsRef<[u8]> + Clone>(
        &mut self,
        command: Vec<A>,
        operation: &str,
    ) -> Result<Reply, PluginError> {
        match self.call(command.clone(), operation) {
            Err(PluginError::Io(_)) if self.stream.is_none() => self.call(command, operation),
            other => other,
        }
    }
}
