//! AMQP deliveries on PostgreSQL: the inbox of message ids, and the consumer sessions'
//! multisets of bodies stored but not yet known to be acknowledged, each written in the same
//! transaction as the measures they stand for (rules: [`crate::DeliveryKey`]).
//!
//! SQLite runs one writer at a time, so a batch always sees the bodies every other batch
//! stored. Here batches of several instances commit concurrently; each batch therefore locks
//! the bodies it stores or looks up (advisory locks by hash, in order, until commit), so that
//! a redelivery is decided only after any batch holding the same body has committed.

use std::collections::HashSet;

use mymonit_model::measure::NewMeasure;
use sqlx::{Postgres, Row, Transaction};

use super::{PgStore, locks, now};
use crate::{ConsumerBatch, DeliveryKey, DeliveryOutcome, OpenSession, Result};

type Tx<'a> = Transaction<'a, Postgres>;

/// Forgets the bodies of a session's batches up to `through_batch`.
async fn forget(tx: &mut Tx<'_>, session_id: i64, through: i64) -> Result<()> {
    sqlx::query("delete from amqp_unacked where session_id = $1 and batch_no <= $2")
        .bind(session_id)
        .bind(through)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether a redelivered body is a copy a resolved session stored: consumes one such record.
async fn consume_resolved(tx: &mut Tx<'_>, body_hash: &[u8]) -> Result<bool> {
    let consumed = sqlx::query(
        "delete from amqp_unacked where unacked_id = (
             select u.unacked_id from amqp_unacked u
             join amqp_sessions s on s.session_id = u.session_id
             where u.body_hash = $1 and s.resolved_at is not null
             limit 1)",
    )
    .bind(body_hash)
    .execute(&mut **tx)
    .await?;
    Ok(consumed.rows_affected() > 0)
}

/// The unresolved sessions other than `session_id` that hold a body.
async fn holders(tx: &mut Tx<'_>, session_id: i64, body_hash: &[u8]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select distinct s.name from amqp_unacked u
         join amqp_sessions s on s.session_id = u.session_id
         where u.body_hash = $1 and u.session_id != $2 and s.resolved_at is null
         order by s.name",
    )
    .bind(body_hash)
    .bind(session_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Locks bodies by hash until the transaction ends, in one order for every instance.
async fn lock_bodies(tx: &mut Tx<'_>, bodies: &[&[u8]]) -> Result<()> {
    let mut keys: Vec<i32> = bodies
        .iter()
        .map(|hash| {
            let mut four = [0u8; 4];
            for (slot, byte) in four.iter_mut().zip(hash.iter()) {
                *slot = *byte;
            }
            i32::from_be_bytes(four)
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("select count(pg_advisory_xact_lock($1, key)) from unnest($2::int4[]) as key")
        .bind(locks::BODY_CLASS)
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts the bodies a batch stored without a message id.
async fn remember_bodies(
    tx: &mut Tx<'_>,
    batch: ConsumerBatch<'_>,
    bodies: &[&[u8]],
    stored_at: i64,
) -> Result<()> {
    if bodies.is_empty() {
        return Ok(());
    }
    let hashes: Vec<Vec<u8>> = bodies.iter().map(|body| body.to_vec()).collect();
    sqlx::query(
        "insert into amqp_unacked (session_id, batch_no, body_hash, stored_at)
         select $1, $2, hash, $3 from unnest($4::bytea[]) as hash",
    )
    .bind(batch.session_id)
    .bind(batch.batch_no)
    .bind(stored_at)
    .bind(&hashes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts message keys into the inbox; returns those that were not there yet. A key another
/// instance is inserting in a transaction not yet committed waits for it (the primary key),
/// then counts as there when it committed.
pub(super) async fn new_inbox_keys(
    tx: &mut Tx<'_>,
    keys: &[&str],
    processed_at: i64,
) -> Result<HashSet<String>> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    // One order for every instance, so two batches sharing keys cannot deadlock.
    sorted.sort_unstable();
    sorted.dedup();
    let fresh: Vec<String> = sqlx::query_scalar(
        "insert into inbox (message_key, processed_at)
         select key, $2 from unnest($1::text[]) with ordinality as k(key, n) order by n
         on conflict do nothing returning message_key",
    )
    .bind(&sorted)
    .bind(processed_at)
    .fetch_all(&mut **tx)
    .await?;
    Ok(fresh.into_iter().collect())
}

/// The inbox key of an AMQP message id.
fn id_key(id: &str) -> String {
    format!("id:{id}")
}

impl PgStore {
    pub(super) async fn begin_session(&self, name: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "insert into amqp_sessions (name, started_at) values ($1, $2) returning session_id",
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
        let mut tx = self.pool.begin().await?;
        let stored_at = now();
        if let Some(through) = batch.acknowledged_through {
            forget(&mut tx, batch.session_id, through).await?;
        }
        let hashed: Vec<&[u8]> = batch
            .deliveries
            .iter()
            .filter_map(|d| match &d.key {
                DeliveryKey::Id(_) => None,
                DeliveryKey::First(hash) => Some(&hash[..]),
                DeliveryKey::Redelivered { body, .. } => Some(&body[..]),
            })
            .collect();
        lock_bodies(&mut tx, &hashed).await?;
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
        Ok(outcomes)
    }

    pub(super) async fn forget_bodies(&self, session_id: i64, through: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        forget(&mut tx, session_id, through).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn sessions_holding_bodies(&self, except: i64) -> Result<Vec<OpenSession>> {
        let rows = sqlx::query(
            "select s.name, count(u.session_id) as held from amqp_sessions s
             left join amqp_unacked u on u.session_id = s.session_id
             where s.resolved_at is null and s.session_id != $1
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
            "update amqp_sessions set claimed_until = $1
             where name = $2 and resolved_at is null
             and (claimed_until is null or claimed_until < $3)",
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
        let mut tx = self.pool.begin().await?;
        let session_id: Option<i64> = sqlx::query_scalar(
            "update amqp_sessions set resolved_at = $1, acked_through = $2
             where name = $3 and resolved_at is null returning session_id",
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
    pub(super) async fn purge_sessions(&self, tx: &mut Tx<'_>, before: i64) -> Result<u64> {
        let bodies = sqlx::query("delete from amqp_unacked where stored_at < $1")
            .bind(before)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let sessions = sqlx::query(
            "delete from amqp_sessions where resolved_at < $1
             and not exists (select 1 from amqp_unacked u
                             where u.session_id = amqp_sessions.session_id)",
        )
        .bind(before)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(bodies + sessions)
    }
}
