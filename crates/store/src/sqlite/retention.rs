//! Retention on SQLite: points older than an experiment's `retention_days` are dropped,
//! whole blocks and chunks where they lie entirely before the cutoff, the rest rewritten.

use mymonit_tsdb::{Point, compact::Cut};
use rusqlite::Transaction;

use super::SqliteStore;
use super::compaction::{insert_chunks, take_chunk};
use super::measures::insert_blocks;
use super::reader::blob;
use crate::layout::block_points;
use crate::{MeasureStore, Result};

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

impl SqliteStore {
    /// Drops the points older than each experiment's retention at `now_ns`; returns how many.
    pub(super) async fn expire(&self, now_ns: i64) -> Result<u64> {
        let rules: Vec<(i64, i64)> = sqlx::query_as(
            "select experiment_id, retention_days from experiments
             where retention_days is not null",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut dropped = 0u64;
        for (experiment_id, days) in rules {
            let cutoff = now_ns.saturating_sub(days.saturating_mul(NS_PER_DAY));
            for series in self.series(experiment_id, None).await? {
                let series_id = series.series_id;
                dropped += self
                    .writer
                    .write(move |tx| expire_series(tx, series_id, cutoff))
                    .await?;
            }
        }
        Ok(dropped)
    }
}

/// Drops a series' points before `cutoff` inside `tx`; returns how many.
fn expire_series(tx: &Transaction<'_>, series_id: i64, cutoff: i64) -> Result<u64> {
    let counted = |sql: &str| -> Result<u64> {
        let mut statement = tx.prepare(sql)?;
        let counts = statement.query_map((series_id, cutoff), |row| row.get::<_, i64>(0))?;
        let mut total = 0u64;
        for count in counts {
            total += count?.max(0).unsigned_abs();
        }
        Ok(total)
    };
    let mut dropped = counted(
        "delete from recent_blocks where series_id = ?1 and max_ts < ?2 returning point_count",
    )?;
    let straddling: Vec<Vec<Point>> = tx
        .prepare("delete from recent_blocks where series_id = ?1 and min_ts < ?2 returning block_id, data")?
        .query_map((series_id, cutoff), |row| Ok((row.get(0)?, blob(row, 1)?.to_vec())))?
        .map(|row| {
            let (block_id, data) = row?;
            block_points(block_id, &data)
        })
        .collect::<Result<_>>()?;
    for points in &straddling {
        let kept: Vec<Point> = points.iter().filter(|p| p.ts >= cutoff).copied().collect();
        dropped += (points.len() - kept.len()) as u64;
        if !kept.is_empty() {
            insert_blocks(tx, &[(series_id, &kept)])?;
        }
    }
    dropped +=
        counted("delete from chunks where series_id = ?1 and end_ns < ?2 returning point_count")?;
    let straddling: Vec<i64> = tx
        .prepare("select chunk_id from chunks where series_id = ?1 and start_ns < ?2")?
        .query_map((series_id, cutoff), |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for chunk_id in straddling {
        let points = take_chunk(tx, chunk_id)?;
        let kept: Vec<Point> = points.iter().filter(|p| p.ts >= cutoff).copied().collect();
        dropped += (points.len() - kept.len()) as u64;
        insert_chunks(tx, series_id, &kept, Cut::Evenly)?;
    }
    Ok(dropped)
}
