//! Finishing what dead processes left: jobs whose process is gone, requests whose checks never
//! ran, staging files and unreferenced blobs.

use std::collections::HashSet;

use chrono::Utc;
use serde::Serialize;

use super::{ExportQueue, QueueError, ingest, now};
use crate::audit::{Action, Event};
use crate::home::JobLiveness;
use crate::job::JobRecord;
use crate::policy::Disclosure;

/// What recovery did when the queue was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Jobs whose process died before they ended, now `interrupted`.
    pub interrupted: Vec<String>,
    /// Jobs whose process died before they ended, queued once more by their policy.
    pub requeued: Vec<String>,
    /// Jobs whose process died after their record was written; their outputs are now requests.
    pub completed: Vec<String>,
    /// Requests whose checks had not run and now have.
    pub checked: Vec<i64>,
    /// Staging directories, scratch directories and unreferenced blobs removed.
    pub swept: usize,
}

/// Everything a dead process left: its jobs and requests ([`recover_jobs`]), then, with no
/// other process active, its files ([`sweep`]).
pub(super) fn recover(queue: &mut ExportQueue) -> Result<Recovered, QueueError> {
    let mut recovered = recover_jobs(queue)?;
    if let Some(_exclusive) = queue.home.try_lock_exclusive()? {
        recovered.swept = sweep(queue)?;
    }
    Ok(recovered)
}

/// Ends the jobs whose process died (ingested, requeued or interrupted) and checks the
/// requests whose checks it never ran: what an idle worker looks for, often, without walking
/// the state directory's files as [`sweep`] does.
pub(super) fn recover_jobs(queue: &mut ExportQueue) -> Result<Recovered, QueueError> {
    let mut recovered = Recovered::default();
    let running: Vec<(String, String, String)> = queue
        .store
        .conn()
        .query("SELECT id, project, disclosure FROM jobs WHERE status = 'running' ORDER BY id", crate::params![], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(queue.store.err())?;
    for (id, project, disclosure) in running {
        if queue.home.job_liveness(&id)? == JobLiveness::Running {
            continue;
        }
        let record = queue.home.job_dir(&id).join("job.json").exists().then(|| JobRecord::load(&queue.home, &id));
        let rules = serde_json::from_str::<Disclosure>(&disclosure);
        match (record, rules) {
            (Some(Ok(record)), Ok(rules)) => {
                ingest::ingest(queue, &record, &rules, ingest::Recorder::Recovery)?;
                recovered.completed.push(id.clone());
            }
            (record, rules) => {
                let (reason, retry) = match (record, rules) {
                    (Some(Err(e)), _) => (format!("the job's record is unreadable: {e}"), false),
                    (Some(Ok(_)), Err(e)) => (format!("the job's disclosure rules are unreadable: {e}"), false),
                    _ => ("the job's process ended before the job did".to_string(), true),
                };
                match end_dead(queue, &id, &project, &reason, retry)? {
                    Some(Ended::Interrupted) => recovered.interrupted.push(id.clone()),
                    Some(Ended::Requeued) => recovered.requeued.push(id.clone()),
                    None => {}
                }
            }
        }
        for leftover in [queue.home.work_dir().join(&id), queue.home.jobs_dir().join(format!(".{id}.partial"))] {
            if leftover.exists() {
                std::fs::remove_dir_all(&leftover).map_err(crate::home::HomeError::io("remove", &leftover))?;
            }
        }
    }
    let pending: Vec<(i64, String)> = queue
        .store
        .conn()
        .query("SELECT id, job FROM requests WHERE status = 'pending' ORDER BY id", crate::params![], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(queue.store.err())?;
    // A live job's process checks its own outputs.
    let mut orphaned = Vec::new();
    for (id, job) in pending {
        if queue.home.job_liveness(&job)? != JobLiveness::Running {
            orphaned.push(id);
        }
    }
    let pending = orphaned;
    ingest::check_pending(queue, &pending)?;
    recovered.checked = pending;
    Ok(recovered)
}

/// What became of a job whose process died.
enum Ended {
    /// It ended as `interrupted`.
    Interrupted,
    /// It is queued again, its one retry used.
    Requeued,
}

/// Ends a job whose process died, unless it has ended meanwhile: queued once more if `retry`
/// is allowed here and its policy left it a retry, else `interrupted`; the audit entry says
/// which.
fn end_dead(
    queue: &mut ExportQueue,
    id: &str,
    project: &str,
    reason: &str,
    retry: bool,
) -> Result<Option<Ended>, QueueError> {
    let wrap = queue.store.err();
    let mut tx = queue.store.audited()?;
    let requeued = retry
        && tx
            .execute(
                "UPDATE jobs SET status = 'queued', retries_left = retries_left - 1
                 WHERE id = ?1 AND status = 'running' AND retries_left > 0",
                crate::params![id],
            )
            .map_err(&wrap)?
            == 1;
    let (ended, action) = if requeued {
        (Ended::Requeued, Action::JobRequeued)
    } else {
        let updated = tx
            .execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?2 WHERE id = ?1 AND status = 'running'",
                crate::params![id, now()],
            )
            .map_err(&wrap)?;
        if updated == 0 {
            return Ok(None);
        }
        (Ended::Interrupted, Action::JobInterrupted)
    };
    let event = Event {
        actor: "system",
        action,
        project: Some(project),
        subject: Some(format!("job:{id}")),
        detail: serde_json::json!({ "reason": reason }),
    };
    tx.record(event, Utc::now())?;
    tx.commit()?;
    Ok(Some(ended))
}

/// With no other process active: removes catalog staging, scratch directories of jobs that are
/// not running, half-assembled job records and blobs no request refers to.
fn sweep(queue: &mut ExportQueue) -> Result<usize, QueueError> {
    let mut removed = queue.catalog.sweep_staging()?;
    let referenced: HashSet<String> = queue
        .store
        .conn()
        .query("SELECT DISTINCT sha256 FROM requests", crate::params![], |r| r.get(0))
        .map_err(queue.store.err())?
        .into_iter()
        .collect();
    removed += queue.blobs.sweep(&referenced)?;
    for dir in [queue.home.work_dir(), queue.home.jobs_dir()] {
        for entry in std::fs::read_dir(&dir).map_err(crate::home::HomeError::io("read", &dir))? {
            let entry = entry.map_err(crate::home::HomeError::io("read", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A job's lock is taken when it is claimed, before its worker holds the state
            // directory's lock: a held one is a live job's (and an unheld one goes here).
            if let Some(job) = name.strip_suffix(".lock").filter(|_| dir == queue.home.work_dir()) {
                if queue.home.job_liveness(job)? == JobLiveness::Ended {
                    removed += 1;
                }
                continue;
            }
            let leftover = if dir == queue.home.work_dir() { true } else { name.starts_with('.') };
            if leftover {
                let path = entry.path();
                let result = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                result.map_err(crate::home::HomeError::io("remove", &path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
