//! Regression rule: enough residual degrees of freedom that the fit does not pin down
//! individual observations.

use ringfence_sdk::manifest::OutputEntry;

use super::{Check, CheckResult, Outcome, Thresholds};

/// Checks the regression's residual degrees of freedom.
pub(super) fn check(entry: &OutputEntry, thresholds: &Thresholds) -> CheckResult {
    let min = thresholds.min_residual_dof;
    let Some(fit) = &entry.regression else {
        return CheckResult {
            check: Check::ResidualDof,
            outcome: Outcome::Review,
            summary: "the manifest declares a regression but gives no fit summary".into(),
            findings: vec![],
            suggestion: Some("export regressions with ringfence_sdk::table::Ols".into()),
        };
    };
    let expected = fit.n.saturating_sub(fit.coefficients.len() as u64);
    if fit.residual_dof != expected {
        return CheckResult {
            check: Check::ResidualDof,
            outcome: Outcome::Fail,
            summary: format!(
                "the manifest claims {} residual degrees of freedom, but {} observations and {} coefficients leave {expected}",
                fit.residual_dof,
                fit.n,
                fit.coefficients.len()
            ),
            findings: vec![],
            suggestion: None,
        };
    }
    if fit.residual_dof < min {
        return CheckResult {
            check: Check::ResidualDof,
            outcome: Outcome::Fail,
            summary: format!(
                "the regression has {} residual degrees of freedom ({} observations, {} coefficients); minimum is {min}",
                fit.residual_dof,
                fit.n,
                fit.coefficients.len()
            ),
            findings: vec![],
            suggestion: Some(
                "use more observations or fewer terms (merge categories of categorical regressors)".into(),
            ),
        };
    }
    CheckResult::pass(Check::ResidualDof, format!("{} residual degrees of freedom; minimum is {min}", fit.residual_dof))
}
