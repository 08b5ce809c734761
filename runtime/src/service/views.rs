//! What each role sees of an export request. Checkers and operators see everything the checks
//! found; researchers see each check's outcome and suggestion but never the cells and counts
//! behind it (those are what is under review).

use serde::Serialize;

use crate::disclosure::{Outcome, Report};
use crate::policy::Role;
use crate::queue::{Decision, ExportRequest, Status};

/// One check as a researcher sees it.
#[derive(Debug, Serialize)]
pub(crate) struct CheckSummary {
    check: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggestion: Option<String>,
}

/// An export request as the caller may see it.
#[derive(Debug, Serialize)]
pub(crate) struct RequestView {
    id: i64,
    project: String,
    job: String,
    submitted_by: String,
    file: String,
    size: u64,
    sha256: String,
    kind: String,
    description: String,
    justification: String,
    status: Status,
    outcome: Option<Outcome>,
    created_at: String,
    updated_at: String,
    decisions: Vec<Decision>,
    /// Researchers: each check's outcome and suggestion.
    checks: Vec<CheckSummary>,
    /// Checkers and operators: the full report, with failing cells and the suggested suppression.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
}

impl RequestView {
    /// `request` as someone holding `roles` in its project sees it.
    pub(crate) fn new(request: ExportRequest, roles: &[Role]) -> RequestView {
        let reviewer = roles.iter().any(|r| r.sees_findings());
        let checks = request
            .report
            .iter()
            .flat_map(|r| &r.results)
            .map(|r| CheckSummary {
                check: r.check.clone(),
                outcome: r.outcome,
                suggestion: r.suggestion.clone().filter(|_| r.outcome != Outcome::Pass),
            })
            .collect();
        RequestView {
            id: request.id,
            project: request.project,
            job: request.job,
            submitted_by: request.submitted_by,
            file: request.file,
            size: request.size,
            sha256: request.sha256,
            kind: request.kind,
            description: request.description,
            justification: request.justification,
            status: request.status,
            outcome: request.outcome,
            created_at: request.created_at,
            updated_at: request.updated_at,
            decisions: request.decisions,
            checks,
            report: if reviewer { request.report } else { None },
        }
    }
}
