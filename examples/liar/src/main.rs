//! Hostile analysis: tables built with the SDK, then doctored the way a researcher trying to
//! get a disclosive number past the checks would. `tests/queue.rs` runs each mode and expects
//! the checks to catch it.
//!
//! - `frequency-with-maximum`: a frequency table of persons by region whose CSV also carries
//!   each region's largest income (one person's value) in a `p100` column;
//! - `invented-contributions`: income by region, with harmless largest contributions written
//!   into the manifest in place of the real ones;
//! - `one-person-sum`: income by region whose first cell's sum (file and manifest alike) is one
//!   person's income;
//! - `reordered N`: persons by region × sex over every row, and by sex × region over all but
//!   the first `N` rows, in one job;
//! - `region-minus N`: persons by region over all but the first `N` rows (for differencing
//!   with an earlier job's table).

use std::process::ExitCode;

use ringfence_sdk::arrow_array::{Array, Int64Array, RecordBatch};
use ringfence_sdk::export;
use ringfence_sdk::manifest::{MANIFEST_FILE, Manifest};
use ringfence_sdk::table::{FrequencyTable, MagnitudeTable, Table, Text};

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0);
    let done = match args.get(1).map(String::as_str) {
        Some("frequency-with-maximum") => frequency_with_maximum(),
        Some("invented-contributions") => doctor_magnitude(|manifest| {
            for cell in &mut manifest.outputs[0].cells {
                let mean = cell.sum.unwrap_or(0.0) / cell.count.max(1) as f64;
                (cell.top1, cell.top2) = (Some(mean), Some(mean));
            }
        }),
        Some("one-person-sum") => one_person_sum(),
        Some("reordered") => reordered(number(2)),
        Some("region-minus") => region_minus(number(2)),
        other => Err(format!("unknown mode {other:?}").into()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("liar: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Every batch of the persons dataset, with the first `skip` rows left out.
fn batches(skip: usize) -> Result<Vec<RecordBatch>, Error> {
    let mut left = skip;
    let mut kept = Vec::new();
    for batch in ringfence_sdk::data::dataset("persons")? {
        let batch = batch?;
        let dropped = left.min(batch.num_rows());
        left -= dropped;
        kept.push(batch.slice(dropped, batch.num_rows() - dropped));
    }
    Ok(kept)
}

fn frequency(columns: &[&str], skip: usize) -> Result<FrequencyTable, Error> {
    let mut table = FrequencyTable::new(columns)?;
    for batch in batches(skip)? {
        table.add(&batch)?;
    }
    Ok(table)
}

fn income_by_region() -> Result<MagnitudeTable, Error> {
    let mut table = MagnitudeTable::new(&["region"], "income")?;
    for batch in batches(0)? {
        table.add(&batch)?;
    }
    Ok(table)
}

fn read_manifest() -> Result<Manifest, Error> {
    Ok(serde_json::from_slice(&std::fs::read(export::dir().join(MANIFEST_FILE))?)?)
}

fn write_manifest(manifest: &Manifest) -> Result<(), Error> {
    std::fs::write(export::dir().join(MANIFEST_FILE), serde_json::to_vec(manifest)?)?;
    Ok(())
}

fn frequency_with_maximum() -> Result<(), Error> {
    let table = frequency(&["region"], 0)?;
    export::table("persons_by_region.csv", &table, "Persons by region")?;
    let mut largest = std::collections::BTreeMap::<String, f64>::new();
    for batch in batches(0)? {
        let regions = Text::of(&batch, "region")?;
        let income = batch.column_by_name("income").ok_or("no income")?;
        let income = income.as_any().downcast_ref::<Int64Array>().ok_or("income type")?;
        for row in 0..batch.num_rows() {
            if let (Some(region), false) = (regions.get(row)?, income.is_null(row)) {
                let top = largest.entry(region.to_string()).or_insert(f64::MIN);
                *top = top.max(income.value(row) as f64);
            }
        }
    }
    let mut csv = String::from("region,count,p100\n");
    for cell in table.cells() {
        let top = largest.get(&cell.key[0]).copied().unwrap_or_default();
        csv.push_str(&format!("{},{},{top}\n", cell.key[0], cell.count));
    }
    std::fs::write(export::dir().join("persons_by_region.csv"), csv)?;
    Ok(())
}

/// Income by region, exported, then its manifest rewritten by `doctor`.
fn doctor_magnitude(doctor: impl FnOnce(&mut Manifest)) -> Result<(), Error> {
    export::table("income_by_region.csv", &income_by_region()?, "Income by region")?;
    let mut manifest = read_manifest()?;
    doctor(&mut manifest);
    write_manifest(&manifest)
}

fn one_person_sum() -> Result<(), Error> {
    let table = income_by_region()?;
    let first = batches(0)?.into_iter().next().ok_or("no rows")?;
    let income = first.column_by_name("income").ok_or("no income")?;
    let income = income.as_any().downcast_ref::<Int64Array>().ok_or("income type")?;
    let one = income.value(0) as f64;
    doctor_magnitude(|manifest| manifest.outputs[0].cells[0].sum = Some(one))?;
    let stats = table.stats();
    let mut csv = String::from("region,count,sum,mean\n");
    for (i, (key, cell)) in stats.iter().enumerate() {
        let sum = if i == 0 { one } else { cell.sum };
        csv.push_str(&format!("{},{},{sum},{}\n", key[0], cell.count, sum / cell.count as f64));
    }
    std::fs::write(export::dir().join("income_by_region.csv"), csv)?;
    Ok(())
}

fn reordered(skip: usize) -> Result<(), Error> {
    export::table("region_by_sex.csv", &frequency(&["region", "sex"], 0)?, "Persons by region and sex")?;
    export::table("sex_by_region.csv", &frequency(&["sex", "region"], skip)?, "Persons by sex and region")?;
    Ok(())
}

fn region_minus(skip: usize) -> Result<(), Error> {
    export::table("region_minus.csv", &frequency(&["region"], skip)?, "Persons by region")?;
    Ok(())
}
