//! Alert rules on measures and the life of their alerts: what a rule says, how long things
//! must hold, and the state machine each rule (or each tag value of a per-tag rule) walks:
//! inactive → pending → firing → resolved (inactive again). Pure logic: the server reads the
//! statistics and delivers the notifications.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a statistic is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Comparison {
    /// `>`
    #[serde(rename = ">")]
    Above,
    /// `>=`
    #[serde(rename = ">=")]
    AtLeast,
    /// `<`
    #[serde(rename = "<")]
    Below,
    /// `<=`
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    /// Whether `value` is on the alerting side of `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }
}

/// What makes a rule's alert hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// A statistic over a trailing window compared with a threshold.
    Threshold {
        /// As `/stats` names it (`mean`, `p99`, `count`…), or `rate` (change per second).
        statistic: String,
        /// The trailing window, milliseconds.
        window_ms: i64,
        /// The comparison.
        op: Comparison,
        /// The bound.
        threshold: f64,
    },
    /// No point for this long.
    Absent {
        /// Milliseconds without a point.
        for_ms: i64,
    },
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// Its name (`vibration high`), the alert's `alertname`.
    pub name: String,
    /// The measure type it watches.
    pub measure: String,
    /// Only series with these tags.
    pub tags: BTreeMap<String, String>,
    /// The condition.
    pub condition: Condition,
    /// How long the condition must hold before the alert fires, milliseconds.
    pub for_ms: i64,
    /// Milliseconds between evaluations.
    pub interval_ms: i64,
    /// One alert per value of this tag (`group_by: tag:host`), or one for the rule.
    pub group_by: Option<String>,
    /// Labels added to the alert (`severity: page`).
    pub labels: BTreeMap<String, String>,
    /// A description; `{{ $value }}`, `{{ $threshold }}` and `{{ $labels.KEY }}` are filled in.
    pub description: String,
}

/// Shortest evaluation interval, milliseconds.
pub const MIN_INTERVAL_MS: i64 = 1_000;
/// The interval when none is given.
pub const DEFAULT_INTERVAL_MS: i64 = 30_000;
/// Longest window, `for` or absence, milliseconds (31 days).
pub const MAX_DURATION_MS: i64 = 31 * 86_400_000;

/// A duration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration such as 30s, 5m, 1h30m or 2d")]
pub struct BadDuration(pub String);

/// `500ms`, `30s`, `5m`, `1h30m`, `2d`, `1w` as milliseconds (Prometheus' form).
pub fn parse_duration(text: &str) -> Result<i64, BadDuration> {
    let bad = || BadDuration(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// A duration as Prometheus writes it (`1h30m`, `45s`, `250ms`).
pub fn format_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// It holds, for less than the rule's `for`.
    Pending,
    /// It has held for `for` or longer: receivers are told.
    Firing,
}

impl AlertState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }

    /// The state a stored name names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "inactive" => Some(AlertState::Inactive),
            "pending" => Some(AlertState::Pending),
            "firing" => Some(AlertState::Firing),
            _ => None,
        }
    }
}

/// One alert's state: the rule's, or one tag value's.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Where it is.
    pub state: AlertState,
    /// Since when the condition holds (pending or firing), epoch milliseconds.
    pub active_since_ms: Option<i64>,
    /// Since when it fires, epoch milliseconds.
    pub firing_since_ms: Option<i64>,
    /// The value of the last evaluation (none: no data, or an absence).
    pub last_value: Option<f64>,
}

impl Alert {
    /// A new, inactive alert.
    pub fn inactive() -> Self {
        Self {
            state: AlertState::Inactive,
            active_since_ms: None,
            firing_since_ms: None,
            last_value: None,
        }
    }
}

/// A change worth recording (the history) and, for firing and resolved, telling receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// The condition began to hold.
    Pending,
    /// It held for `for`: the alert fires.
    Firing,
    /// A firing alert's condition no longer holds.
    Resolved,
    /// A pending alert's condition stopped holding before `for` (never fired).
    Cleared,
}

impl Transition {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Pending => "pending",
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
            Transition::Cleared => "cleared",
        }
    }
}

/// One evaluation's step: whether the condition `holds` now (with its `value`), given how the
/// alert was. A rule with `for` 0 fires at the first evaluation that holds.
pub fn step(
    before: &Alert,
    holds: bool,
    value: Option<f64>,
    now_ms: i64,
    for_ms: i64,
) -> (Alert, Option<Transition>) {
    let mut after = before.clone();
    after.last_value = value;
    let transition = match (before.state, holds) {
        (AlertState::Inactive, false) => None,
        (AlertState::Inactive, true) => {
            after.active_since_ms = Some(now_ms);
            if for_ms <= 0 {
                after.state = AlertState::Firing;
                after.firing_since_ms = Some(now_ms);
                Some(Transition::Firing)
            } else {
                after.state = AlertState::Pending;
                Some(Transition::Pending)
            }
        }
        (AlertState::Pending, true) => {
            let since = before.active_since_ms.unwrap_or(now_ms);
            if now_ms - since >= for_ms {
                after.state = AlertState::Firing;
                after.firing_since_ms = Some(now_ms);
                Some(Transition::Firing)
            } else {
                None
            }
        }
        (AlertState::Pending, false) => {
            after = Alert {
                last_value: value,
                ..Alert::inactive()
            };
            Some(Transition::Cleared)
        }
        (AlertState::Firing, true) => None,
        (AlertState::Firing, false) => {
            after = Alert {
                last_value: value,
                ..Alert::inactive()
            };
            Some(Transition::Resolved)
        }
    };
    (after, transition)
}

/// Fills a description's `{{ $value }}`, `{{ $threshold }}` and `{{ $labels.KEY }}` (spaces
/// inside the braces optional); anything else is left as written.
pub fn render(
    template: &str,
    value: Option<f64>,
    threshold: Option<f64>,
    labels: &BTreeMap<String, String>,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        let number = |x: Option<f64>| x.map_or_else(|| "none".to_owned(), |x| x.to_string());
        let filled = match name {
            "$value" => Some(number(value)),
            "$threshold" => Some(number(threshold)),
            _ => name
                .strip_prefix("$labels.")
                .map(|key| labels.get(key).cloned().unwrap_or_default()),
        };
        match filled {
            Some(text) => out.push_str(&text),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_prometheus_writes_them() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        for ms in [1, 999, 1_000, 61_000, 5_400_000, 90_061_001] {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
    }

    #[test]
    fn an_alert_pends_for_its_for_then_fires_and_resolves() {
        let for_ms = 60_000;
        let (a, t) = step(&Alert::inactive(), true, Some(130.0), 0, for_ms);
        assert_eq!(
            (a.state, t),
            (AlertState::Pending, Some(Transition::Pending))
        );
        let (a, t) = step(&a, true, Some(131.0), 30_000, for_ms);
        assert_eq!((a.state, t), (AlertState::Pending, None));
        let (a, t) = step(&a, true, Some(132.0), 60_000, for_ms);
        assert_eq!((a.state, t), (AlertState::Firing, Some(Transition::Firing)));
        assert_eq!(
            (a.active_since_ms, a.firing_since_ms),
            (Some(0), Some(60_000))
        );
        let (a, t) = step(&a, true, Some(133.0), 90_000, for_ms);
        assert_eq!((a.state, t), (AlertState::Firing, None));
        let (a, t) = step(&a, false, Some(100.0), 120_000, for_ms);
        assert_eq!(
            (a.state, t),
            (AlertState::Inactive, Some(Transition::Resolved))
        );
        assert_eq!(a.last_value, Some(100.0));
        assert_eq!(a.firing_since_ms, None);
        // A blip shorter than `for` never fires.
        let (a, _) = step(&a, true, Some(140.0), 150_000, for_ms);
        let (a, t) = step(&a, false, Some(90.0), 180_000, for_ms);
        assert_eq!(
            (a.state, t),
            (AlertState::Inactive, Some(Transition::Cleared))
        );
        // Without `for`, the first evaluation that holds fires.
        let (a, t) = step(&Alert::inactive(), true, None, 5, 0);
        assert_eq!((a.state, t), (AlertState::Firing, Some(Transition::Firing)));
    }

    #[test]
    fn comparisons_and_templates() {
        assert!(Comparison::Above.holds(2.0, 1.0));
        assert!(!Comparison::Above.holds(1.0, 1.0));
        assert!(Comparison::AtLeast.holds(1.0, 1.0));
        assert!(Comparison::Below.holds(0.5, 1.0));
        assert!(Comparison::AtMost.holds(1.0, 1.0));
        let labels = BTreeMap::from([("host".to_owned(), "a".to_owned())]);
        assert_eq!(
            render(
                "{{ $labels.host }} at {{$value}} Hz (bound {{ $threshold }}) {{ $other }} {{",
                Some(131.5),
                Some(120.0),
                &labels
            ),
            "a at 131.5 Hz (bound 120) {{ $other }} {{"
        );
        assert_eq!(
            render("gone {{ $value }}", None, None, &labels),
            "gone none"
        );
    }
}
