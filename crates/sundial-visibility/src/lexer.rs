//! Tokens of a list query. Positions are byte offsets just past each token, counted as
//! Temporal counts them: after the `select * from table1 where ` it puts in front.

use crate::QueryError;

/// What Temporal's server puts before the query it parses; its syntax errors count from there.
pub(crate) const PREFIX_LEN: usize = "select * from table1 where ".len();

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A name, bare or in backquotes (`quoted`).
    Ident {
        text: String,
        quoted: bool,
    },
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Minus,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub token: Token,
    /// Where the token ends, in the prefixed query.
    pub end: usize,
}

impl Token {
    /// Whether this is the keyword `word` (case-insensitive, never in backquotes).
    pub fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Token::Ident { text, quoted: false } if text.eq_ignore_ascii_case(word))
    }
}

pub(crate) fn syntax_error(position: usize) -> QueryError {
    QueryError(format!(
        "invalid query: malformed SQL query: syntax error at position {position}"
    ))
}

pub(crate) fn tokenize(query: &str) -> Result<Vec<Spanned>, QueryError> {
    let bytes = query.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    let end_of = |index: usize| PREFIX_LEN + index;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        let token = match byte {
            b'(' => {
                at += 1;
                Token::LParen
            }
            b')' => {
                at += 1;
                Token::RParen
            }
            b',' => {
                at += 1;
                Token::Comma
            }
            b'-' => {
                at += 1;
                Token::Minus
            }
            b'=' => {
                at += 1;
                Token::Op("=")
            }
            b'!' if bytes.get(at + 1) == Some(&b'=') => {
                at += 2;
                Token::Op("!=")
            }
            b'<' => match bytes.get(at + 1) {
                Some(b'=') => {
                    at += 2;
                    Token::Op("<=")
                }
                Some(b'>') => {
                    at += 2;
                    Token::Op("!=")
                }
                _ => {
                    at += 1;
                    Token::Op("<")
                }
            },
            b'>' => {
                if bytes.get(at + 1) == Some(&b'=') {
                    at += 2;
                    Token::Op(">=")
                } else {
                    at += 1;
                    Token::Op(">")
                }
            }
            b'\'' | b'"' => {
                let (text, next) = string(query, at).ok_or(syntax_error(end_of(bytes.len())))?;
                at = next;
                Token::Str(text)
            }
            b'`' => {
                let close = query[at + 1..]
                    .find('`')
                    .ok_or(syntax_error(end_of(bytes.len())))?;
                let text = query[at + 1..at + 1 + close].to_string();
                at += close + 2;
                Token::Ident { text, quoted: true }
            }
            b'0'..=b'9' | b'.' => {
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'.') {
                    at += 1;
                }
                let text = &query[start..at];
                if let Ok(int) = text.parse::<i64>() {
                    Token::Int(int)
                } else if let Ok(float) = text.parse::<f64>() {
                    Token::Float(float)
                } else {
                    return Err(syntax_error(end_of(at)));
                }
            }
            _ if byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80 => {
                while at < bytes.len()
                    && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at] >= 0x80)
                {
                    at += 1;
                }
                Token::Ident {
                    text: query[start..at].to_string(),
                    quoted: false,
                }
            }
            _ => return Err(syntax_error(end_of(at + 1))),
        };
        tokens.push(Spanned {
            token,
            end: end_of(at),
        });
    }
    Ok(tokens)
}

/// A quoted string starting at `start` (either quote), with MySQL's escapes: a doubled quote
/// and backslash escapes. Returns the text and the index after the closing quote.
fn string(query: &str, start: usize) -> Option<(String, usize)> {
    let quote = query.as_bytes()[start] as char;
    let mut text = String::new();
    let mut chars = query[start + 1..].char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next()?;
                text.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    other => other,
                });
            }
            c if c == quote => {
                if let Some((_, next)) = chars.peek()
                    && *next == quote
                {
                    chars.next();
                    text.push(quote);
                    continue;
                }
                return Some((text, start + 1 + offset + 1));
            }
            c => text.push(c),
        }
    }
    None
}
