//! The loop every claimed background job shares (fetching sources, evaluating alert rules,
//! sending notifications): claim work from the database when woken, every `poll`, or when a
//! piece of work ends, and run at most `concurrency` pieces at once.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{
    sync::{Notify, Semaphore},
    task::JoinSet,
};

/// Claims with `claim(free slots)` and runs `work` on each piece claimed, until dropped.
/// `what` names the job in the log when a claim fails.
pub async fn claim_and_work<T, C, CF, W, WF>(
    what: &'static str,
    poll: Duration,
    wake: Arc<Notify>,
    concurrency: usize,
    mut claim: C,
    work: W,
) where
    T: Send + 'static,
    C: FnMut(usize) -> CF,
    CF: Future<Output = Result<Vec<T>, mymonit_store::StoreError>>,
    W: Fn(T) -> WF,
    WF: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = wake.notified() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
        while running.try_join_next().is_some() {}
        let free = permits.available_permits();
        if free == 0 {
            continue;
        }
        let claimed = match claim(free).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot claim {what}");
                continue;
            }
        };
        for piece in claimed {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let task = work(piece);
            running.spawn(async move {
                task.await;
                drop(permit);
            });
        }
    }
}
