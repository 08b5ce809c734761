//! Sample analysis: the number of persons in each region of the demo population, exported as a
//! two-column CSV table. Reads the `region` column of the dataset granted as `persons` and
//! writes `/export/region_counts.csv`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use ringfence_sdk::arrow_array::{Array, StringArray};

fn main() -> ExitCode {
    match count_regions() {
        Ok(regions) => {
            println!("counted {regions} regions");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("region-counts: {err}");
            ExitCode::FAILURE
        }
    }
}

fn count_regions() -> Result<usize, Box<dyn std::error::Error>> {
    let persons = ringfence_sdk::data::dataset("persons")?;
    let column = persons.schema().index_of("region")?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for batch in persons {
        let batch = batch?;
        let regions =
            batch.column(column).as_any().downcast_ref::<StringArray>().ok_or("region is not a text column")?;
        for region in regions.iter().flatten() {
            match counts.get_mut(region) {
                Some(count) => *count += 1,
                None => {
                    counts.insert(region.to_string(), 1);
                }
            }
        }
    }
    let mut table = String::from("region,persons\n");
    for (region, count) in &counts {
        table.push_str(&format!("{region},{count}\n"));
    }
    ringfence_sdk::export::file("region_counts.csv", table.as_bytes(), "Persons per region")?;
    Ok(counts.len())
}
