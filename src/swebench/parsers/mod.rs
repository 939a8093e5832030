//! Test-log parsers, ported from `swebench==5.0.2` `harness/log_parsers`.
//!
//! Each parser turns a log into a status map: test id to status word, in
//! first-seen order with the last status winning (Python dict semantics,
//! which the prefix matching of truncated ids depends on). Python's string
//! semantics are kept where they differ from Rust's: [`py_split`] splits on
//! `str.isspace()` characters (which include `\x1c`..`\x1f`), and
//! `split('\n')` keeps `\r`. No parser panics on any input.

pub mod go;
pub mod javascript;
pub mod python;
pub mod rust;

use indexmap::IndexMap;

use super::instance::Instance;

/// Test id to status word (`PASSED`, `FAILED`, ...), insertion-ordered.
pub type StatusMap = IndexMap<String, String, rustc_hash::FxBuildHasher>;

/// A parser: log text in, status map out.
pub type ParserFn = fn(&str) -> StatusMap;

/// The status words of `TestStatus` in the official declaration order.
pub const STATUSES: [&str; 5] = ["FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL"];

/// Python's `str.isspace()` for one character.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `s.split('\n')` (Python's `split("\n")`: `\r` kept, a trailing empty
/// piece included), found with the SIMD `memchr` scanner; line splitting is
/// most of a parser's time on large logs.
pub fn py_lines(s: &str) -> impl Iterator<Item = &str> {
    let mut newlines = memchr::memchr_iter(b'\n', s.as_bytes());
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        match newlines.next() {
            Some(p) => {
                start = Some(p + 1);
                Some(&s[from..p])
            }
            None => {
                start = None;
                Some(&s[from..])
            }
        }
    })
}

/// Python's `str.split()` with no arguments.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_isspace).filter(|t| !t.is_empty())
}

/// Python's `str.strip()` with no arguments.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// The official registry names this build implements, with their parsers.
pub const REGISTRY: &[(&str, ParserFn)] = &[
    ("parse_log_pytest", python::parse_log_pytest),
    ("parse_log_pytest_options", python::parse_log_pytest_options),
    ("parse_log_django", python::parse_log_django),
    ("parse_log_pytest_v2", python::parse_log_pytest_v2),
    ("parse_log_seaborn", python::parse_log_seaborn),
    ("parse_log_sympy", python::parse_log_sympy),
    ("parse_log_matplotlib", python::parse_log_matplotlib),
    ("parse_log_astroid", python::parse_log_pytest),
    ("parse_log_flask", python::parse_log_pytest),
    ("parse_log_marshmallow", python::parse_log_pytest),
    ("parse_log_pvlib", python::parse_log_pytest),
    ("parse_log_pyvista", python::parse_log_pytest),
    ("parse_log_sqlfluff", python::parse_log_pytest),
    ("parse_log_xarray", python::parse_log_pytest),
    ("parse_log_pydicom", python::parse_log_pytest_options),
    ("parse_log_requests", python::parse_log_pytest_options),
    ("parse_log_pylint", python::parse_log_pytest_options),
    ("parse_log_astropy", python::parse_log_pytest_v2),
    ("parse_log_scikit", python::parse_log_pytest_v2),
    ("parse_log_sphinx", python::parse_log_pytest_v2),
    ("parse_log_gotest", go::parse_log_gotest),
    ("parse_log_cargo", rust::parse_log_cargo),
    ("parse_log_jest", javascript::parse_log_jest),
    ("parse_log_jest_json", javascript::parse_log_jest_json),
];

/// The official repo-to-parser maps (Python, Go, Rust, and the JS repos
/// whose parser is implemented here), as registry names.
pub const REPO_TO_PARSER: &[(&str, &str)] = &[
    ("astropy/astropy", "parse_log_astropy"),
    ("django/django", "parse_log_django"),
    ("marshmallow-code/marshmallow", "parse_log_marshmallow"),
    ("matplotlib/matplotlib", "parse_log_matplotlib"),
    ("mwaskom/seaborn", "parse_log_seaborn"),
    ("pallets/flask", "parse_log_flask"),
    ("psf/requests", "parse_log_requests"),
    ("pvlib/pvlib-python", "parse_log_pvlib"),
    ("pydata/xarray", "parse_log_xarray"),
    ("pydicom/pydicom", "parse_log_pydicom"),
    ("pylint-dev/astroid", "parse_log_astroid"),
    ("pylint-dev/pylint", "parse_log_pylint"),
    ("pytest-dev/pytest", "parse_log_pytest"),
    ("pyvista/pyvista", "parse_log_pyvista"),
    ("scikit-learn/scikit-learn", "parse_log_scikit"),
    ("sqlfluff/sqlfluff", "parse_log_sqlfluff"),
    ("sphinx-doc/sphinx", "parse_log_sphinx"),
    ("sympy/sympy", "parse_log_sympy"),
    ("caddyserver/caddy", "parse_log_gotest"),
    ("hashicorp/terraform", "parse_log_gotest"),
    ("prometheus/prometheus", "parse_log_gotest"),
    ("gohugoio/hugo", "parse_log_gotest"),
    ("gin-gonic/gin", "parse_log_gotest"),
    ("burntsushi/ripgrep", "parse_log_cargo"),
    ("sharkdp/bat", "parse_log_cargo"),
    ("astral-sh/ruff", "parse_log_cargo"),
    ("tokio-rs/tokio", "parse_log_cargo"),
    ("uutils/coreutils", "parse_log_cargo"),
    ("nushell/nushell", "parse_log_cargo"),
    ("tokio-rs/axum", "parse_log_cargo"),
    ("babel/babel", "parse_log_jest"),
    ("facebook/docusaurus", "parse_log_jest"),
];

/// Looks a parser up by its official registry name.
pub fn parser_by_name(name: &str) -> Option<ParserFn> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The registry name the official repo maps give a repo.
pub fn parser_name_for_repo(repo: &str) -> Option<&'static str> {
    REPO_TO_PARSER
        .iter()
        .find(|(r, _)| *r == repo)
        .map(|(_, n)| *n)
}

/// Picks the parser for a row: its `log_parser` field wins, else the repo map.
/// The error says what is missing and how to fix it.
pub fn resolve_parser(instance: &Instance) -> Result<(String, ParserFn), String> {
    let name = match instance.log_parser.as_deref().filter(|s| !s.is_empty()) {
        Some(n) => n.to_owned(),
        None => match parser_name_for_repo(&instance.repo) {
            Some(n) => n.to_owned(),
            None => {
                return Err(format!(
                    "no log parser for repo `{}`: set the row's `log_parser` field to one of the official parser names",
                    instance.repo
                ));
            }
        },
    };
    match parser_by_name(&name) {
        Some(f) => Ok((name, f)),
        None => Err(format!(
            "log parser `{name}` is not implemented by airgate; supported: {}",
            REGISTRY
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Normalizes line endings the way Python's text-mode `open()` does
/// (universal newlines: `\r\n` and lone `\r` become `\n`). The official
/// grader reads logs that way, so parsers never see `\r` from a file.
pub fn universal_newlines(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let Some(first) = memchr::memchr(b'\r', b) else {
        return std::borrow::Cow::Borrowed(s);
    };
    // One pass: "\r\n" -> "\n", then any other "\r" -> "\n".
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    let mut at = first;
    loop {
        out.push_str(&s[from..at]);
        out.push('\n');
        from = if b.get(at + 1) == Some(&b'\n') {
            at + 2
        } else {
            at + 1
        };
        match memchr::memchr(b'\r', &b[from..]) {
            Some(p) => at = from + p,
            None => break,
        }
    }
    out.push_str(&s[from..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn universal_newlines_is_the_two_replaces(s in "[a\\n\\r\u{e9}]{0,20}") {
            let want = s.replace("\r\n", "\n").replace('\r', "\n");
            proptest::prop_assert_eq!(universal_newlines(&s).into_owned(), want);
        }

        #[test]
        fn py_lines_is_split_newline(s in "[a\\n\\r\u{e9}]{0,20}") {
            let want: Vec<&str> = s.split('\n').collect();
            proptest::prop_assert_eq!(py_lines(&s).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn python_whitespace_semantics() {
        let v: Vec<&str> = py_split("a\x1cb\u{a0}c  d\r").collect();
        assert_eq!(v, vec!["a", "b", "c", "d"]);
        assert_eq!(py_strip("\x1f x \x1e"), "x");
        assert_eq!(universal_newlines("a\r\nb\rc"), "a\nb\nc");
    }

    #[test]
    fn every_repo_maps_to_a_registered_parser() {
        for (repo, name) in REPO_TO_PARSER {
            assert!(parser_by_name(name).is_some(), "{repo} -> {name}");
        }
        let inst = Instance {
            repo: "nobody/nothing".into(),
            ..Default::default()
        };
        assert!(
            resolve_parser(&inst)
                .unwrap_err()
                .contains("nobody/nothing")
        );
        let inst = Instance {
            repo: "nobody/nothing".into(),
            log_parser: Some("parse_log_django".into()),
            ..Default::default()
        };
        assert_eq!(resolve_parser(&inst).unwrap().0, "parse_log_django");
    }
}
