//! Exact differencing: two published cells whose sets of units differ by a few units reveal
//! those few by subtraction, even when each cell passes on its own — whatever the tables'
//! variables, their order, nesting or filters, and whether the cells are in one table, two
//! tables of one job or outputs of different jobs.
//!
//! Cells are compared by their units, not their labels: cells `A` and `B` are flagged when
//! `0 < |A △ B| < min_units`. Candidates are found without comparing every pair: such a pair
//! differs in size by less than `min_units`, so earlier cells are looked up by size (the index
//! is ordered by it); and, with `d = min_units − 1`, the smallest element of `A` that is also in
//! `B` is among the `d + 1` smallest of each (at most `d` elements of either are outside the
//! other), so two cells are compared only when their `d + 1` smallest rows meet.

use std::cell::OnceCell;
use std::ops::RangeInclusive;

use rustc_hash::FxHashMap;

use ringfence_sdk::units::RoaringBitmap;

use super::recompute::Recomputed;
use super::{Check, CheckResult, Finding, Outcome, Thresholds, cell_label, units};

/// A cell of another output of the project, with its units.
#[derive(Debug, Clone)]
pub struct IndexedCell {
    /// Its export request.
    pub request: i64,
    /// Its file.
    pub file: String,
    /// Its name, as [`cell_label`] writes it.
    pub label: String,
    /// Its units.
    pub units: RoaringBitmap,
}

/// A cell of the output being checked whose units differ by a few from a cell of an earlier
/// request: the later request fails for it, and the earlier one keeps the pair for its
/// checkers, so that both are not approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The earlier request.
    pub earlier: i64,
    /// Its cell, as [`cell_label`] writes it.
    pub earlier_cell: String,
    /// This output's cell.
    pub cell: String,
    /// How many units the two differ by.
    pub units: u64,
}

/// Where the checks find the cells of a project's other outputs (released, approved or under
/// review; not rejected ones, which no one will see).
pub trait CellIndex {
    /// Calls `each` with every such cell in unit space `space` whose number of units is in
    /// `sizes`.
    fn near(&self, space: &str, sizes: RangeInclusive<u64>, each: &mut dyn FnMut(IndexedCell)) -> Result<(), String>;
}

/// An index with no cells: for outputs checked on their own.
pub struct NoIndex;

impl CellIndex for NoIndex {
    fn near(&self, _: &str, _: RangeInclusive<u64>, _: &mut dyn FnMut(IndexedCell)) -> Result<(), String> {
        Ok(())
    }
}

/// The `d + 1` smallest rows of `units`.
fn prefix(units: &RoaringBitmap, d: u64) -> impl Iterator<Item = u32> + '_ {
    units.iter().take(d as usize + 1)
}

/// This output's published cells, findable by their smallest rows.
struct Cells<'a> {
    output: &'a Recomputed,
    /// Indices into `output.entry.cells` of the cells with at least `min_units` units.
    published: Vec<usize>,
    /// The published cells by each of their `d + 1` smallest rows, built when first needed.
    by_row: OnceCell<FxHashMap<u32, Vec<usize>>>,
    d: u64,
}

impl<'a> Cells<'a> {
    fn new(output: &'a Recomputed, min: u64) -> Cells<'a> {
        let d = min.saturating_sub(1);
        let published: Vec<usize> = (0..output.units.len()).filter(|&i| output.units[i].len() >= min).collect();
        Cells { output, published, by_row: OnceCell::new(), d }
    }

    fn by_row(&self) -> &FxHashMap<u32, Vec<usize>> {
        self.by_row.get_or_init(|| {
            let mut by_row: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
            for &i in &self.published {
                for row in prefix(&self.output.units[i], self.d) {
                    by_row.entry(row).or_default().push(i);
                }
            }
            by_row
        })
    }

    /// The cells of this output that `units` could differ from by `1..=d` units.
    fn candidates(&self, units: &RoaringBitmap) -> Vec<usize> {
        let by_row = self.by_row();
        let mut found: Vec<usize> =
            prefix(units, self.d).filter_map(|row| by_row.get(&row)).flatten().copied().collect();
        found.sort_unstable();
        found.dedup();
        found.retain(|&i| self.output.units[i].len().abs_diff(units.len()) <= self.d);
        found
    }

    /// How many units `units` and cell `i` differ by, when it is `1..=d`.
    fn isolates(&self, i: usize, units: &RoaringBitmap) -> Option<u64> {
        let differ = self.output.units[i].symmetric_difference_len(units);
        (differ > 0 && differ <= self.d).then_some(differ)
    }

    fn label(&self, i: usize) -> String {
        cell_label(&self.output.entry.variables, &self.output.entry.cells[i].key)
    }

    /// The sizes an earlier cell may have to be compared: within `d` of some published cell.
    fn windows(&self) -> Vec<RangeInclusive<u64>> {
        let mut sizes: Vec<u64> = self.published.iter().map(|&i| self.output.units[i].len()).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut windows: Vec<RangeInclusive<u64>> = Vec::new();
        for size in sizes {
            let (low, high) = (size.saturating_sub(self.d), size.saturating_add(self.d));
            match windows.last_mut() {
                Some(last) if *last.end() >= low => *last = *last.start()..=high,
                _ => windows.push(low..=high),
            }
        }
        windows
    }
}

/// Flags every published cell of `output` whose units differ by 1 to `min_units − 1` from
/// those of another cell of the same output or of the project's other outputs in `index`; and
/// lists the pairs with other outputs, for those outputs' checkers.
pub(super) fn check(
    output: &Recomputed,
    file: &str,
    index: &dyn CellIndex,
    thresholds: &Thresholds,
) -> (CheckResult, Vec<Overlap>) {
    let min = thresholds.min_units;
    let cells = Cells::new(output, min);
    let mut findings = Vec::new();
    // Cells whose every key is a granted column and whose rows all have their categories are
    // disjoint: two of them with `min_units` each differ by at least twice that.
    let within = if output.disjoint { &[][..] } else { &cells.published[..] };
    for &i in within {
        for j in cells.candidates(&output.units[i]).into_iter().filter(|&j| j > i) {
            if let Some(differ) = cells.isolates(j, &output.units[i]) {
                findings.push(Finding {
                    cell: Some(output.entry.cells[i].key.clone()),
                    message: format!(
                        "{} and {} of this table differ by {}: subtracting one from the other reveals them; minimum is {min}",
                        cells.label(i),
                        cells.label(j),
                        units(differ)
                    ),
                });
            }
        }
    }
    let mut overlaps = Vec::new();
    let mut compare = |earlier: IndexedCell| {
        for i in cells.candidates(&earlier.units) {
            if let Some(differ) = cells.isolates(i, &earlier.units) {
                overlaps.push(Overlap {
                    earlier: earlier.request,
                    earlier_cell: earlier.label.clone(),
                    cell: cells.label(i),
                    units: differ,
                });
                findings.push(Finding {
                    cell: Some(output.entry.cells[i].key.clone()),
                    message: format!(
                        "{} of {file} and {} of request {} ({}) differ by {}: subtracting one from the other reveals them; minimum is {min}",
                        cells.label(i),
                        earlier.label,
                        earlier.request,
                        earlier.file,
                        units(differ)
                    ),
                });
            }
        }
    };
    for window in cells.windows() {
        if let Err(why) = index.near(&output.unit_space, window, &mut compare) {
            let result = CheckResult {
                check: Check::Differencing,
                outcome: Outcome::Review,
                summary: format!("the project's other outputs could not be compared: {why}"),
                findings: vec![],
                suggestion: None,
            };
            return (result, Vec::new());
        }
    }
    let result = CheckResult::from_findings(
        Check::Differencing,
        Outcome::Fail,
        findings,
        format!(
            "no published cell's units differ from another's of this project by 1 to {} units",
            min.saturating_sub(1)
        ),
        |n| format!("{n} pairs of cells differ by fewer than {min} units, which subtraction reveals"),
        Some(
            "tabulate the same population as the earlier output, merge the cells, or suppress one of each pair".into(),
        ),
    );
    (result, overlaps)
}
