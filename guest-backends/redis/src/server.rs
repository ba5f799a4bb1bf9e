//! What the server can promise about durability, asked once per connection.

use quire_guest::types::PluginError;

use crate::conn::Connection;

/// How `durable` is kept on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durable {
    /// `appendonly yes` with `appendfsync always`: the server syncs its
    /// append-only file before it replies, so every reply is durable.
    EveryReply,
    /// Redis >= 7.2 with `appendonly yes`: `WAITAOF 1 0` after the writes.
    WaitAof,
    /// The server cannot promise it; the reason, for the error.
    Not(String),
}

/// The server's version and durability, from `INFO` and `CONFIG GET`.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// `redis_version`.
    pub version: String,
    /// How durable appends are kept.
    pub durable: Durable,
    /// `appendonly` and `appendfsync`, for reports.
    pub persistence: String,
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

fn version_at_least(version: &str, major: u64, minor: u64) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Asks the server.
pub fn probe(conn: &mut Connection) -> Result<ServerFacts, PluginError> {
    let replies = conn.send(
        &[
            vec!["INFO", "server"],
            vec!["INFO", "persistence"],
            vec!["CONFIG", "GET", "appendfsync"],
            vec!["CONFIG", "GET", "no-appendfsync-on-rewrite"],
        ],
        "ask the server about durability",
    )?;
    let text = |i: usize| {
        replies
            .get(i)
            .and_then(|r| r.bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let server = text(0).ok_or_else(|| conn.failure("INFO server", replies[0].describe()))?;
    let persistence = text(1).unwrap_or_default();
    let version = info_field(&server, "redis_version")
        .unwrap_or("unknown")
        .to_string();
    let aof = info_field(&persistence, "aof_enabled") == Some("1");
    // CONFIG may be renamed away on managed servers: then fsync is unknown.
    let fsync = replies
        .get(2)
        .and_then(|r| r.items())
        .and_then(|items| items.get(1))
        .and_then(|v| v.bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned());
    // With this set, the server skips fsync while it rewrites its AOF.
    let skips_during_rewrite = replies
        .get(3)
        .and_then(|r| r.items())
        .and_then(|items| items.get(1))
        .and_then(|v| v.bytes())
        == Some(b"yes".as_slice());
    let durable = if aof && fsync.as_deref() == Some("always") && !skips_during_rewrite {
        Durable::EveryReply
    } else if aof && version_at_least(&version, 7, 2) && !skips_during_rewrite {
        Durable::WaitAof
    } else if skips_during_rewrite {
        Durable::Not(format!(
            "redis {version} has no-appendfsync-on-rewrite yes: it does not sync while it \
             rewrites its AOF; set it to no"
        ))
    } else if !aof {
        Durable::Not(format!(
            "appendonly is off on redis {version}: the server keeps writes in memory and \
             snapshots; set `appendonly yes` and `appendfsync always` (or use Redis >= 7.2 for \
             WAITAOF)"
        ))
    } else {
        Durable::Not(format!(
            "redis {version} has appendonly on with appendfsync {} and no WAITAOF (Redis >= 7.2): \
             set `appendfsync always`",
            fsync.as_deref().unwrap_or("unknown (CONFIG GET refused)")
        ))
    };
    Ok(ServerFacts {
        version,
        durable,
        persistence: format!(
            "appendonly {}, appendfsync {}",
            if aof { "yes" } else { "no" },
            fsync.as_deref().unwrap_or("unknown")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(version_at_least("7.2.0", 7, 2));
        assert!(version_at_least("7.10.1", 7, 2));
        assert!(version_at_least("8.0.0", 7, 2));
        assert!(!version_at_least("7.0.15", 7, 2));
        assert!(!version_at_least("unknown", 7, 2));
        assert_eq!(
            info_field("# Server\r\nredis_version:7.0.15\r\n", "redis_version"),
            Some("7.0.15")
        );
    }
}
