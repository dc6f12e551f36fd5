//! The time series on PostgreSQL, in the same layout as on SQLite: ingest appends one block
//! per series per transaction to `recent_blocks`; compaction moves them into compressed
//! `chunks` (partitioned by week of their last timestamp), as [`compact::plan`] places them.
//! Reads run in one `REPEATABLE READ` snapshot, so a compaction committing meanwhile neither
//! doubles nor drops points.
//!
//! This module writes and reads; `compaction`, `partitions` and `retention` sit beside it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::PoisonError,
};

use async_trait::async_trait;
use futures::TryStreamExt;
use mymonit_model::measure::{MeasurePage, NewMeasure};
use mymonit_tsdb::{Point, bits::DecodeError, chunk::Summary, stats::SummaryRule};
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::compaction::try_maintenance_lock;
use super::{PgStore, live, locks, now};
use crate::{
    ChunkVisitor, CompactionReport, ConsumerBatch, DeliveryOutcome, MeasureQuery, MeasureStore,
    OpenSession, Result, Series, StoreError,
    layout::{
        SeriesCursor, SeriesKey, Step, block_points, corrupt, empty_page, merge_step, push_point,
        series_key,
    },
    tags_from_json,
};

pub(super) type Tx<'a> = Transaction<'a, Postgres>;

/// Numbers each value of the `arrival_seq` sequence stands for (its increment).
pub(super) const SEQ_BLOCK: i64 = 1024;
pub(super) const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
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
pub(super) async fn insert_blocks(
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

impl PgStore {
    /// Series ids for `measures`, creating missing series inside `tx`. Returns the ids and
    /// the series created or first seen, which enter the cache only once `tx` commits.
    async fn resolve_series(
        &self,
        tx: &mut Tx<'_>,
        measures: &[&NewMeasure],
    ) -> Result<(Vec<i64>, Vec<(SeriesKey, i64)>)> {
        // The batch's distinct series, keyed by borrowed tags so the JSON is built once each.
        let mut index: foldhash::HashMap<(i64, i64, &BTreeMap<String, String>), usize> =
            foldhash::HashMapExt::new();
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
        let mut by_series: foldhash::HashMap<i64, Vec<Point>> = foldhash::HashMapExt::new();
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
}

/// The next point of a cursor, fetching its next chunks when it needs them.
/// Fetches a cursor's next chunks.
async fn fetch_chunks(cursor: &mut SeriesCursor, conn: &mut PgConnection) -> Result<()> {
    // The row comparison bounds the index scan (an `or` of the two cases would only filter
    // it); `end_ns >= $2` prunes the partitions before it.
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
        .map(fetched_chunk_from_row)
        .collect::<Result<Vec<_>>>()?;
    cursor.add_chunks(chunks);
    Ok(())
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

    async fn query_page(&self, query: &MeasureQuery) -> Result<MeasurePage> {
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
            return Ok(MeasurePage::new(query.experiment_id, String::new()));
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
        let (from, to, after) = query.bounds();
        let limit = query.limit as usize;
        let ids: Vec<i64> = series.iter().map(|s| s.series_id).collect();
        let mut recent = recent_points_of(&mut snapshot, &ids, from, to).await?;
        let mut cursors: Vec<SeriesCursor> = series
            .iter()
            .map(|one| {
                let points = recent.remove(&one.series_id).unwrap_or_default();
                SeriesCursor::new(one.series_id, from, to, after, points, limit)
            })
            .collect();
        let mut page = empty_page(query.experiment_id, experiment, &series, limit);
        while page.len() < limit {
            match merge_step(&mut cursors)? {
                Step::Point(index, point) => push_point(&mut page, index, point),
                Step::Fetch(index) => fetch_chunks(&mut cursors[index], &mut snapshot).await?,
                Step::Done => break,
            }
        }
        snapshot.commit().await?;
        Ok(page)
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

    /// The chunks `whole` answers come without their bytes: the server leaves them out
    /// (the rule's bucket test in SQL, `width_bucket` over the same boundaries), and the rule,
    /// checked again here, decides.
    async fn read_series(
        &self,
        series_id: i64,
        from: i64,
        to: i64,
        whole: Option<&SummaryRule>,
        visit: &mut ChunkVisitor<'_>,
    ) -> Result<Vec<Point>> {
        let (boundaries, (rule_from, rule_to)) = match whole {
            Some(rule) => (Some(rule.boundaries()), rule.range()),
            None => (None, (0, 0)),
        };
        let mut snapshot = self.pool.begin_with(SNAPSHOT).await?;
        {
            let mut rows = sqlx::query(
                "select chunk_id, start_ns, start_seq, end_ns, end_seq, point_count,
                        sum, min, max, m2, first, last,
                        case when $4::int8[] is not null
                                  and start_ns >= $5 and end_ns < $6
                                  and width_bucket(start_ns, $4) = width_bucket(end_ns, $4)
                                  and width_bucket(start_ns, $4) between 1 and cardinality($4) - 1
                             then null else data end as data
                 from chunks where series_id = $1 and end_ns >= $2 and start_ns < $3
                 order by end_ns, end_seq",
            )
            .bind(series_id)
            .bind(from)
            .bind(to)
            .bind(boundaries)
            .bind(rule_from)
            .bind(rule_to)
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
                let data: Option<&[u8]> = row.try_get("data")?;
                let data = match data {
                    Some(data) => data,
                    None if whole.is_some_and(|rule| rule.answers(&summary)) => &[],
                    None => {
                        return Err(corrupt(chunk_id)(DecodeError::Corrupt(
                            "bytes left out of a chunk the summary rule does not answer",
                        )));
                    }
                };
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
        self.expire(now_ns).await
    }
}

/// The series of an experiment, optionally of one measure type, by id.
pub(super) async fn series_of(
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

/// A chunk as a raw read fetches it (`chunk_id`, `start_ns`, `start_seq`, `end_ns`,
/// `end_seq`, `data`).
fn fetched_chunk_from_row(row: &sqlx::postgres::PgRow) -> Result<crate::layout::FetchedChunk> {
    Ok(crate::layout::FetchedChunk {
        chunk_id: row.try_get("chunk_id")?,
        start: (row.try_get("start_ns")?, row.try_get("start_seq")?),
        end: (row.try_get("end_ns")?, row.try_get("end_seq")?),
        data: row.try_get("data")?,
    })
}
