//! What both backends share about reading rows: the statements' columns are the same, only
//! the row type differs, so the mappers are written once and instantiated per backend with
//! [`row_mappers!`].

/// Now, in epoch seconds.
pub(crate) fn now() -> i64 {
    mymonit_model::time::now_ns() / 1_000_000_000
}

/// The columns [`row_mappers!`]'s `account_from_row` reads.
pub(crate) const USER_COLUMNS: &str =
    "user_id, name, username, email, role, password_hash, token_generation";

/// The columns [`row_mappers!`]'s `source_from_row` reads.
pub(crate) const SOURCE_COLUMNS: &str = "source_id, experiment_id, kind, url, \
     sealed_secret is not null as has_secret, include, interval_secs, enabled, created_at_ms, \
     cursor, history_from, backlog_secs, last_success_ms, last_error, last_error_ms, failures, \
     points_fetched, next_fetch_ms";

/// The columns of alert rules, their alerts and notifications, as `row_mappers!` reads them.
pub(crate) const RULE_COLUMNS: &str = "rule_id, experiment_id, spec, created_by, created_at_ms, \
     updated_at_ms, next_eval_ms, last_eval_ms, last_error";
pub(crate) const ALERT_COLUMNS: &str =
    "rule_id, group_key, state, active_since_ms, firing_since_ms, last_value, last_sent_ms";
pub(crate) const NOTIFICATION_COLUMNS: &str = "notification_id, rule_id, receiver, body, created_at_ms, \
     attempts, next_attempt_ms, status, last_error, done_at_ms";

/// A JSON value as the audit trail stores it.
pub(crate) fn json_text(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Defines, in the invoking module, the mappers from a backend's row type to the model:
/// `user_from_row`, `account_from_row`, `experiment_from_row`, `measure_type_from_row`,
/// `personal_token_from_row`, `source_from_row`, the alert mappers (`rule_from_row`,
/// `alert_from_row`, `notification_from_row`) and `record_from_row` (audit).
macro_rules! row_mappers {
    ($row:ty) => {
        #[allow(unused_imports)]
        use sqlx::Row as _;

        fn user_from_row(row: &$row) -> crate::Result<mymonit_model::User> {
            Ok(mymonit_model::User {
                user_id: row.try_get("user_id")?,
                name: row
                    .try_get::<Option<String>, _>("name")?
                    .unwrap_or_default()
                    .into(),
                username: row
                    .try_get::<Option<String>, _>("username")?
                    .unwrap_or_default()
                    .into(),
                email: row
                    .try_get::<Option<String>, _>("email")?
                    .unwrap_or_default()
                    .into(),
                role: crate::parse_role(row.try_get("role")?)?,
            })
        }

        fn account_from_row(row: &$row) -> crate::Result<crate::Account> {
            Ok(crate::Account {
                user: user_from_row(row)?,
                password_hash: row.try_get("password_hash")?,
                token_generation: row.try_get("token_generation")?,
            })
        }

        /// A personal access token from its row.
        fn personal_token_from_row(
            row: &$row,
        ) -> crate::Result<mymonit_model::personal_token::PersonalToken> {
            Ok(mymonit_model::personal_token::PersonalToken {
                token_id: row.try_get("token_id")?,
                user_id: row.try_get("user_id")?,
                name: row.try_get("name")?,
                scope: row.try_get("scope")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        }

        /// A pull source from its row ([`crate::rows::SOURCE_COLUMNS`]).
        fn source_from_row(row: &$row) -> crate::Result<mymonit_model::source::Source> {
            let kind: String = row.try_get("kind")?;
            let invalid =
                |what: &str| crate::StoreError::Invalid(format!("source: corrupt {what}"));
            Ok(mymonit_model::source::Source {
                source_id: row.try_get("source_id")?,
                experiment_id: row.try_get("experiment_id")?,
                kind: kind.parse().map_err(|_| invalid("kind"))?,
                url: row.try_get("url")?,
                has_secret: row.try_get("has_secret")?,
                include: row.try_get("include")?,
                interval_secs: u32::try_from(row.try_get::<i64, _>("interval_secs")?)
                    .map_err(|_| invalid("interval"))?,
                enabled: row.try_get("enabled")?,
                created_at_ms: row.try_get("created_at_ms")?,
                cursor: row.try_get("cursor")?,
                history_from: row.try_get("history_from")?,
                backlog_secs: row.try_get("backlog_secs")?,
                last_success_ms: row.try_get("last_success_ms")?,
                last_error: row.try_get("last_error")?,
                last_error_ms: row.try_get("last_error_ms")?,
                failures: u32::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                points_fetched: u64::try_from(row.try_get::<i64, _>("points_fetched")?)
                    .unwrap_or_default(),
                next_fetch_ms: row.try_get("next_fetch_ms")?,
            })
        }

        fn rule_from_row(row: &$row) -> crate::Result<crate::alerts::StoredRule> {
            Ok(crate::alerts::StoredRule {
                rule_id: row.try_get("rule_id")?,
                experiment_id: row.try_get("experiment_id")?,
                spec: row.try_get("spec")?,
                created_by: row.try_get("created_by")?,
                created_at_ms: row.try_get("created_at_ms")?,
                updated_at_ms: row.try_get("updated_at_ms")?,
                next_eval_ms: row.try_get("next_eval_ms")?,
                last_eval_ms: row.try_get("last_eval_ms")?,
                last_error: row.try_get("last_error")?,
            })
        }

        fn alert_from_row(row: &$row) -> crate::Result<(i64, crate::alerts::StoredAlert)> {
            Ok((
                row.try_get("rule_id")?,
                crate::alerts::StoredAlert {
                    group_key: row.try_get("group_key")?,
                    state: row.try_get("state")?,
                    active_since_ms: row.try_get("active_since_ms")?,
                    firing_since_ms: row.try_get("firing_since_ms")?,
                    last_value: row.try_get("last_value")?,
                    last_sent_ms: row.try_get("last_sent_ms")?,
                },
            ))
        }

        fn notification_from_row(row: &$row) -> crate::Result<crate::alerts::Notification> {
            Ok(crate::alerts::Notification {
                notification_id: row.try_get("notification_id")?,
                rule_id: row.try_get("rule_id")?,
                receiver: row.try_get("receiver")?,
                body: row.try_get("body")?,
                created_at_ms: row.try_get("created_at_ms")?,
                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                next_attempt_ms: row.try_get("next_attempt_ms")?,
                status: row.try_get("status")?,
                last_error: row.try_get("last_error")?,
                done_at_ms: row.try_get("done_at_ms")?,
            })
        }

        fn experiment_from_row(row: &$row) -> crate::Result<mymonit_model::Experiment> {
            Ok(mymonit_model::Experiment {
                experiment_id: row.try_get("experiment_id")?,
                name: row.try_get("name")?,
            })
        }

        fn measure_type_from_row(row: &$row) -> crate::Result<mymonit_model::MeasureType> {
            Ok(mymonit_model::MeasureType {
                measure_type_id: row.try_get("measure_type_id")?,
                name: row.try_get("name")?,
                symbol: row.try_get("symbol")?,
                quantity: row.try_get("quantity")?,
            })
        }

        fn record_from_row(row: &$row) -> crate::Result<mymonit_model::audit::AuditRecord> {
            let parse = |column: &str| -> crate::Result<serde_json::Value> {
                let text: String = row.try_get(column)?;
                // A value that is not JSON was altered: keep its text, so verification names it.
                Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
            };
            let outcome: String = row.try_get("outcome")?;
            Ok(mymonit_model::audit::AuditRecord {
                seq: row.try_get("seq")?,
                event: mymonit_model::audit::AuditEvent {
                    at_ns: row.try_get("at_ns")?,
                    actor_id: row.try_get("actor_id")?,
                    actor_role: row.try_get("actor_role")?,
                    action: row.try_get("action")?,
                    target: parse("target")?,
                    status: row
                        .try_get::<Option<i64>, _>("status")?
                        .and_then(|s| u16::try_from(s).ok()),
                    outcome: outcome.parse().map_err(|err: String| {
                        crate::StoreError::Invalid(format!("audit record: {err}"))
                    })?,
                    request_id: row.try_get("request_id")?,
                    client: row.try_get("client")?,
                    detail: parse("detail")?,
                },
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        }
    };
}
pub(crate) use row_mappers;
