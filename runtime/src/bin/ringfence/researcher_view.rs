//! The researcher's view of jobs and requests as lines on a terminal, for `ringfence run` and
//! `ringfence remote`: the same facts the service shows a researcher, every text escaped.

use ringfence::untrusted::shown;
use ringfence::view::{ResearcherJob, ResearcherRequest};

/// One request on one line: number, kind, outcome, the checks it did not pass, status.
pub(crate) fn request_line(r: &ResearcherRequest) -> String {
    let outcome = r.outcome.map_or("not checked".to_string(), |o| o.to_string());
    let flagged = match &r.not_passed {
        Some(checks) if !checks.is_empty() => {
            format!(" ({})", checks.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "))
        }
        _ => String::new(),
    };
    let file = r.file.as_deref().map(|f| format!(", released as {}", shown(f))).unwrap_or_default();
    format!("#{} {}: {outcome}{flagged}, {}{file}", r.id, r.kind, r.status)
}

/// A job: its state, times and requests.
pub(crate) fn print_job(job: &ResearcherJob) {
    println!("job       {}", job.id);
    println!("project   {}", shown(&job.project));
    println!("state     {}", job.state);
    if let Some(position) = job.position {
        println!("queued    at position {position}");
    }
    if let Some(at) = job.submitted_at {
        println!("submitted {at}");
    }
    if let Some(at) = job.ended_at {
        println!("ended     {at}");
    }
    if job.state.has_ended() {
        match job.exports.len() {
            0 => println!("exports   none"),
            n => println!("exports   {n} held for review"),
        }
    }
    for request in &job.exports {
        println!("export    {}", request_line(request));
    }
}

/// A request in full, as the researcher sees it.
pub(crate) fn print_request(r: &ResearcherRequest) {
    println!("request   {}", request_line(r));
    println!("project   {}", shown(&r.project));
    println!("job       {} by {}", r.job, shown(&r.submitted_by));
    if let Some(at) = r.created_at {
        println!("created   {at}");
    }
    let none = |text: &str| if text.is_empty() { "(none)".to_string() } else { shown(text).into_owned() };
    println!("describes {}", none(&r.description));
    println!("justifies {}", none(&r.justification));
    println!("reviews   {} different checker(s) must approve", r.reviews_required);
    for d in &r.decisions {
        let at = d.at.map(|at| format!(" at {at}")).unwrap_or_default();
        println!("decision  {} by {}{at}: {}", d.decision, shown(&d.checker), shown(&d.reason));
    }
}
