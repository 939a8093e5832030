//! Tokens of the calculator language.

use crate::CalcError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token {
    Num(f64),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    LParen,
    RParen,
}

/// Splits `input` into tokens; whitespace is ignored.
pub fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, CalcError> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let tok = match c {
            ' ' | '\t' => {
                i += 1;
                continue;
            }
            '+' => Token::Plus,
            '-' => Token::Minus,
            '*' => Token::Star,
            '/' => Token::Slash,
            '^' => Token::Caret,
            '(' => Token::LParen,
            ')' => Token::RParen,
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|(_, c)| c).collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| CalcError::BadNumber { pos, text: text.clone() })?;
                out.push((pos, Token::Num(n)));
                continue;
            }
            other => return Err(CalcError::UnexpectedChar { pos, ch: other }),
        };
        out.push((pos, tok));
        i += 1;
    }
    Ok(out)
}
