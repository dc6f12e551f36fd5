//! Live views across instances: every ingest transaction sends, with `pg_notify` (delivered
//! only if it commits), the recent blocks it wrote and the arrival numbers it took. Each
//! instance with a live view open listens, reads those blocks back and hands their points to
//! its subscribers, its own batches included, so a stream on one instance sees what any
//! instance stored.
//!
//! A block may already be compacted when it is read back; its points are then found in the
//! series' chunks by time range and by the arrival numbers of the transaction, which no other
//! transaction shares.

use std::collections::{BTreeMap, HashMap};

use mymonit_model::measure::NewMeasure;
use sqlx::{Postgres, Row, Transaction, postgres::PgListener};

use super::PgStore;
use crate::{Result, layout::block_points, tags_from_json};

/// The notification channel.
pub(super) const CHANNEL: &str = "mymonit_measures";
/// Bytes of one notification's payload (PostgreSQL allows a little under 8,000).
const PAYLOAD_BYTES: usize = 7_000;

/// A block as announced: enough to find its points even once compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Announced {
    pub block_id: i64,
    pub series_id: i64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// The payloads announcing one transaction's blocks: `seq,seq;block:series:min:max,…`.
pub(super) fn payloads(seq_starts: &[i64], blocks: &[Announced]) -> Vec<String> {
    let head = seq_starts
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut out = Vec::new();
    let mut current = String::new();
    for block in blocks {
        let item = format!(
            "{}:{}:{}:{}",
            block.block_id, block.series_id, block.min_ts, block.max_ts
        );
        if !current.is_empty() && head.len() + current.len() + item.len() + 2 > PAYLOAD_BYTES {
            out.push(format!("{head};{current}"));
            current.clear();
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&item);
    }
    if !current.is_empty() {
        out.push(format!("{head};{current}"));
    }
    out
}

/// Reads a payload back; `None` if it is not one of ours.
pub(super) fn parse(payload: &str) -> Option<(Vec<i64>, Vec<Announced>)> {
    let (head, items) = payload.split_once(';')?;
    let seq_starts = head
        .split(',')
        .map(str::parse)
        .collect::<std::result::Result<Vec<i64>, _>>()
        .ok()?;
    let mut blocks = Vec::new();
    for item in items.split(',') {
        let mut fields = item.split(':').map(str::parse::<i64>);
        let mut next = || fields.next().and_then(|f| f.ok());
        blocks.push(Announced {
            block_id: next()?,
            series_id: next()?,
            min_ts: next()?,
            max_ts: next()?,
        });
    }
    Some((seq_starts, blocks))
}

/// Announces a transaction's blocks (delivered if and when it commits).
pub(super) async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    seq_starts: &[i64],
    blocks: &[Announced],
) -> Result<()> {
    for payload in payloads(seq_starts, blocks) {
        sqlx::query("select pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl PgStore {
    /// Listens until the pool closes, handing announced points to this instance's
    /// subscribers; reconnects (losing what was announced meanwhile) when the database goes
    /// away.
    pub(super) async fn listen(self) {
        loop {
            match self.listen_once().await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "live view feed from the database interrupted; reconnecting");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    if self.pool.is_closed() {
                        return;
                    }
                }
            }
        }
    }

    async fn listen_once(&self) -> Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        loop {
            let notification = match listener.recv().await {
                Ok(notification) => notification,
                Err(sqlx::Error::PoolClosed) => return Ok(()),
                Err(err) => return Err(err.into()),
            };
            if self.committed.receiver_count() == 0 {
                continue;
            }
            let Some((seq_starts, blocks)) = parse(notification.payload()) else {
                continue;
            };
            let measures = self.read_announced(&seq_starts, &blocks).await?;
            if !measures.is_empty() {
                let _ = self.committed.send(std::sync::Arc::new(measures));
            }
        }
    }

    /// The points of announced blocks, from the blocks or, once compacted, from the chunks.
    async fn read_announced(
        &self,
        seq_starts: &[i64],
        blocks: &[Announced],
    ) -> Result<Vec<NewMeasure>> {
        let ids: Vec<i64> = blocks.iter().map(|b| b.block_id).collect();
        let series: Vec<i64> = blocks.iter().map(|b| b.series_id).collect();
        let mut snapshot = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let found: HashMap<i64, Vec<u8>> = sqlx::query_as::<_, (i64, Vec<u8>)>(
            "select block_id, data from recent_blocks where block_id = any($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *snapshot)
        .await?
        .into_iter()
        .collect();
        let described: HashMap<i64, (i64, i64, BTreeMap<String, String>)> = sqlx::query(
            "select series_id, experiment_id, measure_type_id, tags from series
             where series_id = any($1)",
        )
        .bind(&series)
        .fetch_all(&mut *snapshot)
        .await?
        .iter()
        .map(|row| {
            let tags: String = row.try_get("tags")?;
            Ok((
                row.try_get("series_id")?,
                (
                    row.try_get("experiment_id")?,
                    row.try_get("measure_type_id")?,
                    tags_from_json((!tags.is_empty()).then_some(tags.as_str())),
                ),
            ))
        })
        .collect::<Result<_>>()?;
        let ours = |seq: i64| {
            seq_starts
                .iter()
                .any(|start| seq >= *start && seq < start + super::measures::SEQ_BLOCK)
        };
        let mut measures = Vec::new();
        for block in blocks {
            let Some((experiment_id, measure_type_id, tags)) = described.get(&block.series_id)
            else {
                continue;
            };
            let points = match found.get(&block.block_id) {
                Some(data) => block_points(block.block_id, data)?,
                None => {
                    // Compacted since: the transaction's points of this series in the block's
                    // time range.
                    let mut points = Vec::new();
                    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                        "select chunk_id, data from chunks
                         where series_id = $1 and end_ns >= $2 and start_ns <= $3",
                    )
                    .bind(block.series_id)
                    .bind(block.min_ts)
                    .bind(block.max_ts)
                    .fetch_all(&mut *snapshot)
                    .await?;
                    for (chunk_id, data) in rows {
                        let columns = mymonit_tsdb::chunk::decode(&data)
                            .map_err(crate::layout::corrupt(chunk_id))?;
                        points.extend(columns.points().filter(|p| {
                            p.ts >= block.min_ts && p.ts <= block.max_ts && ours(p.seq)
                        }));
                    }
                    points
                }
            };
            measures.extend(points.into_iter().map(|point| NewMeasure {
                experiment_id: *experiment_id,
                measure_type_id: *measure_type_id,
                timestamp_ns: point.ts,
                value: point.value,
                tags: tags.clone(),
            }));
        }
        snapshot.commit().await?;
        Ok(measures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_split_and_read_back() {
        let blocks: Vec<Announced> = (0..1_000)
            .map(|i| Announced {
                block_id: 1_000_000 + i,
                series_id: i,
                min_ts: 1_653_040_000_000_000_000 + i,
                max_ts: 1_653_040_000_000_000_000 + 2 * i,
            })
            .collect();
        let payloads = payloads(&[1024, 4096], &blocks);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= PAYLOAD_BYTES, "{}", payload.len());
            let (seqs, blocks) = parse(payload).unwrap();
            assert_eq!(seqs, vec![1024, 4096]);
            back.extend(blocks);
        }
        assert_eq!(back, blocks);
        assert!(parse("nonsense").is_none());
        assert!(parse("1;2:3").is_none());
    }

    /// A block compacted before a listener reads it back is found in the chunks, with the
    /// transaction's points only (a tie from another transaction is not taken).
    #[tokio::test]
    async fn announced_points_are_found_once_compacted() {
        use crate::{MeasureStore, MetaStore};
        let Some(fixture) = crate::tests::Fixture::postgres().await else {
            return;
        };
        let store = fixture.postgres_store().unwrap().clone();
        let experiment = store.create_experiment("live").await.unwrap();
        let point = |value: f64| NewMeasure {
            experiment_id: experiment.experiment_id,
            measure_type_id: 1,
            timestamp_ns: 1_653_040_000_000_000_000,
            value,
            tags: BTreeMap::new(),
        };
        let mut listener = PgListener::connect_with(store.pool()).await.unwrap();
        listener.listen(CHANNEL).await.unwrap();
        store.append(&[point(1.0), point(2.0)]).await.unwrap();
        let payload = listener.recv().await.unwrap().payload().to_owned();
        store.append(&[point(3.0)]).await.unwrap();
        while store.compact(1_000).await.unwrap().points > 0 {}
        let (seq_starts, blocks) = parse(&payload).unwrap();
        let mut values: Vec<f64> = store
            .read_announced(&seq_starts, &blocks)
            .await
            .unwrap()
            .iter()
            .map(|m| m.value)
            .collect();
        values.sort_by(f64::total_cmp);
        assert_eq!(values, vec![1.0, 2.0]);
        drop(listener);
        fixture.finish().await;
    }
}
