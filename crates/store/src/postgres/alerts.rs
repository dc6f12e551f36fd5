//! Alert rules on PostgreSQL: instances claim due rules and notifications with
//! `FOR UPDATE SKIP LOCKED`; a commit checks the lease under a row lock.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::{PgStore, alert_from_row, notification_from_row, rule_from_row};
use crate::{
    Result,
    alerts::{
        AlertEvent, AlertStore, Attempt, Evaluated, NewNotification, Notification, RuleWithAlerts,
        StoredAlert, StoredRule,
    },
    rows::{ALERT_COLUMNS, NOTIFICATION_COLUMNS, RULE_COLUMNS},
};

impl PgStore {
    /// The alerts of these rules, attached to them.
    async fn with_alerts(&self, rules: Vec<StoredRule>) -> Result<Vec<RuleWithAlerts>> {
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = rules.iter().map(|r| r.rule_id.to_string()).collect();
        // Ids are integers read from the database: safe to inline.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "select {ALERT_COLUMNS} from alert_states where rule_id in ({}) order by group_key",
            ids.join(",")
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut by_rule: std::collections::HashMap<i64, Vec<StoredAlert>> =
            std::collections::HashMap::new();
        for row in &rows {
            let (rule_id, alert) = alert_from_row(row)?;
            by_rule.entry(rule_id).or_default().push(alert);
        }
        Ok(rules
            .into_iter()
            .map(|rule| RuleWithAlerts {
                alerts: by_rule.remove(&rule.rule_id).unwrap_or_default(),
                rule,
            })
            .collect())
    }
}

#[async_trait]
impl AlertStore for PgStore {
    async fn create_rule(
        &self,
        experiment_id: i64,
        spec: &str,
        created_by: Option<&str>,
        now_ms: i64,
    ) -> Result<StoredRule> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "insert into alert_rules (experiment_id, spec, created_by, created_at_ms,
                 updated_at_ms, next_eval_ms)
             values ($1, $2, $3, $4, $5, $6) returning {RULE_COLUMNS}"
        )))
        .bind(experiment_id)
        .bind(spec)
        .bind(created_by)
        .bind(now_ms)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        rule_from_row(&row)
    }

    async fn list_rules(&self, experiment_id: i64) -> Result<Vec<RuleWithAlerts>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "select {RULE_COLUMNS} from alert_rules where experiment_id = $1 order by rule_id"
        )))
        .bind(experiment_id)
        .fetch_all(&self.pool)
        .await?;
        let rules = rows.iter().map(rule_from_row).collect::<Result<Vec<_>>>()?;
        self.with_alerts(rules).await
    }

    async fn get_rule(&self, rule_id: i64) -> Result<Option<RuleWithAlerts>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "select {RULE_COLUMNS} from alert_rules where rule_id = $1"
        )))
        .bind(rule_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.with_alerts(vec![rule_from_row(&row)?]).await?.pop())
    }

    async fn update_rule(
        &self,
        rule_id: i64,
        spec: &str,
        now_ms: i64,
    ) -> Result<Option<StoredRule>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "update alert_rules set spec = $1, updated_at_ms = $2, next_eval_ms = $3,
                 last_error = null, lease_owner = null, lease_until_ms = null
             where rule_id = $4 returning {RULE_COLUMNS}"
        )))
        .bind(spec)
        .bind(now_ms)
        .bind(now_ms)
        .bind(rule_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("delete from alert_states where rule_id = $1")
            .bind(rule_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(rule_from_row(&row)?))
    }

    async fn delete_rule(&self, rule_id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        for statement in [
            "delete from alert_states where rule_id = $1",
            "delete from alert_events where rule_id = $1",
        ] {
            sqlx::query(statement)
                .bind(rule_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("delete from alert_rules where rule_id = $1")
            .bind(rule_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_due_rules(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<RuleWithAlerts>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "update alert_rules set lease_owner = $1, lease_until_ms = $2
             where rule_id in (
                 select rule_id from alert_rules
                 where next_eval_ms <= $3 and (lease_until_ms is null or lease_until_ms < $4)
                 order by next_eval_ms limit $5
                 for update skip locked)
             returning {RULE_COLUMNS}"
        )))
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let rules = rows.iter().map(rule_from_row).collect::<Result<Vec<_>>>()?;
        self.with_alerts(rules).await
    }

    async fn commit_evaluation(&self, evaluated: &Evaluated) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let holder: Option<(Option<String>, i64)> = sqlx::query_as(
            "select lease_owner, updated_at_ms from alert_rules where rule_id = $1 for update",
        )
        .bind(evaluated.rule_id)
        .fetch_optional(&mut *tx)
        .await?;
        match holder {
            Some((Some(owner), updated))
                if owner == evaluated.owner && updated == evaluated.rule_updated_at_ms => {}
            _ => {
                // Ended here: a dropped transaction is rolled back by a task of the pool a
                // moment later, and until then holds the row lock that claims skip.
                tx.rollback().await?;
                return Ok(false);
            }
        }
        for alert in &evaluated.alerts {
            sqlx::query(
                "insert into alert_states (rule_id, group_key, state, active_since_ms,
                     firing_since_ms, last_value, last_sent_ms)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict (rule_id, group_key) do update set state = excluded.state,
                     active_since_ms = excluded.active_since_ms,
                     firing_since_ms = excluded.firing_since_ms,
                     last_value = excluded.last_value, last_sent_ms = excluded.last_sent_ms",
            )
            .bind(evaluated.rule_id)
            .bind(&alert.group_key)
            .bind(&alert.state)
            .bind(alert.active_since_ms)
            .bind(alert.firing_since_ms)
            .bind(alert.last_value)
            .bind(alert.last_sent_ms)
            .execute(&mut *tx)
            .await?;
        }
        for group_key in &evaluated.forget {
            sqlx::query("delete from alert_states where rule_id = $1 and group_key = $2")
                .bind(evaluated.rule_id)
                .bind(group_key)
                .execute(&mut *tx)
                .await?;
        }
        for (group_key, transition, value) in &evaluated.events {
            sqlx::query(
                "insert into alert_events (rule_id, group_key, transition, at_ms, value)
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(evaluated.rule_id)
            .bind(group_key)
            .bind(transition)
            .bind(evaluated.now_ms)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        for notification in &evaluated.notifications {
            sqlx::query(
                "insert into alert_notifications (rule_id, receiver, body, created_at_ms,
                     next_attempt_ms, status)
                 values ($1, $2, $3, $4, $5, 'pending')",
            )
            .bind(evaluated.rule_id)
            .bind(&notification.receiver)
            .bind(&notification.body)
            .bind(evaluated.now_ms)
            .bind(evaluated.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "update alert_rules set next_eval_ms = $1, last_eval_ms = $2, last_error = $3,
                 lease_owner = null, lease_until_ms = null
             where rule_id = $4",
        )
        .bind(evaluated.next_eval_ms)
        .bind(evaluated.now_ms)
        .bind(&evaluated.error)
        .bind(evaluated.rule_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn queue_notifications(
        &self,
        rule_id: i64,
        notifications: &[NewNotification],
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for notification in notifications {
            sqlx::query(
                "insert into alert_notifications (rule_id, receiver, body, created_at_ms,
                     next_attempt_ms, status)
                 values ($1, $2, $3, $4, $5, 'pending')",
            )
            .bind(rule_id)
            .bind(&notification.receiver)
            .bind(&notification.body)
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rule_events(&self, rule_id: i64, limit: u32) -> Result<Vec<AlertEvent>> {
        let rows = sqlx::query(
            "select event_id, rule_id, group_key, transition, at_ms, value from alert_events
             where rule_id = $1 order by event_id desc limit $2",
        )
        .bind(rule_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertEvent {
                    event_id: row.try_get("event_id")?,
                    rule_id: row.try_get("rule_id")?,
                    group_key: row.try_get("group_key")?,
                    transition: row.try_get("transition")?,
                    at_ms: row.try_get("at_ms")?,
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "update alert_notifications set lease_owner = $1, lease_until_ms = $2
             where notification_id in (
                 select n.notification_id from alert_notifications n
                 where n.status = 'pending' and n.next_attempt_ms <= $3
                   and (n.lease_until_ms is null or n.lease_until_ms < $4)
                   -- A receiver's notifications go out one at a time, oldest first.
                   and not exists (
                       select 1 from alert_notifications o
                       where o.receiver = n.receiver and o.status = 'pending'
                         and o.notification_id < n.notification_id)
                 order by n.notification_id limit $5
                 for update of n skip locked)
             returning {NOTIFICATION_COLUMNS}"
        )))
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(notification_from_row)
            .collect::<Result<Vec<_>>>()?;
        // Oldest first: a resolution is never sent before the firing it ends.
        claimed.sort_by_key(|n| n.notification_id);
        Ok(claimed)
    }

    async fn finish_notification(
        &self,
        notification_id: i64,
        owner: &str,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<()> {
        let (status, error, next, done) = match attempt {
            Attempt::Delivered => ("delivered", None, None, Some(now_ms)),
            Attempt::Retry {
                error,
                next_attempt_ms,
            } => (
                "pending",
                Some(error.as_str()),
                Some(*next_attempt_ms),
                None,
            ),
            Attempt::GiveUp { error } => ("failed", Some(error.as_str()), None, Some(now_ms)),
        };
        sqlx::query(
            "update alert_notifications set status = $1, attempts = attempts + 1,
                 last_error = coalesce($2, last_error),
                 next_attempt_ms = coalesce($3, next_attempt_ms), done_at_ms = $4,
                 lease_owner = null, lease_until_ms = null
             where notification_id = $5 and lease_owner = $6",
        )
        .bind(status)
        .bind(error)
        .bind(next)
        .bind(done)
        .bind(notification_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rule_notifications(&self, rule_id: i64, limit: u32) -> Result<Vec<Notification>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "select {NOTIFICATION_COLUMNS} from alert_notifications
             where rule_id = $1 order by notification_id desc limit $2"
        )))
        .bind(rule_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    async fn alert_counts(&self) -> Result<(u64, u64)> {
        let (rules, firing): (i64, i64) = sqlx::query_as(
            "select (select count(*) from alert_rules),
                    (select count(*) from alert_states where state = 'firing')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((rules.max(0) as u64, firing.max(0) as u64))
    }
}
