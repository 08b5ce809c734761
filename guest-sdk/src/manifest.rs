//! The export manifest: what each structured output is, so the host's disclosure checks can
//! judge it without guessing from a CSV.
//!
//! [`crate::export::table`] appends an [`OutputEntry`] to `/export/manifest.json` for every
//! table it writes. Guests in other languages may write the same JSON; the host treats the
//! manifest as a claim to verify, never as truth. Version 2:
//!
//! ```json
//! {
//!   "version": 2,
//!   "outputs": [{
//!     "file": "income_by_region.csv",
//!     "kind": "magnitude",
//!     "description": "Mean and total income by region",
//!     "variables": ["region"],
//!     "value": "income",
//!     "cells": [{"key": ["Utrecht"], "count": 812, "sum": 3.1e7, "top1": 2.0e6, "top2": 1.1e6,
//!                "negatives": 0, "zeros": 3, "missing": 0}],
//!     "units": {"mount": "persons", "offset": 0, "length": 1630}
//!   }]
//! }
//! ```
//!
//! `units` (new in version 2) says which rows of the mount's `data.arrow` each cell was
//! computed from: bytes `offset..offset + length` of [`crate::units::UNITS_FILE`] hold one
//! Roaring bitmap per cell, in cell order, each in the portable serialization, back to back (a
//! regression has one: the rows it used). For a magnitude or quantile table a cell's units are
//! all its rows, those whose value is missing included. The host recomputes every number from
//! those rows; an output without units (version 1, or a table whose rows the analysis could not
//! name) is never cleared without a person.
//!
//! Each kind publishes its own columns after the key variables, and no others: `count` for a
//! frequency table; `count,sum,mean` for a magnitude table; `count` and one column per
//! quantile (`p50`, `p2.5`) for a quantile table; `term,estimate,std_error` rows for a
//! regression.

use serde::{Deserialize, Serialize};

/// The manifest format version this SDK writes.
pub const MANIFEST_VERSION: u32 = 2;

/// The versions the host reads: version 1 has no units.
pub const MANIFEST_VERSIONS: std::ops::RangeInclusive<u32> = 1..=MANIFEST_VERSION;

/// The file name of the manifest under `/export/`; no output may use it.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The files that describe a job's outputs rather than being outputs: the manifest and its
/// units. The host keeps them for the checks; they are never released.
pub const MANIFEST_FILES: [&str; 2] = [MANIFEST_FILE, crate::units::UNITS_FILE];

/// The longest export name the host accepts, in bytes.
pub const MAX_EXPORT_NAME_BYTES: usize = 100;

/// Why `name` cannot name an export, or `None` when it can. Export names are plain file names
/// of at most [`MAX_EXPORT_NAME_BYTES`] bytes from `A-Z a-z 0-9 . _ -`, not `.` or `..` and not
/// the manifest's own: a name is shown to checkers and, after release, to the researcher, so it
/// must carry nothing a terminal or a page could interpret. The host refuses every other file
/// under `/export/` when the job ends, and the SDK refuses it before writing.
///
/// ```
/// use ringfence_sdk::manifest::export_name_problem;
/// assert_eq!(export_name_problem("income_by_region.csv"), None);
/// assert!(export_name_problem("../escape.csv").is_some());
/// assert!(export_name_problem("caf\u{e9}.csv").is_some());
/// ```
pub fn export_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the name is empty")
    } else if name.len() > MAX_EXPORT_NAME_BYTES {
        Some("the name is longer than 100 bytes")
    } else if name == "." || name == ".." {
        Some("the name is . or ..")
    } else if MANIFEST_FILES.contains(&name) {
        Some("the name is the manifest's")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        Some("the name has characters outside A-Z a-z 0-9 . _ -")
    } else {
        None
    }
}

/// All structured outputs of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version; [`MANIFEST_VERSION`].
    pub version: u32,
    /// One entry per output file.
    pub outputs: Vec<OutputEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest { version: MANIFEST_VERSION, outputs: Vec::new() }
    }
}

/// What kind of statistic an output holds: it decides which disclosure checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Counts of units per cell (threshold rule).
    Frequency,
    /// Sums or means of a value per cell (threshold, dominance and p% rules).
    Magnitude,
    /// Quantiles of a value per cell (single-unit quantiles, minimum and maximum).
    Quantiles,
    /// A fitted regression (residual degrees of freedom).
    Regression,
    /// A free-form file (plot, text, anything else): always reviewed by a person.
    File,
}

impl OutputKind {
    /// Every kind.
    pub const ALL: [OutputKind; 5] =
        [OutputKind::Frequency, OutputKind::Magnitude, OutputKind::Quantiles, OutputKind::Regression, OutputKind::File];

    /// The kind's name as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Frequency => "frequency",
            OutputKind::Magnitude => "magnitude",
            OutputKind::Quantiles => "quantiles",
            OutputKind::Regression => "regression",
            OutputKind::File => "file",
        }
    }
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for OutputKind {
    type Err = String;

    fn from_str(s: &str) -> Result<OutputKind, String> {
        OutputKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown output kind {s:?}"))
    }
}

/// One output file and the statistics behind each of its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputEntry {
    /// The file's name under `/export/`.
    pub file: String,
    /// What the file holds.
    pub kind: OutputKind,
    /// What the output is, as the analysis describes it. The host shows it to checkers only,
    /// as the guest's words; the researcher's own description is typed through the service.
    pub description: String,
    /// The variables that define the cells, in key order.
    pub variables: Vec<String>,
    /// For magnitude tables, the variable summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Every cell, in the order of the file's rows (empty for regressions).
    #[serde(default)]
    pub cells: Vec<Cell>,
    /// For regressions, the fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionSummary>,
    /// Where the cells' units are (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<UnitsRef>,
}

/// Where in [`crate::units::UNITS_FILE`] an output's units are, and which data they index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsRef {
    /// The mount whose `data.arrow` the row numbers index.
    pub mount: String,
    /// The block's first byte.
    pub offset: u64,
    /// The block's length in bytes.
    pub length: u64,
}

/// One quantile of a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantileValue {
    /// The probability, in \[0, 1\]; 0 is the minimum, 1 the maximum.
    pub p: f64,
    /// The quantile (linear interpolation between order statistics, as R's type 7).
    pub value: f64,
    /// How many units have exactly this value: 1 means the quantile is one unit's value.
    pub units_at_value: u64,
}

/// What the disclosure checks need of a regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionSummary {
    /// The dependent variable.
    pub dependent: String,
    /// Observations used.
    pub n: u64,
    /// Residual degrees of freedom: `n` minus the number of estimated coefficients.
    pub residual_dof: u64,
    /// R², the share of variance explained.
    pub r_squared: f64,
    /// The estimated coefficients.
    pub coefficients: Vec<Coefficient>,
}

/// One estimated coefficient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coefficient {
    /// `(intercept)`, a numeric variable's name, or `variable=category` for a dummy.
    pub term: String,
    /// The estimate.
    pub estimate: f64,
    /// Its standard error.
    pub std_error: f64,
}

/// The statistics behind one cell.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// The cell's category for each variable.
    pub key: Vec<String>,
    /// Units (rows) in the cell.
    pub count: u64,
    /// Magnitude tables: the sum of the value over the cell's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Magnitude tables: the largest single unit's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
    /// Magnitude tables: the second largest single unit's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top2: Option<f64>,
    /// Magnitude tables: units with a negative value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negatives: Option<u64>,
    /// Magnitude tables: units with a zero value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zeros: Option<u64>,
    /// Magnitude and quantile tables: units whose value is missing (not counted in `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<u64>,
    /// Quantile tables: the quantiles of the cell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<QuantileValue>,
}
