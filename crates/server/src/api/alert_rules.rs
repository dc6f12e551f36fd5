//! Alert rules under `/api/v1/experiments/{experiment_id}/alert-rules`: scientists make and
//! read the rules of their experiments. A rule's values and evaluations are measures'
//! figures, so admins (who may not read measures) do not see them.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use mymonit_model::{Action, alert::RuleSpec, time::format_rfc3339};
use mymonit_store::alerts::{AlertEvent, Notification, RuleWithAlerts};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, experiments::visible_experiment};
use crate::{
    alerting::rules::RuleRequest,
    auth::AuthUser,
    error::{ApiError, ApiResult},
    sources::now_ms,
    state::AppState,
};

/// One alert of a rule (the rule's, or one tag value's).
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    /// The tag's value (per-tag rules), or null.
    pub group: Option<String>,
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    /// Since when its condition holds.
    pub active_since: Option<String>,
    /// Since when it fires.
    pub firing_since: Option<String>,
    /// The last evaluation's value (the statistic, or for an absence the count of points).
    pub value: Option<f64>,
}

/// A rule as the API shows it: the rule as written, and its alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    /// Its id.
    pub rule_id: i64,
    /// Its experiment.
    pub experiment_id: i64,
    /// The rule as written (durations as `5m`).
    #[serde(flatten)]
    pub rule: RuleRequest,
    /// The worst of its alerts' states: `firing`, `pending` or `inactive`.
    pub state: String,
    /// The value of its last evaluation (the rule's alert, or the highest of a per-tag rule's).
    pub last_value: Option<f64>,
    /// When it was last evaluated.
    pub last_evaluated_at: Option<String>,
    /// Why its last evaluation failed, if it did.
    pub last_error: Option<String>,
    /// Its alerts.
    pub alerts: Vec<AlertView>,
    /// Who made it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

fn at(ms: i64) -> String {
    format_rfc3339(ms.saturating_mul(1_000_000))
}

impl RuleView {
    fn of(found: RuleWithAlerts) -> ApiResult<Self> {
        let spec: RuleSpec = serde_json::from_str(&found.rule.spec)
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored rule unreadable: {err}")))?;
        let rank = |state: &str| match state {
            "firing" => 2,
            "pending" => 1,
            _ => 0,
        };
        let state = found
            .alerts
            .iter()
            .map(|a| a.state.as_str())
            .max_by_key(|s| rank(s))
            .unwrap_or("inactive")
            .to_owned();
        let last_value = found
            .alerts
            .iter()
            .filter_map(|a| a.last_value)
            .max_by(f64::total_cmp);
        Ok(Self {
            rule_id: found.rule.rule_id,
            experiment_id: found.rule.experiment_id,
            rule: RuleRequest::of(&spec),
            state,
            last_value,
            last_evaluated_at: found.rule.last_eval_ms.map(at),
            last_error: found.rule.last_error.clone(),
            alerts: found
                .alerts
                .into_iter()
                .map(|alert| AlertView {
                    group: (!alert.group_key.is_empty()).then_some(alert.group_key),
                    state: alert.state,
                    active_since: alert.active_since_ms.map(at),
                    firing_since: alert.firing_since_ms.map(at),
                    value: alert.last_value,
                })
                .collect(),
            created_by: found.rule.created_by,
            created_at: at(found.rule.created_at_ms),
            updated_at: at(found.rule.updated_at_ms),
        })
    }
}

/// Most rules per experiment.
pub const MAX_RULES_PER_EXPERIMENT: usize = 200;

async fn check_measure(state: &AppState, spec: &RuleSpec) -> ApiResult<()> {
    if state
        .meta
        .measure_type_by_name(&spec.measure)
        .await?
        .is_none()
    {
        return Err(ApiError::Invalid(
            format!("unknown measure type {:?}", spec.measure),
            Some("measure"),
        ));
    }
    Ok(())
}

/// Tells the receivers that a rule's firing alerts ended, before the rule is changed or
/// deleted (its alerts start again from inactive, or are gone).
async fn resolve_firing(
    state: &AppState,
    found: &RuleWithAlerts,
    experiment: &str,
) -> ApiResult<()> {
    let now = now_ms();
    let notifications = crate::alerting::resolutions(state, found, experiment, now);
    if !notifications.is_empty() {
        state
            .alerts
            .queue_notifications(found.rule.rule_id, &notifications, now)
            .await?;
        state.notifications_queued.notify_one();
    }
    Ok(())
}

fn stored(spec: &RuleSpec) -> ApiResult<String> {
    serde_json::to_string(spec)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("cannot store the rule: {err}")))
}

/// Makes an alert rule.
#[utoipa::path(post, path = "/api/v1/experiments/{experiment_id}/alert-rules", tag = "alerts",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)), request_body = RuleRequest,
    responses((status = 201, body = RuleView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiJson(request): ApiJson<RuleRequest>,
) -> ApiResult<impl IntoResponse> {
    visible_experiment(&state, &actor, Action::ReadMeasures, experiment_id).await?;
    let spec = request.into_spec(None)?;
    check_measure(&state, &spec).await?;
    if state.alerts.list_rules(experiment_id).await?.len() >= MAX_RULES_PER_EXPERIMENT {
        return Err(ApiError::Conflict(format!(
            "the experiment has {MAX_RULES_PER_EXPERIMENT} rules, the most allowed"
        )));
    }
    let rule = state
        .alerts
        .create_rule(
            experiment_id,
            &stored(&spec)?,
            Some(&actor.user.user_id),
            now_ms(),
        )
        .await?;
    state.alert_rules_changed.notify_one();
    tracing::info!(actor = %actor.user.user_id, rule_id = rule.rule_id, experiment_id, "alert rule made");
    Ok((
        StatusCode::CREATED,
        Json(RuleView::of(RuleWithAlerts {
            rule,
            alerts: Vec::new(),
        })?),
    ))
}

/// An experiment's alert rules with their states.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/alert-rules", tag = "alerts",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)),
    responses((status = 200, body = Vec<RuleView>),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
) -> ApiResult<Json<Vec<RuleView>>> {
    visible_experiment(&state, &actor, Action::ReadMeasures, experiment_id).await?;
    let rules = state.alerts.list_rules(experiment_id).await?;
    Ok(Json(
        rules
            .into_iter()
            .map(RuleView::of)
            .collect::<ApiResult<_>>()?,
    ))
}

/// A rule of an experiment the actor may read, or 404/403.
async fn visible_rule(
    state: &AppState,
    actor: &AuthUser,
    experiment_id: i64,
    rule_id: i64,
) -> ApiResult<(RuleWithAlerts, String)> {
    let experiment = visible_experiment(state, actor, Action::ReadMeasures, experiment_id).await?;
    let found = state
        .alerts
        .get_rule(rule_id)
        .await?
        .filter(|found| found.rule.experiment_id == experiment_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "alert rule {rule_id} of experiment {experiment_id}"
            ))
        })?;
    Ok((found, experiment.name))
}

/// One rule with its state.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/alert-rules/{rule_id}", tag = "alerts",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), ("rule_id" = i64, Path)),
    responses((status = 200, body = RuleView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath((experiment_id, rule_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<RuleView>> {
    Ok(Json(RuleView::of(
        visible_rule(&state, &actor, experiment_id, rule_id)
            .await?
            .0,
    )?))
}

/// Changes a rule; its alerts start again from inactive (the receivers are told that those
/// firing were resolved).
#[utoipa::path(patch, path = "/api/v1/experiments/{experiment_id}/alert-rules/{rule_id}", tag = "alerts",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), ("rule_id" = i64, Path)),
    request_body = RuleRequest,
    responses((status = 200, body = RuleView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath((experiment_id, rule_id)): ApiPath<(i64, i64)>,
    ApiJson(request): ApiJson<RuleRequest>,
) -> ApiResult<Json<RuleView>> {
    let (found, experiment) = visible_rule(&state, &actor, experiment_id, rule_id).await?;
    let before: RuleSpec = serde_json::from_str(&found.rule.spec)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored rule unreadable: {err}")))?;
    let spec = request.into_spec(Some(&RuleRequest::of(&before)))?;
    check_measure(&state, &spec).await?;
    resolve_firing(&state, &found, &experiment).await?;
    let rule = state
        .alerts
        .update_rule(rule_id, &stored(&spec)?, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert rule {rule_id}")))?;
    state.alert_rules_changed.notify_one();
    Ok(Json(RuleView::of(RuleWithAlerts {
        rule,
        alerts: Vec::new(),
    })?))
}

/// Deletes a rule with its history; the receivers are told that its firing alerts were
/// resolved.
#[utoipa::path(delete, path = "/api/v1/experiments/{experiment_id}/alert-rules/{rule_id}", tag = "alerts",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), ("rule_id" = i64, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath((experiment_id, rule_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let (found, experiment) = visible_rule(&state, &actor, experiment_id, rule_id).await?;
    resolve_firing(&state, &found, &experiment).await?;
    state.alerts.delete_rule(rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How much history to show.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// At most this many events and notifications each (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A change of one of a rule's alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// The tag's value (per-tag rules), or null.
    pub group: Option<String>,
    /// `pending`, `firing`, `resolved` or `cleared` (stopped holding before it fired).
    pub transition: String,
    /// When.
    pub at: String,
    /// The value that made it (the statistic; for an absence, the count of points).
    pub value: Option<f64>,
}

/// A notification and its delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// `alertmanager:` or `webhook:` and the receiver's origin (its path and credentials are
    /// not shown).
    pub receiver: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was made.
    pub created_at: String,
    /// When it was delivered or given up.
    pub done_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// What was sent.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// A rule's history and its notifications' delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// Changes, newest first.
    pub events: Vec<EventView>,
    /// Notifications, newest first.
    pub notifications: Vec<NotificationView>,
}

fn event_view(event: AlertEvent) -> EventView {
    EventView {
        group: (!event.group_key.is_empty()).then_some(event.group_key),
        transition: event.transition,
        at: at(event.at_ms),
        value: event.value,
    }
}

/// A receiver as scientists see it: its kind and origin (a webhook's path or an
/// Alertmanager's credentials may be secrets of the operator's configuration).
fn receiver_shown(receiver: &str) -> String {
    let (kind, url) = receiver.split_once(':').unwrap_or(("", receiver));
    let Some((scheme, rest)) = url.split_once("://") else {
        return kind.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let more = if rest.len() > authority.len() + 1 {
        "/…"
    } else {
        ""
    };
    format!("{kind}:{scheme}://{host}{more}")
}

fn notification_view(notification: Notification) -> NotificationView {
    NotificationView {
        receiver: receiver_shown(&notification.receiver),
        status: notification.status,
        attempts: notification.attempts,
        created_at: at(notification.created_at_ms),
        done_at: notification.done_at_ms.map(at),
        last_error: notification.last_error,
        body: serde_json::from_str(&notification.body).unwrap_or(serde_json::Value::Null),
    }
}

/// A rule's history (when each alert pended, fired and resolved, with the values) and the
/// delivery log of its notifications.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/alert-rules/{rule_id}/history", tag = "alerts",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), ("rule_id" = i64, Path), HistoryParams),
    responses((status = 200, body = HistoryView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn history(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath((experiment_id, rule_id)): ApiPath<(i64, i64)>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<Json<HistoryView>> {
    visible_rule(&state, &actor, experiment_id, rule_id).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    let (events, notifications) = tokio::try_join!(
        state.alerts.rule_events(rule_id, limit),
        state.alerts.rule_notifications(rule_id, limit)
    )?;
    Ok(Json(HistoryView {
        events: events.into_iter().map(event_view).collect(),
        notifications: notifications.into_iter().map(notification_view).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_show_their_origin_only() {
        assert_eq!(
            receiver_shown("webhook:https://hooks.example.org/services/T0/B0/secret"),
            "webhook:https://hooks.example.org/…"
        );
        assert_eq!(
            receiver_shown("alertmanager:http://u:p@127.0.0.1:9093"),
            "alertmanager:http://127.0.0.1:9093"
        );
        assert_eq!(
            receiver_shown("alertmanager:http://127.0.0.1:9093/"),
            "alertmanager:http://127.0.0.1:9093"
        );
    }
}
