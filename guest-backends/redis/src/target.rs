//! The store's address and options: `redis://IP:PORT[/DB]`, with an IP
//! literal (the plugin may look up no names; the host grants exactly
//! this address).

use std::net::SocketAddr;
use std::time::Duration;

use quire_guest::options::Options;
use quire_guest::types::PluginError;

use crate::conn::Target;

/// Option names this backend accepts.
pub const OPTIONS: &[&str] = &[
    "prefix",
    "password",
    "connect-timeout-ms",
    "io-timeout-ms",
    "accept-unsynced",
];

/// The options besides the address.
pub struct Settings {
    /// Where and how to connect.
    pub target: Target,
    /// Key prefix (Papyra's default `papyra`).
    pub prefix: String,
    /// See [`crate::client::Client::accept_unsynced`].
    pub accept_unsynced: bool,
}

fn bad(message: String) -> PluginError {
    PluginError::InvalidConfig(message)
}

/// Parses `redis://IP:PORT[/DB]`.
pub fn parse_url(url: &str) -> Result<(SocketAddr, u32), PluginError> {
    if url.is_empty() {
        return Err(bad(
            "the redis backend is reached at --path redis://IP:PORT[/DB]; a file or directory \
             path was given"
                .into(),
        ));
    }
    let rest = url.strip_prefix("redis://").ok_or_else(|| {
        bad(format!(
            "`{url}` is not a redis URL: give --path redis://IP:PORT[/DB]"
        ))
    })?;
    let (host, db) = match rest.split_once('/') {
        Some((host, "")) => (host, 0),
        Some((host, db)) => (
            host,
            db.parse::<u32>()
                .map_err(|_| bad(format!("database `{db}` in `{url}` is not a number")))?,
        ),
        None => (rest, 0),
    };
    if host.contains('@') {
        return Err(bad(format!(
            "`{url}`: give the password with the `password` option, not in the URL"
        )));
    }
    let addr = host.parse::<SocketAddr>().map_err(|_| {
        bad(format!(
            "`{host}` in `{url}` is not IP:PORT (an IP literal: the plugin looks up no names)"
        ))
    })?;
    Ok((addr, db))
}

/// The connection target and the key prefix from the URL and options.
pub fn from_config(url: &str, options: Vec<(String, String)>) -> Result<Settings, PluginError> {
    let (addr, db) = parse_url(url)?;
    let options = Options::new(options, OPTIONS)?;
    let target = Target {
        addr,
        db,
        password: options.get("password").map(str::to_string),
        connect_timeout: Duration::from_millis(options.u64_or("connect-timeout-ms", 2000)?.max(1)),
        io_timeout: Duration::from_millis(options.u64_or("io-timeout-ms", 10_000)?.max(1)),
    };
    let accept_unsynced = match options.get("accept-unsynced") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(format!(
                "option `accept-unsynced` is true or false, got `{other}`"
            )));
        }
    };
    Ok(Settings {
        target,
        prefix: options.get("prefix").unwrap_or("papyra").to_string(),
        accept_unsynced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_an_ip_port_and_database() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6379").unwrap(),
            ("127.0.0.1:6379".parse().unwrap(), 0)
        );
        assert_eq!(parse_url("redis://127.0.0.1:6379/").unwrap().1, 0);
        assert_eq!(
            parse_url("redis://[::1]:7000/3").unwrap(),
            ("[::1]:7000".parse().unwrap(), 3)
        );
        for bad in [
            "127.0.0.1:6379",
            "redis://localhost:6379",
            "redis://127.0.0.1",
            "redis://1.2.3.4:5/x",
            "redis://:pw@127.0.0.1:1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
