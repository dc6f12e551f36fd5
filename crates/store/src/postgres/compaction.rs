//! Compaction on PostgreSQL: recent blocks move into compressed chunks of one series, placed
//! as [`compact::plan`] says, in one transaction, by one instance at a time.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::PoisonError,
};

use futures::TryStreamExt;
use mymonit_tsdb::{
    Point,
    chunk::{self, Summary},
    compact::{self, ChunkBounds, Cut},
};
use sqlx::{Row, postgres::PgRow};

use super::measures::Tx;
use super::partitions::{ensure_partitions, week_of};
use super::{PgStore, locks};
use crate::layout::{block_points, corrupt};
use crate::{CompactionReport, Result, StoreError};

fn bounds_from_row(row: &PgRow) -> Result<ChunkBounds> {
    Ok(ChunkBounds {
        chunk_id: row.try_get("chunk_id")?,
        start: (row.try_get("start_ns")?, row.try_get("start_seq")?),
        end: (row.try_get("end_ns")?, row.try_get("end_seq")?),
        count: row.try_get("point_count")?,
    })
}

/// Writes sorted points as chunks of at most [`chunk::TARGET_POINTS`], in one statement.
pub(super) async fn insert_chunks(
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
pub(super) async fn take_chunk(tx: &mut Tx<'_>, chunk_id: i64, end_ns: i64) -> Result<Vec<Point>> {
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
pub(super) async fn try_maintenance_lock(tx: &mut Tx<'_>, which: i32) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select pg_try_advisory_xact_lock($1, $2)")
            .bind(locks::CLASS)
            .bind(which)
            .fetch_one(&mut **tx)
            .await?,
    )
}

impl PgStore {
    /// Compacts the oldest blocks, about `max_points` points, in one transaction, unless
    /// another instance is compacting.
    pub(super) async fn compact_batch(&self, max_points: usize) -> Result<CompactionReport> {
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
    pub(super) async fn vacuum_recent_blocks(&self) -> Result<()> {
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
}
