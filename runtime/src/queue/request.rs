//! An export request as stored: one output file of one job, with its checks, its decisions and
//! where it stands.

use ringfence_sdk::manifest::{OutputEntry, OutputKind};
use serde::Serialize;

use super::Status;
use crate::disclosure::{Outcome, Report, Thresholds};
use crate::job::MountedDataset;
use crate::store::{Connection, DecodeError, Row, SqlError, Store, StoreError};

/// One output file waiting for, under or past review.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRequest {
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
    /// The file's path under `/export/`.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// What the manifest says it is (`file` without a manifest entry).
    pub kind: OutputKind,
    /// Its manifest entry, if the job wrote one; not sent in views (the report judges it).
    #[serde(skip_serializing)]
    pub manifest: Option<OutputEntry>,
    /// Why the job's manifest could not be used, if it could not.
    pub manifest_problem: Option<String>,
    /// The thresholds of the policy the job ran under.
    pub thresholds: Thresholds,
    /// How many different checkers must approve.
    pub reviews_required: u32,
    /// Whether researchers see the names of the checks it did not pass before release.
    pub show_check_names: bool,
    /// What the guest's manifest says the output is: guest text, for checkers only.
    pub guest_description: String,
    /// The researcher's description, typed through `describe` (empty until then).
    pub description: String,
    /// The researcher's justification for releasing it.
    pub justification: String,
    /// The automatic checks' report, once they ran.
    pub report: Option<Report>,
    /// The report's overall outcome, once the checks ran.
    pub outcome: Option<Outcome>,
    /// Where it stands.
    pub status: Status,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Checkers' decisions, oldest first.
    pub decisions: Vec<Decision>,
    /// Cells of later requests (not rejected) whose units differ by a few from one of this
    /// request's cells: each later request failed differencing for it, and releasing both
    /// would reveal the units in between. For checkers; the researcher's view never has it.
    pub later_overlaps: Vec<LaterOverlap>,
}

/// A cell of a later request that differs by a few units from a cell of this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaterOverlap {
    /// The later request.
    pub later: i64,
    /// Its cell.
    pub later_cell: String,
    /// This request's cell.
    pub cell: String,
    /// How many units the two differ by.
    pub units: u64,
}

/// What a checker decided on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve for release.
    Approve,
    /// Reject: it may never be released.
    Reject,
    /// Ask the researcher to change the description or justification.
    RequestChanges,
}

impl Verdict {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
            Verdict::RequestChanges => "request_changes",
        }
    }
}

/// One checker's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The checker.
    pub checker: String,
    /// `approve`, `reject` or `request_changes`.
    pub decision: String,
    /// The reason given.
    pub reason: String,
    /// Whether it approved a request that failed a check.
    pub overrode_failure: bool,
    /// When (RFC 3339).
    pub at: String,
}

impl ExportRequest {
    /// Where the current round of review starts in [`ExportRequest::decisions`]: after the
    /// last decision that was not an approval (a rejection, or changes asked for and made).
    pub fn round_start(&self) -> usize {
        self.decisions.iter().rposition(|d| d.decision != Verdict::Approve.as_str()).map_or(0, |i| i + 1)
    }

    /// The checkers who approved the request in the current round.
    pub fn current_approvals(&self) -> Vec<&str> {
        self.decisions[self.round_start()..].iter().map(|d| d.checker.as_str()).collect()
    }
}

/// The columns [`from_row`] reads, in order.
pub(super) const COLUMNS: &str = "id, project, job, submitted_by, module_sha256, policy_sha256, datasets, file, size, \
     sha256, kind, manifest, manifest_problem, thresholds, reviews_required, description, justification, checks, \
     outcome, status, created_at, updated_at, guest_description, show_check_names";

fn json<T: serde::de::DeserializeOwned>(text: &str, column: usize) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|e| DecodeError { column, message: e.to_string() })
}

fn parse_text<T: std::str::FromStr<Err = String>>(text: &str, column: usize) -> Result<T, DecodeError> {
    text.parse().map_err(|message| DecodeError { column, message })
}

fn parsed<T: std::str::FromStr<Err = String>>(row: &Row, column: usize) -> Result<T, DecodeError> {
    parse_text(&row.get::<String>(column)?, column)
}

fn from_row(row: &Row) -> Result<ExportRequest, DecodeError> {
    let optional_json = |column: usize| -> Result<Option<String>, DecodeError> { row.get(column) };
    Ok(ExportRequest {
        id: row.get(0)?,
        project: row.get(1)?,
        job: row.get(2)?,
        submitted_by: row.get(3)?,
        module_sha256: row.get(4)?,
        policy_sha256: row.get(5)?,
        datasets: json(&row.get::<String>(6)?, 6)?,
        file: row.get(7)?,
        size: u64::try_from(row.get::<i64>(8)?).unwrap_or_default(),
        sha256: row.get(9)?,
        kind: parsed(row, 10)?,
        manifest: optional_json(11)?.map(|t| json(&t, 11)).transpose()?,
        manifest_problem: row.get(12)?,
        thresholds: json(&row.get::<String>(13)?, 13)?,
        reviews_required: row.get(14)?,
        description: row.get(15)?,
        justification: row.get(16)?,
        report: optional_json(17)?.map(|t| json(&t, 17)).transpose()?,
        outcome: optional_json(18)?.map(|t| parse_text(&t, 18)).transpose()?,
        status: parsed(row, 19)?,
        created_at: row.get(20)?,
        updated_at: row.get(21)?,
        guest_description: row.get(22)?,
        show_check_names: row.get(23)?,
        decisions: Vec::new(),
        later_overlaps: Vec::new(),
    })
}

/// Reads request `id` with its decisions, inside `conn` (a transaction or the connection).
pub(super) fn load(conn: &Connection, store: &Store, id: i64) -> Result<Option<ExportRequest>, StoreError> {
    let wrap = store.err();
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = ?1");
    let Some(mut request) = conn.query_opt(&sql, crate::params![id], from_row).map_err(&wrap)? else {
        return Ok(None);
    };
    attach(conn, &mut request).map_err(&wrap)?;
    Ok(Some(request))
}

/// Fills in what a request row does not hold: its decisions and the later requests'
/// overlaps with it.
fn attach(conn: &Connection, request: &mut ExportRequest) -> Result<(), SqlError> {
    request.decisions = decisions(conn, request.id)?;
    request.later_overlaps = later_overlaps(conn, request.id)?;
    Ok(())
}

fn later_overlaps(conn: &Connection, id: i64) -> Result<Vec<LaterOverlap>, SqlError> {
    conn.query(
        "SELECT p.later, p.later_cell, p.earlier_cell, p.units FROM differencing_pairs p
         JOIN requests r ON r.id = p.later WHERE p.earlier = ?1 AND r.status != 'rejected' ORDER BY p.id",
        crate::params![id],
        |r| {
            Ok(LaterOverlap {
                later: r.get(0)?,
                later_cell: r.get(1)?,
                cell: r.get(2)?,
                units: u64::try_from(r.get::<i64>(3)?).unwrap_or_default(),
            })
        },
    )
}

fn decisions(conn: &Connection, id: i64) -> Result<Vec<Decision>, SqlError> {
    conn.query(
        "SELECT checker, decision, reason, override, at FROM decisions WHERE request = ?1 ORDER BY id",
        crate::params![id],
        |r| {
            Ok(Decision {
                checker: r.get(0)?,
                decision: r.get(1)?,
                reason: r.get(2)?,
                overrode_failure: r.get(3)?,
                at: r.get(4)?,
            })
        },
    )
}

/// Which requests [`list`] returns; `None` matches anything.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Filter<'a> {
    pub project: Option<&'a str>,
    pub status: Option<Status>,
    pub job: Option<&'a str>,
}

/// Requests matching `filter`, oldest first, with their decisions.
pub(super) fn list(store: &Store, filter: Filter<'_>) -> Result<Vec<ExportRequest>, StoreError> {
    let wrap = store.err();
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE (CAST(?1 AS TEXT) IS NULL OR project = ?1) \
         AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND (CAST(?3 AS TEXT) IS NULL OR job = ?3) ORDER BY id"
    );
    let mut requests = store
        .conn()
        .query(&sql, crate::params![filter.project, filter.status.map(Status::as_str), filter.job], from_row)
        .map_err(&wrap)?;
    for request in &mut requests {
        attach(store.conn(), request).map_err(&wrap)?;
    }
    Ok(requests)
}
