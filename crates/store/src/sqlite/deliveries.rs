//! AMQP deliveries on SQLite: the inbox of message ids, and the consumer sessions' multisets
//! of bodies stored but not yet known to be acknowledged (`amqp_unacked`), each written in
//! the same transaction as the measures they stand for. The rules they implement are
//! documented on [`crate::DeliveryKey`] and in the server's AMQP consumer.

use std::collections::HashSet;

use mymonit_model::measure::NewMeasure;
use sqlx::{Row, Sqlite, Transaction};

use super::{SqliteStore, now};
use crate::{ConsumerBatch, DeliveryKey, DeliveryOutcome, OpenSession, Result};

/// Rows per multi-row insert into `amqp_unacked` (4 parameters each).
const UNACKED_INSERT_ROWS: usize = 256;

/// Forgets the bodies of a session's batches up to `through_batch`.
async fn forget(tx: &mut Transaction<'_, Sqlite>, session_id: i64, through: i64) -> Result<()> {
    sqlx::query("delete from amqp_unacked where session_id = ? and batch_no <= ?")
        .bind(session_id)
        .bind(through)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether a redelivered body is a copy a resolved session stored: consumes one such record.
async fn consume_resolved(tx: &mut Transaction<'_, Sqlite>, body_hash: &[u8]) -> Result<bool> {
    let consumed = sqlx::query(
        "delete from amqp_unacked where rowid = (
             select u.rowid from amqp_unacked u
             join amqp_sessions s on s.session_id = u.session_id
             where u.body_hash = ? and s.resolved_at is not null
             limit 1)",
    )
    .bind(body_hash)
    .execute(&mut **tx)
    .await?;
    Ok(consumed.rows_affected() > 0)
}

/// The unresolved sessions other than `session_id` that hold a body.
async fn holders(
    tx: &mut Transaction<'_, Sqlite>,
    session_id: i64,
    body_hash: &[u8],
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select distinct s.name from amqp_unacked u
         join amqp_sessions s on s.session_id = u.session_id
         where u.body_hash = ? and u.session_id != ? and s.resolved_at is null
         order by s.name",
    )
    .bind(body_hash)
    .bind(session_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Inserts the bodies a batch stored without a message id.
async fn remember_bodies(
    tx: &mut Transaction<'_, Sqlite>,
    batch: ConsumerBatch<'_>,
    bodies: &[&[u8]],
    stored_at: i64,
) -> Result<()> {
    for rows in bodies.chunks(UNACKED_INSERT_ROWS) {
        let mut sql = String::from(
            "insert into amqp_unacked (session_id, batch_no, body_hash, stored_at) values ",
        );
        for index in 0..rows.len() {
            if index > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?, ?, ?)");
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for body in rows {
            query = query
                .bind(batch.session_id)
                .bind(batch.batch_no)
                .bind(*body)
                .bind(stored_at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts message keys into the inbox; returns those that were not there yet.
pub(super) async fn new_inbox_keys(
    tx: &mut Transaction<'_, Sqlite>,
    keys: &[&str],
    processed_at: i64,
) -> Result<HashSet<String>> {
    let mut fresh = HashSet::with_capacity(keys.len());
    for rows in keys.chunks(UNACKED_INSERT_ROWS) {
        let mut sql = String::from("insert into inbox (message_key, processed_at) values ");
        for index in 0..rows.len() {
            if index > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?)");
        }
        // `returning` lists only the rows the insert really added.
        sql.push_str(" on conflict do nothing returning message_key");
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for key in rows {
            query = query.bind(*key).bind(processed_at);
        }
        fresh.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(fresh)
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
        let (_writer, mut tx) = self.begin_measure_write().await?;
        let stored_at = now();
        if let Some(through) = batch.acknowledged_through {
            forget(&mut tx, batch.session_id, through).await?;
        }
        let keys: Vec<String> = batch
            .deliveries
            .iter()
            .filter_map(|d| match &d.key {
                DeliveryKey::Id(id) => Some(id_key(id)),
                _ => None,
            })
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut fresh = new_inbox_keys(&mut tx, &keys, stored_at).await?;
        let mut outcomes = Vec::with_capacity(batch.deliveries.len());
        let mut rows: Vec<&NewMeasure> = Vec::new();
        let mut bodies: Vec<&[u8]> = Vec::new();
        for delivery in batch.deliveries {
            let stored = || DeliveryOutcome::Stored(delivery.measures.len() as u64);
            let outcome = match &delivery.key {
                // An id twice in one batch (a redelivery racing its original) counts once.
                DeliveryKey::Id(id) if fresh.remove(&id_key(id)) => stored(),
                DeliveryKey::Id(_) => DeliveryOutcome::Duplicate,
                DeliveryKey::First(hash) => {
                    bodies.push(hash);
                    stored()
                }
                DeliveryKey::Redelivered {
                    body: hash,
                    not_from,
                } => {
                    if consume_resolved(&mut tx, hash).await? {
                        DeliveryOutcome::Duplicate
                    } else {
                        let mut sessions = holders(&mut tx, batch.session_id, hash).await?;
                        sessions.retain(|name| !not_from.contains(name));
                        if sessions.is_empty() {
                            bodies.push(hash);
                            stored()
                        } else {
                            DeliveryOutcome::Undecided(sessions)
                        }
                    }
                }
            };
            if matches!(outcome, DeliveryOutcome::Stored(_)) {
                rows.extend(delivery.measures.iter());
            }
            outcomes.push(outcome);
        }
        remember_bodies(&mut tx, batch, &bodies, stored_at).await?;
        let created = self.insert_recent(&mut tx, &rows).await?;
        tx.commit().await?;
        self.remember_series(created);
        self.publish(&rows);
        Ok(outcomes)
    }

    pub(super) async fn forget_bodies(&self, session_id: i64, through: i64) -> Result<()> {
        let (_writer, mut tx) = self.begin_measure_write().await?;
        forget(&mut tx, session_id, through).await?;
        tx.commit().await?;
        Ok(())
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
        let (_writer, mut tx) = self.begin_measure_write().await?;
        let session_id: Option<i64> = sqlx::query_scalar(
            "update amqp_sessions set resolved_at = ?, acked_through = ?
             where name = ? and resolved_at is null returning session_id",
        )
        .bind(now())
        .bind(acked_through)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(session_id) = session_id else {
            return Ok(false);
        };
        forget(&mut tx, session_id, acked_through.unwrap_or(i64::MAX)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets what consumer sessions remembered before `before` (epoch seconds).
    pub(super) async fn purge_sessions(&self, before: i64) -> Result<u64> {
        let (_writer, mut tx) = self.begin_measure_write().await?;
        let bodies = sqlx::query("delete from amqp_unacked where stored_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let sessions = sqlx::query(
            "delete from amqp_sessions where resolved_at < ?
             and not exists (select 1 from amqp_unacked u
                             where u.session_id = amqp_sessions.session_id)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(bodies + sessions)
    }
}
