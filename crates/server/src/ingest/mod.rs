//! Ingestion: decode → validate → resolve experiment and measure-type names to ids → store in
//! one transaction → only then answer. Rejected records never block the good ones and come
//! back with their reason.

pub mod amqp;
pub mod resolve;
pub mod tokens;

use mymonit_formats::Decoded;
use mymonit_model::{ingest::IngestToken, measure::NewMeasure, time::now_ns};
pub use resolve::{NameResolver, RejectReason};
use serde::Serialize;
use utoipa::ToSchema;

use mymonit_store::StoreError;

use crate::{error::ApiError, metrics::Source, state::AppState};

/// Most rejections listed in one answer (the count is always complete).
pub const MAX_LISTED_REJECTIONS: usize = 1000;

pub use mymonit_formats::{DecodeOptions, Format};

/// Decodes a whole body (CPU work: call it off the async runtime for large bodies).
pub fn decode_body(body: &[u8], options: &DecodeOptions) -> Result<Vec<Decoded>, ApiError> {
    let decoder = mymonit_formats::decoder_in(body, options, now_ns).map_err(|err| match err {
        mymonit_formats::OptionsError::TxtNeedsNames => ApiError::BadRequest(
            "txt bodies need the experiment and measure query parameters".into(),
        ),
        mymonit_formats::OptionsError::ExpositionNeedsExperiment => ApiError::BadRequest(
            "Prometheus and OpenMetrics pages need the experiment query parameter".into(),
        ),
    })?;
    Ok(decoder.collect())
}

/// A body that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Decompressed, it is larger than the limit.
    #[error("the decompressed body is larger than the server accepts")]
    TooLarge,
    /// It is not the gzip its `Content-Encoding` says.
    #[error("Content-Encoding gzip, but the body is not gzip: {0}")]
    NotGzip(std::io::Error),
    /// An encoding MyMonit does not read.
    #[error("Content-Encoding {0:?} is not supported: send gzip or identity")]
    UnknownEncoding(String),
}

/// The body as sent, or gunzipped when `Content-Encoding: gzip` says so, at most `limit`
/// bytes either way (a small gzip body can inflate to gigabytes).
pub fn decompressed(
    headers: &axum::http::HeaderMap,
    body: axum::body::Bytes,
    limit: usize,
) -> Result<axum::body::Bytes, BodyError> {
    use std::io::Read;
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(BodyError::NotGzip)?;
            if out.len() > limit {
                return Err(BodyError::TooLarge);
            }
            Ok(out.into())
        }
        other => Err(BodyError::UnknownEncoding(other.to_owned())),
    }
}

/// A record that was not stored, and why.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Rejection {
    /// The record's ordinal in the body, from 0, in decoding order (for line protocol, each
    /// field of a line is one record).
    pub index: usize,
    /// Why, with the position in the input (line or record) when the decoder knows it.
    pub error: String,
}

/// What became of a body.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct IngestOutcome {
    /// Records stored durably.
    pub accepted: u64,
    /// Records refused, with reasons (at most [`MAX_LISTED_REJECTIONS`] listed).
    pub rejected: Vec<Rejection>,
    /// How many records were refused in all.
    pub rejected_count: u64,
    /// The `Idempotency-Key` was seen before: the records were already stored then, and are
    /// not stored again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl IngestOutcome {
    fn reject(&mut self, index: usize, error: String) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(Rejection { index, error });
        }
    }
}

/// Resolves names, checks the token's scope and stores the good records in one transaction.
/// Records naming an experiment the token may not write to make the whole request 403:
/// nothing is stored.
///
/// With an idempotency key, a repeated request (a client retrying after a lost answer) stores
/// nothing twice.
pub async fn store(
    state: &AppState,
    token: &IngestToken,
    decoded: Vec<Decoded>,
    idempotency_key: Option<&str>,
) -> Result<IngestOutcome, ApiError> {
    let mut outcome = IngestOutcome {
        accepted: 0,
        rejected: Vec::new(),
        rejected_count: 0,
        duplicate: false,
    };
    let mut resolver = NameResolver::new(std::time::Duration::ZERO, state.settings.ingest.clone());
    let mut batch: Vec<NewMeasure> = Vec::with_capacity(decoded.len());
    let mut positions: Vec<usize> = Vec::with_capacity(decoded.len());
    for (index, item) in decoded.into_iter().enumerate() {
        let allowed = |experiment_id| token.experiment_ids.contains(&experiment_id);
        match resolver.measure(state.meta.as_ref(), item, allowed).await? {
            Ok(measure) => {
                batch.push(measure);
                positions.push(index);
            }
            Err(reason) => {
                state.metrics.rejected(Source::Http, reason.metric(), 1);
                // A record outside the token's scope refuses the whole request.
                if let RejectReason::OutOfScope(_) = reason {
                    return Err(ApiError::Forbidden(reason.to_string()));
                }
                outcome.reject(index, reason.to_string());
            }
        }
    }
    let started = std::time::Instant::now();
    // A batch that would grow an experiment past its series limit stores nothing: its points
    // of the series that do not fit are refused and the others stored (a writer racing this
    // one may take the last places meanwhile: then the next attempt refuses a few more).
    let mut stored = false;
    for _attempt in 0..3 {
        let appended = match (idempotency_key, batch.is_empty()) {
            (_, true) => Ok(()),
            (None, false) => state
                .measures
                .append(&batch)
                .await
                .map(|stored| outcome.accepted = stored),
            (Some(key), false) => {
                let count = batch.len() as u64;
                let message = (format!("http:{}:{key}", token.token_id), batch.clone());
                state
                    .measures
                    .append_messages(std::slice::from_ref(&message))
                    .await
                    .map(|stored| {
                        outcome.duplicate = stored == 0;
                        outcome.accepted = count;
                    })
            }
        };
        match appended {
            Ok(()) => {
                stored = true;
                break;
            }
            Err(StoreError::SeriesLimit { limit, series }) => {
                let mut kept = Vec::with_capacity(batch.len());
                let mut kept_positions = Vec::with_capacity(batch.len());
                for (measure, index) in batch.into_iter().zip(positions) {
                    match RejectReason::series_limit(&measure, limit, &series) {
                        Some(reason) => {
                            state.metrics.rejected(Source::Http, reason.metric(), 1);
                            outcome.reject(index, reason.to_string());
                        }
                        None => {
                            kept.push(measure);
                            kept_positions.push(index);
                        }
                    }
                }
                (batch, positions) = (kept, kept_positions);
            }
            Err(err) => return Err(err.into()),
        }
    }
    if !stored {
        return Err(ApiError::Unavailable(
            "other writers kept filling the experiment's series limit meanwhile: nothing was \
             stored, try again"
                .into(),
        ));
    }
    if outcome.accepted > 0 && !outcome.duplicate {
        state
            .metrics
            .committed(Source::Http, outcome.accepted, started.elapsed());
    }
    Ok(outcome)
}

/// Creates the measure types the points name that do not exist yet, when the experiment
/// allows it; otherwise their points are refused later, with the reason.
pub async fn create_measure_types(
    state: &AppState,
    experiment_id: i64,
    decoded: &[Decoded],
) -> Result<(), ApiError> {
    let names: std::collections::BTreeSet<&str> = decoded
        .iter()
        .filter_map(|record| record.as_ref().ok())
        .map(|record| &*record.measure)
        .collect();
    create_named_measure_types(state, experiment_id, names).await
}

/// Creates the measure types of `names` that do not exist yet, when the experiment allows it.
pub async fn create_named_measure_types(
    state: &AppState,
    experiment_id: i64,
    names: std::collections::BTreeSet<&str>,
) -> Result<(), ApiError> {
    let mut allowed = None;
    for name in names {
        if state.meta.measure_type_by_name(name).await?.is_some() {
            continue;
        }
        let allowed = match allowed {
            Some(allowed) => allowed,
            None => *allowed.insert(state.meta.creates_measure_types(experiment_id).await?),
        };
        if !allowed || mymonit_model::validate::measure_type_field("name", name).is_err() {
            continue;
        }
        match state.meta.create_measure_type(name, "", "").await {
            Ok(created) => {
                tracing::info!(measure_type = %created.name, experiment_id, "measure type created by a write");
            }
            // Another writer created it meanwhile.
            Err(mymonit_store::StoreError::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_needs_experiment_and_measure() {
        let options = DecodeOptions {
            format: Format::Txt,
            unit: mymonit_formats::TimeUnit::Seconds,
            experiment: None,
            measure: None,
            delimiter: None,
        };
        assert!(decode_body(b"1\n", &options).is_err());
    }
}
