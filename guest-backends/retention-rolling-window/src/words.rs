//! Durations and instants in words, for `describe`.

/// A length of time in the largest unit it fills: `7 days`, `1.5 hours`,
/// `90 seconds` stays `1.5 minutes`, `0.25 seconds`.
pub fn duration(seconds: f64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("day", 86_400.0),
        ("hour", 3_600.0),
        ("minute", 60.0),
        ("second", 1.0),
    ];
    let (name, size) = UNITS
        .iter()
        .copied()
        .find(|(_, size)| seconds >= *size)
        .unwrap_or(UNITS[3]);
    let value = seconds / size;
    let number = trimmed(value);
    let plural = if number == "1" { "" } else { "s" };
    format!("{number} {name}{plural}")
}

/// `value` with at most two decimals and no trailing zeros.
fn trimmed(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A Unix time as UTC ISO 8601 (`2024-03-01T12:00:00Z`, milliseconds only
/// when there are some). Times outside years 0..=9999 are left as numbers.
pub fn utc(unix_seconds: f64) -> String {
    // Years 0000 and 9999 bound what the four-digit format can show.
    const FIRST: f64 = -62_167_219_200.0;
    const LAST: f64 = 253_402_300_800.0;
    if !(FIRST..LAST).contains(&unix_seconds) {
        return format!("{unix_seconds}s since 1970-01-01T00:00:00Z");
    }
    let whole = unix_seconds.floor();
    let millis = ((unix_seconds - whole) * 1000.0).round() as i64;
    let (whole, millis) = if millis == 1000 {
        (whole as i64 + 1, 0)
    } else {
        (whole as i64, millis)
    };
    let (year, month, day) = civil_date(whole.div_euclid(86_400));
    let in_day = whole.rem_euclid(86_400);
    let (h, m, s) = (in_day / 3600, in_day % 3600 / 60, in_day % 60);
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

/// Proleptic Gregorian (year, month, day) of a count of days since
/// 1970-01-01, computed in 400-year eras that start on March 1st so the leap
/// day falls at the end of each year.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_their_largest_unit() {
        assert_eq!(duration(604_800.0), "7 days");
        assert_eq!(duration(86_400.0), "1 day");
        assert_eq!(duration(5_400.0), "1.5 hours");
        assert_eq!(duration(90.0), "1.5 minutes");
        assert_eq!(duration(45.0), "45 seconds");
        assert_eq!(duration(1.0), "1 second");
        assert_eq!(duration(0.25), "0.25 seconds");
        assert_eq!(duration(100_000.0), "1.16 days");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_709_294_400.0), "2024-03-01T12:00:00Z");
        assert_eq!(utc(1_709_294_400.25), "2024-03-01T12:00:00.250Z");
        assert_eq!(utc(1_709_294_399.999_6), "2024-03-01T12:00:00Z");
        assert_eq!(utc(-1.0), "1969-12-31T23:59:59Z");
        assert_eq!(utc(4_102_444_800.0), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn utc_out_of_range_stays_a_number() {
        assert!(utc(1e15).contains("since 1970"));
        assert!(utc(-1e12).contains("since 1970"));
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous() {
        // Walking day by day checks month lengths and leap years at once.
        let month_length = |y: i64, m: i64| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut previous = civil_date(-1);
        for days in 0..146_097 {
            let (y, m, d) = civil_date(days);
            let (py, pm, pd) = previous;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = (y, m, d) == (py, pm + 1, 1) && pd == month_length(py, pm);
            let next_year = (y, m, d) == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{previous:?} -> {:?}",
                (y, m, d)
            );
            previous = (y, m, d);
        }
    }
}
