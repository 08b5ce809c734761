//! A suggested suppression for a table with failing cells: the failing cells (primary), plus
//! enough other cells (secondary) that no margin gives a suppressed cell away by subtraction,
//! with every margin and the total recomputed over the full table.
//!
//! Along every line of the table (the cells that share all categories but one) either nothing
//! is suppressed, or at least two cells are and the suppressed cells together hold at least the
//! minimum number of units; a margin built from fewer units than the minimum is itself
//! suppressed. This is the classic line-by-line heuristic of statistical offices, and avoids the
//! known flaw of tools that suppress cells but publish margins computed with them.
//!
//! The line-by-line rule is not enough on its own: a cell can still be pinned down through
//! several lines at once. So the pattern is then audited by an interval attack ([`audit`]) on
//! the table as it would be published, and while some suppressed cell is exact or some
//! primary cell's interval is narrower than its protection level, one more secondary cell is
//! added: the smallest published cell sharing a line with it.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use ringfence_sdk::manifest::{OutputEntry, OutputKind};
use serde::{Deserialize, Serialize};

use super::audit::{self, Interval};
use super::{Check, CheckResult, Outcome, Thresholds, cell_label};

/// The label of a collapsed variable in a margin's key.
pub const TOTAL: &str = "Total";

/// The checks whose failing cells a suppression removes.
const SUPPRESSIBLE: &[Check] = &[Check::Threshold, Check::Zeros, Check::Dominance, Check::PPercent];

/// One cell or margin of the suggested table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestedCell {
    /// The categories; a margin has [`TOTAL`] for each collapsed variable.
    pub key: Vec<String>,
    /// Units in the cell or margin.
    pub count: u64,
    /// The published statistic (count, or the sum for magnitude tables); `None` if suppressed.
    pub value: Option<f64>,
    /// Why it is suppressed: `primary` (it failed a check), `secondary` (it protects a primary
    /// cell), or `margin` (too few units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
}

/// The suggested table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// The key variables.
    pub variables: Vec<String>,
    /// What `value` holds: `count` or `sum`.
    pub statistic: String,
    /// The table's cells, in the manifest's order.
    pub cells: Vec<SuggestedCell>,
    /// Margins along each variable, then the grand total.
    pub margins: Vec<SuggestedCell>,
    /// Cells suppressed because they failed (primary) and to protect those (secondary).
    pub primary: usize,
    /// See `primary`.
    pub secondary: usize,
    /// Of the secondary cells, how many the interval attack added to the line-by-line ones.
    #[serde(default)]
    pub added_by_audit: usize,
    /// What the interval attack on the suggested table found.
    #[serde(default)]
    pub audit: String,
}

/// Suggests a suppression when some cell of a count or magnitude table failed a cell rule.
pub(super) fn suggest(entry: &OutputEntry, results: &[CheckResult], thresholds: &Thresholds) -> Option<Suppression> {
    if !matches!(entry.kind, OutputKind::Frequency | OutputKind::Magnitude) {
        return None;
    }
    let failing: BTreeSet<&[String]> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail && SUPPRESSIBLE.contains(&r.check))
        .flat_map(|r| r.findings.iter().filter_map(|f| f.cell.as_deref()))
        .collect();
    if failing.is_empty() {
        return None;
    }
    let min = thresholds.min_units;
    let counts: Vec<u64> = entry.cells.iter().map(|c| c.count).collect();
    let units_of = |members: &[usize]| members.iter().fold(0u64, |sum, &i| sum.saturating_add(counts[i]));
    let mut reason: Vec<Option<&str>> =
        entry.cells.iter().map(|c| failing.contains(c.key.as_slice()).then_some("primary")).collect();
    let lines = lines(entry);
    loop {
        let mut changed = false;
        for (_, line) in &lines {
            let suppressed: Vec<usize> = line.iter().copied().filter(|&i| reason[i].is_some()).collect();
            let held = units_of(&suppressed);
            if suppressed.is_empty() || (suppressed.len() >= 2 && held >= min) {
                continue;
            }
            let candidate = line.iter().copied().filter(|&i| reason[i].is_none()).min_by_key(|&i| (counts[i], i));
            if let Some(i) = candidate {
                reason[i] = Some("secondary");
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let value = |i: usize| match entry.kind {
        OutputKind::Magnitude => entry.cells[i].sum.unwrap_or(0.0),
        _ => counts[i] as f64,
    };
    let values: Vec<f64> = (0..entry.cells.len()).map(value).collect();
    let small_margin = |members: &[usize]| units_of(members) < min;
    let mut published: Vec<Vec<usize>> = if entry.variables.len() > 1 {
        lines.iter().map(|(_, line)| line.clone()).filter(|line| !small_margin(line)).collect()
    } else {
        Vec::new()
    };
    let all: Vec<usize> = (0..entry.cells.len()).collect();
    if !small_margin(&all) {
        published.push(all.clone());
    }
    let protection = |i: usize| match entry.kind {
        OutputKind::Magnitude => thresholds.p_ratio * entry.cells[i].top1.unwrap_or(0.0).abs(),
        _ => min as f64,
    };
    let nonnegative = entry.cells.iter().all(|c| c.negatives.unwrap_or(0) == 0);
    let (added_by_audit, audit) = protect(entry, &values, &published, &lines, &mut reason, nonnegative, &protection);
    let cells: Vec<SuggestedCell> = entry
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| SuggestedCell {
            key: c.key.clone(),
            count: c.count,
            value: reason[i].is_none().then(|| value(i)),
            suppressed: reason[i].map(str::to_string),
        })
        .collect();
    let margin = |key: Vec<String>, members: &[usize]| {
        let count = units_of(members);
        let small = count < min;
        SuggestedCell {
            key,
            count,
            value: (!small).then(|| members.iter().map(|&i| value(i)).sum()),
            suppressed: small.then(|| "margin".to_string()),
        }
    };
    let mut margins: Vec<SuggestedCell> = Vec::new();
    if entry.variables.len() > 1 {
        for (dimension, line) in &lines {
            let mut key = entry.cells[line[0]].key.clone();
            key[*dimension] = TOTAL.to_string();
            margins.push(margin(key, line));
        }
    }
    margins.push(margin(vec![TOTAL.to_string(); entry.variables.len()], &all));
    Some(Suppression {
        variables: entry.variables.clone(),
        statistic: if entry.kind == OutputKind::Magnitude { "sum" } else { "count" }.into(),
        primary: reason.iter().filter(|r| **r == Some("primary")).count(),
        secondary: reason.iter().filter(|r| **r == Some("secondary")).count(),
        added_by_audit,
        audit,
        cells,
        margins,
    })
}

/// Audits the pattern in `reason` by the interval attack and adds secondary cells until it
/// holds: no suppressed cell exact, and each primary cell's interval reaching its protection
/// level above and below its value. Returns how many cells were added and what the final
/// audit found.
fn protect(
    entry: &OutputEntry,
    values: &[f64],
    margins: &[Vec<usize>],
    lines: &[(usize, Vec<usize>)],
    reason: &mut [Option<&str>],
    nonnegative: bool,
    protection: &dyn Fn(usize) -> f64,
) -> (usize, String) {
    let mut added = 0;
    loop {
        let suppressed: Vec<bool> = reason.iter().map(Option::is_some).collect();
        let table = audit::Table { values, suppressed: &suppressed, margins, nonnegative };
        let intervals = match audit::attack(&table) {
            Ok(intervals) => intervals,
            Err(why) => return (added, format!("not audited: {why}; a person must check the pattern")),
        };
        let weak = |interval: &&Interval| {
            audit::exact(interval)
                || (reason[interval.cell] == Some("primary")
                    && !audit::protected(interval, values[interval.cell], protection(interval.cell), nonnegative))
        };
        let Some(failing) = intervals.iter().find(weak).copied() else {
            let cells = intervals.len();
            return (
                added,
                format!("interval attack on {cells} suppressed cells: none exact, every primary cell protected"),
            );
        };
        let smallest = |cells: &mut dyn Iterator<Item = usize>| {
            cells.filter(|&i| reason[i].is_none()).min_by(|&a, &b| values[a].total_cmp(&values[b]))
        };
        let mut neighbours =
            lines.iter().filter(|(_, line)| line.contains(&failing.cell)).flat_map(|(_, line)| line.iter().copied());
        let candidate = smallest(&mut neighbours).or_else(|| smallest(&mut (0..values.len())));
        let Some(next) = candidate else {
            let cell = cell_label(&entry.variables, &entry.cells[failing.cell].key);
            return (
                added,
                format!(
                    "interval attack: {cell} can be narrowed to [{}, {}] whatever else is suppressed",
                    failing.low, failing.high
                ),
            );
        };
        reason[next] = Some("secondary");
        added += 1;
    }
}

/// Every line of the table — the indices of cells that agree on all variables but one — with
/// the variable it runs along, in the order of each line's first cell.
fn lines(entry: &OutputEntry) -> Vec<(usize, Vec<usize>)> {
    let mut lines = Vec::new();
    for dimension in 0..entry.variables.len() {
        let mut grouped: FxHashMap<Vec<&str>, usize> = FxHashMap::default();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, cell) in entry.cells.iter().enumerate() {
            let rest: Vec<&str> =
                cell.key.iter().enumerate().filter(|&(d, _)| d != dimension).map(|(_, k)| k.as_str()).collect();
            let line = *grouped.entry(rest).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[line].push(i);
        }
        lines.extend(members.into_iter().map(|line| (dimension, line)));
    }
    lines
}
