//! Tokens of InfluxQL. A `/` is division or the start of a regular expression depending on
//! where it stands, so the parser asks for a regular expression explicitly
//! ([`Lexer::regex`]) where the grammar allows one.

use std::fmt;

/// Nanoseconds per duration unit, as InfluxQL spells them.
const UNITS: &[(&str, i64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µ", 1_000),
    ("u", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A bare identifier or keyword (`SELECT`, `mean`, `host`).
    Ident(String),
    /// A double-quoted identifier (`"value"`): never a keyword.
    QuotedIdent(String),
    /// A single-quoted string (`'a'`).
    Str(String),
    /// An integer.
    Integer(i64),
    /// A number with a fraction or exponent.
    Number(f64),
    /// A duration (`5m`, `1700000000000ms`), in nanoseconds.
    Duration(i64),
    /// `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`, `=~`, `!~`, `+`, `-`, `*`, `/`, `%`.
    Op(&'static str),
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `;`.
    Semicolon,
    /// `.`.
    Dot,
    /// `::`.
    DoubleColon,
    /// The end of the text.
    Eof,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(text) => f.write_str(text),
            Token::QuotedIdent(text) => write!(f, "\"{text}\""),
            Token::Str(text) => write!(f, "'{text}'"),
            Token::Integer(n) => write!(f, "{n}"),
            Token::Number(x) => write!(f, "{x}"),
            Token::Duration(ns) => write!(f, "{ns}ns"),
            Token::Op(op) => f.write_str(op),
            Token::LParen => f.write_str("("),
            Token::RParen => f.write_str(")"),
            Token::Comma => f.write_str(","),
            Token::Semicolon => f.write_str(";"),
            Token::Dot => f.write_str("."),
            Token::DoubleColon => f.write_str("::"),
            Token::Eof => f.write_str("EOF"),
        }
    }
}

/// A token that cannot be read, with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at offset {offset}")]
pub struct LexError {
    /// What is wrong.
    pub reason: String,
    /// Where, in bytes from the start of the query.
    pub offset: usize,
}

/// Reads tokens from a query text.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    /// The byte offset of the next token.
    pub fn offset(&mut self) -> usize {
        self.skip_space();
        self.pos
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            // `--` comments to the end of the line; `/*` may start a regular expression.
            if trimmed.starts_with("--") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn error(&self, reason: impl Into<String>) -> LexError {
        LexError {
            reason: reason.into(),
            offset: self.pos,
        }
    }

    /// The next token, without consuming it.
    pub fn peek(&self) -> Result<Token, LexError> {
        self.clone().next_token()
    }

    /// Reads the next token.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        self.skip_space();
        let rest = self.rest();
        let Some(first) = rest.chars().next() else {
            return Ok(Token::Eof);
        };
        let two = rest.get(..2).unwrap_or("");
        for op in ["!=", "<>", "<=", ">=", "=~", "!~"] {
            if two == op {
                self.pos += 2;
                return Ok(Token::Op(op));
            }
        }
        if two == "::" {
            self.pos += 2;
            return Ok(Token::DoubleColon);
        }
        let single = match first {
            '=' => Some(Token::Op("=")),
            '<' => Some(Token::Op("<")),
            '>' => Some(Token::Op(">")),
            '+' => Some(Token::Op("+")),
            '-' => Some(Token::Op("-")),
            '*' => Some(Token::Op("*")),
            '/' => Some(Token::Op("/")),
            '%' => Some(Token::Op("%")),
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            ',' => Some(Token::Comma),
            ';' => Some(Token::Semicolon),
            _ => None,
        };
        if let Some(token) = single {
            self.pos += 1;
            return Ok(token);
        }
        if first == '.' && !rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            self.pos += 1;
            return Ok(Token::Dot);
        }
        if first == '"' {
            return self.quoted('"').map(Token::QuotedIdent);
        }
        if first == '\'' {
            return self.quoted('\'').map(Token::Str);
        }
        if first.is_ascii_digit() || first == '.' {
            return self.number();
        }
        if first.is_alphabetic() || first == '_' {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            self.pos += end;
            return Ok(Token::Ident(rest[..end].to_owned()));
        }
        Err(self.error(format!("unexpected character {first:?}")))
    }

    fn quoted(&mut self, quote: char) -> Result<String, LexError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((index, c)) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                }
            } else if c == quote {
                self.pos += index + 1;
                return Ok(out);
            } else if c == '\n' && quote == '"' {
                break;
            } else {
                out.push(c);
            }
        }
        self.pos = start;
        Err(self.error(if quote == '"' {
            "unterminated quoted identifier"
        } else {
            "unterminated string"
        }))
    }

    fn number(&mut self) -> Result<Token, LexError> {
        let rest = self.rest();
        let digits_end = |from: usize| {
            from + rest[from..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - from)
        };
        let mut end = digits_end(0);
        let mut is_float = false;
        if rest[end..].starts_with('.') && rest[end + 1..].starts_with(|c: char| c.is_ascii_digit())
        {
            end = digits_end(end + 1);
            is_float = true;
        }
        if rest[end..].starts_with(['e', 'E']) {
            let after_sign = end + 1 + usize::from(rest[end + 1..].starts_with(['+', '-']));
            if rest[after_sign..].starts_with(|c: char| c.is_ascii_digit()) {
                end = digits_end(after_sign);
                is_float = true;
            }
        }
        let text = &rest[..end];
        if !is_float {
            // A duration: digits directly followed by a unit and no other letter.
            let after = &rest[end..];
            let word_end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let word = &after[..word_end];
            if !word.is_empty() {
                let Some((_, per_unit)) = UNITS.iter().find(|(unit, _)| *unit == word) else {
                    return Err(self.error(format!("invalid duration unit {word:?}")));
                };
                let count: i64 = text
                    .parse()
                    .map_err(|_| self.error(format!("duration {text}{word} is out of range")))?;
                let ns = count
                    .checked_mul(*per_unit)
                    .ok_or_else(|| self.error(format!("duration {text}{word} is out of range")))?;
                self.pos += end + word_end;
                return Ok(Token::Duration(ns));
            }
            if let Ok(n) = text.parse::<i64>() {
                self.pos += end;
                return Ok(Token::Integer(n));
            }
        }
        let value: f64 = text
            .parse()
            .map_err(|_| self.error(format!("invalid number {text:?}")))?;
        self.pos += end;
        Ok(Token::Number(value))
    }

    /// Reads a regular expression `/…/` (`\/` stands for a slash), if one comes next.
    pub fn regex(&mut self) -> Result<Option<String>, LexError> {
        self.skip_space();
        let rest = self.rest();
        if !rest.starts_with('/') {
            return Ok(None);
        }
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '/')) => out.push('/'),
                    Some((_, escaped)) => {
                        out.push('\\');
                        out.push(escaped);
                    }
                    None => break,
                },
                '/' => {
                    self.pos += index + 1;
                    return Ok(Some(out));
                }
                _ => out.push(c),
            }
        }
        Err(self.error("unterminated regular expression"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            match lexer.next_token().unwrap_or(Token::Eof) {
                Token::Eof => return out,
                token => out.push(token),
            }
        }
    }

    #[test]
    fn durations_numbers_and_identifiers() {
        assert_eq!(
            tokens(r#"time >= 1700000000000ms and "host" = 'a\'b' 2.5 10 5m"#),
            vec![
                Token::Ident("time".into()),
                Token::Op(">="),
                Token::Duration(1_700_000_000_000_000_000),
                Token::Ident("and".into()),
                Token::QuotedIdent("host".into()),
                Token::Op("="),
                Token::Str("a'b".into()),
                Token::Number(2.5),
                Token::Integer(10),
                Token::Duration(300_000_000_000),
            ]
        );
    }

    #[test]
    fn a_regex_is_read_where_asked() {
        let mut lexer = Lexer::new(r" /^cpu\/[a-z]+$/ ");
        assert_eq!(lexer.regex(), Ok(Some(r"^cpu/[a-z]+$".into())));
        assert_eq!(lexer.next_token(), Ok(Token::Eof));
    }

    #[test]
    fn bad_units_and_unterminated_strings_are_errors() {
        assert!(Lexer::new("5x").next_token().is_err());
        assert!(Lexer::new("'open").next_token().is_err());
    }
}
