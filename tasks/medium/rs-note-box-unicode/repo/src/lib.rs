//! Renders sticky notes as fixed-width text boxes for the terminal UI.

pub mod layout;
pub mod wrap;

/// Renders a note: title, separator, then the body wrapped to `width`
/// characters, all inside a border. Every line of the result has
/// `width + 4` characters.
pub fn render_note(title: &str, body: &str, width: usize) -> String {
    let lines = wrap::wrap(body, width);
    layout::boxed(title, &lines, width)
}
