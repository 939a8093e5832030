//! `str_replace`: replace a unique match in a file, tolerating whitespace.
//!
//! Models copy code imperfectly: indentation drifts, trailing spaces vanish,
//! `read_file`'s line-number gutter sneaks in. The tool first tries an exact
//! match, then a line-wise match that ignores leading/trailing whitespace on
//! each line (re-indenting `new_str` to the block it matched), then the same
//! with a copied line-number gutter removed. Whatever matched must be unique;
//! otherwise the error says what to copy.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::paths::{PathError, RelPath, Root};
use super::registry::Tool;
use super::{ToolContext, ToolOutcome};

/// Arguments of `str_replace`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StrReplaceArgs {
    /// File, relative to the repo root.
    pub path: String,
    /// The text to replace, copied from `read_file` (empty: create the file).
    pub old_str: String,
    /// The replacement.
    pub new_str: String,
}

/// `str_replace`: edits a file. Paths the patch policy would drop are
/// refused up front (the gate's filter on the real diff is the boundary).
pub struct StrReplace;

#[async_trait]
impl Tool for StrReplace {
    const NAME: &'static str = "str_replace";
    const DESCRIPTION: &'static str = "Replace the unique occurrence of old_str in a file with new_str. Copy old_str exactly from read_file output; leading/trailing whitespace per line is tolerated. With an empty old_str on a missing file, creates it.";
    type Args = StrReplaceArgs;

    async fn call(&self, ctx: &ToolContext<'_>, args: StrReplaceArgs) -> ToolOutcome {
        if let Some(why) = ctx.guards.refuse_edit(ctx.root(), &args.path) {
            return ToolOutcome::err(why);
        }
        str_replace(ctx, &args)
    }
}

/// Lines of context shown around the edited region.
const SNIPPET_CONTEXT: usize = 3;
/// Lines of the edited region shown at most (head and tail of it).
const SNIPPET_MAX: usize = 30;
/// Candidate regions shown when nothing matched.
const CLOSEST_SHOWN: usize = 3;

/// Replaces the unique occurrence of `old_str` with `new_str`, or creates a
/// file when `old_str` is empty and the file does not exist.
pub fn str_replace(ctx: &ToolContext<'_>, args: &StrReplaceArgs) -> ToolOutcome {
    let (path, old, new) = (
        args.path.as_str(),
        args.old_str.as_str(),
        args.new_str.as_str(),
    );
    let opened = RelPath::parse(path).and_then(|rel| Ok((Root::open(ctx.root())?, rel)));
    let (root, rel) = match opened {
        Ok(r) => r,
        Err(e) => return ToolOutcome::err(e.to_string()),
    };
    match edit(&root, &rel, old, new) {
        Ok(text) => ToolOutcome::ok(text),
        Err(e) => ToolOutcome::err(e),
    }
}

/// The edit itself. The file is opened beneath `root` and read through
/// that fd; the new content is written to a new file in the same directory
/// (through the directory's fd) and renamed over the name, so a link to an
/// outside file is never written through.
pub fn edit(root: &Root, rel: &RelPath, old: &str, new: &str) -> Result<String, String> {
    let shown = rel.shown();
    if old.is_empty() {
        return create(root, rel, new);
    }
    let (dir, opened) = root.open_for_edit(rel).map_err(|e| match e {
        PathError::IsDir { .. } => format!("`{shown}` is a directory; give a file path"),
        PathError::NotRegular { .. } => {
            format!("`{shown}` is not a regular file; it cannot be edited")
        }
        PathError::NotFound { .. } => format!(
            "`{shown}` does not exist. To create it, call str_replace with an empty old_str and \
             the whole content as new_str."
        ),
        e => e.to_string(),
    })?;
    let mode = opened.stat.st_mode;
    let mut bytes = Vec::with_capacity(usize::try_from(opened.stat.st_size).unwrap_or(0));
    let mut file = opened.file;
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    drop(file);
    let raw = String::from_utf8(bytes).map_err(|_| {
        format!(
            "`{shown}` is not valid UTF-8 text; str_replace edits text files only. Use run with \
             a tool such as sed or python if you must change it."
        )
    })?;
    // Work in `\n`; write back with the file's own line ending when it uses
    // CRLF consistently (a mixed file is edited as it is).
    let crlf = raw.contains("\r\n") && raw.matches('\n').count() == raw.matches("\r\n").count();
    let content = if crlf { raw.replace("\r\n", "\n") } else { raw };
    let old = old.replace("\r\n", "\n");
    let new = new.replace("\r\n", "\n");
    if old == new {
        return Err("old_str and new_str are identical; nothing would change".into());
    }

    let replaced = replace_unique(&content, &old, &new, shown)?;
    let updated = if crlf {
        replaced.text.replace('\n', "\r\n")
    } else {
        replaced.text.clone()
    };
    root.replace_in(
        std::os::fd::AsFd::as_fd(&dir),
        rel,
        updated.as_bytes(),
        mode,
    )
    .map_err(|e| format!("cannot write `{shown}`: {e}"))?;

    let mode = match replaced.mode {
        Mode::Exact => "",
        Mode::Whitespace => " (matched ignoring whitespace; new_str re-indented to the file)",
        Mode::Gutter => {
            " (matched after removing read_file line numbers from old_str; do not copy them)"
        }
    };
    let (a, b) = replaced.new_lines;
    Ok(format!(
        "Edited `{}`: replaced lines {}-{} with {} line(s){mode}. Now:\n{}",
        shown,
        replaced.old_lines.0,
        replaced.old_lines.1,
        b + 1 - a,
        snippet(&replaced.text, a, b)
    ))
}

/// Creates `rel` (and its missing directories) with `new`; refuses when
/// anything already exists at `rel`.
fn create(root: &Root, rel: &RelPath, new: &str) -> Result<String, String> {
    let shown = rel.shown();
    let exists = || {
        format!(
            "`{shown}` already exists, so old_str may not be empty. To change it, copy the exact \
             text to replace into old_str (read_file it first)."
        )
    };
    let is_dir = || format!("`{shown}` is a directory; give a file path");
    match root.lookup(rel) {
        Ok(node) if node.file_type() == rustix::fs::FileType::Directory => return Err(is_dir()),
        Ok(_) => return Err(exists()),
        Err(PathError::NotFound { .. }) => {}
        Err(e) => return Err(e.to_string()),
    }
    root.create_file(rel, new.as_bytes()).map_err(|e| match e {
        PathError::IsDir { .. } => is_dir(),
        PathError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            exists()
        }
        PathError::NotDir { .. } | PathError::NotFound { .. } => format!(
            "cannot create the directories for `{shown}`: a component of the path is a file"
        ),
        e => format!("cannot create `{shown}`: {e}"),
    })?;
    Ok(format!(
        "Created `{}` ({} line(s), {} bytes).",
        shown,
        new.lines().count(),
        new.len()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Exact,
    Whitespace,
    Gutter,
}

struct Replaced {
    text: String,
    mode: Mode,
    /// 1-based inclusive line range replaced in the old text.
    old_lines: (usize, usize),
    /// 1-based inclusive line range of the replacement in the new text
    /// (`b = a - 1` when lines were deleted).
    new_lines: (usize, usize),
}

fn line_of(s: &str, byte: usize) -> usize {
    s[..byte].matches('\n').count() + 1
}

fn replace_unique(content: &str, old: &str, new: &str, rel: &str) -> Result<Replaced, String> {
    // 1. Exact.
    let hits: Vec<usize> = content.match_indices(old).map(|(i, _)| i).collect();
    match hits.len() {
        1 => {
            let at = hits[0];
            let mut text = String::with_capacity(content.len() + new.len());
            text.push_str(&content[..at]);
            text.push_str(new);
            text.push_str(&content[at + old.len()..]);
            let start = line_of(content, at);
            let old_end = start + old.trim_end_matches('\n').matches('\n').count();
            let new_end = start + new.trim_end_matches('\n').matches('\n').count();
            let new_end = if new.is_empty() { start } else { new_end };
            return Ok(Replaced {
                text,
                mode: Mode::Exact,
                old_lines: (start, old_end),
                new_lines: (start, new_end),
            });
        }
        n if n > 1 => {
            let lines: Vec<String> = hits
                .iter()
                .map(|&i| line_of(content, i).to_string())
                .collect();
            return Err(several(rel, n, &lines));
        }
        _ => {}
    }
    // 2. Line-wise, ignoring leading/trailing whitespace per line.
    let file_lines = split_lines(content);
    let old_lines = trimmed_block(old);
    if old_lines.is_empty() {
        return Err(
            "old_str is only whitespace and was not found exactly; include the text of the \
             lines to replace"
                .into(),
        );
    }
    let had_nl = content.ends_with('\n');
    let attempt = |old_block: &[(&str, &str)],
                   new_src: &str,
                   mode: Mode|
     -> Result<Option<Replaced>, String> {
        let hits = find_linewise(&file_lines, old_block);
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(apply_linewise(
                &file_lines,
                had_nl,
                hits[0],
                old_block,
                new_src,
                mode,
            ))),
            n => {
                let lines: Vec<String> = hits.iter().map(|i| (i + 1).to_string()).collect();
                Err(several(rel, n, &lines))
            }
        }
    };
    if let Some(r) = attempt(&old_lines, new, Mode::Whitespace)? {
        return Ok(r);
    }
    // 3. A `read_file` gutter ("    12\t") copied into old_str (and new_str).
    if let Some(stripped_old) = strip_gutter(old) {
        let stripped_new = strip_gutter(new).unwrap_or_else(|| new.to_string());
        let block = trimmed_block(&stripped_old);
        if !block.is_empty()
            && let Some(r) = attempt(&block, &stripped_new, Mode::Gutter)?
        {
            return Ok(r);
        }
    }
    Err(not_found(rel, &file_lines, &old_lines))
}

fn several(rel: &str, n: usize, lines: &[String]) -> String {
    format!(
        "old_str matches {n} places in `{rel}` (lines {}); it must match exactly one. Include \
         more surrounding lines in old_str to make it unique.",
        lines.join(", ")
    )
}

/// Lines of `s` without their `\n` (a trailing newline adds no empty line).
fn split_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split('\n').collect();
    if s.ends_with('\n') {
        v.pop();
    }
    v
}

/// `old`'s lines as (raw, trimmed), without leading/trailing blank lines.
fn trimmed_block(old: &str) -> Vec<(&str, &str)> {
    let lines: Vec<(&str, &str)> = old.split('\n').map(|l| (l, l.trim())).collect();
    let start = lines.iter().position(|l| !l.1.is_empty());
    let end = lines.iter().rposition(|l| !l.1.is_empty());
    match (start, end) {
        (Some(a), Some(b)) => lines[a..=b].to_vec(),
        _ => vec![],
    }
}

/// Start indices of windows of `file` equal to `block` after trimming.
fn find_linewise(file: &[&str], block: &[(&str, &str)]) -> Vec<usize> {
    if block.len() > file.len() {
        return vec![];
    }
    (0..=file.len() - block.len())
        .filter(|&i| block.iter().zip(&file[i..]).all(|(b, f)| f.trim() == b.1))
        .collect()
}

fn leading_ws(s: &str) -> &str {
    &s[..s.len() - s.trim_start().len()]
}

/// Replaces `block.len()` lines of `file` at `at` with `new_src`, mapping
/// indentation from old_str's convention to the file's: each indentation
/// seen on a matched old_str line maps to the file line it matched; other
/// indentations map through their longest mapped prefix.
fn apply_linewise(
    file: &[&str],
    had_nl: bool,
    at: usize,
    block: &[(&str, &str)],
    new_src: &str,
    mode: Mode,
) -> Replaced {
    let k = block.len();
    let mut map: Vec<(&str, &str)> = Vec::new();
    for ((raw, trimmed), f) in block.iter().zip(&file[at..]) {
        if trimmed.is_empty() {
            continue;
        }
        let ws = leading_ws(raw);
        if !map.iter().any(|(o, _)| *o == ws) {
            map.push((ws, leading_ws(f)));
        }
    }
    // Longest old indentation first, for prefix lookups.
    map.sort_by_key(|x| std::cmp::Reverse(x.0.len()));
    let base_old = block.first().map(|(raw, _)| leading_ws(raw)).unwrap_or("");
    let base_file = leading_ws(file[at]);

    let new_src = new_src.strip_suffix('\n').unwrap_or(new_src);
    let new_lines: Vec<&str> = if new_src.is_empty() {
        vec![]
    } else {
        new_src.split('\n').collect()
    };
    let mut out: Vec<String> = Vec::with_capacity(file.len() - k + new_lines.len());
    out.extend(file[..at].iter().map(|s| s.to_string()));
    let mut next_kept = 0;
    for l in &new_lines {
        let body = l.trim_start();
        if body.trim_end().is_empty() {
            out.push(String::new());
            continue;
        }
        let ws = leading_ws(l);
        // A line kept from old_str keeps the indentation of the line it matched.
        if let Some(j) = (next_kept..k).find(|&j| block[j].1 == body.trim_end()) {
            next_kept = j + 1;
            out.push(format!("{}{body}", leading_ws(file[at + j])));
        } else if let Some((o, f)) = map.iter().find(|(o, _)| ws.starts_with(o)) {
            out.push(format!("{f}{}{body}", &ws[o.len()..]));
        } else {
            // Less indented than anything matched: outdent from the base by
            // as much as the model did, as far as the file's indent allows.
            let drop = base_old.len().saturating_sub(ws.len());
            let keep = base_file.len().saturating_sub(drop);
            out.push(format!("{}{body}", &base_file[..keep]));
        }
    }
    out.extend(file[at + k..].iter().map(|s| s.to_string()));
    let mut text = out.join("\n");
    if had_nl && !text.is_empty() {
        text.push('\n');
    }
    let start = at + 1;
    Replaced {
        text,
        mode,
        old_lines: (start, at + k),
        new_lines: (
            start,
            start + new_lines.len() - usize::from(!new_lines.is_empty()),
        ),
    }
}

/// `s` with a `read_file` gutter (`  12\t` or `12: `) removed from every
/// line, when every non-blank line carries one.
fn strip_gutter(s: &str) -> Option<String> {
    let re = regex::Regex::new(r"^\s*\d+(\t|: |\| ?)").ok()?;
    let lines: Vec<&str> = s.split('\n').collect();
    let nonblank = lines.iter().filter(|l| !l.trim().is_empty()).count();
    if nonblank == 0
        || lines
            .iter()
            .any(|l| !l.trim().is_empty() && !re.is_match(l))
    {
        return None;
    }
    Some(
        lines
            .iter()
            .map(|l| re.replace(l, "").into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The zero-match error: the most similar regions of the file, numbered,
/// so the model can copy the real text.
fn not_found(rel: &str, file: &[&str], block: &[(&str, &str)]) -> String {
    let block: Vec<&str> = block.iter().map(|b| b.1).collect();
    let mut msg =
        format!("old_str was not found in `{rel}` (neither exactly nor ignoring indentation). ");
    let probe = block
        .iter()
        .copied()
        .find(|l| l.len() >= 3)
        .unwrap_or(block[0]);
    let probe_idx = block.iter().position(|l| *l == probe).unwrap_or(0);
    let mut scored: Vec<(f32, usize)> = file
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (similarity(l.trim(), probe), i))
        .filter(|(s, _)| *s >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut shown: Vec<(usize, usize)> = Vec::new();
    for (_, i) in scored {
        if shown.len() == CLOSEST_SHOWN {
            break;
        }
        let start = i.saturating_sub(probe_idx);
        if shown
            .iter()
            .any(|(a, b)| start <= *b && start + block.len() > *a)
        {
            continue;
        }
        let end = (start + block.len().clamp(1, 12)).min(file.len()) - 1;
        shown.push((start, end));
    }
    if shown.is_empty() {
        msg.push_str(&format!(
            "No similar lines either: read_file `{rel}` (or search for a distinctive word) and \
             copy the exact text to replace."
        ));
        return msg;
    }
    msg.push_str("The most similar region(s), with line numbers:\n");
    for (a, b) in &shown {
        msg.push_str(&format!("--- lines {}-{}:\n", a + 1, b + 1));
        for (i, line) in file.iter().enumerate().take(b + 1).skip(*a) {
            msg.push_str(&format!("{:>6}\t{line}\n", i + 1));
        }
    }
    msg.push_str(
        "Copy old_str exactly from these lines (without the line numbers), or read_file the \
         file again if it has changed.",
    );
    msg
}

/// Similarity in [0, 1] of two short strings (character-level diff ratio).
fn similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    // Cheap length filter before the diff.
    let (la, lb) = (a.chars().count() as f32, b.chars().count() as f32);
    if la.min(lb) / la.max(lb).max(1.0) < 0.4 {
        return 0.0;
    }
    similar::TextDiff::configure()
        .timeout(std::time::Duration::from_millis(5))
        .diff_chars(a, b)
        .ratio()
}

/// Lines `a..=b` (1-based) of `text` with context, numbered.
fn snippet(text: &str, a: usize, b: usize) -> String {
    let lines = split_lines(text);
    if lines.is_empty() {
        return "(the file is now empty)\n".into();
    }
    let from = a.saturating_sub(SNIPPET_CONTEXT).max(1);
    let to = (b.max(a) + SNIPPET_CONTEXT).min(lines.len());
    let mut out = String::new();
    let region = to + 1 - from;
    for n in from..=to {
        if region > SNIPPET_MAX && n == from + SNIPPET_MAX / 2 {
            let skip_to = to - SNIPPET_MAX / 2;
            out.push_str(&format!("   ...\t[{} lines]\n", skip_to - n + 1));
        }
        if region > SNIPPET_MAX && n >= from + SNIPPET_MAX / 2 && n <= to - SNIPPET_MAX / 2 {
            continue;
        }
        out.push_str(&format!("{n:>6}\t{}\n", lines[n - 1]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a temporary root, as the tool sees it.
    struct T {
        root: Root,
        rel: RelPath,
        abs: std::path::PathBuf,
    }

    fn target(dir: &std::path::Path, rel: &str) -> T {
        T {
            root: Root::open(dir).expect("root"),
            rel: RelPath::parse(rel).expect("rel"),
            abs: dir.join(rel),
        }
    }

    fn setup(name: &str, content: &[u8]) -> (tempfile::TempDir, T) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(name), content).expect("write");
        let t = target(dir.path(), name);
        (dir, t)
    }

    /// Shadows the two-argument form the tests were written against.
    fn edit(t: &T, old: &str, new: &str) -> Result<String, String> {
        super::edit(&t.root, &t.rel, old, new)
    }

    fn read(t: &T) -> String {
        std::fs::read_to_string(&t.abs).expect("read")
    }

    const PY: &str = "class Account:\n    def debit(self, amount):\n        self.balance -= amount\n        return True\n";

    #[test]
    fn exact_match_replaces() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        let out = edit(&r, "return True", "return self.balance >= 0").expect("ok");
        assert!(out.contains("replaced lines 4-4"), "{out}");
        assert!(
            out.contains("     4\t        return self.balance >= 0"),
            "{out}"
        );
        assert_eq!(
            read(&r),
            PY.replace("return True", "return self.balance >= 0")
        );
    }

    #[test]
    fn whitespace_tolerant_match_reindents() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        // The model dropped the indentation entirely.
        let out = edit(
            &r,
            "self.balance -= amount\nreturn True",
            "if amount > self.balance:\n    raise ValueError(\"insufficient\")\nself.balance -= amount\nreturn True",
        )
        .expect("ok");
        assert!(out.contains("ignoring whitespace"), "{out}");
        assert_eq!(
            read(&r),
            "class Account:\n    def debit(self, amount):\n        if amount > self.balance:\n            raise ValueError(\"insufficient\")\n        self.balance -= amount\n        return True\n"
        );
    }

    #[test]
    fn over_indented_and_trailing_spaces_tolerated() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        edit(
            &r,
            "            def debit(self, amount):   \n                self.balance -= amount",
            "            def debit(self, amount):\n                self.balance -= abs(amount)",
        )
        .expect("ok");
        assert!(
            read(&r)
                .contains("\n    def debit(self, amount):\n        self.balance -= abs(amount)\n")
        );
    }

    #[test]
    fn gutter_copied_from_read_file_is_stripped() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        let out = edit(
            &r,
            "     3\t        self.balance -= amount\n     4\t        return True",
            "     3\t        self.balance -= amount\n     4\t        return False",
        )
        .expect("ok");
        assert!(out.contains("line numbers"), "{out}");
        assert!(read(&r).ends_with("        return False\n"));
    }

    #[test]
    fn zero_matches_shows_closest_lines() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        let before = read(&r);
        let e = edit(&r, "def debt(self, amt):", "x").unwrap_err();
        assert!(e.contains("not found"), "{e}");
        assert!(e.contains("     2\t    def debit(self, amount):"), "{e}");
        assert_eq!(read(&r), before, "file untouched on error");
        let e = edit(&r, "completely unrelated text here", "x").unwrap_err();
        assert!(e.contains("No similar lines"), "{e}");
    }

    #[test]
    fn several_matches_are_refused_with_line_numbers() {
        let (_d, r) = setup("m.py", b"x = 1\ny = 2\nx = 1\n");
        let e = edit(&r, "x = 1", "x = 3").unwrap_err();
        assert!(e.contains("matches 2 places"), "{e}");
        assert!(e.contains("lines 1, 3"), "{e}");
        // Same through the whitespace-tolerant path.
        let e = edit(&r, "  x = 1  ", "x = 3").unwrap_err();
        assert!(
            e.contains("matches 2 places") && e.contains("lines 1, 3"),
            "{e}"
        );
        assert_eq!(read(&r), "x = 1\ny = 2\nx = 1\n");
    }

    #[test]
    fn empty_old_creates_missing_file_with_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = target(dir.path(), "new/pkg/mod.py");
        let out = edit(&r, "", "print('hi')\n").expect("ok");
        assert!(out.starts_with("Created `new/pkg/mod.py`"), "{out}");
        assert_eq!(read(&r), "print('hi')\n");
    }

    #[test]
    fn empty_old_on_existing_file_is_an_error() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        let e = edit(&r, "", "boom").unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(read(&r), PY);
    }

    #[test]
    fn missing_file_with_old_str_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = target(dir.path(), "nope.py");
        let e = edit(&r, "a", "b").unwrap_err();
        assert!(
            e.contains("does not exist") && e.contains("empty old_str"),
            "{e}"
        );
    }

    #[test]
    fn crlf_line_endings_are_preserved() {
        let (_d, r) = setup("w.txt", b"alpha\r\n  beta\r\ngamma\r\n");
        // Line-wise match (old_str lacks the indent), re-indented, CRLF kept.
        edit(&r, "beta \ngamma", "BETA\nextra\ngamma").expect("ok");
        assert_eq!(read(&r), "alpha\r\n  BETA\r\n  extra\r\ngamma\r\n");
        let (_d, r) = setup("w.txt", b"alpha\r\n  beta\r\ngamma\r\n");
        edit(&r, "  beta", "  BETA\n  extra").expect("ok");
        assert_eq!(read(&r), "alpha\r\n  BETA\r\n  extra\r\ngamma\r\n");
        let (_d2, r2) = setup("w.txt", b"one\r\ntwo\r\n");
        edit(&r2, "one\r\ntwo", "one\ntwo\nthree").expect("ok");
        assert_eq!(read(&r2), "one\r\ntwo\r\nthree\r\n");
    }

    #[test]
    fn no_trailing_newline_is_preserved() {
        let (_d, r) = setup("n.txt", b"a\n  b");
        edit(&r, "b", "c").expect("ok");
        assert_eq!(read(&r), "a\n  c");
        let (_d, r) = setup("n.txt", b"a\n    b\n    c");
        edit(&r, "b\nc", "d").expect("ok");
        assert_eq!(read(&r), "a\n    d");
    }

    #[test]
    fn deleting_lines_via_linewise_match() {
        let (_d, r) = setup("d.py", b"a\n    b\n    c\nd\n");
        edit(&r, "b\nc", "").expect("ok");
        assert_eq!(read(&r), "a\nd\n");
    }

    #[test]
    fn identical_and_non_utf8_are_errors() {
        let (_d, r) = setup("a.py", PY.as_bytes());
        assert!(
            edit(&r, "return True", "return True")
                .unwrap_err()
                .contains("identical")
        );
        let (_d2, r2) = setup("l.txt", b"caf\xe9\n");
        assert!(
            edit(&r2, "caf", "cafe")
                .unwrap_err()
                .contains("not valid UTF-8")
        );
    }

    #[test]
    fn tabs_indentation_kept() {
        let (_d, r) = setup("g.go", b"func f() {\n\tif x {\n\t\treturn 1\n\t}\n}\n");
        edit(&r, "if x {\n    return 1\n}", "if x {\n    return 2\n}").expect("ok");
        // Spaces in old_str/new_str map onto the file's tabs.
        assert_eq!(read(&r), "func f() {\n\tif x {\n\t\treturn 2\n\t}\n}\n");
    }

    #[test]
    fn snippet_is_short_for_large_edits() {
        let (_d, r) = setup("big.txt", b"start\nend\n");
        let big: String = (0..200).map(|i| format!("l{i}\n")).collect();
        let out = edit(&r, "start\n", &format!("start\n{big}")).expect("ok");
        assert!(out.lines().count() < SNIPPET_MAX + 10, "{out}");
        assert!(out.contains("lines]"), "{out}");
    }
}
