//! A small calculator for the spreadsheet formula bar: numbers, `+ - * / ^`,
//! unary minus and parentheses, with the usual mathematical precedence.

mod lexer;
mod parser;

/// Why an expression could not be evaluated; `pos` is a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub enum CalcError {
    Empty,
    UnexpectedChar { pos: usize, ch: char },
    BadNumber { pos: usize, text: String },
    UnexpectedToken { pos: usize },
    UnexpectedEnd,
    DivisionByZero { pos: usize },
}

/// Evaluates `input`.
///
/// Precedence, loosest first: `+ -` (left-assoc), `* /` (left-assoc),
/// unary `-`, `^` (right-assoc). So `-2^2 = -4`, `2^3^2 = 512`,
/// `2^-1 = 0.5` and `8-3-2 = 3`.
pub fn eval(input: &str) -> Result<f64, CalcError> {
    let tokens = lexer::tokenize(input)?;
    parser::Parser::new(tokens, input.len()).parse_all()
}
