//! Quantile tables: chosen quantiles of a value per cell, with how many units stand at each.

use rustc_hash::FxHashMap as HashMap;

use arrow_array::RecordBatch;

use super::keys::{Keys, sorted};
use super::tally::units_in_key_order;
use super::values::Values;
use super::{Table, TableError, csv_table};
use crate::manifest::{Cell, OutputKind, QuantileValue};
use crate::units::{RoaringBitmap, Source, Units};

/// Quantiles of one value per combination of categories. Quantile `p` is R's type 7 (linear
/// interpolation between order statistics); `p = 0` and `p = 1` are the minimum and maximum,
/// which disclosure checks refuse without an override. Keeps every value (8 bytes a row).
///
/// ```
/// # use std::sync::Arc;
/// # use ringfence_sdk::arrow_array::{Int64Array, RecordBatch, StringArray};
/// use ringfence_sdk::table::{QuantileTable, Table};
///
/// # let batch = RecordBatch::try_from_iter([
/// #     ("region", Arc::new(StringArray::from(vec!["U", "U", "U", "U"])) as _),
/// #     ("income", Arc::new(Int64Array::from(vec![10, 20, 30, 40])) as _),
/// # ]).unwrap();
/// let mut table = QuantileTable::new(&["region"], "income", &[0.5])?;
/// table.add(&batch)?;
/// assert_eq!(table.to_csv(), "region,count,p50\nU,4,25\n");
/// # Ok::<(), ringfence_sdk::table::TableError>(())
/// ```
#[derive(Debug, Clone)]
pub struct QuantileTable {
    keys: Keys,
    value: String,
    probabilities: Vec<f64>,
    values: HashMap<u64, QuantileCell>,
    source: Source,
    scratch: Vec<u64>,
}

/// One cell's values so far, units whose value is missing, and the rows of both.
#[derive(Debug, Clone, Default)]
struct QuantileCell {
    values: Vec<f64>,
    missing: u64,
    units: RoaringBitmap,
}

impl QuantileTable {
    /// Quantiles `probabilities` (each in \[0, 1\]) of `value` over `columns`.
    pub fn new(columns: &[&str], value: &str, probabilities: &[f64]) -> Result<QuantileTable, TableError> {
        if probabilities.is_empty() || probabilities.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(TableError::Unfittable("quantile probabilities must be between 0 and 1".into()));
        }
        Ok(QuantileTable {
            keys: Keys::new(columns)?,
            value: value.to_string(),
            probabilities: probabilities.to_vec(),
            values: HashMap::default(),
            source: Source::default(),
            scratch: Vec::new(),
        })
    }

    /// Adds the rows of `batch`.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), TableError> {
        self.keys.encode(batch, &mut self.scratch)?;
        let values = Values::of(batch, &self.value)?;
        let rows = self.source.add(batch);
        for (row, &key) in self.scratch.iter().enumerate() {
            let cell = self.values.entry(key).or_default();
            match values.get(row) {
                Some(value) => cell.values.push(value),
                None => cell.missing += 1,
            }
            if let Some(rows) = rows {
                cell.units.insert(rows.value(row));
            }
        }
        Ok(())
    }
}

/// Quantile `p` of sorted `values` (R's type 7) and the number of values equal to it; NaN with
/// no units for no values. The host recomputes quantiles with the same definition.
pub fn quantile(values: &[f64], p: f64) -> QuantileValue {
    if values.is_empty() {
        return QuantileValue { p, value: f64::NAN, units_at_value: 0 };
    }
    let h = (values.len() - 1) as f64 * p;
    let low = h.floor() as usize;
    let high = (low + 1).min(values.len() - 1);
    let value = values[low] + (h - low as f64) * (values[high] - values[low]);
    let units_at_value = values.partition_point(|&v| v <= value) - values.partition_point(|&v| v < value);
    QuantileValue { p, value, units_at_value: units_at_value as u64 }
}

fn column_name(p: f64) -> String {
    format!("p{}", (p * 1000.0).round() / 10.0)
}

impl Table for QuantileTable {
    fn kind(&self) -> OutputKind {
        OutputKind::Quantiles
    }

    fn variables(&self) -> Vec<String> {
        self.keys.names().to_vec()
    }

    fn value(&self) -> Option<String> {
        Some(self.value.clone())
    }

    fn cells(&self) -> Vec<Cell> {
        sorted(&self.keys, self.values.iter().map(|(&k, v)| (k, v)))
            .into_iter()
            .map(|(key, cell)| {
                let mut ordered = cell.values.clone();
                ordered.sort_by(f64::total_cmp);
                Cell {
                    key,
                    count: ordered.len() as u64,
                    missing: Some(cell.missing),
                    quantiles: self.probabilities.iter().map(|&p| quantile(&ordered, p)).collect(),
                    ..Cell::default()
                }
            })
            .collect()
    }

    fn units(&self) -> Option<Units> {
        units_in_key_order(&self.source, &self.keys, self.values.iter().map(|(&k, cell)| (k, &cell.units)))
    }

    fn to_csv(&self) -> String {
        let statistics: Vec<String> =
            std::iter::once("count".to_string()).chain(self.probabilities.iter().map(|&p| column_name(p))).collect();
        let rows = self.cells().into_iter().map(|cell| {
            let values: Vec<String> = std::iter::once(cell.count.to_string())
                .chain(cell.quantiles.iter().map(|q| q.value.to_string()))
                .collect();
            (cell.key, values.join(","))
        });
        csv_table(self.keys.names(), &statistics.join(","), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_and_count_units_at_the_value() {
        let values = [1.0, 2.0, 2.0, 4.0, 9.0];
        assert_eq!(quantile(&values, 0.5), QuantileValue { p: 0.5, value: 2.0, units_at_value: 2 });
        assert_eq!(quantile(&values, 0.0), QuantileValue { p: 0.0, value: 1.0, units_at_value: 1 });
        assert_eq!(quantile(&values, 1.0), QuantileValue { p: 1.0, value: 9.0, units_at_value: 1 });
        assert_eq!(quantile(&values, 0.875).value, 6.5);
        assert_eq!(quantile(&values, 0.875).units_at_value, 0);
        assert_eq!(column_name(0.025), "p2.5");
        assert_eq!(column_name(0.5), "p50");
    }
}
