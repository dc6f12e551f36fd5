//! An experiment's series as InfluxQL sees them: measurements (measure types), field keys
//! (`_field` tags, or `value`) and tags.

use std::collections::{BTreeMap, BTreeSet};

use mymonit_formats::line_protocol::{FIELD_TAG, VALUE_FIELD};
use mymonit_influxql::{
    QueryError,
    ast::Source,
    condition::{TagFilter, compile_regex},
};
use mymonit_store::Series;

use super::query::store_error;
use crate::state::AppState;

/// A field's key as its series carries it.
pub fn field_of(tags: &BTreeMap<String, String>) -> &str {
    tags.get(FIELD_TAG).map_or(VALUE_FIELD, String::as_str)
}

/// The series of an experiment by measurement (measure type name).
pub struct Catalogue {
    /// By measurement, in series id order.
    pub series: BTreeMap<String, Vec<Series>>,
}

impl Catalogue {
    /// Reads an experiment's series.
    pub async fn read(state: &AppState, experiment_id: i64) -> Result<Self, QueryError> {
        let mut series: BTreeMap<String, Vec<Series>> = BTreeMap::new();
        for one in state
            .measures
            .series(experiment_id, None)
            .await
            .map_err(store_error)?
        {
            series
                .entry(one.measure_type.clone())
                .or_default()
                .push(one);
        }
        Ok(Self { series })
    }

    /// Whether `name` is a field key of some measurement (`value`, or a `_field` tag's value).
    pub fn is_field(&self, name: &str) -> bool {
        name == VALUE_FIELD
            || self
                .series
                .values()
                .flatten()
                .any(|one| one.tags.get(FIELD_TAG).is_some_and(|field| field == name))
    }

    /// The tags of a measurement's series.
    pub fn series_of(&self, measurement: &str) -> impl Iterator<Item = &BTreeMap<String, String>> {
        self.series
            .get(measurement)
            .into_iter()
            .flatten()
            .map(|one| &one.tags)
    }

    /// Measurements with a series passing `filter`.
    pub fn measurements(&self, filter: Option<&TagFilter>) -> Vec<String> {
        self.series
            .iter()
            .filter(|(_, series)| {
                series
                    .iter()
                    .any(|one| filter.is_none_or(|filter| filter.matches(&one.tags)))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The measurements `FROM` names (all without one).
    pub fn selected(&self, from: &[Source]) -> Result<Vec<String>, QueryError> {
        if from.is_empty() {
            return Ok(self.series.keys().cloned().collect());
        }
        let mut out = BTreeSet::new();
        for source in from {
            match source {
                Source::Measurement { name, .. } => {
                    if self.series.contains_key(name) {
                        out.insert(name.clone());
                    }
                }
                Source::Regex(pattern) => {
                    let regex = compile_regex(pattern)?;
                    out.extend(
                        self.series
                            .keys()
                            .filter(|name| regex.is_match(name))
                            .cloned(),
                    );
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}
