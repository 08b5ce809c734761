//! Cell-level rules: the threshold rule, zero cells, negative and missing values.

use ringfence_sdk::manifest::{Cell, OutputEntry, OutputKind};

use super::{Check, CheckResult, Finding, Outcome, Thresholds, cell_label, cells_word, units};

fn finding(entry: &OutputEntry, cell: &Cell, what: String) -> Finding {
    Finding { cell: Some(cell.key.clone()), message: format!("{} {what}", cell_label(&entry.variables, &cell.key)) }
}

/// The variable with the most categories among `findings`' cells: the best one to merge.
pub(super) fn variable_to_merge(entry: &OutputEntry, findings: &[Finding]) -> Option<String> {
    (0..entry.variables.len())
        .max_by_key(|&i| {
            let mut categories: Vec<&String> = findings.iter().filter_map(|f| f.cell.as_ref()?.get(i)).collect();
            categories.sort();
            categories.dedup();
            categories.len()
        })
        .map(|i| entry.variables[i].clone())
}

/// Threshold rule: every published cell with units must have at least `min_units` of them.
pub(super) fn threshold(entry: &OutputEntry, thresholds: &Thresholds) -> CheckResult {
    let min = thresholds.min_units;
    let findings: Vec<Finding> = entry
        .cells
        .iter()
        .filter(|c| c.count > 0 && c.count < min)
        .map(|c| finding(entry, c, format!("has {}; minimum is {min}", units(c.count))))
        .collect();
    let merge = variable_to_merge(entry, &findings);
    let base = thresholds.rounding_base;
    let suggestion = merge.map(|variable| {
        let rounding = if entry.kind == OutputKind::Frequency {
            format!(", or round every count to base {base}")
        } else {
            String::new()
        };
        format!("suppress these cells (see the suggested suppression), merge small categories of {variable}{rounding}")
    });
    CheckResult::from_findings(
        Check::Threshold,
        Outcome::Fail,
        findings,
        format!("all {} have at least {min} units", cells_word(entry.cells.len())),
        |n| format!("{} below the minimum of {min} units", cells_word(n)),
        suggestion,
    )
}

/// Zero cells: a cell with no units reveals that nobody has that combination, and a magnitude
/// cell whose every unit has value 0 reveals each unit's value. An empty table is reviewed.
pub(super) fn zeros(entry: &OutputEntry) -> CheckResult {
    if entry.cells.is_empty() {
        return CheckResult {
            check: Check::Zeros,
            outcome: Outcome::Review,
            summary: "the table has no cells; a person must judge what its emptiness reveals".into(),
            findings: vec![],
            suggestion: None,
        };
    }
    let findings: Vec<Finding> = entry
        .cells
        .iter()
        .filter_map(|c| {
            if c.count == 0 {
                Some(finding(entry, c, "has no units, which reveals that nobody has this combination".into()))
            } else if entry.kind == OutputKind::Magnitude && c.zeros == Some(c.count) {
                Some(finding(
                    entry,
                    c,
                    format!("has value 0 for all {} units, which reveals each unit's value", c.count),
                ))
            } else {
                None
            }
        })
        .collect();
    CheckResult::from_findings(
        Check::Zeros,
        Outcome::Fail,
        findings,
        "no cell is empty or all zero",
        |n| format!("{} empty or all zero", cells_word(n)),
        Some("suppress these cells or merge them with a neighbouring category".into()),
    )
}

/// A per-cell tally that sends the output to review when any cell has some: which tally, and
/// how to speak of it.
struct Tally {
    check: Check,
    count: fn(&Cell) -> Option<u64>,
    finding: fn(u64) -> String,
    none: &'static str,
    noun: &'static str,
    suggestion: &'static str,
}

fn review_tally(entry: &OutputEntry, tally: &Tally) -> CheckResult {
    let findings: Vec<Finding> = entry
        .cells
        .iter()
        .filter_map(|c| (tally.count)(c).filter(|&n| n > 0).map(|n| finding(entry, c, (tally.finding)(n))))
        .collect();
    CheckResult::from_findings(
        tally.check,
        Outcome::Review,
        findings,
        tally.none,
        |n| format!("{} with {}", cells_word(n), tally.noun),
        Some(tally.suggestion.into()),
    )
}

/// Negative values: the dominance and p% rules assume contributions are not negative, so a
/// person must judge cells that have some.
pub(super) fn negatives(entry: &OutputEntry) -> CheckResult {
    review_tally(
        entry,
        &Tally {
            check: Check::Negatives,
            count: |c| c.negatives,
            finding: |n| format!("has {n} negative values; the dominance rules cannot judge it alone"),
            none: "no negative values",
            noun: "negative values",
            suggestion: "explain in the justification what the negative values are (losses, corrections)",
        },
    )
}

/// Missing values: units left out of a cell for a missing value change what it means; a person
/// must see how they were handled.
pub(super) fn missing(entry: &OutputEntry) -> CheckResult {
    review_tally(
        entry,
        &Tally {
            check: Check::Missing,
            count: |c| c.missing,
            finding: |n| format!("left out {n} units whose value is missing"),
            none: "no missing values",
            noun: "missing values",
            suggestion: "say in the justification how missing values were handled",
        },
    )
}
