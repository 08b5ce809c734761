//! Outputs that name no units (version-1 manifests, hand-written ones, tables whose rows the
//! analysis could not name): the host can only bound their counts by recounting the data the
//! job saw, so the best they get is `review`, and a cell claiming more units than the data
//! has fails.

use ringfence_sdk::manifest::{OutputEntry, OutputKind};

use super::data::JobData;
use super::{Check, CheckResult, Finding, Outcome, cell_label, cells_word, units};

/// Bounds each cell's count by a recount from the data; passes nothing, since the claims
/// cannot be confirmed without units.
pub(super) fn check(entry: &OutputEntry, data: &dyn JobData) -> CheckResult {
    if entry.kind == OutputKind::Regression {
        return unconfirmed("the regression names no units, so its observations cannot be confirmed".into());
    }
    let value = if entry.kind == OutputKind::Frequency { None } else { entry.value.as_deref() };
    let counts = match data.counts(&entry.variables, value) {
        Ok(counts) => counts,
        Err(why) => {
            return CheckResult {
                check: Check::Recount,
                outcome: Outcome::Review,
                summary: format!("the counts could not be confirmed from the data: {why}"),
                findings: vec![],
                suggestion: Some("tabulate variables of the granted data so the host can confirm the counts".into()),
            };
        }
    };
    let findings: Vec<Finding> = entry
        .cells
        .iter()
        .filter_map(|cell| {
            let actual = counts.get(&cell.key).copied().unwrap_or(0);
            (cell.count > actual).then(|| Finding {
                cell: Some(cell.key.clone()),
                message: format!(
                    "{} claims {}, but the data the job saw has only {actual}",
                    cell_label(&entry.variables, &cell.key),
                    units(cell.count)
                ),
            })
        })
        .collect();
    if findings.is_empty() {
        return unconfirmed(
            "no cell claims more units than the data the job saw, but the output names no units, so its numbers \
             cannot be confirmed"
                .into(),
        );
    }
    CheckResult {
        check: Check::Recount,
        outcome: Outcome::Fail,
        summary: format!("{} claim more units than the data has: the manifest is not true", cells_word(findings.len())),
        findings,
        suggestion: None,
    }
}

/// The result for an output whose numbers cannot be confirmed: a person reviews it.
fn unconfirmed(summary: String) -> CheckResult {
    CheckResult {
        check: Check::Recount,
        outcome: Outcome::Review,
        summary,
        findings: vec![],
        suggestion: Some(
            "export tables with the SDK's builders over its datasets, so each cell names its units and the host \
             can recompute it"
                .into(),
        ),
    }
}
