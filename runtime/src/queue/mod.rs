//! The export queue: every file a job leaves in `/export/` becomes an export request that passes
//! the automatic disclosure checks and enough output checkers before it can be released.
//!
//! State lives in the state database ([`crate::store`]); each request's file lives in the
//! content-addressed blob store. Every state change is one transaction together with its audit
//! entry. A process that dies at any point leaves the queue consistent: files are stored before
//! the transaction that refers to them, and [`ExportQueue::open`] finishes what a dead process
//! left — it closes jobs whose process is gone (recording the outputs of those that finished),
//! runs the checks on requests still pending and, when no other process is active, removes
//! staging files and unreferenced blobs.

mod blobs;
mod error;
mod ingest;
mod recovery;
mod request;
mod review;
mod status;

use std::path::Path;

use chrono::{NaiveDate, SecondsFormat, Utc};
use rusqlite::OptionalExtension;

use crate::audit::{self, Action, Event};
use crate::catalog::Catalog;
use crate::home::Home;
use crate::job::{self, JobRecord, JobRequest};
use crate::policy::Registry;
use crate::sandbox::Sandbox;
use crate::store::Store;

use blobs::Blobs;
pub use error::QueueError;
pub use recovery::Recovered;
pub use request::{Decision, ExportRequest, Verdict};
pub use status::{ALL as ALL_STATUSES, Status};

/// The export queue of one state directory.
#[derive(Debug)]
pub struct ExportQueue {
    home: Home,
    catalog: Catalog,
    store: Store,
    registry: Registry,
    blobs: Blobs,
    recovered: Recovered,
}

/// A job that ran, with the export requests made from its outputs.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The job's record.
    pub record: JobRecord,
    /// One request per exported file, checked.
    pub requests: Vec<ExportRequest>,
}

/// A job as the job table has it: where it stands, not what it did (that is its record).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRow {
    /// The job's id.
    pub id: String,
    /// Its project.
    pub project: String,
    /// The researcher who submitted it.
    pub user: String,
    /// `running`, `interrupted`, `host_error`, or the guest's status (`succeeded`, `exit: 1`, …).
    pub status: String,
    /// When it was accepted (RFC 3339).
    pub submitted_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
}

/// The current time as stored: RFC 3339, UTC, microseconds.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl ExportQueue {
    /// Opens the queue of the state directory at `root`, and recovers from any process that died
    /// while changing it.
    pub fn open(root: &Path) -> Result<ExportQueue, QueueError> {
        let mut queue = ExportQueue::connect(root)?;
        queue.recovered = recovery::recover(&mut queue)?;
        Ok(queue)
    }

    /// Opens another handle on a state directory this process has already opened (and so
    /// recovered) with [`ExportQueue::open`]: for a service that works on several requests at
    /// once, each on its own database connection.
    pub fn connect(root: &Path) -> Result<ExportQueue, QueueError> {
        let home = Home::open(root)?;
        Ok(ExportQueue {
            catalog: Catalog::open(root)?,
            store: Store::open(root)?,
            registry: Registry::open(root)?,
            blobs: Blobs::new(home.blobs_dir()),
            home,
            recovered: Recovered::default(),
        })
    }

    /// The job `id` as the job table has it.
    pub fn job(&self, id: &str) -> Result<Option<JobRow>, QueueError> {
        let wrap = self.store.err();
        let row = self
            .store
            .conn()
            .query_row(
                "SELECT id, project, user, status, submitted_at, finished_at FROM jobs WHERE id = ?1",
                [id],
                |r| {
                    Ok(JobRow {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        user: r.get(2)?,
                        status: r.get(3)?,
                        submitted_at: r.get(4)?,
                        finished_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(wrap)?;
        Ok(row)
    }

    /// What opening the queue had to clean up after dead processes.
    pub fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// The state database, for the audit log.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The state directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The registered policies.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs a job (see [`job::run`]), recording its start and end in the audit log, and makes
    /// a checked export request of every file it exported. A user who already has the policy's
    /// `max_concurrent_jobs_per_user` running jobs (in any project: rule 10 limits the person)
    /// is refused.
    pub fn run_job(
        &mut self,
        sandbox: &Sandbox,
        request: &JobRequest<'_>,
        today: NaiveDate,
    ) -> Result<JobRun, QueueError> {
        let _writing = self.home.lock_shared()?;
        let prepared = job::prepare(&self.home, &self.catalog, sandbox, request, today)?;
        let policy = request.policy;
        let disclosure = serde_json::to_string(&policy.disclosure).map_err(|e| self.store.corrupt("disclosure", e))?;
        let wrap = self.store.err();
        let tx = self.store.write()?;
        let running: u32 = tx
            .query_row("SELECT COUNT(*) FROM jobs WHERE user = ?1 AND status = 'running'", [request.user], |r| r.get(0))
            .map_err(&wrap)?;
        let limit = policy.limits.max_concurrent_jobs_per_user;
        if running >= limit {
            return Err(QueueError::TooManyJobs { user: request.user.to_string(), running, limit });
        }
        tx.execute(
            "INSERT INTO jobs (id, project, user, module_sha256, policy_sha256, disclosure, status, submitted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
            (
                &prepared.id,
                &policy.project.id,
                request.user,
                prepared.module_sha256(),
                &policy.sha256,
                &disclosure,
                now(),
            ),
        )
        .map_err(&wrap)?;
        let event = Event {
            actor: request.user,
            action: Action::JobSubmitted,
            project: Some(&policy.project.id),
            subject: Some(format!("job:{}", prepared.id)),
            detail: serde_json::json!({
                "module_sha256": prepared.module_sha256(),
                "policy_sha256": policy.sha256,
                "args": request.args,
            }),
        };
        audit::append(&tx, event, Utc::now()).map_err(&wrap)?;
        tx.commit().map_err(&wrap)?;

        let record = match job::execute(&self.home, sandbox, request, &prepared) {
            Ok(record) => record,
            Err(err) => {
                ingest::host_error(self, &prepared.id, &policy.project.id, &err.to_string())?;
                return Err(err.into());
            }
        };
        let ids = ingest::ingest(self, &record, &policy.disclosure)?;
        drop(prepared);
        ingest::check_pending(self, &ids)?;
        let requests = ids.iter().map(|&id| self.get(id)).collect::<Result<_, _>>()?;
        Ok(JobRun { record, requests })
    }

    /// Request `id` with its decisions.
    pub fn get(&self, id: i64) -> Result<ExportRequest, QueueError> {
        request::load(self.store.conn(), &self.store, id)?.ok_or(QueueError::UnknownRequest(id))
    }

    /// Requests of `project` (or all) with `status` (or any), oldest first.
    pub fn list(&self, project: Option<&str>, status: Option<Status>) -> Result<Vec<ExportRequest>, QueueError> {
        Ok(request::list(&self.store, project, status)?)
    }

    /// The bytes of request `id`'s file, for checkers; verified against its checksum.
    pub fn content(&self, id: i64) -> Result<Vec<u8>, QueueError> {
        let request = self.get(id)?;
        review::verified_content(self, &request)
    }
}
