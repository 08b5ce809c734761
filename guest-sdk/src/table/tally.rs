//! Adding a batch's rows into their cells.
//!
//! While a table has few cells (at most 4 096 combinations of the categories seen so far), a
//! batch is tallied into an array indexed by [`Dense`] layout, one index computation per row,
//! and the array is then folded into the table's map once per batch. Only with more cells does
//! every row pay a hash-map lookup.

use rustc_hash::FxHashMap as HashMap;

use super::keys::{Dense, Keys};

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

/// A table's cells, by packed key, and the array a batch is tallied into.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cells<T> {
    by_key: HashMap<u64, T>,
    batch: Vec<T>,
}

impl<T: Tallied> Cells<T> {
    /// Starts tallying a batch whose rows' keys `layout` has encoded.
    pub(crate) fn tally(&mut self, layout: &Keys) -> Tally<'_, T> {
        let dense = layout.dense();
        if let Some(dense) = dense {
            self.batch.clear();
            self.batch.resize(dense.cells(), T::default());
        }
        Tally { cells: self, dense }
    }

    /// The cells and their packed keys, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.by_key.iter().map(|(&key, cell)| (key, cell))
    }
}

/// One batch being tallied; folded into the table's cells when dropped.
pub(crate) struct Tally<'a, T: Tallied> {
    cells: &'a mut Cells<T>,
    dense: Option<Dense>,
}

impl<T: Tallied> Tally<'_, T> {
    /// The cell of the row whose packed key is `key`. Inlined into the caller's row loop; the
    /// hash-map path is kept out of line so the dense loop stays small.
    #[inline(always)]
    pub(crate) fn cell(&mut self, key: u64) -> &mut T {
        if let Some(dense) = &self.dense
            && let Some(cell) = self.cells.batch.get_mut(dense.index(key))
        {
            return cell;
        }
        hashed(&mut self.cells.by_key, key)
    }
}

/// The cell of `key` in `by_key`, made when missing.
#[inline(never)]
fn hashed<T: Tallied>(by_key: &mut HashMap<u64, T>, key: u64) -> &mut T {
    by_key.entry(key).or_default()
}

impl<T: Tallied> Drop for Tally<'_, T> {
    fn drop(&mut self) {
        let Some(dense) = self.dense else { return };
        let empty = T::default();
        for (index, tallied) in self.cells.batch.iter().enumerate().filter(|(_, cell)| **cell != empty) {
            self.cells.by_key.entry(dense.key(index)).or_default().merge(tallied);
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
