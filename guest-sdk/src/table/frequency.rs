//! Frequency tables and cross-tabulations: units per cell.

use arrow_array::RecordBatch;

use super::keys::{Keys, sorted};
use super::tally::Cells;
use super::{Table, TableError, csv_table};
use crate::manifest::{Cell, OutputKind};
use crate::units::Units;

/// Counts of units (rows) per combination of categories of up to four variables.
///
/// ```
/// # use std::sync::Arc;
/// # use ringfence_sdk::arrow_array::{RecordBatch, StringArray};
/// use ringfence_sdk::table::{FrequencyTable, Table};
///
/// # let batch = RecordBatch::try_from_iter([("region", Arc::new(StringArray::from(vec!["Utrecht", "Zeeland", "Utrecht"])) as _)]).unwrap();
/// let mut table = FrequencyTable::new(&["region"])?;
/// table.add(&batch)?;
/// assert_eq!(table.to_csv(), "region,count\nUtrecht,2\nZeeland,1\n");
/// # Ok::<(), ringfence_sdk::table::TableError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrequencyTable {
    keys: Keys,
    counts: Cells<u64>,
    scratch: Vec<u64>,
}

impl FrequencyTable {
    /// A table over the variables `columns` (1 to 4; text or integer columns).
    pub fn new(columns: &[&str]) -> Result<FrequencyTable, TableError> {
        Ok(FrequencyTable { keys: Keys::new(columns)?, counts: Cells::default(), scratch: Vec::new() })
    }

    /// Counts the rows of `batch`.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), TableError> {
        self.keys.encode(batch, &mut self.scratch)?;
        let mut tally = self.counts.tally(&self.keys, batch);
        for (row, &key) in self.scratch.iter().enumerate() {
            *tally.cell(key, row) += 1;
        }
        Ok(())
    }
}

impl Table for FrequencyTable {
    fn kind(&self) -> OutputKind {
        OutputKind::Frequency
    }

    fn variables(&self) -> Vec<String> {
        self.keys.names().to_vec()
    }

    fn value(&self) -> Option<String> {
        None
    }

    fn cells(&self) -> Vec<Cell> {
        sorted(&self.keys, self.counts.iter().map(|(k, &v, _)| (k, v)))
            .into_iter()
            .map(|(key, count)| Cell { key, count, ..Cell::default() })
            .collect()
    }

    fn units(&self) -> Option<Units> {
        self.counts.units(&self.keys)
    }

    fn to_csv(&self) -> String {
        csv_table(self.keys.names(), "count", self.cells().into_iter().map(|c| (c.key, c.count.to_string())))
    }
}
