//! Retention on SQLite: points older than an experiment's `retention_days` are dropped,
//! whole blocks and chunks where they lie entirely before the cutoff, the rest rewritten.

use mymonit_tsdb::{Point, compact::Cut};
use sqlx::Row;

use super::SqliteStore;
use super::compaction::{insert_chunks, take_chunk};
use super::measures::insert_blocks;
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
                let (_writer, mut tx) = self.begin_measure_write().await?;
                let old: Vec<i64> = sqlx::query_scalar(
                    "delete from recent_blocks where series_id = ? and max_ts < ?
                     returning point_count",
                )
                .bind(series.series_id)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
                dropped += old.iter().map(|n| n.max(&0).unsigned_abs()).sum::<u64>();
                let straddling = sqlx::query(
                    "delete from recent_blocks where series_id = ? and min_ts < ?
                     returning block_id, data",
                )
                .bind(series.series_id)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
                for block in &straddling {
                    let points = block_points(block.try_get("block_id")?, block.try_get("data")?)?;
                    let kept: Vec<Point> =
                        points.iter().filter(|p| p.ts >= cutoff).copied().collect();
                    dropped += (points.len() - kept.len()) as u64;
                    if !kept.is_empty() {
                        insert_blocks(&mut tx, &[(series.series_id, kept)]).await?;
                    }
                }
                let whole: Vec<i64> = sqlx::query_scalar(
                    "delete from chunks where series_id = ? and end_ns < ? returning point_count",
                )
                .bind(series.series_id)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
                dropped += whole.iter().map(|n| n.max(&0).unsigned_abs()).sum::<u64>();
                let straddling: Vec<i64> = sqlx::query_scalar(
                    "select chunk_id from chunks where series_id = ? and start_ns < ?",
                )
                .bind(series.series_id)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
                for chunk_id in straddling {
                    let points = take_chunk(&mut tx, chunk_id).await?;
                    let kept: Vec<Point> =
                        points.iter().filter(|p| p.ts >= cutoff).copied().collect();
                    dropped += (points.len() - kept.len()) as u64;
                    insert_chunks(&mut tx, series.series_id, &kept, Cut::Evenly).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(dropped)
    }
}
