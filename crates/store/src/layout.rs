//! What both backends share about the measures' layout: how a series is keyed, how stored
//! blocks decode.

use std::collections::HashMap;

use mymonit_model::measure::NewMeasure;
use mymonit_tsdb::Point;

use crate::{Result, StoreError, tags_to_json};

/// A series by (experiment, measure type, tags as stored).
pub(crate) type SeriesKey = (i64, i64, String);

/// Series ids by key; only committed series enter it.
pub(crate) type SeriesCache = HashMap<SeriesKey, i64>;

/// The key of a measure's series.
pub(crate) fn series_key(measure: &NewMeasure) -> SeriesKey {
    (
        measure.experiment_id,
        measure.measure_type_id,
        tags_to_json(&measure.tags).unwrap_or_default(),
    )
}

/// Decodes a recent block.
pub(crate) fn block_points(block_id: i64, data: &[u8]) -> Result<Vec<Point>> {
    mymonit_tsdb::block::decode(data).map_err(|reason| StoreError::Corrupt {
        chunk_id: block_id,
        reason,
    })
}

/// Names the chunk whose bytes do not decode.
pub(crate) fn corrupt(chunk_id: i64) -> impl Fn(mymonit_tsdb::bits::DecodeError) -> StoreError {
    move |reason| StoreError::Corrupt { chunk_id, reason }
}
