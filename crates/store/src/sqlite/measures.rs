//! The time series on SQLite. Ingest appends one block per series per transaction to
//! `recent_blocks` (see `mymonit_tsdb::block`); [`MeasureStore::compact`] moves those points
//! into compressed `chunks` of one series (see `mymonit_tsdb::chunk`) in one transaction, so a
//! crash mid-compaction leaves either the blocks or the chunks that replace them, never both
//! and never neither. Chunks of a series never overlap
//! in `(ts, seq)`: a late point is merged into the chunk whose range holds it.
//!
//! This module writes and reads; `compaction`, `retention` and `legacy` (the first layout's
//! move) sit beside it.

use std::{
    collections::BTreeMap,
    ops::Range,
    sync::{Mutex, PoisonError},
};

use foldhash::{HashMap, HashMapExt};

use async_trait::async_trait;
use mymonit_model::measure::{MeasurePage, NewMeasure};
use mymonit_tsdb::Point;
use rusqlite::{OptionalExtension, Transaction};
use sqlx::SqlitePool;

use super::{SqliteStore, now, reader};
use crate::layout::{SeriesCache, SeriesKey, corrupt, series_key};
use crate::{
    ChunkVisitor, CompactionReport, ConsumerBatch, DeliveryOutcome, MeasureQuery, MeasureStore,
    OpenSession, Result, Series, StoreError, SummaryRule,
};

/// Blocks per multi-row `insert` (6 parameters each, far below SQLite's limit of 32,766).
const INSERT_CHUNK: usize = 128;

fn multi_row_insert(rows: usize) -> String {
    format!(
        "insert into recent_blocks (series_id, point_count, min_ts, max_ts, last_seq, data) \
         values {}",
        super::values_list("(?, ?, ?, ?, ?, ?)", rows)
    )
}

/// Takes `count` arrival numbers inside `tx` (which holds the database's write lock, so two
/// processes on one database never hand out the same number); returns the first.
fn take_seqs(tx: &Transaction<'_>, count: usize) -> Result<i64> {
    let count = count as i64;
    let next: i64 = tx
        .prepare_cached("update arrival_seq set next = next + ?1 where id = 1 returning next")?
        .query_row([count], |row| row.get(0))?;
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
pub(super) fn insert_blocks(tx: &Transaction<'_>, blocks: &[(i64, &[Point])]) -> Result<()> {
    for rows in blocks.chunks(INSERT_CHUNK) {
        // The same text for every full chunk, so the statement is prepared once.
        let mut insert = tx.prepare_cached(&multi_row_insert(rows.len()))?;
        let mut index = 0;
        for (series_id, points) in rows {
            let min_ts = points.iter().map(|p| p.ts).min().unwrap_or_default();
            let max_ts = points.iter().map(|p| p.ts).max().unwrap_or_default();
            let last_seq = points.iter().map(|p| p.seq).max().unwrap_or_default();
            insert.raw_bind_parameter(index + 1, series_id)?;
            insert.raw_bind_parameter(index + 2, points.len() as i64)?;
            insert.raw_bind_parameter(index + 3, min_ts)?;
            insert.raw_bind_parameter(index + 4, max_ts)?;
            insert.raw_bind_parameter(index + 5, last_seq)?;
            insert.raw_bind_parameter(index + 6, mymonit_tsdb::block::encode(points))?;
            index += 6;
        }
        insert.raw_execute()?;
    }
    Ok(())
}

/// Measures reduced to what a write needs, owned so that they can move to the writer's
/// thread: the distinct series, and each point's series, time and value, in parts (one per
/// message) that a write stores or skips whole.
#[derive(Debug, Default)]
pub(super) struct Points {
    /// Each series' key, and its tags (to name it if it does not fit).
    series: Vec<(SeriesKey, BTreeMap<String, String>)>,
    /// (index into `series`, time, value).
    points: Vec<(u32, i64, f64)>,
    parts: Vec<Range<usize>>,
}

impl Points {
    /// The points in one part.
    pub(super) fn part_len(&self, part: usize) -> usize {
        self.parts[part].len()
    }
}

/// Builds [`Points`], finding each series once per batch: keyed by the borrowed tags, the
/// tags' JSON text (the stored key) is built once per series and batch, not once per point.
#[derive(Default)]
pub(super) struct PointsBuilder<'a> {
    local: HashMap<(i64, i64, &'a BTreeMap<String, String>), u32>,
    built: Points,
}

impl<'a> PointsBuilder<'a> {
    /// Adds one part; returns its index.
    pub(super) fn part(&mut self, measures: &'a [NewMeasure]) -> usize {
        let start = self.built.points.len();
        for measure in measures {
            let borrowed = (
                measure.experiment_id,
                measure.measure_type_id,
                &measure.tags,
            );
            let series = match self.local.get(&borrowed) {
                Some(series) => *series,
                None => {
                    let series = self.built.series.len() as u32;
                    self.built
                        .series
                        .push((series_key(measure), measure.tags.clone()));
                    self.local.insert(borrowed, series);
                    series
                }
            };
            self.built
                .points
                .push((series, measure.timestamp_ns, measure.value));
        }
        self.built.parts.push(start..self.built.points.len());
        self.built.parts.len() - 1
    }

    pub(super) fn build(self) -> Points {
        self.built
    }
}

/// Series a write created: they enter the cache once it commits.
pub(super) type Created = Vec<(SeriesKey, i64)>;

/// What a write needs to find and create series.
#[derive(Clone, Debug)]
pub(super) struct SeriesIds {
    /// Committed series.
    pub(super) cache: std::sync::Arc<Mutex<SeriesCache>>,
    /// Most series one experiment may have.
    pub(super) limit: Option<u64>,
}

impl SeriesIds {
    /// Ids of the series marked `used`, creating missing ones inside `tx`. Returns the ids
    /// (by index into `series`) and the series created, which enter the cache only once
    /// `tx` commits.
    fn resolve(
        &self,
        tx: &Transaction<'_>,
        series: &[(SeriesKey, BTreeMap<String, String>)],
        used: &[bool],
    ) -> Result<(Vec<i64>, Created)> {
        let mut ids: Vec<Option<i64>> = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            series
                .iter()
                .zip(used)
                .map(|((key, _), used)| used.then(|| cache.get(key).copied()).flatten())
                .collect()
        };
        let mut created = Vec::new();
        // Series per experiment, counted once per transaction when a series is to be created.
        let mut counts: HashMap<i64, u64> = HashMap::new();
        let mut over: Vec<(i64, i64, BTreeMap<String, String>)> = Vec::new();
        for (index, (key, tags)) in series.iter().enumerate() {
            if !used[index] || ids[index].is_some() {
                continue;
            }
            let existing: Option<i64> = tx
                .prepare_cached(
                    "select series_id from series
                     where experiment_id = ?1 and measure_type_id = ?2 and tags = ?3",
                )?
                .query_row((key.0, key.1, &key.2), |row| row.get(0))
                .optional()?;
            let id = match existing {
                Some(id) => id,
                None => {
                    if let Some(limit) = self.limit {
                        let count = match counts.get(&key.0) {
                            Some(count) => *count,
                            None => {
                                let count: i64 = tx
                                    .prepare_cached(
                                        "select count(*) from series where experiment_id = ?1",
                                    )?
                                    .query_row([key.0], |row| row.get(0))?;
                                count.max(0) as u64
                            }
                        };
                        if count >= limit {
                            counts.insert(key.0, count);
                            over.push((key.0, key.1, tags.clone()));
                            continue;
                        }
                        counts.insert(key.0, count + 1);
                    }
                    // The transaction holds the write lock: no one else can have created the
                    // series since the lookup above.
                    tx.prepare_cached(
                        "insert into series (experiment_id, measure_type_id, tags)
                         values (?1, ?2, ?3) returning series_id",
                    )?
                    .query_row((key.0, key.1, &key.2), |row| row.get(0))?
                }
            };
            created.push((key.clone(), id));
            ids[index] = Some(id);
        }
        if let Some(limit) = self.limit
            && !over.is_empty()
        {
            return Err(StoreError::SeriesLimit {
                limit,
                series: over,
            });
        }
        Ok((
            ids.into_iter().map(Option::unwrap_or_default).collect(),
            created,
        ))
    }

    /// Inserts the points of `parts` (in that order) into `recent_blocks` inside `tx`,
    /// numbering them from the shared arrival number; returns the series to cache once
    /// committed.
    pub(super) fn insert_recent(
        &self,
        tx: &Transaction<'_>,
        batch: &Points,
        parts: &[usize],
    ) -> Result<Created> {
        let ranges = || parts.iter().map(|part| batch.parts[*part].clone());
        let count: usize = ranges().map(|range| range.len()).sum();
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut used = vec![false; batch.series.len()];
        for range in ranges() {
            for (series, _, _) in &batch.points[range] {
                used[*series as usize] = true;
            }
        }
        let (series_ids, created) = self.resolve(tx, &batch.series, &used)?;
        let mut seq = take_seqs(tx, count)?;
        let mut blocks: Vec<Vec<Point>> = vec![Vec::new(); batch.series.len()];
        for range in ranges() {
            for (series, ts, value) in &batch.points[range] {
                blocks[*series as usize].push(Point {
                    ts: *ts,
                    seq,
                    value: *value,
                });
                seq += 1;
            }
        }
        let blocks: Vec<(i64, &[Point])> = series_ids
            .iter()
            .zip(&blocks)
            .filter(|(_, points)| !points.is_empty())
            .map(|(id, points)| (*id, points.as_slice()))
            .collect();
        insert_blocks(tx, &blocks)?;
        Ok(created)
    }
}

impl SqliteStore {
    /// What a write needs to find and create series.
    pub(super) fn series_ids(&self) -> SeriesIds {
        SeriesIds {
            cache: std::sync::Arc::clone(&self.series_ids),
            limit: self.max_series_per_experiment,
        }
    }

    /// Tells live views about committed measures (only when someone listens: copying a
    /// large batch for nobody would cost ingest time).
    pub(super) fn publish(&self, rows: &[&NewMeasure]) {
        if self.committed.receiver_count() > 0 && !rows.is_empty() {
            let batch: Vec<NewMeasure> = rows.iter().map(|m| (*m).clone()).collect();
            let _ = self.committed.send(std::sync::Arc::new(batch));
        }
    }

    pub(super) fn remember_series(&self, created: Created) {
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
        let mut builder = PointsBuilder::default();
        builder.part(measures);
        let points = builder.build();
        let series = self.series_ids();
        let created = self
            .writer
            .write(move |tx| series.insert_recent(tx, &points, &[0]))
            .await?;
        self.remember_series(created);
        let rows: Vec<&NewMeasure> = measures.iter().collect();
        self.publish(&rows);
        Ok(measures.len() as u64)
    }

    async fn append_messages(&self, messages: &[(String, Vec<NewMeasure>)]) -> Result<u64> {
        let mut builder = PointsBuilder::default();
        for (_, measures) in messages {
            builder.part(measures);
        }
        let points = builder.build();
        let keys: Vec<String> = messages.iter().map(|(key, _)| key.clone()).collect();
        let series = self.series_ids();
        let (stored, created) = self
            .writer
            .write(move |tx| {
                let stored = super::deliveries::new_keyed_parts(tx, &keys, now(), 0)?;
                let created = series.insert_recent(tx, &points, &stored)?;
                Ok((stored, created))
            })
            .await?;
        self.remember_series(created);
        let rows: Vec<&NewMeasure> = stored
            .iter()
            .flat_map(|part| messages[*part].1.iter())
            .collect();
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
        self.compact_batch(max_points).await
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
