//! The partitions of `chunks`: one per week of a chunk's last timestamp, created as chunks
//! need them, so retention can drop a week whole.

use std::collections::HashSet;

use super::locks;
use super::measures::{NS_PER_DAY, Tx};
use crate::Result;

/// Chunks are partitioned by week of their last timestamp.
pub(super) const NS_PER_WEEK: i64 = 7 * NS_PER_DAY;

/// The week a chunk's partition covers.
pub(super) fn week_of(end_ns: i64) -> i64 {
    end_ns.div_euclid(NS_PER_WEEK)
}

pub(super) fn partition_name(week: i64) -> String {
    if week < 0 {
        format!("chunks_wm{}", week.unsigned_abs())
    } else {
        format!("chunks_w{week}")
    }
}

/// The weeks of `wanted` that have no partition yet.
pub(super) async fn missing_weeks(tx: &mut Tx<'_>, wanted: &[i64]) -> Result<Vec<i64>> {
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
