//! Example analysis: income regressed on age, sex and education with the SDK's one-pass OLS,
//! exported with the residual degrees of freedom the disclosure checks need.

use ringfence_sdk::table::{Ols, Term};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terms =
        vec![Term::Numeric("age".into()), Term::Categorical("sex".into()), Term::Categorical("education".into())];
    let mut ols = Ols::new("income", terms);
    for batch in ringfence_sdk::data::dataset("persons")? {
        ols.add(&batch?)?;
    }
    let fit = ols.fit()?;
    println!("n = {}, residual dof = {}, R² = {:.4}", fit.n, fit.residual_dof, fit.r_squared);
    ringfence_sdk::export::table("income_regression.csv", &ols, "OLS of income on age, sex and education")?;
    Ok(())
}
