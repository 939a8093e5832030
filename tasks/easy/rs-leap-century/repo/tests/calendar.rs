use calendar::{day_of_year, days_in_month, days_in_year, is_leap_year};

#[test]
fn ordinary_years() {
    assert!(!is_leap_year(2023));
    assert!(!is_leap_year(2019));
    assert!(is_leap_year(2024));
    assert!(is_leap_year(1996));
}

#[test]
fn centuries_are_not_leap_years() {
    for year in [1700, 1800, 1900, 2100, 2200, 2300, 2500] {
        assert!(!is_leap_year(year), "{year}");
        assert_eq!(days_in_month(year, 2), Some(28), "{year}");
        assert_eq!(days_in_year(year), 365, "{year}");
    }
}

#[test]
fn every_fourth_century_is_a_leap_year() {
    for year in [1600, 2000, 2400] {
        assert!(is_leap_year(year), "{year}");
        assert_eq!(days_in_month(year, 2), Some(29), "{year}");
        assert_eq!(days_in_year(year), 366, "{year}");
    }
}

#[test]
fn leap_days_in_four_centuries() {
    let leap = (2001..=2400).filter(|y| is_leap_year(*y)).count();
    assert_eq!(leap, 97);
}

#[test]
fn day_of_year_across_february() {
    assert_eq!(day_of_year(2100, 3, 1), Some(60));
    assert_eq!(day_of_year(2000, 3, 1), Some(61));
    assert_eq!(day_of_year(2100, 2, 29), None);
    assert_eq!(day_of_year(2024, 12, 31), Some(366));
    assert_eq!(day_of_year(2023, 13, 1), None);
}
