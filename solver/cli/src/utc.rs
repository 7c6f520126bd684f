//! Dates in UTC without a date library: a run directory's name
//! (`YYYYMMDD-HHMMSS`, which sorts by start time on any machine) and the
//! start of each command in its provenance record (RFC 3339).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now (0 on a clock set before it).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC) of `secs` seconds after the Unix
/// epoch.
pub fn rfc3339(secs: u64) -> String {
    let [year, month, day, hour, minute, second] = fields(secs);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `YYYYMMDD-HHMMSS` (UTC) of `secs` seconds after the Unix epoch.
pub fn stamp(secs: u64) -> String {
    let [year, month, day, hour, minute, second] = fields(secs);
    format!("{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}")
}

/// Year, month, day, hour, minute and second (UTC) of `secs` seconds after
/// the Unix epoch.
fn fields(secs: u64) -> [u64; 6] {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    [year, month, day, rest / 3600, rest % 3600 / 60, rest % 60]
}

/// The proleptic Gregorian date `(year, month, day)` of `days` days after
/// 1970-01-01: H. Hinnant's `civil_from_days` ("chrono-Compatible Low-Level
/// Date Algorithms"), which counts in 400-year eras starting on 1 March so
/// that the leap day ends each year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
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
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings from GNU `date -u -d @SECS +%Y%m%d-%H%M%S`.
    #[test]
    fn stamps_of_known_instants() {
        for (secs, expected) in [
            (0, "19700101-000000"),
            (951_782_400, "20000229-000000"),
            (1_709_164_800, "20240229-000000"),
            (4_102_444_800, "21000101-000000"),
            (1_796_106_930, "20261201-063530"),
            (253_402_300_799, "99991231-235959"),
        ] {
            assert_eq!(stamp(secs), expected, "{secs}");
        }
    }

    /// Expected strings from GNU `date -u -d @SECS +%Y-%m-%dT%H:%M:%SZ`.
    #[test]
    fn rfc3339_of_known_instants() {
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_106_930, "2026-12-01T06:35:30Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(secs), expected, "{secs}");
        }
    }

    /// Day after day for 800 years, the date advances by the calendar's own
    /// rules: the day within the month, else the first of the next month when
    /// the month is full (Gregorian leap years), else 1 January.
    #[test]
    fn consecutive_days_follow_the_calendar() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let length = |y: u64, m: u64| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut date = civil_from_days(0);
        assert_eq!(date, (1970, 1, 1));
        for days in 1..800 * 366 {
            let (y, m, d) = date;
            let next = if d < length(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            date = civil_from_days(days);
            assert_eq!(date, next, "day {days}");
        }
    }
}
