//! The reviewer's view: everything about a job and its outputs, for the project's checkers and
//! operators (never for the job's own submitter). Guest text is in it as data; whoever prints
//! or renders it escapes it ([`crate::untrusted`]).
//!
//! Reviews are independent, as in a four-eyes review they must be: while a request is under
//! review, the decisions (and reasons) other checkers made in the current round are withheld
//! from a viewer who has not decided in it yet; only how many approvals it has is shown. Once
//! the viewer has decided, or the request has left review, every decision is shown.

use serde::Serialize;

use crate::job::JobRecord;
use crate::queue::{ExportRequest, JobRow, Status};

/// An export request in full, as stored, but for other checkers' decisions of the current
/// round while the viewer has not yet decided.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewerRequest {
    #[serde(flatten)]
    request: ExportRequest,
    /// Approvals in the current round (of `reviews_required`).
    approvals: u32,
    /// Decisions of other checkers in the current round, withheld until the viewer decides.
    withheld_decisions: usize,
    /// Whether the viewer has decided in the current round (and so is not asked again).
    decided: bool,
}

impl ReviewerRequest {
    /// `request` as reviewer `viewer` sees it.
    pub fn new(request: &ExportRequest, viewer: &str) -> ReviewerRequest {
        let round = request.round_start();
        let decided = request.decisions[round..].iter().any(|d| d.checker == viewer);
        let approvals = u32::try_from(request.current_approvals().len()).unwrap_or(u32::MAX);
        let mut shown = request.clone();
        let under_review = request.status == Status::Checked;
        if under_review && !decided {
            shown.decisions.truncate(round);
        }
        let withheld_decisions = request.decisions.len() - shown.decisions.len();
        ReviewerRequest { request: shown, approvals, withheld_decisions, decided }
    }

    /// The request, with the decisions the viewer may see.
    pub fn request(&self) -> &ExportRequest {
        &self.request
    }

    /// Approvals in the current round.
    pub fn approvals(&self) -> u32 {
        self.approvals
    }

    /// How many decisions of other checkers are withheld.
    pub fn withheld_decisions(&self) -> usize {
        self.withheld_decisions
    }

    /// Whether the viewer has decided in the current round.
    pub fn decided(&self) -> bool {
        self.decided
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
    /// `job` as reviewer `viewer` sees it.
    pub fn new(
        job: &JobRow,
        position: Option<u64>,
        requests: &[ExportRequest],
        record: Option<&JobRecord>,
        viewer: &str,
    ) -> ReviewerJob {
        ReviewerJob {
            job: job.clone(),
            position,
            record: record.cloned(),
            exports: requests.iter().map(|r| ReviewerRequest::new(r, viewer)).collect(),
        }
    }
}
