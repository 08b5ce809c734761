//! Running a job to its end: admitting it (the per-user limit, the job row and its audit entry),
//! then executing it, storing its outputs as requests and checking them.

use chrono::{NaiveDate, Utc};

use super::{BUSY_JOBS, ExportQueue, JobRun, QueueError, ingest, now};
use crate::audit::{Action, Event};
use crate::job::{self, JobRequest, Prepared, ScriptRecord};
use crate::policy::Policy;
use crate::sandbox::Sandbox;

/// How a newly recorded job starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Now: refused when its user is at the policy's limit of running jobs.
    Running,
    /// When the scheduler gets to it.
    Queued,
}

/// Refuses `request` when its user has submitted the policy's `max_jobs_per_day` jobs to the
/// project in the last 24 hours, whatever became of them.
pub(super) fn within_daily_quota(
    conn: &crate::store::Connection,
    store: &crate::store::Store,
    request: &JobRequest<'_>,
) -> Result<(), QueueError> {
    let policy = request.policy;
    let day_ago = (Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let submitted: u32 = conn
        .query_row(
            "SELECT COUNT(*) FROM jobs WHERE username = ?1 AND project = ?2 AND submitted_at > ?3",
            crate::params![request.user, policy.project.id, day_ago],
            |r| r.get(0),
        )
        .map_err(store.err())?;
    if submitted >= policy.limits.max_jobs_per_day {
        return Err(QueueError::DailyQuota {
            user: request.user.to_string(),
            project: policy.project.id.clone(),
            submitted,
            limit: policy.limits.max_jobs_per_day,
        });
    }
    Ok(())
}

impl ExportQueue {
    /// Records new job `id` as running or queued, with its `job.submitted` audit entry, in one
    /// transaction; refused when the user is at the policy's `max_jobs_per_day` for the project
    /// (counted over the last 24 hours, whatever became of the jobs).
    pub(super) fn admit(
        &self,
        id: &str,
        request: &JobRequest<'_>,
        module_sha256: &str,
        script: Option<&ScriptRecord>,
        admission: Admission,
    ) -> Result<(), QueueError> {
        let policy = request.policy;
        let disclosure = serde_json::to_string(&policy.disclosure).map_err(|e| self.store.corrupt("disclosure", e))?;
        let args = serde_json::to_string(request.args).map_err(|e| self.store.corrupt("arguments", e))?;
        let limit = policy.limits.max_concurrent_jobs_per_user;
        let wrap = self.store.err();
        let mut tx = self.store.audited()?;
        if admission == Admission::Running {
            let running: u32 = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM jobs WHERE username = ?1 AND {BUSY_JOBS}"),
                    crate::params![request.user],
                    |r| r.get(0),
                )
                .map_err(&wrap)?;
            if running >= limit {
                return Err(QueueError::TooManyJobs { user: request.user.to_string(), running, limit });
            }
        }
        within_daily_quota(&tx, &self.store, request)?;
        let status = if admission == Admission::Running { "running" } else { "queued" };
        tx.execute(
            "INSERT INTO jobs (id, project, username, module_sha256, policy_sha256, disclosure, args, max_running, status,
                 submitted_at, runtime, script_sha256, retries_left)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            crate::params![
                id,
                policy.project.id,
                request.user,
                module_sha256,
                policy.sha256,
                disclosure,
                args,
                limit,
                status,
                now(),
                script.map(|s| s.runtime.as_str()),
                script.map(|s| s.sha256.as_str()),
                u32::from(policy.limits.retry_interrupted)
            ],
        )
        .map_err(&wrap)?;
        let event = Event {
            actor: request.user,
            action: Action::JobSubmitted,
            project: Some(&policy.project.id),
            subject: Some(format!("job:{id}")),
            detail: serde_json::json!({
                "module_sha256": module_sha256,
                "script": script,
                "policy_sha256": policy.sha256,
                "args": request.args,
                "status": status,
            }),
        };
        tx.record(event, Utc::now())?;
        tx.commit()?;
        Ok(())
    }

    /// Runs a job now (see [`job::run`]), recording its start and end in the audit log, and
    /// makes a checked export request of every file it exported. A user who already has the
    /// policy's `max_concurrent_jobs_per_user` running jobs (in any project: rule 10 limits the
    /// person) is refused; the service queues instead ([`ExportQueue::enqueue`]).
    pub fn run_job(
        &mut self,
        sandbox: &Sandbox,
        request: &JobRequest<'_>,
        today: NaiveDate,
    ) -> Result<JobRun, QueueError> {
        let _writing = self.home.lock_shared()?;
        job::authorize(request, today)?;
        within_daily_quota(self.store.conn(), &self.store, request)?;
        self.count_upload(request)?;
        let lock = self.home.job_lock(&job::new_id())?;
        let prepared = job::prepare(&self.home, &self.catalog, sandbox, request, today, lock)?;
        self.admit(&prepared.id, request, prepared.module_sha256(), prepared.script(), Admission::Running)?;
        self.finish(sandbox, request, prepared)
    }

    /// Executes a prepared, admitted job, stores its outputs as requests and checks them.
    pub(super) fn finish(
        &mut self,
        sandbox: &Sandbox,
        request: &JobRequest<'_>,
        prepared: Prepared,
    ) -> Result<JobRun, QueueError> {
        let policy: &Policy = request.policy;
        let record = match job::execute(&self.home, sandbox, request, &prepared) {
            Ok(record) => record,
            Err(err) => {
                ingest::ended_without_record(self, &prepared.id, &policy.project.id, "host_error", &err.to_string())?;
                return Err(err.into());
            }
        };
        let ids = ingest::ingest(self, &record, &policy.disclosure, ingest::Recorder::Owner(prepared.lock()))?;
        // The job's lock is held until its outputs are checked: recovery in another process
        // leaves the pending requests of a live job to it.
        ingest::check_pending(self, &ids)?;
        drop(prepared);
        let requests = ids.iter().map(|&id| self.get(id)).collect::<Result<_, _>>()?;
        Ok(JobRun { record, requests })
    }
}
