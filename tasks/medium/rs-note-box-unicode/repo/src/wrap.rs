//! Greedy word wrapping.

/// Wraps `text` into lines of at most `width` characters. Words are
/// separated by whitespace; a word longer than `width` is split.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    assert!(width > 0, "width must be positive");
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word[..width].to_string());
            word = &word[width..];
        }
        if word.is_empty() {
            continue;
        }
        if line.is_empty() {
            line.push_str(word);
        } else if line.len() + 1 + word.len() <= width {
            line.push(' ');
            line.push_str(word);
        } else {
            lines.push(std::mem::take(&mut line));
            line.push_str(word);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
