//! Magnitude rules about large contributors: the (n, k) dominance rule and the p% rule.
//!
//! Both need each cell's largest values, which the manifest carries as `top1` and `top2`.

use ringfence_sdk::manifest::{Cell, OutputEntry};

use super::{Check, CheckResult, Finding, Outcome, Thresholds, cell_label, cells_word};

/// A cell with its total and its two largest values.
type Contributions<'a> = (&'a Cell, f64, f64, f64);

/// Cells of `entry` with their total and two largest values; cells missing them are reported.
fn contributions(entry: &OutputEntry) -> Result<Vec<Contributions<'_>>, Vec<Finding>> {
    let mut ok = Vec::new();
    let mut incomplete = Vec::new();
    for cell in entry.cells.iter().filter(|c| c.count > 0) {
        match (cell.sum, cell.top1) {
            (Some(sum), Some(top1)) => ok.push((cell, sum, top1, cell.top2.unwrap_or(0.0))),
            _ => incomplete.push(Finding {
                cell: Some(cell.key.clone()),
                message: format!(
                    "{} has no sum or largest value in the manifest, so it cannot be checked",
                    cell_label(&entry.variables, &cell.key)
                ),
            }),
        }
    }
    if incomplete.is_empty() { Ok(ok) } else { Err(incomplete) }
}

fn incomplete(check: Check, findings: Vec<Finding>) -> CheckResult {
    CheckResult {
        check,
        outcome: Outcome::Review,
        summary: format!("{} lack the statistics this rule needs", cells_word(findings.len())),
        findings,
        suggestion: Some("export magnitude tables with ringfence_sdk::table::MagnitudeTable".into()),
    }
}

const SUGGESTION: &str = "suppress these cells, merge them with others so no unit dominates, or publish counts only";

/// (n, k) rule: the `n` largest contributions may not make up `k` or more of the cell total.
pub(super) fn nk_rule(entry: &OutputEntry, thresholds: &Thresholds) -> CheckResult {
    let cells = match contributions(entry) {
        Ok(cells) => cells,
        Err(findings) => return incomplete(Check::Dominance, findings),
    };
    let (n, k) = (thresholds.dominance_n, thresholds.dominance_k);
    let findings: Vec<Finding> = cells
        .into_iter()
        .filter_map(|(cell, sum, top1, top2)| {
            let top = if n >= 2 { top1 + top2 } else { top1 };
            (sum > 0.0 && top >= k * sum).then(|| Finding {
                cell: Some(cell.key.clone()),
                message: format!(
                    "{}: the largest {} make up {:.1}% of its total; the limit is {:.0}%",
                    cell_label(&entry.variables, &cell.key),
                    if n >= 2 { "2 units" } else { "unit" },
                    100.0 * top / sum,
                    100.0 * k
                ),
            })
        })
        .collect();
    CheckResult::from_findings(
        Check::Dominance,
        Outcome::Fail,
        findings,
        format!("in no cell do the largest {n} units make up {:.0}% or more of the total", 100.0 * k),
        |c| format!("{} dominated by their largest {n} units", cells_word(c)),
        Some(SUGGESTION.into()),
    )
}

/// p% rule: the second largest contributor, knowing its own value, must not be able to
/// estimate the largest to within p%: `total − top1 − top2 ≥ p × top1`.
pub(super) fn p_percent(entry: &OutputEntry, thresholds: &Thresholds) -> CheckResult {
    let cells = match contributions(entry) {
        Ok(cells) => cells,
        Err(findings) => return incomplete(Check::PPercent, findings),
    };
    let p = thresholds.p_ratio;
    let findings: Vec<Finding> = cells
        .into_iter()
        .filter_map(|(cell, sum, top1, top2)| {
            let rest = sum - top1 - top2;
            (top1 > 0.0 && rest < p * top1).then(|| Finding {
                cell: Some(cell.key.clone()),
                message: format!(
                    "{}: without its two largest units the total is {rest}, so the second largest could \
                     estimate the largest ({top1}) to within {:.1}%; the rule needs at least {:.0}%",
                    cell_label(&entry.variables, &cell.key),
                    100.0 * rest.max(0.0) / top1,
                    100.0 * p
                ),
            })
        })
        .collect();
    CheckResult::from_findings(
        Check::PPercent,
        Outcome::Fail,
        findings,
        format!("no unit's value can be estimated to within {:.0}% from any cell", 100.0 * p),
        |c| format!("{} fail the p% rule", cells_word(c)),
        Some(SUGGESTION.into()),
    )
}
