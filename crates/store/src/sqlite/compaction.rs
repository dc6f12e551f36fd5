//! Compaction on SQLite: recent blocks move into compressed chunks of one series, placed as
//! `mymonit_tsdb::compact::plan` says, in one transaction (see the module `measures`).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mymonit_tsdb::{
    Point,
    chunk::{self, Summary},
    compact::{self, ChunkBounds, Cut},
};
use sqlx::{Row, Sqlite, Transaction, sqlite::SqliteRow};

use super::SqliteStore;
use crate::layout::{block_points, corrupt};
use crate::{CompactionReport, Result};

/// Free pages below which the free list is kept for the next recent points (1 MiB of 16 KiB
/// pages).
const SHRINK_AT_FREE_PAGES: i64 = 64;

/// Whether `free` pages of a file of `pages` go back to the file system. Pages freed by
/// compaction are reused by the next recent points, so a free list goes back when it is a
/// good part of the file, or once compaction has caught up (`drained`: after a burst or an
/// import; steady ingest frees fewer pages than [`SHRINK_AT_FREE_PAGES`] a pass).
fn worth_shrinking(free: i64, pages: i64, drained: bool) -> bool {
    free > SHRINK_AT_FREE_PAGES && (drained || free * 10 > pages)
}

impl SqliteStore {
    /// Compacts the oldest blocks, about `max_points` points, in one transaction: they are read
    /// in arrival order, written into their series' chunks, and deleted as one range.
    pub(super) async fn compact_batch(&self, max_points: usize) -> Result<CompactionReport> {
        let (_writer, mut tx) = self.begin_measure_write().await?;
        let mut by_series: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
        let mut last_block = None;
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
                last_block = Some(block_id);
                by_series
                    .entry(row.try_get("series_id")?)
                    .or_default()
                    .extend(points);
            }
        }
        let Some(last_block) = last_block else {
            return Ok(CompactionReport::default());
        };
        let mut report = CompactionReport::default();
        for (series_id, mut points) in by_series {
            points.sort_by_key(Point::key);
            report.add(compact_series(&mut tx, series_id, &points).await?);
        }
        sqlx::query("delete from recent_blocks where block_id <= ?")
            .bind(last_block)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Gives a large free list back to the file system (databases created with incremental
    /// auto-vacuum; a no-op otherwise). `drained`: the compaction that just ran left no recent
    /// points behind.
    pub(super) async fn shrink_if_sparse(&self, drained: bool) -> Result<()> {
        let free: i64 = sqlx::query_scalar("pragma freelist_count")
            .fetch_one(&self.pool)
            .await?;
        let pages: i64 = sqlx::query_scalar("pragma page_count")
            .fetch_one(&self.pool)
            .await?;
        if worth_shrinking(free, pages, drained) {
            let _writer = self.measure_writer.lock().await;
            sqlx::query("pragma incremental_vacuum")
                .execute(&self.measure_connection)
                .await?;
        }
        Ok(())
    }
}

fn bounds_from_row(row: &SqliteRow) -> Result<ChunkBounds> {
    Ok(ChunkBounds {
        chunk_id: row.try_get("chunk_id")?,
        start: (row.try_get("start_ns")?, row.try_get("start_seq")?),
        end: (row.try_get("end_ns")?, row.try_get("end_seq")?),
        count: row.try_get("point_count")?,
    })
}

/// Writes sorted points as chunks of at most [`chunk::TARGET_POINTS`].
pub(super) async fn insert_chunks(
    tx: &mut Transaction<'_, Sqlite>,
    series_id: i64,
    points: &[Point],
    cut: Cut,
) -> Result<u64> {
    let mut written = 0;
    for piece in compact::pieces(points, cut) {
        let Some(summary) = Summary::of(piece) else {
            continue;
        };
        sqlx::query(
            "insert into chunks (series_id, start_ns, start_seq, end_ns, end_seq, point_count,
                                 sum, min, max, m2, first, last, data)
             values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(series_id)
        .bind(summary.start.0)
        .bind(summary.start.1)
        .bind(summary.end.0)
        .bind(summary.end.1)
        .bind(summary.count as i64)
        .bind(summary.sum)
        .bind(summary.min)
        .bind(summary.max)
        .bind(summary.m2)
        .bind(summary.first)
        .bind(summary.last)
        .bind(chunk::encode(piece))
        .execute(&mut **tx)
        .await?;
        written += 1;
    }
    Ok(written)
}

/// Decodes a stored chunk and deletes it (its points are about to be written again).
pub(super) async fn take_chunk(
    tx: &mut Transaction<'_, Sqlite>,
    chunk_id: i64,
) -> Result<Vec<Point>> {
    let data: Vec<u8> = sqlx::query_scalar("delete from chunks where chunk_id = ? returning data")
        .bind(chunk_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(chunk::decode(&data)
        .map_err(corrupt(chunk_id))?
        .points()
        .collect())
}

/// Writes a series' recent points (sorted by key) into its chunks, as
/// [`compact::plan`] places them.
async fn compact_series(
    tx: &mut Transaction<'_, Sqlite>,
    series_id: i64,
    rows: &[Point],
) -> Result<CompactionReport> {
    let (Some(low), Some(high)) = (rows.first().map(Point::key), rows.last().map(Point::key))
    else {
        return Ok(CompactionReport::default());
    };
    // Every chunk a recent point could fall inside or between.
    let overlapping: Vec<ChunkBounds> = sqlx::query(
        "select chunk_id, start_ns, start_seq, end_ns, end_seq, point_count from chunks
         where series_id = ? and end_ns >= ? and start_ns <= ? order by end_ns, end_seq",
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
         where series_id = ? order by end_ns desc, end_seq desc limit 1",
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
    for placement in compact::plan(rows, overlapping, last) {
        let points = match placement.replaces {
            Some(chunk_id) => {
                report.chunks_replaced += 1;
                compact::merge(placement.points, take_chunk(tx, chunk_id).await?)
            }
            None => placement.points,
        };
        report.chunks_written += insert_chunks(tx, series_id, &points, placement.cut).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::worth_shrinking;

    #[test]
    fn a_free_list_goes_back_when_large_or_once_compaction_caught_up() {
        // A few pages stay for the next recent points, whatever happened.
        assert!(!worth_shrinking(64, 100, true));
        // A tenth of the file goes back even while points wait.
        assert!(worth_shrinking(101, 1_000, false));
        assert!(!worth_shrinking(100, 1_000, false));
        // Once nothing waits, what is left of an import goes back too.
        assert!(worth_shrinking(100, 1_000, true));
        assert!(worth_shrinking(65, 100_000, true));
    }
}
