//! The audit trail on SQLite: appends are serialised (one chain), reads page by position.

use async_trait::async_trait;
use mymonit_model::audit::{AuditEvent, AuditRecord, GENESIS_HASH};

use super::{SqliteStore, record_from_row};
use crate::rows::json_text;
use crate::{AuditFilter, AuditStore, Result};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>> {
        let mut head = self.audit_writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The head is read once, then kept: this process is the trail's only writer.
        let (mut seq, mut prev_hash) = match head.clone() {
            Some(head) => head,
            None => sqlx::query_as("select seq, hash from audit_log order by seq desc limit 1")
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or((0, GENESIS_HASH.to_owned())),
        };
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let record = AuditRecord::chain(seq, event.clone(), &prev_hash);
            prev_hash.clone_from(&record.hash);
            records.push(record);
        }
        for rows in records.chunks(64) {
            let sql = format!(
                "insert into audit_log (seq, at_ns, actor_id, actor_role, action, target, status,
                                        outcome, request_id, client, detail, prev_hash, hash)
                 values {}",
                super::values_list("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for record in rows {
                let event = &record.event;
                query = query
                    .bind(record.seq)
                    .bind(event.at_ns)
                    .bind(&event.actor_id)
                    .bind(&event.actor_role)
                    .bind(&event.action)
                    .bind(json_text(&event.target))
                    .bind(event.status.map(i64::from))
                    .bind(event.outcome.as_str())
                    .bind(&event.request_id)
                    .bind(&event.client)
                    .bind(json_text(&event.detail))
                    .bind(&record.prev_hash)
                    .bind(&record.hash);
            }
            if let Err(err) = query.execute(&mut *tx).await {
                // Read the head again next time, in case it was not what this process thought.
                *head = None;
                return Err(err.into());
            }
        }
        tx.commit().await?;
        *head = Some((seq, prev_hash));
        Ok(records)
    }

    async fn audit_records(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        const MATCHING: &str = "and at_ns >= ?2 and at_ns < ?3
               and (?4 is null or actor_id = ?4)
               and (?5 is null or action = ?5)
               and (?6 is null or outcome = ?6)";
        let (sql, past) = if filter.newest_first {
            (
                format!(
                    "select * from audit_log where seq < ?1 {MATCHING} order by seq desc limit ?7"
                ),
                filter.after_seq.unwrap_or(i64::MAX),
            )
        } else {
            (
                format!("select * from audit_log where seq > ?1 {MATCHING} order by seq limit ?7"),
                filter.after_seq.unwrap_or(0),
            )
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(past)
            .bind(filter.from_ns.unwrap_or(i64::MIN))
            .bind(filter.to_ns.unwrap_or(i64::MAX))
            .bind(&filter.actor_id)
            .bind(&filter.action)
            .bind(filter.outcome.map(|o| o.as_str()))
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("select seq, hash from audit_log order by seq desc limit 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
