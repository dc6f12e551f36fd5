//! Pull sources: MyMonit fetches from endpoints that wait to be asked (a
//! Flask-MonitoringDashboard's export, a Prometheus page) on a schedule, and stores what they
//! hold in the source's experiment.
//!
//! A fetch turns the answer into records, resolves them like pushed ones (same checks, same
//! limits) and commits them with the source's new cursor in one transaction that only the
//! lease holder can make ([`mymonit_store::sources::SourceStore::commit_pull`]). Points that a
//! later fetch reads again (the overlap at a window's end) carry a key, so each is stored once
//! however often it is read, across restarts and instances.

pub mod fmd;
pub mod prometheus;
pub mod scheduler;

use std::{collections::HashMap, time::Duration};

use mymonit_formats::Decoded;
use mymonit_model::{
    measure::NewMeasure,
    source::{Source, SourceKind},
};
use mymonit_store::{
    StoreError,
    sources::{ClaimedSource, PullOutcome, Pulled},
};

use crate::{
    auth::tokens::SealError, ingest::NameResolver, settings::SourcesSettings, state::AppState,
};

/// Why a source cannot be fetched (or created).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No answer: refused, timed out, a name that does not resolve.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// Why there was no answer.
        reason: String,
    },
    /// An answer, but not a success.
    #[error("{url} answered HTTP {status}{hint}")]
    Status {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// What it probably means.
        hint: String,
    },
    /// The answer is not what the source's kind serves.
    #[error("{0}")]
    WrongKind(String),
    /// The source refused the secret (or its answer's signature does not match it).
    #[error("{0}")]
    Secret(String),
    /// The answer is larger than `sources.max_response_bytes`.
    #[error("the answer of {url} is larger than {limit} bytes (sources.max_response_bytes)")]
    TooLarge {
        /// What was asked.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// Nothing in the answer could be stored.
    #[error("{0}")]
    Refused(String),
    /// The stored secret cannot be opened.
    #[error("cannot open the source's stored secret: {0}")]
    Sealed(#[from] SealError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// The HTTP client sources are fetched with, and the bounds on a fetch.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: SourcesSettings,
}

/// An answer, read whole (within the bound).
pub(crate) struct Answer {
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

impl Fetcher {
    /// A client with the configured timeout; no redirects to other hosts' credentials.
    pub fn new(settings: &SourcesSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.fetch_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(
                settings.fetch_timeout_secs.clamp(1, 10),
            ))
            .user_agent(concat!("MyMonit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            settings: settings.clone(),
        })
    }

    /// GETs `url`, reading at most `sources.max_response_bytes`; a non-2xx status is an error
    /// whose hint comes from `hint`.
    pub(crate) async fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
        hint: impl Fn(u16) -> String,
    ) -> Result<Answer, SourceError> {
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let unreachable = |err: reqwest::Error| SourceError::Unreachable {
            url: shown(url),
            reason: describe_error(&err),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(SourceError::Status {
                url: shown(url),
                status,
                hint: hint(status),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let limit = self.settings.max_response_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > limit {
                return Err(SourceError::TooLarge {
                    url: shown(url),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { content_type, body })
    }

    /// The settings the fetcher was made with.
    pub fn settings(&self) -> &SourcesSettings {
        &self.settings
    }
}

/// A URL as errors and logs show it: without its query, which may hold a credential
/// (`?token=…`).
pub(crate) fn shown(url: &str) -> String {
    match url.split_once('?') {
        Some((before, _)) => format!("{before}?…"),
        None => url.to_owned(),
    }
}

/// A reqwest error in words: what failed and its root cause (reqwest's own text repeats the
/// URL and says only "error sending request").
pub(crate) fn describe_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "no answer within the fetch timeout (sources.fetch_timeout_secs)".into();
    }
    let mut root: &dyn std::error::Error = err;
    while let Some(cause) = root.source() {
        root = cause;
    }
    let what = if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    format!("{what} ({root})")
}

/// What one fetch read, before it is resolved and stored.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Records, each with the key that makes it stored once when a later fetch reads it
    /// again (`None`: no later fetch does).
    pub records: Vec<(Option<String>, Decoded)>,
    /// The source's cursor after this fetch.
    pub cursor: Option<i64>,
    /// The time of the source's first record, epoch seconds, when it says.
    pub history_from: Option<i64>,
    /// Seconds of history still to load after this fetch.
    pub backlog_secs: i64,
}

/// Checks a source before it is saved: reachable, of the kind it claims, the secret accepted.
/// The error names what is wrong.
pub async fn check(
    fetcher: &Fetcher,
    kind: SourceKind,
    url: &str,
    secret: Option<&str>,
    include: Option<&regex::Regex>,
) -> Result<(), SourceError> {
    match kind {
        SourceKind::Fmd => fmd::check(fetcher, url, secret).await,
        SourceKind::Prometheus => prometheus::check(fetcher, url, secret, include).await,
    }
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    mymonit_model::time::now_ns() / 1_000_000
}

/// Fetches a claimed source once and commits what it read; returns how many points were new,
/// or `None` when another instance took the source over meanwhile.
pub async fn fetch_and_store(
    state: &AppState,
    fetcher: &Fetcher,
    claimed: &ClaimedSource,
    owner: &str,
) -> Result<Option<u64>, SourceError> {
    let source = &claimed.source;
    let secret = match &claimed.sealed_secret {
        Some(sealed) => Some(state.tokens.open(sealed)?),
        None => None,
    };
    let experiment = state
        .meta
        .get_experiment(source.experiment_id)
        .await?
        .ok_or_else(|| SourceError::Refused("the source's experiment no longer exists".into()))?;
    let fetched = match source.kind {
        SourceKind::Fmd => fmd::fetch(fetcher, source, secret.as_deref(), &experiment.name).await?,
        SourceKind::Prometheus => {
            prometheus::fetch(fetcher, source, secret.as_deref(), &experiment.name).await?
        }
    };
    let decoded: Vec<&Decoded> = fetched.records.iter().map(|(_, record)| record).collect();
    prepare_measure_types(state, source, &decoded).await?;
    let mut resolver = NameResolver::new(Duration::ZERO, state.settings.ingest.clone());
    let mut points = Vec::new();
    let mut keyed: Vec<(String, Vec<NewMeasure>)> = Vec::new();
    let mut refused: HashMap<String, u64> = HashMap::new();
    let total = fetched.records.len();
    for (key, record) in fetched.records {
        match resolver
            .measure(state.meta.as_ref(), record, |id| id == source.experiment_id)
            .await?
        {
            Ok(measure) => match key {
                Some(key) => keyed.push((key, vec![measure])),
                None => points.push(measure),
            },
            Err(reason) => *refused.entry(reason.to_string()).or_default() += 1,
        }
    }
    let refused_count: u64 = refused.values().sum();
    if refused_count > 0 {
        state
            .metrics
            .source_refused(source.kind.as_str(), refused_count);
        let mut reasons: Vec<(String, u64)> = refused.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let summary = reasons
            .iter()
            .take(3)
            .map(|(reason, count)| format!("{count}× {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        // A page whose samples are all refused is a configuration to fix (the experiment
        // takes no new types): the source fails with the reason. A dashboard's window goes
        // on: its refused rows would be refused on every attempt and hold the history back.
        if refused_count as usize == total && source.kind == SourceKind::Prometheus {
            return Err(SourceError::Refused(format!(
                "none of the {total} records could be stored: {summary}"
            )));
        }
        tracing::warn!(source_id = source.source_id, refused = refused_count, reasons = %summary, "some records of a source were refused");
    }
    let now = now_ms();
    let next_fetch_ms = if fetched.backlog_secs > 0 {
        // Catching up: the next window at once.
        now
    } else {
        next_due(source, now)
    };
    let pulled = Pulled {
        source_id: source.source_id,
        owner: owner.to_owned(),
        from_cursor: source.cursor,
        cursor: fetched.cursor,
        history_from: fetched.history_from,
        backlog_secs: fetched.backlog_secs,
        keyed,
        points,
        next_fetch_ms,
        now_ms: now,
    };
    Ok(match state.sources.commit_pull(&pulled).await? {
        PullOutcome::Stored(count) => Some(count),
        PullOutcome::Superseded => None,
    })
}

/// When a source that just succeeded is next due: its interval from now, less up to a tenth
/// of it (at most 5 s) at random, so that sources added together do not stay in step.
pub(crate) fn next_due(source: &Source, now_ms: i64) -> i64 {
    let interval_ms = i64::from(source.interval_secs) * 1_000;
    let spread = (interval_ms / 10).min(5_000);
    let jitter = if spread > 0 {
        rand::random_range(0..spread)
    } else {
        0
    };
    now_ms + interval_ms - jitter
}

/// Creates the measure types a fetch needs: FMD's `execution_time` always (MyMonit names
/// it), a Prometheus page's metric names when the experiment allows automatic types.
async fn prepare_measure_types(
    state: &AppState,
    source: &Source,
    decoded: &[&Decoded],
) -> Result<(), SourceError> {
    match source.kind {
        SourceKind::Fmd => {
            if state
                .meta
                .measure_type_by_name(fmd::MEASURE_TYPE)
                .await?
                .is_none()
            {
                match state
                    .meta
                    .create_measure_type(fmd::MEASURE_TYPE, "ms", "duration")
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Ok(())
        }
        SourceKind::Prometheus => {
            let names = decoded
                .iter()
                .filter_map(|d| d.as_ref().ok())
                .map(|record| &*record.measure)
                .collect();
            crate::ingest::create_named_measure_types(state, source.experiment_id, names)
                .await
                .map_err(|err| SourceError::Refused(err.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_hide_their_query() {
        assert_eq!(
            shown("http://h:9100/metrics?token=s3cret"),
            "http://h:9100/metrics?…"
        );
        assert_eq!(shown("http://h/dashboard"), "http://h/dashboard");
    }
}
