//! A recursive-descent parser of the InfluxQL subset (see the crate's documentation).
//! Statements InfluxQL has but MyMonit does not answer parse as
//! [`Parsed::Unsupported`], so that the other statements of the query still run and that
//! one gets its own error, as InfluxDB gives per statement.

use crate::{
    ast::{
        BinaryOp, Expr, Field, Fill, GroupBy, GroupTags, KeyMatch, NameMatch, Page, Select, Source,
        Statement,
    },
    lexer::{LexError, Lexer, Token},
};

/// A query that does not parse, worded as InfluxDB words it (after `error parsing query: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at line {line}, char {column}")]
pub struct ParseError {
    /// What was found and what was expected.
    pub reason: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based character in the line.
    pub column: usize,
}

/// One statement of a query, or the reason MyMonit does not answer it.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A statement MyMonit answers.
    Statement(Statement),
    /// A statement outside the subset: the text says which.
    Unsupported(String),
}

/// Parses a query of one or more statements separated by `;`.
pub fn parse(text: &str) -> Result<Vec<Parsed>, ParseError> {
    let mut parser = Parser {
        lexer: Lexer::new(text),
        text,
    };
    let mut statements = Vec::new();
    loop {
        while parser.peek()? == Token::Semicolon {
            parser.next()?;
        }
        if parser.peek()? == Token::Eof {
            break;
        }
        statements.push(parser.statement()?);
        match parser.next()? {
            Token::Semicolon | Token::Eof => {}
            other => return Err(parser.unexpected(&other, "; or EOF")),
        }
    }
    if statements.is_empty() {
        return Err(parser.error_at(
            text.len(),
            "found EOF, expected SELECT, SHOW, CREATE".into(),
        ));
    }
    Ok(statements)
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    text: &'a str,
}

fn is_keyword(token: &Token, keyword: &str) -> bool {
    matches!(token, Token::Ident(word) if word.eq_ignore_ascii_case(keyword))
}

impl Parser<'_> {
    fn error_at(&self, offset: usize, reason: String) -> ParseError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            reason,
            line,
            column,
        }
    }

    fn lex_error(&self, err: LexError) -> ParseError {
        self.error_at(err.offset, err.reason)
    }

    fn peek(&mut self) -> Result<Token, ParseError> {
        self.lexer.peek().map_err(|err| self.lex_error(err))
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        self.lexer.next_token().map_err(|err| self.lex_error(err))
    }

    fn unexpected(&mut self, found: &Token, expected: &str) -> ParseError {
        let offset = self.lexer.offset();
        self.error_at(offset, format!("found {found}, expected {expected}"))
    }

    /// Consumes `keyword` if it comes next.
    fn accept(&mut self, keyword: &str) -> Result<bool, ParseError> {
        if is_keyword(&self.peek()?, keyword) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, keyword: &str) -> Result<(), ParseError> {
        let offset = self.lexer.offset();
        let token = self.next()?;
        if is_keyword(&token, keyword) {
            Ok(())
        } else {
            Err(self.error_at(offset, format!("found {token}, expected {keyword}")))
        }
    }

    fn expect_token(&mut self, wanted: Token) -> Result<(), ParseError> {
        let offset = self.lexer.offset();
        let token = self.next()?;
        if token == wanted {
            Ok(())
        } else {
            Err(self.error_at(offset, format!("found {token}, expected {wanted}")))
        }
    }

    /// An identifier, bare or quoted.
    fn ident(&mut self) -> Result<String, ParseError> {
        let offset = self.lexer.offset();
        match self.next()? {
            Token::Ident(name) | Token::QuotedIdent(name) => Ok(name),
            other => Err(self.error_at(offset, format!("found {other}, expected identifier"))),
        }
    }

    fn unsigned(&mut self) -> Result<usize, ParseError> {
        let offset = self.lexer.offset();
        match self.next()? {
            Token::Integer(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            other => Err(self.error_at(offset, format!("found {other}, expected integer"))),
        }
    }

    /// Skips the rest of a statement MyMonit does not answer.
    fn skip_statement(&mut self, what: String) -> Result<Parsed, ParseError> {
        while !matches!(self.peek()?, Token::Semicolon | Token::Eof) {
            if self
                .lexer
                .regex()
                .map_err(|err| self.lex_error(err))?
                .is_none()
            {
                self.next()?;
            }
        }
        Ok(Parsed::Unsupported(what))
    }

    fn statement(&mut self) -> Result<Parsed, ParseError> {
        let offset = self.lexer.offset();
        let token = self.next()?;
        if is_keyword(&token, "select") {
            return Ok(Parsed::Statement(Statement::Select(Box::new(
                self.select()?,
            ))));
        }
        if is_keyword(&token, "show") {
            return self.show();
        }
        if is_keyword(&token, "create") {
            if self.accept("database")? {
                let name = self.ident()?;
                // `WITH DURATION … REPLICATION … NAME …` changes nothing here.
                while !matches!(self.peek()?, Token::Semicolon | Token::Eof) {
                    self.next()?;
                }
                return Ok(Parsed::Statement(Statement::CreateDatabase { name }));
            }
            return self.skip_statement("CREATE statements other than CREATE DATABASE".into());
        }
        for keyword in [
            "drop", "delete", "alter", "grant", "revoke", "kill", "explain", "set",
        ] {
            if is_keyword(&token, keyword) {
                return self.skip_statement(format!("{} statements", keyword.to_uppercase()));
            }
        }
        Err(self.error_at(
            offset,
            format!(
                "found {token}, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL"
            ),
        ))
    }

    fn on_clause(&mut self) -> Result<Option<String>, ParseError> {
        Ok(if self.accept("on")? {
            Some(self.ident()?)
        } else {
            None
        })
    }

    fn page(&mut self) -> Result<Page, ParseError> {
        let mut page = Page::default();
        if self.accept("limit")? {
            page.limit = self.unsigned()?;
        }
        if self.accept("offset")? {
            page.offset = self.unsigned()?;
        }
        Ok(page)
    }

    fn condition(&mut self) -> Result<Option<Expr>, ParseError> {
        Ok(if self.accept("where")? {
            Some(self.expr(0)?)
        } else {
            None
        })
    }

    fn show(&mut self) -> Result<Parsed, ParseError> {
        let offset = self.lexer.offset();
        let token = self.next()?;
        let word = match &token {
            Token::Ident(word) => word.to_ascii_lowercase(),
            _ => String::new(),
        };
        match word.as_str() {
            "databases" => Ok(Parsed::Statement(Statement::ShowDatabases)),
            "measurements" => {
                let on = self.on_clause()?;
                let with = if self.accept("with")? {
                    self.expect("measurement")?;
                    let op_offset = self.lexer.offset();
                    match self.next()? {
                        Token::Op("=") => match self.lexer.regex().map_err(|e| self.lex_error(e))? {
                            Some(re) => Some(NameMatch::Regex(format!("^(?:{re})$"))),
                            None => Some(NameMatch::Equal(self.ident()?)),
                        },
                        Token::Op("=~") => Some(NameMatch::Regex(self.regex()?)),
                        other => {
                            return Err(
                                self.error_at(op_offset, format!("found {other}, expected =, =~"))
                            );
                        }
                    }
                } else {
                    None
                };
                let condition = self.condition()?;
                let page = self.page()?;
                Ok(Parsed::Statement(Statement::ShowMeasurements {
                    on,
                    with,
                    condition,
                    page,
                }))
            }
            "field" => {
                self.expect("keys")?;
                let on = self.on_clause()?;
                let from = self.sources_clause(false)?;
                let page = self.page()?;
                Ok(Parsed::Statement(Statement::ShowFieldKeys { on, from, page }))
            }
            "tag" => {
                if self.accept("keys")? {
                    let on = self.on_clause()?;
                    let from = self.sources_clause(false)?;
                    let condition = self.condition()?;
                    let page = self.page()?;
                    return Ok(Parsed::Statement(Statement::ShowTagKeys {
                        on,
                        from,
                        condition,
                        page,
                    }));
                }
                self.expect("values")?;
                let on = self.on_clause()?;
                let from = self.sources_clause(false)?;
                self.expect("with")?;
                self.expect("key")?;
                let op_offset = self.lexer.offset();
                let key = match self.next()? {
                    Token::Op("=") => KeyMatch::Equal(self.ident()?),
                    Token::Op("!=") | Token::Op("<>") => KeyMatch::NotEqual(self.ident()?),
                    Token::Op("=~") => KeyMatch::Regex(self.regex()?),
                    Token::Op("!~") => KeyMatch::NotRegex(self.regex()?),
                    Token::Ident(word) if word.eq_ignore_ascii_case("in") => {
                        self.expect_token(Token::LParen)?;
                        let mut keys = vec![self.ident()?];
                        while self.peek()? == Token::Comma {
                            self.next()?;
                            keys.push(self.ident()?);
                        }
                        self.expect_token(Token::RParen)?;
                        KeyMatch::In(keys)
                    }
                    other => {
                        return Err(self.error_at(
                            op_offset,
                            format!("found {other}, expected =, !=, =~, !~, IN"),
                        ));
                    }
                };
                let condition = self.condition()?;
                let page = self.page()?;
                Ok(Parsed::Statement(Statement::ShowTagValues {
                    on,
                    from,
                    key,
                    condition,
                    page,
                }))
            }
            "retention" => {
                self.expect("policies")?;
                let on = self.on_clause()?;
                Ok(Parsed::Statement(Statement::ShowRetentionPolicies { on }))
            }
            "series" | "continuous" | "diagnostics" | "grants" | "queries" | "shard"
            | "shards" | "stats" | "subscriptions" | "users" => {
                let what = match word.as_str() {
                    "shard" => "SHOW SHARD GROUPS".to_owned(),
                    "continuous" => "SHOW CONTINUOUS QUERIES".to_owned(),
                    other => format!("SHOW {}", other.to_uppercase()),
                };
                self.skip_statement(what)
            }
            _ => Err(self.error_at(
                offset,
                format!(
                    "found {token}, expected CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, SUBSCRIPTIONS, TAG, USERS"
                ),
            )),
        }
    }

    fn regex(&mut self) -> Result<String, ParseError> {
        let offset = self.lexer.offset();
        match self.lexer.regex().map_err(|err| self.lex_error(err))? {
            Some(re) => Ok(re),
            None => {
                let found = self.next()?;
                Err(self.error_at(offset, format!("found {found}, expected regex")))
            }
        }
    }

    /// `FROM source[, source…]`; required in `SELECT`.
    fn sources_clause(&mut self, required: bool) -> Result<Vec<Source>, ParseError> {
        if !self.accept("from")? {
            if required {
                let found = self.peek()?;
                return Err(self.unexpected(&found, "FROM"));
            }
            return Ok(Vec::new());
        }
        let mut sources = vec![self.source()?];
        while self.peek()? == Token::Comma {
            self.next()?;
            sources.push(self.source()?);
        }
        Ok(sources)
    }

    fn source(&mut self) -> Result<Source, ParseError> {
        if let Some(re) = self.lexer.regex().map_err(|err| self.lex_error(err))? {
            return Ok(Source::Regex(re));
        }
        let mut parts = vec![self.ident()?];
        while self.peek()? == Token::Dot {
            self.next()?;
            // `db..m`: the default retention policy.
            if self.peek()? == Token::Dot {
                parts.push(String::new());
                continue;
            }
            if let Some(re) = self.lexer.regex().map_err(|err| self.lex_error(err))? {
                return Ok(Source::Regex(re));
            }
            parts.push(self.ident()?);
        }
        let name = parts.pop().unwrap_or_default();
        let retention_policy = parts.pop().filter(|rp| !rp.is_empty());
        let database = parts.pop();
        if !parts.is_empty() {
            let found = self.peek()?;
            return Err(self.unexpected(&found, "at most database.retention_policy.measurement"));
        }
        Ok(Source::Measurement {
            database,
            retention_policy,
            name,
        })
    }

    fn select(&mut self) -> Result<Select, ParseError> {
        let mut fields = vec![self.field()?];
        while self.peek()? == Token::Comma {
            self.next()?;
            fields.push(self.field()?);
        }
        if is_keyword(&self.peek()?, "into") {
            let found = self.peek()?;
            return Err(self.unexpected(&found, "FROM (SELECT … INTO is not supported)"));
        }
        let from = self.sources_clause(true)?;
        let condition = self.condition()?;
        let mut select = Select {
            fields,
            from,
            condition,
            group_by: GroupBy::default(),
            fill: Fill::Null,
            descending: false,
            page: Page::default(),
            series_page: Page::default(),
            tz: None,
        };
        if self.accept("group")? {
            self.expect("by")?;
            self.group_by(&mut select.group_by)?;
        }
        if self.accept("fill")? {
            select.fill = self.fill()?;
        }
        if self.accept("order")? {
            self.expect("by")?;
            let name = self.ident()?;
            if !name.eq_ignore_ascii_case("time") {
                let found = Token::Ident(name);
                return Err(self.unexpected(&found, "time (only ORDER BY time is supported)"));
            }
            if self.accept("desc")? {
                select.descending = true;
            } else {
                self.accept("asc")?;
            }
        }
        select.page = self.page()?;
        if self.accept("slimit")? {
            select.series_page.limit = self.unsigned()?;
        }
        if self.accept("soffset")? {
            select.series_page.offset = self.unsigned()?;
        }
        if self.accept("tz")? {
            self.expect_token(Token::LParen)?;
            let offset = self.lexer.offset();
            match self.next()? {
                Token::Str(zone) => select.tz = Some(zone),
                other => {
                    return Err(self.error_at(offset, format!("found {other}, expected string")));
                }
            }
            self.expect_token(Token::RParen)?;
        }
        Ok(select)
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let expr = self.expr(0)?;
        let alias = if self.accept("as")? {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(Field { expr, alias })
    }

    fn group_by(&mut self, group_by: &mut GroupBy) -> Result<(), ParseError> {
        loop {
            let offset = self.lexer.offset();
            match self.next()? {
                Token::Op("*") => group_by.tags = GroupTags::All,
                Token::Ident(word)
                    if word.eq_ignore_ascii_case("time") && self.peek()? == Token::LParen =>
                {
                    self.next()?;
                    let interval = self.duration()?;
                    if interval <= 0 {
                        return Err(self.error_at(
                            offset,
                            "time dimension must have a positive interval".into(),
                        ));
                    }
                    let mut shift = 0;
                    if self.peek()? == Token::Comma {
                        self.next()?;
                        let negative = self.peek()? == Token::Op("-");
                        if negative {
                            self.next()?;
                        }
                        let offset_offset = self.lexer.offset();
                        shift = match self.next()? {
                            Token::Duration(ns) => ns,
                            Token::Ident(word) if word.eq_ignore_ascii_case("now") => {
                                self.expect_token(Token::LParen)?;
                                self.expect_token(Token::RParen)?;
                                return Err(self.error_at(
                                    offset_offset,
                                    "GROUP BY time(…, now()) is not supported".into(),
                                ));
                            }
                            other => {
                                return Err(self.error_at(
                                    offset_offset,
                                    format!("found {other}, expected duration"),
                                ));
                            }
                        };
                        if negative {
                            shift = -shift;
                        }
                    }
                    self.expect_token(Token::RParen)?;
                    group_by.time = Some((interval, shift));
                }
                Token::Ident(name) | Token::QuotedIdent(name) => {
                    self.skip_cast()?;
                    match &mut group_by.tags {
                        GroupTags::Keys(keys) => keys.push(name),
                        tags @ GroupTags::None => *tags = GroupTags::Keys(vec![name]),
                        GroupTags::All => {}
                    }
                }
                Token::Duration(_) | Token::Integer(_) => {
                    return Err(
                        self.error_at(offset, "only time() calls allowed in dimensions".into())
                    );
                }
                other => {
                    if let Some(_re) = self.lexer.regex().map_err(|err| self.lex_error(err))? {
                        return Err(self.error_at(
                            offset,
                            "GROUP BY /regex/ is not supported: name the tags".into(),
                        ));
                    }
                    return Err(
                        self.error_at(offset, format!("found {other}, expected identifier"))
                    );
                }
            }
            if self.peek()? != Token::Comma {
                return Ok(());
            }
            self.next()?;
        }
    }

    fn duration(&mut self) -> Result<i64, ParseError> {
        let offset = self.lexer.offset();
        match self.next()? {
            Token::Duration(ns) => Ok(ns),
            other => Err(self.error_at(offset, format!("found {other}, expected duration"))),
        }
    }

    fn fill(&mut self) -> Result<Fill, ParseError> {
        self.expect_token(Token::LParen)?;
        let offset = self.lexer.offset();
        let negative = self.peek()? == Token::Op("-");
        if negative {
            self.next()?;
        }
        let sign = if negative { -1.0 } else { 1.0 };
        let fill = match self.next()? {
            Token::Ident(word) if !negative && word.eq_ignore_ascii_case("null") => Fill::Null,
            Token::Ident(word) if !negative && word.eq_ignore_ascii_case("none") => Fill::None,
            Token::Ident(word) if !negative && word.eq_ignore_ascii_case("previous") => {
                Fill::Previous
            }
            Token::Ident(word) if !negative && word.eq_ignore_ascii_case("linear") => Fill::Linear,
            Token::Integer(n) => Fill::Number(sign * n as f64),
            Token::Number(x) => Fill::Number(sign * x),
            other => {
                return Err(self.error_at(
                    offset,
                    format!("found {other}, expected null, none, previous, linear or a number"),
                ));
            }
        };
        self.expect_token(Token::RParen)?;
        Ok(fill)
    }

    /// Skips a `::field` or `::tag` hint.
    fn skip_cast(&mut self) -> Result<(), ParseError> {
        if self.peek()? == Token::DoubleColon {
            self.next()?;
            self.ident()?;
        }
        Ok(())
    }

    fn binary_op(&mut self) -> Result<Option<BinaryOp>, ParseError> {
        Ok(Some(match self.peek()? {
            Token::Op("=") => BinaryOp::Eq,
            Token::Op("!=") | Token::Op("<>") => BinaryOp::NotEq,
            Token::Op("<") => BinaryOp::Lt,
            Token::Op("<=") => BinaryOp::LtEq,
            Token::Op(">") => BinaryOp::Gt,
            Token::Op(">=") => BinaryOp::GtEq,
            Token::Op("=~") => BinaryOp::Match,
            Token::Op("!~") => BinaryOp::NotMatch,
            Token::Op("+") => BinaryOp::Add,
            Token::Op("-") => BinaryOp::Sub,
            Token::Op("*") => BinaryOp::Mul,
            Token::Op("/") => BinaryOp::Div,
            ref word if is_keyword(word, "and") => BinaryOp::And,
            ref word if is_keyword(word, "or") => BinaryOp::Or,
            _ => return Ok(None),
        }))
    }

    /// An expression whose operators bind tighter than `min` (precedence climbing).
    fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while let Some(op) = self.binary_op()? {
            let precedence = op.precedence();
            if precedence <= min {
                break;
            }
            self.next()?;
            let right = if matches!(op, BinaryOp::Match | BinaryOp::NotMatch) {
                Expr::Regex(self.regex()?)
            } else {
                self.expr(precedence)?
            };
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let offset = self.lexer.offset();
        // A regex where a value stands (`host = /a/` is InfluxQL too).
        if let Some(re) = self.lexer.regex().map_err(|err| self.lex_error(err))? {
            return Ok(Expr::Regex(re));
        }
        let token = self.next()?;
        Ok(match token {
            Token::Op("-") => match self.unary()? {
                Expr::Integer(n) => Expr::Integer(-n),
                Expr::Number(x) => Expr::Number(-x),
                Expr::Duration(ns) => Expr::Duration(-ns),
                other => Expr::Binary {
                    op: BinaryOp::Mul,
                    left: Box::new(Expr::Integer(-1)),
                    right: Box::new(other),
                },
            },
            Token::Op("+") => self.unary()?,
            Token::Op("*") => Expr::Wildcard,
            Token::LParen => {
                let inner = self.expr(0)?;
                self.expect_token(Token::RParen)?;
                inner
            }
            Token::Integer(n) => Expr::Integer(n),
            Token::Number(x) => Expr::Number(x),
            Token::Duration(ns) => Expr::Duration(ns),
            Token::Str(text) => Expr::Str(text),
            Token::QuotedIdent(name) => {
                self.skip_cast()?;
                Expr::VarRef(name)
            }
            Token::Ident(name) => {
                if self.peek()? == Token::LParen {
                    self.next()?;
                    let name = name.to_ascii_lowercase();
                    let mut args = Vec::new();
                    if self.peek()? != Token::RParen {
                        args.push(self.expr(0)?);
                        while self.peek()? == Token::Comma {
                            self.next()?;
                            args.push(self.expr(0)?);
                        }
                    }
                    self.expect_token(Token::RParen)?;
                    if name == "now" && args.is_empty() {
                        Expr::Now
                    } else {
                        Expr::Call { name, args }
                    }
                } else if name.eq_ignore_ascii_case("true") {
                    Expr::Bool(true)
                } else if name.eq_ignore_ascii_case("false") {
                    Expr::Bool(false)
                } else {
                    self.skip_cast()?;
                    Expr::VarRef(name)
                }
            }
            other => {
                return Err(self.error_at(
                    offset,
                    format!("found {other}, expected identifier, string, number, bool"),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Statement {
        match parse(text) {
            Ok(mut statements) if statements.len() == 1 => match statements.remove(0) {
                Parsed::Statement(statement) => statement,
                other => panic!("{text}: {other:?}"),
            },
            other => panic!("{text}: {other:?}"),
        }
    }

    fn select(text: &str) -> Select {
        match one(text) {
            Statement::Select(select) => *select,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn grafanas_default_query() {
        let select = select(
            r#"SELECT mean("value") FROM "hertz" WHERE ("host" = 'a') AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(1m) fill(null)"#,
        );
        assert_eq!(
            select.fields,
            vec![Field {
                expr: Expr::Call {
                    name: "mean".into(),
                    args: vec![Expr::VarRef("value".into())]
                },
                alias: None
            }]
        );
        assert_eq!(
            select.from,
            vec![Source::Measurement {
                database: None,
                retention_policy: None,
                name: "hertz".into()
            }]
        );
        assert_eq!(select.group_by.time, Some((60_000_000_000, 0)));
        assert_eq!(select.fill, Fill::Null);
        assert!(select.condition.is_some());
    }

    #[test]
    fn every_clause() {
        let select = select(
            r#"select percentile("value", 95) * 2 AS p, max(value) from "autogen"."cpu" where host =~ /^a/ and time > now() - 6h group by time(5m, -1m), "host"::tag, region fill(-1.5) order by time desc limit 10 offset 2 slimit 3 soffset 1 tz('Europe/Zurich')"#,
        );
        assert_eq!(select.fields.len(), 2);
        assert_eq!(select.fields[0].alias.as_deref(), Some("p"));
        assert_eq!(
            select.from,
            vec![Source::Measurement {
                database: None,
                retention_policy: Some("autogen".into()),
                name: "cpu".into()
            }]
        );
        assert_eq!(
            select.group_by.time,
            Some((300_000_000_000, -60_000_000_000))
        );
        assert_eq!(
            select.group_by.tags,
            GroupTags::Keys(vec!["host".into(), "region".into()])
        );
        assert_eq!(select.fill, Fill::Number(-1.5));
        assert!(select.descending);
        assert_eq!(
            select.page,
            Page {
                limit: 10,
                offset: 2
            }
        );
        assert_eq!(
            select.series_page,
            Page {
                limit: 3,
                offset: 1
            }
        );
        assert_eq!(select.tz.as_deref(), Some("Europe/Zurich"));
    }

    #[test]
    fn show_statements() {
        assert_eq!(one("SHOW DATABASES"), Statement::ShowDatabases);
        assert_eq!(
            one("SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)her/ LIMIT 100"),
            Statement::ShowMeasurements {
                on: None,
                with: Some(NameMatch::Regex("(?i)her".into())),
                condition: None,
                page: Page {
                    limit: 100,
                    offset: 0
                }
            }
        );
        assert_eq!(
            one(r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region" = 'eu'"#),
            Statement::ShowTagValues {
                on: None,
                from: vec![Source::Measurement {
                    database: None,
                    retention_policy: None,
                    name: "cpu".into()
                }],
                key: KeyMatch::Equal("host".into()),
                condition: Some(Expr::Binary {
                    op: BinaryOp::Eq,
                    left: Box::new(Expr::VarRef("region".into())),
                    right: Box::new(Expr::Str("eu".into()))
                }),
                page: Page::default()
            }
        );
        assert_eq!(
            one("show retention policies on \"lab\""),
            Statement::ShowRetentionPolicies {
                on: Some("lab".into())
            }
        );
        assert_eq!(
            one(r#"CREATE DATABASE "telegraf""#),
            Statement::CreateDatabase {
                name: "telegraf".into()
            }
        );
    }

    #[test]
    fn several_statements_and_unsupported_ones() {
        let parsed = parse("SHOW DATABASES; SHOW SERIES FROM cpu; DROP MEASUREMENT cpu;")
            .unwrap_or_default();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1], Parsed::Unsupported("SHOW SERIES".into()));
        assert_eq!(parsed[2], Parsed::Unsupported("DROP statements".into()));
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = parse("SELECT mean(value) FRM cpu").err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("found FRM, expected FROM at line 1, char 20".into())
        );
        assert!(parse("SELECT").is_err());
        assert!(parse("").is_err());
        assert!(parse("SELECT * FROM cpu GROUP BY time(0s)").is_err());
    }

    #[test]
    fn precedence() {
        let select = select("SELECT a FROM m WHERE a = 'x' OR b = 'y' AND c = 'z'");
        let Some(Expr::Binary { op, .. }) = select.condition else {
            panic!("no condition");
        };
        assert_eq!(op, BinaryOp::Or);
    }
}
