//! Pull sources: endpoints MyMonit fetches from on a schedule (a Flask-MonitoringDashboard's
//! export, a Prometheus `/metrics` page) into one experiment, and the state of their fetching.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// What a source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Flask-MonitoringDashboard 1.12–2.0's JSON export: every recorded request.
    Fmd,
    /// A Prometheus text (0.0.4) or OpenMetrics page.
    Prometheus,
}

impl SourceKind {
    /// The wire name: `fmd` or `prometheus`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Fmd => "fmd",
            SourceKind::Prometheus => "prometheus",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind that is neither `fmd` nor `prometheus`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source kind {0:?}: expected fmd or prometheus")]
pub struct UnknownSourceKind(pub String);

impl FromStr for SourceKind {
    type Err = UnknownSourceKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fmd" => Ok(SourceKind::Fmd),
            "prometheus" => Ok(SourceKind::Prometheus),
            _ => Err(UnknownSourceKind(s.to_string())),
        }
    }
}

/// A source and the state of its fetching, as stored. Its secret is stored sealed and is not
/// part of this value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Synthetic id.
    pub source_id: i64,
    /// Where its points go.
    pub experiment_id: i64,
    /// What it speaks.
    pub kind: SourceKind,
    /// Where to fetch: the dashboard's root (`http://host:5000/dashboard`) or the metrics page.
    pub url: String,
    /// Whether a secret is stored.
    pub has_secret: bool,
    /// Prometheus: only metric names this regular expression matches are kept.
    pub include: Option<String>,
    /// Seconds between fetches.
    pub interval_secs: u32,
    /// Whether it is fetched.
    pub enabled: bool,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
    /// How far its history is stored, in the kind's own position (FMD: epoch seconds).
    pub cursor: Option<i64>,
    /// The time of its first record (FMD's `first-request`), epoch seconds.
    pub history_from: Option<i64>,
    /// Seconds of history still to load (0 when caught up).
    pub backlog_secs: i64,
    /// The last fetch that succeeded, epoch milliseconds.
    pub last_success_ms: Option<i64>,
    /// Why the last fetch failed, when it did (cleared by a success).
    pub last_error: Option<String>,
    /// When it last failed, epoch milliseconds.
    pub last_error_ms: Option<i64>,
    /// Failed fetches since the last success.
    pub failures: u32,
    /// Points stored from it in all.
    pub points_fetched: u64,
    /// When it is next due, epoch milliseconds.
    pub next_fetch_ms: i64,
}

/// Shortest and longest interval between fetches, in seconds.
pub const INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 1..=86_400;

/// The interval when none is given.
pub const DEFAULT_INTERVAL_SECS: u32 = 60;

/// How long to wait after `failures` failed fetches in a row: 1 s doubling to 10 minutes.
pub fn backoff_ms(failures: u32) -> i64 {
    let doubled = 1_000i64.saturating_mul(1i64 << failures.saturating_sub(1).min(20));
    doubled.min(600_000)
}

/// Checks a source's URL: absolute http(s), with a host, no credentials in it (they belong in
/// the secret, which is never shown).
pub fn check_url(url: &str) -> Result<(), crate::ValidationError> {
    let invalid = |reason: &str| crate::ValidationError::new("url", reason.to_string());
    if url.len() > 2048 {
        return Err(invalid("is longer than 2048 bytes"));
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid("must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(invalid("has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "must not hold credentials: give the token as the secret",
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must not contain spaces"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_ten_minutes() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(10), 512_000);
        assert_eq!(backoff_ms(11), 600_000);
        assert_eq!(backoff_ms(u32::MAX), 600_000);
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:5055/dashboard").is_ok());
        assert!(check_url("https://h/metrics?x=1").is_ok());
        assert!(check_url("ftp://h/").is_err());
        assert!(check_url("http:///x").is_err());
        assert!(check_url("http://u:p@h/").is_err());
        assert!(check_url("http://h/a b").is_err());
        assert_eq!("fmd".parse::<SourceKind>(), Ok(SourceKind::Fmd));
        assert!("x".parse::<SourceKind>().is_err());
    }
}
