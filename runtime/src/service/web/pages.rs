//! The checker pages' HTML, rendered on the server with maud (which escapes every value).
//! No scripts: the Content-Security-Policy allows none, and forms do all the work.

use maud::{DOCTYPE, Markup, html};

use super::table::TableView;
use crate::disclosure::Outcome;
use crate::queue::{ALL_STATUSES, ExportRequest, Status};
use crate::untrusted::shown;
use crate::view::ReviewerRequest;

/// Who is looking, for the page header and its forms.
pub(crate) struct Viewer<'a> {
    /// The logged-in user.
    pub user: &'a str,
    /// The session's CSRF token, carried by every form.
    pub csrf: &'a str,
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn outcome_class(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Pass) => "pass",
        Some(Outcome::Review) => "review",
        Some(Outcome::Fail) => "fail",
        None => "none",
    }
}

fn outcome_badge(outcome: Option<Outcome>) -> Markup {
    html! {
        span class={ "badge " (outcome_class(outcome)) } {
            @match outcome { Some(o) => (o), None => "not checked" }
        }
    }
}

/// The frame of every page.
fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ringfence" }
                link rel="stylesheet" href="/checker/style.css";
            }
            body {
                header {
                    a class="brand" href="/checker/" { "ringfence · output checking" }
                    @if let Some(viewer) = viewer {
                        form class="logout" method="post" action="/checker/logout" {
                            span id="user" { (viewer.user) }
                            (csrf_field(viewer.csrf))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form.
pub(crate) fn login(error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Log in" }
        p { "Paste your personal token (" code { "ringfence token issue" } "). It stays on the server; your browser keeps only a session cookie." }
        @if let Some(error) = error { p class="error" role="alert" { (error) } }
        form method="post" action="/checker/login" {
            label for="token" { "Personal token" }
            input type="password" id="token" name="token" autocomplete="off" required;
            button type="submit" id="login" { "Log in" }
        }
    };
    layout("Log in", None, body)
}

/// Filters of the queue page.
pub(crate) struct QueueFilter<'a> {
    /// The projects the viewer checks.
    pub projects: &'a [String],
    /// The chosen project, if one.
    pub project: Option<&'a str>,
    /// The chosen status, if one.
    pub status: Option<&'a str>,
}

/// The export queue of the projects the viewer checks.
pub(crate) fn queue(viewer: &Viewer<'_>, filter: &QueueFilter<'_>, requests: &[ExportRequest]) -> Markup {
    let body = html! {
        h1 { "Export queue" }
        @if filter.projects.is_empty() {
            p class="error" { "You are not a checker in any project." }
        }
        form class="filters" method="get" action="/checker/" {
            label for="project" { "Project" }
            select id="project" name="project" {
                option value="" { "all" }
                @for project in filter.projects {
                    option value=(project) selected[filter.project == Some(project.as_str())] { (project) }
                }
            }
            label for="status" { "Status" }
            select id="status" name="status" {
                option value="" { "all" }
                @for status in ALL_STATUSES {
                    option value=(status.as_str()) selected[filter.status == Some(status.as_str())] { (status.as_str()) }
                }
            }
            button type="submit" { "Filter" }
        }
        table class="queue" {
            thead { tr { th { "#" } th { "Project" } th { "File" } th { "Submitted by" } th { "Checks" } th { "Status" } th { "Created" } } }
            tbody {
                @for r in requests {
                    tr {
                        td { a href={ "/checker/requests/" (r.id) } { "#" (r.id) } }
                        td { (r.project) }
                        td { a href={ "/checker/requests/" (r.id) } { (shown(&r.file)) } }
                        td { (r.submitted_by) }
                        td { (outcome_badge(r.outcome)) }
                        td class="status" {
                            (r.status.as_str())
                            @if r.status == Status::Checked && r.reviews_required > 1 {
                                " · " (r.current_approvals().len()) " of " (r.reviews_required) " approvals"
                            }
                        }
                        td { (r.created_at) }
                    }
                }
            }
        }
        @if requests.is_empty() { p { "No requests." } }
    };
    layout("Export queue", Some(viewer), body)
}

fn output_table(table: &TableView) -> Markup {
    html! {
        table class="output" {
            thead { tr { @for h in &table.header { th { (h) } } th { "Suggested" } } }
            tbody {
                @for row in &table.rows {
                    tr class=(outcome_class(row.outcome)) title=(row.messages.join("\n")) {
                        @for field in &row.fields { td { (field) } }
                        td { @if let Some(s) = &row.suppressed { "suppress (" (s) ")" } }
                    }
                }
            }
        }
        @if table.more > 0 { p { (table.more) " more rows not shown." } }
    }
}

/// What the request page shows besides the request itself.
pub(crate) struct RequestPage<'a> {
    /// The file laid out as a table, when it is one.
    pub table: Option<&'a TableView>,
    /// Whether the viewer may decide (a checker who did not submit the job, request under review).
    pub may_decide: bool,
    /// An error from the last form sent, shown above the forms.
    pub error: Option<&'a str>,
}

/// One export request: checks, the table with failing cells highlighted, the researcher's
/// description, the decisions so far, and the decision form.
pub(crate) fn request(viewer: &Viewer<'_>, view: &ReviewerRequest, page: &RequestPage<'_>) -> Markup {
    let r = view.request();
    let body = html! {
        p { a href="/checker/" { "← Export queue" } }
        h1 { "Request #" (r.id) ": " (shown(&r.file)) }
        dl class="facts" {
            dt { "Project" } dd { (r.project) }
            dt { "Status" } dd id="status" { (r.status.as_str()) }
            dt { "Checks" } dd id="outcome" { (outcome_badge(r.outcome)) }
            dt { "Kind" } dd { (r.kind) }
            dt { "Submitted by" } dd { (r.submitted_by) }
            dt { "Job" } dd { code { (r.job) } }
            dt { "Size" } dd { (r.size) " bytes" }
            dt { "SHA-256" } dd { code { (r.sha256) } }
            dt { "Approvals" } dd id="approvals" { (view.approvals()) " of " (r.reviews_required) }
        }
        h2 { "Researcher's description" }
        p class="description" { @if r.description.is_empty() { em { "none" } } @else { (shown(&r.description)) } }
        h2 { "Justification" }
        p class="description" { @if r.justification.is_empty() { em { "none" } } @else { (shown(&r.justification)) } }
        h2 { "What the analysis says it is" }
        p class="description guest" { @if r.guest_description.is_empty() { em { "nothing" } } @else { (shown(&r.guest_description)) } }
        @if let Some(problem) = &r.manifest_problem { p class="error" { "Manifest: " (shown(problem)) } }
        h2 { "Checks" }
        @if let Some(report) = &r.report {
            table class="checks" {
                thead { tr { th { "Check" } th { "Outcome" } th { "Found" } th { "Suggestion" } } }
                tbody {
                    @for c in &report.results {
                        tr class=(outcome_class(Some(c.outcome))) {
                            td { (c.check) }
                            td { (outcome_badge(Some(c.outcome))) }
                            td {
                                (shown(&c.summary))
                                @if !c.findings.is_empty() {
                                    details {
                                        summary { (c.findings.len()) " findings" }
                                        ul { @for f in c.findings.iter().take(200) { li { (shown(&f.message)) } } }
                                    }
                                }
                            }
                            td { @if let Some(s) = &c.suggestion { (shown(s)) } }
                        }
                    }
                }
            }
        } @else {
            p { "The checks have not run yet." }
        }
        @if !r.later_overlaps.is_empty() {
            h2 id="later" { "Later requests that differ from this one by a few units" }
            p { "Each later request failed differencing for these cells: releasing it and this one would reveal the units in between." }
            ul class="overlaps" {
                @for o in &r.later_overlaps {
                    li {
                        a href={ "/checker/requests/" (o.later) } { "Request #" (o.later) } ": "
                        (shown(&o.later_cell)) " and this request's " (shown(&o.cell)) " differ by " (o.units)
                        @if o.units == 1 { " unit" } @else { " units" }
                    }
                }
            }
        }
        h2 { "Output" }
        @match page.table {
            Some(table) => (output_table(table)),
            None => p { "Not a table the page can lay out; download it with " code { "ringfence exports show" } "." },
        }
        h2 { "Decisions" }
        @if view.withheld_decisions() > 0 {
            p id="withheld" {
                (view.withheld_decisions()) " decision"
                @if view.withheld_decisions() > 1 { "s" }
                " by other checkers in this round "
                @if view.withheld_decisions() > 1 { "are" } @else { "is" }
                " shown once you have decided: reviews are independent."
            }
        } @else if r.decisions.is_empty() { p { "None yet." } }
        ul class="decisions" {
            @for d in &r.decisions {
                li { (d.at) ": " strong { (d.checker) } " — " (d.decision) @if !d.reason.is_empty() { ": " (shown(&d.reason)) } }
            }
        }
        @if let Some(error) = page.error { p class="error" role="alert" id="error" { (error) } }
        @if page.may_decide {
            form class="decide" method="post" action={ "/checker/requests/" (r.id) "/decision" } {
                (csrf_field(viewer.csrf))
                label for="reason" { "Reason (needed to reject, to ask for changes, and to approve despite a failed check)" }
                textarea id="reason" name="reason" rows="3" {}
                div class="buttons" {
                    button type="submit" name="decision" value="approve" id="approve" { "Approve" }
                    button type="submit" name="decision" value="request_changes" id="request_changes" { "Request changes" }
                    button type="submit" name="decision" value="reject" id="reject" { "Reject" }
                }
            }
        }
    };
    layout(&format!("Request #{}", r.id), Some(viewer), body)
}

/// A refusal or failure, as a page.
pub(crate) fn problem(viewer: Option<&Viewer<'_>>, message: &str) -> Markup {
    layout(
        "Problem",
        viewer,
        html! { h1 { "Sorry" } p class="error" role="alert" { (message) } p { a href="/checker/" { "Back to the queue" } } },
    )
}
