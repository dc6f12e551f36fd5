//! What only the SQLite backend does: moving the first release's row-per-measure table,
//! giving the pages compaction freed back to the file system, and leaving a series' last
//! chunk in place when new points follow it across a round time.

use std::collections::BTreeMap;

use mymonit_model::measure::NewMeasure;

use super::*;
use crate::{MeasureQuery, MeasureStore, Store};

async fn everything(store: &SqliteStore, experiment_id: i64) -> Vec<(i64, i64, String, f64)> {
    store
        .query(&MeasureQuery {
            experiment_id,
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|m| (m.timestamp_ns, m.seq, m.measure_type.clone(), m.value))
        .collect()
}

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn measures_of_the_first_layout_move_into_the_time_series_store() {
    let (dir, store) = open().await;
    let experiment = store.create_experiment("old").await.unwrap();
    // The row-per-measure table as the first release had it, with two series.
    sqlx::query(
        "create table measures (
            seq integer primary key autoincrement, experiment_id integer not null,
            measure_type_id integer not null, ts_ns integer not null, value real not null,
            tags text)",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    for i in 0..25_000i64 {
        sqlx::query("insert into measures (experiment_id, measure_type_id, ts_ns, value, tags) values (?, ?, ?, ?, ?)")
            .bind(experiment.experiment_id)
            .bind(1 + i % 2)
            .bind(1_000 + i)
            .bind(i as f64 / 10.0)
            .bind(if i % 2 == 0 { None } else { Some(r#"{"host":"lab1"}"#) })
            .execute(&store.pool)
            .await
            .unwrap();
    }
    store.close().await;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let moved = everything(&store, experiment.experiment_id).await;
    assert_eq!(moved.len(), 25_000);
    assert!(
        moved
            .iter()
            .enumerate()
            .all(|(i, m)| m.0 == 1_000 + i as i64 && m.3 == i as f64 / 10.0)
    );
    // New points number after the old ones.
    store
        .append(&[NewMeasure {
            experiment_id: experiment.experiment_id,
            measure_type_id: 1,
            timestamp_ns: 0,
            value: 0.0,
            tags: BTreeMap::new(),
        }])
        .await
        .unwrap();
    store.compact(1 << 20).await.unwrap();
    let all = everything(&store, experiment.experiment_id).await;
    assert_eq!(all.len(), 25_001);
    assert!(
        all[0].1 > 25_000,
        "the new point reused an old arrival number"
    );
    let series = store.series(experiment.experiment_id, None).await.unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[1].tags["host"], "lab1");
}

fn per_second(experiment_id: i64, seconds: std::ops::Range<i64>) -> Vec<NewMeasure> {
    // 2024-01-01T00:00:00Z: quarters of an hour start at multiples of 900 s from here.
    let start = 1_704_067_200;
    seconds
        .map(|second| NewMeasure {
            experiment_id,
            measure_type_id: 1,
            timestamp_ns: (start + second) * 1_000_000_000,
            value: second as f64 / 4.0,
            tags: BTreeMap::new(),
        })
        .collect()
}

#[tokio::test]
async fn pages_freed_by_a_compaction_that_caught_up_go_back_to_the_file_system() {
    let (_dir, store) = open().await;
    let experiment = store.create_experiment("burst").await.unwrap();
    for batch in 0..40 {
        store
            .append(&per_second(
                experiment.experiment_id,
                batch * 5_000..(batch + 1) * 5_000,
            ))
            .await
            .unwrap();
    }
    let free = |store: &SqliteStore| {
        let pool = store.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("pragma freelist_count")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(free(&store).await, 0);
    store.compact(1 << 20).await.unwrap();
    assert!(
        free(&store).await <= 64,
        "{} free pages kept after the compaction drained the recent points",
        free(&store).await
    );
    assert_eq!(
        everything(&store, experiment.experiment_id).await.len(),
        100_000
    );
}

async fn chunk_ids(store: &SqliteStore) -> Vec<(i64, i64)> {
    sqlx::query_as("select chunk_id, point_count from chunks order by start_ns")
        .fetch_all(&store.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_last_chunk_that_new_points_follow_across_a_quarter_stays_as_stored() {
    let (_dir, store) = open().await;
    let experiment = store.create_experiment("dense").await.unwrap();
    let id = experiment.experiment_id;
    store.append(&per_second(id, 0..900)).await.unwrap();
    store.compact(1 << 20).await.unwrap();
    let first = chunk_ids(&store).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, 900);
    // The next quarter: merged with the last chunk, the first piece is that chunk again.
    store.append(&per_second(id, 900..1_800)).await.unwrap();
    let report = store.compact(1 << 20).await.unwrap();
    assert_eq!((report.chunks_written, report.chunks_replaced), (1, 0));
    let second = chunk_ids(&store).await;
    assert_eq!(second.len(), 2);
    assert_eq!(second[0], first[0], "the stored quarter was written again");
    assert_eq!(second[1].1, 900);
    // A late point inside the first quarter still rewrites it.
    let mut late = per_second(id, 10..11);
    late[0].timestamp_ns += 500_000_000;
    store.append(&late).await.unwrap();
    let report = store.compact(1 << 20).await.unwrap();
    assert_eq!(report.chunks_replaced, 1);
    let third = chunk_ids(&store).await;
    assert_eq!(third.len(), 2);
    assert_ne!(third[0].0, first[0].0);
    assert_eq!((third[0].1, third[1]), (901, second[1]));
    let all = everything(&store, id).await;
    assert_eq!(all.len(), 1_801);
    assert!(all.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert_eq!(all[11].3, 2.5, "the late point");
    assert_eq!(all[1_800].3, 1_799.0 / 4.0);
}
