//! Example analysis: mean and total income by region, exported as a magnitude table whose
//! manifest entry carries each cell's two largest incomes, so the disclosure checks can apply
//! the dominance and p% rules.

use ringfence_sdk::table::MagnitudeTable;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut table = MagnitudeTable::new(&["region"], "income")?;
    for batch in ringfence_sdk::data::dataset("persons")? {
        table.add(&batch?)?;
    }
    ringfence_sdk::export::table("income_by_region.csv", &table, "Mean and total income by region")?;
    Ok(())
}
