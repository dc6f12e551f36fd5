//! MyMonit's storage boundary. Handlers talk to [`MetaStore`] (accounts, experiments,
//! associations, measure types, revoked tokens) and [`MeasureStore`] (the time series), never
//! to SQL, so a PostgreSQL backend can be added without touching them and the time-series
//! engine can replace the measures layout on its own.
//!
//! [`open`] picks the backend from a database URL and returns one [`Store`]:
//! - `sqlite://DIR`: the embedded [`sqlite::SqliteStore`] (WAL mode, one file in `DIR`), the
//!   default;
//! - `postgres://…`: [`postgres::PgStore`], which many MyMonit instances share.
//!
//! Migrations are applied at open. Queries are built at run time with `sqlx::query`/`query_as`,
//! so no database is needed at compile time.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mymonit_model::{
    Experiment, MeasureType, Role, User, UserPatch,
    audit::{AuditEvent, AuditRecord, Outcome},
    ingest::IngestToken,
    measure::{Measure, MeasurePage, NewMeasure},
    personal_token::PersonalToken,
};
pub use mymonit_tsdb::{Point, chunk::Summary, stats::SummaryRule};

pub mod alerts;
mod layout;
pub mod postgres;
mod rows;
pub mod sources;
pub mod sqlite;
mod url;

#[cfg(test)]
mod tests;

pub use postgres::{
    PgStore,
    import::{MigrateError, MigrationProgress, MigrationReport, migrate_from_sqlite},
};
pub use sqlite::SqliteStore;
pub use url::{DatabaseUrl, redact_password};

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique field already holds this value; names the field.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The operation does not make sense for the data as it is.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A blocking read of the SQLite backend failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored bytes do not decode: the database was altered or damaged.
    #[error("corrupt chunk {chunk_id}: {reason}")]
    Corrupt {
        /// The chunk.
        chunk_id: i64,
        /// What is wrong with it.
        reason: mymonit_tsdb::bits::DecodeError,
    },
    /// The data directory could not be prepared.
    #[error("cannot use data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The database URL names no backend MyMonit has, or does not parse.
    #[error("{0}")]
    Url(String),
    /// Storing would create series beyond an experiment's limit: nothing was stored. Lists
    /// every series of the batch that does not fit, so the caller can refuse the measures of
    /// those and store the others.
    #[error("{} new series exceed the limit of {limit} series per experiment", series.len())]
    SeriesLimit {
        /// The limit.
        limit: u64,
        /// The series that do not fit: experiment, measure type, tags.
        series: Vec<(i64, i64, BTreeMap<String, String>)>,
    },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An account with what authentication needs.
#[derive(Debug, Clone)]
pub struct Account {
    /// The public part.
    pub user: User,
    /// Argon2id PHC string; `None` for accounts that sign in only through an external
    /// identity provider.
    pub password_hash: Option<String>,
    /// MyMonit tokens issued under another generation are refused.
    pub token_generation: i64,
}

/// A time range and filters over one experiment's measures, read in `(timestamp, seq)` order.
#[derive(Debug, Clone, Default)]
pub struct MeasureQuery {
    /// The experiment.
    pub experiment_id: i64,
    /// Inclusive lower bound, nanoseconds since the epoch.
    pub from_ns: Option<i64>,
    /// Exclusive upper bound, nanoseconds since the epoch.
    pub to_ns: Option<i64>,
    /// Only this measure type.
    pub measure_type_id: Option<i64>,
    /// Resume strictly after this `(timestamp_ns, seq)` position.
    pub after: Option<(i64, i64)>,
    /// At most this many measures.
    pub limit: u32,
}

impl MeasureQuery {
    /// The range `[from, to)` with open ends as the extremes, and the key the points must
    /// follow (the cursor, or the range's start).
    pub(crate) fn bounds(&self) -> (i64, i64, (i64, i64)) {
        let from = self.from_ns.unwrap_or(i64::MIN);
        let to = self.to_ns.unwrap_or(i64::MAX);
        let after = self
            .after
            .unwrap_or((i64::MIN, i64::MIN))
            .max((from, i64::MIN));
        (from, to, after)
    }
}

/// A series: one experiment's measure type with one set of tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Synthetic id.
    pub series_id: i64,
    /// The experiment.
    pub experiment_id: i64,
    /// The measure type.
    pub measure_type_id: i64,
    /// The measure type's name.
    pub measure_type: String,
    /// The tags every point of the series carries.
    pub tags: BTreeMap<String, String>,
}

/// Where the bytes of the database go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StorageStats {
    /// Size of the database file (pages × page size).
    pub file_bytes: u64,
    /// Bytes of free pages in it.
    pub free_bytes: u64,
    /// Series.
    pub series: u64,
    /// Compressed chunks.
    pub chunks: u64,
    /// Points in chunks.
    pub chunk_points: u64,
    /// Encoded bytes of the chunks (without the database's row and page overhead).
    pub chunk_bytes: u64,
    /// Points not yet compacted.
    pub recent_points: u64,
}

/// What one compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionReport {
    /// Series that had recent points.
    pub series: u64,
    /// Recent points moved into chunks.
    pub points: u64,
    /// Chunks written.
    pub chunks_written: u64,
    /// Chunks rewritten because points arrived inside or just after them.
    pub chunks_replaced: u64,
}

impl CompactionReport {
    /// Adds another report's figures.
    pub fn add(&mut self, other: Self) {
        self.series += other.series;
        self.points += other.points;
        self.chunks_written += other.chunks_written;
        self.chunks_replaced += other.chunks_replaced;
    }
}

/// Which audit records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Inclusive lower bound, nanoseconds since the epoch.
    pub from_ns: Option<i64>,
    /// Exclusive upper bound.
    pub to_ns: Option<i64>,
    /// Only this actor.
    pub actor_id: Option<String>,
    /// Only this action (exact).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Records past this position in the listing's order (above it oldest first, below it
    /// newest first).
    pub after_seq: Option<i64>,
    /// Newest first (the latest events on the first page) instead of oldest first.
    pub newest_first: bool,
    /// At most this many.
    pub limit: u32,
}

/// The append-only audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends events in order, chaining each to the last record; returns the records.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>>;
    /// Records matching a filter, by position.
    async fn audit_records(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
    /// The last record's position and hash.
    async fn audit_head(&self) -> Result<Option<(i64, String)>>;
}

/// The first 16 bytes of the SHA-256 of a message (content type and body): how a message
/// without a message id is recognised when the broker delivers it again.
pub type BodyHash = [u8; 16];

/// How a message taken from the broker may be recognised as one already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryKey {
    /// The message carries a message id: stored once per id (the inbox), however often it is
    /// delivered or published.
    Id(String),
    /// A first delivery (`redelivered = false`) without a message id: by the broker's
    /// contract no earlier delivery of it was acknowledged, so it is always stored. Its body
    /// is remembered until its acknowledgement is known to be committed.
    First(BodyHash),
    /// A redelivery without a message id: skipped if a closed session stored a message of
    /// this body whose acknowledgement never reached the broker (consuming that record),
    /// stored otherwise.
    Redelivered {
        /// The body.
        body: BodyHash,
        /// Sessions seen alive after this message was redelivered: it cannot be one of
        /// theirs (the broker redelivers a session's messages only once its connection is
        /// closed), so their bodies are not waited for.
        not_from: Vec<String>,
    },
}

/// One message's measures and how to recognise it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// How it is recognised.
    pub key: DeliveryKey,
    /// Its measures.
    pub measures: Vec<NewMeasure>,
}

/// What became of one message of a [`ConsumerBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Its measures were stored (this many).
    Stored(u64),
    /// It was stored before: nothing stored now.
    Duplicate,
    /// A redelivery whose body is held only by sessions not yet resolved (named here): it
    /// may be theirs. Nothing stored; decide again once they are resolved or have forgotten
    /// those bodies.
    Undecided(Vec<String>),
}

/// A batch of AMQP messages stored in one transaction by one consumer session.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerBatch<'a> {
    /// The session (from [`MeasureStore::begin_consumer_session`]).
    pub session_id: i64,
    /// This batch's number in the session (increasing).
    pub batch_no: i64,
    /// The broker committed the acknowledgements of the session's batches up to this one:
    /// their bodies are forgotten in the same transaction.
    pub acknowledged_through: Option<i64>,
    /// The messages, in delivery order.
    pub deliveries: &'a [Delivered],
}

/// A consumer session not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// Its name (the broker's queues carry it).
    pub name: String,
    /// Bodies it holds.
    pub unacknowledged: u64,
}

/// A visitor of stored chunks: each chunk's summary and its encoded bytes.
pub type ChunkVisitor<'a> = dyn FnMut(&Summary, &[u8]) -> std::result::Result<(), mymonit_tsdb::bits::DecodeError>
    + Send
    + 'a;

/// Accounts, experiments, associations, measure types and revoked tokens.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Creates an account; `Conflict("user_id" | "username" | "email")` when taken.
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<()>;
    /// Reads an account that has not been erased.
    async fn get_user(&self, user_id: &str) -> Result<Option<User>>;
    /// Reads an account with its credentials, by username.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;
    /// Reads an account with its credentials, by id.
    async fn account_by_id(&self, user_id: &str) -> Result<Option<Account>>;
    /// Lists accounts that have not been erased, by id.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Changes an account and returns it as it now is.
    async fn update_user(&self, user_id: &str, patch: &UserPatch) -> Result<User>;
    /// Sets a new password hash and moves to the next token generation, so that every token
    /// issued before is refused.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()>;
    /// Records which admin chose an account's password when creating it.
    async fn set_password_set_by(&self, user_id: &str, admin_id: &str) -> Result<()>;
    /// The admin who chose an account's password when creating it, if one did.
    async fn password_set_by(&self, user_id: &str) -> Result<Option<String>>;
    /// GDPR erasure: removes personal data, credentials and associations, keeps the id.
    async fn erase_user(&self, user_id: &str) -> Result<()>;

    /// Creates an experiment; `Conflict("name")` when the name is taken.
    async fn create_experiment(&self, name: &str) -> Result<Experiment>;
    /// Reads an experiment.
    async fn get_experiment(&self, experiment_id: i64) -> Result<Option<Experiment>>;
    /// Reads an experiment by name.
    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>>;
    /// Lists all experiments, by id.
    async fn list_experiments(&self) -> Result<Vec<Experiment>>;
    /// Lists the experiments a scientist is associated with, by id.
    async fn list_experiments_of(&self, user_id: &str) -> Result<Vec<Experiment>>;
    /// Renames an experiment.
    async fn rename_experiment(&self, experiment_id: i64, name: &str) -> Result<Experiment>;
    /// How many days of an experiment's points are kept; `None` keeps everything.
    async fn retention_days(&self, experiment_id: i64) -> Result<Option<u32>>;
    /// Sets how many days of points are kept (`None`: everything).
    async fn set_retention_days(&self, experiment_id: i64, days: Option<u32>) -> Result<()>;

    /// Associates a scientist with an experiment; `Ok(false)` when it already was.
    async fn associate(&self, experiment_id: i64, user_id: &str) -> Result<bool>;
    /// Removes an association; `Ok(false)` when there was none.
    async fn dissociate(&self, experiment_id: i64, user_id: &str) -> Result<bool>;
    /// Whether the user is associated with the experiment.
    async fn is_associated(&self, experiment_id: i64, user_id: &str) -> Result<bool>;
    /// All associations, by experiment then user.
    async fn list_associations(&self) -> Result<Vec<(Experiment, User)>>;

    /// Lists measure types, by id.
    async fn list_measure_types(&self) -> Result<Vec<MeasureType>>;
    /// Reads a measure type by name.
    async fn measure_type_by_name(&self, name: &str) -> Result<Option<MeasureType>>;
    /// Creates a measure type; `Conflict("name")` when taken.
    async fn create_measure_type(
        &self,
        name: &str,
        symbol: &str,
        quantity: &str,
    ) -> Result<MeasureType>;

    /// Refuses a token (by hash) until `expires_at` (epoch seconds).
    async fn revoke_token(&self, token_hash: &str, expires_at: i64) -> Result<()>;
    /// Whether a token (by hash) was revoked.
    async fn is_token_revoked(&self, token_hash: &str) -> Result<bool>;
    /// Forgets revocations of tokens that have expired anyway.
    async fn purge_revoked_tokens(&self, now: i64) -> Result<u64>;

    /// What authenticating a request reads: the account (by id, not erased) and whether the
    /// token (by hash) was revoked. Both at once; a backend may read them in one step.
    async fn account_and_revocation(
        &self,
        user_id: &str,
        token_hash: &str,
    ) -> Result<(Option<Account>, bool)> {
        let (account, revoked) = tokio::join!(
            self.account_by_id(user_id),
            self.is_token_revoked(token_hash)
        );
        Ok((account?, revoked?))
    }

    /// What a request about an experiment reads: the experiment, and whether `user_id` (when
    /// given; `None` answers `true`) is associated with it. A backend may read both in one step.
    async fn experiment_and_association(
        &self,
        experiment_id: i64,
        user_id: Option<&str>,
    ) -> Result<(Option<Experiment>, bool)> {
        let associated = async {
            match user_id {
                Some(user_id) => self.is_associated(experiment_id, user_id).await,
                None => Ok(true),
            }
        };
        let (experiment, associated) = tokio::join!(self.get_experiment(experiment_id), associated);
        Ok((experiment?, associated?))
    }

    /// Stores a new ingest token (by the hash of its secret) scoped to experiments.
    async fn create_ingest_token(
        &self,
        token_id: &str,
        token_hash: &str,
        description: &str,
        experiment_ids: &[i64],
        created_by: Option<&str>,
    ) -> Result<IngestToken>;
    /// Lists ingest tokens, newest first, revoked ones included.
    async fn list_ingest_tokens(&self) -> Result<Vec<IngestToken>>;
    /// Revokes an ingest token; `Ok(false)` when there is no such live token.
    async fn revoke_ingest_token(&self, token_id: &str) -> Result<bool>;
    /// The live (not revoked) ingest token with this secret hash.
    async fn ingest_token_by_hash(&self, token_hash: &str) -> Result<Option<IngestToken>>;

    /// Whether writes in InfluxDB's form may create the measure types they name.
    async fn creates_measure_types(&self, experiment_id: i64) -> Result<bool>;
    /// Allows or forbids writes in InfluxDB's form to create measure types.
    async fn set_creates_measure_types(&self, experiment_id: i64, enabled: bool) -> Result<()>;

    /// Stores a new personal access token (by the hash of its secret).
    async fn create_personal_token(&self, token: &PersonalToken, token_hash: &str) -> Result<()>;
    /// A user's personal access tokens, newest first, revoked and expired ones included.
    async fn list_personal_tokens(&self, user_id: &str) -> Result<Vec<PersonalToken>>;
    /// Revokes one of a user's tokens; `Ok(false)` when the user has no such live token.
    async fn revoke_personal_token(&self, user_id: &str, token_id: &str) -> Result<bool>;
    /// The token with this secret hash, if not revoked (expiry is the caller's to check).
    async fn personal_token_by_hash(&self, token_hash: &str) -> Result<Option<PersonalToken>>;
}

/// The time series. The time-series engine replaces this layout behind the same trait.
#[async_trait]
pub trait MeasureStore: Send + Sync + 'static {
    /// Stores measures durably, in one transaction; returns how many were stored.
    async fn append(&self, measures: &[NewMeasure]) -> Result<u64>;
    /// Stores the measures of several messages in one transaction, each only if its key is
    /// not yet in the inbox (a redelivered message is not stored twice); returns how many
    /// measures were stored.
    async fn append_messages(&self, messages: &[(String, Vec<NewMeasure>)]) -> Result<u64>;
    /// Forgets inbox keys older than `before` (epoch seconds), and what consumer sessions
    /// remembered before then (sessions resolved before then, and bodies stored before then
    /// whose redelivery never came).
    async fn purge_inbox(&self, before: i64) -> Result<u64>;
    /// Registers an AMQP consumer session by its unique name; returns its id.
    async fn begin_consumer_session(&self, name: &str) -> Result<i64>;
    /// Stores the messages of one consumer batch in one transaction, each as its
    /// [`DeliveryKey`] says, and forgets the bodies of the session's batches whose
    /// acknowledgements are committed; returns one outcome per message, in order.
    async fn append_deliveries(&self, batch: ConsumerBatch<'_>) -> Result<Vec<DeliveryOutcome>>;
    /// Forgets the bodies of a session's batches up to `through_batch` (their
    /// acknowledgements are committed).
    async fn forget_acknowledged(&self, session_id: i64, through_batch: i64) -> Result<()>;
    /// Sessions other than `except` that are not resolved (live ones, and closed ones no one
    /// has resolved yet), with the bodies they hold.
    async fn open_consumer_sessions(&self, except: i64) -> Result<Vec<OpenSession>>;
    /// Claims the resolution of a closed session for `for_secs` seconds, so that one server
    /// at a time reads its record from the broker; `Ok(false)` when it is resolved or another
    /// server holds the claim.
    async fn claim_consumer_session(&self, name: &str, for_secs: i64) -> Result<bool>;
    /// Resolves a session whose connection is closed: forgets its bodies of batches up to
    /// `acked_through` (all of them when `None`: the broker kept no record, so none of its
    /// messages can come back) and marks it resolved, so that redeliveries consume the rest.
    /// `Ok(false)` when it was resolved already.
    async fn resolve_consumer_session(
        &self,
        name: &str,
        acked_through: Option<i64>,
    ) -> Result<bool>;
    /// Reads a page of measures in `(timestamp, seq)` order, from one snapshot.
    async fn query_page(&self, query: &MeasureQuery) -> Result<MeasurePage>;
    /// Reads measures in `(timestamp, seq)` order ([`Self::query_page`], names per measure).
    async fn query(&self, query: &MeasureQuery) -> Result<Vec<Measure>> {
        Ok(self.query_page(query).await?.into_measures())
    }
    /// How many measures an experiment has.
    async fn count(&self, experiment_id: i64) -> Result<u64>;

    /// The series of an experiment, optionally of one measure type, by id.
    async fn series(&self, experiment_id: i64, measure_type_id: Option<i64>)
    -> Result<Vec<Series>>;
    /// Reads a series in `[from, to)` from one snapshot: visits, in time order, the chunks
    /// that hold points of the range (they may hold points outside it too), and returns the
    /// points not yet compacted, in no particular order. With a rule, the chunks it answers
    /// from their summaries are visited with empty bytes (neither read nor copied).
    async fn read_series(
        &self,
        series_id: i64,
        from: i64,
        to: i64,
        whole: Option<&SummaryRule>,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<Vec<Point>>;
    /// The latest point of every series of an experiment that has one, by series id.
    async fn latest_of_experiment(&self, experiment_id: i64) -> Result<Vec<(Series, Point)>>;
    /// The timestamp of the earliest point of a series.
    async fn earliest(&self, series_id: i64) -> Result<Option<i64>>;
    /// Moves the oldest recent points, at most `max_points`, into compressed chunks in one
    /// transaction; call until it reports fewer than `max_points` to drain a backlog.
    async fn compact(&self, max_points: usize) -> Result<CompactionReport>;
    /// Drops points older than their experiment's retention; returns how many.
    async fn apply_retention(&self, now_ns: i64) -> Result<u64>;
    /// Where the bytes of the database go.
    async fn storage_stats(&self) -> Result<StorageStats>;
    /// Every batch of measures once committed (for live views). A receiver that falls
    /// behind by more than a few hundred batches is told how many it missed.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<Vec<NewMeasure>>>;
}

/// Sign-in attempts counted in the database, so that every instance of a deployment counts
/// against one limit.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Counts one attempt against each key (a hash) unless a key already has its limit of
    /// attempts within `window_ms` before `now_ms`; all or nothing, atomic across instances.
    /// `Ok(Ok(ids))`: admitted, the attempts' ids; `Ok(Err(ms))`: refused, retry in `ms`.
    async fn admit_attempt(
        &self,
        keys: &[(&str, u32)],
        window_ms: i64,
        now_ms: i64,
    ) -> Result<std::result::Result<Vec<i64>, i64>>;
    /// Takes back attempts by id, and forgets every attempt of `clear_keys`.
    async fn forget_attempts(&self, attempt_ids: &[i64], clear_keys: &[&str]) -> Result<()>;
}

/// Everything a MyMonit server keeps, on one backend.
#[async_trait]
pub trait Store:
    MetaStore + MeasureStore + AuditStore + sources::SourceStore + alerts::AlertStore
{
    /// Sign-in attempts in the database, where instances share it (`None`: the embedded
    /// backend, one instance, which counts in memory).
    fn attempts(&self) -> Option<&dyn AttemptStore> {
        None
    }
    /// The backend's name (`sqlite`, `postgres`), for logs and metrics.
    fn backend(&self) -> &'static str;
    /// Points written but not yet compacted into chunks (benchmarks wait for zero).
    async fn pending_compaction(&self) -> Result<u64>;
    /// Closes the connections (SQLite checkpoints its write-ahead log).
    async fn close(&self);
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Most series one experiment may have (`None`: no limit); an append that would create
    /// more fails with [`StoreError::SeriesLimit`] and stores nothing.
    pub max_series_per_experiment: Option<u64>,
    /// Most connections to the database (PostgreSQL; `None`: the backend's default).
    pub max_connections: Option<u32>,
}

/// Opens (creating it if needed, applying migrations) the database a URL names.
pub async fn open(url: &DatabaseUrl, options: &OpenOptions) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match url {
        DatabaseUrl::Sqlite(dir) => {
            let mut store = SqliteStore::open(dir).await?;
            if let Some(limit) = options.max_series_per_experiment {
                store = store.with_max_series_per_experiment(limit);
            }
            std::sync::Arc::new(store)
        }
        DatabaseUrl::Postgres(url) => std::sync::Arc::new(PgStore::open(url, options).await?),
    })
}

/// The field a unique constraint guards, by the constraint's name: PostgreSQL reports the
/// name (`users_username_key`), SQLite the column (`users.username`, turned into
/// `users_username` by the backend). `None` for a constraint that guards no user-visible field.
pub(crate) fn conflict_field(constraint: &str) -> Option<&'static str> {
    let constraint = constraint.strip_suffix("_key").unwrap_or(constraint);
    Some(match constraint {
        "users_pkey" | "users_user_id" => "user_id",
        "users_username" => "username",
        "users_email" => "email",
        "experiments_name" | "measure_types_name" => "name",
        "ingest_tokens_pkey" | "ingest_tokens_token_id" => "token_id",
        "ingest_tokens_token_hash" | "personal_tokens_token_hash" => "token_hash",
        "personal_tokens_pkey" | "personal_tokens_token_id" => "token_id",
        _ => return None,
    })
}

/// Tags as stored: a JSON object, or nothing when empty.
pub(crate) fn tags_to_json(tags: &BTreeMap<String, String>) -> Option<String> {
    (!tags.is_empty()).then(|| serde_json::to_string(tags).unwrap_or_default())
}

/// Tags as read back; a malformed value reads as no tags rather than failing the query.
pub(crate) fn tags_from_json(json: Option<&str>) -> BTreeMap<String, String> {
    json.and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Parses a role stored in the database.
pub(crate) fn parse_role(text: &str) -> Result<Role> {
    text.parse()
        .map_err(|err| StoreError::Invalid(format!("corrupt role in database: {err}")))
}
