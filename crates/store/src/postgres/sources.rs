//! Pull sources on PostgreSQL: instances claim due sources with `FOR UPDATE SKIP LOCKED`, so
//! each is fetched by one of them, and a commit checks the lease under a row lock.

use async_trait::async_trait;
use mymonit_model::{measure::NewMeasure, source::Source};
use sqlx::AssertSqlSafe;

use super::{PgStore, source_from_row};
use crate::{
    Result,
    rows::SOURCE_COLUMNS,
    sources::{ClaimedSource, NewSource, PullOutcome, Pulled, SourcePatch, SourceStore},
};

#[async_trait]
impl SourceStore for PgStore {
    async fn create_source(&self, source: &NewSource) -> Result<Source> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "insert into sources (experiment_id, kind, url, sealed_secret, include, interval_secs,
                 enabled, created_at_ms, next_fetch_ms)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {SOURCE_COLUMNS}"
        )))
        .bind(source.experiment_id)
        .bind(source.kind.as_str())
        .bind(&source.url)
        .bind(&source.sealed_secret)
        .bind(&source.include)
        .bind(i64::from(source.interval_secs))
        .bind(source.enabled)
        .bind(source.now_ms)
        .bind(source.now_ms)
        .fetch_one(&self.pool)
        .await?;
        source_from_row(&row)
    }

    async fn list_sources(&self, experiment_id: Option<i64>) -> Result<Vec<Source>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "select {SOURCE_COLUMNS} from sources
             where $1::int8 is null or experiment_id = $1 order by source_id"
        )))
        .bind(experiment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(source_from_row).collect()
    }

    async fn get_source(&self, source_id: i64) -> Result<Option<Source>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "select {SOURCE_COLUMNS} from sources where source_id = $1"
        )))
        .bind(source_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn update_source(&self, source_id: i64, patch: &SourcePatch) -> Result<Option<Source>> {
        let now_ms = mymonit_model::time::now_ns() / 1_000_000;
        let refetch = patch.url.is_some() || patch.sealed_secret.is_some();
        let row = sqlx::query(AssertSqlSafe(format!(
            "update sources set
                 url = coalesce($1, url),
                 sealed_secret = case when $2 then $3 else sealed_secret end,
                 include = case when $4 then $5 else include end,
                 interval_secs = coalesce($6, interval_secs),
                 enabled = coalesce($7, enabled),
                 next_fetch_ms = case when $8 then $9 else next_fetch_ms end
             where source_id = $10 returning {SOURCE_COLUMNS}"
        )))
        .bind(&patch.url)
        .bind(patch.sealed_secret.is_some())
        .bind(patch.sealed_secret.clone().flatten())
        .bind(patch.include.is_some())
        .bind(patch.include.clone().flatten())
        .bind(patch.interval_secs.map(i64::from))
        .bind(patch.enabled)
        .bind(refetch || patch.enabled == Some(true))
        .bind(now_ms)
        .bind(source_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn sealed_secret(&self, source_id: i64) -> Result<Option<String>> {
        let secret: Option<Option<String>> =
            sqlx::query_scalar("select sealed_secret from sources where source_id = $1")
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(secret.flatten())
    }

    async fn delete_source(&self, source_id: i64) -> Result<bool> {
        let done = sqlx::query("delete from sources where source_id = $1")
            .bind(source_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_due_sources(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<ClaimedSource>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "update sources set lease_owner = $1, lease_until_ms = $2
             where source_id in (
                 select source_id from sources
                 where enabled and next_fetch_ms <= $3
                   and (lease_until_ms is null or lease_until_ms < $4)
                 order by next_fetch_ms limit $5
                 for update skip locked)
             returning {SOURCE_COLUMNS}, sealed_secret"
        )))
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                use sqlx::Row as _;
                Ok(ClaimedSource {
                    source: source_from_row(row)?,
                    sealed_secret: row.try_get("sealed_secret")?,
                })
            })
            .collect()
    }

    async fn commit_pull(&self, pulled: &Pulled) -> Result<PullOutcome> {
        let mut tx = self.pool.begin().await?;
        let holder: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "select lease_owner, cursor from sources where source_id = $1 for update",
        )
        .bind(pulled.source_id)
        .fetch_optional(&mut *tx)
        .await?;
        match holder {
            Some((Some(owner), cursor))
                if owner == pulled.owner && cursor == pulled.from_cursor => {}
            _ => {
                // Ended here: a dropped transaction is rolled back by a task of the pool a
                // moment later, and until then holds the row lock that claims skip.
                tx.rollback().await?;
                return Ok(PullOutcome::Superseded);
            }
        }
        let keys: Vec<&str> = pulled.keyed.iter().map(|(key, _)| key.as_str()).collect();
        let mut fresh =
            super::deliveries::new_inbox_keys(&mut tx, &keys, pulled.now_ms / 1_000).await?;
        let mut rows: Vec<&NewMeasure> = pulled.points.iter().collect();
        for (key, measures) in &pulled.keyed {
            if fresh.remove(key) {
                rows.extend(measures.iter());
            }
        }
        let created = self.insert_recent(&mut tx, &rows).await?;
        sqlx::query(
            "update sources set cursor = $1, history_from = coalesce($2, history_from),
                 backlog_secs = $3, last_success_ms = $4, failures = 0,
                 points_fetched = points_fetched + $5, next_fetch_ms = $6,
                 lease_owner = null, lease_until_ms = null
             where source_id = $7",
        )
        .bind(pulled.cursor)
        .bind(pulled.history_from)
        .bind(pulled.backlog_secs)
        .bind(pulled.now_ms)
        .bind(rows.len() as i64)
        .bind(pulled.next_fetch_ms)
        .bind(pulled.source_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.remember_series(created);
        Ok(PullOutcome::Stored(rows.len() as u64))
    }

    async fn record_pull_failure(
        &self,
        source_id: i64,
        owner: &str,
        error: &str,
        now_ms: i64,
        next_fetch_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "update sources set last_error = $1, last_error_ms = $2, failures = failures + 1,
                 next_fetch_ms = $3, lease_owner = null, lease_until_ms = null
             where source_id = $4 and lease_owner = $5",
        )
        .bind(error)
        .bind(now_ms)
        .bind(next_fetch_ms)
        .bind(source_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
