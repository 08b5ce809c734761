//! The synthetic demo population: a realistic person file that ships with ringfence, so a fresh
//! machine needs no outside data and the disclosure checks have something to find.
//!
//! Municipalities, provinces and their relative sizes follow the Netherlands (including a few
//! very small municipalities, whose cells fail minimum-count rules); ages, household sizes,
//! employment and education depend on one another plausibly; income is log-normal with a few
//! very large values, so dominance rules trigger. Deterministic for a seed.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

use super::import::{BATCH_ROWS, ImportProgress, ProgressUnit};
use super::{Catalog, CatalogError, DatasetVersion, SourceFormat, check_name};

/// (municipality, province, population in thousands, roughly).
const MUNICIPALITIES: &[(&str, &str, u32)] = &[
    ("Groningen", "Groningen", 235),
    ("Het Hogeland", "Groningen", 48),
    ("Leeuwarden", "Friesland", 125),
    ("Sudwest-Fryslan", "Friesland", 90),
    ("Schiermonnikoog", "Friesland", 1),
    ("Vlieland", "Friesland", 1),
    ("Assen", "Drenthe", 69),
    ("Emmen", "Drenthe", 108),
    ("Zwolle", "Overijssel", 131),
    ("Enschede", "Overijssel", 161),
    ("Deventer", "Overijssel", 102),
    ("Almere", "Flevoland", 218),
    ("Lelystad", "Flevoland", 81),
    ("Urk", "Flevoland", 22),
    ("Arnhem", "Gelderland", 165),
    ("Nijmegen", "Gelderland", 179),
    ("Apeldoorn", "Gelderland", 165),
    ("Rozendaal", "Gelderland", 2),
    ("Utrecht", "Utrecht", 367),
    ("Amersfoort", "Utrecht", 160),
    ("Amsterdam", "Noord-Holland", 931),
    ("Haarlem", "Noord-Holland", 164),
    ("Zaanstad", "Noord-Holland", 158),
    ("Rotterdam", "Zuid-Holland", 664),
    ("'s-Gravenhage", "Zuid-Holland", 562),
    ("Leiden", "Zuid-Holland", 127),
    ("Dordrecht", "Zuid-Holland", 121),
    ("Middelburg", "Zeeland", 49),
    ("Vlissingen", "Zeeland", 45),
    ("Eindhoven", "Noord-Brabant", 243),
    ("Tilburg", "Noord-Brabant", 229),
    ("Breda", "Noord-Brabant", 188),
    ("'s-Hertogenbosch", "Noord-Brabant", 160),
    ("Maastricht", "Limburg", 122),
    ("Venlo", "Limburg", 102),
    ("Heerlen", "Limburg", 87),
];

/// Relative frequency of ages 0–99 by decade.
const AGE_DECADE_WEIGHTS: [u32; 10] = [105, 115, 130, 125, 120, 135, 120, 95, 45, 10];
/// Relative frequency of household sizes 1–6.
const HOUSEHOLD_WEIGHTS: [u32; 6] = [38, 33, 12, 12, 4, 1];
const EDUCATION: [&str; 6] = ["primary", "secondary", "vocational", "bachelor", "master", "doctorate"];
const EDUCATION_WEIGHTS: [u32; 6] = [10, 25, 33, 18, 12, 2];

/// Picks an index with probability proportional to its weight.
fn weighted(rng: &mut Pcg64Mcg, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if pick < w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

/// A synthetic person file of `rows` people, determined by `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPopulation {
    /// Number of persons.
    pub rows: u64,
    /// Random seed: the same seed gives the same people.
    pub seed: u64,
}

impl DemoPopulation {
    /// The columns of the person file.
    pub fn schema() -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let int = |name: &str| Field::new(name, DataType::Int64, false);
        Arc::new(Schema::new(vec![
            int("person_id"),
            text("municipality"),
            text("region"),
            int("age"),
            text("sex"),
            int("household_size"),
            int("income"),
            text("employment_status"),
            text("education"),
        ]))
    }

    /// The population as record batches of up to [`BATCH_ROWS`] rows.
    pub fn batches(self) -> impl Iterator<Item = RecordBatch> {
        let mut rng = Pcg64Mcg::seed_from_u64(self.seed);
        let municipality_weights: Vec<u32> = MUNICIPALITIES.iter().map(|m| m.2).collect();
        let income = LogNormal::new(10.45, 0.62).expect("constant parameters are valid");
        let mut next_id = 1u64;
        std::iter::from_fn(move || {
            if next_id > self.rows {
                return None;
            }
            let n = (self.rows - next_id + 1).min(BATCH_ROWS as u64) as usize;
            let mut ids = Int64Builder::with_capacity(n);
            let mut municipality = StringBuilder::with_capacity(n, n * 10);
            let mut region = StringBuilder::with_capacity(n, n * 10);
            let mut age = Int64Builder::with_capacity(n);
            let mut sex = StringBuilder::with_capacity(n, n);
            let mut household = Int64Builder::with_capacity(n);
            let mut incomes = Int64Builder::with_capacity(n);
            let mut status = StringBuilder::with_capacity(n, n * 8);
            let mut education = StringBuilder::with_capacity(n, n * 9);
            for _ in 0..n {
                let place = MUNICIPALITIES[weighted(&mut rng, &municipality_weights)];
                let years = (weighted(&mut rng, &AGE_DECADE_WEIGHTS) * 10 + rng.random_range(0..10)) as i64;
                let employment = match years {
                    0..=17 => "student",
                    18..=24 if rng.random_bool(0.55) => "student",
                    67.. if rng.random_bool(0.93) => "retired",
                    _ => [
                        "employed",
                        "employed",
                        "employed",
                        "employed",
                        "self_employed",
                        "unemployed",
                        "not_in_labour_force",
                    ][rng.random_range(0..7)],
                };
                let earned: f64 = match employment {
                    "student" if years < 15 => 0.0,
                    "student" => income.sample(&mut rng) * 0.2,
                    "unemployed" | "not_in_labour_force" => income.sample(&mut rng) * 0.35,
                    "retired" => income.sample(&mut rng) * 0.6,
                    "self_employed" => income.sample(&mut rng) * 1.2,
                    _ => income.sample(&mut rng),
                };
                let outlier = if rng.random_bool(0.001) { rng.random_range(30.0..300.0) } else { 1.0 };
                let level = if years < 16 { 0 } else { weighted(&mut rng, &EDUCATION_WEIGHTS) };
                ids.append_value(next_id as i64);
                municipality.append_value(place.0);
                region.append_value(place.1);
                age.append_value(years);
                sex.append_value(if rng.random_bool(0.5) { "F" } else { "M" });
                household.append_value(weighted(&mut rng, &HOUSEHOLD_WEIGHTS) as i64 + 1);
                incomes.append_value((earned * outlier).round() as i64);
                status.append_value(employment);
                education.append_value(EDUCATION[level]);
                next_id += 1;
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(ids.finish()),
                Arc::new(municipality.finish()),
                Arc::new(region.finish()),
                Arc::new(age.finish()),
                Arc::new(sex.finish()),
                Arc::new(household.finish()),
                Arc::new(incomes.finish()),
                Arc::new(status.finish()),
                Arc::new(education.finish()),
            ];
            RecordBatch::try_new(Self::schema(), columns).ok()
        })
    }
}

impl Catalog {
    /// Generates `population` and stores it as a new version of dataset `name`.
    pub fn generate_demo(
        &self,
        name: &str,
        population: DemoPopulation,
        progress: &dyn ImportProgress,
    ) -> Result<DatasetVersion, CatalogError> {
        check_name(name)?;
        progress.start(population.rows, ProgressUnit::Rows);
        let mut done = 0u64;
        let batches = population.batches().map(|batch| {
            done += batch.num_rows() as u64;
            progress.advance_to(done);
            Ok::<_, std::convert::Infallible>(batch)
        });
        let source = format!("generate-demo rows={} seed={}", population.rows, population.seed);
        let schema = DemoPopulation::schema();
        self.store(name, std::path::Path::new(&source), SourceFormat::Generated, &schema, batches, |e| match e {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_people() {
        let a: Vec<RecordBatch> = DemoPopulation { rows: 1000, seed: 7 }.batches().collect();
        let b: Vec<RecordBatch> = DemoPopulation { rows: 1000, seed: 7 }.batches().collect();
        let c: Vec<RecordBatch> = DemoPopulation { rows: 1000, seed: 8 }.batches().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
    }

    #[test]
    fn batches_cover_all_rows_across_batch_boundaries() {
        let rows = BATCH_ROWS as u64 + 5;
        let batches: Vec<RecordBatch> = DemoPopulation { rows, seed: 1 }.batches().collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].num_rows(), 5);
    }
}
