//! `parse_log_cargo` of `swebench==5.0.2` (`cargo test` output).

use std::sync::LazyLock;

use regex::Regex;

use super::python::re;
use super::{StatusMap, py_lines, py_strip};

// Python's `\s`/`\S` include \x1c-\x1f, Rust's do not.
static CARGO_RESULT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"^test[\s\x1c-\x1f]+([^\s\x1c-\x1f]+)[\s\x1c-\x1f]+\.\.\.[\s\x1c-\x1f]+(\w+)$")
});

/// `test name ... ok|FAILED` lines; `ignored` and other outcomes are not recorded.
pub fn parse_log_cargo(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    let Some(r) = CARGO_RESULT.as_ref() else {
        return map;
    };
    for raw in py_lines(log) {
        let Some(c) = r.captures(py_strip(raw)) else {
            continue;
        };
        let (Some(name), Some(outcome)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let status = match outcome.as_str() {
            "ok" => "PASSED",
            "FAILED" => "FAILED",
            _ => continue,
        };
        map.insert(name.as_str().to_owned(), status.into());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lines() {
        let m = parse_log_cargo(
            "running 3 tests\ntest a::b ... ok\ntest c ... FAILED\ntest d ... ignored\ntest e ... ok (1.2s)\ntest ... ok\n",
        );
        assert_eq!(m["a::b"], "PASSED");
        assert_eq!(m["c"], "FAILED");
        assert_eq!(m.len(), 2);
    }
}
