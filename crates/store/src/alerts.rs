//! Alert rules in the database: the rules, the state of their alerts, their history, and an
//! outbox of notifications. An evaluation is committed in one transaction (new states,
//! history, notifications) by the instance holding the rule's lease; notifications are sent
//! by whichever instance claims them, and kept until delivered.

use async_trait::async_trait;

use crate::Result;

/// A rule as stored: its spec is the model's `RuleSpec` as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    /// Its id.
    pub rule_id: i64,
    /// Its experiment.
    pub experiment_id: i64,
    /// The rule, JSON.
    pub spec: String,
    /// Who made it (user id).
    pub created_by: Option<String>,
    /// When, epoch milliseconds.
    pub created_at_ms: i64,
    /// Last change, epoch milliseconds.
    pub updated_at_ms: i64,
    /// When it is next evaluated.
    pub next_eval_ms: i64,
    /// When it was last evaluated.
    pub last_eval_ms: Option<i64>,
    /// Why its last evaluation failed, if it did.
    pub last_error: Option<String>,
}

/// One alert of a rule, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// `""` for the rule's own alert; the tag's value for a per-tag rule.
    pub group_key: String,
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    /// Since when its condition holds.
    pub active_since_ms: Option<i64>,
    /// Since when it fires.
    pub firing_since_ms: Option<i64>,
    /// The last evaluation's value.
    pub last_value: Option<f64>,
    /// When it was last sent to Alertmanager (re-sent while it fires).
    pub last_sent_ms: Option<i64>,
}

/// A rule with its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleWithAlerts {
    /// The rule.
    pub rule: StoredRule,
    /// Its alerts, by group key.
    pub alerts: Vec<StoredAlert>,
}

/// A change in a rule's history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// Its id (history order).
    pub event_id: i64,
    /// The rule.
    pub rule_id: i64,
    /// The alert's group key.
    pub group_key: String,
    /// `pending`, `firing`, `resolved` or `cleared`.
    pub transition: String,
    /// When, epoch milliseconds.
    pub at_ms: i64,
    /// The value that made it.
    pub value: Option<f64>,
}

/// A notification to send.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The receiver: `alertmanager:URL` or `webhook:URL`.
    pub receiver: String,
    /// What to send (JSON).
    pub body: String,
}

/// A notification and how its delivery goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its id.
    pub notification_id: i64,
    /// Its rule (none once the rule is deleted).
    pub rule_id: Option<i64>,
    /// `alertmanager:URL` or `webhook:URL`.
    pub receiver: String,
    /// What is sent (JSON).
    pub body: String,
    /// When it was made.
    pub created_at_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is next tried.
    pub next_attempt_ms: i64,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub done_at_ms: Option<i64>,
}

/// One evaluation's outcome, to commit.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The rule.
    pub rule_id: i64,
    /// The instance holding its lease: nothing is committed if another holds it now.
    pub owner: String,
    /// The rule's `updated_at_ms` when it was claimed: nothing is committed if the rule was
    /// changed meanwhile (the evaluation was of the old rule).
    pub rule_updated_at_ms: i64,
    /// Now.
    pub now_ms: i64,
    /// When it is next due.
    pub next_eval_ms: i64,
    /// Why the evaluation failed (the alerts then stay as they were).
    pub error: Option<String>,
    /// Alerts whose state changed or that were evaluated (upserted).
    pub alerts: Vec<StoredAlert>,
    /// Alerts to forget (inactive ones whose tag value has no series any more).
    pub forget: Vec<String>,
    /// History: `(group key, transition, value)`.
    pub events: Vec<(String, String, Option<f64>)>,
    /// Notifications to send.
    pub notifications: Vec<NewNotification>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The receiver took it.
    Delivered,
    /// It failed; try again then.
    Retry {
        /// Why.
        error: String,
        /// When to try again.
        next_attempt_ms: i64,
    },
    /// It failed for good (too old, or refused as malformed).
    GiveUp {
        /// Why.
        error: String,
    },
}

/// Alert rules and their alerts.
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Creates a rule, due at once.
    async fn create_rule(
        &self,
        experiment_id: i64,
        spec: &str,
        created_by: Option<&str>,
        now_ms: i64,
    ) -> Result<StoredRule>;
    /// An experiment's rules with their alerts, by id.
    async fn list_rules(&self, experiment_id: i64) -> Result<Vec<RuleWithAlerts>>;
    /// One rule with its alerts.
    async fn get_rule(&self, rule_id: i64) -> Result<Option<RuleWithAlerts>>;
    /// Replaces a rule's spec; it is due at once and its alerts start again from inactive.
    async fn update_rule(
        &self,
        rule_id: i64,
        spec: &str,
        now_ms: i64,
    ) -> Result<Option<StoredRule>>;
    /// Deletes a rule with its alerts and history; its notifications still go out.
    async fn delete_rule(&self, rule_id: i64) -> Result<bool>;
    /// Claims at most `limit` rules due at `now_ms` whose lease is free or expired.
    async fn claim_due_rules(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<RuleWithAlerts>>;
    /// Commits an evaluation and releases the lease, if `owner` still holds it and the rule
    /// was not changed since it was claimed; `Ok(false)` when another instance took the rule
    /// over, or it was changed or deleted.
    async fn commit_evaluation(&self, evaluated: &Evaluated) -> Result<bool>;
    /// Queues notifications of a rule outside an evaluation (the resolution of its firing
    /// alerts when it is changed or deleted).
    async fn queue_notifications(
        &self,
        rule_id: i64,
        notifications: &[NewNotification],
        now_ms: i64,
    ) -> Result<()>;
    /// A rule's history, newest first, at most `limit` events.
    async fn rule_events(&self, rule_id: i64, limit: u32) -> Result<Vec<AlertEvent>>;
    /// Claims at most `limit` notifications due at `now_ms`.
    async fn claim_notifications(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Notification>>;
    /// Records a delivery attempt and releases the notification.
    async fn finish_notification(
        &self,
        notification_id: i64,
        owner: &str,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<()>;
    /// A rule's notifications, newest first, at most `limit`.
    async fn rule_notifications(&self, rule_id: i64, limit: u32) -> Result<Vec<Notification>>;
    /// How many rules there are and how many alerts fire.
    async fn alert_counts(&self) -> Result<(u64, u64)>;
}
