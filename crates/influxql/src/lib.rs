//! The InfluxQL that Grafana's InfluxDB datasource speaks, without I/O: a parser
//! ([`parse`]), the time range and tag condition of a `WHERE` ([`condition`]), `GROUP BY
//! time` windows and `fill` ([`window`]), and the answer shapes and time formats of
//! InfluxDB 1.x ([`Response`], [`Epoch`]). MyMonit's server runs the statements on its store.
//!
//! The subset: `SHOW DATABASES`, `SHOW MEASUREMENTS`, `SHOW FIELD KEYS`, `SHOW TAG KEYS`,
//! `SHOW TAG VALUES`, `SHOW RETENTION POLICIES`, `CREATE DATABASE`, and `SELECT` of fields or
//! of aggregates with `WHERE` on time and tags, `GROUP BY time(…)` and tags, `fill`, `ORDER BY
//! time DESC`, `LIMIT`, `OFFSET`, `SLIMIT`, `SOFFSET` and `tz(…)`. Other statements parse, and
//! answer an error of their own.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

pub mod ast;
pub mod condition;
pub mod lexer;
pub mod parser;
pub mod window;

pub use parser::{ParseError, Parsed, parse};

/// A statement that parses but cannot be answered, worded for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl QueryError {
    /// An error with this text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

/// The answer to `/query`: one result per statement.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Response {
    /// Per statement, in order.
    pub results: Vec<StatementResult>,
}

/// The answer to one statement.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatementResult {
    /// Its position in the query, from 0.
    pub statement_id: usize,
    /// Its series; absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesResult>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One series of an answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SeriesResult {
    /// The measurement (or `databases`, `measurements`, …).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The group's tags (`GROUP BY`); absent without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Vec<Value>>,
}

/// How times are written in answers: the `epoch` parameter's unit, or RFC 3339 without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    /// RFC 3339 with as many fraction digits as needed.
    Rfc3339,
    /// An integer count of this many nanoseconds.
    Unit(i64),
}

impl Epoch {
    /// Reads the `epoch` parameter (`ns`, `u`, `µ`, `ms`, `s`, `m`, `h`).
    pub fn parse(text: Option<&str>) -> Result<Self, QueryError> {
        Ok(match text {
            None | Some("") => Self::Rfc3339,
            Some("ns" | "n") => Self::Unit(1),
            Some("u" | "µ" | "us") => Self::Unit(1_000),
            Some("ms") => Self::Unit(1_000_000),
            Some("s") => Self::Unit(1_000_000_000),
            Some("m") => Self::Unit(60_000_000_000),
            Some("h") => Self::Unit(3_600_000_000_000),
            Some(other) => {
                return Err(QueryError::new(format!(
                    "invalid epoch {other:?}: use ns, u, ms, s, m or h"
                )));
            }
        })
    }

    /// A time as the answer writes it (in `zone` for RFC 3339, as `tz(…)` asks).
    pub fn format(self, ns: i64, zone: Option<Tz>) -> Value {
        match self {
            Self::Unit(unit) => Value::from(ns.div_euclid(unit)),
            Self::Rfc3339 => {
                let time = DateTime::from_timestamp_nanos(ns);
                let text = match zone {
                    Some(zone) => time
                        .with_timezone(&zone)
                        .to_rfc3339_opts(SecondsFormat::Nanos, true),
                    None => time.to_rfc3339_opts(SecondsFormat::Nanos, true),
                };
                Value::from(trim_fraction(&text))
            }
        }
    }
}

/// Go's RFC3339Nano: the fraction's trailing zeros (and a fraction of zero) left out.
fn trim_fraction(text: &str) -> String {
    let Some(dot) = text.find('.') else {
        return text.to_owned();
    };
    let zone_at = text[dot..]
        .find(['Z', '+', '-'])
        .map_or(text.len(), |at| dot + at);
    let fraction = text[dot + 1..zone_at].trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}{}", &text[..dot], &text[zone_at..])
    } else {
        format!("{}.{fraction}{}", &text[..dot], &text[zone_at..])
    }
}

/// A float as InfluxDB's JSON writes it: integral values without a fraction (`2`, not
/// `2.0`), so that clients comparing text see the same.
pub fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_epochs_and_rfc3339() {
        let ns = 1_700_000_000_500_000_000;
        assert_eq!(
            Epoch::parse(Some("ms")).map(|e| e.format(ns, None)),
            Ok(Value::from(1_700_000_000_500i64))
        );
        assert_eq!(
            Epoch::Rfc3339.format(ns, None),
            Value::from("2023-11-14T22:13:20.5Z")
        );
        assert_eq!(
            Epoch::Rfc3339.format(1_700_000_000_000_000_000, None),
            Value::from("2023-11-14T22:13:20Z")
        );
        let zurich: Tz = "Europe/Zurich".parse().unwrap_or(Tz::UTC);
        assert_eq!(
            Epoch::Rfc3339.format(1_700_000_000_000_000_000, Some(zurich)),
            Value::from("2023-11-14T23:13:20+01:00")
        );
        assert!(Epoch::parse(Some("days")).is_err());
    }

    #[test]
    fn empty_parts_are_left_out() {
        let response = Response {
            results: vec![StatementResult {
                statement_id: 0,
                ..Default::default()
            }],
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap_or_default(),
            r#"{"results":[{"statement_id":0}]}"#
        );
    }
}
