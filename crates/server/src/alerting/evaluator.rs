//! The evaluation loop: every instance claims due rules from the database (a lease each, so a
//! rule is evaluated by one instance at a time, and by another when that one dies) and
//! evaluates at most `alerting.max_concurrent_evaluations` at once.

use std::time::Duration;

use mymonit_store::alerts::RuleWithAlerts;

use super::evaluate;
use crate::{background::claim_and_work, sources::now_ms, state::AppState};

/// How often the loop looks for due rules when nothing wakes it.
const POLL: Duration = Duration::from_millis(250);
/// How long a claimed rule stays this instance's: far more than an evaluation takes.
const LEASE_MS: i64 = 60_000;

/// Evaluates due rules until the task is dropped.
pub async fn run(state: AppState) {
    let owner = format!("mymonit-{}", uuid::Uuid::new_v4());
    let claimer = (state.clone(), owner.clone());
    claim_and_work(
        "due alert rules",
        POLL,
        state.alert_rules_changed.clone(),
        state.settings.alerting.max_concurrent_evaluations,
        |free| {
            let (state, owner) = claimer.clone();
            async move {
                state
                    .alerts
                    .claim_due_rules(&owner, now_ms(), LEASE_MS, free)
                    .await
            }
        },
        |rule| {
            let (state, owner) = (state.clone(), owner.clone());
            async move { evaluate_one(&state, &rule, &owner).await }
        },
    )
    .await;
}

async fn evaluate_one(state: &AppState, claimed: &RuleWithAlerts, owner: &str) {
    let started = std::time::Instant::now();
    let rule_id = claimed.rule.rule_id;
    let experiment = match state.meta.get_experiment(claimed.rule.experiment_id).await {
        Ok(Some(experiment)) => experiment.name,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(rule_id, error = %err, "cannot read an alert rule's experiment");
            return;
        }
    };
    let evaluated = evaluate(state, claimed, &experiment, owner, now_ms()).await;
    if let Some(error) = &evaluated.error {
        tracing::warn!(rule_id, %error, "evaluating an alert rule failed");
    }
    let notified = !evaluated.notifications.is_empty();
    match state.alerts.commit_evaluation(&evaluated).await {
        Ok(true) => {
            for (group, transition, value) in &evaluated.events {
                tracing::info!(rule_id, group = %group, transition = %transition, value = ?value, "alert changed");
            }
            if notified {
                state.notifications_queued.notify_one();
            }
        }
        Ok(false) => {
            tracing::info!(
                rule_id,
                "another instance took the rule over: evaluation dropped"
            );
        }
        Err(err) => {
            tracing::warn!(rule_id, error = %err, "cannot store an alert rule's evaluation")
        }
    }
    state.metrics.alert_evaluated(started.elapsed());
}
