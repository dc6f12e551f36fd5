//! `WHERE`: the time range it bounds and the condition on tags it leaves, compiled once so
//! that each series is tested without parsing regular expressions again.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use regex::Regex;

use crate::{
    QueryError,
    ast::{BinaryOp, Expr},
};

/// A time range: inclusive lower bound, inclusive upper bound (InfluxDB's `StartTime` and
/// `EndTime`), nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// `time >= from`.
    pub from: Option<i64>,
    /// `time <= to`.
    pub to: Option<i64>,
}

impl TimeRange {
    /// Whether no time can satisfy it.
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if from > to)
    }

    fn lower(&mut self, bound: i64) {
        self.from = Some(self.from.map_or(bound, |from| from.max(bound)));
    }

    fn upper(&mut self, bound: i64) {
        self.to = Some(self.to.map_or(bound, |to| to.min(bound)));
    }
}

fn is_time(expr: &Expr) -> bool {
    matches!(expr, Expr::VarRef(name) if name.eq_ignore_ascii_case("time"))
}

fn mentions_time(expr: &Expr) -> bool {
    match expr {
        Expr::Binary { left, right, .. } => mentions_time(left) || mentions_time(right),
        other => is_time(other),
    }
}

/// The value of a time expression: `now()`, durations and integers (nanoseconds), RFC 3339
/// strings, `+` and `-` between them.
pub fn time_value(expr: &Expr, now: i64) -> Result<i64, QueryError> {
    let invalid = || QueryError::new(format!("invalid time expression: {expr}"));
    match expr {
        Expr::Now => Ok(now),
        Expr::Duration(ns) | Expr::Integer(ns) => Ok(*ns),
        Expr::Number(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Ok(*x as i64),
        Expr::Str(text) => parse_time_string(text).ok_or_else(|| {
            QueryError::new(format!(
                "invalid time string {text:?}: use RFC 3339 (2024-01-02T03:04:05Z)"
            ))
        }),
        Expr::Binary { op, left, right } => {
            let (left, right) = (time_value(left, now)?, time_value(right, now)?);
            match op {
                BinaryOp::Add => left.checked_add(right).ok_or_else(invalid),
                BinaryOp::Sub => left.checked_sub(right).ok_or_else(invalid),
                _ => Err(invalid()),
            }
        }
        _ => Err(invalid()),
    }
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM:SS[.fff]]` read as UTC, as InfluxDB reads time strings.
pub fn parse_time_string(text: &str) -> Option<i64> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return time.timestamp_nanos_opt();
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return time.and_utc().timestamp_nanos_opt();
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .and_then(|time| time.and_utc().timestamp_nanos_opt())
}

/// Splits a `WHERE` into the time range its top-level `AND`s bound and the rest.
pub fn split_time(
    condition: Option<&Expr>,
    now: i64,
) -> Result<(TimeRange, Option<Expr>), QueryError> {
    let mut range = TimeRange::default();
    let Some(condition) = condition else {
        return Ok((range, None));
    };
    let rest = take_time(condition, now, &mut range)?;
    Ok((range, rest))
}

fn take_time(expr: &Expr, now: i64, range: &mut TimeRange) -> Result<Option<Expr>, QueryError> {
    let Expr::Binary { op, left, right } = expr else {
        return Ok(Some(expr.clone()));
    };
    match op {
        BinaryOp::And => {
            let left = take_time(left, now, range)?;
            let right = take_time(right, now, range)?;
            Ok(match (left, right) {
                (Some(left), Some(right)) => Some(Expr::Binary {
                    op: BinaryOp::And,
                    left: Box::new(left),
                    right: Box::new(right),
                }),
                (one, None) | (None, one) => one,
            })
        }
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq
            if is_time(left) || is_time(right) =>
        {
            // `t op time` reads as `time op' t`.
            let (op, value) = if is_time(left) {
                (*op, right.as_ref())
            } else {
                let flipped = match op {
                    BinaryOp::Lt => BinaryOp::Gt,
                    BinaryOp::LtEq => BinaryOp::GtEq,
                    BinaryOp::Gt => BinaryOp::Lt,
                    BinaryOp::GtEq => BinaryOp::LtEq,
                    other => *other,
                };
                (flipped, left.as_ref())
            };
            let t = time_value(value, now)?;
            match op {
                BinaryOp::GtEq => range.lower(t),
                BinaryOp::Gt => range.lower(t.saturating_add(1)),
                BinaryOp::LtEq => range.upper(t),
                BinaryOp::Lt => range.upper(t.saturating_sub(1)),
                BinaryOp::Eq => {
                    range.lower(t);
                    range.upper(t);
                }
                _ => {
                    return Err(QueryError::new(
                        "time != … is not supported: bound time with >, >=, < or <=",
                    ));
                }
            }
            Ok(None)
        }
        _ if mentions_time(expr) => Err(QueryError::new(
            "invalid time condition: time may only be compared, in conditions joined by AND",
        )),
        _ => Ok(Some(expr.clone())),
    }
}

/// A condition on tags, ready to test series. A tag a series lacks reads as `''`, as in
/// InfluxDB.
#[derive(Debug, Clone)]
pub enum TagFilter {
    /// Both.
    And(Box<TagFilter>, Box<TagFilter>),
    /// Either.
    Or(Box<TagFilter>, Box<TagFilter>),
    /// `key = 'value'` (`negated`: `!=`).
    Equal {
        /// The tag.
        key: String,
        /// The value.
        value: String,
        /// `!=`.
        negated: bool,
    },
    /// `key =~ /re/` (`negated`: `!~`).
    Regex {
        /// The tag.
        key: String,
        /// The expression.
        regex: Regex,
        /// `!~`.
        negated: bool,
    },
    /// A constant (`true`, `false`).
    Constant(bool),
}

impl TagFilter {
    /// Compiles a condition on tags; `is_field` tells field keys, on which MyMonit does not
    /// filter.
    pub fn compile(expr: &Expr, is_field: &dyn Fn(&str) -> bool) -> Result<Self, QueryError> {
        match expr {
            Expr::Bool(value) => Ok(Self::Constant(*value)),
            Expr::Binary { op, left, right } => match op {
                BinaryOp::And => Ok(Self::And(
                    Box::new(Self::compile(left, is_field)?),
                    Box::new(Self::compile(right, is_field)?),
                )),
                BinaryOp::Or => Ok(Self::Or(
                    Box::new(Self::compile(left, is_field)?),
                    Box::new(Self::compile(right, is_field)?),
                )),
                BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Match | BinaryOp::NotMatch => {
                    let (key, value) = match (left.as_ref(), right.as_ref()) {
                        (Expr::VarRef(key), value) | (value, Expr::VarRef(key)) => (key, value),
                        _ => {
                            return Err(QueryError::new(format!(
                                "unsupported condition {expr}: compare a tag with a string or a regular expression"
                            )));
                        }
                    };
                    if is_field(key) {
                        return Err(QueryError::new(format!(
                            "conditions on field values ({expr}) are not supported: filter on tags and time"
                        )));
                    }
                    let negated = matches!(op, BinaryOp::NotEq | BinaryOp::NotMatch);
                    match value {
                        Expr::Str(text) => Ok(Self::Equal {
                            key: key.clone(),
                            value: text.clone(),
                            negated,
                        }),
                        Expr::Regex(pattern) => Ok(Self::Regex {
                            key: key.clone(),
                            regex: compile_regex(pattern)?,
                            negated,
                        }),
                        _ => Err(QueryError::new(format!(
                            "unsupported condition {expr}: compare a tag with a string or a regular expression"
                        ))),
                    }
                }
                _ => {
                    let key = match (left.as_ref(), right.as_ref()) {
                        (Expr::VarRef(key), _) | (_, Expr::VarRef(key)) => key.as_str(),
                        _ => "",
                    };
                    if is_field(key) {
                        Err(QueryError::new(format!(
                            "conditions on field values ({expr}) are not supported: filter on tags and time"
                        )))
                    } else {
                        Err(QueryError::new(format!(
                            "unsupported condition {expr}: tags compare with =, !=, =~ or !~"
                        )))
                    }
                }
            },
            other => Err(QueryError::new(format!(
                "unsupported condition {other}: expected a comparison"
            ))),
        }
    }

    /// Whether a series with these tags passes.
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        match self {
            Self::And(left, right) => left.matches(tags) && right.matches(tags),
            Self::Or(left, right) => left.matches(tags) || right.matches(tags),
            Self::Equal {
                key,
                value,
                negated,
            } => (tags.get(key).map_or("", String::as_str) == value) != *negated,
            Self::Regex {
                key,
                regex,
                negated,
            } => regex.is_match(tags.get(key).map_or("", String::as_str)) != *negated,
            Self::Constant(value) => *value,
        }
    }
}

/// Compiles an InfluxQL regular expression (Go's RE2 syntax, which `regex` shares), with a
/// size limit so that a hostile pattern cannot take the server's memory.
pub fn compile_regex(pattern: &str) -> Result<Regex, QueryError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| QueryError::new(format!("invalid regular expression /{pattern}/: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ast::Statement,
        parser::{Parsed, parse},
    };

    fn condition(text: &str) -> Expr {
        let Ok(mut parsed) = parse(&format!("SELECT a FROM m WHERE {text}")) else {
            panic!("{text} does not parse");
        };
        match parsed.remove(0) {
            Parsed::Statement(Statement::Select(select)) => {
                select.condition.unwrap_or(Expr::Bool(true))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn time_bounds_from_grafanas_filter() {
        let expr =
            condition("(\"host\" = 'a') AND time >= 1700000000000ms and time <= 1700003600000ms");
        let (range, rest) = split_time(Some(&expr), 0).unwrap_or_default();
        assert_eq!(
            range,
            TimeRange {
                from: Some(1_700_000_000_000_000_000),
                to: Some(1_700_003_600_000_000_000)
            }
        );
        let Some(rest) = rest else {
            panic!("the tag condition was lost")
        };
        let filter = TagFilter::compile(&rest, &|_| false).ok();
        let tags = BTreeMap::from([("host".to_string(), "a".to_string())]);
        assert_eq!(filter.map(|f| f.matches(&tags)), Some(true));
    }

    #[test]
    fn now_and_strings() {
        let now = 10_000_000_000_000;
        let expr = condition("time > now() - 1h AND time < '1970-01-01T02:00:00Z'");
        let (range, rest) = split_time(Some(&expr), now).unwrap_or_default();
        assert!(rest.is_none());
        assert_eq!(range.from, Some(now - 3_600_000_000_000 + 1));
        assert_eq!(range.to, Some(7_200_000_000_000 - 1));
    }

    #[test]
    fn time_under_or_is_refused() {
        let expr = condition("time > 0 OR host = 'a'");
        assert!(split_time(Some(&expr), 0).is_err());
    }

    #[test]
    fn missing_tags_read_as_empty() {
        let filter = TagFilter::compile(&condition("host != 'a' AND region =~ /^$/"), &|_| false);
        let Ok(filter) = filter else {
            panic!("does not compile")
        };
        assert!(filter.matches(&BTreeMap::new()));
        assert!(!filter.matches(&BTreeMap::from([("host".into(), "a".into())])));
    }

    #[test]
    fn field_conditions_are_refused() {
        let is_field = |name: &str| name == "value";
        assert!(TagFilter::compile(&condition("value > 3"), &is_field).is_err());
        assert!(TagFilter::compile(&condition("host > 'a'"), &is_field).is_err());
    }
}
