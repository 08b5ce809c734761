//! Sample analysis: the number of persons in each region of the demo population, exported as a
//! two-column CSV table. Reads `/data/persons/persons.csv` (the `region` column) and writes
//! `/export/region_counts.csv`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;

fn main() -> ExitCode {
    match count_regions() {
        Ok(regions) => {
            println!("counted {} regions", regions);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("region-counts: {err}");
            ExitCode::FAILURE
        }
    }
}

fn count_regions() -> Result<usize, Box<dyn std::error::Error>> {
    let mut lines = ringfence_sdk::data::open("persons", "persons.csv")?.lines();
    let header = lines.next().ok_or("persons.csv is empty")??;
    let column = header.split(',').position(|name| name == "region").ok_or("persons.csv has no region column")?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines {
        let line = line?;
        let region = line.split(',').nth(column).ok_or("a row has too few fields")?;
        match counts.get_mut(region) {
            Some(count) => *count += 1,
            None => {
                counts.insert(region.to_string(), 1);
            }
        }
    }
    let mut table = String::from("region,persons\n");
    for (region, count) in &counts {
        table.push_str(&format!("{region},{count}\n"));
    }
    ringfence_sdk::export::file("region_counts.csv", table.as_bytes())?;
    Ok(counts.len())
}
