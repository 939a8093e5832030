//! Gregorian calendar arithmetic used by the billing schedules.

/// True when `year` has a 29th of February.
pub fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 || year % 100 != 0 && year % 400 == 0
}

/// Number of days in `month` (1-12) of `year`; `None` for an invalid month.
pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if is_leap_year(year) => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Number of days in `year`.
pub fn days_in_year(year: i32) -> u32 {
    if is_leap_year(year) {
        366
    } else {
        365
    }
}

/// 1-based ordinal day of the year; `None` when the date does not exist.
pub fn day_of_year(year: i32, month: u32, day: u32) -> Option<u32> {
    let len = days_in_month(year, month)?;
    if day == 0 || day > len {
        return None;
    }
    let before: u32 = (1..month).map(|m| days_in_month(year, m).unwrap_or(0)).sum();
    Some(before + day)
}
