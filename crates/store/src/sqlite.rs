//! The embedded SQLite backend: one file `mymonit.db` in the data directory, WAL mode so
//! readers never wait for the writer and a second process (`mymonit user …`) can work beside
//! a running server, migrations applied at open.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use mymonit_model::{
    Experiment, MeasureType, User, UserPatch, ingest::IngestToken, personal_token::PersonalToken,
    units::SI_DERIVED_UNITS,
};
use sqlx::{
    Row, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};

use crate::rows::{USER_COLUMNS, now};
use crate::{Account, MetaStore, Result, StoreError};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "mymonit.db";

/// How long a connection waits for another process's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking connection of its own (reads, the measures' writer) to the database at `path`,
/// without SQLite's mutex: each is used by one thread at a time.
fn blocking_connection(path: &Path, flags: rusqlite::OpenFlags) -> Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

/// A multi-row insert's `values` list: the tuple `row` (such as `(?, ?)`) `rows` times.
fn values_list(row: &str, rows: usize) -> String {
    let mut sql = String::with_capacity((row.len() + 1) * rows);
    for index in 0..rows {
        if index > 0 {
            sql.push(',');
        }
        sql.push_str(row);
    }
    sql
}

/// Runs `work` on a blocking thread (`what` names it in the error if that thread panicked).
async fn on_blocking_thread<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        StoreError::Io(std::io::Error::other(format!("{what} task failed: {err}")))
    })?
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// MyMonit's stores on one SQLite database.
///
/// Every transaction that writes begins with `BEGIN IMMEDIATE`: it takes the write lock at
/// once (waiting up to the busy timeout) instead of reading first and failing to upgrade
/// when another writer (the audit writer, the compactor, ingest) committed in between.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Every write of the measures runs on this one blocking connection, one after the other
    /// (see the module `writer`).
    writer: std::sync::Arc<writer::Writer>,
    /// Series ids by (experiment, measure type, tags JSON); only committed series enter it.
    series_ids: std::sync::Arc<std::sync::Mutex<crate::layout::SeriesCache>>,
    /// Audit appends are serialised (one chain); holds the last record's position and hash
    /// once known.
    audit_writer: std::sync::Arc<tokio::sync::Mutex<Option<(i64, String)>>>,
    /// Most series one experiment may have (`None`: no limit).
    max_series_per_experiment: Option<u64>,
    /// Blocking read-only connections for the measures' reads.
    readers: std::sync::Arc<reader::Readers>,
    /// Committed batches, for live views.
    committed:
        tokio::sync::broadcast::Sender<std::sync::Arc<Vec<mymonit_model::measure::NewMeasure>>>,
}

impl SqliteStore {
    /// The connection pool (tests and tools that inspect the database).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Opens (creating if needed) the database in `data_dir`, applies migrations and makes
    /// sure the SI measure types exist.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last transactions on power loss,
            // which is the usual trade; a process crash loses nothing.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // Takes effect for new databases: compaction frees the pages of recent points,
            // and the compactor gives a large free list back to the file system.
            .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
            // Also for new databases: chunk rows of 1 to 2 KiB fill 16 KiB pages to within a
            // few percent, where 4 KiB pages held two and wasted a quarter.
            .page_size(16_384)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let readers = reader::Readers::new(data_dir.join(DATABASE_FILE));
        MIGRATOR.run(&pool).await?;
        let writer = writer::Writer::new(data_dir.join(DATABASE_FILE));
        legacy::move_legacy_measures(&pool, &writer).await?;
        measures::raise_arrival_seq(&pool).await?;
        let store = Self {
            pool,
            writer,
            series_ids: std::sync::Arc::default(),
            max_series_per_experiment: None,
            committed: tokio::sync::broadcast::channel(256).0,
            readers,
            audit_writer: std::sync::Arc::default(),
        };
        store.seed_measure_types().await?;
        Ok(store)
    }

    async fn seed_measure_types(&self) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (name, symbol, quantity) in SI_DERIVED_UNITS {
            sqlx::query(
                "insert into measure_types (name, symbol, quantity) values (?, ?, ?)
                 on conflict (name) do nothing",
            )
            .bind(name)
            .bind(symbol)
            .bind(quantity)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Limits every experiment to `limit` series: an append that would create more fails with
    /// [`StoreError::SeriesLimit`] and stores nothing.
    pub fn with_max_series_per_experiment(mut self, limit: u64) -> Self {
        self.max_series_per_experiment = Some(limit);
        self
    }
}

#[async_trait]
impl crate::Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn pending_compaction(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("select coalesce(sum(point_count), 0) from recent_blocks")
                .fetch_one(&self.pool)
                .await?;
        Ok(count.max(0) as u64)
    }

    async fn close(&self) {
        // The read-only connections first: the last connection to close checkpoints the WAL
        // into the database and removes it, which a read-only one cannot do.
        self.readers.close();
        self.writer.close();
        self.pool.close().await;
    }
}

/// Turns a unique-constraint failure into `Conflict(field)`; other errors pass through.
/// SQLite names the column (`UNIQUE constraint failed: users.username`), which reads as the
/// constraint `users_username`.
fn conflict_or(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        let column = db
            .message()
            .rsplit_once(": ")
            .map(|(_, column)| column.replace('.', "_"))
            .unwrap_or_default();
        return StoreError::Conflict(crate::conflict_field(&column).unwrap_or("key"));
    }
    StoreError::Database(err)
}

crate::rows::row_mappers!(SqliteRow);

#[async_trait]
impl MetaStore for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "insert into users (user_id, name, username, email, role, password_hash, created_at)
             values (?, ?, ?, ?, ?, ?, ?)",
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
        sqlx::query("update users set password_set_by = ? where user_id = ?")
            .bind(admin_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn password_set_by(&self, user_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "select password_set_by from users where user_id = ?",
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
            "select {USER_COLUMNS} from users where username = ? and erased_at is null"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_id(&self, user_id: &str) -> Result<Option<Account>> {
        self.readers
            .read_now(|tx| reader::account_by_id(tx, user_id))
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
            "update users set name = ?, username = ?, email = ?, role = ? where user_id = ?",
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
            "update users set password_hash = ?, token_generation = token_generation + 1,
                 password_set_by = null
             where user_id = ? and erased_at is null",
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "update users set name = null, username = null, email = null, password_hash = null,
                 token_generation = token_generation + 1, erased_at = ?
             where user_id = ? and erased_at is null",
        )
        .bind(now())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        sqlx::query("delete from associations where user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        // Their tokens die with their credentials.
        sqlx::query("delete from personal_tokens where user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_experiment(&self, name: &str) -> Result<Experiment> {
        let row = sqlx::query(
            "insert into experiments (name, created_at) values (?, ?)
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
        self.readers
            .read_now(|tx| reader::experiment(tx, experiment_id))
    }

    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        let row = sqlx::query("select experiment_id, name from experiments where name = ?")
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
             where a.user_id = ? order by e.experiment_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(experiment_from_row).collect()
    }

    async fn rename_experiment(&self, experiment_id: i64, name: &str) -> Result<Experiment> {
        let row = sqlx::query(
            "update experiments set name = ? where experiment_id = ? returning experiment_id, name",
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
            sqlx::query_scalar("select retention_days from experiments where experiment_id = ?")
                .bind(experiment_id)
                .fetch_optional(&self.pool)
                .await?;
        match days {
            None => Err(StoreError::NotFound(format!("experiment {experiment_id}"))),
            Some(days) => Ok(days.and_then(|d| u32::try_from(d).ok())),
        }
    }

    async fn set_retention_days(&self, experiment_id: i64, days: Option<u32>) -> Result<()> {
        let done = sqlx::query("update experiments set retention_days = ? where experiment_id = ?")
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
            "insert into associations (experiment_id, user_id, created_at) values (?, ?, ?)
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
        let done = sqlx::query("delete from associations where experiment_id = ? and user_id = ?")
            .bind(experiment_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_associated(&self, experiment_id: i64, user_id: &str) -> Result<bool> {
        self.readers
            .read_now(|tx| reader::is_associated(tx, experiment_id, user_id))
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
        self.readers
            .read_now(|tx| reader::measure_type_by_name(tx, name))
    }

    async fn create_measure_type(
        &self,
        name: &str,
        symbol: &str,
        quantity: &str,
    ) -> Result<MeasureType> {
        let row = sqlx::query(
            "insert into measure_types (name, symbol, quantity) values (?, ?, ?)
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
            "insert into revoked_tokens (token_hash, expires_at) values (?, ?)
             on conflict do nothing",
        )
        .bind(token_hash)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_token_revoked(&self, token_hash: &str) -> Result<bool> {
        self.readers
            .read_now(|tx| reader::is_token_revoked(tx, token_hash))
    }

    async fn account_and_revocation(
        &self,
        user_id: &str,
        token_hash: &str,
    ) -> Result<(Option<Account>, bool)> {
        self.readers.read_now(|tx| {
            Ok((
                reader::account_by_id(tx, user_id)?,
                reader::is_token_revoked(tx, token_hash)?,
            ))
        })
    }

    async fn experiment_and_association(
        &self,
        experiment_id: i64,
        user_id: Option<&str>,
    ) -> Result<(Option<Experiment>, bool)> {
        self.readers.read_now(|tx| {
            let associated = match user_id {
                Some(user_id) => reader::is_associated(tx, experiment_id, user_id)?,
                None => true,
            };
            Ok((reader::experiment(tx, experiment_id)?, associated))
        })
    }

    async fn purge_revoked_tokens(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("delete from revoked_tokens where expires_at < ?")
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "insert into ingest_tokens (token_id, token_hash, description, created_by, created_at)
             values (?, ?, ?, ?, ?)",
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
                "insert into ingest_token_experiments (token_id, experiment_id) values (?, ?)
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
            "update ingest_tokens set revoked_at = ? where token_id = ? and revoked_at is null",
        )
        .bind(now())
        .bind(token_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ingest_token_by_hash(&self, token_hash: &str) -> Result<Option<IngestToken>> {
        let id: Option<String> = sqlx::query_scalar(
            "select token_id from ingest_tokens where token_hash = ? and revoked_at is null",
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
        sqlx::query_scalar("select create_measure_types from experiments where experiment_id = ?")
            .bind(experiment_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("experiment {experiment_id}")))
    }

    async fn set_creates_measure_types(&self, experiment_id: i64, enabled: bool) -> Result<()> {
        let done =
            sqlx::query("update experiments set create_measure_types = ? where experiment_id = ?")
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
             values (?, ?, ?, ?, ?, ?, ?)",
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
             from personal_tokens where user_id = ? order by created_at desc, token_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(personal_token_from_row).collect()
    }

    async fn revoke_personal_token(&self, user_id: &str, token_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "update personal_tokens set revoked_at = ?
             where user_id = ? and token_id = ? and revoked_at is null",
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
             from personal_tokens where token_hash = ? and revoked_at is null",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(personal_token_from_row).transpose()
    }
}

impl SqliteStore {
    async fn ingest_token(&self, token_id: &str) -> Result<Option<IngestToken>> {
        let Some(row) = sqlx::query(
            "select token_id, description, created_by, created_at, revoked_at
             from ingest_tokens where token_id = ?",
        )
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let experiment_ids: Vec<i64> = sqlx::query_scalar(
            "select experiment_id from ingest_token_experiments where token_id = ? order by experiment_id",
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
mod legacy;
mod measures;
mod reader;
mod retention;
mod sources;
mod writer;

#[cfg(test)]
mod tests;
