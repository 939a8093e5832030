//! Minimal CSV reading for the shop export.

/// Splits one CSV record into its fields.
pub fn parse_line(line: &str) -> Vec<String> {
    line.split(',')
        .map(|f| f.trim_matches('"').to_string())
        .collect()
}
