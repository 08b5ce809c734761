//! Example analysis: persons by region × employment status, exported as a frequency table with
//! its manifest entry, so the disclosure checks can apply the threshold rule to every cell.

use ringfence_sdk::table::FrequencyTable;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut table = FrequencyTable::new(&["region", "employment_status"])?;
    for batch in ringfence_sdk::data::dataset("persons")? {
        table.add(&batch?)?;
    }
    ringfence_sdk::export::table("region_by_status.csv", &table, "Persons by region and employment status")?;
    Ok(())
}
