//! Sample analysis: the number of persons in each region of the demo population, exported as a
//! two-column CSV table. Reads the `region` column of the dataset granted as `persons` and
//! writes `/export/region_counts.csv`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use ringfence_sdk::table::Text;

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
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for batch in persons {
        let batch = batch?;
        // Plain text or a category (dictionary-encoded): `Text` reads both.
        let regions = Text::of(&batch, "region")?;
        for row in 0..batch.num_rows() {
            let Some(region) = regions.get(row)? else { continue };
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
