//! The audit trail on PostgreSQL: every append locks the head row (`audit_head`), so the
//! appends of all instances form one chain; reads page by position.

use async_trait::async_trait;
use mymonit_model::audit::{AuditEvent, AuditRecord};

use super::{PgStore, record_from_row};
use crate::rows::json_text;
use crate::{AuditFilter, AuditStore, Result};

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        // Held until commit: another instance's append waits here and then chains to ours.
        let (mut seq, mut prev_hash): (i64, String) =
            sqlx::query_as("select seq, hash from audit_head where id = 1 for update")
                .fetch_one(&mut *tx)
                .await?;
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let record = AuditRecord::chain(seq, event.clone(), &prev_hash);
            prev_hash.clone_from(&record.hash);
            records.push(record);
        }
        let column = |f: &dyn Fn(&AuditRecord) -> Option<String>| -> Vec<Option<String>> {
            records.iter().map(f).collect()
        };
        let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
        let at: Vec<i64> = records.iter().map(|r| r.event.at_ns).collect();
        let statuses: Vec<Option<i64>> = records
            .iter()
            .map(|r| r.event.status.map(i64::from))
            .collect();
        sqlx::query(
            "insert into audit_log (seq, at_ns, actor_id, actor_role, action, target, status,
                                    outcome, request_id, client, detail, prev_hash, hash)
             select * from unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[],
                                  $11::text[], $12::text[], $13::text[])",
        )
        .bind(&seqs)
        .bind(&at)
        .bind(column(&|r| r.event.actor_id.clone()))
        .bind(column(&|r| r.event.actor_role.clone()))
        .bind(column(&|r| Some(r.event.action.clone())))
        .bind(column(&|r| Some(json_text(&r.event.target))))
        .bind(&statuses)
        .bind(column(&|r| Some(r.event.outcome.as_str().to_owned())))
        .bind(column(&|r| r.event.request_id.clone()))
        .bind(column(&|r| r.event.client.clone()))
        .bind(column(&|r| Some(json_text(&r.event.detail))))
        .bind(column(&|r| Some(r.prev_hash.clone())))
        .bind(column(&|r| Some(r.hash.clone())))
        .execute(&mut *tx)
        .await?;
        sqlx::query("update audit_head set seq = $1, hash = $2 where id = 1")
            .bind(seq)
            .bind(&prev_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(records)
    }

    async fn audit_records(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        const MATCHING: &str = "and at_ns >= $2 and at_ns < $3
               and ($4::text is null or actor_id = $4)
               and ($5::text is null or action = $5)
               and ($6::text is null or outcome = $6)";
        let (sql, past) = if filter.newest_first {
            (
                format!(
                    "select * from audit_log where seq < $1 {MATCHING} order by seq desc limit $7"
                ),
                filter.after_seq.unwrap_or(i64::MAX),
            )
        } else {
            (
                format!("select * from audit_log where seq > $1 {MATCHING} order by seq limit $7"),
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
        let head: (i64, String) = sqlx::query_as("select seq, hash from audit_head where id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((head.0 > 0).then_some(head))
    }
}
