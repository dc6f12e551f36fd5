//! Pull sources on SQLite. One process writes at a time, so a claim is a plain update; the
//! lease still matters when two processes share the file.

use async_trait::async_trait;
use mymonit_model::{measure::NewMeasure, source::Source};
use sqlx::AssertSqlSafe;

use rusqlite::OptionalExtension;

use super::measures::PointsBuilder;
use super::{SqliteStore, source_from_row};
use crate::{
    Result,
    rows::SOURCE_COLUMNS,
    sources::{ClaimedSource, NewSource, PullOutcome, Pulled, SourcePatch, SourceStore},
};

#[async_trait]
impl SourceStore for SqliteStore {
    async fn create_source(&self, source: &NewSource) -> Result<Source> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "insert into sources (experiment_id, kind, url, sealed_secret, include, interval_secs,
                 enabled, created_at_ms, next_fetch_ms)
             values (?, ?, ?, ?, ?, ?, ?, ?, ?) returning {SOURCE_COLUMNS}"
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
             where ? is null or experiment_id = ? order by source_id"
        )))
        .bind(experiment_id)
        .bind(experiment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(source_from_row).collect()
    }

    async fn get_source(&self, source_id: i64) -> Result<Option<Source>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "select {SOURCE_COLUMNS} from sources where source_id = ?"
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
                 url = coalesce(?, url),
                 sealed_secret = case when ? then ? else sealed_secret end,
                 include = case when ? then ? else include end,
                 interval_secs = coalesce(?, interval_secs),
                 enabled = coalesce(?, enabled),
                 next_fetch_ms = case when ? then ? else next_fetch_ms end
             where source_id = ? returning {SOURCE_COLUMNS}"
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
            sqlx::query_scalar("select sealed_secret from sources where source_id = ?")
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(secret.flatten())
    }

    async fn delete_source(&self, source_id: i64) -> Result<bool> {
        let done = sqlx::query("delete from sources where source_id = ?")
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "update sources set lease_owner = ?, lease_until_ms = ?
             where source_id in (
                 select source_id from sources
                 where enabled and next_fetch_ms <= ?
                   and (lease_until_ms is null or lease_until_ms < ?)
                 order by next_fetch_ms limit ?)
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
        let mut builder = PointsBuilder::default();
        builder.part(&pulled.points);
        for (_, measures) in &pulled.keyed {
            builder.part(measures);
        }
        let points = builder.build();
        let keys: Vec<String> = pulled.keyed.iter().map(|(key, _)| key.clone()).collect();
        let (source_id, owner, from_cursor) =
            (pulled.source_id, pulled.owner.clone(), pulled.from_cursor);
        let (cursor, history_from, backlog_secs, now_ms, next_fetch_ms) = (
            pulled.cursor,
            pulled.history_from,
            pulled.backlog_secs,
            pulled.now_ms,
            pulled.next_fetch_ms,
        );
        let series = self.series_ids();
        let written = self
            .writer
            .write(move |tx| {
                let holder: Option<(Option<String>, Option<i64>)> = tx
                    .prepare_cached("select lease_owner, cursor from sources where source_id = ?1")?
                    .query_row([source_id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                match holder {
                    Some((Some(holder), cursor)) if holder == owner && cursor == from_cursor => {}
                    _ => return Ok(None),
                }
                // Part 0 holds the points no later fetch reads again; each keyed part follows.
                let mut stored = vec![0];
                stored.extend(super::deliveries::new_keyed_parts(
                    tx,
                    &keys,
                    now_ms / 1_000,
                    1,
                )?);
                let created = series.insert_recent(tx, &points, &stored)?;
                let count = stored
                    .iter()
                    .map(|part| points.part_len(*part))
                    .sum::<usize>();
                tx.prepare_cached(
                    "update sources set cursor = ?1, history_from = coalesce(?2, history_from),
                         backlog_secs = ?3, last_success_ms = ?4, failures = 0,
                         points_fetched = points_fetched + ?5, next_fetch_ms = ?6,
                         lease_owner = null, lease_until_ms = null
                     where source_id = ?7",
                )?
                .execute((
                    cursor,
                    history_from,
                    backlog_secs,
                    now_ms,
                    count as i64,
                    next_fetch_ms,
                    source_id,
                ))?;
                Ok(Some((stored, created)))
            })
            .await?;
        let Some((stored, created)) = written else {
            return Ok(PullOutcome::Superseded);
        };
        self.remember_series(created);
        let rows: Vec<&NewMeasure> = stored
            .iter()
            .flat_map(|part| match part {
                0 => pulled.points.iter(),
                keyed => pulled.keyed[keyed - 1].1.iter(),
            })
            .collect();
        self.publish(&rows);
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
            "update sources set last_error = ?, last_error_ms = ?, failures = failures + 1,
                 next_fetch_ms = ?, lease_owner = null, lease_until_ms = null
             where source_id = ? and lease_owner = ?",
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
