//! Experiments, measure types and measures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An experiment, in the original wire shape `{experiment_id, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Experiment {
    /// Synthetic id.
    #[schema(example = 1)]
    pub experiment_id: i64,
    /// Unique name.
    #[schema(example = "device-vibrations")]
    pub name: String,
}

/// A kind of measure: the unit it is expressed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeasureType {
    /// Synthetic id.
    pub measure_type_id: i64,
    /// Unique name, used in messages (`"measure": "hertz"`).
    #[schema(example = "hertz")]
    pub name: String,
    /// Unit symbol.
    #[schema(example = "Hz")]
    pub symbol: String,
    /// What it measures.
    #[schema(example = "frequency")]
    pub quantity: String,
}

/// One stored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Storage order key, unique per store; makes cursors stable when timestamps tie.
    pub seq: i64,
    /// The experiment it belongs to.
    pub experiment_id: i64,
    /// The experiment's name.
    pub experiment: String,
    /// The measure type's name.
    pub measure_type: String,
    /// Nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// The reading.
    pub value: f64,
    /// Small string key/value set (`host`, `endpoint`, …); a series is (experiment, type, tags).
    pub tags: BTreeMap<String, String>,
}

/// A page of raw measures of one experiment: the names of each series once, and the points
/// in `(timestamp, seq)` order, each naming its series by index. Equal to a `Vec<Measure>`
/// ([`Self::into_measures`]) without a copy of the names per point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasurePage {
    /// The experiment.
    pub experiment_id: i64,
    /// The experiment's name.
    pub experiment: String,
    /// `(measure type name, tags)` of the series the points refer to.
    pub series: Vec<(String, BTreeMap<String, String>)>,
    /// The points, in `(timestamp, seq)` order.
    pub points: Vec<PagePoint>,
}

/// A point of a [`MeasurePage`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PagePoint {
    /// Index of its series in [`MeasurePage::series`].
    pub series: usize,
    /// Nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// Storage order key (see [`Measure::seq`]).
    pub seq: i64,
    /// The reading.
    pub value: f64,
}

/// A measure of a [`MeasurePage`], borrowing its names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasureRef<'a> {
    /// Storage order key.
    pub seq: i64,
    /// The experiment's name.
    pub experiment: &'a str,
    /// The measure type's name.
    pub measure_type: &'a str,
    /// Nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// The reading.
    pub value: f64,
    /// Its series' tags.
    pub tags: &'a BTreeMap<String, String>,
}

impl MeasurePage {
    /// An empty page of an experiment.
    pub fn new(experiment_id: i64, experiment: String) -> Self {
        Self {
            experiment_id,
            experiment,
            ..Self::default()
        }
    }

    /// How many measures it holds.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Its measures in order.
    pub fn iter(&self) -> impl Iterator<Item = MeasureRef<'_>> {
        self.points.iter().map(|point| {
            let (measure_type, tags) = &self.series[point.series];
            MeasureRef {
                seq: point.seq,
                experiment: &self.experiment,
                measure_type,
                timestamp_ns: point.timestamp_ns,
                value: point.value,
                tags,
            }
        })
    }

    /// Its measures as owned values.
    pub fn into_measures(self) -> Vec<Measure> {
        self.iter()
            .map(|measure| Measure {
                seq: measure.seq,
                experiment_id: self.experiment_id,
                experiment: measure.experiment.to_owned(),
                measure_type: measure.measure_type.to_owned(),
                timestamp_ns: measure.timestamp_ns,
                value: measure.value,
                tags: measure.tags.clone(),
            })
            .collect()
    }
}

/// A reading to store, with names already resolved to ids.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMeasure {
    /// Experiment id.
    pub experiment_id: i64,
    /// Measure type id.
    pub measure_type_id: i64,
    /// Nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// The reading.
    pub value: f64,
    /// Optional tags.
    pub tags: BTreeMap<String, String>,
}
