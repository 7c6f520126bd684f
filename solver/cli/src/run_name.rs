//! Default run directories: `runs/<scenario>-<method>-<YYYYMMDD-HHMMSS>`, the
//! time in UTC so that names sort by start time on any machine, with `-2`,
//! `-3`, … appended when a name is taken (two runs in the same second): a run
//! never writes into another run's directory.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tessera_scenarios::Scenario;
use tessera_solver::{RunDir, World, method_name};

/// The run directory of a new run: `out` if given, else on rank 0 a fresh
/// default one. The other ranks of a multi-rank run never touch the run
/// directory (rank 0 writes config, metrics and checkpoints), so without `out`
/// they get an empty path instead of claiming directories of their own.
///
/// Errors: the default directory cannot be created.
pub fn fresh_run_dir(
    out: Option<PathBuf>,
    scenario: &Scenario,
    world: &World,
) -> anyhow::Result<RunDir> {
    Ok(match out {
        Some(dir) => RunDir::new(dir),
        None if world.is_root() => {
            default_run_dir(scenario).context("creating the run directory")?
        }
        None => RunDir::new(PathBuf::new()),
    })
}

/// Claims a fresh default run directory for `scenario` under `runs/` (creates
/// it, so that a concurrent run cannot take the same name).
///
/// Errors: `runs/` cannot be created or written.
fn default_run_dir(scenario: &Scenario) -> io::Result<RunDir> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!(
        "{}-{}-{}",
        scenario.name,
        method_name(scenario),
        utc_stamp(now)
    );
    claim(Path::new("runs"), &base).map(RunDir::new)
}

/// Creates `parent/base`, or the first free `parent/base-2`, `-3`, …
fn claim(parent: &Path, base: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    for n in 1.. {
        let path = match n {
            1 => parent.join(base),
            _ => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("an unbounded range of names")
}

/// `YYYYMMDD-HHMMSS` (UTC) of `secs` seconds after the Unix epoch.
fn utc_stamp(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
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
            assert_eq!(utc_stamp(secs), expected, "{secs}");
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

    #[test]
    fn taken_names_get_a_suffix() {
        let parent = std::env::temp_dir().join(format!("tessera-run-name-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        let first = claim(&parent, "a").unwrap();
        let second = claim(&parent, "a").unwrap();
        let third = claim(&parent, "a").unwrap();
        assert_eq!(first, parent.join("a"));
        assert_eq!(second, parent.join("a-2"));
        assert_eq!(third, parent.join("a-3"));
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
