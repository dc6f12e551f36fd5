//! Pull sources in the database: their settings, the lease that lets one instance fetch each,
//! and the commit of a fetch, which stores its points and moves its cursor in one transaction.

use async_trait::async_trait;
use mymonit_model::{
    measure::NewMeasure,
    source::{Source, SourceKind},
};

use crate::Result;

/// A source to create. The secret comes sealed: the store never sees it in clear.
#[derive(Debug, Clone)]
pub struct NewSource {
    /// Where its points go.
    pub experiment_id: i64,
    /// What it speaks.
    pub kind: SourceKind,
    /// Where to fetch.
    pub url: String,
    /// The secret, sealed.
    pub sealed_secret: Option<String>,
    /// Prometheus' metric-name filter.
    pub include: Option<String>,
    /// Seconds between fetches.
    pub interval_secs: u32,
    /// Whether it is fetched.
    pub enabled: bool,
    /// Now, epoch milliseconds.
    pub now_ms: i64,
}

/// A change of a source's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourcePatch {
    /// A new URL.
    pub url: Option<String>,
    /// A new secret, sealed (`Some(None)` removes it).
    pub sealed_secret: Option<Option<String>>,
    /// A new filter (`Some(None)` removes it).
    pub include: Option<Option<String>>,
    /// A new interval.
    pub interval_secs: Option<u32>,
    /// Enables or disables it.
    pub enabled: Option<bool>,
}

/// A source with its sealed secret, for the fetcher.
#[derive(Debug, Clone)]
pub struct ClaimedSource {
    /// The source.
    pub source: Source,
    /// Its secret, sealed.
    pub sealed_secret: Option<String>,
}

/// What one fetch stored and where it leaves the source.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The source.
    pub source_id: i64,
    /// The instance holding its lease: nothing is stored if another holds it now.
    pub owner: String,
    /// The cursor the fetch started from: nothing is stored if it moved meanwhile.
    pub from_cursor: Option<i64>,
    /// The cursor after this fetch.
    pub cursor: Option<i64>,
    /// The source's first record, when known.
    pub history_from: Option<i64>,
    /// Seconds of history still to load.
    pub backlog_secs: i64,
    /// Points that a later fetch may read again, each under a key that is stored with it so
    /// that it is stored once; equal points get distinct keys (they are distinct readings).
    pub keyed: Vec<(String, Vec<NewMeasure>)>,
    /// Points no later fetch reads again.
    pub points: Vec<NewMeasure>,
    /// When the source is next due, epoch milliseconds.
    pub next_fetch_ms: i64,
    /// Now, epoch milliseconds.
    pub now_ms: i64,
}

/// The end of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// Stored: this many points were new.
    Stored(u64),
    /// Another instance took the source over, or its cursor moved: nothing was stored.
    Superseded,
}

/// The sources and their fetching state.
#[async_trait]
pub trait SourceStore: Send + Sync + 'static {
    /// Creates a source, due at once.
    async fn create_source(&self, source: &NewSource) -> Result<Source>;
    /// The sources, of one experiment or all, by id.
    async fn list_sources(&self, experiment_id: Option<i64>) -> Result<Vec<Source>>;
    /// One source.
    async fn get_source(&self, source_id: i64) -> Result<Option<Source>>;
    /// Changes a source's settings; a change of URL or secret makes it due at once and keeps
    /// its cursor. `Ok(None)` when there is no such source.
    async fn update_source(&self, source_id: i64, patch: &SourcePatch) -> Result<Option<Source>>;
    /// A source's sealed secret, if it has one (to check the source again when it changes).
    async fn sealed_secret(&self, source_id: i64) -> Result<Option<String>>;
    /// Deletes a source (its points stay); `Ok(false)` when there is no such source.
    async fn delete_source(&self, source_id: i64) -> Result<bool>;
    /// Claims at most `limit` enabled sources that are due at `now_ms` and whose lease is free
    /// or expired, for `lease_ms`, for `owner`; each is claimed by one instance only.
    async fn claim_due_sources(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<ClaimedSource>>;
    /// Commits a fetch: stores its points (keyed ones only if their key is new), moves the
    /// cursor, records the success and releases the lease, all in one transaction, if `owner`
    /// still holds the lease and the cursor did not move.
    async fn commit_pull(&self, pulled: &Pulled) -> Result<PullOutcome>;
    /// Records a failed fetch (its reason, one more failure, the next attempt) and releases
    /// the lease, if `owner` still holds it.
    async fn record_pull_failure(
        &self,
        source_id: i64,
        owner: &str,
        error: &str,
        now_ms: i64,
        next_fetch_ms: i64,
    ) -> Result<()>;
}
