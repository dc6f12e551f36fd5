//! MyMonit's own metrics, in a Prometheus registry served on `metrics_listen`: ingest
//! (accepted, rejected by reason, batch sizes, commit latency), AMQP (connected, deliveries,
//! redeliveries, dead letters), HTTP requests by route template and status, sign-ins, the
//! store (series, points, bytes, compaction), business gauges (users by role, experiments,
//! associations, measures per experiment) and the process (CPU, memory). Gauges that describe
//! the database are refreshed when scraped.

use std::{sync::atomic::AtomicU64, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Where measures came from.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Source {
    /// `POST /api/v1/ingest`.
    Http,
    /// The AMQP consumer.
    Amqp,
}

/// Why a record or message was refused.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Reason {
    /// It could not be decoded.
    Decode,
    /// It names an experiment that does not exist.
    UnknownExperiment,
    /// It names a measure type that does not exist.
    UnknownMeasureType,
    /// Its experiment is outside the ingest token's scope.
    Forbidden,
    /// It exceeds a limit (tags, series per experiment).
    Limit,
}

/// Label values in Prometheus style (`snake_case`).
macro_rules! label_values {
    ($type:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                use std::fmt::Write as _;
                encoder.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    };
}

label_values!(Source { Http => "http", Amqp => "amqp" });
label_values!(Reason {
    Decode => "decode",
    UnknownExperiment => "unknown_experiment",
    UnknownMeasureType => "unknown_measure_type",
    Forbidden => "forbidden",
    Limit => "limit",
});

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: Source,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    source: Source,
    reason: Reason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceFetchLabels {
    kind: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    receiver: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceStateLabels {
    source_id: String,
    kind: String,
    experiment: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExperimentLabels {
    experiment: String,
}

type FloatCounter = Counter<f64, AtomicU64>;

/// Every metric, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    accepted: Family<SourceLabels, Counter>,
    rejected: Family<RejectionLabels, Counter>,
    dead_lettered: Counter,
    deliveries: Counter,
    redeliveries: Counter,
    duplicates: Counter,
    consumer_connected: Gauge,
    batch_size: Family<SourceLabels, Histogram>,
    commit_seconds: Family<SourceLabels, Histogram>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    duty_events: Family<KindLabels, Counter>,
    source_fetches: Family<SourceFetchLabels, Counter>,
    source_points: Family<KindLabels, Counter>,
    source_refused: Family<KindLabels, Counter>,
    source_fetch_seconds: Family<KindLabels, Histogram>,
    alert_deliveries: Family<DeliveryLabels, Counter>,
    alert_evaluation_seconds: Histogram,
    compactions: Counter,
    compacted_points: Counter,
    compaction_seconds: Histogram,
    /// Refreshed when scraped.
    pub(crate) store: StoreGauges,
    process_cpu: FloatCounter,
    /// CPU seconds already counted, so each scrape adds what was used since.
    process_cpu_counted: std::sync::Mutex<f64>,
    process_memory: Gauge,
    log_lines_dropped: Counter,
    /// Dropped lines already counted.
    log_lines_counted: std::sync::Mutex<u64>,
}

/// Gauges describing the database, refreshed at each scrape.
#[derive(Debug, Default, Clone)]
pub(crate) struct StoreGauges {
    pub series: Gauge,
    pub points: Gauge,
    pub recent_points: Gauge,
    pub chunks: Gauge,
    pub bytes: Gauge,
    users: Family<RoleLabels, Gauge>,
    pub experiments: Gauge,
    pub associations: Gauge,
    experiment_measures: Family<ExperimentLabels, Gauge>,
    source_failures: Family<SourceStateLabels, Gauge>,
    source_last_success: Family<SourceStateLabels, Gauge>,
    source_backlog: Family<SourceStateLabels, Gauge>,
    pub alert_rules: Gauge,
    pub alerts_firing: Gauge,
}

/// One source's state, for the gauges.
pub(crate) struct SourceGauge {
    pub source_id: i64,
    pub kind: &'static str,
    pub experiment: String,
    pub failures: u32,
    pub last_success_seconds: Option<i64>,
    pub backlog_secs: i64,
}

impl StoreGauges {
    /// Sets the per-source gauges from scratch (enabled sources only).
    pub fn set_sources(&self, sources: &[SourceGauge]) {
        self.source_failures.clear();
        self.source_last_success.clear();
        self.source_backlog.clear();
        for one in sources {
            let labels = SourceStateLabels {
                source_id: one.source_id.to_string(),
                kind: one.kind.to_owned(),
                experiment: one.experiment.clone(),
            };
            self.source_failures
                .get_or_create(&labels)
                .set(i64::from(one.failures));
            if let Some(seconds) = one.last_success_seconds {
                self.source_last_success.get_or_create(&labels).set(seconds);
            }
            self.source_backlog
                .get_or_create(&labels)
                .set(one.backlog_secs);
        }
    }

    /// Sets the users-by-role gauge from scratch.
    pub fn set_users(&self, counts: &[(String, i64)]) {
        self.users.clear();
        for (role, count) in counts {
            self.users
                .get_or_create(&RoleLabels { role: role.clone() })
                .set(*count);
        }
    }

    /// Sets the measures-per-experiment gauge from scratch.
    pub fn set_experiment_measures(&self, counts: &[(String, i64)]) {
        self.experiment_measures.clear();
        for (experiment, count) in counts {
            self.experiment_measures
                .get_or_create(&ExperimentLabels {
                    experiment: experiment.clone(),
                })
                .set(*count);
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.5, 12)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        let process_cpu = FloatCounter::default();
        let process_memory = Gauge::default();
        // The process metrics keep their standard names, without the prefix.
        root.register(
            "process_cpu_seconds",
            "CPU time used by the process (user and system)",
            process_cpu.clone(),
        );
        root.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            process_memory.clone(),
        );
        let registry = root.sub_registry_with_prefix("mymonit");
        let metrics_without_registry = Self {
            registry: Registry::default(),
            accepted: Family::default(),
            rejected: Family::default(),
            dead_lettered: Counter::default(),
            deliveries: Counter::default(),
            redeliveries: Counter::default(),
            duplicates: Counter::default(),
            consumer_connected: Gauge::default(),
            batch_size: Family::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    1.0, 4.0, 10,
                ))
            }),
            commit_seconds: Family::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    0.0001, 3.0, 12,
                ))
            }),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            logins: Family::default(),
            duty_events: Family::default(),
            source_fetches: Family::default(),
            source_points: Family::default(),
            source_refused: Family::default(),
            source_fetch_seconds: Family::new_with_constructor(
                || Histogram::new(latency_buckets()),
            ),
            alert_deliveries: Family::default(),
            alert_evaluation_seconds: Histogram::new(latency_buckets()),
            compactions: Counter::default(),
            compacted_points: Counter::default(),
            compaction_seconds: Histogram::new(latency_buckets()),
            store: StoreGauges::default(),
            process_cpu,
            process_cpu_counted: std::sync::Mutex::new(0.0),
            process_memory,
            log_lines_dropped: Counter::default(),
            log_lines_counted: std::sync::Mutex::new(0),
        };
        let m = &metrics_without_registry;
        registry.register(
            "measures_accepted",
            "Measures stored durably",
            m.accepted.clone(),
        );
        registry.register(
            "measures_rejected",
            "Records refused, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "amqp_dead_lettered",
            "AMQP messages sent to the dead-letter queue",
            m.dead_lettered.clone(),
        );
        registry.register(
            "amqp_deliveries",
            "AMQP messages received",
            m.deliveries.clone(),
        );
        registry.register(
            "amqp_redeliveries",
            "AMQP messages received again after a broker or consumer failure",
            m.redeliveries.clone(),
        );
        registry.register(
            "separation_of_duties_events",
            "Admin actions that could let one person read measures or the trail they should not \
             (roles granted, passwords chosen by an admin, an admin associating an account whose \
             password they chose), by kind",
            m.duty_events.clone(),
        );
        registry.register(
            "amqp_duplicates_skipped",
            "AMQP messages not stored because they were stored before (a message id seen \
             before, or a redelivery of a body committed but not acknowledged)",
            m.duplicates.clone(),
        );
        registry.register(
            "amqp_consumer_connected",
            "1 while the AMQP consumer is connected and consuming",
            m.consumer_connected.clone(),
        );
        registry.register(
            "ingest_batch_measures",
            "Measures per committed batch",
            m.batch_size.clone(),
        );
        registry.register(
            "ingest_commit_seconds",
            "Time to commit a batch",
            m.commit_seconds.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests (until the response starts)",
            m.request_seconds.clone(),
        );
        registry.register("logins", "Sign-ins by outcome", m.logins.clone());
        registry.register(
            "source_fetches",
            "Fetches from pull sources by kind and outcome (success, failure, superseded: \
             another instance took the source over)",
            m.source_fetches.clone(),
        );
        registry.register(
            "source_points",
            "New points stored from pull sources, by kind",
            m.source_points.clone(),
        );
        registry.register(
            "source_records_refused",
            "Records read from pull sources and refused (unknown measure type, limits), by kind",
            m.source_refused.clone(),
        );
        registry.register(
            "alert_deliveries",
            "Attempts to send alert notifications, by receiver (alertmanager, webhook) and \
             outcome (delivered, retry, failed: given up)",
            m.alert_deliveries.clone(),
        );
        registry.register(
            "alert_evaluation_duration_seconds",
            "Time to evaluate one alert rule",
            m.alert_evaluation_seconds.clone(),
        );
        registry.register(
            "source_fetch_duration_seconds",
            "Time of a fetch from a pull source, storing included",
            m.source_fetch_seconds.clone(),
        );
        registry.register(
            "compactions",
            "Compaction passes that moved points",
            m.compactions.clone(),
        );
        registry.register(
            "compacted_points",
            "Points moved from recent blocks into chunks",
            m.compacted_points.clone(),
        );
        registry.register(
            "compaction_duration_seconds",
            "Time of a compaction pass",
            m.compaction_seconds.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines not shipped (--log-ship) because the sink was slow or absent",
            m.log_lines_dropped.clone(),
        );
        let store = &m.store;
        registry.register("store_series", "Series stored", store.series.clone());
        registry.register("store_points", "Points stored", store.points.clone());
        registry.register(
            "store_recent_points",
            "Points waiting for compaction",
            store.recent_points.clone(),
        );
        registry.register("store_chunks", "Compressed chunks", store.chunks.clone());
        registry.register(
            "store_bytes",
            "Size of the database file",
            store.bytes.clone(),
        );
        registry.register("users", "User accounts by role", store.users.clone());
        registry.register("experiments", "Experiments", store.experiments.clone());
        registry.register(
            "associations",
            "Scientist-experiment associations",
            store.associations.clone(),
        );
        registry.register(
            "experiment_measures",
            "Measures stored per experiment",
            store.experiment_measures.clone(),
        );
        registry.register("alert_rules", "Alert rules", store.alert_rules.clone());
        registry.register(
            "alerts_firing",
            "Alerts firing (a per-tag rule counts one per tag value)",
            store.alerts_firing.clone(),
        );
        registry.register(
            "source_consecutive_failures",
            "Failed fetches of an enabled pull source since its last success (0: healthy)",
            store.source_failures.clone(),
        );
        registry.register(
            "source_last_success_timestamp_seconds",
            "When an enabled pull source was last fetched successfully (unix seconds)",
            store.source_last_success.clone(),
        );
        registry.register(
            "source_backlog_seconds",
            "Seconds of a pull source's history still to load",
            store.source_backlog.clone(),
        );
        Self {
            registry: root,
            ..metrics_without_registry
        }
    }
}

impl Metrics {
    /// Counts a fetch from a pull source.
    pub fn source_fetched(&self, kind: &str, outcome: &str, points: u64, took: Duration) {
        self.source_fetches
            .get_or_create(&SourceFetchLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        self.source_points.get_or_create(&labels).inc_by(points);
        self.source_fetch_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts an attempt to send an alert notification.
    pub fn alert_delivery(&self, receiver: &str, outcome: &str) {
        self.alert_deliveries
            .get_or_create(&DeliveryLabels {
                receiver: receiver.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Times an alert rule's evaluation.
    pub fn alert_evaluated(&self, took: Duration) {
        self.alert_evaluation_seconds.observe(took.as_secs_f64());
    }

    /// Counts records of a pull source that were refused.
    pub fn source_refused(&self, kind: &str, count: u64) {
        self.source_refused
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc_by(count);
    }

    /// Counts a committed batch.
    pub fn committed(&self, source: Source, measures: u64, took: Duration) {
        let labels = SourceLabels { source };
        self.accepted.get_or_create(&labels).inc_by(measures);
        self.batch_size
            .get_or_create(&labels)
            .observe(measures as f64);
        self.commit_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts refused records.
    pub fn rejected(&self, source: Source, reason: Reason, count: u64) {
        self.rejected
            .get_or_create(&RejectionLabels { source, reason })
            .inc_by(count);
    }

    /// Counts a dead-lettered message.
    pub fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }

    /// Counts an AMQP delivery.
    pub fn delivered(&self, redelivered: bool) {
        self.deliveries.inc();
        if redelivered {
            self.redeliveries.inc();
        }
    }

    /// Counts an event that weakens the separation of duties (see `audit::flag_duty_event`).
    pub fn duty_event(&self, kind: &str) {
        self.duty_events
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts AMQP messages skipped as already stored.
    pub fn duplicates_skipped(&self, count: u64) {
        self.duplicates.inc_by(count);
    }

    /// Whether the AMQP consumer is consuming.
    pub fn consumer_connected(&self, connected: bool) {
        self.consumer_connected.set(i64::from(connected));
    }

    /// Counts an HTTP request.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a sign-in.
    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a compaction pass.
    pub fn compacted(&self, points: u64, took: Duration) {
        self.compactions.inc();
        self.compacted_points.inc_by(points);
        self.compaction_seconds.observe(took.as_secs_f64());
    }

    /// The OpenMetrics text of every metric, with the process figures read now.
    pub fn encode(&self) -> String {
        if let Some((cpu, memory)) = process_figures() {
            let mut counted = self
                .process_cpu_counted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cpu > *counted {
                self.process_cpu.inc_by(cpu - *counted);
                *counted = cpu;
            }
            self.process_memory.set(memory);
        }
        let dropped = crate::logship::dropped_lines();
        let mut counted = self
            .log_lines_counted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if dropped > *counted {
            self.log_lines_dropped.inc_by(dropped - *counted);
            *counted = dropped;
        }
        drop(counted);
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// CPU seconds and resident bytes of this process, from /proc (Linux).
fn process_figures() -> Option<(f64, i64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let resident_kib: i64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // Linux reports in USER_HZ, 100 on every mainstream configuration.
    Some((ticks / 100.0, resident_kib * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_openmetrics() {
        let metrics = Metrics::default();
        metrics.committed(Source::Http, 5000, Duration::from_millis(3));
        metrics.committed(Source::Amqp, 10, Duration::from_millis(1));
        metrics.rejected(Source::Http, Reason::UnknownMeasureType, 2);
        metrics.dead_lettered();
        let text = metrics.encode();
        assert!(
            text.contains("mymonit_measures_accepted_total{source=\"http\"} 5000"),
            "{text}"
        );
        assert!(
            text.contains("mymonit_measures_accepted_total{source=\"amqp\"} 10"),
            "{text}"
        );
        assert!(
            text.contains(
                "mymonit_measures_rejected_total{source=\"http\",reason=\"unknown_measure_type\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("mymonit_amqp_dead_lettered_total 1"),
            "{text}"
        );
        assert!(
            text.contains("mymonit_ingest_commit_seconds_count{source=\"http\"} 1"),
            "{text}"
        );
    }
}
