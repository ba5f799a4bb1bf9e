//! Where things live: `wal/store={name}/date={bucket}/segment-000001.wal`,
//! time buckets computed from record timestamps, store names safe as path
//! components, and unit ids parsed strictly (no `..`, no absolute paths).

/// Directory under the data root holding everything.
pub const WAL_DIR: &str = "wal";
/// Directory of receipts, under [`WAL_DIR`].
pub const RECEIPTS_DIR: &str = "receipts";
/// Suffix of a manifest, appended to the segment's file name.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Suffix of the manifest a rewrite commits after renaming its segment.
pub const PENDING_SUFFIX: &str = ".manifest.pending";
/// File in a store directory holding the highest segment number ever used.
pub const HIGH_WATER_FILE: &str = "high-water";
/// Temporary files (rewrites, atomic writes) end with this.
pub use quire_guest::atomic::TEMP_SUFFIX;

/// Longest store name: a path component is at most 255 bytes.
const MAX_STORE_NAME: usize = 200;
/// Bucket arithmetic stays within years 1 to 9999.
const MIN_TS: f64 = -62_135_596_800.0;
const MAX_TS: f64 = 253_402_300_799.0;

/// Granularity of the time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketMode {
    /// `date=%Y-%m-%d`.
    Day,
    /// `date=%Y-%m-%dT%H`.
    Hour,
    /// `date=flat`: no time partitioning.
    Flat,
}

impl BucketMode {
    /// Parses the `bucket` option.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "day" => Some(BucketMode::Day),
            "hour" => Some(BucketMode::Hour),
            "none" | "flat" => Some(BucketMode::Flat),
            _ => None,
        }
    }

    /// The option value naming this mode.
    pub fn name(self) -> &'static str {
        match self {
            BucketMode::Day => "day",
            BucketMode::Hour => "hour",
            BucketMode::Flat => "none",
        }
    }
}

/// A time bucket: its mode and the Unix second it starts at (0 when flat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Granularity.
    pub mode: BucketMode,
    /// First second of the bucket.
    pub start: i64,
}

impl Bucket {
    /// The bucket of a record with timestamp `ts` (UTC). Deterministic: the
    /// record's own time decides, never the time of writing.
    pub fn of(mode: BucketMode, ts: f64) -> Self {
        let ts = if ts.is_finite() {
            ts.clamp(MIN_TS, MAX_TS)
        } else {
            0.0
        };
        let secs = ts.floor() as i64;
        let start = match mode {
            BucketMode::Day => secs.div_euclid(86_400) * 86_400,
            BucketMode::Hour => secs.div_euclid(3_600) * 3_600,
            BucketMode::Flat => 0,
        };
        Self { mode, start }
    }

    /// The directory label (`2026-11-21`, `2026-11-21T05`, `flat`).
    pub fn label(&self) -> String {
        let days = self.start.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        match self.mode {
            BucketMode::Day => format!("{y:04}-{m:02}-{d:02}"),
            BucketMode::Hour => format!(
                "{y:04}-{m:02}-{d:02}T{:02}",
                self.start.rem_euclid(86_400) / 3_600
            ),
            BucketMode::Flat => "flat".into(),
        }
    }

    /// Parses a directory label back.
    pub fn parse(label: &str) -> Option<Self> {
        if label == "flat" {
            return Some(Self {
                mode: BucketMode::Flat,
                start: 0,
            });
        }
        let (date, hour) = match label.split_once('T') {
            Some((date, hour)) => (date, Some(hour)),
            None => (date_only(label)?, None),
        };
        let mut parts = date.splitn(3, '-');
        let y: i64 = digits(parts.next()?, 4)?;
        let m: u32 = digits(parts.next()?, 2)?;
        let d: u32 = digits(parts.next()?, 2)?;
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        let day_start = days_from_civil(y, m, d) * 86_400;
        let bucket = match hour {
            None => Self {
                mode: BucketMode::Day,
                start: day_start,
            },
            Some(h) => {
                let h: i64 = digits(h, 2)?;
                if h > 23 {
                    return None;
                }
                Self {
                    mode: BucketMode::Hour,
                    start: day_start + h * 3_600,
                }
            }
        };
        // Only the canonical spelling names a bucket.
        (bucket.label() == label).then_some(bucket)
    }

    /// Whether a record in `self` must close a live segment in `segment`:
    /// its bucket is later, or the bucket mode was changed.
    pub fn is_later_than(&self, segment: &Bucket) -> bool {
        self.mode != segment.mode || self.start > segment.start
    }

    /// Whether a record at `ts`, bucketed by `mode`, may go into a segment
    /// of this bucket: exactly `!Bucket::of(mode, ts).is_later_than(self)`,
    /// without the calendar arithmetic for a time inside or before it.
    pub fn admits(&self, mode: BucketMode, ts: f64) -> bool {
        // A finite time at or above MIN_TS and below this bucket's end
        // floors to a bucket starting at or before this one's (starts are
        // multiples of the bucket length). NaN fails both comparisons.
        if mode == self.mode && ts >= MIN_TS && ts < self.end_ts() {
            return true;
        }
        !Bucket::of(mode, ts).is_later_than(self)
    }

    /// The first second after the bucket.
    fn end_ts(&self) -> f64 {
        match self.mode {
            BucketMode::Day => (self.start + 86_400) as f64,
            BucketMode::Hour => (self.start + 3_600) as f64,
            BucketMode::Flat => f64::INFINITY,
        }
    }
}

fn date_only(label: &str) -> Option<&str> {
    (label.len() == 10).then_some(label)
}

fn digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Checks that a store name can be a path component, unchanged.
pub fn check_store_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("store name is empty".into());
    }
    if name.len() > MAX_STORE_NAME {
        return Err(format!(
            "store name is {} bytes; at most {MAX_STORE_NAME} fit in a directory name",
            name.len()
        ));
    }
    if name.starts_with('.') || name.contains("..") {
        return Err(format!(
            "store name `{name}` starts with `.` or contains `..`"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c == '/' || c == '\\' || c == ':' || c.is_control())
    {
        return Err(format!(
            "store name `{}` contains {c:?}, which cannot be in a directory name",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// File name of segment `number`.
pub fn segment_file_name(number: u64) -> String {
    format!("segment-{number:06}.wal")
}

/// The number in a segment file name.
pub fn parse_segment_file(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".wal")?;
    if digits.len() >= 6 && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = digits.parse().ok()?;
        (segment_file_name(n) == name).then_some(n)
    } else {
        None
    }
}

/// One segment's place: store, bucket directory, number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentRef {
    /// Store name.
    pub store: String,
    /// Bucket directory label.
    pub bucket: String,
    /// Segment number, unique within the store.
    pub number: u64,
}

impl SegmentRef {
    /// The directory, relative to the data root.
    pub fn dir(&self) -> String {
        format!("{WAL_DIR}/store={}/date={}", self.store, self.bucket)
    }

    /// The unit id: the segment's path relative to the data root.
    pub fn unit_id(&self) -> String {
        format!("{}/{}", self.dir(), segment_file_name(self.number))
    }

    /// The manifest's path relative to the data root.
    pub fn manifest_id(&self) -> String {
        format!("{}{MANIFEST_SUFFIX}", self.unit_id())
    }

    /// The pending manifest's path relative to the data root.
    pub fn pending_id(&self) -> String {
        format!("{}{PENDING_SUFFIX}", self.unit_id())
    }
}

/// The store directory, relative to the data root.
pub fn store_dir(store: &str) -> String {
    format!("{WAL_DIR}/store={store}")
}

/// A file other than a segment that `drop-unit` may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrayKind {
    /// A temporary file (`*.quire-tmp`) left by an interrupted write.
    Temp,
    /// A manifest whose segment is gone.
    Manifest,
    /// A rewrite's manifest that was never put in place.
    Pending,
}

/// What a unit id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitRef {
    /// A segment.
    Segment(SegmentRef),
    /// A file in the layout that is not a segment.
    Stray {
        /// What it is.
        kind: StrayKind,
        /// Path relative to the data root (the id itself).
        id: String,
        /// Its store, when it lives in a store directory.
        store: Option<String>,
        /// The segment number in its name, when there is one.
        number: Option<u64>,
    },
}

/// Parses a unit id strictly: only the shapes this backend writes.
pub fn parse_unit(id: &str) -> Option<UnitRef> {
    let parts: Vec<&str> = id.split('/').collect();
    match parts.as_slice() {
        [WAL_DIR, RECEIPTS_DIR, file] if is_temp_name(file) => Some(UnitRef::Stray {
            kind: StrayKind::Temp,
            id: id.into(),
            store: None,
            number: None,
        }),
        // The high-water mark's temporary file, from a write a crash interrupted.
        [WAL_DIR, store_part, file] if is_temp_name(file) => {
            let store = store_part.strip_prefix("store=")?;
            check_store_name(store).ok()?;
            Some(UnitRef::Stray {
                kind: StrayKind::Temp,
                id: id.into(),
                store: Some(store.into()),
                number: None,
            })
        }
        [WAL_DIR, store_part, date_part, file] => {
            let store = store_part.strip_prefix("store=")?;
            check_store_name(store).ok()?;
            let bucket = date_part.strip_prefix("date=")?;
            Bucket::parse(bucket)?;
            let stray = |kind, number| {
                Some(UnitRef::Stray {
                    kind,
                    id: id.into(),
                    store: Some(store.into()),
                    number,
                })
            };
            if let Some(number) = parse_segment_file(file) {
                return Some(UnitRef::Segment(SegmentRef {
                    store: store.into(),
                    bucket: bucket.into(),
                    number,
                }));
            }
            if let Some(seg) = file.strip_suffix(MANIFEST_SUFFIX) {
                return stray(StrayKind::Manifest, Some(parse_segment_file(seg)?));
            }
            if let Some(seg) = file.strip_suffix(PENDING_SUFFIX) {
                return stray(StrayKind::Pending, Some(parse_segment_file(seg)?));
            }
            if is_temp_name(file) {
                return stray(StrayKind::Temp, number_prefix(file));
            }
            None
        }
        _ => None,
    }
}

/// Whether a file name is a temporary file this backend (or the receipt
/// book) may have left.
pub fn is_temp_name(name: &str) -> bool {
    name.len() > TEMP_SUFFIX.len() && name.ends_with(TEMP_SUFFIX) && !name.starts_with('.')
}

/// The segment number at the start of a name like `segment-000003.wal...`.
pub fn number_prefix(name: &str) -> Option<u64> {
    let end = name.find(".wal")? + 4;
    parse_segment_file(&name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_record_time() {
        // 2026-11-21T05:30:00Z
        let ts = 1_795_239_000.25;
        assert_eq!(Bucket::of(BucketMode::Day, ts).label(), "2026-11-21");
        assert_eq!(Bucket::of(BucketMode::Hour, ts).label(), "2026-11-21T05");
        assert_eq!(Bucket::of(BucketMode::Flat, ts).label(), "flat");
        assert_eq!(Bucket::of(BucketMode::Day, 0.0).label(), "1970-01-01");
        assert_eq!(Bucket::of(BucketMode::Day, -1.0).label(), "1969-12-31");
        assert_eq!(
            Bucket::of(BucketMode::Day, 951_782_400.0).label(),
            "2000-02-29"
        );
        assert_eq!(
            Bucket::of(BucketMode::Day, f64::INFINITY).label(),
            "1970-01-01"
        );
        assert_eq!(Bucket::of(BucketMode::Day, 1e300).label(), "9999-12-31");
        for label in [
            "2026-11-21",
            "2026-11-21T05",
            "flat",
            "1969-12-31",
            "2000-02-29T23",
        ] {
            assert_eq!(Bucket::parse(label).unwrap().label(), label);
        }
        for bad in [
            "2026-02-30",
            "2026-11-21T24",
            "2026-1-21",
            "x",
            "2026-11-21T5",
            "",
        ] {
            assert!(Bucket::parse(bad).is_none(), "{bad}");
        }
        let day = Bucket::of(BucketMode::Day, ts);
        assert!(Bucket::of(BucketMode::Day, ts + 86_400.0).is_later_than(&day));
        assert!(!Bucket::of(BucketMode::Day, ts - 86_400.0).is_later_than(&day));
        assert!(!Bucket::of(BucketMode::Day, ts + 60.0).is_later_than(&day));
        assert!(Bucket::of(BucketMode::Hour, ts).is_later_than(&day));
    }

    #[test]
    fn admits_is_the_bucket_comparison() {
        let modes = [BucketMode::Day, BucketMode::Hour, BucketMode::Flat];
        let mut times = vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            MIN_TS,
            MIN_TS - 0.5,
            MAX_TS,
            MAX_TS + 1.0,
            1e300,
            -1e300,
            0.0,
            -0.0,
        ];
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Around bucket edges near now, and anywhere in the calendar.
            let edge = 1_795_219_200.0 + ((rng % 400) as f64 - 200.0) * 1_800.0;
            times.push(edge + ((rng >> 20) % 5) as f64 - 2.0 + ((rng >> 40) % 4) as f64 * 0.25);
            times.push(MIN_TS + (rng >> 11) as f64 / (1u64 << 53) as f64 * (MAX_TS - MIN_TS));
        }
        let buckets: Vec<Bucket> = times
            .iter()
            .step_by(37)
            .flat_map(|&ts| modes.map(|m| Bucket::of(m, ts)))
            .collect();
        for bucket in &buckets {
            for &mode in &modes {
                for &ts in &times {
                    assert_eq!(
                        bucket.admits(mode, ts),
                        !Bucket::of(mode, ts).is_later_than(bucket),
                        "{bucket:?} {mode:?} {ts}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_day_round_trips() {
        for days in -800_000..800_000i64 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn store_names_are_path_safe() {
        for ok in ["gps", "orders-2026", "sys béta", "a.b"] {
            assert!(check_store_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "a/b", "../x", "a..b", ".hidden", "a\\b", "a\nb", "c:d",
        ] {
            assert!(check_store_name(bad).is_err(), "{bad}");
        }
        assert!(check_store_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn unit_ids_parse_strictly() {
        let seg = SegmentRef {
            store: "gps".into(),
            bucket: "2026-11-21".into(),
            number: 3,
        };
        assert_eq!(
            seg.unit_id(),
            "wal/store=gps/date=2026-11-21/segment-000003.wal"
        );
        assert_eq!(
            parse_unit(&seg.unit_id()),
            Some(UnitRef::Segment(seg.clone()))
        );
        assert!(matches!(
            parse_unit(&seg.manifest_id()),
            Some(UnitRef::Stray {
                kind: StrayKind::Manifest,
                number: Some(3),
                ..
            })
        ));
        assert!(matches!(
            parse_unit("wal/store=gps/date=2026-11-21/segment-000003.wal.quire-tmp"),
            Some(UnitRef::Stray {
                kind: StrayKind::Temp,
                number: Some(3),
                ..
            })
        ));
        assert!(matches!(
            parse_unit("wal/receipts/0001-purged-x.quire-tmp"),
            Some(UnitRef::Stray {
                kind: StrayKind::Temp,
                store: None,
                ..
            })
        ));
        for bad in [
            "wal/store=../date=flat/segment-000001.wal",
            "wal/store=gps/date=flat/../segment-000001.wal",
            "/wal/store=gps/date=flat/segment-000001.wal",
            "wal/store=gps/date=nope/segment-000001.wal",
            "wal/store=gps/date=flat/segment-1.wal",
            "wal/store=gps/date=flat/other.txt",
            "wal/receipts/x.receipt.json",
        ] {
            assert!(parse_unit(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_segment_file("segment-1234567.wal"), Some(1_234_567));
        assert_eq!(parse_segment_file("segment-0000001.wal"), None);
    }
}
