//! Head + tail truncation: the one truncator for tool output, gate output
//! shown to the model, and old observations elided to fit the context.
//!
//! A model reading a failing test run needs both ends: the command's start
//! (what ran) and its end (the failure summary). The middle is dropped and a
//! label says how much, so the model knows output is missing and can narrow
//! its next call.

/// Cuts `s` to about `limit` bytes: the head and the tail, each about half of
/// the budget, joined by a label saying how many bytes and lines were cut.
///
/// Returns `s` unchanged when it fits. Cuts land on line boundaries when one
/// is near (so no half lines are shown) and always on UTF-8 char boundaries.
pub fn head_tail(s: &str, limit: usize) -> String {
    head_tail_with(s, limit, |bytes, lines| {
        format!("[... {bytes} bytes ({lines} lines) cut from the middle of this output ...]")
    })
}

/// [`head_tail`] with the caller's label; `label(bytes_cut, lines_cut)`
/// gives the line put where the middle was (without its newline).
pub fn head_tail_with(s: &str, limit: usize, label: impl FnOnce(usize, usize) -> String) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let half = limit / 2;
    let head_end = head_cut(s, half);
    let tail_start = tail_cut(s, half).max(head_end);
    let cut = &s[head_end..tail_start];
    let cut_lines = cut.matches('\n').count();
    let mut out = String::with_capacity(head_end + (s.len() - tail_start) + 96);
    out.push_str(&s[..head_end]);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&label(cut.len(), cut_lines));
    out.push('\n');
    out.push_str(&s[tail_start..]);
    out
}

/// End of the head: at most `budget` bytes, preferring to end just after a
/// newline found in the last quarter of the budget.
fn head_cut(s: &str, budget: usize) -> usize {
    let mut end = floor_char_boundary(s, budget.min(s.len()));
    let window_start = floor_char_boundary(s, end - end / 4);
    if let Some(nl) = s[window_start..end].rfind('\n') {
        end = window_start + nl + 1;
    }
    end
}

/// Start of the tail: at most `budget` bytes before the end, preferring to
/// start just after a newline found in the first quarter of the tail.
fn tail_cut(s: &str, budget: usize) -> usize {
    let mut start = ceil_char_boundary(s, s.len().saturating_sub(budget));
    let window_end = ceil_char_boundary(s, start + (s.len() - start) / 4);
    if let Some(nl) = s[start..window_end].find('\n') {
        start = start + nl + 1;
    }
    start
}

/// Largest char boundary `<= i`.
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Smallest char boundary `>= i`.
pub(crate) fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_under_limit() {
        assert_eq!(head_tail("hello\nworld\n", 100), "hello\nworld\n");
        assert_eq!(head_tail("", 0), "");
        let exact = "x".repeat(50);
        assert_eq!(head_tail(&exact, 50), exact);
    }

    #[test]
    fn keeps_head_and_tail_with_label() {
        let s: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = head_tail(&s, 1000);
        assert!(out.starts_with("line 0\nline 1\n"), "{out}");
        assert!(out.ends_with("line 999\n"), "{out}");
        assert!(out.contains("bytes ("), "{out}");
        assert!(out.contains("cut from the middle"), "{out}");
        assert!(!out.contains("line 500\n"), "{out}");
        // Roughly the budget, plus the label.
        assert!(out.len() < 1000 + 120, "{}", out.len());
        // Label numbers add up.
        let label = out
            .lines()
            .find(|l| l.starts_with("[..."))
            .expect("label line");
        let cut_bytes: usize = label
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("byte count");
        let shown = out.len() - label.len() - 1;
        assert_eq!(shown + cut_bytes, s.len());
    }

    #[test]
    fn cuts_on_line_boundaries() {
        let s: String = (0..200).map(|i| format!("row-{i:04}\n")).collect();
        let out = head_tail(&s, 300);
        for line in out.lines() {
            assert!(
                line.starts_with("row-") && line.len() == 8 || line.starts_with("[..."),
                "partial line {line:?} in {out}"
            );
        }
    }

    #[test]
    fn utf8_safe_without_newlines() {
        let s = "é".repeat(5000) + &"日本".repeat(3000);
        for limit in [1, 2, 3, 7, 100, 1001, 4097] {
            let out = head_tail(&s, limit);
            assert!(out.contains("cut from the middle"));
            // It is a valid String by construction; also check content edges.
            assert!(out.len() <= limit + 100);
        }
        let out = head_tail(&s, 100);
        assert!(out.starts_with('é'));
        assert!(out.ends_with('本'));
    }

    #[test]
    fn tiny_limit_still_labels() {
        let out = head_tail("abcdefghij", 0);
        assert!(out.contains("10 bytes"), "{out}");
    }
}
