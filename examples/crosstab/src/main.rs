//! Example analysis: persons by two (or more) variables, exported as a frequency table with its
//! manifest entry, so the disclosure checks can apply the threshold rule to every cell.
//!
//! The variables come from the arguments (`crosstab region age`); without arguments it
//! tabulates region × employment status.

use ringfence_sdk::table::FrequencyTable;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let variables: Vec<&str> =
        if args.is_empty() { vec!["region", "employment_status"] } else { args.iter().map(String::as_str).collect() };
    let mut table = FrequencyTable::new(&variables)?;
    for batch in ringfence_sdk::data::dataset("persons")? {
        table.add(&batch?)?;
    }
    let name = format!("{}.csv", variables.join("_by_"));
    let description = format!("Persons by {}", variables.join(" and "));
    ringfence_sdk::export::table(&name, &table, &description)?;
    Ok(())
}
