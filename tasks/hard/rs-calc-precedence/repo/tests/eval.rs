use calc::{eval, CalcError};

fn ok(expr: &str, want: f64) {
    match eval(expr) {
        Ok(got) => assert!((got - want).abs() < 1e-9, "{expr} = {got}, want {want}"),
        Err(e) => panic!("{expr}: {e:?}, want {want}"),
    }
}

#[test]
fn basics() {
    ok("1 + 2 * 3", 7.0);
    ok("(1 + 2) * 3", 9.0);
    ok("10 / 4", 2.5);
    ok("2.5 * 4", 10.0);
    ok(" 42 ", 42.0);
    ok("((7))", 7.0);
}

#[test]
fn subtraction_and_division_are_left_associative() {
    ok("8 - 3 - 2", 3.0);
    ok("10 - 4 - 3", 3.0);
    ok("1 - 2 + 3", 2.0);
    ok("100 / 10 / 5", 2.0);
    ok("2 * 3 / 4 * 5", 7.5);
    ok("1 - 1 - 1 - 1 - 1", -3.0);
}

#[test]
fn power_is_right_associative() {
    ok("2 ^ 3 ^ 2", 512.0);
    ok("2 ^ 2 ^ 3", 256.0);
    ok("(2 ^ 3) ^ 2", 64.0);
    ok("4 ^ 0.5", 2.0);
}

#[test]
fn power_binds_tighter_than_unary_minus() {
    ok("-2 ^ 2", -4.0);
    ok("(-2) ^ 2", 4.0);
    ok("-2 ^ -2", -0.25);
    ok("0 - 3 ^ 2", -9.0);
}

#[test]
fn unary_minus_in_exponents_and_operands() {
    ok("2 ^ -1", 0.5);
    ok("2 ^ -2 ^ 2", 0.0625);
    ok("2 * -3", -6.0);
    ok("--2", 2.0);
    ok("- - -2", -2.0);
    ok("-(1 + 2) * 3", -9.0);
    ok("3 - -3", 6.0);
    ok("2 ^ 3 * 2", 16.0);
    ok("-3 * 2 ^ 2", -12.0);
}

#[test]
fn longer_formulas() {
    ok("2 + 3 * 4 ^ 2 / 8 - 1", 7.0);
    ok("-(2 ^ 2) ^ 3 + 100 / (5 - 3) ^ 2", -39.0);
    ok("1 + 2 ^ 3 ^ 0 * 4", 9.0);
}

#[test]
fn errors() {
    assert_eq!(eval(""), Err(CalcError::Empty));
    assert_eq!(eval("   "), Err(CalcError::Empty));
    assert_eq!(eval("2 +"), Err(CalcError::UnexpectedEnd));
    assert_eq!(eval("(1 + 2"), Err(CalcError::UnexpectedEnd));
    assert_eq!(eval("1 + 2)"), Err(CalcError::UnexpectedToken { pos: 5 }));
    assert_eq!(eval("2 3"), Err(CalcError::UnexpectedToken { pos: 2 }));
    assert_eq!(eval("2 * * 3"), Err(CalcError::UnexpectedToken { pos: 4 }));
    assert_eq!(eval("2 ^"), Err(CalcError::UnexpectedEnd));
    assert_eq!(eval("-"), Err(CalcError::UnexpectedEnd));
    assert_eq!(eval("2 $ 3"), Err(CalcError::UnexpectedChar { pos: 2, ch: '$' }));
    assert_eq!(eval("1 / (2 - 2)"), Err(CalcError::DivisionByZero { pos: 2 }));
    assert!(matches!(eval("1.2.3"), Err(CalcError::BadNumber { pos: 0, .. })));
}
