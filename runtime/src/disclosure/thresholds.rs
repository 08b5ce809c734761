//! The numbers the checks judge by: defaults from docs/design.md §5, overridable per project in the
//! policy's `[disclosure]` table. Every report records the thresholds it used.

use serde::{Deserialize, Serialize};

/// Disclosure-check thresholds for one project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Threshold rule: fewest units a published cell may have (ACRO `safe_threshold`).
    pub min_units: u64,
    /// Dominance rule: how many of the largest contributors are summed (`n`, 1 or 2).
    pub dominance_n: u32,
    /// Dominance rule: the share of the cell total they may not reach (`k`, ACRO 0.90).
    pub dominance_k: f64,
    /// p% rule: the others' total must be at least this share of the largest value (0.10).
    pub p_ratio: f64,
    /// Regressions: fewest residual degrees of freedom (ACRO `safe_dof_threshold`).
    pub min_residual_dof: u64,
    /// Rounding base suggested as a fix for small counts (ACRO `safe_round_base`).
    pub rounding_base: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_units: 10,
            dominance_n: 2,
            dominance_k: 0.90,
            p_ratio: 0.10,
            min_residual_dof: 10,
            rounding_base: 5,
        }
    }
}
