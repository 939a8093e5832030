//! Recursive-descent evaluation.
//!
//! Grammar (highest binding last):
//!   expr    := term (('+' | '-') term)*         left-associative
//!   term    := unary (('*' | '/') unary)*       left-associative
//!   unary   := '-' unary | power
//!   power   := primary ('^' unary)?             right-associative
//!   primary := number | '(' expr ')'

use crate::lexer::Token;
use crate::CalcError;

pub struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    pub fn new(tokens: Vec<(usize, Token)>, end: usize) -> Self {
        Parser { tokens, pos: 0, end }
    }

    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).map(|(_, t)| *t)
    }

    fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(p, _)| *p)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    /// Parses the whole input.
    pub fn parse_all(&mut self) -> Result<f64, CalcError> {
        if self.tokens.is_empty() {
            return Err(CalcError::Empty);
        }
        let v = self.expr()?;
        if self.peek().is_some() {
            return Err(CalcError::UnexpectedToken { pos: self.here() });
        }
        Ok(v)
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        let left = self.term()?;
        match self.peek() {
            Some(Token::Plus) => {
                self.bump();
                Ok(left + self.expr()?)
            }
            Some(Token::Minus) => {
                self.bump();
                Ok(left - self.expr()?)
            }
            _ => Ok(left),
        }
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some(Token::Star) => {
                    self.bump();
                    left *= self.unary()?;
                }
                Some(Token::Slash) => {
                    let pos = self.here();
                    self.bump();
                    let right = self.unary()?;
                    if right == 0.0 {
                        return Err(CalcError::DivisionByZero { pos });
                    }
                    left /= right;
                }
                _ => return Ok(left),
            }
        }
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        self.power()
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let mut base = self.primary()?;
        while self.peek() == Some(Token::Caret) {
            self.bump();
            let exp = self.primary()?;
            base = base.powf(exp);
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, CalcError> {
        let pos = self.here();
        match self.bump() {
            Some(Token::Num(n)) => Ok(n),
            Some(Token::Minus) => Ok(-self.primary()?),
            Some(Token::LParen) => {
                let v = self.expr()?;
                match self.bump() {
                    Some(Token::RParen) => Ok(v),
                    Some(_) => Err(CalcError::UnexpectedToken { pos: self.tokens[self.pos - 1].0 }),
                    None => Err(CalcError::UnexpectedEnd),
                }
            }
            Some(_) => Err(CalcError::UnexpectedToken { pos }),
            None => Err(CalcError::UnexpectedEnd),
        }
    }
}
