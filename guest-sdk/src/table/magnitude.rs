//! Magnitude tables: sums and means of a value per cell, with the largest contributions that
//! dominance and p% rules need.

use arrow_array::RecordBatch;

use super::keys::{Keys, sorted};
use super::tally::{Cells, Tallied};
use super::values::Values;
use super::{Table, TableError, csv_table};
use crate::manifest::{Cell, OutputKind};
use crate::units::Units;

/// The statistics of one cell of a magnitude table.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MagnitudeCell {
    /// Units with a value.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// The largest single value (0 when the cell is empty).
    pub top1: f64,
    /// The second largest single value (0 when the cell has fewer than two units).
    pub top2: f64,
    /// Units with a negative value.
    pub negatives: u64,
    /// Units with a zero value.
    pub zeros: u64,
    /// Units whose value is missing.
    pub missing: u64,
}

impl MagnitudeCell {
    /// Adds row `row` of `values`: its value, or one more missing. Inlined into the tally
    /// loop, where a call per row would cost more than the work.
    #[inline(always)]
    fn add_row(&mut self, values: &Values<'_>, row: usize) {
        match values.get(row) {
            Some(value) => self.add(value),
            None => self.missing += 1,
        }
    }

    /// Adds one unit's value. The host recomputes cells with it from the rows they name.
    #[inline(always)]
    pub fn add(&mut self, value: f64) {
        if self.count == 0 || value > self.top1 {
            self.top2 = if self.count == 0 { 0.0 } else { self.top1 };
            self.top1 = value;
        } else if self.count == 1 || value > self.top2 {
            self.top2 = value;
        }
        self.count += 1;
        self.sum += value;
        self.negatives += u64::from(value < 0.0);
        self.zeros += u64::from(value == 0.0);
    }

    /// The manifest cell this tally publishes under `key`: what the guest claims, and what the
    /// host recomputes from the rows the cell names.
    pub fn cell(&self, key: Vec<String>) -> Cell {
        Cell {
            key,
            count: self.count,
            sum: Some(self.sum),
            top1: Some(self.top1),
            top2: Some(self.top2),
            negatives: Some(self.negatives),
            zeros: Some(self.zeros),
            missing: Some(self.missing),
            quantiles: Vec::new(),
        }
    }

    /// The mean value, or `None` for an empty cell.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

impl Tallied for MagnitudeCell {
    fn merge(&mut self, other: &MagnitudeCell) {
        MagnitudeCell::merge(self, other);
    }
}

impl MagnitudeCell {
    /// Adds the units of `other`, as if they had been added one by one: the host recomputes
    /// parts of a cell in parallel and folds them together with it.
    pub fn merge(&mut self, other: &MagnitudeCell) {
        let mut largest = [(self.count, self.top1, self.top2), (other.count, other.top1, other.top2)]
            .into_iter()
            .flat_map(|(count, top1, top2)| [top1, top2].into_iter().take(count.min(2) as usize))
            .collect::<Vec<f64>>();
        largest.sort_by(|a, b| b.total_cmp(a));
        self.top1 = largest.first().copied().unwrap_or(0.0);
        self.top2 = largest.get(1).copied().unwrap_or(0.0);
        self.count += other.count;
        self.sum += other.sum;
        self.negatives += other.negatives;
        self.zeros += other.zeros;
        self.missing += other.missing;
    }
}

/// Sum, mean and largest contributions of one value per combination of categories.
///
/// ```
/// # use std::sync::Arc;
/// # use ringfence_sdk::arrow_array::{Int64Array, RecordBatch, StringArray};
/// use ringfence_sdk::table::{MagnitudeTable, Table};
///
/// # let batch = RecordBatch::try_from_iter([
/// #     ("region", Arc::new(StringArray::from(vec!["Utrecht", "Utrecht", "Zeeland"])) as _),
/// #     ("income", Arc::new(Int64Array::from(vec![10, 30, 5])) as _),
/// # ]).unwrap();
/// let mut table = MagnitudeTable::new(&["region"], "income")?;
/// table.add(&batch)?;
/// assert_eq!(table.to_csv(), "region,count,sum,mean\nUtrecht,2,40,20\nZeeland,1,5,5\n");
/// # Ok::<(), ringfence_sdk::table::TableError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MagnitudeTable {
    keys: Keys,
    value: String,
    cells: Cells<MagnitudeCell>,
    scratch: Vec<u64>,
}

impl MagnitudeTable {
    /// A table of `value` (an integer or floating-point column) over `columns`.
    pub fn new(columns: &[&str], value: &str) -> Result<MagnitudeTable, TableError> {
        Ok(MagnitudeTable {
            keys: Keys::new(columns)?,
            value: value.to_string(),
            cells: Cells::default(),
            scratch: Vec::new(),
        })
    }

    /// Adds the rows of `batch`.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), TableError> {
        self.keys.encode(batch, &mut self.scratch)?;
        let values = Values::of(batch, &self.value)?;
        let mut tally = self.cells.tally(&self.keys, batch);
        for (row, &key) in self.scratch.iter().enumerate() {
            tally.cell(key, row).add_row(&values, row);
        }
        Ok(())
    }

    /// The cells with their statistics, sorted by key.
    pub fn stats(&self) -> Vec<(Vec<String>, MagnitudeCell)> {
        sorted(&self.keys, self.cells.iter().map(|(k, &v, _)| (k, v)))
    }
}

impl Table for MagnitudeTable {
    fn kind(&self) -> OutputKind {
        OutputKind::Magnitude
    }

    fn variables(&self) -> Vec<String> {
        self.keys.names().to_vec()
    }

    fn value(&self) -> Option<String> {
        Some(self.value.clone())
    }

    fn cells(&self) -> Vec<Cell> {
        self.stats().into_iter().map(|(key, c)| c.cell(key)).collect()
    }

    fn units(&self) -> Option<Units> {
        self.cells.units(&self.keys)
    }

    fn to_csv(&self) -> String {
        let rows = self.stats().into_iter().map(|(key, cell)| {
            let mean = cell.mean().map(|m| m.to_string()).unwrap_or_default();
            (key, format!("{},{},{mean}", cell.count, cell.sum))
        });
        csv_table(self.keys.names(), "count,sum,mean", rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_two_largest_contributions() {
        let mut cell = MagnitudeCell::default();
        for v in [5.0, 9.0, 1.0, 9.0, 7.0] {
            cell.add(v);
        }
        assert_eq!((cell.count, cell.sum, cell.top1, cell.top2), (5, 31.0, 9.0, 9.0));
        let mut negative = MagnitudeCell::default();
        for v in [-3.0, -1.0, 0.0] {
            negative.add(v);
        }
        assert_eq!((negative.top1, negative.top2, negative.negatives, negative.zeros), (0.0, -1.0, 2, 1));
    }

    #[test]
    fn merged_cells_equal_cells_added_one_by_one() {
        let values = [-4.0, 7.0, 0.0, 7.5, -1.0, 3.0, 12.0];
        for split in 0..=values.len() {
            let (mut whole, mut left, mut right) =
                (MagnitudeCell::default(), MagnitudeCell::default(), MagnitudeCell::default());
            values.iter().for_each(|&v| whole.add(v));
            values[..split].iter().for_each(|&v| left.add(v));
            values[split..].iter().for_each(|&v| right.add(v));
            left.missing = 1;
            left.merge(&right);
            whole.missing = 1;
            assert_eq!(left, whole, "split at {split}");
        }
    }
}
