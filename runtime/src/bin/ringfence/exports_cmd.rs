//! `ringfence exports …`: the export queue on the host — list and inspect requests in full
//! (operators and checkers: whoever can read the state directory can read everything), decide
//! as a checker, describe and resubmit as the researcher, release approved outputs. Every
//! command that changes a request proves who acts ([`ActingAs`]); guest text is printed
//! escaped ([`untrusted::shown`]).

use std::path::PathBuf;

use clap::Subcommand;
use ringfence::disclosure::{Report, Suppression};
use ringfence::queue::{ExportQueue, ExportRequest, Status, Verdict};
use ringfence::untrusted;

use crate::acting::ActingAs;
use crate::{Cli, Outcome, shown};

/// Export-queue commands.
#[derive(Subcommand)]
pub(crate) enum ExportsCommand {
    /// List export requests, oldest first.
    List {
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
        /// Only requests with this status (pending, checked, approved, rejected, changes_requested, released).
        #[arg(long)]
        status: Option<Status>,
    },
    /// Everything about one request: metadata, check results, the table, decisions.
    Show {
        /// The request number.
        id: i64,
    },
    /// Approve a request as a checker (a failing request needs --reason to override).
    Approve {
        /// The request number.
        id: i64,
        /// Why; required to approve a request that failed a check.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        acting: ActingAs,
    },
    /// Reject a request as a checker; a fix needs a new job.
    Reject {
        /// The request number.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        acting: ActingAs,
    },
    /// Ask the researcher to change a request's description or justification.
    RequestChanges {
        /// The request number.
        id: i64,
        /// What should change.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        acting: ActingAs,
    },
    /// Set a request's description or justification (the submitting researcher, before review).
    Describe {
        /// The request number.
        id: i64,
        /// What the output is.
        #[arg(long)]
        description: Option<String>,
        /// Why it is safe and needed.
        #[arg(long)]
        justification: Option<String>,
        #[command(flatten)]
        acting: ActingAs,
    },
    /// Send a request back to the checkers after making the changes they asked for.
    Resubmit {
        /// The request number.
        id: i64,
        #[command(flatten)]
        acting: ActingAs,
    },
    /// Release an approved request (a researcher of the project): write its file,
    /// byte-identical, into a directory.
    Release {
        /// The request number.
        id: i64,
        /// Where to write the file.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        acting: ActingAs,
    },
}

impl ExportsCommand {
    /// How the command proves who acts, when it changes something.
    fn acting(&self) -> Option<&ActingAs> {
        match self {
            ExportsCommand::List { .. } | ExportsCommand::Show { .. } => None,
            ExportsCommand::Approve { acting, .. }
            | ExportsCommand::Reject { acting, .. }
            | ExportsCommand::RequestChanges { acting, .. }
            | ExportsCommand::Describe { acting, .. }
            | ExportsCommand::Resubmit { acting, .. }
            | ExportsCommand::Release { acting, .. } => Some(acting),
        }
    }
}

pub(crate) fn run(cli: &Cli, command: &ExportsCommand) -> anyhow::Result<Outcome> {
    let mut queue = ExportQueue::open(&cli.home)?;
    let actor = match command.acting().map(|a| a.actor(cli)).transpose()? {
        Some(Err(message)) => return Ok(Outcome::BadInput(message)),
        Some(Ok(actor)) => Some(actor),
        None => None,
    };
    let result = match (command, &actor) {
        (ExportsCommand::List { project, status }, _) => {
            print_list(&queue.list(project.as_deref(), *status)?);
            return Ok(Outcome::Ok);
        }
        (ExportsCommand::Show { id }, _) => queue.get(*id).and_then(|request| {
            let content = queue.content(&request)?;
            print_request(&request, &content);
            Ok(())
        }),
        (_, None) => return Ok(Outcome::BadInput("this command needs to know who is acting".into())),
        (ExportsCommand::Approve { id, reason, .. }, Some(actor)) => {
            queue.decide(*id, actor, Verdict::Approve, reason.as_deref()).map(|r| print_status(&r))
        }
        (ExportsCommand::Reject { id, reason, .. }, Some(actor)) => {
            queue.decide(*id, actor, Verdict::Reject, Some(reason)).map(|r| print_status(&r))
        }
        (ExportsCommand::RequestChanges { id, reason, .. }, Some(actor)) => {
            queue.decide(*id, actor, Verdict::RequestChanges, Some(reason)).map(|r| print_status(&r))
        }
        (ExportsCommand::Describe { id, description, justification, .. }, Some(actor)) => {
            queue.describe(*id, actor, description.as_deref(), justification.as_deref()).map(|r| print_status(&r))
        }
        (ExportsCommand::Resubmit { id, .. }, Some(actor)) => queue.resubmit(*id, actor).map(|r| print_status(&r)),
        (ExportsCommand::Release { id, to, .. }, Some(actor)) => queue.release(*id, actor, to).map(|path| {
            println!("export request {id} released to {}", shown(&path));
        }),
    };
    match result {
        Ok(()) => Ok(Outcome::Ok),
        Err(err) if err.is_bad_input() => Ok(Outcome::BadInput(err.to_string())),
        Err(err) => Err(err.into()),
    }
}

fn print_status(request: &ExportRequest) {
    let approvals = request.decisions.iter().filter(|d| d.decision == Verdict::Approve.as_str()).count();
    let progress = if request.status == Status::Checked && approvals > 0 {
        format!(" ({approvals} of {} approvals)", request.reviews_required)
    } else {
        String::new()
    };
    println!("export request {} is {}{progress}", request.id, request.status);
}

/// The queue as a table.
pub(crate) fn print_list(requests: &[ExportRequest]) {
    println!("{:>4}  {:<18} {:<16} {:<7} {:<10} {:<8} file", "id", "project", "status", "checks", "kind", "by");
    for r in requests {
        let outcome = r.outcome.map_or("-".to_string(), |o| o.to_string());
        println!(
            "{:>4}  {:<18} {:<16} {:<7} {:<10} {:<8} {}",
            r.id,
            r.project,
            r.status,
            outcome,
            r.kind,
            r.submitted_by,
            untrusted::shown(&r.file)
        );
    }
}

/// A checker's full view of one request.
fn print_request(r: &ExportRequest, content: &[u8]) {
    println!("request   #{} ({})", r.id, r.status);
    println!("project   {}", r.project);
    println!("file      {} ({} bytes, sha256 {})", untrusted::shown(&r.file), r.size, r.sha256);
    println!("kind      {}", r.kind);
    println!("job       {} by {}", r.job, r.submitted_by);
    println!("module    {}", r.module_sha256);
    println!("policy    {}", r.policy_sha256);
    for d in &r.datasets {
        let p = &d.projection;
        println!(
            "data      /data/{}/ = {} v{} ({} rows): {}",
            d.mount,
            p.dataset,
            p.version,
            p.rows,
            p.columns.join(", ")
        );
    }
    let typed = |text: &str| if text.is_empty() { "(none)".to_string() } else { untrusted::shown(text).into_owned() };
    println!("describes {} (the researcher)", typed(&r.description));
    println!("justifies {}", typed(&r.justification));
    println!("guest     {} (the analysis's own description)", typed(&r.guest_description));
    if let Some(problem) = &r.manifest_problem {
        println!("manifest  {}", untrusted::shown(problem));
    }
    if let Some(report) = &r.report {
        print_report(report, true);
    }
    for o in &r.later_overlaps {
        println!(
            "later     {} of request {} differs from this request's {} by {}: releasing both reveals them",
            untrusted::shown(&o.later_cell),
            o.later,
            untrusted::shown(&o.cell),
            if o.units == 1 { "1 unit".to_string() } else { format!("{} units", o.units) }
        );
    }
    for d in &r.decisions {
        let overrode = if d.overrode_failure { " (override)" } else { "" };
        println!(
            "decision  {} {}{overrode} by {} at {}: {}",
            d.decision,
            r.id,
            d.checker,
            d.at,
            untrusted::shown(&d.reason)
        );
    }
    println!("---- content ----");
    match std::str::from_utf8(content) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            for line in lines.iter().take(60) {
                println!("{}", untrusted::shown(line));
            }
            if lines.len() > 60 {
                println!("… {} more lines", lines.len() - 60);
            }
        }
        Err(_) => println!("(binary, {} bytes)", content.len()),
    }
}

/// The checks' results with their findings and suggestions, and the suggested suppression in
/// full or as a one-line summary.
pub(crate) fn print_report(report: &Report, full_suppression: bool) {
    let t = &report.thresholds;
    println!(
        "checks    {} (minimum {} units, dominance ({}, {:.0}%), p% {:.0}%, residual dof {})",
        report.outcome,
        t.min_units,
        t.dominance_n,
        100.0 * t.dominance_k,
        100.0 * t.p_ratio,
        t.min_residual_dof
    );
    for result in &report.results {
        println!("  {:<7} {:<13} {}", result.outcome, result.check, untrusted::shown(&result.summary));
        for finding in result.findings.iter().take(10) {
            println!("          - {}", untrusted::shown(&finding.message));
        }
        if result.findings.len() > 10 {
            println!("          - … and {} more", result.findings.len() - 10);
        }
        if let Some(suggestion) = &result.suggestion
            && result.outcome != ringfence::disclosure::Outcome::Pass
        {
            println!("          suggestion: {}", untrusted::shown(suggestion));
        }
    }
    if let Some(suppression) = &report.suppression {
        print_suppression(suppression, full_suppression);
    }
}

fn print_suppression(s: &Suppression, full: bool) {
    let added = if s.added_by_audit > 0 {
        format!(" ({} added by the interval attack)", s.added_by_audit)
    } else {
        String::new()
    };
    println!(
        "suggested suppression: {} primary and {} secondary cells{added}; margins over the full table",
        s.primary, s.secondary
    );
    println!("  {}", untrusted::shown(&s.audit));
    if !full {
        return;
    }
    println!("  {}", untrusted::shown(&format!("{},{}", s.variables.join(","), s.statistic)));
    for cell in s.cells.iter().chain(&s.margins) {
        let value = cell
            .value
            .map_or_else(|| format!("suppressed ({})", cell.suppressed.as_deref().unwrap_or("")), |v| v.to_string());
        println!("  {}", untrusted::shown(&format!("{},{value}", cell.key.join(","))));
    }
}
