//! Columns of the data a job saw, as the checks read them: where the file allows, the
//! buffers decoded in place from its memory map, batch by batch, so that recomputing a table
//! copies no column (on 10 M rows, copying a key and a value column cost more than the
//! recomputation itself).

use arrow::buffer::ScalarBuffer;
use arrow::datatypes::ArrowNativeType;

use super::parallel::in_parts;

/// One column's values, row by row, as one buffer per record batch. Every batch but the
/// last holds `2^shift` rows, so row `r` is at `chunks[r >> shift][r & mask]`; a column whose
/// batches are not so is copied into one buffer (`shift` 32: every row is in the first).
#[derive(Debug, Clone)]
pub struct Rows<T: ArrowNativeType> {
    chunks: Vec<ScalarBuffer<T>>,
    shift: u32,
    len: u64,
}

impl<T: ArrowNativeType> Default for Rows<T> {
    fn default() -> Self {
        Rows::from(Vec::new())
    }
}

impl<T: ArrowNativeType> From<Vec<T>> for Rows<T> {
    /// One buffer holding every row.
    fn from(values: Vec<T>) -> Self {
        let len = values.len() as u64;
        Rows { chunks: vec![ScalarBuffer::from(values)], shift: 32, len }
    }
}

impl<T: ArrowNativeType> Rows<T> {
    /// The column made of `batches`, in place when there is one, or when every batch but the
    /// last has the same power-of-two length (as the host writes projections) and the last is
    /// no longer.
    pub fn from_batches(batches: Vec<ScalarBuffer<T>>) -> Rows<T> {
        let len = batches.iter().map(|b| b.len() as u64).sum();
        let Some((last, whole)) = batches.split_last() else { return Rows::default() };
        let Some(first) = whole.first().map(|b| b.len()) else { return Rows { chunks: batches, shift: 32, len } };
        if first.is_power_of_two() && whole.iter().all(|b| b.len() == first) && last.len() <= first {
            return Rows { chunks: batches, shift: first.trailing_zeros(), len };
        }
        let mut values = Vec::with_capacity(len as usize);
        batches.iter().for_each(|b| values.extend_from_slice(b));
        Rows::from(values)
    }

    /// Its rows.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of row `row`, which must be below [`Rows::len`].
    pub fn get(&self, row: u32) -> T {
        let row = u64::from(row);
        self.chunks[(row >> self.shift) as usize][(row & ((1 << self.shift) - 1)) as usize]
    }

    /// Calls `f` on the ascending rows `run`, split by batch: with the batch's values, the
    /// number of its first row, and the rows of `run` in it.
    #[inline]
    pub fn split(&self, run: &[u32], mut f: impl FnMut(&[T], u32, &[u32])) {
        let mut rest = run;
        while let Some(&first) = rest.first() {
            let chunk = (u64::from(first) >> self.shift) as usize;
            let start = (chunk as u64) << self.shift;
            let end = start + (1 << self.shift);
            let within = rest.partition_point(|&row| u64::from(row) < end);
            f(&self.chunks[chunk], start as u32, &rest[..within]);
            rest = &rest[within..];
        }
    }

    /// Every value, batch by batch.
    pub fn chunks(&self) -> impl Iterator<Item = &[T]> {
        self.chunks.iter().map(|c| &c[..])
    }
}

/// A key column: every row's category, and the categories.
#[derive(Debug, Clone, Default)]
pub struct Categorical {
    /// The categories' labels, by number.
    pub labels: Vec<String>,
    /// Whether some row has the category, by number.
    pub present: Vec<bool>,
    /// Each label's number.
    pub by_label: rustc_hash::FxHashMap<String, u32>,
    /// Each row's code: a position in `numbers` (for a dictionary column, the file's own key).
    codes: Rows<i32>,
    /// The category number of each code.
    numbers: Vec<u32>,
}

impl Categorical {
    /// The column whose row `r` has the code `codes[r]`, the category numbered `numbers[code]`
    /// of `labels`; `Err` when some code or number is out of range.
    pub fn new(labels: Vec<String>, codes: Rows<i32>, numbers: Vec<u32>) -> Result<Categorical, String> {
        if numbers.iter().any(|&n| n as usize >= labels.len()) {
            return Err("a category number beyond the column's categories".into());
        }
        let chunks: Vec<&[i32]> = codes.chunks().collect();
        let parts = in_parts(chunks.len(), |part| {
            let mut used = vec![false; numbers.len()];
            for &code in chunks[part].iter().copied().flatten() {
                match usize::try_from(code).ok().and_then(|code| used.get_mut(code)) {
                    Some(slot) => *slot = true,
                    None => return Err(format!("a row's category code {code} is out of range")),
                }
            }
            Ok(used)
        });
        let mut present = vec![false; labels.len()];
        for used in parts {
            numbers.iter().zip(&used?).filter(|(_, used)| **used).for_each(|(&n, _)| present[n as usize] = true);
        }
        let by_label = labels.iter().enumerate().map(|(n, label)| (label.clone(), n as u32)).collect();
        Ok(Categorical { labels, present, by_label, codes, numbers })
    }

    /// The column of the given row labels, numbered in order of first appearance.
    pub fn from_labels<'a>(rows: impl IntoIterator<Item = &'a str>) -> Categorical {
        let mut labels = Vec::new();
        let mut by_label = rustc_hash::FxHashMap::default();
        let codes: Vec<i32> = rows
            .into_iter()
            .map(|label| {
                let number = *by_label.entry(label.to_string()).or_insert_with(|| {
                    labels.push(label.to_string());
                    labels.len() as u32 - 1
                });
                number as i32
            })
            .collect();
        let numbers = (0..labels.len() as u32).collect();
        Categorical { present: vec![true; labels.len()], labels, by_label, codes: Rows::from(codes), numbers }
    }

    /// The number of the category labelled `label`, if the column has it.
    pub fn id(&self, label: &str) -> Option<u32> {
        self.by_label.get(label).copied()
    }

    /// The number of row `row`'s category; `row` must be below [`Categorical::rows`].
    pub fn category(&self, row: u32) -> u32 {
        self.numbers[self.codes.get(row) as usize]
    }

    /// Its rows.
    pub fn rows(&self) -> u64 {
        self.codes.len()
    }

    /// How many of the ascending rows `run` do not have the category numbered `wanted`, and
    /// the first of them.
    #[inline]
    pub fn others(&self, run: &[u32], wanted: u32) -> (u64, Option<u32>) {
        let numbers = self.numbers.as_slice();
        let (mut found, mut first) = (0u64, None);
        self.codes.split(run, |codes, start, rows| {
            let wrong = |&&row: &&u32| numbers[codes[(row - start) as usize] as usize] != wanted;
            let n = rows.iter().filter(wrong).count() as u64;
            if n > 0 && first.is_none() {
                first = rows.iter().find(wrong).copied();
            }
            found += n;
        });
        (found, first)
    }
}

/// A numeric column: every row's value, NaN where it is missing (as the SDK reads it).
#[derive(Debug, Clone)]
pub enum Numeric {
    /// Integers with no missing value, read in place.
    Integers(Rows<i64>),
    /// Floating-point values, NaN where missing.
    Floats(Rows<f64>),
}

impl Default for Numeric {
    fn default() -> Self {
        Numeric::Floats(Rows::default())
    }
}

impl From<Vec<f64>> for Numeric {
    fn from(values: Vec<f64>) -> Self {
        Numeric::Floats(Rows::from(values))
    }
}

impl Numeric {
    /// Its rows.
    pub fn rows(&self) -> u64 {
        match self {
            Numeric::Integers(rows) => rows.len(),
            Numeric::Floats(rows) => rows.len(),
        }
    }

    /// The value of row `row` (below [`Numeric::rows`]), as the SDK reads it.
    pub fn value(&self, row: u32) -> f64 {
        match self {
            Numeric::Integers(rows) => rows.get(row) as f64,
            Numeric::Floats(rows) => rows.get(row),
        }
    }

    /// Calls `f` with the value of each of the ascending rows `run`, in order; one loop per
    /// batch and type, so the call is inlined into it.
    #[inline]
    pub fn each(&self, run: &[u32], mut f: impl FnMut(f64)) {
        match self {
            Numeric::Integers(values) => values.split(run, |values, start, rows| {
                rows.iter().for_each(|&row| f(values[(row - start) as usize] as f64))
            }),
            Numeric::Floats(values) => {
                values.split(run, |values, start, rows| rows.iter().for_each(|&row| f(values[(row - start) as usize])))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_batches_of_a_power_of_two_are_read_in_place_and_split_at_their_edges() {
        let batches: Vec<ScalarBuffer<i64>> =
            [0..4i64, 4..8, 8..10].into_iter().map(|r| ScalarBuffer::from(r.collect::<Vec<_>>())).collect();
        let rows = Rows::from_batches(batches);
        assert_eq!((rows.shift, rows.len()), (2, 10));
        assert_eq!((0..10).map(|r| rows.get(r)).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        let mut seen = Vec::new();
        rows.split(&[1, 3, 4, 9], |values, start, run| seen.push((start, run.to_vec(), values.len())));
        assert_eq!(seen, vec![(0, vec![1, 3], 4), (4, vec![4], 4), (8, vec![9], 2)]);
    }

    #[test]
    fn one_batch_is_read_in_place() {
        let rows = Rows::from_batches(vec![ScalarBuffer::from(vec![7i32, 8, 9])]);
        assert_eq!((rows.shift, rows.chunks.len(), rows.len(), rows.get(2)), (32, 1, 3, 9));
        assert!(Rows::<i32>::from_batches(Vec::new()).is_empty());
    }

    #[test]
    fn uneven_batches_are_copied_into_one() {
        let batches = vec![ScalarBuffer::from(vec![1i32, 2, 3]), ScalarBuffer::from(vec![4i32])];
        let rows = Rows::from_batches(batches);
        assert_eq!((rows.shift, rows.chunks.len()), (32, 1));
        assert_eq!(rows.get(3), 4);
    }

    #[test]
    fn codes_map_to_categories_and_out_of_range_codes_are_refused() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let column = Categorical::new(labels.clone(), Rows::from(vec![0, 1, 1]), vec![1, 0]).expect("column");
        assert_eq!((column.category(0), column.category(1)), (1, 0));
        assert_eq!(column.others(&[0, 1, 2], 0), (1, Some(0)));
        assert!(Categorical::new(labels.clone(), Rows::from(vec![2]), vec![1, 0]).is_err());
        assert!(Categorical::new(labels, Rows::from(vec![-1]), vec![1, 0]).is_err());
    }
}
