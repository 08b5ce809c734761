//! Starts queued jobs on the blocking pool while this service has a free worker slot
//! ([`ServiceConfig::workers`](super::ServiceConfig), none with `--workers 0`, when only
//! `ringfence worker` processes run jobs); wakes when a job is queued or ends. Per-user limits
//! are the queue's, and hold across processes.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;

use super::AppState;

/// Runs until the service stops.
pub(crate) async fn run(state: AppState) {
    let slots = Arc::new(Semaphore::new(usize::try_from(state.inner.config.workers).unwrap_or(usize::MAX)));
    loop {
        while let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            let started = state.with_queue(|queue, _| Ok(queue.start_next()?)).await;
            match started {
                Ok(Some(lock)) => {
                    let job = state.clone();
                    tokio::spawn(async move {
                        let id = lock.id().to_string();
                        let ran = job
                            .with_queue(move |queue, inner| {
                                let today = Utc::now().date_naive();
                                Ok(queue.run_started(&inner.sandbox, lock, &inner.config.caps, today)?)
                            })
                            .await;
                        if let Err(err) = ran {
                            tracing::warn!("job {id}: {err}");
                        }
                        drop(slot);
                        job.inner.wake.notify_one();
                    });
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::error!("scheduler: {err}");
                    break;
                }
            }
        }
        state.inner.wake.notified().await;
    }
}
