//! The export manifest: what each structured output is, so the host's disclosure checks can
//! judge it without guessing from a CSV.
//!
//! [`crate::export::table`] appends an [`OutputEntry`] to `/export/manifest.json` for every
//! table it writes. Guests in other languages may write the same JSON; the host treats the
//! manifest as a claim to verify, never as truth. Version 1:
//!
//! ```json
//! {
//!   "version": 1,
//!   "outputs": [{
//!     "file": "income_by_region.csv",
//!     "kind": "magnitude",
//!     "description": "Mean and total income by region",
//!     "variables": ["region"],
//!     "value": "income",
//!     "cells": [{"key": ["Utrecht"], "count": 812, "sum": 3.1e7, "top1": 2.0e6, "top2": 1.1e6,
//!                "negatives": 0, "zeros": 3, "missing": 0}]
//!   }]
//! }
//! ```

use serde::{Deserialize, Serialize};

/// The manifest format version this SDK writes.
pub const MANIFEST_VERSION: u32 = 1;

/// The file name of the manifest under `/export/`; no output may use it.
pub const MANIFEST_FILE: &str = "manifest.json";

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

/// One output file and the statistics behind each of its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputEntry {
    /// The file's name under `/export/`.
    pub file: String,
    /// What the file holds.
    pub kind: OutputKind,
    /// The researcher's description.
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
