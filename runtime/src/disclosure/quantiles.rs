//! Quantile rules: a minimum or maximum is always one unit's own value and is not released;
//! an interior quantile that equals exactly one unit's value is reviewed.

use ringfence_sdk::manifest::OutputEntry;

use super::{Check, CheckResult, Finding, Outcome, cell_label};

/// Checks every quantile of every cell.
pub(super) fn check(entry: &OutputEntry) -> CheckResult {
    let mut findings = Vec::new();
    let mut worst = Outcome::Pass;
    for cell in &entry.cells {
        let label = cell_label(&entry.variables, &cell.key);
        for q in &cell.quantiles {
            let (outcome, message) = if q.p <= 0.0 || q.p >= 1.0 {
                let which = if q.p <= 0.0 { "minimum" } else { "maximum" };
                (Outcome::Fail, format!("{label}: the {which} is a single unit's value and is not released"))
            } else if q.units_at_value == 1 {
                (Outcome::Review, format!("{label}: quantile p={} is exactly one unit's value", q.p))
            } else {
                continue;
            };
            worst = worst.max(outcome);
            findings.push(Finding { cell: Some(cell.key.clone()), message });
        }
    }
    CheckResult::from_findings(
        Check::Quantiles,
        worst,
        findings,
        "no minimum, maximum or single-unit quantile",
        |n| format!("{n} quantiles are single units' values"),
        Some("drop the minimum and maximum (use p05/p95 instead); interpolate quantiles over several units".into()),
    )
}
