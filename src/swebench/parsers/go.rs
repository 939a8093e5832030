//! `parse_log_gotest` of `swebench==5.0.2` (`go test -v` output).

use std::sync::LazyLock;

use regex::Regex;

use super::python::re;
use super::{StatusMap, py_lines, py_strip};

static GO_RESULT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^--- (PASS|FAIL|SKIP): (.+) \((.+)\)$"));

/// `--- PASS|FAIL|SKIP: name (duration)` lines, stripped, last status wins.
pub fn parse_log_gotest(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    let Some(r) = GO_RESULT.as_ref() else {
        return map;
    };
    for raw in py_lines(log) {
        let Some(c) = r.captures(py_strip(raw)) else {
            continue;
        };
        let status = match c.get(1).map(|m| m.as_str()) {
            Some("PASS") => "PASSED",
            Some("FAIL") => "FAILED",
            Some("SKIP") => "SKIPPED",
            _ => continue,
        };
        if let Some(name) = c.get(2) {
            map.insert(name.as_str().to_owned(), status.into());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_subtests_and_status() {
        let m = parse_log_gotest(
            "=== RUN TestA\n--- PASS: TestA (0.00s)\n    --- FAIL: TestA/sub_case (0.01s)\n--- SKIP: TestB (0.00s)\n--- PASS: TestA (0.00s)\n--- PASS: \n",
        );
        assert_eq!(m["TestA"], "PASSED");
        assert_eq!(m["TestA/sub_case"], "FAILED");
        assert_eq!(m["TestB"], "SKIPPED");
        assert_eq!(m.len(), 3);
    }
}
