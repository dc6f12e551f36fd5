//! The first storage layout (one row per measure) moved into the time-series store.

use std::collections::BTreeMap;

use mymonit_tsdb::Point;
use rusqlite::Transaction;
use sqlx::SqlitePool;

use super::measures::insert_blocks;
use super::writer::Writer;
use crate::Result;

/// Points of a migrated row-per-measure table per recent block.
const LEGACY_BLOCK_POINTS: usize = 10_000;

/// Moves the rows of the first layout's row-per-measure table (`measures`) into recent blocks,
/// keeping their arrival numbers, and drops it, in one transaction; the compactor then chunks
/// them. Does nothing once done.
pub(super) async fn move_legacy_measures(
    pool: &SqlitePool,
    writer: &std::sync::Arc<Writer>,
) -> Result<()> {
    let legacy: Option<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' and name = 'measures'",
    )
    .fetch_optional(pool)
    .await?;
    if legacy.is_none() {
        return Ok(());
    }
    let moved = writer.write(move_rows).await?;
    tracing::info!(
        points = moved,
        "moved measures of the first storage layout into the time-series store"
    );
    Ok(())
}

/// [`move_legacy_measures`] inside `tx`; returns the points moved.
fn move_rows(tx: &Transaction<'_>) -> Result<usize> {
    tx.execute(
        "insert into series (experiment_id, measure_type_id, tags)
         select distinct experiment_id, measure_type_id, coalesce(tags, '') from measures
         where true on conflict do nothing",
        [],
    )?;
    let mut by_series: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
    {
        let mut select = tx.prepare(
            "select m.seq, s.series_id, m.ts_ns, m.value from measures m
             join series s on s.experiment_id = m.experiment_id
                          and s.measure_type_id = m.measure_type_id
                          and s.tags = coalesce(m.tags, '')
             order by m.seq",
        )?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            by_series.entry(row.get(1)?).or_default().push(Point {
                ts: row.get(2)?,
                seq: row.get(0)?,
                value: row.get(3)?,
            });
        }
    }
    let blocks: Vec<(i64, &[Point])> = by_series
        .iter()
        .flat_map(|(series_id, points)| {
            points
                .chunks(LEGACY_BLOCK_POINTS)
                .map(move |piece| (*series_id, piece))
        })
        .collect();
    insert_blocks(tx, &blocks)?;
    tx.execute("drop table measures", [])?;
    Ok(by_series.values().map(Vec::len).sum())
}
