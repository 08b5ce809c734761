//! Tables that keep what disclosure checks need: per-cell unit counts and, for magnitudes, the
//! largest contributions.
//!
//! Builders take Arrow record batches one at a time, in one pass, without allocating per row:
//! each cell is addressed by a packed integer key ([`keys`]).

mod frequency;
mod keys;
mod magnitude;
mod ols;
mod quantiles;
mod tally;
mod text;
mod values;

pub use frequency::FrequencyTable;
pub use keys::MISSING;
pub use magnitude::{MagnitudeCell, MagnitudeTable};
pub use ols::{Ols, Term};
pub use quantiles::{QuantileTable, quantile};
pub use text::Text;

use crate::manifest::{Cell, OutputKind, RegressionSummary};
use crate::units::Units;

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// A regression that cannot be fitted: too few observations or collinear regressors.
    Unfittable(String),
    /// A named column is not in the batch.
    MissingColumn(String),
    /// A column has a type the builder cannot use in that role.
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        found: String,
    },
    /// More key variables, or more categories in one, than a table can address.
    TooManyCells(String),
    /// A column's contents are malformed (a dictionary key past its dictionary's end).
    InvalidData(String),
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::MissingColumn(c) => write!(f, "the data has no column {c:?}"),
            TableError::UnsupportedType { column, found } => {
                write!(f, "column {column:?} has type {found}, which this table cannot use")
            }
            TableError::TooManyCells(why) | TableError::Unfittable(why) | TableError::InvalidData(why) => {
                f.write_str(why)
            }
        }
    }
}

impl std::error::Error for TableError {}

/// A table ready for export: its CSV text and the manifest entry's contents.
pub trait Table {
    /// The statistic the table holds.
    fn kind(&self) -> OutputKind;
    /// The variables defining the cells.
    fn variables(&self) -> Vec<String>;
    /// The summed variable, for magnitude tables.
    fn value(&self) -> Option<String>;
    /// The cells, sorted by key, with their statistics.
    fn cells(&self) -> Vec<Cell>;
    /// For regressions, the fit; `None` for tables.
    fn regression(&self) -> Option<RegressionSummary> {
        None
    }
    /// The rows each cell was computed from, in the order of [`Table::cells`] (for a
    /// regression, one set: the rows it used); `None` when the table cannot name them (its
    /// batches did not all come from one [`crate::data::dataset`]), which sends it to a person.
    fn units(&self) -> Option<Units> {
        None
    }
    /// The table as CSV: one row per cell, in the order of [`Table::cells`].
    fn to_csv(&self) -> String;
}

/// A CSV table: the key variables and `statistics` as the header, then one row per cell of
/// its key labels and its statistics (already comma-separated).
pub(crate) fn csv_table(
    variables: &[String],
    statistics: &str,
    rows: impl Iterator<Item = (Vec<String>, String)>,
) -> String {
    let mut csv: String = variables.iter().map(|n| csv_field(n) + ",").collect();
    csv.push_str(statistics);
    csv.push('\n');
    for (key, values) in rows {
        for label in &key {
            csv.push_str(&csv_field(label));
            csv.push(',');
        }
        csv.push_str(&values);
        csv.push('\n');
    }
    csv
}

/// Quotes a CSV field when it needs it.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}
