//! Human durations for `--max-time`: `2h`, `90m`, `45s`, `1h30m`, the way a
//! job scheduler's time limit is usually written down.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration; write e.g. 2h, 90m, 45s or 1h30m")]
    Empty,
    /// A unit without a number before it, or a character that is neither.
    #[error("expected a whole number at `{rest}`; write e.g. 2h, 90m, 45s or 1h30m")]
    Number {
        /// The rest of the string from the offending character.
        rest: String,
    },
    /// A number without a unit after it.
    #[error("`{number}` needs a unit: h, m or s (e.g. {number}s)")]
    MissingUnit {
        /// The number.
        number: String,
    },
    /// A unit other than h, m, s.
    #[error("unknown unit `{unit}`; the units are h, m and s")]
    Unit {
        /// The unit given.
        unit: char,
    },
    /// Units out of order or repeated (`30m1h`, `1h1h`).
    #[error("units must come in the order h, m, s, each at most once")]
    Order,
    /// A total of zero.
    #[error("the duration must be longer than zero")]
    Zero,
    /// A total beyond what a duration holds.
    #[error("the duration is too long")]
    TooLong,
}

/// Parses `2h`, `90m`, `45s`, `1h30m`, `1h30m15s`: whole numbers, each
/// followed by its unit, hours before minutes before seconds. Zero is refused:
/// a run with no time cannot make a step.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    const UNITS: [(char, u64); 3] = [('h', 3600), ('m', 60), ('s', 1)];
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut seconds: u64 = 0;
    // Units still allowed: those after the last one used.
    let mut allowed = &UNITS[..];
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationError::Number { rest: rest.into() });
        }
        let (number, after) = rest.split_at(digits);
        let mut chars = after.chars();
        let Some(unit) = chars.next() else {
            return Err(missing_unit(number, seconds, allowed));
        };
        let position = allowed.iter().position(|&(u, _)| u == unit);
        let Some(position) = position else {
            return Err(if UNITS.iter().any(|&(u, _)| u == unit) {
                DurationError::Order
            } else {
                DurationError::Unit { unit }
            });
        };
        let scale = allowed[position].1;
        allowed = &allowed[position + 1..];
        seconds = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .and_then(|s| seconds.checked_add(s))
            .ok_or(DurationError::TooLong)?;
        rest = chars.as_str();
    }
    if seconds == 0 {
        return Err(DurationError::Zero);
    }
    Ok(Duration::from_secs(seconds))
}

/// The error of a trailing `number` without its unit, after `seconds` and
/// with the units still `allowed`: the hint `(e.g. {number}s)` must be a
/// value that parses, so a zero total (`0`) is [`DurationError::Zero`]
/// whatever unit followed, and a number after the seconds (`30s5`), which no
/// unit can follow, is [`DurationError::Order`].
fn missing_unit(number: &str, seconds: u64, allowed: &[(char, u64)]) -> DurationError {
    if allowed.is_empty() {
        DurationError::Order
    } else if seconds == 0 && number.bytes().all(|b| b == b'0') {
        DurationError::Zero
    } else {
        DurationError::MissingUnit {
            number: number.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{DurationError, parse_duration};

    #[test]
    fn the_documented_forms() {
        for (text, seconds) in [
            ("2h", 7200),
            ("90m", 5400),
            ("45s", 45),
            ("1h30m", 5400),
            ("1h30m15s", 5415),
            ("1h15s", 3615),
            ("0h1s", 1),
            ("100s", 100),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_strings_say_what_is_wrong() {
        let number = |rest: &str| DurationError::Number { rest: rest.into() };
        for (text, error) in [
            ("", DurationError::Empty),
            ("h", number("h")),
            (
                "1h30",
                DurationError::MissingUnit {
                    number: "30".into(),
                },
            ),
            (
                "90",
                DurationError::MissingUnit {
                    number: "90".into(),
                },
            ),
            ("2x", DurationError::Unit { unit: 'x' }),
            ("2 h", DurationError::Unit { unit: ' ' }),
            ("1.5h", DurationError::Unit { unit: '.' }),
            ("-5m", number("-5m")),
            ("30m1h", DurationError::Order),
            ("1h1h", DurationError::Order),
            ("0s", DurationError::Zero),
            // Their hints would be `0s` and `30s5s`, which are refused too.
            ("0", DurationError::Zero),
            ("0h00", DurationError::Zero),
            ("30s5", DurationError::Order),
            ("0h0m", DurationError::Zero),
            ("99999999999999999999s", DurationError::TooLong),
            ("5124095576030432h", DurationError::TooLong),
        ] {
            assert_eq!(parse_duration(text), Err(error), "{text}");
        }
    }
}
