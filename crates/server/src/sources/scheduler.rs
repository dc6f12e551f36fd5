//! The fetch loop: every instance claims due sources from the database (a lease each, so a
//! source is fetched by one instance at a time, and by another when that one dies), fetches
//! at most `sources.max_concurrent_fetches` at once, and backs off a failing source from 1 s
//! to 10 minutes.

use std::{sync::Arc, time::Duration};

use mymonit_model::source::backoff_ms;
use mymonit_store::sources::ClaimedSource;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{fetch_and_store, now_ms};
use crate::state::AppState;

/// How often the loop looks for due sources when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);

/// Fetches due sources until the task is dropped.
pub async fn run(state: AppState) {
    let settings = state.settings.sources.clone();
    let owner = format!("mymonit-{}", uuid::Uuid::new_v4());
    let permits = Arc::new(Semaphore::new(settings.max_concurrent_fetches.max(1)));
    // A fetch may take a request for the details and a few for a window that was too large.
    let lease_ms = (settings.fetch_timeout_secs.max(1) as i64 * 4 + 10) * 1_000;
    let mut running = JoinSet::new();
    tracing::info!(%owner, "fetching pull sources");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = state.sources_changed.notified() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
        while running.try_join_next().is_some() {}
        let free = permits.available_permits();
        if free == 0 {
            continue;
        }
        let claimed = match state
            .sources
            .claim_due_sources(&owner, now_ms(), lease_ms, free)
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot claim due sources");
                continue;
            }
        };
        for source in claimed {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let state = state.clone();
            let owner = owner.clone();
            running.spawn(async move {
                fetch_one(&state, &source, &owner).await;
                drop(permit);
            });
        }
    }
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
