//! `ls` and `read_file`.
//!
//! `read_file` streams: it never loads a whole file, so a 100 MB log or a
//! minified one-line bundle costs one page of memory. Output carries line
//! numbers (`cat -n` style) and a note telling the model how to get the next
//! page.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::paths::{EntryKind, PathError, RelPath, Root};
use super::{ToolContext, ToolOutcome, opt_str, opt_u64, req_str};

/// Entries shown by `ls` before the listing is cut.
pub const LS_MAX_ENTRIES: usize = 400;
/// Lines shown by one `read_file` page at most.
pub const PAGE_MAX_LINES: usize = 400;
/// Bytes of one line shown at most; longer lines are cut with a note.
pub const MAX_LINE_BYTES: usize = 2_000;
/// Files up to this size get their total line count reported.
const COUNT_LINES_UP_TO: u64 = 32 << 20;
/// Bytes sniffed for NUL to decide that a file is binary (as ripgrep/git do).
const BINARY_SNIFF: usize = 8 << 10;

/// Lists a directory: sorted, directories marked with `/`, `.git` hidden.
pub fn ls(ctx: &ToolContext<'_>, args: &Map<String, Value>) -> ToolOutcome {
    let path = match opt_str(args, "path") {
        Ok(p) => p.unwrap_or("."),
        Err(e) => return ToolOutcome::err(e),
    };
    let listed = RelPath::parse(path)
        .and_then(|rel| Ok((Root::open(ctx.root())?, rel)))
        .map_err(|e| e.to_string())
        .and_then(|(root, rel)| list_dir(&root, &rel));
    match listed {
        Ok(text) => ToolOutcome::ok(text),
        Err(e) => ToolOutcome::err(e),
    }
}

/// Lists `rel` through a directory fd opened beneath the root. Symbolic
/// links are shown as `name -> real/path` (or as pointing outside), never
/// followed.
fn list_dir(root: &Root, rel: &RelPath) -> Result<String, String> {
    let shown = rel.shown();
    let dir = root.open_dir(rel).map_err(|e| match e {
        PathError::NotFound { .. } => format!(
            "`{shown}` does not exist; run `ls` on its parent directory to see what is there"
        ),
        PathError::NotDir { .. } => {
            format!("`{shown}` is a file, not a directory; use read_file to read it")
        }
        e => e.to_string(),
    })?;
    let mut entries: Vec<(String, EntryKind)> = root
        .list(dir, rel)
        .map_err(|e| format!("cannot list `{shown}`: {e}"))?
        .into_iter()
        .filter(|(name, _)| name != ".git")
        .collect();
    entries.sort();
    let total = entries.len();
    let shown_dir = if rel.is_root() {
        "./".to_string()
    } else {
        format!("{shown}/")
    };
    if total == 0 {
        return Ok(format!("{shown_dir} (empty directory)"));
    }
    let mut out = String::new();
    for (name, kind) in entries.iter().take(LS_MAX_ENTRIES) {
        out.push_str(name);
        match kind {
            EntryKind::Dir => out.push('/'),
            EntryKind::Symlink(Some(real)) => {
                out.push_str(" -> ");
                out.push_str(real);
                out.push_str(" (symbolic link; use the real path)");
            }
            EntryKind::Symlink(None) => {
                out.push_str(" -> (symbolic link pointing outside the repository)");
            }
            EntryKind::Other => {}
        }
        out.push('\n');
    }
    if total > LS_MAX_ENTRIES {
        out.push_str(&format!(
            "[... {} more entries not shown ({} in total); use search with a glob, or ls a \
             subdirectory, to narrow down]\n",
            total - LS_MAX_ENTRIES,
            total
        ));
    }
    Ok(out)
}

/// Reads a file, or lines `start_line..=end_line` of it, line-numbered.
pub fn read_file(ctx: &ToolContext<'_>, args: &Map<String, Value>) -> ToolOutcome {
    let parsed = (|| -> Result<(&str, Option<u64>, Option<u64>), String> {
        Ok((
            req_str(args, "path")?,
            opt_u64(args, "start_line")?,
            opt_u64(args, "end_line")?,
        ))
    })();
    let (path, start, end) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutcome::err(e),
    };
    let opened = RelPath::parse(path).and_then(|rel| Ok((Root::open(ctx.root())?, rel)));
    let (root, rel) = match opened {
        Ok(r) => r,
        Err(e) => return ToolOutcome::err(e.to_string()),
    };
    // Leave room for the notes within the output limit so the page is never
    // cut in the middle by the dispatcher's head + tail truncation.
    let budget = ctx.output_limit.saturating_sub(400).max(1_000);
    match read_page(&root, &rel, start, end, budget) {
        Ok(text) => ToolOutcome::ok(text),
        Err(e) => ToolOutcome::err(e),
    }
}

/// Streams one page of `rel` starting at `start` (1-based) up to `end`
/// inclusive, stopping early when `budget` bytes of output are reached. The
/// file is opened beneath `root` and read through that fd only.
pub fn read_page(
    root: &Root,
    rel: &RelPath,
    start: Option<u64>,
    end: Option<u64>,
    budget: usize,
) -> Result<String, String> {
    let shown = rel.shown();
    let opened = root.open_file(rel).map_err(|e| match e {
        PathError::NotFound { .. } => {
            format!("`{shown}` does not exist; use ls or search to find the right path")
        }
        PathError::IsDir { .. } => {
            format!("`{shown}` is a directory; use ls to list it, or give a file path")
        }
        e => e.to_string(),
    })?;
    let start = start.unwrap_or(1);
    if start == 0 {
        return Err("start_line is 1-based; use start_line=1 for the first line".into());
    }
    if let Some(e) = end
        && e < start
    {
        return Err(format!(
            "end_line ({e}) is before start_line ({start}); give start_line <= end_line"
        ));
    }
    let size = u64::try_from(opened.stat.st_size).unwrap_or(0);
    let mut file = opened.file;
    let mut sniff = vec![0u8; BINARY_SNIFF.min(size as usize)];
    let n = read_fully(&mut file, &mut sniff).map_err(|e| format!("cannot read: {e}"))?;
    sniff.truncate(n);
    let binary = sniff.contains(&0);
    let reader = BufReader::with_capacity(64 << 10, std::io::Cursor::new(sniff).chain(file));
    let mut lines = LineReader::new(reader);

    let mut body = String::new();
    let mut lineno: u64 = 0;
    let mut last_shown: u64 = 0;
    let mut lossy = false;
    let mut long_lines = 0usize;
    let mut more = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Lines before the page are only counted, not kept.
        let cap = if lineno + 1 < start {
            0
        } else {
            MAX_LINE_BYTES
        };
        let Some(full_len) = lines
            .next_line(&mut buf, cap)
            .map_err(|e| format!("error reading `{shown}`: {e}"))?
        else {
            break;
        };
        lineno += 1;
        if lineno < start {
            continue;
        }
        if end.is_some_and(|e| lineno > e) {
            break;
        }
        let shown_lines = lineno - start;
        if shown_lines as usize >= PAGE_MAX_LINES {
            more = true;
            break;
        }
        let was_cut = full_len > buf.len();
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(e) => {
                // A multibyte char split by the per-line cap is not "non-UTF-8".
                if !(was_cut && e.error_len().is_none()) {
                    lossy = true;
                }
                String::from_utf8_lossy(&buf)
            }
        };
        let text = if binary {
            std::borrow::Cow::Owned(text.replace('\0', "\\0"))
        } else {
            text
        };
        let mut line = format!("{lineno:>6}\t{text}");
        if was_cut {
            long_lines += 1;
            line.push_str(&format!(" [... line cut, {full_len} bytes in total]"));
        }
        line.push('\n');
        if body.len() + line.len() > budget && shown_lines > 0 {
            more = true;
            break;
        }
        body.push_str(&line);
        last_shown = lineno;
    }

    let mut head = String::new();
    if binary {
        head.push_str(&format!(
            "[note: `{shown}` looks like a binary file ({size} bytes); shown lossily, NUL bytes as \\0]\n"
        ));
    } else if lossy {
        head.push_str(&format!(
            "[note: `{shown}` is not valid UTF-8; invalid bytes are shown as \u{FFFD}. Edit it with care.]\n"
        ));
    }
    if last_shown == 0 {
        if lineno == 0 {
            return Ok(format!("{head}[`{shown}` is empty]"));
        }
        return Err(format!(
            "start_line {start} is past the end of `{shown}`, which has {lineno} lines"
        ));
    }
    let mut out = head;
    out.push_str(&body);
    if long_lines > 0 {
        out.push_str(&format!(
            "[note: {long_lines} line(s) longer than {MAX_LINE_BYTES} bytes were cut]\n"
        ));
    }
    if more {
        let total = if size <= COUNT_LINES_UP_TO {
            let rest = lines.count_remaining().unwrap_or(0);
            // +1: the line that did not fit on this page was already read.
            format!("of {} lines", last_shown + 1 + rest)
        } else {
            format!("of a {:.1} MB file", size as f64 / 1_048_576.0)
        };
        out.push_str(&format!(
            "[showing lines {start}-{last_shown} {total}; call read_file with start_line={} to \
             read on, or use search to jump to what you need]\n",
            last_shown + 1
        ));
    }
    Ok(out)
}

fn read_fully(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads `\n`-terminated lines keeping at most a cap of bytes per line, so a
/// single huge line never lands in memory whole.
struct LineReader<R> {
    inner: R,
}

impl<R: BufRead> LineReader<R> {
    fn new(inner: R) -> Self {
        Self { inner }
    }

    /// Appends up to `cap` bytes of the next line (with its `\n`, if kept)
    /// to `out`; returns the line's full length, or `None` at EOF.
    fn next_line(&mut self, out: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<usize>> {
        let mut total = 0usize;
        loop {
            let (done, used) = {
                let avail = match self.inner.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if avail.is_empty() {
                    return Ok(if total == 0 { None } else { Some(total) });
                }
                let (done, used) = match avail.iter().position(|b| *b == b'\n') {
                    Some(i) => (true, i + 1),
                    None => (false, avail.len()),
                };
                let room = cap.saturating_sub(out.len());
                out.extend_from_slice(&avail[..used.min(room)]);
                (done, used)
            };
            self.inner.consume(used);
            total += used;
            if done {
                return Ok(Some(total));
            }
        }
    }

    /// Counts the lines left (a trailing unterminated line counts).
    fn count_remaining(&mut self) -> std::io::Result<u64> {
        let mut count = 0u64;
        let mut pending = false;
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let n = avail.len();
            let nl = avail.iter().filter(|b| **b == b'\n').count() as u64;
            count += nl;
            pending = avail[n - 1] != b'\n';
            self.inner.consume(n);
        }
        Ok(count + u64::from(pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::local::LocalSandbox;
    use serde_json::json;
    use std::fs::File;
    use std::io::Write;
    use std::time::Duration;

    fn ctx(sb: &LocalSandbox) -> ToolContext<'_> {
        ToolContext {
            mcp: None,
            sandbox: sb,
            guards: Default::default(),
            output_limit: 10_000,
            run_timeout: Duration::from_secs(10),
            max_run_timeout: Duration::from_secs(60),
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn setup() -> (tempfile::TempDir, LocalSandbox) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git")).expect("mkdir");
        std::fs::create_dir_all(root.join("src/pkg")).expect("mkdir");
        std::fs::write(root.join("b.txt"), "b\n").expect("write");
        std::fs::write(root.join("a.txt"), "a\n").expect("write");
        std::fs::write(root.join(".hidden"), "h\n").expect("write");
        let body: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(root.join("src/pkg/mod.py"), body).expect("write");
        let sb = LocalSandbox::new(root);
        (dir, sb)
    }

    #[test]
    fn ls_sorted_dirs_marked_git_hidden() {
        let (_d, sb) = setup();
        let out = ls(&ctx(&sb), &args(json!({})));
        assert!(!out.is_error, "{}", out.text);
        assert_eq!(out.text, ".hidden\na.txt\nb.txt\nsrc/\n");
        let out = ls(&ctx(&sb), &args(json!({"path": "src"})));
        assert_eq!(out.text, "pkg/\n");
    }

    #[test]
    fn ls_errors() {
        let (_d, sb) = setup();
        let out = ls(&ctx(&sb), &args(json!({"path": "a.txt"})));
        assert!(
            out.is_error && out.text.contains("read_file"),
            "{}",
            out.text
        );
        let out = ls(&ctx(&sb), &args(json!({"path": "nope"})));
        assert!(out.is_error && out.text.contains("does not exist"));
        let out = ls(&ctx(&sb), &args(json!({"path": "../"})));
        assert!(out.is_error);
        let out = ls(&ctx(&sb), &args(json!({"path": 3})));
        assert!(out.is_error && out.text.contains("must be a string"));
        std::fs::create_dir(sb.workspace().join("empty")).expect("mkdir");
        let out = ls(&ctx(&sb), &args(json!({"path": "empty"})));
        assert!(out.text.contains("empty directory"));
    }

    #[test]
    fn ls_caps_large_dirs() {
        let (_d, sb) = setup();
        let big = sb.workspace().join("big");
        std::fs::create_dir(&big).expect("mkdir");
        for i in 0..(LS_MAX_ENTRIES + 25) {
            std::fs::write(big.join(format!("f{i:05}")), "").expect("write");
        }
        let out = ls(&ctx(&sb), &args(json!({"path": "big"})));
        assert_eq!(out.text.lines().count(), LS_MAX_ENTRIES + 1);
        assert!(out.text.contains("25 more entries"), "{}", out.text);
        assert!(out.text.starts_with("f00000\n"));
    }

    #[test]
    fn read_whole_small_file_numbered() {
        let (_d, sb) = setup();
        let out = read_file(&ctx(&sb), &args(json!({"path": "a.txt"})));
        assert_eq!(out.text, "     1\ta\n");
    }

    #[test]
    fn read_range() {
        let (_d, sb) = setup();
        let out = read_file(
            &ctx(&sb),
            &args(json!({"path": "src/pkg/mod.py", "start_line": 10, "end_line": 12})),
        );
        assert_eq!(
            out.text,
            "    10\tline 10\n    11\tline 11\n    12\tline 12\n"
        );
        // String numbers are accepted (a common slip).
        let out = read_file(
            &ctx(&sb),
            &args(json!({"path": "src/pkg/mod.py", "start_line": "49"})),
        );
        assert_eq!(out.text, "    49\tline 49\n    50\tline 50\n");
    }

    #[test]
    fn read_range_errors() {
        let (_d, sb) = setup();
        let c = ctx(&sb);
        let out = read_file(
            &c,
            &args(json!({"path": "src/pkg/mod.py", "start_line": 60})),
        );
        assert!(
            out.is_error && out.text.contains("has 50 lines"),
            "{}",
            out.text
        );
        let out = read_file(
            &c,
            &args(json!({"path": "src/pkg/mod.py", "start_line": 5, "end_line": 2})),
        );
        assert!(out.is_error && out.text.contains("before start_line"));
        let out = read_file(
            &c,
            &args(json!({"path": "src/pkg/mod.py", "start_line": 0})),
        );
        assert!(out.is_error && out.text.contains("1-based"));
        let out = read_file(&c, &args(json!({"path": "src"})));
        assert!(out.is_error && out.text.contains("directory"));
        let out = read_file(&c, &args(json!({"path": "missing.py"})));
        assert!(out.is_error && out.text.contains("does not exist"));
        let out = read_file(&c, &args(json!({})));
        assert!(out.is_error && out.text.contains("missing required argument `path`"));
        let out = read_file(&c, &args(json!({"path": "/etc/passwd"})));
        assert!(out.is_error && out.text.contains("absolute"));
    }

    #[test]
    fn read_empty_file() {
        let (_d, sb) = setup();
        std::fs::write(sb.workspace().join("e.txt"), "").expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "e.txt"})));
        assert!(
            !out.is_error && out.text.contains("is empty"),
            "{}",
            out.text
        );
    }

    #[test]
    fn pages_long_files_and_says_how_to_continue() {
        let (_d, sb) = setup();
        let body: String = (1..=1000).map(|i| format!("row {i}\n")).collect();
        std::fs::write(sb.workspace().join("long.txt"), body).expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "long.txt"})));
        let numbered = out.text.lines().filter(|l| l.contains('\t')).count();
        assert_eq!(numbered, PAGE_MAX_LINES);
        assert!(
            out.text.contains(&format!(
                "showing lines 1-{PAGE_MAX_LINES} of 1000 lines; call read_file with start_line={}",
                PAGE_MAX_LINES + 1
            )),
            "{}",
            out.text
        );
        // Following the hint continues exactly where the page stopped.
        let out = read_file(
            &ctx(&sb),
            &args(json!({"path": "long.txt", "start_line": PAGE_MAX_LINES + 1})),
        );
        assert!(out.text.starts_with(&format!(
            "{:>6}\trow {}\n",
            PAGE_MAX_LINES + 1,
            PAGE_MAX_LINES + 1
        )));
    }

    #[test]
    fn pages_by_bytes_to_fit_the_output_limit() {
        let (_d, sb) = setup();
        let body: String = (1..=300)
            .map(|i| format!("{i} {}\n", "y".repeat(200)))
            .collect();
        std::fs::write(sb.workspace().join("wide.txt"), body).expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "wide.txt"})));
        assert!(out.text.len() <= 10_000, "{}", out.text.len());
        assert!(out.text.contains("call read_file with start_line="));
    }

    #[test]
    fn huge_file_is_streamed_and_paged() {
        let (_d, sb) = setup();
        let path = sb.workspace().join("huge.log");
        let mut f = std::io::BufWriter::new(File::create(&path).expect("create"));
        let line = format!("{}\n", "z".repeat(99));
        // 100 MB: 1,048,576 lines of 100 bytes.
        for _ in 0..(100 << 20) / 100 {
            f.write_all(line.as_bytes()).expect("write");
        }
        f.flush().expect("flush");
        drop(f);
        let out = read_file(
            &ctx(&sb),
            &args(json!({"path": "huge.log", "start_line": 1_000_000, "end_line": 1_000_002})),
        );
        assert!(!out.is_error, "{}", out.text);
        assert_eq!(out.text.lines().count(), 3, "{}", out.text);
        assert!(out.text.starts_with("1000000\tzzz"));
        let out = read_file(&ctx(&sb), &args(json!({"path": "huge.log"})));
        assert!(out.text.contains("of a 100.0 MB file"), "{}", out.text);
    }

    #[test]
    fn single_huge_line_is_cut() {
        let (_d, sb) = setup();
        let s = "q".repeat(5_000_000);
        std::fs::write(sb.workspace().join("min.js"), &s).expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "min.js"})));
        assert!(
            out.text.contains("line cut, 5000000 bytes in total"),
            "{}",
            &out.text[..200]
        );
        assert!(out.text.len() < 3_000);
    }

    #[test]
    fn non_utf8_is_read_lossily_with_a_note() {
        let (_d, sb) = setup();
        std::fs::write(sb.workspace().join("latin1.txt"), b"caf\xe9\nok\n").expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "latin1.txt"})));
        assert!(!out.is_error);
        assert!(out.text.contains("not valid UTF-8"), "{}", out.text);
        assert!(out.text.contains("caf\u{FFFD}"));
        assert!(out.text.contains("     2\tok"));
    }

    #[test]
    fn binary_is_read_lossily_with_a_note() {
        let (_d, sb) = setup();
        std::fs::write(sb.workspace().join("x.bin"), b"\x00\x01ELF\xff\n").expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "x.bin"})));
        assert!(!out.is_error);
        assert!(out.text.contains("binary file"), "{}", out.text);
        assert!(!out.text.contains('\0'));
    }

    #[test]
    fn fifo_is_refused_not_blocking() {
        let (_d, sb) = setup();
        let fifo = sb.workspace().join("pipe");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(st.success());
        let out = read_file(&ctx(&sb), &args(json!({"path": "pipe"})));
        assert!(
            out.is_error && out.text.contains("not a regular file"),
            "{}",
            out.text
        );
    }

    #[test]
    fn crlf_is_shown_without_carriage_returns() {
        let (_d, sb) = setup();
        std::fs::write(sb.workspace().join("w.txt"), "a\r\nb\r\n").expect("write");
        let out = read_file(&ctx(&sb), &args(json!({"path": "w.txt"})));
        assert_eq!(out.text, "     1\ta\n     2\tb\n");
    }
}
