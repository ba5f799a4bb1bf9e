//! Which stream a record goes to: Papyra's layout,
//! `{prefix}:{store}:events|audits|dead_letters`, so that Papyra reads what
//! quire wrote and the other way round. Kinds Papyra does not have go to
//! `{prefix}:{store}:kind:{kind}`.

/// The stream key layout under one prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
}

/// Papyra's three streams, by record kind.
const PAPYRA_STREAMS: [(&str, &str); 3] = [
    ("event", "events"),
    ("audit", "audits"),
    ("dead_letter", "dead_letters"),
];

impl Layout {
    /// Keys under `prefix` (Papyra's default is `papyra`).
    pub fn new(prefix: &str) -> Result<Layout, String> {
        if prefix.is_empty()
            || prefix
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b"*?[]\\".contains(&b))
        {
            return Err(format!(
                "prefix `{prefix}` must be non-empty, without spaces or glob characters (* ? [ ] \\)"
            ));
        }
        Ok(Layout {
            prefix: prefix.to_string(),
        })
    }

    /// The stream of a record of `kind` in `store`; `Err` explains a kind
    /// or store that cannot name a stream (one whose key would not read
    /// back as the same store and kind is refused, never written).
    pub fn key(&self, store: &str, kind: &str) -> Result<String, String> {
        if store.is_empty() {
            return Err("the record's store (`store` or `system_id`) is empty".into());
        }
        let key = match PAPYRA_STREAMS.iter().find(|(k, _)| *k == kind) {
            Some((_, stream)) => format!("{}:{store}:{stream}", self.prefix),
            None if kind.is_empty() || kind.contains(':') => {
                return Err(format!(
                    "kind `{kind}` cannot name a stream (empty, or contains `:`)"
                ));
            }
            None => format!("{}:{store}:kind:{kind}", self.prefix),
        };
        if self
            .parse(&key)
            .as_ref()
            .map(|(s, k)| (s.as_str(), k.as_str()))
            != Some((store, kind))
        {
            return Err(format!(
                "store `{store}` with kind `{kind}` would be stream `{key}`, which reads back as \
                 another store or kind (`quire:` and `:quarantine` are reserved, and `:kind:` or \
                 `:events`-like endings are ambiguous)"
            ));
        }
        Ok(key)
    }

    /// Whether `key` can be a unit: no absolute path, no `..` part, no NUL
    /// (the host checks unit names as paths).
    fn unit_name_ok(key: &str) -> bool {
        !key.starts_with(['/', '\\'])
            && !key.split(['/', '\\']).any(|part| part == "..")
            && !key.contains('\0')
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pattern `SCAN` matches candidate streams with.
    pub fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }

    /// The store and kind a key holds, when it is one of this layout's
    /// record streams (not a quarantine stream or anything else).
    pub fn parse(&self, key: &str) -> Option<(String, String)> {
        if !Self::unit_name_ok(key) {
            return None;
        }
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix(':')?;
        for (kind, stream) in PAPYRA_STREAMS {
            if let Some(store) = rest.strip_suffix(stream).and_then(|s| s.strip_suffix(':')) {
                return self.store_name(store).map(|s| (s, kind.to_string()));
            }
        }
        let (store, kind) = rest.rsplit_once(":kind:")?;
        (!kind.is_empty()).then_some(())?;
        self.store_name(store).map(|s| (s, kind.to_string()))
    }

    fn store_name(&self, store: &str) -> Option<String> {
        // Papyra's quarantine streams live at `{prefix}:{system}:quarantine:...`;
        // quire's own bookkeeping at `{prefix}:quire:...`.
        let reserved =
            store.contains(":quarantine") || store == "quire" || store.starts_with("quire:");
        (!store.is_empty() && !reserved).then(|| store.to_string())
    }

    /// The stream entries of `source` are quarantined to, as Papyra names it.
    pub fn quarantine_key(&self, store: &str, source: &str) -> String {
        format!(
            "{}:{store}:quarantine:{}",
            self.prefix,
            source.replace(':', "_")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_papyras_and_parse_back() {
        let l = Layout::new("papyra").unwrap();
        assert_eq!(l.key("local", "event").unwrap(), "papyra:local:events");
        assert_eq!(l.key("local", "audit").unwrap(), "papyra:local:audits");
        assert_eq!(
            l.key("local", "dead_letter").unwrap(),
            "papyra:local:dead_letters"
        );
        assert_eq!(l.key("a:b", "metric").unwrap(), "papyra:a:b:kind:metric");
        for (store, kind) in [
            ("local", "event"),
            ("a:b", "dead_letter"),
            ("x", "metric"),
            ("x:y", "custom_kind"),
        ] {
            let key = l.key(store, kind).unwrap();
            assert_eq!(
                l.parse(&key),
                Some((store.to_string(), kind.to_string())),
                "{key}"
            );
        }
        assert!(l.key("s", "a:b").is_err());
        assert!(l.key("", "event").is_err());
        assert_eq!(l.parse("papyra:local:quarantine:papyra_local_events"), None);
        assert_eq!(l.parse("other:local:events"), None);
        assert_eq!(l.parse("papyra:events"), None);
        assert_eq!(l.parse("papyrax:local:events"), None);
        assert_eq!(
            l.quarantine_key("local", "papyra:local:events"),
            "papyra:local:quarantine:papyra_local_events"
        );
        assert!(Layout::new("a*").is_err());
        assert!(Layout::new("a\\b").is_err());
        // Names whose key would read back as something else are refused.
        for (store, kind) in [
            ("s", "events"),
            ("x:kind", "events"),
            ("eu:quarantined", "event"),
            ("quire:rewrite:x", "staged"),
            ("a/../b", "event"),
            ("n\0", "event"),
        ] {
            assert!(l.key(store, kind).is_err(), "{store:?} {kind:?}");
        }
        assert_eq!(l.parse("papyra:a/../b:events"), None);
    }
}
