//! The fetch loop: every instance claims due sources from the database (a lease each, so a
//! source is fetched by one instance at a time, and by another when that one dies), fetches
//! at most `sources.max_concurrent_fetches` at once, and backs off a failing source from 1 s
//! to 10 minutes.

use std::time::Duration;

use mymonit_model::source::backoff_ms;
use mymonit_store::sources::ClaimedSource;

use super::{fetch_and_store, now_ms};
use crate::{background::claim_and_work, state::AppState};

/// How often the loop looks for due sources when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);

/// Fetches due sources until the task is dropped.
pub async fn run(state: AppState) {
    let settings = state.settings.sources.clone();
    let owner = format!("mymonit-{}", uuid::Uuid::new_v4());
    // A fetch may take a request for the details and a few for a window that was too large.
    let lease_ms = (settings.fetch_timeout_secs.max(1) as i64 * 4 + 10) * 1_000;
    tracing::info!(%owner, "fetching pull sources");
    let claimer = (state.clone(), owner.clone());
    claim_and_work(
        "due sources",
        POLL,
        state.sources_changed.clone(),
        settings.max_concurrent_fetches,
        |free| {
            let (state, owner) = claimer.clone();
            async move {
                state
                    .sources
                    .claim_due_sources(&owner, now_ms(), lease_ms, free)
                    .await
            }
        },
        |source| {
            let (state, owner) = (state.clone(), owner.clone());
            async move { fetch_one(&state, &source, &owner).await }
        },
    )
    .await;
}

/// Fetches one claimed source and records the outcome.
async fn fetch_one(state: &AppState, claimed: &ClaimedSource, owner: &str) {
    let source = &claimed.source;
    let kind = source.kind.as_str();
    let started = std::time::Instant::now();
    match fetch_and_store(state, &state.fetcher, claimed, owner).await {
        Ok(Some(points)) => {
            state
                .metrics
                .source_fetched(kind, "success", points, started.elapsed());
            tracing::debug!(
                source_id = source.source_id,
                points,
                took_ms = started.elapsed().as_millis() as u64,
                "source fetched"
            );
        }
        Ok(None) => {
            state
                .metrics
                .source_fetched(kind, "superseded", 0, started.elapsed());
            tracing::info!(
                source_id = source.source_id,
                "another instance took the source over: this fetch was not stored"
            );
        }
        Err(err) => {
            state
                .metrics
                .source_fetched(kind, "failure", 0, started.elapsed());
            let failures = source.failures.saturating_add(1);
            let now = now_ms();
            let retry_at = now + backoff_ms(failures);
            tracing::warn!(
                source_id = source.source_id,
                kind,
                failures,
                retry_in_ms = retry_at - now,
                error = %err,
                "fetching a source failed"
            );
            if let Err(store_err) = state
                .sources
                .record_pull_failure(source.source_id, owner, &err.to_string(), now, retry_at)
                .await
            {
                tracing::warn!(error = %store_err, "cannot record a source's failure");
            }
        }
    }
}
