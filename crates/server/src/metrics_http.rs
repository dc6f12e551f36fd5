//! Serving the metrics: the `/metrics` listener, the request counter middleware, and the
//! gauges refreshed from the database at each scrape.

use std::{collections::BTreeMap, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{ingest::amqp::ConsumerState, state::AppState};

/// Counts every HTTP request by route template, method and status, with its latency.
pub async fn track_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    state.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Refreshes the gauges that describe the database and the consumer.
async fn refresh(state: &AppState) -> Result<(), mymonit_store::StoreError> {
    let gauges = &state.metrics.store;
    let stats = state.measures.storage_stats().await?;
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    gauges.series.set(as_i64(stats.series));
    gauges
        .points
        .set(as_i64(stats.chunk_points + stats.recent_points));
    gauges.recent_points.set(as_i64(stats.recent_points));
    gauges.chunks.set(as_i64(stats.chunks));
    gauges.bytes.set(as_i64(stats.file_bytes));
    let mut roles: BTreeMap<String, i64> = BTreeMap::new();
    for user in state.meta.list_users().await? {
        *roles.entry(user.role.to_string()).or_default() += 1;
    }
    gauges.set_users(&roles.into_iter().collect::<Vec<_>>());
    let experiments = state.meta.list_experiments().await?;
    gauges.experiments.set(experiments.len() as i64);
    let mut measures = Vec::with_capacity(experiments.len());
    let experiments_by_id: BTreeMap<i64, String> = experiments
        .iter()
        .map(|e| (e.experiment_id, e.name.clone()))
        .collect();
    for experiment in experiments {
        let count = state.measures.count(experiment.experiment_id).await?;
        measures.push((experiment.name, as_i64(count)));
    }
    gauges.set_experiment_measures(&measures);
    gauges
        .associations
        .set(state.meta.list_associations().await?.len() as i64);
    let names: BTreeMap<i64, String> = experiments_by_id;
    let sources: Vec<crate::metrics::SourceGauge> = state
        .sources
        .list_sources(None)
        .await?
        .into_iter()
        .filter(|source| source.enabled)
        .map(|source| crate::metrics::SourceGauge {
            source_id: source.source_id,
            kind: source.kind.as_str(),
            experiment: names
                .get(&source.experiment_id)
                .cloned()
                .unwrap_or_default(),
            failures: source.failures,
            last_success_seconds: source.last_success_ms.map(|ms| ms / 1_000),
            backlog_secs: source.backlog_secs,
        })
        .collect();
    gauges.set_sources(&sources);
    let (rules, firing) = state.alerts.alert_counts().await?;
    gauges.alert_rules.set(as_i64(rules));
    gauges.alerts_firing.set(as_i64(firing));
    let consuming = matches!(
        *state.consumer.read().unwrap_or_else(|e| e.into_inner()),
        ConsumerState::Consuming
    );
    state.metrics.consumer_connected(consuming);
    Ok(())
}

async fn scrape(State(state): State<AppState>) -> Response {
    if let Err(err) = refresh(&state).await {
        // The counters are still worth serving; the database gauges keep their last values.
        tracing::warn!(error = %err, "cannot refresh the database gauges");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// The metrics listener's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}
