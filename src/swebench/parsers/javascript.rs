//! `parse_log_jest` and `parse_log_jest_json` of `swebench==5.0.2`.

use std::sync::LazyLock;

use regex::Regex;

use super::python::re;
use super::{StatusMap, py_lines, py_strip};

// Python's `\s` includes \x1c-\x1f, Rust's does not.
static JEST_RESULT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"^[\s\x1c-\x1f]*(✓|✕|○)[\s\x1c-\x1f](.+?)(?:[\s\x1c-\x1f]\((\d+[\s\x1c-\x1f]*m?s)\))?$")
});
static JEST_JSON_RESULT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^\[(PASSED|FAILED)\][\s\x1c-\x1f](.+)$"));

/// Jest `--verbose` lines: `✓ name (5 ms)`, `✕ name`, `○ name`.
pub fn parse_log_jest(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    let Some(r) = JEST_RESULT.as_ref() else {
        return map;
    };
    for raw in py_lines(log) {
        let Some(c) = r.captures(py_strip(raw)) else {
            continue;
        };
        let status = match c.get(1).map(|m| m.as_str()) {
            Some("✓") => "PASSED",
            Some("✕") => "FAILED",
            Some("○") => "SKIPPED",
            _ => continue,
        };
        if let Some(name) = c.get(2) {
            map.insert(py_strip(name.as_str()).to_owned(), status.into());
        }
    }
    map
}

/// `[PASSED] name` / `[FAILED] name` lines from the jest `--json` jq transform.
pub fn parse_log_jest_json(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    let Some(r) = JEST_JSON_RESULT.as_ref() else {
        return map;
    };
    for raw in py_lines(log) {
        let Some(c) = r.captures(py_strip(raw)) else {
            continue;
        };
        if let (Some(s), Some(name)) = (c.get(1), c.get(2)) {
            map.insert(name.as_str().to_owned(), s.as_str().to_owned());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jest_verbose() {
        let m = parse_log_jest("  ✓ adds (5 ms)\n  ✕ breaks (12 ms)\n  ○ skipped one\n ✓ \n");
        assert_eq!(m["adds"], "PASSED");
        assert_eq!(m["breaks"], "FAILED");
        assert_eq!(m["skipped one"], "SKIPPED");
        assert_eq!(m.len(), 3);
        let m = parse_log_jest_json("[PASSED] a b\n[FAILED] c\n");
        assert_eq!(m["a b"], "PASSED");
        assert_eq!(m["c"], "FAILED");
    }
}
