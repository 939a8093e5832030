use durations::{format_duration, parse_duration, DurationError};

const S: u64 = 1_000;
const M: u64 = 60 * S;
const H: u64 = 60 * M;
const D: u64 = 24 * H;
const W: u64 = 7 * D;

fn p(s: &str) -> u64 {
    match parse_duration(s) {
        Ok(v) => v,
        Err(e) => panic!("parse_duration({s:?}) = {e:?}"),
    }
}

#[test]
fn single_units() {
    assert_eq!(p("250ms"), 250);
    assert_eq!(p("45s"), 45 * S);
    assert_eq!(p("30m"), 30 * M);
    assert_eq!(p("2h"), 2 * H);
    assert_eq!(p("3d"), 3 * D);
    assert_eq!(p("1w"), W);
    assert_eq!(p("0s"), 0);
}

#[test]
fn combinations_and_spaces() {
    assert_eq!(p("1h30m"), H + 30 * M);
    assert_eq!(p("1h 30m 15s"), H + 30 * M + 15 * S);
    assert_eq!(p("  2d12h  "), 2 * D + 12 * H);
    assert_eq!(p("1w1d1h1m1s1ms"), W + D + H + M + S + 1);
    assert_eq!(p("1m500ms"), M + 500);
    assert_eq!(p("90m"), 90 * M);
}

#[test]
fn bare_zero() {
    assert_eq!(p("0"), 0);
    assert_eq!(p(" 0 "), 0);
}

#[test]
fn fractions_are_exact() {
    assert_eq!(p("1.5h"), 90 * M);
    assert_eq!(p("4.35s"), 4350);
    assert_eq!(p("1.005s"), 1005);
    assert_eq!(p("0.001s"), 1);
    assert_eq!(p("2.25m"), 135 * S);
    assert_eq!(p("0.1s"), 100);
    assert_eq!(p("1.000s"), S);
    assert_eq!(p("0.5d"), 12 * H);
    assert_eq!(p("1.2345m"), 74_070);
    assert_eq!(p("16.7s"), 16_700);
}

#[test]
fn too_precise() {
    assert!(matches!(parse_duration("1.5ms"), Err(DurationError::TooPrecise(_))));
    assert!(matches!(parse_duration("0.0001s"), Err(DurationError::TooPrecise(_))));
    assert!(matches!(parse_duration("1.23456789m"), Err(DurationError::TooPrecise(_))));
}

#[test]
fn order_and_repetition() {
    assert!(matches!(parse_duration("30m1h"), Err(DurationError::OutOfOrder(_))));
    assert!(matches!(parse_duration("1m1m"), Err(DurationError::OutOfOrder(_))));
    assert!(matches!(parse_duration("1s1m"), Err(DurationError::OutOfOrder(_))));
    assert!(matches!(parse_duration("1ms1s"), Err(DurationError::OutOfOrder(_))));
    assert!(matches!(parse_duration("1m 2m"), Err(DurationError::OutOfOrder(_))));
}

#[test]
fn malformed() {
    assert_eq!(parse_duration(""), Err(DurationError::Empty));
    assert_eq!(parse_duration("   "), Err(DurationError::Empty));
    for bad in ["90", "h", "1h30", "1.h", ".5h", "1..5h", "1.2.3s", "-5m", "+5m", "1 h", "5m!", "1h,30m", "00"] {
        assert!(
            matches!(parse_duration(bad), Err(DurationError::Malformed(_))),
            "{bad:?} -> {:?}",
            parse_duration(bad)
        );
    }
    for bad in ["5y", "3H", "1sec", "2mins", "4us"] {
        assert!(matches!(parse_duration(bad), Err(DurationError::UnknownUnit(_))), "{bad:?}");
    }
}

#[test]
fn overflow() {
    assert_eq!(parse_duration("18446744073709551615ms"), Ok(u64::MAX));
    assert_eq!(parse_duration("18446744073709551616ms"), Err(DurationError::Overflow));
    assert_eq!(parse_duration("99999999999999999w"), Err(DurationError::Overflow));
    assert_eq!(parse_duration("30500568905w"), Err(DurationError::Overflow));
    assert_eq!(parse_duration("99999999999999999999999999999ms"), Err(DurationError::Overflow));
}

#[test]
fn formatting() {
    assert_eq!(format_duration(0), "0s");
    assert_eq!(format_duration(1), "1ms");
    assert_eq!(format_duration(90 * M), "1h30m");
    assert_eq!(format_duration(W + D + H + M + S + 1), "1w1d1h1m1s1ms");
    assert_eq!(format_duration(2 * W + 5 * S), "2w5s");
    assert_eq!(format_duration(u64::MAX), "30500568904w6d14h25m51s615ms");
}

#[test]
fn round_trip() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for v in [x, x % (400 * D), x % 10_000] {
            assert_eq!(parse_duration(&format_duration(v)), Ok(v), "{v}");
        }
    }
}
