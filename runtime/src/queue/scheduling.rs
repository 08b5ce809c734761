//! Jobs that wait their turn (rule 10 in the service): a submitted job is stored as `queued`
//! and starts when its user has fewer running jobs than the policy allows and the machine has a
//! free worker. Queued jobs live in the state database, so they survive a restart.

use chrono::{NaiveDate, Utc};

use super::run::{self, Admission};
use super::{BUSY_JOBS, ExportQueue, JobRow, JobRun, QueueError, ingest};
use crate::audit::{Action, Event};
use crate::home::JobLock;
use crate::job::{self, JobRequest, ModuleSource, ScriptSource};
use crate::policy::{OperatorCaps, Policy};
use crate::sandbox::Sandbox;

/// Jobs one user may have waiting at once, over all projects: each holds a kept module and a
/// row, and the daily quota alone would let a user queue a day's jobs in a second.
pub const MAX_QUEUED_PER_USER: u32 = 16;

impl ExportQueue {
    /// Accepts a job for later: authorises the user, refuses a user with
    /// [`MAX_QUEUED_PER_USER`] jobs waiting or past a daily quota (jobs, uploads), checks and
    /// keeps the module (a script: checks its runtime is installed and keeps the script), and
    /// stores the job as
    /// `queued` (with its audit entry). [`ExportQueue::start_next`] starts it.
    pub fn enqueue(
        &mut self,
        sandbox: &Sandbox,
        request: &JobRequest<'_>,
        today: NaiveDate,
    ) -> Result<JobRow, QueueError> {
        job::authorize(request, today)?;
        let queued: u32 = self
            .store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE username = ?1 AND status = 'queued'",
                crate::params![request.user],
                |r| r.get(0),
            )
            .map_err(self.store.err())?;
        if queued >= MAX_QUEUED_PER_USER {
            return Err(QueueError::QueueFull { user: request.user.to_string(), queued, limit: MAX_QUEUED_PER_USER });
        }
        // Before compiling: a user past the quota costs the host nothing.
        run::within_daily_quota(self.store.conn(), &self.store, request)?;
        self.count_upload(request)?;
        // A script's module is its runtime's interpreter, compiled when the runtime was
        // installed: only the script is kept now.
        let (module_sha256, script) = match request.module {
            ModuleSource::Script(source) => {
                let kept = job::keep_script(&self.home, source)?;
                (kept.installed.interpreter_sha256, Some(kept.record))
            }
            ModuleSource::Submitted(_) | ModuleSource::Kept(_) => {
                (job::load_module(&self.home, sandbox, request.module)?.sha256, None)
            }
        };
        let id = job::new_id();
        self.admit(&id, request, &module_sha256, script.as_ref(), Admission::Queued)?;
        self.job(&id)?.ok_or_else(|| QueueError::Store(self.store.corrupt(format!("job {id}"), "vanished")))
    }

    /// The job's place in the queue (1 = next), while it is queued.
    pub fn position(&self, id: &str) -> Result<Option<u64>, QueueError> {
        let wrap = self.store.err();
        let position: Option<i64> = self
            .store
            .conn()
            .query_opt(
                "SELECT (SELECT COUNT(*) FROM jobs q WHERE q.status = 'queued' AND q.id <= j.id)
                 FROM jobs j WHERE j.id = ?1 AND j.status = 'queued'",
                crate::params![id],
                |r| r.get(0),
            )
            .map_err(wrap)?;
        Ok(position.and_then(|p| u64::try_from(p).ok()))
    }

    /// Starts the oldest queued job whose user is below their limit: takes its lock, marks it
    /// `running` (with its audit entry, which names this process) and returns the lock for
    /// [`ExportQueue::run_started`]. The caller has a free slot to run it in. The user's running
    /// jobs are counted in the same write transaction as the start, so the limit holds across
    /// every process that starts jobs (the service and any number of `ringfence worker`s).
    pub fn start_next(&mut self) -> Result<Option<JobLock>, QueueError> {
        let wrap = self.store.err();
        let mut tx = self.store.audited()?;
        let next: Option<(String, String, String)> = tx
            .query_opt(
                &format!(
                    "SELECT id, project, username FROM jobs j WHERE status = 'queued'
                       AND (SELECT COUNT(*) FROM jobs WHERE username = j.username AND {BUSY_JOBS}) < j.max_running
                     ORDER BY id LIMIT 1"
                ),
                crate::params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(&wrap)?;
        let Some((id, project, user)) = next else { return Ok(None) };
        // Inside the write transaction: a queued job's lock is taken only here, so no other
        // process holds it, and the lock is held before the job is seen as running.
        let lock = self.home.job_lock(&id)?;
        tx.execute("UPDATE jobs SET status = 'running' WHERE id = ?1", crate::params![id]).map_err(&wrap)?;
        let event = Event {
            actor: "system",
            action: Action::JobStarted,
            project: Some(&project),
            subject: Some(format!("job:{id}")),
            detail: serde_json::json!({ "user": user, "pid": std::process::id() }),
        };
        tx.record(event, Utc::now())?;
        tx.commit()?;
        Ok(Some(lock))
    }

    /// Runs a job [`ExportQueue::start_next`] started, under its project's registered policy as
    /// it is now. A job that can no longer run (the policy expired or no longer grants its
    /// user, a dataset changed) ends as `refused`, with the reason in the audit log.
    pub fn run_started(
        &mut self,
        sandbox: &Sandbox,
        lock: JobLock,
        caps: &OperatorCaps,
        today: NaiveDate,
    ) -> Result<JobRun, QueueError> {
        let _writing = self.home.lock_shared()?;
        let id = lock.id().to_string();
        let wrap = self.store.err();
        type Row = (String, String, String, String, Option<String>, Option<String>);
        let (project, user, module_sha256, args, runtime, script_sha256): Row = self
            .store
            .conn()
            .query_row(
                "SELECT project, username, module_sha256, args, runtime, script_sha256 FROM jobs WHERE id = ?1",
                crate::params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .map_err(&wrap)?;
        let refuse = |queue: &mut ExportQueue, why: String| {
            ingest::ended_without_record(queue, &id, &project, "refused", &why)?;
            Err(QueueError::Refused { id: id.clone(), why })
        };
        let args: Vec<String> = match serde_json::from_str(&args) {
            Ok(args) => args,
            Err(e) => return refuse(self, format!("its arguments are unreadable: {e}")),
        };
        let policy = match Policy::load(&self.registry.policy_file(&project), caps, &self.catalog, today) {
            Ok(policy) => policy,
            Err(e) => return refuse(self, format!("the project's policy cannot be used: {e}")),
        };
        let disclosure = serde_json::to_string(&policy.disclosure).map_err(|e| self.store.corrupt("disclosure", e))?;
        self.store
            .conn()
            .execute(
                "UPDATE jobs SET policy_sha256 = ?2, disclosure = ?3 WHERE id = ?1",
                crate::params![id, policy.sha256, disclosure],
            )
            .map_err(&wrap)?;
        let script = match (&runtime, &script_sha256) {
            (Some(runtime), Some(sha256)) => match job::kept_script(&self.home, sha256) {
                Ok(text) => Some((runtime, text)),
                Err(e) => return refuse(self, e.to_string()),
            },
            _ => None,
        };
        let module = match &script {
            Some((runtime, text)) => ModuleSource::Script(ScriptSource { runtime, text }),
            None => ModuleSource::Kept(&module_sha256),
        };
        let request = JobRequest { policy: &policy, user: &user, module, args: &args };
        let prepared = match job::prepare(&self.home, &self.catalog, sandbox, &request, today, lock) {
            Ok(prepared) => prepared,
            Err(e) => return refuse(self, e.to_string()),
        };
        self.finish(sandbox, &request, prepared)
    }
}
