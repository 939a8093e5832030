use salesreport::csv::parse_line;
use salesreport::{summarize, ProductTotal, ReportError};

fn p(product: &str, quantity: u64, revenue_cents: u64) -> ProductTotal {
    ProductTotal { product: product.to_string(), quantity, revenue_cents }
}

#[test]
fn plain_fields() {
    assert_eq!(parse_line("Mouse pad,2,4.50"), vec!["Mouse pad", "2", "4.50"]);
    assert_eq!(parse_line("a,,c"), vec!["a", "", "c"]);
    assert_eq!(parse_line(""), vec![""]);
    assert_eq!(parse_line(",,"), vec!["", "", ""]);
}

#[test]
fn quoted_field_with_comma() {
    assert_eq!(parse_line("\"Cable, USB-C 2m\",3,9.99"), vec!["Cable, USB-C 2m", "3", "9.99"]);
    assert_eq!(parse_line("x,\"a,b,c\""), vec!["x", "a,b,c"]);
}

#[test]
fn doubled_quotes_are_one_quote() {
    assert_eq!(parse_line("\"12\"\" ruler\",1,1.25"), vec!["12\" ruler", "1", "1.25"]);
    assert_eq!(parse_line("\"\"\"quoted\"\"\",1"), vec!["\"quoted\"", "1"]);
    assert_eq!(parse_line("\"\",1"), vec!["", "1"]);
}

#[test]
fn quotes_inside_an_unquoted_field_are_literal() {
    assert_eq!(parse_line("5\" disk,1,2"), vec!["5\" disk", "1", "2"]);
}

#[test]
fn carriage_return_is_not_part_of_the_last_field() {
    assert_eq!(parse_line("a,b\r"), vec!["a", "b"]);
    assert_eq!(parse_line("\"a,b\",\"c\"\r"), vec!["a,b", "c"]);
}

#[test]
fn report_from_the_bug() {
    let text = "product,quantity,unit_price\n\"Cable, USB-C 2m\",3,9.99\nMouse pad,2,4.50\n\"12\"\" ruler\",1,1.25\n";
    let s = summarize(text).unwrap();
    assert_eq!(s.products, vec![p("12\" ruler", 1, 125), p("Cable, USB-C 2m", 3, 2997), p("Mouse pad", 2, 900)]);
    assert_eq!(s.revenue_cents, 4022);
}

#[test]
fn windows_line_endings_and_repeat_products() {
    let text = "product,quantity,unit_price\r\n\"Pen, blue\",10,0.5\r\n\"Pen, blue\",5,0.40\r\n\r\n";
    let s = summarize(text).unwrap();
    assert_eq!(s.products, vec![p("Pen, blue", 15, 700)]);
}

#[test]
fn errors_name_the_line() {
    let text = "product,quantity,unit_price\nA,1,1\nB,x,1\n";
    assert_eq!(summarize(text), Err(ReportError::BadQuantity { line: 3, value: "x".into() }));
    let text = "product,quantity,unit_price\n\"A,1,1\n";
    assert!(summarize(text).is_err());
    let text = "product,quantity,unit_price\nA,1,1,extra\n";
    assert_eq!(summarize(text), Err(ReportError::WrongFieldCount { line: 2, found: 4 }));
    assert!(matches!(summarize("name,qty\n"), Err(ReportError::BadHeader(_))));
}
