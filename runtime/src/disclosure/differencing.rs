//! Differencing: two released tables over the same variables whose counts differ by a few units
//! reveal those few units by subtraction, even when each table passes on its own.

use std::collections::BTreeMap;

use ringfence_sdk::manifest::OutputEntry;

use super::{Check, CheckResult, Finding, Outcome, Thresholds, cell_label};

/// An output of the same project that has already been released.
#[derive(Debug, Clone)]
pub struct Released {
    /// Its export request number.
    pub request: i64,
    /// Its file name.
    pub file: String,
    /// Its manifest entry.
    pub entry: OutputEntry,
}

/// Flags cells (and the table total) whose count differs from a released table's over the same
/// variables by fewer units than the threshold.
pub(super) fn check(entry: &OutputEntry, released: &[Released], thresholds: &Thresholds) -> CheckResult {
    let min = thresholds.min_units;
    let mut findings = Vec::new();
    let comparable = released
        .iter()
        .filter(|r| r.entry.kind == entry.kind && r.entry.variables == entry.variables && r.entry.value == entry.value);
    for earlier in comparable {
        let mut both: BTreeMap<&[String], (u64, u64)> = BTreeMap::new();
        for cell in &entry.cells {
            both.entry(&cell.key).or_default().0 = cell.count;
        }
        for cell in &earlier.entry.cells {
            both.entry(&cell.key).or_default().1 = cell.count;
        }
        let isolates = |now: u64, then: u64| now.abs_diff(then) > 0 && now.abs_diff(then) < min;
        let (mut total_now, mut total_then) = (0u64, 0u64);
        for (key, (now, then)) in both {
            total_now = total_now.saturating_add(now);
            total_then = total_then.saturating_add(then);
            if isolates(now, then) {
                findings.push(Finding {
                    cell: Some(key.to_vec()),
                    message: format!(
                        "{} has {now} units here and {then} in released request {} ({}): the difference isolates {} units; minimum is {min}",
                        cell_label(&entry.variables, key),
                        earlier.request,
                        earlier.file,
                        now.abs_diff(then)
                    ),
                });
            }
        }
        if isolates(total_now, total_then) {
            findings.push(Finding {
                cell: None,
                message: format!(
                    "the table's total is {total_now} units here and {total_then} in released request {}: the difference isolates {} units",
                    earlier.request,
                    total_now.abs_diff(total_then)
                ),
            });
        }
    }
    CheckResult::from_findings(
        Check::Differencing,
        Outcome::Review,
        findings,
        "no released table of this project differs from it by fewer than the minimum units",
        |n| format!("{n} differences from released tables isolate fewer than {min} units"),
        Some("explain how the populations differ, or tabulate the same population as the released table".into()),
    )
}
