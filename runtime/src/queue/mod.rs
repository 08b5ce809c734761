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
mod publications;
mod recovery;
mod request;
mod review;
mod run;
mod scheduling;
mod status;
mod uploads;

use std::path::Path;

use chrono::{SecondsFormat, Utc};

use crate::catalog::Catalog;
use crate::home::Home;
use crate::job::JobRecord;
use crate::policy::Registry;
use crate::store::{DecodeError, Row, Store};

use blobs::Blobs;
pub use error::QueueError;
pub use publications::{NewPublication, Publication};
pub use recovery::Recovered;
pub use request::{Decision, ExportRequest, LaterOverlap, Verdict};
pub use scheduling::MAX_QUEUED_PER_USER;
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
    /// `queued`, `running`, `interrupted`, `refused` (could not start), `host_error`, or the
    /// guest's status (`succeeded`, `exit: 1`, …).
    pub status: String,
    /// When it was accepted (RFC 3339).
    pub submitted_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
}

impl JobRow {
    fn from_row(r: &Row) -> Result<JobRow, DecodeError> {
        Ok(JobRow {
            id: r.get(0)?,
            project: r.get(1)?,
            user: r.get(2)?,
            status: r.get(3)?,
            submitted_at: r.get(4)?,
            finished_at: r.get(5)?,
        })
    }
}

/// The columns [`JobRow::from_row`] reads.
const JOB_COLUMNS: &str = "id, project, username, status, submitted_at, finished_at";

/// Jobs that hold a worker and count towards their user's running jobs: those running, and
/// those that ended with outputs still being checked (a researcher sees both as `running`, so the
/// end of a job and of its checks become visible, and free a slot, at one moment).
const BUSY_JOBS: &str = "(status = 'running' OR id IN (SELECT job FROM requests WHERE status = 'pending'))";

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
            .query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), crate::params![id], JobRow::from_row)
            .map_err(wrap)?;
        Ok(row)
    }

    /// Ends the jobs of dead processes as [`ExportQueue::open`] does (`interrupted`, requeued,
    /// or ingested if their records were written) and runs the checks they never ran, without
    /// sweeping the state directory's files: for a long-running worker, which outlives the
    /// other workers it shares the state directory with and looks often.
    pub fn recover_jobs(&mut self) -> Result<Recovered, QueueError> {
        recovery::recover_jobs(self)
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

    /// Request `id` with its decisions.
    pub fn get(&self, id: i64) -> Result<ExportRequest, QueueError> {
        request::load(self.store.conn(), &self.store, id)?.ok_or(QueueError::UnknownRequest(id))
    }

    /// Requests of `project` (or all) with `status` (or any), oldest first.
    pub fn list(&self, project: Option<&str>, status: Option<Status>) -> Result<Vec<ExportRequest>, QueueError> {
        Ok(request::list(&self.store, request::Filter { project, status, job: None })?)
    }

    /// The requests made from job `job`'s outputs, in file order.
    pub fn requests_of_job(&self, job: &str) -> Result<Vec<ExportRequest>, QueueError> {
        Ok(request::list(&self.store, request::Filter { job: Some(job), ..request::Filter::default() })?)
    }

    /// The bytes of request `id`'s file, for checkers; verified against its checksum.
    pub fn content(&self, request: &ExportRequest) -> Result<Vec<u8>, QueueError> {
        review::verified_content(self, request)
    }
}
