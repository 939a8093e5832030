//! Human-friendly durations for the scheduler's config (`timeout = "1h30m"`).
//!
//! Syntax accepted by [`parse_duration`]:
//! - one or more components `<number><unit>`, optionally separated by
//!   spaces, e.g. `1h30m`, `1h 30m 15s`, `250ms`;
//! - units, largest first: `w` (7 days), `d`, `h`, `m` (minutes), `s`,
//!   `ms`; each unit at most once and in that order (`30m1h` and `1m1m`
//!   are errors, since they are usually typos);
//! - a number is digits with an optional fraction (`1.5h`, `0.25s`); both
//!   sides of the `.` need digits; the value must come to a whole number of
//!   milliseconds (`1.5ms` is an error), computed exactly;
//! - the single word `0` (no unit) means zero;
//! - surrounding whitespace is ignored; units are case-sensitive.
//!
//! The result is in milliseconds; anything above `u64::MAX` is an error.

/// Why a duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing but whitespace.
    Empty,
    /// A number without a unit, or a unit without a number.
    Malformed(String),
    /// Unit not one of w, d, h, m, s, ms.
    UnknownUnit(String),
    /// A unit repeated or smaller units before larger ones.
    OutOfOrder(String),
    /// The value is not a whole number of milliseconds.
    TooPrecise(String),
    /// More than u64::MAX milliseconds.
    Overflow,
}

const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration into milliseconds (see the module docs).
pub fn parse_duration(input: &str) -> Result<u64, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: f64 = 0.0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[start..i];
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        if number.is_empty() || unit.is_empty() {
            return Err(DurationError::Malformed(s.to_string()));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| DurationError::Malformed(number.to_string()))?;
        let factor = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| DurationError::UnknownUnit(unit.to_string()))?;
        total += value * factor as f64;
    }
    Ok(total as u64)
}

/// Formats milliseconds with the largest units first, e.g. `1h30m`,
/// `1d2h3m4s5ms`; zero components are left out.
pub fn format_duration(ms: u64) -> String {
    let mut rest = ms;
    let mut out = String::new();
    for (name, factor) in UNITS {
        let n = rest / factor;
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
            rest -= n * factor;
        }
    }
    out
}
