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
