//! The time series on PostgreSQL, in the same layout as on SQLite: ingest appends one block
//! per series per transaction to `recent_blocks`; compaction moves them into compressed
//! `chunks` (partitioned by week of their last timestamp), as [`compact::plan`] places them.
//! Reads run in one `REPEATABLE READ` snapshot, so a compaction committing meanwhile neither
//! doubles nor drops points.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::PoisonError,
};

use async_trait::async_trait;
use futures::TryStreamExt;
use mymonit_model::measure::{Measure, NewMeasure};
use mymonit_tsdb::{
    Point,
    chunk::{self, Summary},
    compact::{self, ChunkBounds, Cut},
};
use sqlx::{PgConnection, Postgres, Row, Transaction, postgres::PgRow};

use super::{PgStore, live, locks, now};
use crate::{
    ChunkVisitor, CompactionReport, ConsumerBatch, DeliveryOutcome, MeasureQuery, MeasureStore,
    OpenSession, Result, Series, StoreError,
    layout::{Peek, SeriesCursor, SeriesKey, block_points, corrupt, series_key},
    tags_from_json,
};

type Tx<'a> = Transaction<'a, Postgres>;

/// Numbers each value of the `arrival_seq` sequence stands for (its increment).
pub(super) const SEQ_BLOCK: i64 = 1024;
const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
/// Chunks are partitioned by week of their last timestamp.
const NS_PER_WEEK: i64 = 7 * NS_PER_DAY;
/// The statement that opens a consistent read.
const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// Takes `count` arrival numbers inside `tx`: unique across instances, increasing. Returns
/// them and the sequence values they come from (each stands for [`SEQ_BLOCK`] numbers that
/// belong to this transaction alone).
async fn take_seqs(tx: &mut Tx<'_>, count: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    let blocks = (count as u64).div_ceil(SEQ_BLOCK as u64) as i64;
    let starts: Vec<i64> =
        sqlx::query_scalar("select nextval('arrival_seq') from generate_series(1, $1)")
            .bind(blocks)
            .fetch_all(&mut **tx)
            .await?;
    let mut seqs: Vec<i64> = starts
        .iter()
        .flat_map(|&start| start..start + SEQ_BLOCK)
        .take(count)
        .collect();
    seqs.sort_unstable();
    Ok((seqs, starts))
}

/// Inserts blocks (one per series) inside `tx`, in one statement; returns them as live views
/// are told of them.
async fn insert_blocks(
    tx: &mut Tx<'_>,
    blocks: &[(i64, Vec<Point>)],
) -> Result<Vec<live::Announced>> {
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let mut series = Vec::with_capacity(blocks.len());
    let mut counts = Vec::with_capacity(blocks.len());
    let mut min_ts = Vec::with_capacity(blocks.len());
    let mut max_ts = Vec::with_capacity(blocks.len());
    let mut last_seq = Vec::with_capacity(blocks.len());
    let mut data = Vec::with_capacity(blocks.len());
    for (series_id, points) in blocks {
        series.push(*series_id);
        counts.push(points.len() as i64);
        min_ts.push(points.iter().map(|p| p.ts).min().unwrap_or_default());
        max_ts.push(points.iter().map(|p| p.ts).max().unwrap_or_default());
        last_seq.push(points.iter().map(|p| p.seq).max().unwrap_or_default());
        data.push(mymonit_tsdb::block::encode(points));
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "insert into recent_blocks (series_id, point_count, min_ts, max_ts, last_seq, data)
         select * from unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                              $6::bytea[])
         returning block_id",
    )
    .bind(&series)
    .bind(&counts)
    .bind(&min_ts)
    .bind(&max_ts)
    .bind(&last_seq)
    .bind(&data)
    .fetch_all(&mut **tx)
    .await?;
    // `returning` lists the rows in the order the `select` produced them.
    Ok(ids
        .into_iter()
        .zip(series.iter().zip(min_ts.iter().zip(&max_ts)))
        .map(
            |(block_id, (&series_id, (&min_ts, &max_ts)))| live::Announced {
                block_id,
                series_id,
                min_ts,
                max_ts,
            },
        )
        .collect())
}

/// The points of several series in `[from, to)` still in recent blocks, by series, in no
/// particular order.
async fn recent_points_of(
    conn: &mut PgConnection,
    series: &[i64],
    from: i64,
    to: i64,
) -> Result<HashMap<i64, Vec<Point>>> {
    let mut points: HashMap<i64, Vec<Point>> = HashMap::new();
    if series.is_empty() {
        return Ok(points);
    }
    let blocks = sqlx::query(
        "select series_id, block_id, data from recent_blocks
         where series_id = any($1) and max_ts >= $2 and min_ts < $3",
    )
    .bind(series)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    for block in &blocks {
        let decoded = block_points(block.try_get("block_id")?, block.try_get("data")?)?;
        points
            .entry(block.try_get("series_id")?)
            .or_default()
            .extend(decoded.into_iter().filter(|p| p.ts >= from && p.ts < to));
    }
    Ok(points)
}

/// The points of a series in `[from, to)` still in recent blocks, in no particular order.
async fn recent_points(
    conn: &mut PgConnection,
    series_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Point>> {
    let blocks = sqlx::query(
        "select block_id, data from recent_blocks
         where series_id = $1 and max_ts >= $2 and min_ts < $3",
    )
    .bind(series_id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut points = Vec::new();
    for block in &blocks {
        let decoded = block_points(block.try_get("block_id")?, block.try_get("data")?)?;
        points.extend(decoded.into_iter().filter(|p| p.ts >= from && p.ts < to));
    }
    Ok(points)
}

fn bounds_from_row(row: &PgRow) -> Result<ChunkBounds> {
    Ok(ChunkBounds {
        chunk_id: row.try_get("chunk_id")?,
        start: (row.try_get("start_ns")?, row.try_get("start_seq")?),
        end: (row.try_get("end_ns")?, row.try_get("end_seq")?),
        count: row.try_get("point_count")?,
    })
}

/// The week a chunk's partition covers.
pub(super) fn week_of(end_ns: i64) -> i64 {
    end_ns.div_euclid(NS_PER_WEEK)
}

fn partition_name(week: i64) -> String {
    if week < 0 {
        format!("chunks_wm{}", week.unsigned_abs())
    } else {
        format!("chunks_w{week}")
    }
}

/// The weeks of `wanted` that have no partition yet.
async fn missing_weeks(tx: &mut Tx<'_>, wanted: &[i64]) -> Result<Vec<i64>> {
    let existing: Vec<i64> =
        sqlx::query_scalar("select week from chunk_partitions where week = any($1)")
            .bind(wanted)
            .fetch_all(&mut **tx)
            .await?;
    Ok(wanted
        .iter()
        .copied()
        .filter(|week| !existing.contains(week))
        .collect())
}

/// Creates the partitions of `weeks` that do not exist yet.
pub(super) async fn ensure_partitions(tx: &mut Tx<'_>, weeks: &HashSet<i64>) -> Result<()> {
    let wanted: Vec<i64> = weeks.iter().copied().collect();
    if missing_weeks(tx, &wanted).await?.is_empty() {
        return Ok(());
    }
    sqlx::query("select pg_advisory_xact_lock($1, $2)")
        .bind(locks::CLASS)
        .bind(locks::PARTITIONS)
        .execute(&mut **tx)
        .await?;
    for week in missing_weeks(tx, &wanted).await? {
        let name = partition_name(week);
        let from = week.saturating_mul(NS_PER_WEEK);
        let to = (week + 1).saturating_mul(NS_PER_WEEK);
        // Names and bounds are numbers computed here, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create table {name} partition of chunks for values from ({from}) to ({to})"
        )))
        .execute(&mut **tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "alter table {name} alter column data set storage external"
        )))
        .execute(&mut **tx)
        .await?;
        sqlx::query("insert into chunk_partitions (week, name) values ($1, $2)")
            .bind(week)
            .bind(&name)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Writes sorted points as chunks of at most [`chunk::TARGET_POINTS`], in one statement.
async fn insert_chunks(
    tx: &mut Tx<'_>,
    series_id: i64,
    experiment_id: i64,
    points: &[Point],
    cut: Cut,
) -> Result<u64> {
    let pieces: Vec<(Summary, Vec<u8>)> = compact::pieces(points, cut)
        .into_iter()
        .filter_map(|piece| Some((Summary::of(piece)?, chunk::encode(piece))))
        .collect();
    if pieces.is_empty() {
        return Ok(0);
    }
    let weeks: HashSet<i64> = pieces.iter().map(|(s, _)| week_of(s.end.0)).collect();
    ensure_partitions(tx, &weeks).await?;
    let column =
        |f: &dyn Fn(&Summary) -> i64| -> Vec<i64> { pieces.iter().map(|(s, _)| f(s)).collect() };
    let real =
        |f: &dyn Fn(&Summary) -> f64| -> Vec<f64> { pieces.iter().map(|(s, _)| f(s)).collect() };
    let data: Vec<&[u8]> = pieces.iter().map(|(_, d)| d.as_slice()).collect();
    sqlx::query(
        "insert into chunks (series_id, experiment_id, start_ns, start_seq, end_ns, end_seq,
                             point_count, sum, min, max, m2, first, last, data)
         select $1, $2, * from unnest($3::int8[], $4::int8[], $5::int8[], $6::int8[],
                                      $7::int8[], $8::float8[], $9::float8[], $10::float8[],
                                      $11::float8[], $12::float8[], $13::float8[], $14::bytea[])",
    )
    .bind(series_id)
    .bind(experiment_id)
    .bind(column(&|s| s.start.0))
    .bind(column(&|s| s.start.1))
    .bind(column(&|s| s.end.0))
    .bind(column(&|s| s.end.1))
    .bind(column(&|s| s.count as i64))
    .bind(real(&|s| s.sum))
    .bind(real(&|s| s.min))
    .bind(real(&|s| s.max))
    .bind(real(&|s| s.m2))
    .bind(real(&|s| s.first))
    .bind(real(&|s| s.last))
    .bind(&data)
    .execute(&mut **tx)
    .await?;
    Ok(pieces.len() as u64)
}

/// Decodes a stored chunk and deletes it (its points are about to be written again).
/// `end_ns` names the chunk's partition.
async fn take_chunk(tx: &mut Tx<'_>, chunk_id: i64, end_ns: i64) -> Result<Vec<Point>> {
    let data: Vec<u8> =
        sqlx::query_scalar("delete from chunks where chunk_id = $1 and end_ns = $2 returning data")
            .bind(chunk_id)
            .bind(end_ns)
            .fetch_one(&mut **tx)
            .await?;
    Ok(chunk::decode(&data)
        .map_err(corrupt(chunk_id))?
        .points()
        .collect())
}

/// Writes a series' recent points (sorted by key) into its chunks.
async fn compact_series(
    tx: &mut Tx<'_>,
    series_id: i64,
    experiment_id: i64,
    rows: &[Point],
) -> Result<CompactionReport> {
    let (Some(low), Some(high)) = (rows.first().map(Point::key), rows.last().map(Point::key))
    else {
        return Ok(CompactionReport::default());
    };
    let overlapping: Vec<ChunkBounds> = sqlx::query(
        "select chunk_id, start_ns, start_seq, end_ns, end_seq, point_count from chunks
         where series_id = $1 and end_ns >= $2 and start_ns <= $3 order by end_ns, end_seq",
    )
    .bind(series_id)
    .bind(low.0)
    .bind(high.0)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(bounds_from_row)
    .collect::<Result<_>>()?;
    let last = sqlx::query(
        "select chunk_id, start_ns, start_seq, end_ns, end_seq, point_count from chunks
         where series_id = $1 order by end_ns desc, end_seq desc limit 1",
    )
    .bind(series_id)
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(bounds_from_row)
    .transpose()?;
    let mut report = CompactionReport {
        series: 1,
        points: rows.len() as u64,
        ..CompactionReport::default()
    };
    let ends: HashMap<i64, i64> = overlapping
        .iter()
        .chain(&last)
        .map(|bounds| (bounds.chunk_id, bounds.end.0))
        .collect();
    for placement in compact::plan(rows, overlapping, last) {
        let points = match placement.replaces {
            Some(chunk_id) => {
                report.chunks_replaced += 1;
                let end_ns = ends.get(&chunk_id).copied().unwrap_or_default();
                compact::merge(placement.points, take_chunk(tx, chunk_id, end_ns).await?)
            }
            None => placement.points,
        };
        report.chunks_written +=
            insert_chunks(tx, series_id, experiment_id, &points, placement.cut).await?;
    }
    Ok(report)
}

/// Takes the maintenance lock for this transaction if no other instance holds it.
async fn try_maintenance_lock(tx: &mut Tx<'_>, which: i32) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select pg_try_advisory_xact_lock($1, $2)")
            .bind(locks::CLASS)
            .bind(which)
            .fetch_one(&mut **tx)
            .await?,
    )
}

impl PgStore {
    /// Series ids for `measures`, creating missing series inside `tx`. Returns the ids and
    /// the series created or first seen, which enter the cache only once `tx` commits.
    async fn resolve_series(
        &self,
        tx: &mut Tx<'_>,
        measures: &[&NewMeasure],
    ) -> Result<(Vec<i64>, Vec<(SeriesKey, i64)>)> {
        // The batch's distinct series, keyed by borrowed tags so the JSON is built once each.
        let mut index: HashMap<(i64, i64, &BTreeMap<String, String>), usize> = HashMap::new();
        let mut keys: Vec<SeriesKey> = Vec::new();
        let mut positions = Vec::with_capacity(measures.len());
        for measure in measures {
            let borrowed = (
                measure.experiment_id,
                measure.measure_type_id,
                &measure.tags,
            );
            let next = keys.len();
            let position = *index.entry(borrowed).or_insert_with(|| {
                keys.push(series_key(measure));
                next
            });
            positions.push(position);
        }
        let mut ids: Vec<Option<i64>> = {
            let cache = self
                .series_ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            keys.iter().map(|key| cache.get(key).copied()).collect()
        };
        let mut found = Vec::new();
        if ids.iter().any(Option::is_none) {
            self.lookup_series(tx, &keys, &mut ids, &mut found).await?;
        }
        if ids.iter().any(Option::is_none) {
            // Creating: one instance at a time per experiment (in one order), so that two
            // instances neither create the same series twice nor pass the limit together.
            let mut experiments: Vec<i64> = keys
                .iter()
                .zip(&ids)
                .filter(|(_, id)| id.is_none())
                .map(|(key, _)| key.0)
                .collect();
            experiments.sort_unstable();
            experiments.dedup();
            sqlx::query(
                "select count(pg_advisory_xact_lock($1, (e % 2147483647)::int4))
                 from unnest($2::int8[]) as e",
            )
            .bind(locks::SERIES_CLASS)
            .bind(&experiments)
            .execute(&mut **tx)
            .await?;
            self.lookup_series(tx, &keys, &mut ids, &mut found).await?;
            self.create_series(tx, &keys, &mut ids, &mut found).await?;
        }
        let ids: Vec<i64> = positions
            .iter()
            .map(|&position| ids[position].unwrap_or_default())
            .collect();
        Ok((ids, found))
    }

    /// Fills the ids of series that exist.
    async fn lookup_series(
        &self,
        tx: &mut Tx<'_>,
        keys: &[SeriesKey],
        ids: &mut [Option<i64>],
        found: &mut Vec<(SeriesKey, i64)>,
    ) -> Result<()> {
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| ids[i].is_none()).collect();
        let experiments: Vec<i64> = missing.iter().map(|&i| keys[i].0).collect();
        let types: Vec<i64> = missing.iter().map(|&i| keys[i].1).collect();
        let tags: Vec<&str> = missing.iter().map(|&i| keys[i].2.as_str()).collect();
        let rows = sqlx::query(
            "select s.series_id, k.n from series s
             join unnest($1::int8[], $2::int8[], $3::text[]) with ordinality as k(e, t, tags, n)
               on s.experiment_id = k.e and s.measure_type_id = k.t and s.tags = k.tags",
        )
        .bind(&experiments)
        .bind(&types)
        .bind(&tags)
        .fetch_all(&mut **tx)
        .await?;
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            let Some(&position) = usize::try_from(n - 1).ok().and_then(|n| missing.get(n)) else {
                continue;
            };
            let id: i64 = row.try_get("series_id")?;
            ids[position] = Some(id);
            found.push((keys[position].clone(), id));
        }
        Ok(())
    }

    /// Creates the series still missing, within each experiment's limit.
    async fn create_series(
        &self,
        tx: &mut Tx<'_>,
        keys: &[SeriesKey],
        ids: &mut [Option<i64>],
        found: &mut Vec<(SeriesKey, i64)>,
    ) -> Result<()> {
        let mut missing: Vec<usize> = (0..keys.len()).filter(|&i| ids[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if let Some(limit) = self.max_series_per_experiment {
            let mut room: HashMap<i64, u64> = HashMap::new();
            let mut over = Vec::new();
            for &position in &missing {
                let experiment = keys[position].0;
                let left = match room.get(&experiment) {
                    Some(left) => *left,
                    None => {
                        let count: i64 = sqlx::query_scalar(
                            "select count(*) from series where experiment_id = $1",
                        )
                        .bind(experiment)
                        .fetch_one(&mut **tx)
                        .await?;
                        limit.saturating_sub(count.max(0) as u64)
                    }
                };
                if left == 0 {
                    let (e, t, tags) = &keys[position];
                    over.push((
                        *e,
                        *t,
                        crate::tags_from_json((!tags.is_empty()).then_some(tags)),
                    ));
                }
                room.insert(experiment, left.saturating_sub(1));
            }
            if !over.is_empty() {
                return Err(StoreError::SeriesLimit {
                    limit,
                    series: over,
                });
            }
        }
        missing.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let experiments: Vec<i64> = missing.iter().map(|&i| keys[i].0).collect();
        let types: Vec<i64> = missing.iter().map(|&i| keys[i].1).collect();
        let tags: Vec<&str> = missing.iter().map(|&i| keys[i].2.as_str()).collect();
        let created: Vec<i64> = sqlx::query_scalar(
            "insert into series (experiment_id, measure_type_id, tags)
             select e, t, tags from unnest($1::int8[], $2::int8[], $3::text[])
                  with ordinality as k(e, t, tags, n)
             order by n
             returning series_id",
        )
        .bind(&experiments)
        .bind(&types)
        .bind(&tags)
        .fetch_all(&mut **tx)
        .await?;
        // `returning` lists rows in insertion order, which `order by n` fixes.
        for (&position, id) in missing.iter().zip(created) {
            ids[position] = Some(id);
            found.push((keys[position].clone(), id));
        }
        Ok(())
    }

    /// Inserts measures into `recent_blocks` inside `tx`, numbered from the shared arrival
    /// sequence; returns the series to cache once committed.
    pub(super) async fn insert_recent(
        &self,
        tx: &mut Tx<'_>,
        measures: &[&NewMeasure],
    ) -> Result<Vec<(SeriesKey, i64)>> {
        if measures.is_empty() {
            return Ok(Vec::new());
        }
        let (series_ids, created) = self.resolve_series(tx, measures).await?;
        let (seqs, seq_starts) = take_seqs(tx, measures.len()).await?;
        let mut by_series: HashMap<i64, Vec<Point>> = HashMap::new();
        for ((measure, series_id), seq) in measures.iter().zip(&series_ids).zip(seqs) {
            by_series.entry(*series_id).or_default().push(Point {
                ts: measure.timestamp_ns,
                seq,
                value: measure.value,
            });
        }
        let blocks: Vec<(i64, Vec<Point>)> = by_series.into_iter().collect();
        let announced = insert_blocks(tx, &blocks).await?;
        live::announce(tx, &seq_starts, &announced).await?;
        Ok(created)
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

    /// Compacts the oldest blocks, about `max_points` points, in one transaction, unless
    /// another instance is compacting.
    async fn compact_batch(&self, max_points: usize) -> Result<CompactionReport> {
        let mut tx = self.pool.begin().await?;
        if !try_maintenance_lock(&mut tx, locks::MAINTENANCE).await? {
            return Ok(CompactionReport::default());
        }
        let mut by_series: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
        // The blocks taken, by id: a block another instance commits meanwhile, with a lower
        // id than one read here, is not deleted unread.
        let mut taken_blocks = Vec::new();
        let mut taken = 0;
        {
            let mut rows = sqlx::query(
                "select block_id, series_id, data from recent_blocks order by block_id",
            )
            .fetch(&mut *tx);
            while taken < max_points.max(1)
                && let Some(row) = rows.try_next().await?
            {
                let block_id: i64 = row.try_get("block_id")?;
                let points = block_points(block_id, row.try_get("data")?)?;
                taken += points.len();
                taken_blocks.push(block_id);
                by_series
                    .entry(row.try_get("series_id")?)
                    .or_default()
                    .extend(points);
            }
        }
        if taken_blocks.is_empty() {
            return Ok(CompactionReport::default());
        }
        let series: Vec<i64> = by_series.keys().copied().collect();
        let experiments: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
            "select series_id, experiment_id from series where series_id = any($1)",
        )
        .bind(&series)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut report = CompactionReport::default();
        for (series_id, mut points) in by_series {
            points.sort_by_key(Point::key);
            let experiment_id = experiments.get(&series_id).copied().ok_or_else(|| {
                StoreError::Invalid(format!("recent points of unknown series {series_id}"))
            })?;
            report.add(compact_series(&mut tx, series_id, experiment_id, &points).await?);
        }
        sqlx::query("delete from recent_blocks where block_id = any($1)")
            .bind(&taken_blocks)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Once the backlog is drained, gives the space of compacted blocks back (their rows are
    /// dead, and would otherwise hold the table's pages, and slow its reads, until autovacuum
    /// comes); at most every few seconds.
    async fn vacuum_recent_blocks(&self) -> Result<()> {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
        {
            let mut last = self
                .last_vacuum
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < EVERY) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        sqlx::query("vacuum recent_blocks")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops the points of one series older than `cutoff`; returns how many.
    async fn expire_series(
        &self,
        tx: &mut Tx<'_>,
        series_id: i64,
        experiment_id: i64,
        cutoff: i64,
    ) -> Result<u64> {
        let mut dropped = 0u64;
        let old: Vec<i64> = sqlx::query_scalar(
            "delete from recent_blocks where series_id = $1 and max_ts < $2
             returning point_count",
        )
        .bind(series_id)
        .bind(cutoff)
        .fetch_all(&mut **tx)
        .await?;
        dropped += old.iter().map(|n| n.max(&0).unsigned_abs()).sum::<u64>();
        let straddling = sqlx::query(
            "delete from recent_blocks where series_id = $1 and min_ts < $2
             returning block_id, data",
        )
        .bind(series_id)
        .bind(cutoff)
        .fetch_all(&mut **tx)
        .await?;
        for block in &straddling {
            let points = block_points(block.try_get("block_id")?, block.try_get("data")?)?;
            let kept: Vec<Point> = points.iter().filter(|p| p.ts >= cutoff).copied().collect();
            dropped += (points.len() - kept.len()) as u64;
            if !kept.is_empty() {
                insert_blocks(tx, &[(series_id, kept)]).await?;
            }
        }
        let whole: Vec<i64> = sqlx::query_scalar(
            "delete from chunks where series_id = $1 and end_ns < $2 returning point_count",
        )
        .bind(series_id)
        .bind(cutoff)
        .fetch_all(&mut **tx)
        .await?;
        dropped += whole.iter().map(|n| n.max(&0).unsigned_abs()).sum::<u64>();
        let straddling: Vec<(i64, i64)> = sqlx::query_as(
            "select chunk_id, end_ns from chunks where series_id = $1 and start_ns < $2",
        )
        .bind(series_id)
        .bind(cutoff)
        .fetch_all(&mut **tx)
        .await?;
        for (chunk_id, end_ns) in straddling {
            let points = take_chunk(tx, chunk_id, end_ns).await?;
            let kept: Vec<Point> = points.iter().filter(|p| p.ts >= cutoff).copied().collect();
            dropped += (points.len() - kept.len()) as u64;
            insert_chunks(tx, series_id, experiment_id, &kept, Cut::Evenly).await?;
        }
        Ok(dropped)
    }

    /// Drops whole partitions every chunk of which has expired (each experiment in them keeps
    /// fewer days than the partition's end is old); returns the points dropped.
    async fn drop_expired_partitions(
        &self,
        tx: &mut Tx<'_>,
        cutoffs: &HashMap<i64, i64>,
    ) -> Result<u64> {
        let Some(&latest_cutoff) = cutoffs.values().max() else {
            return Ok(0);
        };
        let partitions: Vec<(i64, String)> =
            sqlx::query_as("select week, name from chunk_partitions where week < $1 order by week")
                // A partition ends at (week + 1) weeks: at or before the cutoff for weeks below the
                // cutoff's own.
                .bind(week_of(latest_cutoff))
                .fetch_all(&mut **tx)
                .await?;
        let mut dropped = 0u64;
        for (week, name) in partitions {
            let end = (week + 1).saturating_mul(NS_PER_WEEK);
            let held: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select experiment_id, sum(point_count)::int8 from {name} group by experiment_id"
            )))
            .fetch_all(&mut **tx)
            .await?;
            let expired = held
                .iter()
                .all(|(experiment, _)| cutoffs.get(experiment).is_some_and(|&c| c >= end));
            if expired {
                sqlx::query(sqlx::AssertSqlSafe(format!("drop table {name}")))
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("delete from chunk_partitions where week = $1")
                    .bind(week)
                    .execute(&mut **tx)
                    .await?;
                dropped += held
                    .iter()
                    .map(|(_, n)| n.max(&0).unsigned_abs())
                    .sum::<u64>();
            }
        }
        Ok(dropped)
    }
}

/// The next point of a cursor, fetching its next chunks when it needs them.
async fn peek(cursor: &mut SeriesCursor, conn: &mut PgConnection) -> Result<Option<Point>> {
    loop {
        match cursor.peek()? {
            Peek::Ready(point) => return Ok(point),
            Peek::NeedChunks => {
                // The row comparison bounds the index scan (an `or` of the two cases would
                // only filter it); `end_ns >= $2` prunes the partitions before it.
                let rows = sqlx::query(
                    "select chunk_id, start_ns, start_seq, end_ns, end_seq, data from chunks
         where series_id = $1 and (end_ns, end_seq) > ($2, $3) and end_ns >= $2
           and start_ns < $4
         order by end_ns, end_seq limit $5",
                )
                .bind(cursor.series_id)
                .bind(cursor.fetched_up_to.0)
                .bind(cursor.fetched_up_to.1)
                .bind(cursor.to)
                .bind(cursor.batch)
                .fetch_all(&mut *conn)
                .await?;
                let chunks = rows
                    .iter()
                    .map(super::fetched_chunk_from_row)
                    .collect::<Result<Vec<_>>>()?;
                cursor.add_chunks(chunks);
            }
        }
    }
}

#[async_trait]
impl MeasureStore for PgStore {
    async fn append(&self, measures: &[NewMeasure]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<&NewMeasure> = measures.iter().collect();
        let created = self.insert_recent(&mut tx, &rows).await?;
        tx.commit().await?;
        self.remember_series(created);
        Ok(measures.len() as u64)
    }

    async fn append_messages(&self, messages: &[(String, Vec<NewMeasure>)]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let keys: Vec<&str> = messages.iter().map(|(key, _)| key.as_str()).collect();
        let mut fresh = super::deliveries::new_inbox_keys(&mut tx, &keys, now()).await?;
        let mut rows: Vec<&NewMeasure> = Vec::new();
        for (key, measures) in messages {
            if fresh.remove(key) {
                rows.extend(measures.iter());
            }
        }
        let created = self.insert_recent(&mut tx, &rows).await?;
        tx.commit().await?;
        self.remember_series(created);
        Ok(rows.len() as u64)
    }

    async fn purge_inbox(&self, before: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        if !try_maintenance_lock(&mut tx, locks::PURGE).await? {
            return Ok(0);
        }
        let done = sqlx::query("delete from inbox where processed_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        let sessions = self.purge_sessions(&mut tx, before).await?;
        tx.commit().await?;
        Ok(done.rows_affected() + sessions)
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

    async fn query(&self, query: &MeasureQuery) -> Result<Vec<Measure>> {
        let mut snapshot = self.pool.begin_with(SNAPSHOT).await?;
        // The experiment and its series in one round trip, then every series' recent points
        // in one more.
        let rows = sqlx::query(
            "select e.name as experiment, s.series_id, s.measure_type_id, t.name, s.tags
             from experiments e
             left join (series s join measure_types t on t.measure_type_id = s.measure_type_id)
               on s.experiment_id = e.experiment_id
                  and ($2::int8 is null or s.measure_type_id = $2)
             where e.experiment_id = $1
             order by s.series_id",
        )
        .bind(query.experiment_id)
        .bind(query.measure_type_id)
        .fetch_all(&mut *snapshot)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let experiment: String = first.try_get("experiment")?;
        let mut series = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(series_id) = row.try_get::<Option<i64>, _>("series_id")? else {
                continue;
            };
            let tags: &str = row.try_get("tags")?;
            series.push(Series {
                series_id,
                experiment_id: query.experiment_id,
                measure_type_id: row.try_get("measure_type_id")?,
                measure_type: row.try_get("name")?,
                tags: tags_from_json((!tags.is_empty()).then_some(tags)),
            });
        }
        let from = query.from_ns.unwrap_or(i64::MIN);
        let to = query.to_ns.unwrap_or(i64::MAX);
        let after = query
            .after
            .unwrap_or((i64::MIN, i64::MIN))
            .max((from, i64::MIN));
        let limit = query.limit as usize;
        let ids: Vec<i64> = series.iter().map(|s| s.series_id).collect();
        let mut recent = recent_points_of(&mut snapshot, &ids, from, to).await?;
        let mut cursors: Vec<SeriesCursor> = series
            .into_iter()
            .map(|series| {
                let points = recent.remove(&series.series_id).unwrap_or_default();
                SeriesCursor::new(series, from, to, after, points, limit)
            })
            .collect();
        let mut out = Vec::with_capacity(limit.min(10_000));
        while out.len() < limit {
            let mut best: Option<(usize, Point)> = None;
            for (index, cursor) in cursors.iter_mut().enumerate() {
                if let Some(point) = peek(cursor, &mut snapshot).await?
                    && best.is_none_or(|(_, b)| point.key() < b.key())
                {
                    best = Some((index, point));
                }
            }
            let Some((index, point)) = best else {
                break;
            };
            let cursor = &mut cursors[index];
            cursor.advance();
            out.push(Measure {
                seq: point.seq,
                experiment_id: query.experiment_id,
                experiment: experiment.clone(),
                measure_type: cursor.measure_type.clone(),
                timestamp_ns: point.ts,
                value: point.value,
                tags: cursor.tags.clone(),
            });
        }
        snapshot.commit().await?;
        Ok(out)
    }

    async fn count(&self, experiment_id: i64) -> Result<u64> {
        let mut snapshot = self.pool.begin_with(SNAPSHOT).await?;
        let compacted: i64 = sqlx::query_scalar(
            "select coalesce(sum(point_count), 0)::int8 from chunks where experiment_id = $1",
        )
        .bind(experiment_id)
        .fetch_one(&mut *snapshot)
        .await?;
        let recent: i64 = sqlx::query_scalar(
            "select coalesce(sum(r.point_count), 0)::int8 from recent_blocks r
             join series s on s.series_id = r.series_id where s.experiment_id = $1",
        )
        .bind(experiment_id)
        .fetch_one(&mut *snapshot)
        .await?;
        snapshot.commit().await?;
        Ok((compacted + recent).max(0) as u64)
    }

    async fn series(
        &self,
        experiment_id: i64,
        measure_type_id: Option<i64>,
    ) -> Result<Vec<Series>> {
        let mut conn = self.pool.acquire().await?;
        series_of(&mut conn, experiment_id, measure_type_id).await
    }

    async fn read_series(
        &self,
        series_id: i64,
        from: i64,
        to: i64,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<Vec<Point>> {
        let mut snapshot = self.pool.begin_with(SNAPSHOT).await?;
        {
            let mut rows = sqlx::query(
                "select chunk_id, start_ns, start_seq, end_ns, end_seq, point_count,
                        sum, min, max, m2, first, last, data
                 from chunks where series_id = $1 and end_ns >= $2 and start_ns < $3
                 order by end_ns, end_seq",
            )
            .bind(series_id)
            .bind(from)
            .bind(to)
            .fetch(&mut *snapshot);
            while let Some(row) = rows.try_next().await? {
                let chunk_id: i64 = row.try_get("chunk_id")?;
                let summary = Summary {
                    count: row.try_get::<i64, _>("point_count")?.max(0) as u64,
                    start: (row.try_get("start_ns")?, row.try_get("start_seq")?),
                    end: (row.try_get("end_ns")?, row.try_get("end_seq")?),
                    sum: row.try_get("sum")?,
                    min: row.try_get("min")?,
                    max: row.try_get("max")?,
                    m2: row.try_get("m2")?,
                    first: row.try_get("first")?,
                    last: row.try_get("last")?,
                };
                let data: &[u8] = row.try_get("data")?;
                visit(&summary, data).map_err(corrupt(chunk_id))?;
            }
        }
        let recent = recent_points(&mut snapshot, series_id, from, to).await?;
        snapshot.commit().await?;
        Ok(recent)
    }

    async fn latest_of_experiment(&self, experiment_id: i64) -> Result<Vec<(Series, Point)>> {
        // One statement, so one snapshot and one round trip: each series with the last point
        // of its last chunk, and its recent block(s) with the latest timestamp.
        let rows = sqlx::query(
            "select s.series_id, s.measure_type_id, t.name, s.tags,
                    c.end_ns as ts_ns, c.end_seq as seq, c.last as value,
                    null::int8 as block_id, null::bytea as data
             from series s
             join measure_types t on t.measure_type_id = s.measure_type_id
             left join lateral (
                 select end_ns, end_seq, last from chunks
                 where series_id = s.series_id
                 order by end_ns desc, end_seq desc limit 1) c on true
             where s.experiment_id = $1
             union all
             select s.series_id, s.measure_type_id, t.name, s.tags, null, null, null,
                    b.block_id, b.data
             from series s
             join measure_types t on t.measure_type_id = s.measure_type_id
             join recent_blocks b on b.series_id = s.series_id
             where s.experiment_id = $1
               and b.max_ts = (select max(max_ts) from recent_blocks where series_id = s.series_id)",
        )
        .bind(experiment_id)
        .fetch_all(&self.pool)
        .await?;
        let mut latest: BTreeMap<i64, (Series, Option<Point>)> = BTreeMap::new();
        for row in &rows {
            let series_id: i64 = row.try_get("series_id")?;
            let points = match row.try_get::<Option<i64>, _>("block_id")? {
                Some(block_id) => block_points(block_id, row.try_get("data")?)?,
                None => match row.try_get::<Option<i64>, _>("ts_ns")? {
                    Some(ts) => vec![Point {
                        ts,
                        seq: row.try_get("seq")?,
                        value: row.try_get("value")?,
                    }],
                    None => Vec::new(),
                },
            };
            let entry = match latest.entry(series_id) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    let tags: &str = row.try_get("tags")?;
                    entry.insert((
                        Series {
                            series_id,
                            experiment_id,
                            measure_type_id: row.try_get("measure_type_id")?,
                            measure_type: row.try_get("name")?,
                            tags: tags_from_json((!tags.is_empty()).then_some(tags)),
                        },
                        None,
                    ))
                }
            };
            for point in points {
                if entry.1.is_none_or(|best| point.key() > best.key()) {
                    entry.1 = Some(point);
                }
            }
        }
        Ok(latest
            .into_values()
            .filter_map(|(series, point)| Some((series, point?)))
            .collect())
    }

    async fn earliest(&self, series_id: i64) -> Result<Option<i64>> {
        let mut snapshot = self.pool.begin_with(SNAPSHOT).await?;
        let chunked: Option<i64> = sqlx::query_scalar(
            "select start_ns from chunks where series_id = $1 order by end_ns, end_seq limit 1",
        )
        .bind(series_id)
        .fetch_optional(&mut *snapshot)
        .await?;
        let recent: Option<i64> =
            sqlx::query_scalar("select min(min_ts) from recent_blocks where series_id = $1")
                .bind(series_id)
                .fetch_one(&mut *snapshot)
                .await?;
        snapshot.commit().await?;
        Ok(match (chunked, recent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn compact(&self, max_points: usize) -> Result<CompactionReport> {
        let report = self.compact_batch(max_points).await?;
        if report.points > 0 && (report.points as usize) < max_points {
            self.vacuum_recent_blocks().await?;
        }
        Ok(report)
    }

    async fn storage_stats(&self) -> Result<crate::StorageStats> {
        let file_bytes: i64 = sqlx::query_scalar(
            "select coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = current_schema() and c.relkind = 'r'",
        )
        .fetch_one(&self.pool)
        .await?;
        let (chunks, chunk_points, chunk_bytes): (i64, i64, i64) = sqlx::query_as(
            "select count(*), coalesce(sum(point_count), 0)::int8,
                    coalesce(sum(octet_length(data)), 0)::int8
             from chunks",
        )
        .fetch_one(&self.pool)
        .await?;
        let recent_points: i64 =
            sqlx::query_scalar("select coalesce(sum(point_count), 0)::int8 from recent_blocks")
                .fetch_one(&self.pool)
                .await?;
        let series: i64 = sqlx::query_scalar("select count(*) from series")
            .fetch_one(&self.pool)
            .await?;
        let unsigned = |n: i64| n.max(0) as u64;
        Ok(crate::StorageStats {
            file_bytes: unsigned(file_bytes),
            free_bytes: 0,
            series: unsigned(series),
            chunks: unsigned(chunks),
            chunk_points: unsigned(chunk_points),
            chunk_bytes: unsigned(chunk_bytes),
            recent_points: unsigned(recent_points),
        })
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<Vec<NewMeasure>>> {
        // The feed from the database starts with the first live view.
        if !self
            .listening
            .swap(true, std::sync::atomic::Ordering::SeqCst)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(self.clone().listen());
        }
        self.committed.subscribe()
    }

    async fn apply_retention(&self, now_ns: i64) -> Result<u64> {
        let rules: Vec<(i64, i64)> = sqlx::query_as(
            "select experiment_id, retention_days from experiments
             where retention_days is not null",
        )
        .fetch_all(&self.pool)
        .await?;
        if rules.is_empty() {
            return Ok(0);
        }
        let cutoffs: HashMap<i64, i64> = rules
            .into_iter()
            .map(|(experiment, days)| {
                (
                    experiment,
                    now_ns.saturating_sub(days.saturating_mul(NS_PER_DAY)),
                )
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        if !try_maintenance_lock(&mut tx, locks::MAINTENANCE).await? {
            return Ok(0);
        }
        let mut dropped = self.drop_expired_partitions(&mut tx, &cutoffs).await?;
        for (&experiment_id, &cutoff) in &cutoffs {
            for series in series_of(&mut tx, experiment_id, None).await? {
                dropped += self
                    .expire_series(&mut tx, series.series_id, experiment_id, cutoff)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(dropped)
    }
}

/// The series of an experiment, optionally of one measure type, by id.
async fn series_of(
    conn: &mut PgConnection,
    experiment_id: i64,
    measure_type_id: Option<i64>,
) -> Result<Vec<Series>> {
    let rows = sqlx::query(
        "select s.series_id, s.experiment_id, s.measure_type_id, t.name, s.tags
         from series s join measure_types t on t.measure_type_id = s.measure_type_id
         where s.experiment_id = $1 and ($2::int8 is null or s.measure_type_id = $2)
         order by s.series_id",
    )
    .bind(experiment_id)
    .bind(measure_type_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let tags: &str = row.try_get("tags")?;
            Ok(Series {
                series_id: row.try_get("series_id")?,
                experiment_id: row.try_get("experiment_id")?,
                measure_type_id: row.try_get("measure_type_id")?,
                measure_type: row.try_get("name")?,
                tags: tags_from_json((!tags.is_empty()).then_some(tags)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mymonit_model::measure::NewMeasure;

    use super::NS_PER_WEEK;
    use crate::{MeasureStore, MetaStore, tests::Fixture};

    /// Retention drops a week's partition whole once every experiment in it has expired it,
    /// and deletes rows where another experiment keeps its points.
    #[tokio::test]
    async fn retention_drops_whole_partitions_where_it_can() {
        let Some(fixture) = Fixture::postgres().await else {
            return;
        };
        let store = fixture.postgres_store().unwrap().clone();
        let forgetful = store.create_experiment("forgetful").await.unwrap();
        let keeper = store.create_experiment("keeper").await.unwrap();
        let week = |n: i64| 3_000 * NS_PER_WEEK + n * NS_PER_WEEK;
        let points = |experiment_id: i64, in_week: i64| -> Vec<NewMeasure> {
            (0..100)
                .map(|i| NewMeasure {
                    experiment_id,
                    measure_type_id: 1,
                    timestamp_ns: week(in_week) + i * 1_000_000_000,
                    value: i as f64,
                    // A series per week: a chunk spans the time of its points, and one
                    // series' points of several weeks would share chunks.
                    tags: BTreeMap::from([("week".to_string(), in_week.to_string())]),
                })
                .collect()
        };
        // Week 0 holds both experiments; week 1 only the forgetful one; week 5 is recent.
        store
            .append(&points(forgetful.experiment_id, 0))
            .await
            .unwrap();
        store
            .append(&points(keeper.experiment_id, 0))
            .await
            .unwrap();
        store
            .append(&points(forgetful.experiment_id, 1))
            .await
            .unwrap();
        store
            .append(&points(forgetful.experiment_id, 5))
            .await
            .unwrap();
        while store.compact(100_000).await.unwrap().points > 0 {}
        let partitions = || async {
            sqlx::query_scalar::<_, i64>("select week from chunk_partitions order by week")
                .fetch_all(store.pool())
                .await
                .unwrap()
        };
        assert_eq!(partitions().await, vec![3_000, 3_001, 3_005]);
        store
            .set_retention_days(forgetful.experiment_id, Some(7))
            .await
            .unwrap();
        let dropped = store
            .apply_retention(week(5) + 3_600 * 1_000_000_000)
            .await
            .unwrap();
        assert_eq!(dropped, 200, "weeks 0 and 1 of the forgetful experiment");
        // Week 1 went whole; week 0 stays for the keeper, without the forgetful's points.
        assert_eq!(partitions().await, vec![3_000, 3_005]);
        assert_eq!(store.count(keeper.experiment_id).await.unwrap(), 100);
        assert_eq!(store.count(forgetful.experiment_id).await.unwrap(), 100);
        fixture.finish().await;
    }
}
