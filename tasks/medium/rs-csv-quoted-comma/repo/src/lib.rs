//! Monthly sales report from the shop's CSV export.

pub mod csv;
pub mod report;

pub use report::{summarize, ProductTotal, ReportError, Summary};
