//! Retention on PostgreSQL: whole weekly partitions dropped where every chunk in them has
//! expired, the rest deleted or rewritten row by row, by one instance at a time.

use std::collections::HashMap;

use mymonit_tsdb::{Point, compact::Cut};
use sqlx::Row;

use super::compaction::{insert_chunks, take_chunk, try_maintenance_lock};
use super::measures::{NS_PER_DAY, Tx, insert_blocks, series_of};
use super::partitions::{NS_PER_WEEK, week_of};
use super::{PgStore, locks};
use crate::Result;
use crate::layout::block_points;

impl PgStore {
    /// Drops the points older than each experiment's retention at `now_ns`; returns how many.
    pub(super) async fn expire(&self, now_ns: i64) -> Result<u64> {
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
