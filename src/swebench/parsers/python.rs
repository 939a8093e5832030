//! The Python parsers of `swebench==5.0.2` (`log_parsers/python.py`), plus
//! the 2.0.x variants that graded pre-3.0 logs ([`legacy_parser`]).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::{ParserFn, STATUSES, StatusMap, py_lines, py_split, py_strip};

/// Compiles a built-in pattern; `None` only if the pattern were invalid,
/// which the unit tests rule out (parsers then return an empty map).
pub(crate) fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static SKIP_SUMMARY_COUNT: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^\[\d+\]$"));
static OPTION_PATTERN: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(.*?)\[(.*)\]"));
static ANSI_COLOR: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"\[(\d+)m"));
static SYMPY_FAILED: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(_*) (.*)\.py:(.*) (_*)"));
// Python's `\s` also matches \x1c-\x1f; Rust's does not, hence the explicit class.
static DJANGO_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"(?m)^(.*?)[\s\x1c-\x1f]\.\.\.[\s\x1c-\x1f]Testing against Django installed in ((?s:.*?)) silenced\)\.\nok$",
        r"(?m)^(.*?)[\s\x1c-\x1f]\.\.\.[\s\x1c-\x1f]Internal Server Error: /(.*)/\nok$",
        r"(?m)^(.*?)[\s\x1c-\x1f]\.\.\.[\s\x1c-\x1f]System check identified no issues \(0 silenced\)\nok$",
    ]
    .iter()
    .filter_map(|p| re(p))
    .collect()
});

/// Substring finders built once (a `str::contains` builds its searcher per call).
static DJANGO_VERSION: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new("--version is equivalent to version"));
static DOTS: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(" ... "));
static DOTS_SKIPPED: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(" ... skipped"));
static SPACED_PASSED: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(" PASSED "));

fn starts_with_status(line: &str) -> bool {
    STATUSES.iter().any(|s| line.starts_with(s))
}

fn ends_with_status(line: &str) -> bool {
    STATUSES.iter().any(|s| line.ends_with(s))
}

/// pytest's `SKIPPED [N] path:line: reason` summary, where `[N]` is not a test.
fn is_skip_summary(status: &str, name: &str) -> bool {
    status == "SKIPPED"
        && SKIP_SUMMARY_COUNT
            .as_ref()
            .is_some_and(|r| r.is_match(name))
}

fn pytest_like(
    log: &str,
    legacy: bool,
    rewrite: fn(&str) -> Cow<'_, str>,
    options: bool,
) -> StatusMap {
    let mut map = StatusMap::default();
    for raw in py_lines(log) {
        let mut line = rewrite(raw);
        if !starts_with_status(&line) {
            continue;
        }
        if line.starts_with("FAILED") && line.contains(" - ") {
            line = Cow::Owned(line.replace(" - ", " "));
        }
        let mut it = py_split(&line);
        let (Some(status), Some(name)) = (it.next(), it.next()) else {
            // A bare status word (official issues #270/#611): no test id.
            continue;
        };
        if !legacy && is_skip_summary(status, name) {
            continue;
        }
        let key = if options {
            option_name(name)
        } else {
            name.to_owned()
        };
        map.insert(key, status.to_owned());
    }
    map
}

/// `re.search(r"(.*?)\[(.*)\]", name)` by hand: the match starts at 0, the
/// lazy group ends at the first `[`, the greedy one at the last `]` (names
/// hold no newline, the one character `.` refuses).
fn option_groups(name: &str) -> Option<(&str, &str)> {
    if name.contains('\n') {
        let caps = OPTION_PATTERN.as_ref()?.captures(name)?;
        return Some((caps.get(1)?.as_str(), caps.get(2)?.as_str()));
    }
    let open = memchr::memchr(b'[', name.as_bytes())?;
    let close = memchr::memrchr(b']', name.as_bytes())?;
    (close > open).then(|| (&name[..open], &name[open + 1..close]))
}

fn option_name(name: &str) -> String {
    let Some((main, option)) = option_groups(name) else {
        return name.to_owned();
    };
    let mut option = option.to_owned();
    if option.starts_with('/') && !option.starts_with("//") && !option.contains('*') {
        option = format!("/{}", option.rsplit('/').next().unwrap_or(""));
    }
    format!("{main}[{option}]")
}

fn identity(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

fn matplotlib_rewrite(s: &str) -> Cow<'_, str> {
    if !s.contains("MouseButton.") {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.replace("MouseButton.LEFT", "1")
            .replace("MouseButton.RIGHT", "3"),
    )
}

/// `parse_log_pytest` (also astroid, flask, marshmallow, pvlib, pyvista, sqlfluff, xarray).
pub fn parse_log_pytest(log: &str) -> StatusMap {
    pytest_like(log, false, identity, false)
}

/// `parse_log_pytest_options` (also pydicom, requests, pylint).
pub fn parse_log_pytest_options(log: &str) -> StatusMap {
    pytest_like(log, false, identity, true)
}

/// `parse_log_matplotlib`.
pub fn parse_log_matplotlib(log: &str) -> StatusMap {
    pytest_like(log, false, matplotlib_rewrite, false)
}

/// `parse_log_django`.
pub fn parse_log_django(log: &str) -> StatusMap {
    const PASSED: &str = "PASSED";
    let mut map = StatusMap::default();
    let mut prev_test: Option<String> = None;
    for raw in py_lines(log) {
        let mut line: &str = py_strip(raw);
        if DJANGO_VERSION.find(line.as_bytes()).is_some() {
            map.insert("--version is equivalent to version".into(), PASSED.into());
        }
        // Every " ... " test line has a '.'; lines without one skip the searches.
        let has_dot = memchr::memchr(b'.', line.as_bytes()).is_some();
        if has_dot && let Some(p) = DOTS.find(line.as_bytes()) {
            prev_test = Some(line[..p].to_owned());
        }
        for suffix in [" ... ok", " ... OK", " ...  OK"] {
            if line.ends_with(suffix) {
                if py_strip(line)
                    .starts_with("Applying sites.0002_alter_domain_unique...test_no_migrations")
                {
                    line = py_strip(line.split_once("...").map_or(line, |(_, t)| t));
                }
                // line.rsplit(suffix, 1)[0]: the last occurrence is the suffix itself.
                let test = line.strip_suffix(suffix).unwrap_or(line);
                map.insert(test.to_owned(), PASSED.into());
                break;
            }
        }
        if has_dot && let Some(p) = DOTS_SKIPPED.find(line.as_bytes()) {
            map.insert(line[..p].to_owned(), "SKIPPED".into());
        }
        if line.ends_with(" ... FAIL") {
            let test = line.split_once(" ... FAIL").map_or(line, |(h, _)| h);
            map.insert(test.to_owned(), "FAILED".into());
        }
        if line.starts_with("FAIL:") {
            // Official code indexes split()[1]; a bare "FAIL:" has no test id.
            if let Some(test) = py_split(line).nth(1) {
                map.insert(py_strip(test).to_owned(), "FAILED".into());
            }
        }
        if line.ends_with(" ... ERROR") {
            let test = line.split_once(" ... ERROR").map_or(line, |(h, _)| h);
            map.insert(test.to_owned(), "ERROR".into());
        }
        if line.starts_with("ERROR:")
            && let Some(test) = py_split(line).nth(1)
        {
            map.insert(py_strip(test).to_owned(), "ERROR".into());
        }
        if line.trim_start_matches(super::py_isspace).starts_with("ok")
            && let Some(prev) = &prev_test
        {
            map.insert(prev.clone(), PASSED.into());
        }
    }
    // Each pattern needs its literal; skip the whole-log regex pass without it.
    const LITERALS: [&str; 3] = [
        " silenced).\nok",
        "Internal Server Error: /",
        "System check identified no issues (0 silenced)\nok",
    ];
    for (i, literal) in LITERALS.iter().enumerate() {
        // Checked before the patterns are touched: most logs never pay
        // for compiling them.
        if memchr::memmem::find(log.as_bytes(), literal.as_bytes()).is_none() {
            continue;
        }
        let Some(pattern) = DJANGO_PATTERNS.get(i) else {
            continue;
        };
        for caps in pattern.captures_iter(log) {
            if let Some(name) = caps.get(1) {
                map.insert(name.as_str().to_owned(), PASSED.into());
            }
        }
    }
    map
}

/// Removes `[<digits>m` colour codes then the control characters 1..=31,
/// as `parse_log_pytest_v2` does per line (`re.sub(r"\[(\d+)m", "", line)`
/// then `translate`). `None` when a colour code's digit run meets a
/// non-ASCII character (Python's `\d` is Unicode): the caller then takes
/// the regex path so the result stays exact.
///
/// With `keep_newlines`, `\n` is kept and the whole log is cleaned in one
/// pass: no colour code spans a newline and the filter is per character, so
/// cleaning then splitting equals splitting then cleaning each line.
fn v2_clean_fast(text: &str, keep_newlines: bool) -> Option<Cow<'_, str>> {
    let b = text.as_bytes();
    let special = |c: u8| (c == b'[' || (1..=31).contains(&c)) && !(keep_newlines && c == b'\n');
    // Chunked scan: the branch-free fold over 32 bytes vectorises.
    let next_special = |from: usize| {
        let mut i = from;
        while i + 32 <= b.len() && !b[i..i + 32].iter().fold(false, |acc, &c| acc | special(c)) {
            i += 32;
        }
        b[i..]
            .iter()
            .position(|&c| special(c))
            .map_or(b.len(), |p| i + p)
    };
    let first = next_special(0);
    if first == b.len() {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    let mut i = first;
    while i < b.len() {
        let c = b[i];
        if c == b'[' {
            let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
            let after = i + 1 + digits;
            match b.get(after) {
                Some(b'm') if digits > 0 => {
                    i = after + 1;
                    continue;
                }
                Some(&n) if n >= 0x80 => return None,
                _ => {}
            }
            out.push('[');
            i += 1;
        } else if special(c) {
            i += 1;
        } else {
            let next = next_special(i);
            out.push_str(&text[i..next]);
            i = next;
        }
    }
    Some(Cow::Owned(out))
}

/// One line, cleaned as `parse_log_pytest_v2` does.
#[cfg(test)]
fn v2_clean(line: &str) -> Cow<'_, str> {
    v2_clean_fast(line, false).unwrap_or_else(|| v2_clean_regex(line))
}

/// The whole log cleaned line by line, newlines kept.
fn v2_clean_log(log: &str) -> Cow<'_, str> {
    match v2_clean_fast(log, true) {
        Some(c) => c,
        None => Cow::Owned(
            py_lines(log)
                .map(v2_clean_regex)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

/// The literal translation of `v2_clean` (regex, then a character filter).
fn v2_clean_regex(line: &str) -> Cow<'_, str> {
    let line = match ANSI_COLOR.as_ref() {
        Some(r) => r.replace_all(line, ""),
        None => Cow::Borrowed(line),
    };
    Cow::Owned(
        line.chars()
            .filter(|&c| !('\x01'..='\x1f').contains(&c))
            .collect(),
    )
}

/// `parse_log_pytest_v2` (also astropy, scikit-learn, sphinx).
pub fn parse_log_pytest_v2(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    let cleaned = v2_clean_log(log);
    for clean in py_lines(&cleaned) {
        let mut line = Cow::Borrowed(clean);
        if starts_with_status(&line) {
            if line.starts_with("FAILED")
                && let Some((head, _)) = line.split_once(" - ")
            {
                line = Cow::Owned(head.to_owned());
            }
            let parts: Vec<&str> = py_split(&line).collect();
            if parts.len() >= 2 && !is_skip_summary(parts[0], parts[1]) {
                map.insert(parts[1..].join(" "), parts[0].to_owned());
            }
        } else if ends_with_status(&line) {
            let parts: Vec<&str> = py_split(&line).collect();
            if parts.len() >= 2 {
                map.insert(
                    parts[..parts.len() - 1].join(" "),
                    parts[parts.len() - 1].to_owned(),
                );
            }
        }
    }
    map
}

/// `parse_log_pytest_v2` as swebench 2.0.x had it (graded pre-3.0 logs).
pub fn legacy_parse_log_pytest_v2(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    let cleaned = v2_clean_log(log);
    for clean in py_lines(&cleaned) {
        let mut line = Cow::Borrowed(clean);
        if starts_with_status(&line) {
            if line.starts_with("FAILED") {
                line = Cow::Owned(line.replace(" - ", " "));
            }
            let parts: Vec<&str> = py_split(&line).collect();
            if parts.len() >= 2 {
                map.insert(parts[1].to_owned(), parts[0].to_owned());
            }
        } else if ends_with_status(&line) {
            let parts: Vec<&str> = py_split(&line).collect();
            if parts.len() >= 2 {
                map.insert(parts[0].to_owned(), parts[1].to_owned());
            }
        }
    }
    map
}

/// `parse_log_pytest` as swebench 2.0.x had it (no skip-summary rule).
pub fn legacy_parse_log_pytest(log: &str) -> StatusMap {
    pytest_like(log, true, identity, false)
}

/// `parse_log_pytest_options` as swebench 2.0.x had it.
pub fn legacy_parse_log_pytest_options(log: &str) -> StatusMap {
    pytest_like(log, true, identity, true)
}

/// `parse_log_matplotlib` as swebench 2.0.x had it.
pub fn legacy_parse_log_matplotlib(log: &str) -> StatusMap {
    pytest_like(log, true, matplotlib_rewrite, false)
}

/// `parse_log_seaborn`.
pub fn parse_log_seaborn(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    for line in py_lines(log) {
        // Python indexes parts[1]; lines with fewer than two words are skipped.
        let mut parts = py_split(line);
        let (Some(p0), Some(p1)) = (parts.next(), parts.next()) else {
            continue;
        };
        if line.starts_with("FAILED") {
            map.insert(p1.to_owned(), "FAILED".into());
        } else if SPACED_PASSED.find(line.as_bytes()).is_some() {
            if p1 == "PASSED" {
                map.insert(p0.to_owned(), "PASSED".into());
            }
        } else if line.starts_with("PASSED") {
            map.insert(p1.to_owned(), "PASSED".into());
        }
    }
    map
}

/// `parse_log_sympy`.
pub fn parse_log_sympy(log: &str) -> StatusMap {
    let mut map = StatusMap::default();
    if let Some(r) = SYMPY_FAILED.as_ref() {
        for caps in r.captures_iter(log) {
            let file = caps.get(2).map_or("", |m| m.as_str());
            let rest = caps.get(3).map_or("", |m| m.as_str());
            map.insert(format!("{file}.py:{rest}"), "FAILED".into());
        }
    }
    for raw in py_lines(log) {
        let line = py_strip(raw);
        if !line.starts_with("test_") {
            continue;
        }
        let first = py_split(line).next().unwrap_or("");
        if line.ends_with(" E") {
            map.insert(first.to_owned(), "ERROR".into());
        }
        if line.ends_with(" F") {
            map.insert(first.to_owned(), "FAILED".into());
        }
        if line.ends_with(" ok") {
            map.insert(first.to_owned(), "PASSED".into());
        }
    }
    map
}

/// The parser swebench 2.0.x used under a registry name, for pre-3.0 logs.
pub fn legacy_parser(name: &str) -> Option<ParserFn> {
    Some(match name {
        "parse_log_pytest"
        | "parse_log_astroid"
        | "parse_log_flask"
        | "parse_log_marshmallow"
        | "parse_log_pvlib"
        | "parse_log_pyvista"
        | "parse_log_sqlfluff"
        | "parse_log_xarray" => legacy_parse_log_pytest,
        "parse_log_pytest_options"
        | "parse_log_pydicom"
        | "parse_log_requests"
        | "parse_log_pylint" => legacy_parse_log_pytest_options,
        "parse_log_matplotlib" => legacy_parse_log_matplotlib,
        "parse_log_pytest_v2" | "parse_log_astropy" | "parse_log_scikit" | "parse_log_sphinx" => {
            legacy_parse_log_pytest_v2
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile() {
        assert!(SKIP_SUMMARY_COUNT.is_some());
        assert!(OPTION_PATTERN.is_some());
        assert!(ANSI_COLOR.is_some());
        assert!(SYMPY_FAILED.is_some());
        assert_eq!(DJANGO_PATTERNS.len(), 3);
    }

    #[test]
    fn pytest_last_status_wins_and_order_is_first_seen() {
        let m = parse_log_pytest(
            "PASSED a\nFAILED b - boom\nFAILED a\nSKIPPED [2] x.py:3: why\nPASSED\nERROR\n",
        );
        let v: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(v, vec![("a", "FAILED"), ("b", "FAILED")]);
    }

    #[test]
    fn pytest_options_shortens_paths() {
        let m = parse_log_pytest_options("PASSED t.py::f[/a/b/c.txt]\nPASSED t.py::g[//x/y]\n");
        assert!(m.contains_key("t.py::f[/c.txt]"));
        assert!(m.contains_key("t.py::g[//x/y]"));
    }

    #[test]
    fn v2_handles_colour_and_suffix_status() {
        let m = parse_log_pytest_v2(
            "\x1b[32mPASSED\x1b[0m a.py::t[x y]\nFAILED a.py::u - AssertionError: - no\nb.py::v PASSED\n",
        );
        assert_eq!(m.get("a.py::t[x y]").map(String::as_str), Some("PASSED"));
        assert_eq!(m.get("a.py::u").map(String::as_str), Some("FAILED"));
        assert_eq!(m.get("b.py::v").map(String::as_str), Some("PASSED"));
    }

    #[test]
    fn v2_clean_edge_cases() {
        for line in [
            "",
            "plain",
            "[",
            "[m",
            "[12m",
            "[[12m]",
            "a[1\x01m",
            "\x1b[0m\x1b[32mPASSED\x1b[0m t[0]",
            "[\u{0661}m arabic digit",
            "[1\u{0661}m mixed digits",
            "[1é",
            "tab\there",
            "[ 10%]",
        ] {
            assert_eq!(v2_clean(line), v2_clean_regex(line), "{line:?}");
        }
    }

    proptest::proptest! {
        /// The hand-written option split equals the official regex.
        #[test]
        fn option_groups_match_the_regex(name in "[a\\[\\]/.\\n]{0,16}") {
            let want = OPTION_PATTERN.as_ref().and_then(|r| r.captures(&name)).map(|c| {
                (c.get(1).map_or("", |m| m.as_str()), c.get(2).map_or("", |m| m.as_str()))
            });
            proptest::prop_assert_eq!(option_groups(&name), want);
        }

        /// The one-pass cleaner equals the regex-then-filter translation.
        #[test]
        fn v2_clean_matches_the_regex_translation(
            line in "[\\[\\]m0-9a\u{0661}\u{00e9}\x01\x1b\t ]{0,24}"
        ) {
            proptest::prop_assert_eq!(v2_clean(&line), v2_clean_regex(&line));
        }

        /// Cleaning the whole log equals cleaning each line.
        #[test]
        fn v2_whole_log_equals_per_line(
            log in "[\\[\\]m0-9a\u{0661}\x01\x1b\r\n ]{0,80}"
        ) {
            let per_line: Vec<String> =
                log.split('\n').map(|l| v2_clean_regex(l).into_owned()).collect();
            proptest::prop_assert_eq!(v2_clean_log(&log).into_owned(), per_line.join("\n"));
        }
    }

    #[test]
    fn django_variants() {
        let log = "test_a (m.T) ... ok\ntest_b (m.T) ... FAIL\nFAIL:\nERROR: test_c (m.T)\ntest_d (m.T) ... \nok\ntest_e (m.T) ... skipped 'x'\n";
        let m = parse_log_django(log);
        assert_eq!(m["test_a (m.T)"], "PASSED");
        // As in Python: the stripped "test_d (m.T) ..." has no " ... ", so the
        // bare "ok" credits the previous " ... " line, test_b.
        assert_eq!(m["test_b (m.T)"], "PASSED");
        assert_eq!(m["test_c"], "ERROR");
        assert_eq!(m["test_e (m.T)"], "SKIPPED");
        let m = parse_log_django("test_d (m.T) ... warning\nok\n");
        assert_eq!(m["test_d (m.T)"], "PASSED");
    }

    #[test]
    fn sympy_and_seaborn() {
        let m = parse_log_sympy("test_x ok\ntest_y F\n___ sympy/a/test_b.py:test_z ___\n");
        assert_eq!(m["test_x"], "PASSED");
        assert_eq!(m["test_y"], "FAILED");
        assert_eq!(m["sympy/a/test_b.py:test_z"], "FAILED");
        let m = parse_log_seaborn("t.py::a PASSED [ 10%]\nFAILED t.py::b - x\nFAILED\n");
        assert_eq!(m["t.py::a"], "PASSED");
        assert_eq!(m["t.py::b"], "FAILED");
    }
}
