//! Alert rules as the API takes and shows them: durations written as `5m`, `group_by` as
//! `tag:KEY`, a threshold rule or an absence rule; checked into the model's [`RuleSpec`].

use std::collections::BTreeMap;

use mymonit_model::alert::{
    Comparison, Condition, DEFAULT_INTERVAL_MS, MAX_DURATION_MS, MIN_INTERVAL_MS, RuleSpec,
    format_duration, parse_duration,
};
use mymonit_tsdb::stats::Statistic;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RATE;
use crate::error::ApiError;

/// A rule as written: a threshold rule (`statistic`, `window`, `op`, `threshold`) or an
/// absence rule (`absent_for`). On `PATCH`, absent fields keep their value.
#[derive(Debug, Default, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// The alert's name (`alertname`), 1 to 200 characters.
    #[schema(example = "vibration high")]
    pub name: Option<String>,
    /// The measure type watched.
    #[schema(example = "hertz")]
    pub measure: Option<String>,
    /// Only series with these tags.
    pub tags: Option<BTreeMap<String, String>>,
    /// `mean`, `min`, `max`, `count`, `sum`, `stddev`, `first`, `last`, `pNN`, or `rate`
    /// (change per second over the window: (last − first) / window).
    #[schema(example = "mean")]
    pub statistic: Option<String>,
    /// The trailing window the statistic covers (`5m`).
    #[schema(example = "5m")]
    pub window: Option<String>,
    /// `>`, `>=`, `<` or `<=`.
    #[schema(value_type = Option<String>, example = ">")]
    pub op: Option<Comparison>,
    /// The bound.
    #[schema(example = 120)]
    pub threshold: Option<f64>,
    /// An absence rule: it fires when no point arrived for this long (`10m`).
    pub absent_for: Option<String>,
    /// How long the condition must hold before the alert fires (default `0s`).
    #[serde(rename = "for")]
    #[schema(example = "1m")]
    pub for_: Option<String>,
    /// Time between evaluations, at least `1s` (default `30s`).
    #[schema(example = "30s")]
    pub interval: Option<String>,
    /// `tag:KEY`: one alert per value of the tag.
    #[schema(example = "tag:host")]
    pub group_by: Option<String>,
    /// Labels of the alert (`severity: page`).
    pub labels: Option<BTreeMap<String, String>>,
    /// A description; `{{ $value }}`, `{{ $threshold }}`, `{{ $labels.KEY }}` are filled in.
    pub description: Option<String>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::Invalid(reason.into(), Some(field))
}

fn duration(field: &'static str, text: &str, min_ms: i64) -> Result<i64, ApiError> {
    let ms = parse_duration(text).map_err(|err| invalid(field, err.to_string()))?;
    if ms < min_ms || ms > MAX_DURATION_MS {
        return Err(invalid(
            field,
            format!(
                "{text}: from {} to {}",
                format_duration(min_ms),
                format_duration(MAX_DURATION_MS)
            ),
        ));
    }
    Ok(ms)
}

/// Label names as Prometheus and Alertmanager take them; the ones MyMonit sets are refused.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > 32 {
        return Err(invalid("labels", "at most 32"));
    }
    for (key, value) in labels {
        let mut chars = key.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !key.starts_with("__");
        if !valid || key.len() > 100 {
            return Err(invalid(
                "labels",
                format!("{key:?} is not a label name (letters, digits, _; not starting with __)"),
            ));
        }
        if matches!(
            key.as_str(),
            "alertname" | "experiment" | "measure" | "mymonit_rule_id"
        ) {
            return Err(invalid("labels", format!("{key:?} is set by MyMonit")));
        }
        if value.chars().count() > 1000 {
            return Err(invalid("labels", format!("{key}: at most 1000 characters")));
        }
    }
    Ok(())
}

impl RuleRequest {
    /// This request over `base` (a `PATCH`), or alone (a `POST`), checked.
    pub fn into_spec(self, base: Option<&RuleRequest>) -> Result<RuleSpec, ApiError> {
        let merged = match base {
            Some(base) => {
                // An absence rule becomes a threshold rule (and back) when the change says so.
                let to_threshold = self.statistic.is_some() || self.threshold.is_some();
                let to_absence = self.absent_for.is_some();
                RuleRequest {
                    name: self.name.or_else(|| base.name.clone()),
                    measure: self.measure.or_else(|| base.measure.clone()),
                    tags: self.tags.or_else(|| base.tags.clone()),
                    statistic: self
                        .statistic
                        .or_else(|| (!to_absence).then(|| base.statistic.clone()).flatten()),
                    window: self
                        .window
                        .or_else(|| (!to_absence).then(|| base.window.clone()).flatten()),
                    op: self
                        .op
                        .or_else(|| (!to_absence).then_some(base.op).flatten()),
                    threshold: self
                        .threshold
                        .or_else(|| (!to_absence).then_some(base.threshold).flatten()),
                    absent_for: self
                        .absent_for
                        .or_else(|| (!to_threshold).then(|| base.absent_for.clone()).flatten()),
                    for_: self.for_.or_else(|| base.for_.clone()),
                    interval: self.interval.or_else(|| base.interval.clone()),
                    group_by: match self.group_by {
                        Some(text) if text.is_empty() => None,
                        Some(text) => Some(text),
                        None => base.group_by.clone(),
                    },
                    labels: self.labels.or_else(|| base.labels.clone()),
                    description: self.description.or_else(|| base.description.clone()),
                }
            }
            None => self,
        };
        merged.check()
    }

    fn check(self) -> Result<RuleSpec, ApiError> {
        let name = self
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("name", "required"))?;
        if name.chars().count() > 200 {
            return Err(invalid("name", "at most 200 characters"));
        }
        let measure = self
            .measure
            .filter(|m| !m.is_empty())
            .ok_or_else(|| invalid("measure", "required: the measure type watched"))?;
        let threshold_fields = self.statistic.is_some()
            || self.window.is_some()
            || self.op.is_some()
            || self.threshold.is_some();
        let condition = match (&self.absent_for, threshold_fields) {
            (Some(_), true) => {
                return Err(invalid(
                    "absent_for",
                    "a rule is either an absence (absent_for) or a threshold (statistic, window, op, threshold), not both",
                ));
            }
            (Some(text), false) => Condition::Absent {
                for_ms: duration("absent_for", text, 1_000)?,
            },
            (None, _) => {
                let statistic = self.statistic.ok_or_else(|| {
                    invalid("statistic", "required (or absent_for, for an absence rule)")
                })?;
                if statistic != RATE {
                    let parsed: Statistic = statistic.parse().map_err(
                        |err: mymonit_tsdb::stats::UnknownStatistic| {
                            invalid("statistic", format!("{err}, or rate"))
                        },
                    )?;
                    if matches!(parsed, Statistic::CountDistinct(_)) {
                        return Err(invalid(
                            "statistic",
                            "count_distinct is not a rule's statistic",
                        ));
                    }
                }
                let window = self
                    .window
                    .ok_or_else(|| invalid("window", "required: the trailing window (5m)"))?;
                let op = self
                    .op
                    .ok_or_else(|| invalid("op", "required: >, >=, < or <="))?;
                let threshold = self
                    .threshold
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| invalid("threshold", "required: a finite number"))?;
                Condition::Threshold {
                    statistic,
                    window_ms: duration("window", &window, 1_000)?,
                    op,
                    threshold,
                }
            }
        };
        let for_ms = match &self.for_ {
            Some(text) => duration("for", text, 0)?,
            None => 0,
        };
        let interval_ms = match &self.interval {
            Some(text) => duration("interval", text, MIN_INTERVAL_MS)?,
            None => DEFAULT_INTERVAL_MS,
        };
        let group_by = match self.group_by.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.strip_prefix("tag:")
                    .filter(|key| !key.is_empty())
                    .ok_or_else(|| invalid("group_by", format!("{text:?} is not tag:KEY")))?
                    .to_owned(),
            ),
        };
        let labels = self.labels.unwrap_or_default();
        check_labels(&labels)?;
        let description = self.description.unwrap_or_default();
        if description.chars().count() > 2_000 {
            return Err(invalid("description", "at most 2000 characters"));
        }
        Ok(RuleSpec {
            name,
            measure,
            tags: self.tags.unwrap_or_default(),
            condition,
            for_ms,
            interval_ms,
            group_by,
            labels,
            description,
        })
    }

    /// A stored rule written back as the API takes it.
    pub fn of(spec: &RuleSpec) -> Self {
        let (statistic, window, op, threshold, absent_for) = match &spec.condition {
            Condition::Threshold {
                statistic,
                window_ms,
                op,
                threshold,
            } => (
                Some(statistic.clone()),
                Some(format_duration(*window_ms)),
                Some(*op),
                Some(*threshold),
                None,
            ),
            Condition::Absent { for_ms } => {
                (None, None, None, None, Some(format_duration(*for_ms)))
            }
        };
        RuleRequest {
            name: Some(spec.name.clone()),
            measure: Some(spec.measure.clone()),
            tags: Some(spec.tags.clone()),
            statistic,
            window,
            op,
            threshold,
            absent_for,
            for_: Some(format_duration(spec.for_ms)),
            interval: Some(format_duration(spec.interval_ms)),
            group_by: spec.group_by.as_ref().map(|key| format!("tag:{key}")),
            labels: Some(spec.labels.clone()),
            description: Some(spec.description.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> RuleRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_issues_examples_read_and_write_back() {
        let threshold = request(
            serde_json::json!({"name": "vibration high", "measure": "hertz",
            "tags": {"host": "a"}, "statistic": "mean", "window": "5m", "op": ">", "threshold": 120,
            "for": "1m", "interval": "30s", "group_by": "tag:host", "labels": {"severity": "page"},
            "description": "{{ $labels.host }} at {{ $value }}"}),
        );
        let spec = threshold.clone().into_spec(None).unwrap();
        assert_eq!(spec.for_ms, 60_000);
        assert_eq!(spec.group_by.as_deref(), Some("host"));
        assert!(matches!(
            spec.condition,
            Condition::Threshold {
                window_ms: 300_000,
                op: Comparison::Above,
                ..
            }
        ));
        let again = RuleRequest::of(&spec).into_spec(None).unwrap();
        assert_eq!(again, spec);
        let absent =
            request(serde_json::json!({"name": "silent", "measure": "hertz", "absent_for": "10m"}))
                .into_spec(None)
                .unwrap();
        assert_eq!(absent.condition, Condition::Absent { for_ms: 600_000 });
        assert_eq!(absent.interval_ms, DEFAULT_INTERVAL_MS);
    }

    #[test]
    fn bad_rules_name_their_field() {
        let field = |json: serde_json::Value| match request(json).into_spec(None) {
            Err(ApiError::Invalid(_, field)) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(serde_json::json!({"measure": "hertz", "absent_for": "1m"})),
            Some("name")
        );
        assert_eq!(
            field(
                serde_json::json!({"name": "x", "measure": "hertz", "statistic": "median", "window": "1m", "op": ">", "threshold": 1})
            ),
            Some("statistic")
        );
        assert_eq!(
            field(
                serde_json::json!({"name": "x", "measure": "hertz", "statistic": "mean", "window": "5", "op": ">", "threshold": 1})
            ),
            Some("window")
        );
        assert_eq!(
            field(
                serde_json::json!({"name": "x", "measure": "hertz", "absent_for": "1m", "threshold": 1})
            ),
            Some("absent_for")
        );
        assert_eq!(
            field(
                serde_json::json!({"name": "x", "measure": "hertz", "absent_for": "1m", "interval": "100ms"})
            ),
            Some("interval")
        );
        assert_eq!(
            field(
                serde_json::json!({"name": "x", "measure": "hertz", "absent_for": "1m", "labels": {"alertname": "y"}})
            ),
            Some("labels")
        );
        assert_eq!(
            field(
                serde_json::json!({"name": "x", "measure": "hertz", "absent_for": "1m", "group_by": "host"})
            ),
            Some("group_by")
        );
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let base = RuleRequest::of(
            &request(
                serde_json::json!({"name": "x", "measure": "hertz", "statistic": "max",
                "window": "1m", "op": ">", "threshold": 5, "for": "30s"}),
            )
            .into_spec(None)
            .unwrap(),
        );
        let patched = request(serde_json::json!({"threshold": 7}))
            .into_spec(Some(&base))
            .unwrap();
        assert!(matches!(
            patched.condition,
            Condition::Threshold { threshold: 7.0, .. }
        ));
        assert_eq!(patched.for_ms, 30_000);
        let absence = request(serde_json::json!({"absent_for": "2m"}))
            .into_spec(Some(&base))
            .unwrap();
        assert_eq!(absence.condition, Condition::Absent { for_ms: 120_000 });
    }
}
