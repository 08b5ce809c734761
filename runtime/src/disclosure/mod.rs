//! Automated disclosure checks on export requests (docs/design.md §5).
//!
//! The manifest entry (what the SDK or guest says the file holds) is first held against the
//! file itself ([`consistency`]). Where the entry names its units (the rows of the data each
//! cell was computed from), the host recomputes every number from those rows of the data the
//! job saw ([`recompute`]), and the rules judge the host's numbers, over the full cross product
//! of the table's categories; differencing compares units exactly with every other cell of the
//! project ([`differencing`]). An output without units is judged on its claims, with counts
//! bounded by a recount ([`recount`]), and never better than `review`.
//! Every check gives [`Outcome::Pass`], [`Outcome::Review`] or [`Outcome::Fail`] with the cells
//! that failed and why, in words a researcher can act on, and a suggested fix; a table with
//! failing cells also gets a suggested suppression whose margins cannot reveal a suppressed
//! cell ([`suppression`]). Free-form files and outputs without a manifest entry are never
//! better than `review`.

mod audit;
mod cells;
mod columns;
mod consistency;
pub mod data;
mod differencing;
mod dominance;
mod parallel;
mod quantiles;
mod recompute;
mod recount;
mod regression;
mod suppression;
mod thresholds;

use ringfence_sdk::manifest::{OutputEntry, OutputKind};
use ringfence_sdk::units::{RoaringBitmap, read_block};
use serde::{Deserialize, Serialize};

pub use data::JobData;
pub use differencing::{CellIndex, IndexedCell, NoIndex, Overlap};
pub use suppression::{SuggestedCell, Suppression};
pub use thresholds::Thresholds;

/// The verdict of one check, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing found.
    Pass,
    /// A person must look: the check cannot clear the output on its own.
    Review,
    /// The output is disclosive as it stands; approving it needs an override reason.
    Fail,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Outcome::Pass => "pass",
            Outcome::Review => "review",
            Outcome::Fail => "fail",
        })
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Outcome, String> {
        match s {
            "pass" => Ok(Outcome::Pass),
            "review" => Ok(Outcome::Review),
            "fail" => Ok(Outcome::Fail),
            other => Err(format!("unknown outcome {other:?}")),
        }
    }
}

/// The name of a check. A closed set: what a researcher may see of a report before release is
/// the names of the checks that did not pass, so those names can take only these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The file holds exactly what the manifest describes.
    Consistency,
    /// Minimum units per cell.
    Threshold,
    /// Empty and all-zero cells.
    Zeros,
    /// The (n, k) dominance rule.
    Dominance,
    /// The p% rule.
    PPercent,
    /// Negative values.
    Negatives,
    /// Missing values.
    Missing,
    /// Minimum, maximum and single-unit quantiles.
    Quantiles,
    /// Cells whose units differ from another's of the project by a few.
    Differencing,
    /// The manifest's numbers against the data the job saw.
    Recount,
    /// A regression's residual degrees of freedom.
    ResidualDof,
    /// An output the checks cannot read: a person reviews it.
    FreeForm,
    /// The stored file could not be read or no longer matches its checksum.
    StoredFile,
    /// The checks themselves failed on the output: it fails, so that a person looks.
    CheckError,
}

impl Check {
    /// Every check, in the order reports list them.
    pub const ALL: [Check; 14] = [
        Check::Consistency,
        Check::Threshold,
        Check::Zeros,
        Check::Dominance,
        Check::PPercent,
        Check::Negatives,
        Check::Missing,
        Check::Quantiles,
        Check::Differencing,
        Check::Recount,
        Check::ResidualDof,
        Check::FreeForm,
        Check::StoredFile,
        Check::CheckError,
    ];

    /// The check's stable name, as reports and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Consistency => "consistency",
            Check::Threshold => "threshold",
            Check::Zeros => "zeros",
            Check::Dominance => "dominance",
            Check::PPercent => "p_percent",
            Check::Negatives => "negatives",
            Check::Missing => "missing",
            Check::Quantiles => "quantiles",
            Check::Differencing => "differencing",
            Check::Recount => "recount",
            Check::ResidualDof => "residual_dof",
            Check::FreeForm => "free_form",
            Check::StoredFile => "stored_file",
            Check::CheckError => "check_error",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for Check {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Check {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One thing a check found, with the cell it concerns when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The cell's categories, in variable order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<Vec<String>>,
    /// What is wrong, in words.
    pub message: String,
}

/// The result of one check on one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Its verdict.
    pub outcome: Outcome,
    /// One line on what was checked and found.
    pub summary: String,
    /// The cells (or other particulars) behind a `review` or `fail`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What the researcher could do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl CheckResult {
    fn pass(check: Check, summary: impl Into<String>) -> CheckResult {
        CheckResult { check, outcome: Outcome::Pass, summary: summary.into(), findings: vec![], suggestion: None }
    }

    /// A result that is `outcome` when there are findings and `pass` otherwise.
    fn from_findings(
        check: Check,
        outcome: Outcome,
        findings: Vec<Finding>,
        passed: impl Into<String>,
        failed: impl FnOnce(usize) -> String,
        suggestion: Option<String>,
    ) -> CheckResult {
        if findings.is_empty() {
            return CheckResult::pass(check, passed);
        }
        CheckResult { check, outcome, summary: failed(findings.len()), findings, suggestion }
    }
}

/// Everything the checks found about one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The worst outcome of all checks.
    pub outcome: Outcome,
    /// The thresholds the checks used.
    pub thresholds: Thresholds,
    /// Each check's result.
    pub results: Vec<CheckResult>,
    /// For tables with failing cells: a suppression that would clear them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppression>,
}

/// What the checks look at for one output.
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    /// The file's name under `/export/`.
    pub file: &'a str,
    /// The file's bytes.
    pub bytes: &'a [u8],
    /// The manifest entry for the file, if the job wrote one.
    pub entry: Option<&'a OutputEntry>,
    /// Why the manifest could not be used, if the job wrote one that does not parse.
    pub manifest_problem: Option<&'a str>,
    /// The block of `manifest.units` the entry names, or why it cannot be read; `None` when
    /// the entry names no units.
    pub units: Option<Result<&'a [u8], &'a str>>,
    /// The data the job saw, for recomputing.
    pub data: &'a dyn JobData,
    /// The project's other outputs' cells, for differencing.
    pub index: &'a dyn CellIndex,
}

/// What the checks found about one output, and its published cells for the project's
/// differencing index.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The report.
    pub report: Report,
    /// The cells with at least `min_units` units, when the host recomputed them.
    pub cells: Option<PublishedCells>,
    /// Its cells that differ by a few units from cells of earlier requests.
    pub overlaps: Vec<Overlap>,
}

impl Checked {
    /// The result for an output whose cells the checks did not get to: nothing to index.
    pub fn unjudged(report: Report) -> Checked {
        Checked { report, cells: None, overlaps: Vec::new() }
    }
}

/// An output's published cells, with their units, as the differencing index keeps them.
#[derive(Debug, Clone)]
pub struct PublishedCells {
    /// Which rows the units number ([`data::MountData::unit_space`]).
    pub unit_space: String,
    /// Each cell's name ([`cell_label`]) and units.
    pub cells: Vec<(String, RoaringBitmap)>,
}

/// The checks that judge an output of `kind` whose manifest entry can be used, in report order.
/// Any output may instead get `free_form` alone (its entry cannot be used, or it is a free-form
/// file) or `stored_file` alone (its stored copy cannot be read): see [`check`].
pub fn checks_for(kind: OutputKind) -> &'static [Check] {
    use Check::*;
    match kind {
        OutputKind::Frequency => &[Consistency, Threshold, Zeros, Differencing, Recount],
        OutputKind::Magnitude => {
            &[Consistency, Threshold, Zeros, Dominance, PPercent, Negatives, Missing, Differencing, Recount]
        }
        OutputKind::Quantiles => &[Consistency, Threshold, Zeros, Missing, Quantiles, Recount],
        OutputKind::Regression => &[Consistency, ResidualDof, Recount],
        OutputKind::File => &[FreeForm],
    }
}

/// Most cells a table may have for the checks to judge it; a larger one is reviewed by a person.
pub const MAX_CELLS: usize = 1_000_000;

/// Most findings a report keeps per check; the rest are counted in a last finding.
pub const MAX_FINDINGS: usize = 1000;

/// Runs every check that applies to `subject` with `thresholds`. Never panics: if a check
/// does, the output fails `check_error` with what went wrong (a guest's claim is data, and no
/// claim may stop the queue).
pub fn check(subject: &Subject<'_>, thresholds: &Thresholds) -> Checked {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| judge(subject, thresholds))).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a check failed".into());
        Checked::unjudged(check_error(subject.file, &why, thresholds))
    })
}

/// The report for an output the checks could not judge: it fails, with the reason.
pub fn check_error(file: &str, why: &str, thresholds: &Thresholds) -> Report {
    let result = CheckResult {
        check: Check::CheckError,
        outcome: Outcome::Fail,
        summary: format!("the checks could not judge {file}: {why}"),
        findings: vec![],
        suggestion: Some("a checker must review the file by hand; an operator should find out why".into()),
    };
    finish(vec![result], thresholds, None)
}

/// Runs every check that applies to `subject` with `thresholds`.
fn judge(subject: &Subject<'_>, thresholds: &Thresholds) -> Checked {
    let unjudged = Checked::unjudged;
    let entry = match (subject.entry, subject.manifest_problem) {
        (Some(entry), _) if entry.kind != OutputKind::File => match shape(entry) {
            Ok(()) => entry,
            Err(problem) => {
                let why = format!("its manifest entry is malformed: {problem}");
                return unjudged(free_form(subject.file, &why, thresholds));
            }
        },
        (Some(_), _) => {
            return unjudged(free_form(subject.file, "the manifest declares it a free-form file", thresholds));
        }
        (None, Some(problem)) => {
            let why = format!("the job's manifest could not be used: {problem}");
            return unjudged(free_form(subject.file, &why, thresholds));
        }
        (None, None) => return unjudged(free_form(subject.file, "the job's manifest has no entry for it", thresholds)),
    };
    let mut results = vec![consistency::check(subject.bytes, entry)];
    let recomputed = match recomputed(subject, entry) {
        Ok(recomputed) => recomputed,
        Err(why) => {
            let summary = format!("the numbers could not be confirmed from the data: {why}");
            Err(CheckResult {
                check: Check::Recount,
                outcome: Outcome::Review,
                summary,
                findings: vec![],
                suggestion: None,
            })
        }
    };
    let mut overlaps = Vec::new();
    let (judged, recount) = match &recomputed {
        Ok(recomputed) => (&recomputed.entry, recomputed.result.clone()),
        Err(unconfirmed) => (entry, unconfirmed.clone()),
    };
    if judged.kind == OutputKind::Regression {
        results.push(regression::check(judged, thresholds));
    } else {
        results.push(cells::threshold(judged, thresholds));
        results.push(cells::zeros(judged));
        if judged.kind == OutputKind::Magnitude {
            results.push(dominance::nk_rule(judged, thresholds));
            results.push(dominance::p_percent(judged, thresholds));
            results.push(cells::negatives(judged));
        }
        if judged.kind != OutputKind::Frequency {
            results.push(cells::missing(judged));
        }
        if judged.kind == OutputKind::Quantiles {
            results.push(quantiles::check(judged));
        } else {
            let differencing = match &recomputed {
                Ok(recomputed) => differencing::check(recomputed, subject.file, subject.index, thresholds),
                Err(_) => (
                    CheckResult {
                        check: Check::Differencing,
                        outcome: Outcome::Review,
                        summary: "without units the cells cannot be compared with the project's other outputs".into(),
                        findings: vec![],
                        suggestion: None,
                    },
                    Vec::new(),
                ),
            };
            let (result, found) = differencing;
            results.push(result);
            overlaps = found;
        }
    }
    results.push(recount);
    let suppression = suppression::suggest(judged, &results, thresholds);
    let cells = recomputed.ok().map(|recomputed| published(recomputed, thresholds));
    Checked { report: finish(results, thresholds, suppression), cells, overlaps }
}

/// The output recomputed from its units; `Err` with the `recount` result when it names none
/// (the claims are then bounded by a recount, and reviewed at best); `Err(why)` when its units
/// cannot be used.
fn recomputed(
    subject: &Subject<'_>,
    entry: &OutputEntry,
) -> Result<Result<recompute::Recomputed, CheckResult>, String> {
    let (Some(units), Some(named)) = (subject.units, &entry.units) else {
        return Ok(Err(recount::check(entry, subject.data)));
    };
    let block = units?;
    let cells = if entry.kind == OutputKind::Regression { 1 } else { entry.cells.len() };
    let bitmaps = read_block(block, cells)?;
    recompute::recompute(entry, &named.mount, bitmaps, subject.data).map(Ok)
}

/// The cells of `recomputed` with at least `min_units` units, for the differencing index.
fn published(recomputed: recompute::Recomputed, thresholds: &Thresholds) -> PublishedCells {
    let entry = &recomputed.entry;
    let cells = entry
        .cells
        .iter()
        .zip(recomputed.units)
        .filter(|(_, units)| units.len() >= thresholds.min_units)
        .map(|(cell, units)| (cell_label(&entry.variables, &cell.key), units))
        .collect();
    PublishedCells { unit_space: recomputed.unit_space, cells }
}

/// Checks that a manifest entry is well formed: one category per variable in every cell key,
/// no cell twice.
fn shape(entry: &OutputEntry) -> Result<(), String> {
    if entry.cells.len() > MAX_CELLS {
        return Err(format!("it has {} cells; the checks judge tables of at most {MAX_CELLS}", entry.cells.len()));
    }
    let mut seen = rustc_hash::FxHashSet::with_capacity_and_hasher(entry.cells.len(), Default::default());
    for cell in &entry.cells {
        if cell.key.len() != entry.variables.len() {
            return Err(format!(
                "cell {:?} has {} categories for {} variables",
                cell.key,
                cell.key.len(),
                entry.variables.len()
            ));
        }
        if !seen.insert(&cell.key) {
            return Err(format!("cell {:?} appears twice", cell.key));
        }
    }
    Ok(())
}

/// The report for an output whose stored file cannot be read or no longer matches its
/// checksum: it fails, whatever its manifest says.
pub fn unreadable(file: &str, why: &str, thresholds: &Thresholds) -> Report {
    let result = CheckResult {
        check: Check::StoredFile,
        outcome: Outcome::Fail,
        summary: format!("the stored copy of {file} cannot be checked: {why}"),
        findings: vec![],
        suggestion: Some("an operator must find out what happened to the stored file".into()),
    };
    finish(vec![result], thresholds, None)
}

/// The report for an output the checks cannot read: a person must review it.
fn free_form(file: &str, why: &str, thresholds: &Thresholds) -> Report {
    let result = CheckResult {
        check: Check::FreeForm,
        outcome: Outcome::Review,
        summary: format!("{file} is not a table the checks understand ({why}); a person must review it"),
        findings: vec![],
        suggestion: Some("export tables with ringfence_sdk::export::table so they can be checked automatically".into()),
    };
    finish(vec![result], thresholds, None)
}

/// The report of `results`, each check's findings cut to [`MAX_FINDINGS`] (the suppression was
/// chosen from all of them).
fn finish(mut results: Vec<CheckResult>, thresholds: &Thresholds, suppression: Option<Suppression>) -> Report {
    for result in &mut results {
        if result.findings.len() > MAX_FINDINGS {
            let more = result.findings.len() - MAX_FINDINGS;
            result.findings.truncate(MAX_FINDINGS);
            result.findings.push(Finding { cell: None, message: format!("… and {more} more") });
        }
    }
    let outcome = results.iter().map(|r| r.outcome).max().unwrap_or(Outcome::Review);
    Report { outcome, thresholds: thresholds.clone(), results, suppression }
}

/// A cell's name for messages: `region=Groningen × status=retired`.
pub fn cell_label(variables: &[String], key: &[String]) -> String {
    if key.is_empty() {
        return "the table's only cell".into();
    }
    let mut label =
        String::with_capacity(5 + key.iter().zip(variables).map(|(k, v)| k.len() + v.len() + 5).sum::<usize>());
    label.push_str("cell ");
    for (i, category) in key.iter().enumerate() {
        if i > 0 {
            label.push_str(" × ");
        }
        label.push_str(variables.get(i).map_or("?", String::as_str));
        label.push('=');
        label.push_str(category);
    }
    label
}

/// Whether two numbers are the same up to the rounding of a different order of summation.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// "1 cell" / "3 cells".
fn cells_word(n: usize) -> String {
    if n == 1 { "1 cell".into() } else { format!("{n} cells") }
}

/// "1 unit" / "3 units".
fn units(n: u64) -> String {
    if n == 1 { "1 unit".into() } else { format!("{n} units") }
}
