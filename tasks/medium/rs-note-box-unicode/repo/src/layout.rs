//! Drawing the border around a note.

/// `s` followed by spaces up to `width` characters.
fn pad(s: &str, width: usize) -> String {
    let mut out = s.to_string();
    out.push_str(&" ".repeat(width.saturating_sub(s.len())));
    out
}

/// At most the first `width` characters of `s`.
fn clip(s: &str, width: usize) -> &str {
    if s.len() <= width {
        s
    } else {
        &s[..width]
    }
}

/// Title row, separator and `lines`, inside a `+--+` border.
pub fn boxed(title: &str, lines: &[String], width: usize) -> String {
    let border = format!("+{}+\n", "-".repeat(width + 2));
    let mut out = border.clone();
    out.push_str(&format!("| {} |\n", pad(clip(title, width), width)));
    out.push_str(&border);
    for line in lines {
        out.push_str(&format!("| {} |\n", pad(line, width)));
    }
    out.push_str(&border);
    out
}
