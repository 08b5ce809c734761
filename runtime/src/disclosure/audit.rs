//! The interval attack on a suppression pattern, as tau-Argus and sdcTable audit theirs.
//!
//! A reader of the published table knows every published cell, every published margin and
//! the total, and that counts (and magnitudes without negative contributions) are not
//! negative. For each suppressed cell, linear programming gives the smallest and the largest
//! value consistent with all of that: the interval the attacker can narrow the cell down to.
//! A suppressed cell whose interval is a single point is disclosed exactly; a primary cell is
//! protected only if its interval is at least its protection level wide (`min_units` for a
//! count, `p`% of its largest contribution for a magnitude). Margins cut from a single line
//! with one suppressed cell, which a line-by-line rule already refuses, are the simplest case;
//! the attack also finds the patterns that pass line by line and still give a cell away
//! through several lines at once.

use microlp::{ComparisonOp, Error as LpError, OptimizationDirection, Problem};

/// What the attacker knows of one table: each cell's value and whether it is suppressed, and
/// the published linear relations between them.
pub(super) struct Table<'a> {
    /// Each cell's value (its count, or its sum).
    pub values: &'a [f64],
    /// Whether each cell is suppressed.
    pub suppressed: &'a [bool],
    /// The published margins: the cells each one sums. The grand total is one of them.
    pub margins: &'a [Vec<usize>],
    /// Whether no cell can be negative.
    pub nonnegative: bool,
}

/// The interval a suppressed cell can be narrowed down to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Interval {
    /// The cell, by index.
    pub cell: usize,
    /// The smallest consistent value.
    pub low: f64,
    /// The largest consistent value (infinite when nothing bounds it).
    pub high: f64,
}

impl Interval {
    /// Its width.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }
}

/// Most suppressed cells the attack is run for: each takes two linear programs.
pub(super) const MAX_SUPPRESSED: usize = 400;

/// Two values closer than this are the same to the attacker.
const EXACT: f64 = 1e-6;

/// Whether the attack reveals `interval` exactly.
pub(super) fn exact(interval: &Interval) -> bool {
    interval.width() <= EXACT * interval.low.abs().max(1.0)
}

/// Whether `interval` protects a cell of `value`: the attacker cannot tell it from any value
/// `protection` above or below it (below only down to 0, when no cell can be negative).
pub(super) fn protected(interval: &Interval, value: f64, protection: f64, nonnegative: bool) -> bool {
    let floor = if nonnegative { (value - protection).max(0.0) } else { value - protection };
    let slack = EXACT * value.abs().max(1.0);
    interval.high + slack >= value + protection && interval.low - slack <= floor
}

/// The interval of every suppressed cell of `table`, or why the attack could not be run.
pub(super) fn attack(table: &Table<'_>) -> Result<Vec<Interval>, String> {
    let hidden: Vec<usize> = (0..table.values.len()).filter(|&i| table.suppressed[i]).collect();
    if hidden.len() > MAX_SUPPRESSED {
        return Err(format!("{} cells are suppressed; the attack is run for at most {MAX_SUPPRESSED}", hidden.len()));
    }
    let bound = if table.nonnegative { 0.0 } else { f64::NEG_INFINITY };
    hidden
        .iter()
        .map(|&cell| {
            let low = optimum(table, &hidden, bound, cell, OptimizationDirection::Minimize)?;
            let high = optimum(table, &hidden, bound, cell, OptimizationDirection::Maximize)?;
            Ok(Interval { cell, low, high })
        })
        .collect()
}

/// The least or greatest value of `cell` over every assignment of the `hidden` cells that
/// agrees with the published margins.
fn optimum(
    table: &Table<'_>,
    hidden: &[usize],
    bound: f64,
    cell: usize,
    direction: OptimizationDirection,
) -> Result<f64, String> {
    let mut problem = Problem::new(direction);
    let variables: Vec<_> =
        hidden.iter().map(|&i| problem.add_var(if i == cell { 1.0 } else { 0.0 }, (bound, f64::INFINITY))).collect();
    let position = |i: usize| hidden.binary_search(&i).ok();
    for margin in table.margins {
        let mut terms = Vec::new();
        let mut known = 0.0;
        for &i in margin {
            match position(i) {
                Some(p) => terms.push((variables[p], 1.0)),
                None => known += table.values[i],
            }
        }
        if !terms.is_empty() {
            let published: f64 = margin.iter().map(|&i| table.values[i]).sum();
            problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, published - known);
        }
    }
    match problem.solve() {
        Ok(outcome) => {
            let solution = outcome.into_solution().map_err(|_| "the linear program was interrupted".to_string())?;
            Ok(solution.objective())
        }
        Err(LpError::Unbounded) => Ok(match direction {
            OptimizationDirection::Maximize => f64::INFINITY,
            OptimizationDirection::Minimize => f64::NEG_INFINITY,
        }),
        Err(other) => Err(format!("the linear program failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2 × 2 table with margins: suppressing all four cells leaves each within a range.
    #[test]
    fn a_two_by_two_table_with_all_four_suppressed_keeps_ranges() {
        // a b / c d = 3 17 / 20 40; rows, columns and the total published.
        let values = [3.0, 17.0, 20.0, 40.0];
        let margins = vec![vec![0, 1], vec![2, 3], vec![0, 2], vec![1, 3], vec![0, 1, 2, 3]];
        let table = Table { values: &values, suppressed: &[true; 4], margins: &margins, nonnegative: true };
        let intervals = attack(&table).expect("attack");
        assert_eq!(intervals[0], Interval { cell: 0, low: 0.0, high: 20.0 });
        assert!(intervals.iter().all(|i| !exact(i)));
        assert!(protected(&intervals[0], 3.0, 10.0, true));
        assert!(!protected(&intervals[0], 3.0, 18.0, true), "3 + 18 is beyond the 20 of its row");
    }

    /// One suppressed cell in a line is recovered from the line's margin.
    #[test]
    fn a_lone_suppressed_cell_is_recovered_exactly() {
        let values = [3.0, 17.0, 20.0];
        let margins = vec![vec![0, 1, 2]];
        let table = Table { values: &values, suppressed: &[true, false, false], margins: &margins, nonnegative: true };
        let intervals = attack(&table).expect("attack");
        assert!(exact(&intervals[0]) && (intervals[0].low - 3.0).abs() < 1e-9);
    }
}
