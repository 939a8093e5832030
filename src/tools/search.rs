//! `search`: regex search across the repository with ripgrep's own crates.
//!
//! Semantics follow `rg` defaults: `.gitignore`/`.ignore` are honoured (even
//! outside a git checkout), hidden files and `.git` are skipped, binary files
//! (a NUL byte) are skipped. Differences, on purpose: the user's global git
//! excludes are ignored (results must not depend on the host), `glob` narrows
//! the search but never re-includes ignored files, and output is sorted so
//! the same call always shows the same lines.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::{GlobBuilder, GlobMatcher};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use ignore::{WalkBuilder, WalkState};
use serde_json::{Map, Value};

use super::paths::{PathError, RelPath, Root};
use super::{ToolContext, ToolOutcome, opt_str, req_str};
use crate::truncate::floor_char_boundary;

/// Matching lines shown at most; the rest are counted.
pub const MAX_MATCHES: usize = 200;
/// Characters of a matching line shown at most.
pub const MAX_LINE_CHARS: usize = 300;

/// One file's hits: relative path, kept lines, and the full hit count.
struct FileHits {
    rel: String,
    lines: Vec<(u64, String)>,
    count: usize,
}

/// What one search found.
pub struct SearchResult {
    files: Vec<FileHits>,
    total: usize,
}

/// Regex search across the repo (or `path`), optionally only in files
/// matching `glob`; prints `path:line: text`.
pub fn search(ctx: &ToolContext<'_>, args: &Map<String, Value>) -> ToolOutcome {
    let parsed = (|| -> Result<(&str, Option<&str>, Option<&str>), String> {
        Ok((
            req_str(args, "pattern")?,
            opt_str(args, "path")?,
            opt_str(args, "glob")?,
        ))
    })();
    let (pattern, path, glob) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutcome::err(e),
    };
    match run_search(ctx.root(), pattern, path, glob) {
        Ok(res) => ToolOutcome::ok(render(&res, pattern, path, glob)),
        Err(e) => ToolOutcome::err(e),
    }
}

/// Builds the matcher, with an error the model can act on.
fn matcher(pattern: &str) -> Result<RegexMatcher, String> {
    if pattern.is_empty() {
        return Err("`pattern` is empty; give a regex such as `def debit`".into());
    }
    RegexMatcherBuilder::new()
        .line_terminator(Some(b'\n'))
        .build(pattern)
        .map_err(|e| {
            let mut msg = format!("invalid regex `{pattern}`: {e}");
            if pattern.contains("\\n") || pattern.contains('\n') {
                msg.push_str(
                    "\nhint: search matches within one line; search for one line of the text.",
                );
            } else {
                msg.push_str(&format!(
                    "\nhint: the pattern is a regex (Rust syntax); to search for the text \
                     literally, escape special characters: `{}`",
                    regex::escape(pattern)
                ));
            }
            msg
        })
}

/// Matches `glob` gitignore-style: without a `/` against the file name,
/// with one against the path relative to the root.
struct GlobFilter {
    matcher: GlobMatcher,
    basename: bool,
}

impl GlobFilter {
    fn new(glob: &str) -> Result<Self, String> {
        let g = glob.trim();
        let basename = !g.trim_end_matches('/').contains('/');
        let g = g.trim_start_matches("./").trim_start_matches('/');
        let matcher = GlobBuilder::new(g)
            .literal_separator(!basename)
            .build()
            .map_err(|e| {
                format!(
                    "invalid glob `{glob}`: {e}; examples: `*.py`, `src/**/*.rs`, `*.{{js,ts}}`"
                )
            })?
            .compile_matcher();
        Ok(Self { matcher, basename })
    }

    fn is_match(&self, rel: &str) -> bool {
        if self.basename {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            self.matcher.is_match(name)
        } else {
            self.matcher.is_match(rel)
        }
    }
}

/// Collects hits for one file, keeping at most [`MAX_MATCHES`] lines.
struct Collect<'a> {
    hits: &'a mut FileHits,
}

impl Sink for Collect<'_> {
    type Error = std::io::Error;

    fn matched(&mut self, _s: &Searcher, m: &SinkMatch<'_>) -> Result<bool, Self::Error> {
        self.hits.count += 1;
        if self.hits.lines.len() < MAX_MATCHES {
            let line = m.line_number().unwrap_or(0);
            self.hits.lines.push((line, display_line(m.bytes())));
        }
        Ok(true)
    }
}

fn display_line(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end_matches(['\n', '\r']);
    if s.len() > MAX_LINE_CHARS {
        let cut = floor_char_boundary(s, MAX_LINE_CHARS);
        format!("{} [... line cut]", &s[..cut])
    } else {
        s.to_string()
    }
}

fn new_searcher() -> Searcher {
    SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(b'\x00'))
        .build()
}

/// Runs the search; returns hits sorted by path.
pub fn run_search(
    root: &Path,
    pattern: &str,
    path: Option<&str>,
    glob: Option<&str>,
) -> Result<SearchResult, String> {
    let matcher = matcher(pattern)?;
    let glob = glob
        .filter(|g| !g.trim().is_empty())
        .map(GlobFilter::new)
        .transpose()?;
    let root = Root::open(root).map_err(|e| e.to_string())?;
    let target = RelPath::parse(path.unwrap_or(".")).map_err(|e| e.to_string())?;
    let shown = target.shown();
    let node = root.lookup(&target).map_err(|e| match e {
        PathError::NotFound { .. } => {
            format!("`{shown}` does not exist; use ls to find the right directory")
        }
        e => e.to_string(),
    })?;

    let found: Mutex<Vec<FileHits>> = Mutex::new(Vec::new());
    let total = AtomicUsize::new(0);
    // Every file is searched through an fd opened beneath the root (no link
    // followed, one hard link, same device), never by its path.
    let search_one = |searcher: &mut Searcher, file: &File, rel: String| {
        let mut hits = FileHits {
            rel,
            lines: Vec::new(),
            count: 0,
        };
        // Unreadable files are skipped, as rg does (it warns on stderr).
        let _ = searcher.search_file(&matcher, file, Collect { hits: &mut hits });
        if hits.count > 0 {
            total.fetch_add(hits.count, Ordering::Relaxed);
            if let Ok(mut f) = found.lock() {
                f.push(hits);
            }
        }
    };

    if node.file_type() != rustix::fs::FileType::Directory {
        // An explicitly named file is searched even if ignored or hidden.
        if glob.as_ref().is_none_or(|g| g.is_match(shown)) {
            let opened = root.open_file(&target).map_err(|e| e.to_string())?;
            search_one(&mut new_searcher(), &opened.file, shown.to_string());
        }
    } else {
        let root_abs = root.path().to_path_buf();
        let mut wb = WalkBuilder::new(&root_abs);
        wb.git_global(false)
            .require_git(false)
            .parents(false)
            .follow_links(false)
            .threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(12)));
        if !target.is_root() {
            // Walk from the root so the root's ignore files apply, but only
            // into the target's ancestors and the target itself. A hidden
            // target that was named explicitly is searched.
            let t: PathBuf = root_abs.join(shown);
            let hidden_target = shown.split('/').any(|c| c.starts_with('.'));
            wb.hidden(!hidden_target);
            wb.filter_entry(move |e| {
                let p = e.path();
                p.starts_with(&t) || t.starts_with(p)
            });
        }
        let walker = wb.build_parallel();
        let root_ref = &root;
        let glob_ref = glob.as_ref();
        let search_ref = &search_one;
        walker.run(|| {
            let mut searcher = new_searcher();
            Box::new(move |entry| {
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                let rel = match entry.path().strip_prefix(root_ref.path()) {
                    Ok(r) => RelPath::from_walk(r),
                    Err(_) => return WalkState::Continue,
                };
                if glob_ref.is_some_and(|g| !g.is_match(rel.shown())) {
                    return WalkState::Continue;
                }
                // Swapped for a link, hard-linked or gone since the walk saw
                // it: skipped, like an unreadable file.
                if let Ok(opened) = root_ref.open_file_walked(&rel) {
                    search_ref(&mut searcher, &opened.file, rel.shown().to_string());
                }
                WalkState::Continue
            })
        });
    }
    let mut files = found.into_inner().unwrap_or_default();
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(SearchResult {
        files,
        total: total.into_inner(),
    })
}

/// Formats hits as `path:line: text`, at most [`MAX_MATCHES`] lines.
fn render(res: &SearchResult, pattern: &str, path: Option<&str>, glob: Option<&str>) -> String {
    if res.total == 0 {
        let mut scope = String::new();
        if let Some(p) = path {
            scope.push_str(&format!(" in `{p}`"));
        }
        if let Some(g) = glob {
            scope.push_str(&format!(" (files matching `{g}`)"));
        }
        return format!(
            "No matches for `{pattern}`{scope}. Ignored (.gitignore), hidden and binary files \
             are not searched. Try a shorter or case-insensitive pattern, e.g. `(?i)name`."
        );
    }
    let mut out = String::new();
    let mut shown = 0usize;
    'files: for f in &res.files {
        for (line, text) in &f.lines {
            if shown == MAX_MATCHES {
                break 'files;
            }
            out.push_str(&f.rel);
            out.push(':');
            out.push_str(&line.to_string());
            out.push_str(": ");
            out.push_str(text);
            out.push('\n');
            shown += 1;
        }
    }
    if res.total > shown {
        out.push_str(&format!(
            "[showing {shown} of {} matches in {} files; narrow the search with `path`, `glob` \
             or a more specific pattern]\n",
            res.total,
            res.files.len()
        ));
    }
    out
}

impl SearchResult {
    /// Total matching lines found.
    pub fn total(&self) -> usize {
        self.total
    }
    /// Files with at least one match.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::local::LocalSandbox;
    use serde_json::json;
    use std::time::Duration;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        for d in [".git", "src/bank", "build", ".github", "docs"] {
            std::fs::create_dir_all(r.join(d)).expect("mkdir");
        }
        std::fs::write(r.join(".gitignore"), "build/\n*.log\n").expect("write");
        std::fs::write(
            r.join("src/bank/accounts.py"),
            "class Account:\n    def debit(self, amount):\n        self.balance -= amount\n",
        )
        .expect("write");
        std::fs::write(
            r.join("src/bank/transfer.py"),
            "from .accounts import Account\n\ndef transfer(a, b, x):\n    a.debit(x)\n    b.credit(x)\n",
        )
        .expect("write");
        std::fs::write(r.join("build/out.py"), "def debit(): pass\n").expect("write");
        std::fs::write(r.join("run.log"), "def debit\n").expect("write");
        std::fs::write(r.join(".git/config"), "def debit\n").expect("write");
        std::fs::write(r.join(".github/ci.yml"), "def debit\n").expect("write");
        std::fs::write(r.join("docs/notes.md"), "debit() is called by transfer\n").expect("write");
        std::fs::write(r.join("blob.bin"), b"def debit\x00\x01\x02").expect("write");
        dir
    }

    fn call(dir: &Path, a: Value) -> ToolOutcome {
        let sb = LocalSandbox::new(dir);
        let ctx = ToolContext {
            mcp: None,
            sandbox: &sb,
            guards: Default::default(),
            output_limit: 10_000,
            run_timeout: Duration::from_secs(5),
            max_run_timeout: Duration::from_secs(5),
        };
        search(&ctx, a.as_object().expect("obj"))
    }

    #[test]
    fn finds_matches_sorted_with_line_numbers() {
        let d = setup();
        let out = call(d.path(), json!({"pattern": "debit"}));
        assert!(!out.is_error, "{}", out.text);
        assert_eq!(
            out.text,
            "docs/notes.md:1: debit() is called by transfer\n\
             src/bank/accounts.py:2:     def debit(self, amount):\n\
             src/bank/transfer.py:4:     a.debit(x)\n"
        );
    }

    #[test]
    fn honours_gitignore_and_skips_git_hidden_binary() {
        let d = setup();
        let out = call(d.path(), json!({"pattern": "def debit"}));
        assert_eq!(
            out.text,
            "src/bank/accounts.py:2:     def debit(self, amount):\n"
        );
    }

    #[test]
    fn gitignore_applies_without_a_git_dir() {
        let d = setup();
        std::fs::remove_dir_all(d.path().join(".git")).expect("rm");
        let out = call(d.path(), json!({"pattern": "def debit"}));
        assert!(!out.text.contains("build/"), "{}", out.text);
    }

    #[test]
    fn path_narrows_and_is_confined() {
        let d = setup();
        let out = call(
            d.path(),
            json!({"pattern": "debit", "path": "src/bank/transfer.py"}),
        );
        assert_eq!(out.text, "src/bank/transfer.py:4:     a.debit(x)\n");
        let out = call(d.path(), json!({"pattern": "debit", "path": "docs"}));
        assert_eq!(out.text, "docs/notes.md:1: debit() is called by transfer\n");
        let out = call(d.path(), json!({"pattern": "debit", "path": "../"}));
        assert!(out.is_error);
        let out = call(d.path(), json!({"pattern": "debit", "path": "/etc"}));
        assert!(out.is_error);
        let out = call(d.path(), json!({"pattern": "debit", "path": "nope"}));
        assert!(out.is_error && out.text.contains("does not exist"));
    }

    #[test]
    fn ignore_rules_still_apply_under_a_subdirectory() {
        let d = setup();
        std::fs::write(d.path().join("src/bank/x.log"), "debit\n").expect("write");
        let out = call(d.path(), json!({"pattern": "debit", "path": "src"}));
        assert!(!out.text.contains("x.log"), "{}", out.text);
    }

    #[test]
    fn explicit_hidden_dir_is_searched() {
        let d = setup();
        let out = call(d.path(), json!({"pattern": "debit", "path": ".github"}));
        assert_eq!(out.text, ".github/ci.yml:1: def debit\n");
    }

    #[test]
    fn glob_filters_files() {
        let d = setup();
        let out = call(d.path(), json!({"pattern": "debit", "glob": "*.md"}));
        assert_eq!(out.text, "docs/notes.md:1: debit() is called by transfer\n");
        let out = call(
            d.path(),
            json!({"pattern": "debit", "glob": "src/**/t*.py"}),
        );
        assert_eq!(out.text, "src/bank/transfer.py:4:     a.debit(x)\n");
        // A glob does not re-include ignored files.
        let out = call(d.path(), json!({"pattern": "debit", "glob": "*.log"}));
        assert!(out.text.starts_with("No matches"), "{}", out.text);
        let out = call(d.path(), json!({"pattern": "debit", "glob": "[z"}));
        assert!(out.is_error && out.text.contains("invalid glob"));
    }

    #[test]
    fn invalid_regex_is_a_helpful_error() {
        let d = setup();
        let out = call(d.path(), json!({"pattern": "debit("}));
        assert!(out.is_error);
        assert!(out.text.contains("invalid regex"), "{}", out.text);
        assert!(out.text.contains("debit\\("), "{}", out.text);
        let out = call(d.path(), json!({"pattern": ""}));
        assert!(out.is_error);
        let out = call(d.path(), json!({"pattern": "a\\nb"}));
        assert!(
            out.is_error && out.text.contains("one line"),
            "{}",
            out.text
        );
    }

    #[test]
    fn no_matches_is_not_an_error() {
        let d = setup();
        let out = call(d.path(), json!({"pattern": "zzzz_nothing"}));
        assert!(!out.is_error);
        assert!(out.text.starts_with("No matches"));
    }

    #[test]
    fn caps_matches_with_a_note_deterministically() {
        let d = setup();
        for i in 0..30 {
            let body: String = (0..20).map(|j| format!("needle {i} {j}\n")).collect();
            std::fs::write(d.path().join(format!("src/f{i:02}.txt")), body).expect("write");
        }
        let a = call(d.path(), json!({"pattern": "needle"}));
        let b = call(d.path(), json!({"pattern": "needle"}));
        assert_eq!(a.text, b.text);
        let lines: Vec<&str> = a.text.lines().collect();
        assert_eq!(lines.len(), MAX_MATCHES + 1);
        assert_eq!(lines[0], "src/f00.txt:1: needle 0 0");
        assert!(
            lines[MAX_MATCHES].contains("showing 200 of 600 matches in 30 files"),
            "{}",
            lines[MAX_MATCHES]
        );
    }

    #[test]
    fn long_and_non_utf8_lines_are_shown_safely() {
        let d = setup();
        let mut body = "é".repeat(400).into_bytes();
        body.extend_from_slice(b" needle\n\xff needle\n");
        std::fs::write(d.path().join("src/w.txt"), body).expect("write");
        let out = call(d.path(), json!({"pattern": "needle"}));
        assert!(out.text.contains("[... line cut]"), "{}", out.text);
        assert!(
            out.text.contains("src/w.txt:2: \u{FFFD} needle"),
            "{}",
            out.text
        );
    }
}
