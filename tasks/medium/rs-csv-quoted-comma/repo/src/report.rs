//! Aggregation of the export into per-product revenue.

use crate::csv::parse_line;
use std::collections::BTreeMap;

/// Revenue of one product over the month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductTotal {
    pub product: String,
    pub quantity: u64,
    pub revenue_cents: u64,
}

/// The whole report, products sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub products: Vec<ProductTotal>,
    pub revenue_cents: u64,
}

/// Why an export could not be summarised. `line` is 1-based, header = 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    BadHeader(String),
    WrongFieldCount { line: usize, found: usize },
    BadQuantity { line: usize, value: String },
    BadPrice { line: usize, value: String },
}

const HEADER: [&str; 3] = ["product", "quantity", "unit_price"];

/// Parses a price such as `9.99`, `4.5` or `12` into cents.
fn price_cents(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cents = format!("{frac:0<2}").parse::<u64>().ok()?;
    whole.parse::<u64>().ok()?.checked_mul(100)?.checked_add(cents)
}

/// Sums quantity and revenue per product.
pub fn summarize(text: &str) -> Result<Summary, ReportError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| parse_line(l)).unwrap_or_default();
    if header != HEADER {
        return Err(ReportError::BadHeader(header.join(",")));
    }
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (idx, line) in lines {
        let n = idx + 1;
        let fields = parse_line(line);
        if fields.len() != 3 {
            return Err(ReportError::WrongFieldCount { line: n, found: fields.len() });
        }
        let quantity: u64 = fields[1].trim().parse().map_err(|_| ReportError::BadQuantity {
            line: n,
            value: fields[1].clone(),
        })?;
        let price = price_cents(fields[2].trim()).ok_or_else(|| ReportError::BadPrice {
            line: n,
            value: fields[2].clone(),
        })?;
        let entry = totals.entry(fields[0].clone()).or_insert((0, 0));
        entry.0 += quantity;
        entry.1 += quantity * price;
    }
    let products: Vec<ProductTotal> = totals
        .into_iter()
        .map(|(product, (quantity, revenue_cents))| ProductTotal { product, quantity, revenue_cents })
        .collect();
    let revenue_cents = products.iter().map(|p| p.revenue_cents).sum();
    Ok(Summary { products, revenue_cents })
}
