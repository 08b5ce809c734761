//! The reviewer's view: everything about a job and its outputs, for the project's checkers and
//! operators (never for the job's own submitter). Guest text is in it as data; whoever prints
//! or renders it escapes it ([`crate::untrusted`]).

use serde::Serialize;

use crate::job::JobRecord;
use crate::queue::{ExportRequest, JobRow};

/// An export request in full, as stored — but for its manifest entry, every cell of which the
/// report already judges (and which can be as large as the export cap).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ReviewerRequest(ExportRequest);

impl ReviewerRequest {
    /// `request` as a reviewer sees it.
    pub fn new(request: &ExportRequest) -> ReviewerRequest {
        ReviewerRequest(request.clone())
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
