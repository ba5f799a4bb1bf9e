//! Counters: Papyra's ten and a few of quire's own, as a JSON snapshot or
//! Prometheus text exposition.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($($name:ident: $help:literal,)*) => {
        /// Live counters, shared by every operation on a store.
        #[derive(Debug, Default)]
        pub struct Metrics { $(#[doc = $help] pub $name: AtomicU64,)* }

        /// A point-in-time copy of the counters.
        #[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
        pub struct MetricsSnapshot { $(#[doc = $help] pub $name: u64,)* }

        impl Metrics {
            /// Copies every counter.
            pub fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
            /// Sets every counter to zero.
            pub fn reset(&self) {
                $(self.$name.store(0, Ordering::Relaxed);)*
            }
        }

        impl MetricsSnapshot {
            /// Prometheus text exposition format, counters named `quire_<name>_total`.
            pub fn prometheus(&self) -> String {
                let mut out = String::new();
                $(
                    out.push_str(&format!(
                        "# HELP quire_{0}_total {1}\n# TYPE quire_{0}_total counter\nquire_{0}_total {2}\n",
                        stringify!($name), $help, self.$name
                    ));
                )*
                out
            }
        }
    };
}

counters! {
    records_written: "Records acknowledged by append.",
    bytes_written: "Bytes appended, as the backend stored them.",
    scans: "Scans run.",
    anomalies_detected: "Anomalies found by scans.",
    recoveries: "Recoveries run.",
    compactions: "Compactions run.",
    write_errors: "Appends that failed.",
    scan_errors: "Scans that failed.",
    recovery_errors: "Recoveries that failed.",
    compaction_errors: "Compactions that failed.",
    records_read: "Records returned by reads.",
    syncs: "Durable syncs (fdatasync) issued by group commit.",
    plugin_faults: "Plugin traps, deadlines and bad return values contained.",
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_every_counter() {
        let m = Metrics::default();
        add(&m.records_written, 3);
        let text = m.snapshot().prometheus();
        assert!(text.contains("quire_records_written_total 3\n"));
        assert_eq!(text.matches("# TYPE").count(), 13);
    }
}
