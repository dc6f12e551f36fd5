//! One name resolver and one list of rejection reasons for every ingest path (HTTP, AMQP):
//! the reason gives the HTTP message, the dead-letter header and the metrics label alike.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use foldhash::{HashMap, HashMapExt};

use mymonit_formats::{Decoded, RecordError};
use mymonit_model::measure::NewMeasure;
use mymonit_store::{MetaStore, StoreError};

use crate::{metrics::Reason, settings::IngestSettings};

/// Names whose ids [`NameResolver`] keeps by allocation.
const RECENT_NAMES: usize = 8;

/// Ids of the last names resolved, by allocation (holding it, so that it is not reused for
/// another name).
#[derive(Debug, Default)]
struct Recent(Vec<(Arc<str>, i64)>);

impl Recent {
    /// The id last resolved for this very name (the same allocation), if any.
    fn get(&self, name: &Arc<str>) -> Option<i64> {
        self.0
            .iter()
            .find(|(known, _)| Arc::ptr_eq(known, name))
            .map(|(_, id)| *id)
    }

    fn remember(&mut self, name: &Arc<str>, id: i64) {
        if self.get(name).is_some() {
            return;
        }
        if self.0.len() == RECENT_NAMES {
            self.0.remove(0);
        }
        self.0.push((Arc::clone(name), id));
    }
}

/// Why a record (or an AMQP message) was not stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    /// The decoder refused it (the message says where and why).
    #[error("{0}")]
    Decode(RecordError),
    /// An AMQP message with no measure in it.
    #[error("empty message: no measure in it")]
    Empty,
    /// It names an experiment that does not exist.
    #[error("unknown experiment {0:?}")]
    UnknownExperiment(String),
    /// It names a measure type that does not exist.
    #[error("unknown measure type {0:?}")]
    UnknownMeasureType(String),
    /// Its experiment is outside the ingest token's scope.
    #[error("this ingest token may not write to experiment {0:?}")]
    OutOfScope(String),
    /// Its tags exceed a limit (the message names it and its setting).
    #[error("tags: {0}")]
    Tags(String),
    /// It would add a series to an experiment that has as many as it may.
    #[error(
        "series: experiment {experiment_id} has {limit} series, the most allowed \
         (ingest.max_series_per_experiment); this point's measure type and tags would make one more"
    )]
    SeriesLimit {
        /// The experiment.
        experiment_id: i64,
        /// The limit.
        limit: u64,
    },
}

impl RejectReason {
    /// Why `measure` is refused when these series do not fit, if it is one of theirs.
    pub fn series_limit(
        measure: &NewMeasure,
        limit: u64,
        over: &[(i64, i64, std::collections::BTreeMap<String, String>)],
    ) -> Option<Self> {
        over.iter()
            .any(|(experiment, measure_type, tags)| {
                (*experiment, *measure_type, tags)
                    == (
                        measure.experiment_id,
                        measure.measure_type_id,
                        &measure.tags,
                    )
            })
            .then_some(Self::SeriesLimit {
                experiment_id: measure.experiment_id,
                limit,
            })
    }

    /// The label of `mymonit_ingest_rejected_total`.
    pub fn metric(&self) -> Reason {
        match self {
            Self::Decode(_) | Self::Empty => Reason::Decode,
            Self::Tags(_) | Self::SeriesLimit { .. } => Reason::Limit,
            Self::UnknownExperiment(_) => Reason::UnknownExperiment,
            Self::UnknownMeasureType(_) => Reason::UnknownMeasureType,
            Self::OutOfScope(_) => Reason::Forbidden,
        }
    }
}

/// Experiment and measure-type ids by name. Known names are kept for `ttl` (renames and new
/// types are seen within that time); unknown ones only until the next [`Self::refresh`], so
/// an experiment created a moment ago is found at once.
#[derive(Debug)]
pub struct NameResolver {
    experiments: HashMap<String, Option<i64>>,
    measure_types: HashMap<String, Option<i64>>,
    /// The last experiment and measure-type names resolved, by their shared allocation: the
    /// records of one body share their names (see `mymonit_formats::Record`), so most lookups
    /// are a pointer comparison. Apart, since an experiment and a type may share a name.
    recent_experiments: Recent,
    recent_types: Recent,
    since: Instant,
    ttl: Duration,
    limits: IngestSettings,
}

impl NameResolver {
    /// A resolver that keeps known names for `ttl` and holds tags to `limits`.
    pub fn new(ttl: Duration, limits: IngestSettings) -> Self {
        Self {
            experiments: HashMap::new(),
            measure_types: HashMap::new(),
            recent_experiments: Recent::default(),
            recent_types: Recent::default(),
            since: Instant::now(),
            ttl,
            limits,
        }
    }

    /// Why a point's tags are refused, if they are.
    fn check_tags(
        &self,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Option<RejectReason> {
        let limits = &self.limits;
        if tags.len() > limits.max_tags_per_point {
            return Some(RejectReason::Tags(format!(
                "{} tags, at most {} (ingest.max_tags_per_point)",
                tags.len(),
                limits.max_tags_per_point
            )));
        }
        for (key, value) in tags {
            if key.len() > limits.max_tag_key_bytes {
                return Some(RejectReason::Tags(format!(
                    "a key of {} bytes, at most {} (ingest.max_tag_key_bytes)",
                    key.len(),
                    limits.max_tag_key_bytes
                )));
            }
            if value.len() > limits.max_tag_value_bytes {
                return Some(RejectReason::Tags(format!(
                    "the value of {key:?} has {} bytes, at most {} (ingest.max_tag_value_bytes)",
                    value.len(),
                    limits.max_tag_value_bytes
                )));
            }
        }
        None
    }

    /// Starts a new batch: forgets unknown names, and everything once `ttl` has passed.
    pub fn refresh(&mut self) {
        if self.since.elapsed() > self.ttl {
            self.experiments.clear();
            self.measure_types.clear();
            self.recent_experiments = Recent::default();
            self.recent_types = Recent::default();
            self.since = Instant::now();
        } else {
            self.experiments.retain(|_, id| id.is_some());
            self.measure_types.retain(|_, id| id.is_some());
        }
    }

    /// The id of an experiment, by name.
    pub async fn experiment(
        &mut self,
        meta: &dyn MetaStore,
        name: &str,
    ) -> Result<Result<i64, RejectReason>, StoreError> {
        let id = match self.experiments.get(name) {
            Some(id) => *id,
            None => {
                let id = meta
                    .experiment_by_name(name)
                    .await?
                    .map(|e| e.experiment_id);
                self.experiments.insert(name.to_string(), id);
                id
            }
        };
        Ok(id.ok_or_else(|| RejectReason::UnknownExperiment(name.to_string())))
    }

    /// The id of a measure type, by name.
    pub async fn measure_type(
        &mut self,
        meta: &dyn MetaStore,
        name: &str,
    ) -> Result<Result<i64, RejectReason>, StoreError> {
        let id = match self.measure_types.get(name) {
            Some(id) => *id,
            None => {
                let id = meta
                    .measure_type_by_name(name)
                    .await?
                    .map(|t| t.measure_type_id);
                self.measure_types.insert(name.to_string(), id);
                id
            }
        };
        Ok(id.ok_or_else(|| RejectReason::UnknownMeasureType(name.to_string())))
    }

    /// A decoded record as a measure to store, or why it cannot be one; `allowed` says which
    /// experiments the source may write to (checked before the measure type).
    pub async fn measure(
        &mut self,
        meta: &dyn MetaStore,
        decoded: Decoded,
        allowed: impl Fn(i64) -> bool,
    ) -> Result<Result<NewMeasure, RejectReason>, StoreError> {
        let record = match decoded {
            Ok(record) => record,
            Err(err) => return Ok(Err(RejectReason::Decode(err))),
        };
        if let Some(reason) = self.check_tags(&record.tags) {
            return Ok(Err(reason));
        }
        let experiment_id = match self.recent_experiments.get(&record.experiment) {
            Some(id) => Ok(id),
            None => self.experiment(meta, &record.experiment).await?,
        };
        let experiment_id = match experiment_id {
            Ok(id) if allowed(id) => {
                self.recent_experiments.remember(&record.experiment, id);
                id
            }
            Ok(_) => return Ok(Err(RejectReason::OutOfScope(record.experiment.to_string()))),
            Err(reason) => return Ok(Err(reason)),
        };
        let measure_type_id = match self.recent_types.get(&record.measure) {
            Some(id) => id,
            None => match self.measure_type(meta, &record.measure).await? {
                Ok(id) => {
                    self.recent_types.remember(&record.measure, id);
                    id
                }
                Err(reason) => return Ok(Err(reason)),
            },
        };
        Ok(Ok(NewMeasure {
            experiment_id,
            measure_type_id,
            timestamp_ns: record.timestamp_ns,
            value: record.value,
            tags: record.tags,
        }))
    }
}

#[cfg(test)]
mod tests {
    use mymonit_formats::{TimeUnit, json};
    use mymonit_store::{MetaStore, SqliteStore};

    use super::*;

    /// The records of a body share one allocation for one name, whether it names their
    /// experiment or their measure type: each keeps its own id.
    #[tokio::test]
    async fn an_experiment_and_a_type_of_one_name_keep_their_own_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let volt = store.measure_type_by_name("volt").await.unwrap().unwrap();
        for i in 0..3 {
            store
                .create_experiment(&format!("other-{i}"))
                .await
                .unwrap();
        }
        let experiment = store.create_experiment("volt").await.unwrap();
        assert_ne!(experiment.experiment_id, volt.measure_type_id);
        let line = r#"{"experiment":"volt","measure":"volt","value":1,"timestamp":1}"#;
        let body = format!("{line}\n{line}\n{line}\n");
        let mut resolver = NameResolver::new(Duration::from_secs(60), IngestSettings::default());
        for decoded in json::decode_lines_in(body.as_bytes(), TimeUnit::Seconds) {
            let record = decoded.clone().unwrap();
            assert!(Arc::ptr_eq(&record.experiment, &record.measure));
            let measure = resolver
                .measure(&store, decoded, |_| true)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (measure.experiment_id, measure.measure_type_id),
                (experiment.experiment_id, volt.measure_type_id)
            );
        }
    }
}
