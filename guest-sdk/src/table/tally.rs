//! Adding a batch's rows into their cells, and each row's number into its cell's units.
//!
//! While a table has few cells (at most 4 096 combinations of the categories seen so far), a
//! batch is tallied into an array indexed by [`Dense`] layout, one index computation per row,
//! and the array is then folded into the table's map once per batch. Only with more cells does
//! every row pay a hash-map lookup.

use arrow_array::RecordBatch;
use rustc_hash::FxHashMap as HashMap;

use super::keys::{Dense, Keys, sorted};
use crate::units::{RoaringBitmap, Source, Units, extend};

/// What a cell holds: a tally that partial tallies can be folded into.
pub(crate) trait Tallied: Default + Clone + PartialEq {
    /// Adds the units of `other`, as if they had been added one by one.
    fn merge(&mut self, other: &Self);
}

impl Tallied for u64 {
    fn merge(&mut self, other: &u64) {
        *self += other;
    }
}

/// A table's cells, by packed key, each with its units, and the arrays a batch is tallied into.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cells<T> {
    by_key: HashMap<u64, (T, RoaringBitmap)>,
    batch: Vec<T>,
    batch_rows: Vec<Vec<u32>>,
    source: Source,
}

impl<T: Tallied> Cells<T> {
    /// Starts tallying `batch`, whose rows' keys `layout` has encoded.
    pub(crate) fn tally<'a>(&'a mut self, layout: &Keys, batch: &'a RecordBatch) -> Tally<'a, T> {
        let rows = self.source.add(batch).map(|rows| rows.values().as_ref());
        let dense = layout.dense();
        if let Some(dense) = dense {
            self.batch.clear();
            self.batch.resize(dense.cells(), T::default());
            self.batch_rows.iter_mut().for_each(Vec::clear);
            self.batch_rows.resize_with(dense.cells(), Vec::new);
        }
        Tally { cells: self, dense, rows }
    }

    /// The cells with their packed keys and units, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T, &RoaringBitmap)> {
        self.by_key.iter().map(|(&key, (cell, units))| (key, cell, units))
    }

    /// Every cell's units in key order (the order of [`sorted`]), when every batch named its
    /// rows.
    pub(crate) fn units(&self, keys: &Keys) -> Option<Units> {
        units_in_key_order(&self.source, keys, self.iter().map(|(key, _, units)| (key, units)))
    }
}

/// The units of `cells` (by packed key) in key order, when `source` names their mount.
pub(crate) fn units_in_key_order<'a>(
    source: &Source,
    keys: &Keys,
    cells: impl Iterator<Item = (u64, &'a RoaringBitmap)>,
) -> Option<Units> {
    let mount = source.mount()?.to_string();
    Some(Units { mount, cells: sorted(keys, cells).into_iter().map(|(_, units)| units.clone()).collect() })
}

/// One batch being tallied; folded into the table's cells when dropped.
pub(crate) struct Tally<'a, T: Tallied> {
    cells: &'a mut Cells<T>,
    dense: Option<Dense>,
    rows: Option<&'a [u32]>,
}

impl<T: Tallied> Tally<'_, T> {
    /// The cell of row `row` of the batch, whose packed key is `key`, with the row's number
    /// added to its units. Inlined into the caller's row loop; the hash-map path is kept out
    /// of line so the dense loop stays small.
    #[inline(always)]
    pub(crate) fn cell(&mut self, key: u64, row: usize) -> &mut T {
        let number = self.rows.and_then(|rows| rows.get(row).copied());
        if let Some(dense) = &self.dense {
            let index = dense.index(key);
            if let (Some(cell), Some(units)) = (self.cells.batch.get_mut(index), self.cells.batch_rows.get_mut(index)) {
                units.extend(number);
                return cell;
            }
        }
        hashed(&mut self.cells.by_key, key, number)
    }
}

/// The cell of `key` in `by_key`, made when missing, with `row` added to its units.
#[inline(never)]
fn hashed<T: Tallied>(by_key: &mut HashMap<u64, (T, RoaringBitmap)>, key: u64, row: Option<u32>) -> &mut T {
    let (cell, units) = by_key.entry(key).or_default();
    if let Some(row) = row {
        units.insert(row);
    }
    cell
}

impl<T: Tallied> Drop for Tally<'_, T> {
    fn drop(&mut self) {
        let Some(dense) = self.dense else { return };
        let empty = T::default();
        let batch = self.cells.batch.iter().zip(&self.cells.batch_rows).enumerate();
        for (index, (tallied, rows)) in batch.filter(|(_, (cell, _))| **cell != empty) {
            let (cell, units) = self.cells.by_key.entry(dense.key(index)).or_default();
            cell.merge(tallied);
            extend(units, rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};

    use crate::table::{FrequencyTable, Table};

    fn batch(pairs: &[(i64, i64)]) -> RecordBatch {
        let a = Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.0))) as ArrayRef;
        let b = Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.1))) as ArrayRef;
        RecordBatch::try_from_iter([("a", a), ("b", b)]).expect("batch")
    }

    #[test]
    fn dense_and_hashed_tallies_count_the_same() {
        // The first batch has 100 cells (tallied densely); the second takes the table past
        // 4 096 combinations, so it and the third are hashed.
        let batches: Vec<Vec<(i64, i64)>> = vec![
            (0..5_000).map(|i| (i % 10, i % 7 * 3 % 10)).collect(),
            (0..9_000).map(|i| (i % 70, i % 90)).collect(),
            (0..3_000).map(|i| (i % 3, i % 5)).collect(),
        ];
        let mut table = FrequencyTable::new(&["a", "b"]).expect("table");
        let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
        for pairs in &batches {
            table.add(&batch(pairs)).expect("add");
            for (a, b) in pairs {
                *expected.entry((a.to_string(), b.to_string())).or_default() += 1;
            }
        }
        let counted: BTreeMap<(String, String), u64> =
            table.cells().into_iter().map(|c| ((c.key[0].clone(), c.key[1].clone()), c.count)).collect();
        assert_eq!(counted, expected);
    }
}
