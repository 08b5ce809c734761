//! Starts queued jobs as workers and per-user limits allow, each on the blocking pool; wakes
//! when a job is queued or ends.

use chrono::Utc;

use super::AppState;

/// Runs until the service stops.
pub(crate) async fn run(state: AppState) {
    loop {
        loop {
            let started = state.with_queue(|queue, inner| Ok(queue.start_next(inner.config.workers)?)).await;
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
