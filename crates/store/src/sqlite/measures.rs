//! The time series on SQLite. Ingest appends one block per series per transaction to
//! `recent_blocks` (see `mymonit_tsdb::block`); [`MeasureStore::compact`] moves those points
//! into compressed `chunks` of one series (see `mymonit_tsdb::chunk`) in one transaction, so a
//! crash mid-compaction leaves either the blocks or the chunks that replace them, never both
//! and never neither. Chunks of a series never overlap
//! in `(ts, seq)`: a late point is merged into the chunk whose range holds it.
//!
//! This module writes and reads; `compaction`, `retention` and `legacy` (the first layout's
//! move) sit beside it.

use std::{collections::BTreeMap, sync::PoisonError};

use foldhash::{HashMap, HashMapExt};

use async_trait::async_trait;
use mymonit_model::measure::{MeasurePage, NewMeasure};
use mymonit_tsdb::Point;
use sqlx::{Row, Sqlite, SqlitePool, Transaction, sqlite::SqliteRow};

use super::{SqliteStore, now, reader};
use crate::layout::{SeriesKey, corrupt, series_key};
use crate::{
    ChunkVisitor, CompactionReport, ConsumerBatch, DeliveryOutcome, MeasureQuery, MeasureStore,
    OpenSession, Result, Series, StoreError, SummaryRule,
};

/// Blocks per multi-row `insert` (6 parameters each, far below SQLite's limit of 32,766).
const INSERT_CHUNK: usize = 128;

fn multi_row_insert(rows: usize) -> String {
    let mut sql = String::from(
        "insert into recent_blocks (series_id, point_count, min_ts, max_ts, last_seq, data) values ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?, ?, ?)");
    }
    sql
}

/// Takes `count` arrival numbers inside `tx` (which holds the database's write lock, so two
/// processes on one database never hand out the same number); returns the first.
async fn take_seqs(tx: &mut Transaction<'_, Sqlite>, count: usize) -> Result<i64> {
    let count = count as i64;
    let next: i64 =
        sqlx::query_scalar("update arrival_seq set next = next + ? where id = 1 returning next")
            .bind(count)
            .fetch_one(&mut **tx)
            .await?;
    Ok(next - count)
}

/// Raises the shared arrival number past every number already stored (points moved from the
/// first layout keep theirs).
pub(super) async fn raise_arrival_seq(pool: &SqlitePool) -> Result<()> {
    sqlx::query(
        "update arrival_seq set next = max(next,
             (select coalesce(max(last_seq), 0) + 1 from recent_blocks),
             (select coalesce(max(end_seq), 0) + 1 from chunks))
         where id = 1",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Inserts blocks (one per series) inside `tx`.
pub(super) async fn insert_blocks(
    tx: &mut Transaction<'_, Sqlite>,
    blocks: &[(i64, Vec<Point>)],
) -> Result<()> {
    for rows in blocks.chunks(INSERT_CHUNK) {
        // The same text for every full chunk, so sqlx's statement cache prepares it once.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(multi_row_insert(rows.len())));
        for (series_id, points) in rows {
            let min_ts = points.iter().map(|p| p.ts).min().unwrap_or_default();
            let max_ts = points.iter().map(|p| p.ts).max().unwrap_or_default();
            let last_seq = points.iter().map(|p| p.seq).max().unwrap_or_default();
            query = query
                .bind(series_id)
                .bind(points.len() as i64)
                .bind(min_ts)
                .bind(max_ts)
                .bind(last_seq)
                .bind(mymonit_tsdb::block::encode(points));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) fn point_from_row(row: &SqliteRow) -> Result<Point> {
    Ok(Point {
        ts: row.try_get("ts_ns")?,
        seq: row.try_get("seq")?,
        value: row.try_get("value")?,
    })
}

impl SqliteStore {
    /// Series ids for `measures`, creating missing series inside `tx`. Returns the ids and
    /// the series created, which enter the cache only once `tx` commits.
    async fn resolve_series(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        measures: &[&NewMeasure],
    ) -> Result<(Vec<i64>, Vec<(SeriesKey, i64)>)> {
        let mut ids = Vec::with_capacity(measures.len());
        // Keyed by the borrowed tags: the tags' JSON text (the stored key) is built once per
        // series and batch, not once per point.
        let mut local: HashMap<(i64, i64, &BTreeMap<String, String>), i64> = HashMap::new();
        let mut created = Vec::new();
        // Series per experiment, counted once per transaction when a series is to be created.
        let mut counts: HashMap<i64, u64> = HashMap::new();
        let mut over: Vec<(i64, i64, BTreeMap<String, String>)> = Vec::new();
        for measure in measures {
            let borrowed = (
                measure.experiment_id,
                measure.measure_type_id,
                &measure.tags,
            );
            if let Some(id) = local.get(&borrowed) {
                ids.push(*id);
                continue;
            }
            let key = series_key(measure);
            let cached = self
                .series_ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .copied();
            let id = match cached {
                Some(id) => id,
                None => {
                    let existing: Option<i64> = sqlx::query_scalar(
                        "select series_id from series
                         where experiment_id = ? and measure_type_id = ? and tags = ?",
                    )
                    .bind(key.0)
                    .bind(key.1)
                    .bind(&key.2)
                    .fetch_optional(&mut **tx)
                    .await?;
                    let id = match existing {
                        Some(id) => id,
                        None => {
                            if let Some(limit) = self.max_series_per_experiment {
                                let count = match counts.get(&key.0) {
                                    Some(count) => *count,
                                    None => {
                                        let count: i64 = sqlx::query_scalar(
                                            "select count(*) from series where experiment_id = ?",
                                        )
                                        .bind(key.0)
                                        .fetch_one(&mut **tx)
                                        .await?;
                                        count.max(0) as u64
                                    }
                                };
                                if count >= limit {
                                    counts.insert(key.0, count);
                                    if !over.iter().any(|(e, t, tags)| {
                                        (*e, *t, tags) == (key.0, key.1, &measure.tags)
                                    }) {
                                        over.push((key.0, key.1, measure.tags.clone()));
                                    }
                                    ids.push(0);
                                    continue;
                                }
                                counts.insert(key.0, count + 1);
                            }
                            // The transaction holds the write lock: no one else can have
                            // created the series since the lookup above.
                            sqlx::query_scalar(
                                "insert into series (experiment_id, measure_type_id, tags)
                                 values (?, ?, ?) returning series_id",
                            )
                            .bind(key.0)
                            .bind(key.1)
                            .bind(&key.2)
                            .fetch_one(&mut **tx)
                            .await?
                        }
                    };
                    created.push((key.clone(), id));
                    id
                }
            };
            local.insert(borrowed, id);
            ids.push(id);
        }
        if let Some(limit) = self.max_series_per_experiment
            && !over.is_empty()
        {
            return Err(StoreError::SeriesLimit {
                limit,
                series: over,
            });
        }
        Ok((ids, created))
    }

    /// Inserts measures into `recent_blocks` inside `tx`, numbering them from the shared
    /// arrival number; returns the series to cache once committed.
    pub(super) async fn insert_recent(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        measures: &[&NewMeasure],
    ) -> Result<Vec<(SeriesKey, i64)>> {
        if measures.is_empty() {
            return Ok(Vec::new());
        }
        let (series_ids, created) = self.resolve_series(tx, measures).await?;
        let first_seq = take_seqs(tx, measures.len()).await?;
        let mut by_series: HashMap<i64, Vec<Point>> = HashMap::new();
        for (index, (measure, series_id)) in measures.iter().zip(&series_ids).enumerate() {
            by_series.entry(*series_id).or_default().push(Point {
                ts: measure.timestamp_ns,
                seq: first_seq + index as i64,
                value: measure.value,
            });
        }
        let blocks: Vec<(i64, Vec<Point>)> = by_series.into_iter().collect();
        insert_blocks(tx, &blocks).await?;
        Ok(created)
    }

    /// Tells live views about committed measures (only when someone listens: copying a
    /// large batch for nobody would cost ingest time).
    pub(super) fn publish(&self, rows: &[&NewMeasure]) {
        if self.committed.receiver_count() > 0 && !rows.is_empty() {
            let batch: Vec<NewMeasure> = rows.iter().map(|m| (*m).clone()).collect();
            let _ = self.committed.send(std::sync::Arc::new(batch));
        }
    }

    pub(super) fn remember_series(&self, created: Vec<(SeriesKey, i64)>) {
        if created.is_empty() {
            return;
        }
        self.series_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(created);
    }
}

#[async_trait]
impl MeasureStore for SqliteStore {
    async fn append(&self, measures: &[NewMeasure]) -> Result<u64> {
        let (_writer, mut tx) = self.begin_measure_write().await?;
        let rows: Vec<&NewMeasure> = measures.iter().collect();
        let created = self.insert_recent(&mut tx, &rows).await?;
        tx.commit().await?;
        self.remember_series(created);
        self.publish(&rows);
        Ok(measures.len() as u64)
    }

    async fn append_messages(&self, messages: &[(String, Vec<NewMeasure>)]) -> Result<u64> {
        let (_writer, mut tx) = self.begin_measure_write().await?;
        let keys: Vec<&str> = messages.iter().map(|(key, _)| key.as_str()).collect();
        let mut fresh = super::deliveries::new_inbox_keys(&mut tx, &keys, now()).await?;
        let mut rows: Vec<&NewMeasure> = Vec::new();
        for (key, measures) in messages {
            // A key twice in one batch (a redelivery racing its original) counts once.
            if fresh.remove(key) {
                rows.extend(measures.iter());
            }
        }
        let created = self.insert_recent(&mut tx, &rows).await?;
        tx.commit().await?;
        self.remember_series(created);
        self.publish(&rows);
        Ok(rows.len() as u64)
    }

    async fn purge_inbox(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("delete from inbox where processed_at < ?")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() + self.purge_sessions(before).await?)
    }

    async fn begin_consumer_session(&self, name: &str) -> Result<i64> {
        self.begin_session(name).await
    }

    async fn append_deliveries(&self, batch: ConsumerBatch<'_>) -> Result<Vec<DeliveryOutcome>> {
        self.store_deliveries(batch).await
    }

    async fn forget_acknowledged(&self, session_id: i64, through_batch: i64) -> Result<()> {
        self.forget_bodies(session_id, through_batch).await
    }

    async fn open_consumer_sessions(&self, except: i64) -> Result<Vec<OpenSession>> {
        self.sessions_holding_bodies(except).await
    }

    async fn claim_consumer_session(&self, name: &str, for_secs: i64) -> Result<bool> {
        self.claim_session(name, for_secs).await
    }

    async fn resolve_consumer_session(
        &self,
        name: &str,
        acked_through: Option<i64>,
    ) -> Result<bool> {
        self.resolve_session(name, acked_through).await
    }

    async fn query_page(&self, query: &MeasureQuery) -> Result<MeasurePage> {
        // One snapshot for the whole page: a compaction committing between reading a series'
        // recent blocks and its chunks would otherwise show its points twice (or not at all).
        let query = query.clone();
        self.readers
            .read(move |tx| reader::measures(tx, &query))
            .await
    }

    async fn count(&self, experiment_id: i64) -> Result<u64> {
        let compacted: i64 = sqlx::query_scalar(
            "select coalesce(sum(c.point_count), 0) from chunks c
             join series s on s.series_id = c.series_id where s.experiment_id = ?",
        )
        .bind(experiment_id)
        .fetch_one(&self.pool)
        .await?;
        let recent: i64 = sqlx::query_scalar(
            "select coalesce(sum(r.point_count), 0) from recent_blocks r
             join series s on s.series_id = r.series_id where s.experiment_id = ?",
        )
        .bind(experiment_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((compacted + recent).max(0) as u64)
    }

    async fn series(
        &self,
        experiment_id: i64,
        measure_type_id: Option<i64>,
    ) -> Result<Vec<Series>> {
        self.readers
            .read(move |tx| reader::series(tx, experiment_id, measure_type_id))
            .await
    }

    async fn read_series(
        &self,
        series_id: i64,
        from: i64,
        to: i64,
        whole: Option<&SummaryRule>,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<Vec<Point>> {
        // One snapshot, so that a compaction in between neither doubles nor drops points.
        let whole = whole.cloned();
        let (chunks, recent) = self
            .readers
            .read(move |tx| reader::series_range(tx, series_id, from, to, whole.as_ref()))
            .await?;
        for (chunk_id, summary, data) in &chunks {
            visit(summary, data).map_err(corrupt(*chunk_id))?;
        }
        Ok(recent)
    }

    async fn latest_of_experiment(&self, experiment_id: i64) -> Result<Vec<(Series, Point)>> {
        // One snapshot for the whole experiment.
        self.readers
            .read(move |tx| reader::latest_of_experiment(tx, experiment_id))
            .await
    }

    async fn earliest(&self, series_id: i64) -> Result<Option<i64>> {
        self.readers
            .read(move |tx| reader::earliest(tx, series_id))
            .await
    }

    async fn compact(&self, max_points: usize) -> Result<CompactionReport> {
        let report = self.compact_batch(max_points).await?;
        if report.points > 0 {
            // A batch that was not full took every recent point there was.
            let drained = report.points < max_points.max(1) as u64;
            self.shrink_if_sparse(drained).await?;
        }
        Ok(report)
    }

    async fn storage_stats(&self) -> Result<crate::StorageStats> {
        let page_size: i64 = sqlx::query_scalar("pragma page_size")
            .fetch_one(&self.pool)
            .await?;
        let pages: i64 = sqlx::query_scalar("pragma page_count")
            .fetch_one(&self.pool)
            .await?;
        let free_pages: i64 = sqlx::query_scalar("pragma freelist_count")
            .fetch_one(&self.pool)
            .await?;
        let (chunks, chunk_points, chunk_bytes): (i64, i64, i64) = sqlx::query_as(
            "select count(*), coalesce(sum(point_count), 0), coalesce(sum(length(data)), 0)
             from chunks",
        )
        .fetch_one(&self.pool)
        .await?;
        let recent_points: i64 =
            sqlx::query_scalar("select coalesce(sum(point_count), 0) from recent_blocks")
                .fetch_one(&self.pool)
                .await?;
        let series: i64 = sqlx::query_scalar("select count(*) from series")
            .fetch_one(&self.pool)
            .await?;
        let unsigned = |n: i64| n.max(0) as u64;
        Ok(crate::StorageStats {
            file_bytes: unsigned(page_size) * unsigned(pages),
            free_bytes: unsigned(page_size) * unsigned(free_pages),
            series: unsigned(series),
            chunks: unsigned(chunks),
            chunk_points: unsigned(chunk_points),
            chunk_bytes: unsigned(chunk_bytes),
            recent_points: unsigned(recent_points),
        })
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<Vec<NewMeasure>>> {
        self.committed.subscribe()
    }

    async fn apply_retention(&self, now_ns: i64) -> Result<u64> {
        self.expire(now_ns).await
    }
}
