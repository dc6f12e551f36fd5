//! Alerting on measures: rules are evaluated on the store the API reads, each by one instance
//! at a time (a lease in the database); an evaluation commits the alerts' new states, their
//! history and the notifications to send in one transaction; notifications go out from that
//! outbox to Alertmanager and webhooks, with retries, so a receiver that is down loses
//! nothing and never slows ingest or queries.

pub mod delivery;
pub mod evaluator;
pub mod rules;

use std::collections::BTreeMap;

use mymonit_model::{
    alert::{Alert, AlertState, Condition, RuleSpec, Transition, format_duration, render, step},
    time::format_rfc3339,
};
use mymonit_store::alerts::{Evaluated, NewNotification, RuleWithAlerts, StoredAlert};
use mymonit_tsdb::stats::{Figure, Statistic};
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    query::{GroupBy, aggregate},
    state::AppState,
};

/// How often a firing alert is sent to Alertmanager again (it resolves alerts it has not
/// heard of for a while), in milliseconds.
pub const RESEND_MS: i64 = 60_000;

/// The statistic name that means change per second over the window.
pub const RATE: &str = "rate";

/// What one evaluation of one alert found.
struct Found {
    holds: bool,
    value: Option<f64>,
}

/// Evaluates a rule at `now_ms` and says what to commit.
pub async fn evaluate(
    state: &AppState,
    claimed: &RuleWithAlerts,
    experiment: &str,
    owner: &str,
    now_ms: i64,
) -> Evaluated {
    let rule = &claimed.rule;
    let mut evaluated = Evaluated {
        rule_id: rule.rule_id,
        owner: owner.to_owned(),
        rule_updated_at_ms: rule.updated_at_ms,
        now_ms,
        next_eval_ms: now_ms + mymonit_model::alert::DEFAULT_INTERVAL_MS,
        error: None,
        alerts: Vec::new(),
        forget: Vec::new(),
        events: Vec::new(),
        notifications: Vec::new(),
    };
    let spec: RuleSpec = match serde_json::from_str(&rule.spec) {
        Ok(spec) => spec,
        Err(err) => {
            evaluated.error = Some(format!("the stored rule cannot be read: {err}"));
            return evaluated;
        }
    };
    evaluated.next_eval_ms = now_ms + spec.interval_ms;
    let found = match find(state, rule.experiment_id, &spec, now_ms).await {
        Ok(found) => found,
        Err(err) => {
            evaluated.error = Some(err);
            return evaluated;
        }
    };
    let before: BTreeMap<&str, &StoredAlert> = claimed
        .alerts
        .iter()
        .map(|alert| (alert.group_key.as_str(), alert))
        .collect();
    let mut keys: Vec<String> = found.keys().cloned().collect();
    for key in before.keys() {
        if !found.contains_key(*key) {
            keys.push((*key).to_owned());
        }
    }
    let threshold = match &spec.condition {
        Condition::Threshold { threshold, .. } => Some(*threshold),
        Condition::Absent { .. } => None,
    };
    for key in keys {
        let stored = before.get(key.as_str());
        let previous = stored.map(|s| to_alert(s)).unwrap_or_else(Alert::inactive);
        let (holds, value) = match found.get(&key) {
            Some(found) => (found.holds, found.value),
            // A tag value with no series left: nothing holds any more.
            None => (false, None),
        };
        if !found.contains_key(&key) && previous.state == AlertState::Inactive {
            evaluated.forget.push(key);
            continue;
        }
        let (after, transition) = step(&previous, holds, value, now_ms, spec.for_ms);
        let mut last_sent_ms = stored.and_then(|s| s.last_sent_ms);
        let labels = alert_labels(&spec, experiment, rule.rule_id, &key);
        let context = Context {
            state,
            spec: &spec,
            experiment,
            experiment_id: rule.experiment_id,
            rule_id: rule.rule_id,
            group: &key,
            labels: &labels,
            threshold,
            now_ms,
        };
        if let Some(transition) = transition {
            evaluated
                .events
                .push((key.clone(), transition.as_str().to_owned(), value));
        }
        match transition {
            Some(Transition::Firing) => {
                evaluated
                    .notifications
                    .extend(context.notifications(&after, Transition::Firing));
                last_sent_ms = Some(now_ms);
            }
            Some(Transition::Resolved) => {
                let mut ended = previous.clone();
                ended.last_value = value;
                evaluated
                    .notifications
                    .extend(context.notifications(&ended, Transition::Resolved));
                last_sent_ms = None;
            }
            _ if after.state == AlertState::Firing
                && last_sent_ms.is_none_or(|sent| now_ms - sent >= RESEND_MS) =>
            {
                // Alertmanager forgets an alert it has not heard of since its endsAt.
                evaluated.notifications.extend(context.resend(&after));
                last_sent_ms = Some(now_ms);
            }
            _ => {}
        }
        evaluated.alerts.push(StoredAlert {
            group_key: key,
            state: after.state.as_str().to_owned(),
            active_since_ms: after.active_since_ms,
            firing_since_ms: after.firing_since_ms,
            last_value: after.last_value,
            last_sent_ms,
        });
    }
    evaluated
}

/// The resolutions of a rule's firing alerts, for when the rule is changed or deleted (its
/// alerts start again, or end, without an evaluation saying so).
pub fn resolutions(
    state: &AppState,
    claimed: &RuleWithAlerts,
    experiment: &str,
    now_ms: i64,
) -> Vec<NewNotification> {
    let Ok(spec) = serde_json::from_str::<RuleSpec>(&claimed.rule.spec) else {
        return Vec::new();
    };
    let threshold = match &spec.condition {
        Condition::Threshold { threshold, .. } => Some(*threshold),
        Condition::Absent { .. } => None,
    };
    let mut out = Vec::new();
    for stored in &claimed.alerts {
        let alert = to_alert(stored);
        if alert.state != AlertState::Firing {
            continue;
        }
        let labels = alert_labels(&spec, experiment, claimed.rule.rule_id, &stored.group_key);
        let context = Context {
            state,
            spec: &spec,
            experiment,
            experiment_id: claimed.rule.experiment_id,
            rule_id: claimed.rule.rule_id,
            group: &stored.group_key,
            labels: &labels,
            threshold,
            now_ms,
        };
        out.extend(context.notifications(&alert, Transition::Resolved));
    }
    out
}

fn to_alert(stored: &StoredAlert) -> Alert {
    Alert {
        state: AlertState::parse(&stored.state).unwrap_or(AlertState::Inactive),
        active_since_ms: stored.active_since_ms,
        firing_since_ms: stored.firing_since_ms,
        last_value: stored.last_value,
    }
}

/// The alert's labels: the rule's, then `alertname`, `experiment`, `measure`, the rule's id
/// and the group's tag (these win over the rule's own labels of the same names).
fn alert_labels(
    spec: &RuleSpec,
    experiment: &str,
    rule_id: i64,
    group: &str,
) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.insert("alertname".into(), spec.name.clone());
    labels.insert("experiment".into(), experiment.to_owned());
    labels.insert("measure".into(), spec.measure.clone());
    labels.insert("mymonit_rule_id".into(), rule_id.to_string());
    if let Some(key) = &spec.group_by
        && !group.is_empty()
    {
        labels.insert(label_name(key), group.to_owned());
    }
    labels
}

/// A tag key as a label name Alertmanager takes (`[a-zA-Z_][a-zA-Z0-9_]*`; other characters
/// become `_`), prefixed `tag_` where it would replace a label MyMonit sets.
fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || name.starts_with("__") {
        name.insert_str(0, "tag_");
    }
    if matches!(
        name.as_str(),
        "alertname" | "experiment" | "measure" | "mymonit_rule_id"
    ) {
        name.insert_str(0, "tag_");
    }
    name
}

/// The condition of every alert of a rule at `now_ms`, by group key (`""` without group_by).
async fn find(
    state: &AppState,
    experiment_id: i64,
    spec: &RuleSpec,
    now_ms: i64,
) -> Result<BTreeMap<String, Found>, String> {
    let store_error = |err: mymonit_store::StoreError| format!("reading the measures: {err}");
    let measure_type = state
        .meta
        .measure_type_by_name(&spec.measure)
        .await
        .map_err(store_error)?
        .ok_or_else(|| format!("the measure type {:?} does not exist", spec.measure))?;
    let mut series = state
        .measures
        .series(experiment_id, Some(measure_type.measure_type_id))
        .await
        .map_err(store_error)?;
    series.retain(|one| {
        spec.tags
            .iter()
            .all(|(key, value)| one.tags.get(key) == Some(value))
    });
    let grace_ms = (state.settings.alerting.grace_secs as i64) * 1_000;
    let now_ns = now_ms.saturating_mul(1_000_000);
    let end = now_ns - grace_ms * 1_000_000;
    let (statistics, start, absent) = match &spec.condition {
        Condition::Threshold {
            statistic,
            window_ms,
            ..
        } => {
            let statistics = if statistic == RATE {
                vec![Statistic::First, Statistic::Last]
            } else {
                vec![
                    statistic
                        .parse::<Statistic>()
                        .map_err(|err| err.to_string())?,
                ]
            };
            (statistics, end - window_ms * 1_000_000, false)
        }
        Condition::Absent { for_ms } => (vec![Statistic::Count], end - for_ms * 1_000_000, true),
    };
    let group_by = spec.group_by.as_deref();
    let groups = aggregate(
        state,
        &series,
        &statistics,
        &[start, end],
        (start, end),
        group_by.map(GroupBy::Tag),
    )
    .await
    .map_err(|err: ApiError| format!("computing the statistic: {err}"))?;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    // Every group that has a series is evaluated, with or without points in the window.
    for one in &series {
        let key = group_by
            .and_then(|key| one.tags.get(key).cloned())
            .unwrap_or_default();
        found.entry(key).or_insert(Found {
            holds: absent,
            value: None,
        });
    }
    if series.is_empty() && group_by.is_none() && absent {
        // A sensor that never reported is absent too.
        found.insert(
            String::new(),
            Found {
                holds: true,
                value: None,
            },
        );
    }
    for (group, buckets) in groups {
        let key = group.unwrap_or_default();
        let figures = buckets.into_iter().next().and_then(|(_, figures)| figures);
        let number = |figure: Option<&Figure>| match figure {
            Some(Figure::Number(x)) => Some(*x),
            Some(Figure::Integer(n)) => Some(*n as f64),
            _ => None,
        };
        let entry = match &spec.condition {
            Condition::Absent { .. } => {
                let count = figures
                    .as_ref()
                    .and_then(|f| number(f.first()))
                    .unwrap_or(0.0);
                Found {
                    holds: count == 0.0,
                    value: Some(count),
                }
            }
            Condition::Threshold {
                statistic,
                window_ms,
                op,
                threshold,
            } => {
                let value = match (&figures, statistic.as_str()) {
                    (Some(f), RATE) => match (number(f.first()), number(f.get(1))) {
                        (Some(first), Some(last)) => {
                            Some((last - first) / (*window_ms as f64 / 1_000.0))
                        }
                        _ => None,
                    },
                    (Some(f), _) => number(f.first()),
                    (None, _) => None,
                };
                Found {
                    holds: value.is_some_and(|v| op.holds(v, *threshold)),
                    value,
                }
            }
        };
        found.insert(key, entry);
    }
    Ok(found)
}

/// What notifications of one alert need.
struct Context<'a> {
    state: &'a AppState,
    spec: &'a RuleSpec,
    experiment: &'a str,
    experiment_id: i64,
    rule_id: i64,
    group: &'a str,
    labels: &'a BTreeMap<String, String>,
    threshold: Option<f64>,
    now_ms: i64,
}

impl Context<'_> {
    fn annotations(&self, value: Option<f64>) -> BTreeMap<String, String> {
        let summary = match &self.spec.condition {
            Condition::Threshold {
                statistic,
                window_ms,
                op,
                threshold,
            } => format!(
                "{} of {} over {} {} {}",
                statistic,
                self.spec.measure,
                format_duration(*window_ms),
                op.as_str(),
                threshold
            ),
            Condition::Absent { for_ms } => format!(
                "no {} point for {}",
                self.spec.measure,
                format_duration(*for_ms)
            ),
        };
        let mut annotations = BTreeMap::from([("summary".to_owned(), summary)]);
        if !self.spec.description.is_empty() {
            annotations.insert(
                "description".into(),
                render(&self.spec.description, value, self.threshold, self.labels),
            );
        }
        if let Some(value) = value {
            annotations.insert("value".into(), value.to_string());
        }
        annotations
    }

    /// The experiment's dashboard over the hour before the alert began, up to now.
    fn generator_url(&self, since_ms: i64) -> String {
        let base = self.state.settings.external_url();
        let from = format_rfc3339((since_ms - 3_600_000).saturating_mul(1_000_000));
        let to = format_rfc3339(self.now_ms.saturating_mul(1_000_000));
        format!(
            "{}/experiments/{}?from={}&to={}",
            base.trim_end_matches('/'),
            self.experiment_id,
            form_urlencoded::byte_serialize(from.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
        )
    }

    /// Alertmanager's form of the alert: `endsAt` ahead while it fires (it is re-sent before
    /// then), the resolution time once resolved.
    fn alertmanager_body(&self, alert: &Alert, resolved: bool) -> String {
        let starts = alert.firing_since_ms.unwrap_or(self.now_ms);
        let ends = if resolved {
            self.now_ms
        } else {
            self.now_ms + 4 * self.spec.interval_ms.max(RESEND_MS)
        };
        json!([{
            "labels": self.labels,
            "annotations": self.annotations(alert.last_value),
            "startsAt": format_rfc3339(starts.saturating_mul(1_000_000)),
            "endsAt": format_rfc3339(ends.saturating_mul(1_000_000)),
            "generatorURL": self.generator_url(starts),
        }])
        .to_string()
    }

    fn webhook_body(&self, alert: &Alert, transition: Transition) -> String {
        let starts = alert.firing_since_ms.unwrap_or(self.now_ms);
        let mut body = json!({
            "version": "1",
            "status": if transition == Transition::Resolved { "resolved" } else { "firing" },
            "rule_id": self.rule_id,
            "rule": self.spec.name,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "measure": self.spec.measure,
            "group": if self.group.is_empty() { Value::Null } else { json!(self.group) },
            "value": alert.last_value,
            "threshold": self.threshold,
            "labels": self.labels,
            "annotations": self.annotations(alert.last_value),
            "startsAt": format_rfc3339(starts.saturating_mul(1_000_000)),
            "generatorURL": self.generator_url(starts),
        });
        if transition == Transition::Resolved {
            body["endsAt"] = json!(format_rfc3339(self.now_ms.saturating_mul(1_000_000)));
        }
        body.to_string()
    }

    /// A firing or resolution, to every Alertmanager and every webhook.
    fn notifications(&self, alert: &Alert, transition: Transition) -> Vec<NewNotification> {
        let resolved = transition == Transition::Resolved;
        let settings = &self.state.settings.alerting;
        let mut out: Vec<NewNotification> = settings
            .alertmanager_urls
            .iter()
            .map(|url| NewNotification {
                receiver: format!("{}{url}", delivery::ALERTMANAGER),
                body: self.alertmanager_body(alert, resolved),
            })
            .collect();
        out.extend(settings.webhooks.iter().map(|hook| NewNotification {
            receiver: format!("{}{}", delivery::WEBHOOK, hook.url),
            body: self.webhook_body(alert, transition),
        }));
        out
    }

    /// A firing alert again, to every Alertmanager.
    fn resend(&self, alert: &Alert) -> Vec<NewNotification> {
        self.state
            .settings
            .alerting
            .alertmanager_urls
            .iter()
            .map(|url| NewNotification {
                receiver: format!("{}{url}", delivery::ALERTMANAGER),
                body: self.alertmanager_body(alert, false),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_become_label_names_alertmanager_takes() {
        assert_eq!(label_name("host"), "host");
        assert_eq!(label_name("host.name"), "host_name");
        assert_eq!(label_name("my-tag"), "my_tag");
        assert_eq!(label_name("9lives"), "tag_9lives");
        assert_eq!(label_name("alertname"), "tag_alertname");
        assert_eq!(label_name("__x"), "tag___x");
    }
}
