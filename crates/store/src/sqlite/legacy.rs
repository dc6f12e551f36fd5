//! The first storage layout (one row per measure) moved into the time-series store.

use std::collections::BTreeMap;

use mymonit_tsdb::Point;
use sqlx::{Row, SqlitePool};

use super::measures::{insert_blocks, point_from_row};
use crate::Result;

/// Points of a migrated row-per-measure table per recent block.
const LEGACY_BLOCK_POINTS: usize = 10_000;

/// Moves the rows of the first layout's row-per-measure table (`measures`) into recent blocks,
/// keeping their arrival numbers, and drops it, in one transaction; the compactor then chunks
/// them. Does nothing once done.
pub(super) async fn move_legacy_measures(pool: &SqlitePool) -> Result<()> {
    let legacy: Option<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' and name = 'measures'",
    )
    .fetch_optional(pool)
    .await?;
    if legacy.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "insert into series (experiment_id, measure_type_id, tags)
         select distinct experiment_id, measure_type_id, coalesce(tags, '') from measures
         where true on conflict do nothing",
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query(
        "select m.seq, s.series_id, m.ts_ns, m.value from measures m
         join series s on s.experiment_id = m.experiment_id
                      and s.measure_type_id = m.measure_type_id
                      and s.tags = coalesce(m.tags, '')
         order by m.seq",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut by_series: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
    for row in &rows {
        by_series
            .entry(row.try_get("series_id")?)
            .or_default()
            .push(point_from_row(row)?);
    }
    let blocks: Vec<(i64, Vec<Point>)> = by_series
        .into_iter()
        .flat_map(|(series_id, points)| {
            points
                .chunks(LEGACY_BLOCK_POINTS)
                .map(|piece| (series_id, piece.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    insert_blocks(&mut tx, &blocks).await?;
    sqlx::query("drop table measures").execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(
        points = rows.len(),
        "moved measures of the first storage layout into the time-series store"
    );
    Ok(())
}
