//! The grammar of list queries (Temporal's SQL visibility dialect) into an untyped tree:
//!
//! ```text
//! query     := [or_expr] [GROUP BY name {, name}] [ORDER BY name [ASC|DESC] {, ...}] [LIMIT n]
//! or_expr   := and_expr {OR and_expr}
//! and_expr  := unary {AND unary}
//! unary     := NOT unary | '(' or_expr ')' | predicate
//! predicate := name cmp value | name [NOT] IN (value, ...) | name [NOT] BETWEEN value AND value
//!            | name [NOT] STARTS_WITH value | name [NOT] LIKE value | name IS [NOT] NULL
//! ```

use crate::QueryError;
use crate::lexer::{Spanned, Token, syntax_error, tokenize};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A bare name where a value belongs.
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Predicate {
    Cmp(&'static str, Literal),
    In(Vec<Literal>),
    Between(Literal, Literal),
    StartsWith(Literal),
    Like,
    IsNull,
    /// A name alone, with no operator.
    Bare,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `negated` is the `NOT` inside the predicate (`NOT IN`, `IS NOT NULL`, ...).
    Pred {
        name: String,
        negated: bool,
        predicate: Predicate,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub filter: Option<Expr>,
    pub group_by: Vec<String>,
    pub order_by: bool,
    pub limit: bool,
}

pub(crate) fn parse(query: &str) -> Result<Parsed, QueryError> {
    let tokens = tokenize(query)?;
    let end = crate::lexer::PREFIX_LEN + query.len();
    let mut parser = Parser { tokens, at: 0, end };
    let mut parsed = Parsed::default();
    if !parser.peek_keyword("group") && !parser.peek_keyword("order") && !parser.done() {
        parsed.filter = Some(parser.or_expr()?);
    }
    if parser.eat_keyword("group") {
        parser.expect_keyword("by")?;
        loop {
            parsed.group_by.push(parser.name()?);
            if !parser.eat(&Token::Comma) {
                break;
            }
        }
    }
    if parser.eat_keyword("order") {
        parser.expect_keyword("by")?;
        loop {
            parser.name()?;
            if !parser.eat_keyword("asc") {
                parser.eat_keyword("desc");
            }
            if !parser.eat(&Token::Comma) {
                break;
            }
        }
        parsed.order_by = true;
    }
    if parser.eat_keyword("limit") {
        match parser.next() {
            Some(Token::Int(_)) => parsed.limit = true,
            _ => return Err(parser.error()),
        }
    }
    if !parser.done() {
        parser.at += 1;
        return Err(parser.error());
    }
    Ok(parsed)
}

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    end: usize,
}

const RESERVED: [&str; 14] = [
    "and", "or", "not", "in", "between", "is", "null", "like", "group", "order", "by", "limit",
    "true", "false",
];

impl Parser {
    fn done(&self) -> bool {
        self.at >= self.tokens.len()
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|spanned| &spanned.token)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.peek().cloned();
        if token.is_some() {
            self.at += 1;
        }
        token
    }

    /// A syntax error at the token just taken (or at the end when there was none).
    fn error(&self) -> QueryError {
        let position = match self.at.checked_sub(1).and_then(|at| self.tokens.get(at)) {
            Some(spanned) if self.at <= self.tokens.len() => spanned.end,
            _ => self.end,
        };
        syntax_error(position)
    }

    fn eof_error(&self) -> QueryError {
        syntax_error(self.end)
    }

    fn peek_keyword(&self, word: &str) -> bool {
        self.peek().is_some_and(|token| token.is_keyword(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.peek_keyword(word);
        if found {
            self.at += 1;
        }
        found
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek() == Some(token);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), QueryError> {
        if self.eat_keyword(word) {
            return Ok(());
        }
        self.fail()
    }

    fn fail<T>(&mut self) -> Result<T, QueryError> {
        if self.done() {
            return Err(self.eof_error());
        }
        self.at += 1;
        Err(self.error())
    }

    fn name(&mut self) -> Result<String, QueryError> {
        match self.peek() {
            Some(Token::Ident { text, quoted: true }) => {
                let text = text.clone();
                self.at += 1;
                Ok(text)
            }
            Some(Token::Ident {
                text,
                quoted: false,
            }) if !RESERVED.iter().any(|word| text.eq_ignore_ascii_case(word)) => {
                let text = text.clone();
                self.at += 1;
                Ok(text)
            }
            _ => self.fail(),
        }
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and_expr()?;
        while self.eat_keyword("or") {
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.eat_keyword("and") {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat(&Token::LParen) {
            let inner = self.or_expr()?;
            if !self.eat(&Token::RParen) {
                return self.fail();
            }
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, QueryError> {
        let name = self.name()?;
        let pred = |negated, predicate| Expr::Pred {
            name: name.clone(),
            negated,
            predicate,
        };
        if let Some(Token::Op(op)) = self.peek() {
            let op = *op;
            self.at += 1;
            let value = self.value()?;
            return Ok(pred(false, Predicate::Cmp(op, value)));
        }
        if self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            self.expect_keyword("null")?;
            return Ok(pred(negated, Predicate::IsNull));
        }
        let negated = self.eat_keyword("not");
        if self.eat_keyword("in") {
            if !self.eat(&Token::LParen) {
                return self.fail();
            }
            let mut values = vec![self.value()?];
            while self.eat(&Token::Comma) {
                values.push(self.value()?);
            }
            if !self.eat(&Token::RParen) {
                return self.fail();
            }
            return Ok(pred(negated, Predicate::In(values)));
        }
        if self.eat_keyword("between") {
            let low = self.value()?;
            self.expect_keyword("and")?;
            let high = self.value()?;
            return Ok(pred(negated, Predicate::Between(low, high)));
        }
        if self.eat_keyword("starts_with") {
            let value = self.value()?;
            return Ok(pred(negated, Predicate::StartsWith(value)));
        }
        if self.eat_keyword("like") {
            self.value()?;
            return Ok(pred(negated, Predicate::Like));
        }
        if negated {
            return self.fail();
        }
        match self.peek() {
            None | Some(Token::RParen) => Ok(pred(false, Predicate::Bare)),
            Some(token)
                if ["and", "or", "group", "order", "limit"]
                    .iter()
                    .any(|word| token.is_keyword(word)) =>
            {
                Ok(pred(false, Predicate::Bare))
            }
            _ => self.fail(),
        }
    }

    fn value(&mut self) -> Result<Literal, QueryError> {
        let negative = self.eat(&Token::Minus);
        let literal = match self.next() {
            Some(Token::Str(text)) if !negative => Literal::Str(text),
            Some(Token::Int(int)) => Literal::Int(if negative { -int } else { int }),
            Some(Token::Float(float)) => Literal::Float(if negative { -float } else { float }),
            Some(Token::Ident { text, quoted }) if !negative => {
                if !quoted && text.eq_ignore_ascii_case("true") {
                    Literal::Bool(true)
                } else if !quoted && text.eq_ignore_ascii_case("false") {
                    Literal::Bool(false)
                } else if !quoted && RESERVED.iter().any(|word| text.eq_ignore_ascii_case(word)) {
                    return Err(self.error());
                } else {
                    Literal::Name(text)
                }
            }
            None => return Err(self.eof_error()),
            Some(_) => return Err(self.error()),
        };
        Ok(literal)
    }
}
