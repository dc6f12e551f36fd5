//! Counters about MyMonit itself: what was ingested, from where, what was refused and why,
//! batch sizes and commit latency. Kept in a Prometheus registry, so the observability work
//! only has to serve it.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// Where measures came from.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Source {
    /// `POST /api/v1/ingest`.
    Http,
    /// The AMQP consumer.
    Amqp,
}

/// Why a record or message was refused.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Reason {
    /// It could not be decoded.
    Decode,
    /// It names an experiment that does not exist.
    UnknownExperiment,
    /// It names a measure type that does not exist.
    UnknownMeasureType,
    /// Its experiment is outside the ingest token's scope.
    Forbidden,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: Source,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    source: Source,
    reason: Reason,
}

/// The ingest counters.
pub struct Metrics {
    registry: Registry,
    accepted: Family<SourceLabels, Counter>,
    rejected: Family<RejectionLabels, Counter>,
    dead_lettered: Counter,
    batch_size: Family<SourceLabels, Histogram>,
    commit_seconds: Family<SourceLabels, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mymonit");
        let accepted = Family::<SourceLabels, Counter>::default();
        let rejected = Family::<RejectionLabels, Counter>::default();
        let dead_lettered = Counter::default();
        let batch_size = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                1.0, 4.0, 10,
            ))
        });
        let commit_seconds = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 3.0, 12,
            ))
        });
        registry.register(
            "measures_accepted",
            "Measures stored durably",
            accepted.clone(),
        );
        registry.register(
            "measures_rejected",
            "Records refused, by reason",
            rejected.clone(),
        );
        registry.register(
            "amqp_dead_lettered",
            "AMQP messages sent to the dead-letter queue",
            dead_lettered.clone(),
        );
        registry.register(
            "ingest_batch_measures",
            "Measures per committed batch",
            batch_size.clone(),
        );
        registry.register(
            "ingest_commit_seconds",
            "Time to commit a batch",
            commit_seconds.clone(),
        );
        Self {
            registry,
            accepted,
            rejected,
            dead_lettered,
            batch_size,
            commit_seconds,
        }
    }
}

impl Metrics {
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

    /// The OpenMetrics text of every counter.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
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
            text.contains("mymonit_measures_accepted_total{source=\"Http\"} 5000"),
            "{text}"
        );
        assert!(
            text.contains("mymonit_measures_accepted_total{source=\"Amqp\"} 10"),
            "{text}"
        );
        assert!(
            text.contains(
                "mymonit_measures_rejected_total{source=\"Http\",reason=\"UnknownMeasureType\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("mymonit_amqp_dead_lettered_total 1"),
            "{text}"
        );
        assert!(
            text.contains("mymonit_ingest_commit_seconds_count{source=\"Http\"} 1"),
            "{text}"
        );
    }
}
