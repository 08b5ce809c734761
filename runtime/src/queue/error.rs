//! Why an export-queue operation was refused or failed.

use super::Status;
use crate::catalog::CatalogError;
use crate::home::HomeError;
use crate::job::JobError;
use crate::policy::PolicyError;
use crate::store::StoreError;

/// An export-queue operation that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No request has this number.
    #[error("no export request {0}")]
    UnknownRequest(i64),
    /// The move is not allowed from the request's current status.
    #[error("export request {id} is {from}; it cannot become {to}")]
    IllegalTransition {
        /// The request.
        id: i64,
        /// Its status.
        from: Status,
        /// The status asked for.
        to: Status,
    },
    /// The user is not a member of the request's project with the role the action needs.
    #[error("{user:?} is not a {role} in project {project:?}")]
    NotAllowed {
        /// The user.
        user: String,
        /// The role needed.
        role: &'static str,
        /// The project.
        project: String,
    },
    /// A checker tried to decide on output of a job they submitted.
    #[error("{checker:?} submitted the job behind export request {id} and may not review it")]
    OwnRequest {
        /// The checker.
        checker: String,
        /// The request.
        id: i64,
    },
    /// The same checker approved twice.
    #[error("{checker:?} has already approved export request {id}; another checker must review it")]
    AlreadyApproved {
        /// The checker.
        checker: String,
        /// The request.
        id: i64,
    },
    /// A failing request was approved without saying why.
    #[error("export request {id} failed a disclosure check; approving it needs a reason explaining the override")]
    OverrideWithoutReason {
        /// The request.
        id: i64,
    },
    /// A decision that needs a reason was given none.
    #[error("a reason is required to {action}")]
    ReasonRequired {
        /// What was being done.
        action: &'static str,
    },
    /// Only the researcher who submitted the job may change the request's text.
    #[error("only {owner:?}, who submitted the job, may {action} export request {id}")]
    NotOwner {
        /// The submitting researcher.
        owner: String,
        /// What was being done.
        action: &'static str,
        /// The request.
        id: i64,
    },
    /// The description may no longer change: a checker has started reviewing.
    #[error("export request {id} is already under review; its description can change only when changes are requested")]
    UnderReview {
        /// The request.
        id: i64,
    },
    /// A released file differs from what the job wrote: the blob store was tampered with.
    #[error("the stored file of export request {id} does not match its checksum; it was not released")]
    Tampered {
        /// The request.
        id: i64,
    },
    /// The user already has as many running jobs as the policy allows (rule 10).
    #[error("{user:?} already has {running} running jobs; the policy allows at most {limit} at once")]
    TooManyJobs {
        /// The user.
        user: String,
        /// Their running jobs, in any project.
        running: u32,
        /// The policy's `max_concurrent_jobs_per_user`.
        limit: u32,
    },
    /// The user has submitted as many jobs to the project in the last 24 hours as the policy
    /// allows (`max_jobs_per_day`).
    #[error(
        "{user:?} has submitted {submitted} jobs to project {project:?} in the last 24 hours; the policy allows {limit}"
    )]
    DailyQuota {
        /// The user.
        user: String,
        /// The project.
        project: String,
        /// Jobs they submitted to it in the last 24 hours.
        submitted: u32,
        /// The policy's `max_jobs_per_day`.
        limit: u32,
    },
    /// The user has uploaded as many modules, or as many bytes of modules, to the project in the
    /// last 24 hours as the policy allows (`max_uploads_per_day`, `max_upload_mb_per_day`).
    #[error("{user:?} has uploaded {used} to project {project:?} in the last 24 hours; the policy allows {limit}")]
    UploadQuota {
        /// The user.
        user: String,
        /// The project.
        project: String,
        /// What they uploaded: "12 modules", "900 MiB of modules and this one of 200 MiB".
        used: String,
        /// The limit, in the same words.
        limit: String,
    },
    /// The user already has as many jobs waiting as the service allows.
    #[error("{user:?} already has {queued} jobs waiting; at most {limit} may wait at once")]
    QueueFull {
        /// The user.
        user: String,
        /// Their queued jobs.
        queued: u32,
        /// The limit.
        limit: u32,
    },
    /// The process running a job lost the job's lock before recording its end (its
    /// connection to the database was cut): another process may have ended the job since, so
    /// this one records nothing.
    #[error("job {id} lost its lock before its end was recorded; its outputs are not kept")]
    LockLost {
        /// The job.
        id: String,
    },
    /// A queued job could no longer start.
    #[error("job {id} could not start: {why}")]
    Refused {
        /// The job.
        id: String,
        /// Why.
        why: String,
    },
    /// A publication could not be registered as given; the message says which field is wrong.
    #[error("publication {field}: {problem}")]
    BadPublication {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A released file cannot be written where it was asked for.
    #[error("cannot release into {}: {why}", path.display())]
    ReleaseTarget {
        /// Where it was to go.
        path: std::path::PathBuf,
        /// Why not.
        why: String,
    },
    /// The project's membership could not be read.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The job could not be run.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state directory failed.
    #[error(transparent)]
    Home(#[from] HomeError),
}

impl QueueError {
    /// Whether the request itself was at fault (exit code 2), rather than the host.
    pub fn is_bad_input(&self) -> bool {
        match self {
            QueueError::Job(e) => e.is_bad_input(),
            QueueError::Store(_) | QueueError::Home(_) | QueueError::Catalog(_) | QueueError::Tampered { .. } => false,
            _ => true,
        }
    }
}
