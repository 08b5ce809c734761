//! What each person sees of jobs and export requests: the one place that decides it, used by
//! every surface (the HTTP API, the checker pages, `ringfence run`, `ringfence remote`).
//!
//! - A **researcher** sees, before release, only facts the host made that a guest cannot steer
//!   beyond the bound [`channel`] computes: the job's state in a closed set of words, times to
//!   the whole second, request ids, each output's kind and overall outcome, the names of the
//!   checks it did not pass (unless the policy hides them), the checkers' decisions, and the
//!   description and justification the researcher typed. File names, sizes, hashes, the guest's
//!   descriptions, exit statuses, byte counts, memory and exact times are never in it. After
//!   release the researcher also gets the file's name (and, by downloading, the file).
//! - A **reviewer** (a checker or operator of the project, on a job they did not submit) sees
//!   everything: the record of the run, the full report, the guest's own text.
//!
//! The choice between the two is [`Audience::of`]; the views are plain data, so what a
//! researcher can see is exactly what [`researcher`]'s types can hold.

pub mod channel;
pub mod researcher;
pub mod reviewer;

use serde::Serialize;

use crate::policy::Role;
use crate::queue::{ExportRequest, JobRow};

pub use researcher::{JobState, ResearcherJob, ResearcherRequest, WholeSecond};
pub use reviewer::{ReviewerJob, ReviewerRequest};

/// Who is looking at a job or request, as far as what they may see goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Sees host-made facts only until release ([`researcher`]).
    Researcher,
    /// Sees everything ([`reviewer`]).
    Reviewer,
}

impl Audience {
    /// How `user`, holding `roles` in the project, sees the output of a job `submitted_by`
    /// submitted: in full when they check or operate the project and did not submit the job
    /// themselves (nobody reviews, or reads the guest's words about, their own job).
    pub fn of(roles: &[Role], user: &str, submitted_by: &str) -> Audience {
        if user != submitted_by && roles.iter().any(|r| r.sees_findings()) {
            Audience::Reviewer
        } else {
            Audience::Researcher
        }
    }
}

/// An export request as its audience may see it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum RequestView {
    /// A researcher's view.
    Researcher(Box<ResearcherRequest>),
    /// A reviewer's view.
    Reviewer(Box<ReviewerRequest>),
}

impl RequestView {
    /// `request` as `viewer`, in `audience`, sees it.
    pub fn new(request: &ExportRequest, audience: Audience, viewer: &str) -> RequestView {
        match audience {
            Audience::Researcher => RequestView::Researcher(Box::new(ResearcherRequest::new(request))),
            Audience::Reviewer => RequestView::Reviewer(Box::new(ReviewerRequest::new(request, viewer))),
        }
    }
}

/// A job as its audience may see it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum JobView {
    /// A researcher's view.
    Researcher(ResearcherJob),
    /// A reviewer's view.
    Reviewer(Box<ReviewerJob>),
}

impl JobView {
    /// `job` (with its queue position and its requests, and for reviewers its record) as
    /// `viewer`, in `audience`, sees it.
    pub fn new(
        job: &JobRow,
        position: Option<u64>,
        requests: &[ExportRequest],
        record: Option<&crate::job::JobRecord>,
        audience: Audience,
        viewer: &str,
    ) -> JobView {
        match audience {
            Audience::Researcher => JobView::Researcher(ResearcherJob::new(job, position, requests)),
            Audience::Reviewer => {
                JobView::Reviewer(Box::new(ReviewerJob::new(job, position, requests, record, viewer)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Audience;
    use crate::policy::Role;

    #[test]
    fn nobody_sees_their_own_job_in_full() {
        assert_eq!(Audience::of(&[Role::Checker], "carol", "alice"), Audience::Reviewer);
        assert_eq!(Audience::of(&[Role::Operator], "olga", "alice"), Audience::Reviewer);
        assert_eq!(Audience::of(&[Role::Researcher, Role::Checker], "alice", "alice"), Audience::Researcher);
        assert_eq!(Audience::of(&[Role::Researcher], "bob", "alice"), Audience::Researcher);
        assert_eq!(Audience::of(&[], "mallory", "alice"), Audience::Researcher);
    }
}
