//! Moving an embedded deployment up: copies everything a SQLite database holds into an empty
//! PostgreSQL one, ids kept, in one transaction on each side.
//!
//! The source is read in one snapshot, so a server still writing to it cannot tear the copy
//! (what it writes after the snapshot is not copied: stop it first). Measures move as stored
//! (blocks and chunks are the same bytes on both backends); while they are copied every point
//! is decoded once into a per-series fingerprint, which the target must match after the
//! commit, read back from PostgreSQL.

use std::collections::{BTreeMap, HashSet};

use mymonit_tsdb::{Point, chunk};
use sqlx::{Row, Sqlite, Transaction as SqlxTransaction};

use super::{PgStore, measures, partitions};
use crate::layout::{block_points, corrupt};
use crate::{SqliteStore, StoreError};

/// Rows copied per statement.
const BATCH: i64 = 1_000;

/// What can go wrong moving a deployment.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target already holds data and emptying it was not asked for.
    #[error(
        "the target database already holds data ({0}): give an empty database, or pass --replace to delete what it holds first"
    )]
    TargetNotEmpty(String),
    /// Reading the source or writing the target failed; nothing was committed on the target.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the target holds after the copy differs from what was read.
    #[error("verification failed: {0}")]
    Mismatch(String),
}

impl From<sqlx::Error> for MigrateError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

/// Told of the copy's progress (a progress bar, a log).
pub trait MigrationProgress: Send + Sync {
    /// A step begins; `total` is in its own unit (rows, points, series).
    fn step(&self, name: &'static str, unit: &'static str, total: u64);
    /// `done` more units of the current step are done.
    fn advance(&self, done: u64);
}

/// Counts of what was copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    /// Rows copied, by table.
    pub rows: BTreeMap<&'static str, u64>,
    /// Points copied (in chunks and recent blocks).
    pub points: u64,
    /// Series whose points were compared on the target.
    pub series_verified: u64,
    /// The audit trail's last record (position, hash) on the source, now the target's head.
    pub audit_head: Option<(i64, String)>,
}

/// Count and order-independent checksum of a series' points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fingerprint {
    points: u64,
    checksum: u64,
}

impl Fingerprint {
    fn add(&mut self, point: &Point) {
        self.points += 1;
        self.checksum = self.checksum.wrapping_add(mix(point));
    }
}

/// A well-spread hash of a point's three fields (splitmix64 rounds), so that a point moved
/// to another time, another arrival number or another value changes the sum.
fn mix(point: &Point) -> u64 {
    let mut hash = 0x9E37_79B9_7F4A_7C15_u64;
    for word in [point.ts as u64, point.seq as u64, point.value.to_bits()] {
        hash = (hash ^ word).wrapping_add(0x9E37_79B9_7F4A_7C15);
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        hash ^= hash >> 31;
    }
    hash
}

type Fingerprints = BTreeMap<i64, Fingerprint>;

/// The tables copied as they are, in an order their references allow, with their columns.
/// Each column's SQL array type says how PostgreSQL reads it.
const PLAIN_TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "users",
        &[
            ("user_id", Kind::Text),
            ("name", Kind::Text),
            ("username", Kind::Text),
            ("email", Kind::Text),
            ("role", Kind::Text),
            ("password_hash", Kind::Text),
            ("token_generation", Kind::Int),
            ("created_at", Kind::Int),
            ("erased_at", Kind::Int),
            ("password_set_by", Kind::Text),
        ],
    ),
    (
        "experiments",
        &[
            ("experiment_id", Kind::Int),
            ("name", Kind::Text),
            ("created_at", Kind::Int),
            ("retention_days", Kind::Int),
            ("create_measure_types", Kind::Bool),
        ],
    ),
    (
        "associations",
        &[
            ("experiment_id", Kind::Int),
            ("user_id", Kind::Text),
            ("created_at", Kind::Int),
        ],
    ),
    (
        "measure_types",
        &[
            ("measure_type_id", Kind::Int),
            ("name", Kind::Text),
            ("symbol", Kind::Text),
            ("quantity", Kind::Text),
        ],
    ),
    (
        "revoked_tokens",
        &[("token_hash", Kind::Text), ("expires_at", Kind::Int)],
    ),
    (
        "ingest_tokens",
        &[
            ("token_id", Kind::Text),
            ("token_hash", Kind::Text),
            ("description", Kind::Text),
            ("created_by", Kind::Text),
            ("created_at", Kind::Int),
            ("revoked_at", Kind::Int),
        ],
    ),
    (
        "personal_tokens",
        &[
            ("token_id", Kind::Text),
            ("user_id", Kind::Text),
            ("name", Kind::Text),
            ("scope", Kind::Text),
            ("token_hash", Kind::Text),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("revoked_at", Kind::Int),
        ],
    ),
    (
        "ingest_token_experiments",
        &[("token_id", Kind::Text), ("experiment_id", Kind::Int)],
    ),
    (
        "inbox",
        &[("message_key", Kind::Text), ("processed_at", Kind::Int)],
    ),
    // Sources keep their cursors (a dashboard's history is not loaded again), not their leases.
    (
        "sources",
        &[
            ("source_id", Kind::Int),
            ("experiment_id", Kind::Int),
            ("kind", Kind::Text),
            ("url", Kind::Text),
            ("sealed_secret", Kind::Text),
            ("include", Kind::Text),
            ("interval_secs", Kind::Int),
            ("enabled", Kind::Bool),
            ("created_at_ms", Kind::Int),
            ("cursor", Kind::Int),
            ("history_from", Kind::Int),
            ("backlog_secs", Kind::Int),
            ("last_success_ms", Kind::Int),
            ("last_error", Kind::Text),
            ("last_error_ms", Kind::Int),
            ("failures", Kind::Int),
            ("points_fetched", Kind::Int),
            ("next_fetch_ms", Kind::Int),
        ],
    ),
    // Alert rules with their alerts' states, history and notifications still to send.
    (
        "alert_rules",
        &[
            ("rule_id", Kind::Int),
            ("experiment_id", Kind::Int),
            ("spec", Kind::Text),
            ("created_by", Kind::Text),
            ("created_at_ms", Kind::Int),
            ("updated_at_ms", Kind::Int),
            ("next_eval_ms", Kind::Int),
            ("last_eval_ms", Kind::Int),
            ("last_error", Kind::Text),
        ],
    ),
    (
        "alert_states",
        &[
            ("rule_id", Kind::Int),
            ("group_key", Kind::Text),
            ("state", Kind::Text),
            ("active_since_ms", Kind::Int),
            ("firing_since_ms", Kind::Int),
            ("last_value", Kind::Float),
            ("last_sent_ms", Kind::Int),
        ],
    ),
    (
        "alert_events",
        &[
            ("event_id", Kind::Int),
            ("rule_id", Kind::Int),
            ("group_key", Kind::Text),
            ("transition", Kind::Text),
            ("at_ms", Kind::Int),
            ("value", Kind::Float),
        ],
    ),
    (
        "alert_notifications",
        &[
            ("notification_id", Kind::Int),
            ("rule_id", Kind::Int),
            ("receiver", Kind::Text),
            ("body", Kind::Text),
            ("created_at_ms", Kind::Int),
            ("attempts", Kind::Int),
            ("next_attempt_ms", Kind::Int),
            ("status", Kind::Text),
            ("last_error", Kind::Text),
            ("done_at_ms", Kind::Int),
        ],
    ),
    (
        "series",
        &[
            ("series_id", Kind::Int),
            ("experiment_id", Kind::Int),
            ("measure_type_id", Kind::Int),
            ("tags", Kind::Text),
        ],
    ),
    (
        "amqp_sessions",
        &[
            ("session_id", Kind::Int),
            ("name", Kind::Text),
            ("started_at", Kind::Int),
            ("claimed_until", Kind::Int),
            ("resolved_at", Kind::Int),
            ("acked_through", Kind::Int),
        ],
    ),
    (
        "amqp_unacked",
        &[
            ("session_id", Kind::Int),
            ("batch_no", Kind::Int),
            ("body_hash", Kind::Bytes),
            ("stored_at", Kind::Int),
        ],
    ),
    (
        "audit_log",
        &[
            ("seq", Kind::Int),
            ("at_ns", Kind::Int),
            ("actor_id", Kind::Text),
            ("actor_role", Kind::Text),
            ("action", Kind::Text),
            ("target", Kind::Text),
            ("status", Kind::Int),
            ("outcome", Kind::Text),
            ("request_id", Kind::Text),
            ("client", Kind::Text),
            ("detail", Kind::Text),
            ("prev_hash", Kind::Text),
            ("hash", Kind::Text),
        ],
    ),
];

/// Identity columns whose sequence must continue after the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("experiments", "experiment_id"),
    ("measure_types", "measure_type_id"),
    ("series", "series_id"),
    ("amqp_sessions", "session_id"),
    ("sources", "source_id"),
    ("alert_rules", "rule_id"),
    ("alert_events", "event_id"),
    ("alert_notifications", "notification_id"),
];

/// Every table of the PostgreSQL schema that holds data (emptied by `replace`).
const TARGET_TABLES: &str = "users, experiments, associations, measure_types, revoked_tokens,
    ingest_tokens, ingest_token_experiments, personal_tokens, inbox, series, recent_blocks, chunks, audit_log,
    amqp_sessions, amqp_unacked, login_attempts, sources, alert_rules, alert_states,
    alert_events, alert_notifications";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Float,
    Bool,
    Text,
    Bytes,
}

/// One column's values, as PostgreSQL binds an array.
enum Column {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Int => Self::Int(Vec::new()),
            Kind::Float => Self::Float(Vec::new()),
            Kind::Bool => Self::Bool(Vec::new()),
            Kind::Text => Self::Text(Vec::new()),
            Kind::Bytes => Self::Bytes(Vec::new()),
        }
    }

    fn push(&mut self, row: &sqlx::sqlite::SqliteRow, index: usize) -> sqlx::Result<()> {
        match self {
            Self::Int(values) => values.push(row.try_get(index)?),
            Self::Float(values) => values.push(row.try_get(index)?),
            Self::Bool(values) => values.push(row.try_get(index)?),
            Self::Text(values) => values.push(row.try_get(index)?),
            Self::Bytes(values) => values.push(row.try_get(index)?),
        }
        Ok(())
    }

    fn sql_type(&self) -> &'static str {
        match self {
            Self::Int(_) => "int8[]",
            Self::Float(_) => "float8[]",
            Self::Bool(_) => "bool[]",
            Self::Text(_) => "text[]",
            Self::Bytes(_) => "bytea[]",
        }
    }
}

/// Copies the deployment in `source` into `target`, which must be empty unless `replace`
/// (then everything it holds is deleted first, in the same transaction), and verifies the
/// copy. Nothing is committed on the target unless the whole copy succeeds.
pub async fn migrate_from_sqlite(
    source: &SqliteStore,
    target: &PgStore,
    replace: bool,
    progress: &dyn MigrationProgress,
) -> Result<MigrationReport, MigrateError> {
    let mut read = source.pool().begin().await?;
    let mut write = target.pool().begin().await?;
    // Compaction, retention and purges of any instance wait until the copy is committed.
    sqlx::query("select pg_advisory_xact_lock($1, $2)")
        .bind(super::locks::CLASS)
        .bind(super::locks::MAINTENANCE)
        .execute(&mut *write)
        .await?;
    match target_contents(&mut write).await? {
        Some(contents) if !replace => return Err(MigrateError::TargetNotEmpty(contents)),
        Some(_) => empty_target(&mut write).await?,
        None => {}
    }
    // The target's own measure types (seeded at open) give way to the source's, ids and all.
    sqlx::query("delete from measure_types")
        .execute(&mut *write)
        .await?;

    let mut report = MigrationReport::default();
    let mut totals = Vec::with_capacity(PLAIN_TABLES.len());
    for (table, _) in PLAIN_TABLES {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&mut *read)
                .await?;
        totals.push(count.max(0) as u64);
    }
    progress.step(
        "accounts, experiments and audit trail",
        "rows",
        totals.iter().sum(),
    );
    for (table, columns) in PLAIN_TABLES {
        let copied = copy_table(&mut read, &mut write, table, columns, progress).await?;
        report.rows.insert(table, copied);
    }

    let mut source_prints = Fingerprints::new();
    let points_total: i64 = sqlx::query_scalar(
        "select (select coalesce(sum(point_count), 0) from chunks)
              + (select coalesce(sum(point_count), 0) from recent_blocks)",
    )
    .fetch_one(&mut *read)
    .await?;
    progress.step("measures", "points", points_total.max(0) as u64);
    let (chunks, chunk_points) =
        copy_chunks(&mut read, &mut write, &mut source_prints, progress).await?;
    let (blocks, block_points) =
        copy_recent_blocks(&mut read, &mut write, &mut source_prints, progress).await?;
    report.rows.insert("chunks", chunks);
    report.rows.insert("recent_blocks", blocks);
    report.points = chunk_points + block_points;

    continue_sequences(&mut write).await?;
    report.audit_head = sqlx::query_as("select seq, hash from audit_log order by seq desc limit 1")
        .fetch_optional(&mut *read)
        .await?;
    if let Some((seq, hash)) = &report.audit_head {
        sqlx::query("update audit_head set seq = $1, hash = $2 where id = 1")
            .bind(seq)
            .bind(hash)
            .execute(&mut *write)
            .await?;
    }
    read.rollback().await?;
    write.commit().await?;

    progress.step("verifying", "series", source_prints.len() as u64);
    report.series_verified = verify(target, &source_prints, &report, progress).await?;
    Ok(report)
}

/// What the target holds besides the measure types MyMonit seeds, in words; `None` when it
/// holds nothing.
async fn target_contents(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<Option<String>, MigrateError> {
    let seeded: Vec<&str> = mymonit_model::units::SI_DERIVED_UNITS
        .iter()
        .map(|(name, _, _)| *name)
        .collect();
    let (users, experiments, types, points, records, tokens): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "select (select count(*) from users),
                    (select count(*) from experiments),
                    (select count(*) from measure_types where not (name = any($1))),
                    (select coalesce(sum(point_count), 0)::int8 from chunks)
                      + (select coalesce(sum(point_count), 0)::int8 from recent_blocks),
                    (select count(*) from audit_log),
                    (select count(*) from ingest_tokens)",
        )
        .bind(&seeded)
        .fetch_one(&mut **tx)
        .await?;
    let parts: Vec<String> = [
        (users, "user"),
        (experiments, "experiment"),
        (types, "custom measure type"),
        (points, "point"),
        (records, "audit record"),
        (tokens, "ingest token"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} {what}{}", if count == 1 { "" } else { "s" }))
    .collect();
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// Deletes everything the target holds. The audit trail's guard against truncation is lifted
/// for this statement only, inside the copy's transaction.
async fn empty_target(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), MigrateError> {
    for statement in [
        "alter table audit_log disable trigger audit_log_no_truncate",
        &format!("truncate {TARGET_TABLES}"),
        "alter table audit_log enable trigger audit_log_no_truncate",
        "update audit_head set seq = 0, hash = repeat('0', 64) where id = 1",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Copies one table, [`BATCH`] rows per statement, in the order of its first column.
async fn copy_table(
    read: &mut SqlxTransaction<'_, Sqlite>,
    write: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    table: &str,
    columns: &[(&str, Kind)],
    progress: &dyn MigrationProgress,
) -> Result<u64, MigrateError> {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let list = names.join(", ");
    let mut copied = 0u64;
    loop {
        // The tables are small beside the measures, except the inbox and the trail: paging
        // by offset in one snapshot is exact and simple.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select {list} from {table} order by rowid limit {BATCH} offset {copied}"
        )))
        .fetch_all(&mut **read)
        .await?;
        if rows.is_empty() {
            return Ok(copied);
        }
        let mut values: Vec<Column> = columns.iter().map(|(_, kind)| Column::new(*kind)).collect();
        for row in &rows {
            for (index, column) in values.iter_mut().enumerate() {
                column.push(row, index)?;
            }
        }
        let arrays: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(index, column)| format!("${}::{}", index + 1, column.sql_type()))
            .collect();
        let statement = format!(
            "insert into {table} ({list}) select * from unnest({})",
            arrays.join(", ")
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(statement));
        for column in values {
            insert = match column {
                Column::Int(values) => insert.bind(values),
                Column::Float(values) => insert.bind(values),
                Column::Bool(values) => insert.bind(values),
                Column::Text(values) => insert.bind(values),
                Column::Bytes(values) => insert.bind(values),
            };
        }
        insert.execute(&mut **write).await?;
        copied += rows.len() as u64;
        progress.advance(rows.len() as u64);
    }
}

/// Copies the compressed chunks, creating their partitions; returns (chunks, points).
async fn copy_chunks(
    read: &mut SqlxTransaction<'_, Sqlite>,
    write: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    prints: &mut Fingerprints,
    progress: &dyn MigrationProgress,
) -> Result<(u64, u64), MigrateError> {
    let (mut chunks, mut points) = (0u64, 0u64);
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(
            "select c.chunk_id, c.series_id, s.experiment_id, c.start_ns, c.start_seq, c.end_ns,
                    c.end_seq, c.point_count, c.sum, c.min, c.max, c.m2, c.first, c.last, c.data
             from chunks c join series s using (series_id)
             where c.chunk_id > ? order by c.chunk_id limit ?",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut **read)
        .await?;
        let Some(last) = rows.last() else {
            return Ok((chunks, points));
        };
        after = last.try_get("chunk_id")?;
        let int = |name: &str| -> sqlx::Result<Vec<i64>> {
            rows.iter().map(|row| row.try_get(name)).collect()
        };
        let real = |name: &str| -> sqlx::Result<Vec<f64>> {
            rows.iter().map(|row| row.try_get(name)).collect()
        };
        let ids = int("chunk_id")?;
        let series = int("series_id")?;
        let counts = int("point_count")?;
        let data: Vec<Vec<u8>> = rows
            .iter()
            .map(|row| row.try_get("data"))
            .collect::<sqlx::Result<_>>()?;
        for ((chunk_id, series_id), bytes) in ids.iter().zip(&series).zip(&data) {
            let print = prints.entry(*series_id).or_default();
            for point in chunk::decode(bytes).map_err(corrupt(*chunk_id))?.points() {
                print.add(&point);
            }
        }
        let end_ns = int("end_ns")?;
        let weeks: HashSet<i64> = end_ns.iter().map(|&end| partitions::week_of(end)).collect();
        partitions::ensure_partitions(write, &weeks).await?;
        sqlx::query(
            "insert into chunks (chunk_id, series_id, experiment_id, start_ns, start_seq, end_ns,
                                 end_seq, point_count, sum, min, max, m2, first, last, data)
             select * from unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                                  $6::int8[], $7::int8[], $8::int8[], $9::float8[],
                                  $10::float8[], $11::float8[], $12::float8[], $13::float8[],
                                  $14::float8[], $15::bytea[])",
        )
        .bind(&ids)
        .bind(&series)
        .bind(int("experiment_id")?)
        .bind(int("start_ns")?)
        .bind(int("start_seq")?)
        .bind(&end_ns)
        .bind(int("end_seq")?)
        .bind(&counts)
        .bind(real("sum")?)
        .bind(real("min")?)
        .bind(real("max")?)
        .bind(real("m2")?)
        .bind(real("first")?)
        .bind(real("last")?)
        .bind(&data)
        .execute(&mut **write)
        .await?;
        let batch_points: u64 = counts.iter().map(|&n| n.max(0) as u64).sum();
        chunks += rows.len() as u64;
        points += batch_points;
        progress.advance(batch_points);
    }
}

/// Copies the points not yet compacted, block by block in arrival order (the target's
/// compactor takes them from there); returns (blocks, points).
async fn copy_recent_blocks(
    read: &mut SqlxTransaction<'_, Sqlite>,
    write: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    prints: &mut Fingerprints,
    progress: &dyn MigrationProgress,
) -> Result<(u64, u64), MigrateError> {
    let (mut blocks, mut points) = (0u64, 0u64);
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(
            "select block_id, series_id, point_count, min_ts, max_ts, last_seq, data
             from recent_blocks where block_id > ? order by block_id limit ?",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut **read)
        .await?;
        let Some(last) = rows.last() else {
            return Ok((blocks, points));
        };
        after = last.try_get("block_id")?;
        let int = |name: &str| -> sqlx::Result<Vec<i64>> {
            rows.iter().map(|row| row.try_get(name)).collect()
        };
        let ids = int("block_id")?;
        let series = int("series_id")?;
        let counts = int("point_count")?;
        let data: Vec<Vec<u8>> = rows
            .iter()
            .map(|row| row.try_get("data"))
            .collect::<sqlx::Result<_>>()?;
        for ((block_id, series_id), bytes) in ids.iter().zip(&series).zip(&data) {
            let print = prints.entry(*series_id).or_default();
            for point in block_points(*block_id, bytes)? {
                print.add(&point);
            }
        }
        sqlx::query(
            "insert into recent_blocks (series_id, point_count, min_ts, max_ts, last_seq, data)
             select * from unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                                  $6::bytea[])",
        )
        .bind(&series)
        .bind(&counts)
        .bind(int("min_ts")?)
        .bind(int("max_ts")?)
        .bind(int("last_seq")?)
        .bind(&data)
        .execute(&mut **write)
        .await?;
        let batch_points: u64 = counts.iter().map(|&n| n.max(0) as u64).sum();
        blocks += rows.len() as u64;
        points += batch_points;
        progress.advance(batch_points);
    }
}

/// Moves the target's id sequences past the copied ids, and its arrival numbers past every
/// copied point's.
async fn continue_sequences(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), MigrateError> {
    for (table, column) in IDENTITIES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "select setval(pg_get_serial_sequence('{table}', '{column}'),
                           coalesce((select max({column}) from {table}), 0) + 1, false)"
        )))
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "select setval('chunk_ids', coalesce((select max(chunk_id) from chunks), 0) + 1, false)",
    )
    .execute(&mut **tx)
    .await?;
    // Each value of arrival_seq stands for the SEQ_BLOCK numbers from it on: the next value
    // must start past the highest copied number.
    let highest: i64 = sqlx::query_scalar(
        "select greatest((select coalesce(max(end_seq), 0) from chunks),
                         (select coalesce(max(last_seq), 0) from recent_blocks))",
    )
    .fetch_one(&mut **tx)
    .await?;
    let next = (highest / measures::SEQ_BLOCK + 1) * measures::SEQ_BLOCK;
    sqlx::query("select setval('arrival_seq', greatest($1, 1024), false)")
        .bind(next)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reads the committed target back: row counts per table, and every series' points decoded
/// from what PostgreSQL holds, against what was read from the source. Returns the series
/// compared.
async fn verify(
    target: &PgStore,
    source_prints: &Fingerprints,
    report: &MigrationReport,
    progress: &dyn MigrationProgress,
) -> Result<u64, MigrateError> {
    let mut conn = target.pool().acquire().await?;
    for (table, copied) in &report.rows {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&mut *conn)
                .await?;
        if count.max(0) as u64 != *copied {
            return Err(MigrateError::Mismatch(format!(
                "{table} holds {count} rows on the target, {copied} were copied (did a server write to it meanwhile?)"
            )));
        }
    }
    let mut target_prints = Fingerprints::new();
    for (table, id) in [("chunks", "chunk_id"), ("recent_blocks", "block_id")] {
        let mut after = i64::MIN;
        loop {
            let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select {id}, series_id, data from {table} where {id} > $1 order by {id} limit $2"
            )))
            .bind(after)
            .bind(BATCH)
            .fetch_all(&mut *conn)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            for (id, series_id, data) in &rows {
                let print = target_prints.entry(*series_id).or_default();
                let points: Vec<Point> = if table == "chunks" {
                    chunk::decode(data)
                        .map_err(corrupt(*id))?
                        .points()
                        .collect()
                } else {
                    block_points(*id, data)?
                };
                points.iter().for_each(|point| print.add(point));
            }
        }
    }
    for (series_id, expected) in source_prints {
        let found = target_prints.remove(series_id).unwrap_or_default();
        if found != *expected {
            return Err(MigrateError::Mismatch(format!(
                "series {series_id} has {} points on the target (checksum {:016x}), {} on the source (checksum {:016x})",
                found.points, found.checksum, expected.points, expected.checksum
            )));
        }
        progress.advance(1);
    }
    if let Some((series_id, found)) = target_prints.into_iter().next() {
        return Err(MigrateError::Mismatch(format!(
            "series {series_id} has {} points on the target and none on the source",
            found.points
        )));
    }
    Ok(source_prints.len() as u64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mymonit_model::{
        Role,
        audit::{AuditEvent, Outcome},
        measure::NewMeasure,
    };

    use super::*;
    use crate::tests::{Fixture, everything, user};
    use crate::{AuditFilter, Store};

    /// Counts steps and units, as a progress bar would show them.
    #[derive(Default)]
    struct Steps(std::sync::Mutex<Vec<(&'static str, u64, u64)>>);

    impl MigrationProgress for Steps {
        fn step(&self, name: &'static str, _unit: &'static str, total: u64) {
            self.0.lock().unwrap().push((name, total, 0));
        }
        fn advance(&self, done: u64) {
            self.0.lock().unwrap().last_mut().unwrap().2 += done;
        }
    }

    fn event(action: &str, at_ns: i64) -> AuditEvent {
        AuditEvent {
            at_ns,
            actor_id: Some("A001".into()),
            actor_role: Some("ADMIN".into()),
            action: action.into(),
            target: serde_json::json!({"experiment_id": 1}),
            status: Some(201),
            outcome: Outcome::Success,
            request_id: Some("r-1".into()),
            client: None,
            detail: serde_json::json!({"name": "***"}),
        }
    }

    /// Points of two series with tied timestamps, `count` of them from `first`.
    fn readings(experiment_id: i64, first: i64, count: i64) -> Vec<NewMeasure> {
        (first..first + count)
            .map(|i| NewMeasure {
                experiment_id,
                measure_type_id: 1,
                // Two points per timestamp: ties ordered by arrival only.
                timestamp_ns: 1_700_000_000_000_000_000 + (i / 2) * 1_000_000_000,
                value: i as f64 * 0.5,
                tags: BTreeMap::from([("host".to_string(), format!("h{}", i % 2))]),
            })
            .collect()
    }

    async fn audit_trail(store: &dyn Store) -> Vec<mymonit_model::audit::AuditRecord> {
        store
            .audit_records(&AuditFilter {
                limit: 1_000,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// An embedded deployment with compacted and recent points, accounts, tokens and a trail
    /// moves whole; the target then goes on from where the source stopped, and a second copy
    /// is refused unless `replace`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_embedded_deployment_moves_into_postgres_whole() {
        let Some(target) = Fixture::postgres().await else {
            eprintln!("skipped: set MYMONIT_TEST_DATABASE_URL to run on PostgreSQL");
            return;
        };
        let source = Fixture::sqlite().await;
        let from = &*source.store;
        from.create_user(&user("A001", "admin", Role::Admin), Some("$argon2id$hash"))
            .await
            .unwrap();
        from.create_user(&user("S001", "phigg", Role::Scientist), None)
            .await
            .unwrap();
        from.create_user(&user("S002", "gone", Role::Scientist), None)
            .await
            .unwrap();
        from.erase_user("S002").await.unwrap();
        from.create_experiment("first").await.unwrap();
        let experiment = from.create_experiment("vibrations").await.unwrap();
        from.set_retention_days(experiment.experiment_id, Some(400))
            .await
            .unwrap();
        from.set_creates_measure_types(experiment.experiment_id, true)
            .await
            .unwrap();
        let personal = mymonit_model::personal_token::PersonalToken {
            token_id: "p1".into(),
            user_id: "S001".into(),
            name: "grafana".into(),
            scope: "read".into(),
            created_at: 1,
            expires_at: 4_000_000_000,
            revoked: false,
        };
        from.create_personal_token(&personal, "hash-p1")
            .await
            .unwrap();
        from.associate(experiment.experiment_id, "S001")
            .await
            .unwrap();
        let source_made = from
            .create_source(&crate::sources::NewSource {
                experiment_id: experiment.experiment_id,
                kind: mymonit_model::source::SourceKind::Fmd,
                url: "http://127.0.0.1:5055/dashboard".into(),
                sealed_secret: Some("v1.kid.sealed".into()),
                include: None,
                interval_secs: 60,
                enabled: true,
                now_ms: 1_000,
            })
            .await
            .unwrap();
        let claimed = from.claim_due_sources("a", 1_000, 60_000, 1).await.unwrap();
        assert_eq!(claimed.len(), 1);
        from.commit_pull(&crate::sources::Pulled {
            source_id: source_made.source_id,
            owner: "a".into(),
            from_cursor: None,
            cursor: Some(1_700_000_000),
            history_from: Some(1_600_000_000),
            backlog_secs: 0,
            keyed: Vec::new(),
            points: Vec::new(),
            next_fetch_ms: 61_000,
            now_ms: 1_000,
        })
        .await
        .unwrap();
        let alert_rule = from
            .create_rule(experiment.experiment_id, r#"{"name":"r"}"#, Some("S001"), 5)
            .await
            .unwrap();
        from.create_measure_type("flux", "Wb/m2", "magnetic flux density")
            .await
            .unwrap();
        from.create_ingest_token(
            "t1",
            "hash-1",
            "lab",
            &[experiment.experiment_id],
            Some("A001"),
        )
        .await
        .unwrap();
        from.revoke_token("jwt-hash", i64::MAX / 2).await.unwrap();
        from.append_messages(&[("msg-1".into(), readings(experiment.experiment_id, 0, 2))])
            .await
            .unwrap();
        from.append(&readings(experiment.experiment_id, 2, 9_000))
            .await
            .unwrap();
        while from.compact(100_000).await.unwrap().points > 0 {}
        // These stay recent: the copy carries blocks not yet compacted too.
        from.append(&readings(experiment.experiment_id, 9_002, 301))
            .await
            .unwrap();
        from.append_audit(&[event("POST /api/v1/experiments", 1), event("auth.login", 2)])
            .await
            .unwrap();
        let points_before = everything(from, experiment.experiment_id, 1_000).await;
        assert_eq!(points_before.len(), 9_303);

        let to = target.postgres_store().unwrap();
        let steps = Steps::default();
        let report = migrate_from_sqlite(source.sqlite_store().unwrap(), to, false, &steps)
            .await
            .unwrap();
        assert_eq!(report.points, 9_303);
        assert_eq!(report.series_verified, 2);
        assert_eq!(report.rows["users"], 3);
        assert_eq!(report.rows["experiments"], 2);
        assert_eq!(report.rows["inbox"], 1);
        assert_eq!(report.rows["audit_log"], 2);
        assert!(report.rows["chunks"] >= 2, "{report:?}");
        assert!(report.rows["recent_blocks"] >= 1, "{report:?}");
        // Every step ran to its total.
        let steps = steps.0.into_inner().unwrap();
        assert_eq!(steps.len(), 3, "{steps:?}");
        for (name, total, done) in &steps {
            assert_eq!(total, done, "step {name}");
        }

        let to_store = &*target.store;
        assert_eq!(
            to_store.list_users().await.unwrap(),
            from.list_users().await.unwrap()
        );
        assert!(to_store.get_user("S002").await.unwrap().is_none());
        assert_eq!(
            to_store
                .account_by_username("admin")
                .await
                .unwrap()
                .unwrap()
                .password_hash
                .as_deref(),
            Some("$argon2id$hash")
        );
        assert_eq!(
            to_store.list_experiments().await.unwrap(),
            from.list_experiments().await.unwrap()
        );
        assert_eq!(
            to_store
                .retention_days(experiment.experiment_id)
                .await
                .unwrap(),
            Some(400)
        );
        assert!(
            to_store
                .creates_measure_types(experiment.experiment_id)
                .await
                .unwrap()
        );
        assert_eq!(
            to_store.personal_token_by_hash("hash-p1").await.unwrap(),
            Some(personal)
        );
        let rules = to_store.list_rules(experiment.experiment_id).await.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].rule, alert_rule);
        // The source comes with its cursor and its sealed secret, and new ids follow its own.
        let copied = to_store.list_sources(None).await.unwrap();
        assert_eq!(copied, from.list_sources(None).await.unwrap());
        assert_eq!(copied[0].cursor, Some(1_700_000_000));
        assert_eq!(
            to_store
                .sealed_secret(source_made.source_id)
                .await
                .unwrap()
                .as_deref(),
            Some("v1.kid.sealed")
        );
        assert_eq!(
            to_store.list_associations().await.unwrap(),
            from.list_associations().await.unwrap()
        );
        assert_eq!(
            to_store.list_measure_types().await.unwrap(),
            from.list_measure_types().await.unwrap()
        );
        assert_eq!(
            to_store.list_ingest_tokens().await.unwrap(),
            from.list_ingest_tokens().await.unwrap()
        );
        assert!(to_store.is_token_revoked("jwt-hash").await.unwrap());
        assert_eq!(audit_trail(to_store).await, audit_trail(from).await);
        assert_eq!(
            to_store.audit_head().await.unwrap(),
            from.audit_head().await.unwrap()
        );
        assert_eq!(
            everything(to_store, experiment.experiment_id, 1_000).await,
            points_before
        );
        // A redelivered message is still recognised.
        assert_eq!(
            to_store
                .append_messages(&[("msg-1".into(), readings(experiment.experiment_id, 0, 2))])
                .await
                .unwrap(),
            0
        );

        // The target goes on after the copied ids, arrival numbers and trail.
        let next = to_store.create_experiment("next").await.unwrap();
        assert!(next.experiment_id > experiment.experiment_id, "{next:?}");
        to_store
            .append(&readings(experiment.experiment_id, 0, 2))
            .await
            .unwrap();
        let after = everything(to_store, experiment.experiment_id, 1_000).await;
        let highest_copied = points_before.iter().map(|p| p.1).max().unwrap();
        let new: Vec<_> = after
            .iter()
            .filter(|p| !points_before.contains(p))
            .collect();
        assert_eq!(new.len(), 2, "{new:?}");
        assert!(new.iter().all(|p| p.1 > highest_copied), "{new:?}");
        let appended = to_store
            .append_audit(&[event("auth.logout", 3)])
            .await
            .unwrap();
        assert_eq!(appended[0].seq, 3);
        assert_eq!(
            appended[0].prev_hash,
            from.audit_head().await.unwrap().unwrap().1
        );
        while to_store.compact(100_000).await.unwrap().points > 0 {}
        assert_eq!(
            everything(to_store, experiment.experiment_id, 1_000).await,
            after
        );

        // A second copy finds the target in use.
        let refused =
            migrate_from_sqlite(source.sqlite_store().unwrap(), to, false, &Steps::default())
                .await
                .unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(refused, MigrateError::TargetNotEmpty(_)),
            "{message}"
        );
        assert!(message.contains("3 users, 3 experiments"), "{message}");
        assert!(message.contains("--replace"), "{message}");
        // Told to, it replaces what the target holds.
        let again =
            migrate_from_sqlite(source.sqlite_store().unwrap(), to, true, &Steps::default())
                .await
                .unwrap();
        assert_eq!(again, report);
        assert_eq!(to_store.list_experiments().await.unwrap().len(), 2);
        assert_eq!(audit_trail(to_store).await, audit_trail(from).await);
        assert_eq!(
            everything(to_store, experiment.experiment_id, 1_000).await,
            points_before
        );
        source.finish().await;
        target.finish().await;
    }

    #[test]
    fn a_point_changed_in_any_field_changes_the_checksum() {
        let point = Point {
            ts: 1_700_000_000_000_000_000,
            seq: 42,
            value: 1.5,
        };
        let mut print = Fingerprint::default();
        print.add(&point);
        for changed in [
            Point {
                ts: point.ts + 1,
                ..point
            },
            Point { seq: 43, ..point },
            Point {
                value: 1.5000001,
                ..point
            },
        ] {
            let mut other = Fingerprint::default();
            other.add(&changed);
            assert_eq!(other.points, print.points);
            assert_ne!(other.checksum, print.checksum, "{changed:?}");
        }
        // The sum does not depend on the order points are read in.
        let second = Point { seq: 7, ..point };
        let (mut ab, mut ba) = (Fingerprint::default(), Fingerprint::default());
        ab.add(&point);
        ab.add(&second);
        ba.add(&second);
        ba.add(&point);
        assert_eq!(ab, ba);
    }
}
