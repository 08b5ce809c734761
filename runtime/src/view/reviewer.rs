//! The reviewer's view: everything about a job and its outputs, for the project's checkers and
//! operators (never for the job's own submitter). Guest text is in it as data; whoever prints
//! or renders it escapes it ([`crate::untrusted`]).

use ringfence_sdk::manifest::OutputKind;
use serde::Serialize;

use crate::disclosure::{Outcome, Report};
use crate::job::{JobRecord, MountedDataset};
use crate::queue::{Decision, ExportRequest, JobRow, Status};

/// An export request in full, but for its manifest entry (the report holds what the checks
/// made of it).
#[derive(Debug, Clone, Serialize)]
pub struct ReviewerRequest {
    /// The request's number.
    pub id: i64,
    /// The project.
    pub project: String,
    /// The job that wrote the file.
    pub job: String,
    /// The researcher who submitted the job.
    pub submitted_by: String,
    /// SHA-256 of the job's module.
    pub module_sha256: String,
    /// SHA-256 of the policy the job ran under.
    pub policy_sha256: String,
    /// The data the job saw.
    pub datasets: Vec<MountedDataset>,
    /// The file's name under `/export/` (guest text).
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// What the manifest says it is.
    pub kind: OutputKind,
    /// What the guest's manifest says about it (guest text).
    pub guest_description: String,
    /// The researcher's description.
    pub description: String,
    /// The researcher's justification.
    pub justification: String,
    /// Why the job's manifest could not be used, if it could not.
    pub manifest_problem: Option<String>,
    /// Where it stands.
    pub status: Status,
    /// The checks' overall outcome.
    pub outcome: Option<Outcome>,
    /// How many different checkers must approve.
    pub reviews_required: u32,
    /// When it was created (RFC 3339, microseconds).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Checkers' decisions, oldest first.
    pub decisions: Vec<Decision>,
    /// The full report: every check with its findings, and the suggested suppression.
    pub report: Option<Report>,
}

impl ReviewerRequest {
    /// `request` as a reviewer sees it.
    pub fn new(request: &ExportRequest) -> ReviewerRequest {
        let r = request.clone();
        ReviewerRequest {
            id: r.id,
            project: r.project,
            job: r.job,
            submitted_by: r.submitted_by,
            module_sha256: r.module_sha256,
            policy_sha256: r.policy_sha256,
            datasets: r.datasets,
            file: r.file,
            size: r.size,
            sha256: r.sha256,
            kind: r.kind,
            guest_description: r.guest_description,
            description: r.description,
            justification: r.justification,
            manifest_problem: r.manifest_problem,
            status: r.status,
            outcome: r.outcome,
            reviews_required: r.reviews_required,
            created_at: r.created_at,
            updated_at: r.updated_at,
            decisions: r.decisions,
            report: r.report,
        }
    }
}

/// A job in full: its row, its queue position, the record of its run (exit status, times,
/// memory, captured output sizes, exported and discarded files) and its requests.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewerJob {
    /// The job as the job table has it (exact status and times).
    #[serde(flatten)]
    pub job: JobRow,
    /// Its place in the queue while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The record of its run, once it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<JobRecord>,
    /// The export requests made from its outputs.
    pub exports: Vec<ReviewerRequest>,
}

impl ReviewerJob {
    /// `job` as a reviewer sees it.
    pub fn new(
        job: &JobRow,
        position: Option<u64>,
        requests: &[ExportRequest],
        record: Option<&JobRecord>,
    ) -> ReviewerJob {
        ReviewerJob {
            job: job.clone(),
            position,
            record: record.cloned(),
            exports: requests.iter().map(ReviewerRequest::new).collect(),
        }
    }
}
