//! The PostgreSQL backend: the same model and chunk layout as the embedded SQLite backend, for
//! many MyMonit instances sharing one database.
//!
//! What the instances must agree on lives in the database, guarded by its locks:
//! - arrival numbers come from a sequence, taken inside the write transaction;
//! - audit appends lock the trail's head row, so appends of all instances form one chain;
//! - compaction, retention and purges run under a transaction-scoped advisory lock, one
//!   instance at a time;
//! - a new series is created under an advisory lock on its experiment, so the series limit
//!   holds across instances;
//! - AMQP bodies are locked by hash while a batch is stored (see `deliveries`);
//! - live views hear of every instance's measures through `LISTEN`/`NOTIFY` (see `live`).

use std::time::Duration;

use async_trait::async_trait;
use mymonit_model::{
    Experiment, MeasureType, User, UserPatch, ingest::IngestToken, personal_token::PersonalToken,
    units::SI_DERIVED_UNITS,
};
use sqlx::{
    PgPool, Row,
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
};

use crate::rows::{USER_COLUMNS, now};
use crate::{Account, MetaStore, OpenOptions, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Advisory lock keys (class, key) of this schema; PostgreSQL keeps them apart from the
/// one-bigint keys other applications use.
pub(crate) mod locks {
    /// The class of MyMonit's advisory locks.
    pub const CLASS: i32 = 0x4D4D;
    /// Compaction and retention (they rewrite the same rows).
    pub const MAINTENANCE: i32 = 1;
    /// Creating chunk partitions.
    pub const PARTITIONS: i32 = 2;
    /// Purging expired state.
    pub const PURGE: i32 = 3;
    /// Creating series of an experiment (class), by experiment id (key).
    pub const SERIES_CLASS: i32 = 0x4D4E;
    /// Storing AMQP bodies (class), by the first four bytes of the hash (key).
    pub const BODY_CLASS: i32 = 0x4D4F;
    /// Counting sign-in attempts (class), by the hash of the key (key).
    pub const ATTEMPTS_CLASS: i32 = 0x4D50;
}

/// MyMonit's stores on one PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Series ids by (experiment, measure type, tags JSON); only committed series enter it.
    series_ids: std::sync::Arc<std::sync::Mutex<crate::layout::SeriesCache>>,
    /// Most series one experiment may have (`None`: no limit).
    max_series_per_experiment: Option<u64>,
    /// Batches committed by any instance, for live views (fed from the database's
    /// notifications once someone subscribes).
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// When compaction last vacuumed the recent blocks.
    last_vacuum: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// See `listening`.
    committed:
        tokio::sync::broadcast::Sender<std::sync::Arc<Vec<mymonit_model::measure::NewMeasure>>>,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names, applies migrations and makes sure
    /// the SI measure types exist.
    pub async fn open(url: &str, options: &OpenOptions) -> Result<Self> {
        let connect: PgConnectOptions = url.parse()?;
        // Plan each statement once per connection: sqlx prepares every query, and with the
        // default mode PostgreSQL plans the first executions anew, which on the partitioned
        // chunks costs more than running them (1 to 6 ms against 0.2 ms for a latest-value
        // read). The generic plans prune partitions when they start, from the parameters.
        let connect = connect
            .application_name("mymonit")
            .options([("plan_cache_mode", "force_generic_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(16))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await?;
        // Several instances starting together: one migrates, the others wait for it (sqlx
        // takes an advisory lock around the migrations).
        MIGRATOR.run(&pool).await?;
        let store = Self {
            pool,
            series_ids: std::sync::Arc::default(),
            max_series_per_experiment: options.max_series_per_experiment,
            listening: std::sync::Arc::default(),
            last_vacuum: std::sync::Arc::default(),
            committed: tokio::sync::broadcast::channel(256).0,
        };
        store.seed_measure_types().await?;
        Ok(store)
    }

    async fn seed_measure_types(&self) -> Result<()> {
        let names: Vec<&str> = SI_DERIVED_UNITS.iter().map(|(name, _, _)| *name).collect();
        let symbols: Vec<&str> = SI_DERIVED_UNITS.iter().map(|(_, s, _)| *s).collect();
        let quantities: Vec<&str> = SI_DERIVED_UNITS.iter().map(|(_, _, q)| *q).collect();
        sqlx::query(
            "insert into measure_types (name, symbol, quantity)
             select * from unnest($1::text[], $2::text[], $3::text[])
             on conflict (name) do nothing",
        )
        .bind(&names)
        .bind(&symbols)
        .bind(&quantities)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The connection pool (tests and tools that inspect the database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs a plain `VACUUM` of the database: the space of dead rows (chunks rewritten by
    /// compaction, compacted recent blocks) becomes reusable and empty trailing pages go back
    /// to the file system, as autovacuum does in its own time.
    pub async fn vacuum(&self) -> Result<()> {
        sqlx::query("vacuum").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates an empty database `name` (letters, digits and `_` only) through `server_url`,
    /// a role allowed to create databases; returns the new database's URL.
    pub async fn create_database(server_url: &str, name: &str) -> Result<String> {
        check_database_name(name)?;
        let admin = PgPool::connect(server_url).await?;
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&admin)
            .await;
        admin.close().await;
        created?;
        Ok(url_with_database(server_url, name))
    }

    /// Drops database `name` through `server_url`, closing its connections.
    pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
        check_database_name(name)?;
        let admin = PgPool::connect(server_url).await?;
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {name} with (force)"
        )))
        .execute(&admin)
        .await;
        admin.close().await;
        dropped?;
        Ok(())
    }
}

fn check_database_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{name:?} is not a database name MyMonit creates: use lower-case letters, digits and _"
        )))
    }
}

/// `url` with its database replaced by `name`.
pub fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[async_trait]
impl crate::Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn attempts(&self) -> Option<&dyn crate::AttemptStore> {
        Some(self)
    }

    async fn pending_compaction(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("select coalesce(sum(point_count), 0)::int8 from recent_blocks")
                .fetch_one(&self.pool)
                .await?;
        Ok(count.max(0) as u64)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl crate::AttemptStore for PgStore {
    async fn admit_attempt(
        &self,
        keys: &[(&str, u32)],
        window_ms: i64,
        now_ms: i64,
    ) -> Result<std::result::Result<Vec<i64>, i64>> {
        let mut tx = self.pool.begin().await?;
        let since = now_ms - window_ms;
        sqlx::query("delete from login_attempts where at_ms <= $1")
            .bind(since)
            .execute(&mut *tx)
            .await?;
        let mut sorted: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
        sorted.sort_unstable();
        // Counting and adding under a lock per key, so simultaneous attempts on several
        // instances cannot all pass the limit.
        sqlx::query(
            "select count(pg_advisory_xact_lock($1, hashtext(k))) from unnest($2::text[]) as k",
        )
        .bind(locks::ATTEMPTS_CLASS)
        .bind(&sorted)
        .execute(&mut *tx)
        .await?;
        for (key, limit) in keys {
            let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                "select count(*), min(at_ms) from login_attempts
                 where key_hash = $1 and at_ms > $2",
            )
            .bind(key)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            if count >= i64::from(*limit) {
                let retry = oldest.map_or(window_ms, |oldest| oldest + window_ms - now_ms);
                return Ok(Err(retry.max(1)));
            }
        }
        let ids: Vec<i64> = sqlx::query_scalar(
            "insert into login_attempts (key_hash, at_ms)
             select k, $2 from unnest($1::text[]) as k returning attempt_id",
        )
        .bind(keys.iter().map(|(key, _)| *key).collect::<Vec<_>>())
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(ids))
    }

    async fn forget_attempts(&self, attempt_ids: &[i64], clear_keys: &[&str]) -> Result<()> {
        sqlx::query("delete from login_attempts where attempt_id = any($1) or key_hash = any($2)")
            .bind(attempt_ids)
            .bind(clear_keys)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Turns a unique-constraint failure into `Conflict(field)` by the constraint's name; other
/// errors pass through.
fn conflict_or(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        let field = db.constraint().and_then(crate::conflict_field);
        return StoreError::Conflict(field.unwrap_or("key"));
    }
    StoreError::Database(err)
}

crate::rows::row_mappers!(PgRow);

#[async_trait]
impl MetaStore for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "insert into users (user_id, name, username, email, role, password_hash, created_at)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.user_id)
        .bind(user.name.expose())
        .bind(user.username.expose())
        .bind(user.email.expose())
        .bind(user.role.as_str())
        .bind(password_hash)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn set_password_set_by(&self, user_id: &str, admin_id: &str) -> Result<()> {
        sqlx::query("update users set password_set_by = $1 where user_id = $2")
            .bind(admin_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn password_set_by(&self, user_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "select password_set_by from users where user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        Ok(self
            .account_by_id(user_id)
            .await?
            .map(|account| account.user))
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select {USER_COLUMNS} from users where username = $1 and erased_at is null"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_id(&self, user_id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select {USER_COLUMNS} from users where user_id = $1 and erased_at is null"
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "select {USER_COLUMNS} from users where erased_at is null order by user_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(&self, user_id: &str, patch: &UserPatch) -> Result<User> {
        let current = self
            .get_user(user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))?;
        let updated = patch.apply(&current);
        sqlx::query(
            "update users set name = $1, username = $2, email = $3, role = $4 where user_id = $5",
        )
        .bind(updated.name.expose())
        .bind(updated.username.expose())
        .bind(updated.email.expose())
        .bind(updated.role.as_str())
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(updated)
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()> {
        let done = sqlx::query(
            "update users set password_hash = $1, token_generation = token_generation + 1,
                 password_set_by = null
             where user_id = $2 and erased_at is null",
        )
        .bind(password_hash)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        Ok(())
    }

    async fn erase_user(&self, user_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "update users set name = null, username = null, email = null, password_hash = null,
                 token_generation = token_generation + 1, erased_at = $1
             where user_id = $2 and erased_at is null",
        )
        .bind(now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        sqlx::query("delete from associations where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        // Their tokens die with their credentials.
        sqlx::query("delete from personal_tokens where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_experiment(&self, name: &str) -> Result<Experiment> {
        let row = sqlx::query(
            "insert into experiments (name, created_at) values ($1, $2)
             returning experiment_id, name",
        )
        .bind(name)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_or)?;
        experiment_from_row(&row)
    }

    async fn get_experiment(&self, experiment_id: i64) -> Result<Option<Experiment>> {
        let row =
            sqlx::query("select experiment_id, name from experiments where experiment_id = $1")
                .bind(experiment_id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(experiment_from_row).transpose()
    }

    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        let row = sqlx::query("select experiment_id, name from experiments where name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(experiment_from_row).transpose()
    }

    async fn list_experiments(&self) -> Result<Vec<Experiment>> {
        let rows =
            sqlx::query("select experiment_id, name from experiments order by experiment_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(experiment_from_row).collect()
    }

    async fn list_experiments_of(&self, user_id: &str) -> Result<Vec<Experiment>> {
        let rows = sqlx::query(
            "select e.experiment_id, e.name from experiments e
             join associations a on a.experiment_id = e.experiment_id
             where a.user_id = $1 order by e.experiment_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(experiment_from_row).collect()
    }

    async fn rename_experiment(&self, experiment_id: i64, name: &str) -> Result<Experiment> {
        let row = sqlx::query(
            "update experiments set name = $1 where experiment_id = $2 returning experiment_id, name",
        )
        .bind(name)
        .bind(experiment_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(conflict_or)?;
        match row {
            Some(row) => experiment_from_row(&row),
            None => Err(StoreError::NotFound(format!("experiment {experiment_id}"))),
        }
    }

    async fn retention_days(&self, experiment_id: i64) -> Result<Option<u32>> {
        let days: Option<Option<i64>> =
            sqlx::query_scalar("select retention_days from experiments where experiment_id = $1")
                .bind(experiment_id)
                .fetch_optional(&self.pool)
                .await?;
        match days {
            None => Err(StoreError::NotFound(format!("experiment {experiment_id}"))),
            Some(days) => Ok(days.and_then(|d| u32::try_from(d).ok())),
        }
    }

    async fn set_retention_days(&self, experiment_id: i64, days: Option<u32>) -> Result<()> {
        let done =
            sqlx::query("update experiments set retention_days = $1 where experiment_id = $2")
                .bind(days.map(i64::from))
                .bind(experiment_id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("experiment {experiment_id}")));
        }
        Ok(())
    }

    async fn associate(&self, experiment_id: i64, user_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "insert into associations (experiment_id, user_id, created_at) values ($1, $2, $3)
             on conflict do nothing",
        )
        .bind(experiment_id)
        .bind(user_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn dissociate(&self, experiment_id: i64, user_id: &str) -> Result<bool> {
        let done =
            sqlx::query("delete from associations where experiment_id = $1 and user_id = $2")
                .bind(experiment_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_associated(&self, experiment_id: i64, user_id: &str) -> Result<bool> {
        let row =
            sqlx::query("select 1 from associations where experiment_id = $1 and user_id = $2")
                .bind(experiment_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    async fn list_associations(&self) -> Result<Vec<(Experiment, User)>> {
        let rows = sqlx::query(
            "select e.experiment_id, e.name as experiment_name,
                    u.user_id, u.name, u.username, u.email, u.role
             from associations a
             join experiments e on e.experiment_id = a.experiment_id
             join users u on u.user_id = a.user_id
             where u.erased_at is null
             order by e.experiment_id, u.user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Experiment {
                        experiment_id: row.try_get("experiment_id")?,
                        name: row.try_get("experiment_name")?,
                    },
                    user_from_row(row)?,
                ))
            })
            .collect()
    }

    async fn list_measure_types(&self) -> Result<Vec<MeasureType>> {
        let rows = sqlx::query(
            "select measure_type_id, name, symbol, quantity from measure_types order by measure_type_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(measure_type_from_row).collect()
    }

    async fn measure_type_by_name(&self, name: &str) -> Result<Option<MeasureType>> {
        let row = sqlx::query(
            "select measure_type_id, name, symbol, quantity from measure_types where name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(measure_type_from_row).transpose()
    }

    async fn create_measure_type(
        &self,
        name: &str,
        symbol: &str,
        quantity: &str,
    ) -> Result<MeasureType> {
        let row = sqlx::query(
            "insert into measure_types (name, symbol, quantity) values ($1, $2, $3)
             returning measure_type_id, name, symbol, quantity",
        )
        .bind(name)
        .bind(symbol)
        .bind(quantity)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_or)?;
        measure_type_from_row(&row)
    }

    async fn revoke_token(&self, token_hash: &str, expires_at: i64) -> Result<()> {
        sqlx::query(
            "insert into revoked_tokens (token_hash, expires_at) values ($1, $2)
             on conflict do nothing",
        )
        .bind(token_hash)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_token_revoked(&self, token_hash: &str) -> Result<bool> {
        let row = sqlx::query("select 1 from revoked_tokens where token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn purge_revoked_tokens(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("delete from revoked_tokens where expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_ingest_token(
        &self,
        token_id: &str,
        token_hash: &str,
        description: &str,
        experiment_ids: &[i64],
        created_by: Option<&str>,
    ) -> Result<IngestToken> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "insert into ingest_tokens (token_id, token_hash, description, created_by, created_at)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(token_id)
        .bind(token_hash)
        .bind(description)
        .bind(created_by)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(conflict_or)?;
        for experiment_id in experiment_ids {
            sqlx::query(
                "insert into ingest_token_experiments (token_id, experiment_id) values ($1, $2)
                 on conflict do nothing",
            )
            .bind(token_id)
            .bind(experiment_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.ingest_token(token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("ingest token {token_id}")))
    }

    async fn list_ingest_tokens(&self) -> Result<Vec<IngestToken>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select token_id from ingest_tokens order by created_at desc, token_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tokens = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(token) = self.ingest_token(&id).await? {
                tokens.push(token);
            }
        }
        Ok(tokens)
    }

    async fn revoke_ingest_token(&self, token_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "update ingest_tokens set revoked_at = $1 where token_id = $2 and revoked_at is null",
        )
        .bind(now())
        .bind(token_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ingest_token_by_hash(&self, token_hash: &str) -> Result<Option<IngestToken>> {
        let id: Option<String> = sqlx::query_scalar(
            "select token_id from ingest_tokens where token_hash = $1 and revoked_at is null",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.ingest_token(&id).await,
            None => Ok(None),
        }
    }

    async fn creates_measure_types(&self, experiment_id: i64) -> Result<bool> {
        sqlx::query_scalar("select create_measure_types from experiments where experiment_id = $1")
            .bind(experiment_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("experiment {experiment_id}")))
    }

    async fn set_creates_measure_types(&self, experiment_id: i64, enabled: bool) -> Result<()> {
        let done = sqlx::query(
            "update experiments set create_measure_types = $1 where experiment_id = $2",
        )
        .bind(enabled)
        .bind(experiment_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("experiment {experiment_id}")));
        }
        Ok(())
    }

    async fn create_personal_token(&self, token: &PersonalToken, token_hash: &str) -> Result<()> {
        sqlx::query(
            "insert into personal_tokens
                 (token_id, user_id, name, scope, token_hash, created_at, expires_at)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.token_id)
        .bind(&token.user_id)
        .bind(&token.name)
        .bind(&token.scope)
        .bind(token_hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn list_personal_tokens(&self, user_id: &str) -> Result<Vec<PersonalToken>> {
        let rows = sqlx::query(
            "select token_id, user_id, name, scope, created_at, expires_at, revoked_at
             from personal_tokens where user_id = $1 order by created_at desc, token_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(personal_token_from_row).collect()
    }

    async fn revoke_personal_token(&self, user_id: &str, token_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "update personal_tokens set revoked_at = $1
             where user_id = $2 and token_id = $3 and revoked_at is null",
        )
        .bind(now())
        .bind(user_id)
        .bind(token_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn personal_token_by_hash(&self, token_hash: &str) -> Result<Option<PersonalToken>> {
        let row = sqlx::query(
            "select token_id, user_id, name, scope, created_at, expires_at, revoked_at
             from personal_tokens where token_hash = $1 and revoked_at is null",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(personal_token_from_row).transpose()
    }
}

impl PgStore {
    async fn ingest_token(&self, token_id: &str) -> Result<Option<IngestToken>> {
        let Some(row) = sqlx::query(
            "select token_id, description, created_by, created_at, revoked_at
             from ingest_tokens where token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let experiment_ids: Vec<i64> = sqlx::query_scalar(
            "select experiment_id from ingest_token_experiments where token_id = $1 order by experiment_id",
        )
        .bind(token_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(IngestToken {
            token_id: row.try_get("token_id")?,
            description: row.try_get("description")?,
            experiment_ids,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        }))
    }
}

mod alerts;
mod audit;
mod compaction;
mod deliveries;
pub mod import;
mod live;
mod measures;
mod partitions;
mod retention;
mod sources;
