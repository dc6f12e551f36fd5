//! AMQP deliveries on SQLite: the inbox of message ids, and the consumer sessions' multisets
//! of bodies stored but not yet known to be acknowledged (`amqp_unacked`), each written in
//! the same transaction as the measures they stand for. The rules they implement are
//! documented on [`crate::DeliveryKey`] and in the server's AMQP consumer.

use std::collections::HashSet;

use mymonit_model::measure::NewMeasure;
use rusqlite::{OptionalExtension, Transaction};
use sqlx::Row;

use super::measures::PointsBuilder;
use super::{SqliteStore, now, values_list};
use crate::{BodyHash, ConsumerBatch, DeliveryKey, DeliveryOutcome, OpenSession, Result};

/// Rows per multi-row insert into `amqp_unacked` (4 parameters each).
const UNACKED_INSERT_ROWS: usize = 256;

/// Forgets the bodies of a session's batches up to `through_batch`.
fn forget(tx: &Transaction<'_>, session_id: i64, through: i64) -> Result<()> {
    tx.prepare_cached("delete from amqp_unacked where session_id = ?1 and batch_no <= ?2")?
        .execute((session_id, through))?;
    Ok(())
}

/// Whether a redelivered body is a copy a resolved session stored: consumes one such record.
fn consume_resolved(tx: &Transaction<'_>, body_hash: &[u8]) -> Result<bool> {
    let consumed = tx
        .prepare_cached(
            "delete from amqp_unacked where rowid = (
                 select u.rowid from amqp_unacked u
                 join amqp_sessions s on s.session_id = u.session_id
                 where u.body_hash = ?1 and s.resolved_at is not null
                 limit 1)",
        )?
        .execute([body_hash])?;
    Ok(consumed > 0)
}

/// The unresolved sessions other than `session_id` that hold a body.
fn holders(tx: &Transaction<'_>, session_id: i64, body_hash: &[u8]) -> Result<Vec<String>> {
    let mut select = tx.prepare_cached(
        "select distinct s.name from amqp_unacked u
         join amqp_sessions s on s.session_id = u.session_id
         where u.body_hash = ?1 and u.session_id != ?2 and s.resolved_at is null
         order by s.name",
    )?;
    let names = select
        .query_map((body_hash, session_id), |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// Inserts the bodies a batch stored without a message id.
fn remember_bodies(
    tx: &Transaction<'_>,
    session_id: i64,
    batch_no: i64,
    bodies: &[&BodyHash],
    stored_at: i64,
) -> Result<()> {
    for rows in bodies.chunks(UNACKED_INSERT_ROWS) {
        let mut insert = tx.prepare_cached(&format!(
            "insert into amqp_unacked (session_id, batch_no, body_hash, stored_at) values {}",
            values_list("(?, ?, ?, ?)", rows.len())
        ))?;
        for (index, body) in rows.iter().enumerate() {
            insert.raw_bind_parameter(index * 4 + 1, session_id)?;
            insert.raw_bind_parameter(index * 4 + 2, batch_no)?;
            insert.raw_bind_parameter(index * 4 + 3, &body[..])?;
            insert.raw_bind_parameter(index * 4 + 4, stored_at)?;
        }
        insert.raw_execute()?;
    }
    Ok(())
}

/// Inserts message keys into the inbox; returns those that were not there yet.
fn new_inbox_keys(
    tx: &Transaction<'_>,
    keys: &[&str],
    processed_at: i64,
) -> Result<HashSet<String>> {
    let mut fresh = HashSet::with_capacity(keys.len());
    for rows in keys.chunks(UNACKED_INSERT_ROWS) {
        // `returning` lists only the rows the insert really added.
        let mut insert = tx.prepare_cached(&format!(
            "insert into inbox (message_key, processed_at) values {}
             on conflict do nothing returning message_key",
            values_list("(?, ?)", rows.len())
        ))?;
        for (index, key) in rows.iter().enumerate() {
            insert.raw_bind_parameter(index * 2 + 1, key)?;
            insert.raw_bind_parameter(index * 2 + 2, processed_at)?;
        }
        let mut added = insert.raw_query();
        while let Some(row) = added.next()? {
            fresh.insert(row.get(0)?);
        }
    }
    Ok(fresh)
}

/// Inserts the keys of keyed parts into the inbox; returns the parts whose key was new,
/// numbered from `first_part` (a key twice in one batch, a redelivery racing its original,
/// counts once).
pub(super) fn new_keyed_parts(
    tx: &Transaction<'_>,
    keys: &[String],
    processed_at: i64,
    first_part: usize,
) -> Result<Vec<usize>> {
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut fresh = new_inbox_keys(tx, &key_refs, processed_at)?;
    Ok(keys
        .iter()
        .enumerate()
        .filter(|(_, key)| fresh.remove(key.as_str()))
        .map(|(index, _)| first_part + index)
        .collect())
}

/// The inbox key of an AMQP message id.
fn id_key(id: &str) -> String {
    format!("id:{id}")
}

impl SqliteStore {
    pub(super) async fn begin_session(&self, name: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "insert into amqp_sessions (name, started_at) values (?, ?) returning session_id",
        )
        .bind(name)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn store_deliveries(
        &self,
        batch: ConsumerBatch<'_>,
    ) -> Result<Vec<DeliveryOutcome>> {
        let mut builder = PointsBuilder::default();
        for delivery in batch.deliveries {
            builder.part(&delivery.measures);
        }
        let points = builder.build();
        let keys: Vec<DeliveryKey> = batch.deliveries.iter().map(|d| d.key.clone()).collect();
        let (session_id, batch_no, acknowledged_through) =
            (batch.session_id, batch.batch_no, batch.acknowledged_through);
        let series = self.series_ids();
        let (outcomes, created) = self
            .writer
            .write(move |tx| {
                let stored_at = now();
                if let Some(through) = acknowledged_through {
                    forget(tx, session_id, through)?;
                }
                let ids: Vec<String> = keys
                    .iter()
                    .filter_map(|key| match key {
                        DeliveryKey::Id(id) => Some(id_key(id)),
                        _ => None,
                    })
                    .collect();
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                let mut fresh = new_inbox_keys(tx, &ids, stored_at)?;
                let mut outcomes = Vec::with_capacity(keys.len());
                let mut stored_parts = Vec::new();
                let mut bodies: Vec<&BodyHash> = Vec::new();
                for (part, key) in keys.iter().enumerate() {
                    let stored = DeliveryOutcome::Stored(points.part_len(part) as u64);
                    let outcome = match key {
                        // An id twice in one batch (a redelivery racing its original) counts
                        // once.
                        DeliveryKey::Id(id) if fresh.remove(&id_key(id)) => stored,
                        DeliveryKey::Id(_) => DeliveryOutcome::Duplicate,
                        DeliveryKey::First(hash) => {
                            bodies.push(hash);
                            stored
                        }
                        DeliveryKey::Redelivered {
                            body: hash,
                            not_from,
                        } => {
                            if consume_resolved(tx, hash)? {
                                DeliveryOutcome::Duplicate
                            } else {
                                let mut sessions = holders(tx, session_id, hash)?;
                                sessions.retain(|name| !not_from.contains(name));
                                if sessions.is_empty() {
                                    bodies.push(hash);
                                    stored
                                } else {
                                    DeliveryOutcome::Undecided(sessions)
                                }
                            }
                        }
                    };
                    if matches!(outcome, DeliveryOutcome::Stored(_)) {
                        stored_parts.push(part);
                    }
                    outcomes.push(outcome);
                }
                remember_bodies(tx, session_id, batch_no, &bodies, stored_at)?;
                let created = series.insert_recent(tx, &points, &stored_parts)?;
                Ok((outcomes, created))
            })
            .await?;
        self.remember_series(created);
        let rows: Vec<&NewMeasure> = batch
            .deliveries
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, DeliveryOutcome::Stored(_)))
            .flat_map(|(delivery, _)| delivery.measures.iter())
            .collect();
        self.publish(&rows);
        Ok(outcomes)
    }

    pub(super) async fn forget_bodies(&self, session_id: i64, through: i64) -> Result<()> {
        self.writer
            .write(move |tx| forget(tx, session_id, through))
            .await
    }

    pub(super) async fn sessions_holding_bodies(&self, except: i64) -> Result<Vec<OpenSession>> {
        let rows = sqlx::query(
            "select s.name, count(u.session_id) as held from amqp_sessions s
             left join amqp_unacked u on u.session_id = s.session_id
             where s.resolved_at is null and s.session_id != ?
             group by s.session_id order by s.session_id",
        )
        .bind(except)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OpenSession {
                    name: row.try_get("name")?,
                    unacknowledged: row.try_get::<i64, _>("held")?.max(0) as u64,
                })
            })
            .collect()
    }

    pub(super) async fn claim_session(&self, name: &str, for_secs: i64) -> Result<bool> {
        let now = now();
        let claimed = sqlx::query(
            "update amqp_sessions set claimed_until = ?
             where name = ? and resolved_at is null
             and (claimed_until is null or claimed_until < ?)",
        )
        .bind(now + for_secs)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() > 0)
    }

    pub(super) async fn resolve_session(
        &self,
        name: &str,
        acked_through: Option<i64>,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.writer
            .write(move |tx| {
                let session_id: Option<i64> = tx
                    .prepare_cached(
                        "update amqp_sessions set resolved_at = ?1, acked_through = ?2
                         where name = ?3 and resolved_at is null returning session_id",
                    )?
                    .query_row((now(), acked_through, &name), |row| row.get(0))
                    .optional()?;
                let Some(session_id) = session_id else {
                    return Ok(false);
                };
                forget(tx, session_id, acked_through.unwrap_or(i64::MAX))?;
                Ok(true)
            })
            .await
    }

    /// Forgets what consumer sessions remembered before `before` (epoch seconds).
    pub(super) async fn purge_sessions(&self, before: i64) -> Result<u64> {
        self.writer
            .write(move |tx| {
                let bodies =
                    tx.execute("delete from amqp_unacked where stored_at < ?1", [before])?;
                let sessions = tx.execute(
                    "delete from amqp_sessions where resolved_at < ?1
                     and not exists (select 1 from amqp_unacked u
                                     where u.session_id = amqp_sessions.session_id)",
                    [before],
                )?;
                Ok((bodies + sessions) as u64)
            })
            .await
    }
}
