//! The example analyses end to end: each runs under the sandbox on the fixed fixture, and its
//! exports and manifest hold exactly the values computed here, independently, from the CSV.
//! The same analysis built natively gives byte-identical outputs.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{TestLimits, run_guest};
use ringfence::catalog::Catalog;
use ringfence::sandbox::JobStatus;
use ringfence_sdk::manifest::{Manifest, OutputEntry, OutputKind};

/// The fixture's rows as (region, employment_status, income).
fn fixture_rows() -> Vec<(String, String, i64)> {
    let csv = std::fs::read_to_string(common::persons_csv()).expect("fixture");
    csv.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f[1].to_string(), f[6].to_string(), f[5].parse().expect("income"))
        })
        .collect()
}

fn manifest(ran: &common::Ran) -> Manifest {
    serde_json::from_slice(&ran.export("manifest.json")).expect("manifest.json")
}

/// Each cell's units, from the job's `manifest.units`, as row numbers.
fn units(ran: &common::Ran, entry: &OutputEntry) -> Vec<Vec<u32>> {
    let named = entry.units.as_ref().expect("the entry names its units");
    assert_eq!(named.mount, "persons");
    let file = ran.export(ringfence_sdk::units::UNITS_FILE);
    let block = &file[named.offset as usize..(named.offset + named.length) as usize];
    let cells = ringfence_sdk::units::read_block(block, entry.cells.len()).expect("units");
    cells.iter().map(|c| c.iter().collect()).collect()
}

/// The fixture's row numbers of each value of `key`, in key order.
fn rows_by<K: Ord>(key: impl Fn(&(String, String, i64)) -> K) -> Vec<Vec<u32>> {
    let mut rows: BTreeMap<K, Vec<u32>> = BTreeMap::new();
    for (i, row) in fixture_rows().iter().enumerate() {
        rows.entry(key(row)).or_default().push(i as u32);
    }
    rows.into_values().collect()
}

#[test]
fn crosstab_exports_exact_counts_and_their_manifest() {
    let ran = run_guest("crosstab", &[], TestLimits::default());
    assert_eq!(ran.record.status, JobStatus::Succeeded, "{}", ran.stderr());
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (region, status, _) in fixture_rows() {
        *expected.entry((region, status)).or_default() += 1;
    }
    let mut csv = String::from("region,employment_status,count\n");
    for ((region, status), count) in &expected {
        csv.push_str(&format!("{region},{status},{count}\n"));
    }
    assert_eq!(String::from_utf8(ran.export("region_by_employment_status.csv")).expect("utf8"), csv);

    let manifest = manifest(&ran);
    assert_eq!(manifest.version, 2);
    let entry = &manifest.outputs[0];
    assert_eq!((entry.file.as_str(), entry.kind), ("region_by_employment_status.csv", OutputKind::Frequency));
    assert_eq!(entry.variables, ["region", "employment_status"]);
    let cells: Vec<(Vec<String>, u64)> = entry.cells.iter().map(|c| (c.key.clone(), c.count)).collect();
    let wanted: Vec<(Vec<String>, u64)> = expected.iter().map(|((r, s), n)| (vec![r.clone(), s.clone()], *n)).collect();
    assert_eq!(cells, wanted);
    assert_eq!(units(&ran, entry), rows_by(|(region, status, _)| (region.clone(), status.clone())));
}

#[test]
fn income_by_region_exports_sums_means_and_largest_contributions() {
    let ran = run_guest("income-by-region", &[], TestLimits::default());
    assert_eq!(ran.record.status, JobStatus::Succeeded, "{}", ran.stderr());
    let mut by_region: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (region, _, income) in fixture_rows() {
        by_region.entry(region).or_default().push(income);
    }
    let mut csv = String::from("region,count,sum,mean\n");
    for (region, incomes) in &by_region {
        let sum: f64 = incomes.iter().map(|&v| v as f64).sum();
        csv.push_str(&format!("{region},{},{sum},{}\n", incomes.len(), sum / incomes.len() as f64));
    }
    assert_eq!(String::from_utf8(ran.export("income_by_region.csv")).expect("utf8"), csv);

    let entry = &manifest(&ran).outputs[0];
    assert_eq!((entry.kind, entry.value.as_deref()), (OutputKind::Magnitude, Some("income")));
    for (cell, (region, incomes)) in entry.cells.iter().zip(&by_region) {
        let mut sorted = incomes.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(cell.key, std::slice::from_ref(region));
        assert_eq!(cell.count, incomes.len() as u64);
        assert_eq!(cell.top1, Some(sorted[0] as f64));
        assert_eq!(cell.top2, Some(sorted.get(1).copied().unwrap_or(0) as f64));
        assert_eq!(cell.zeros, Some(incomes.iter().filter(|&&v| v == 0).count() as u64));
        assert_eq!(cell.missing, Some(0));
    }
}

#[test]
fn native_and_wasm_builds_give_identical_outputs() {
    for (example, output) in [
        ("income-by-region", "income_by_region.csv"),
        ("crosstab", "region_by_employment_status.csv"),
        ("ols", "income_regression.csv"),
    ] {
        let ran = run_guest(example, &[], TestLimits::default());
        assert_eq!(ran.record.status, JobStatus::Succeeded);
        let catalog = Catalog::open(ran.home.root()).expect("catalog");
        let persons = catalog.get("persons", 1).expect("persons");
        let columns: Vec<String> = common::GRANTED_COLUMNS.iter().map(|c| c.to_string()).collect();
        let projection = catalog.project(&persons, &columns, None, false).expect("projection");
        assert!(projection.reused);

        let data_root = ran.dir.path().join("native-data");
        std::fs::create_dir(&data_root).expect("mkdir");
        std::os::unix::fs::symlink(&projection.dir, data_root.join("persons")).expect("symlink");
        let export = ran.dir.path().join("native-export");
        std::fs::create_dir(&export).expect("mkdir");
        let native = common::root().join("target/debug").join(example);
        assert!(native.exists(), "{} is missing: run scripts/test, which builds it", native.display());
        let status = Command::new(&native)
            .env("RINGFENCE_DATA_DIR", &data_root)
            .env("RINGFENCE_EXPORT_DIR", &export)
            .status()
            .expect("run native build");
        assert!(status.success());
        for file in [output, "manifest.json"] {
            assert_eq!(
                std::fs::read(export.join(file)).expect("native output"),
                ran.export(file),
                "{example}: {file} differs"
            );
        }
    }
}

/// Least squares by modified Gram–Schmidt QR of the design matrix: a different algorithm from
/// the SDK's normal equations, for an independent check.
fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let k = x[0].len();
    let mut q: Vec<Vec<f64>> = (0..k).map(|j| x.iter().map(|row| row[j]).collect()).collect();
    // r_columns[j][i] is R[i][j]: column j of the upper-triangular factor.
    let mut r_columns = vec![vec![0.0; k]; k];
    for (j, r_column) in r_columns.iter_mut().enumerate() {
        let (done, rest) = q.split_at_mut(j);
        let column = &mut rest[0];
        for (i, basis) in done.iter().enumerate() {
            let dot: f64 = basis.iter().zip(column.iter()).map(|(a, b)| a * b).sum();
            r_column[i] = dot;
            for (v, u) in column.iter_mut().zip(basis) {
                *v -= dot * u;
            }
        }
        let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
        r_column[j] = norm;
        for v in column.iter_mut() {
            *v /= norm;
        }
    }
    let qty: Vec<f64> = q.iter().map(|column| column.iter().zip(y).map(|(a, b)| a * b).sum()).collect();
    let mut b = vec![0.0; k];
    for j in (0..k).rev() {
        let later: f64 = (j + 1..k).map(|m| r_columns[m][j] * b[m]).sum();
        b[j] = (qty[j] - later) / r_columns[j][j];
    }
    b
}

#[test]
fn ols_exports_coefficients_and_residual_degrees_of_freedom() {
    let ran = run_guest("ols", &[], TestLimits::default());
    assert_eq!(ran.record.status, JobStatus::Succeeded, "{}", ran.stderr());
    let csv = std::fs::read_to_string(common::persons_csv()).expect("fixture");
    let levels = ["doctorate", "master", "primary", "secondary", "vocational"];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let mut row = vec![1.0, f[2].parse().expect("age"), f64::from(u8::from(f[3] == "M"))];
        row.extend(levels.iter().map(|l| f64::from(u8::from(f[7] == *l))));
        x.push(row);
        y.push(f[5].parse::<f64>().expect("income"));
    }
    let expected = least_squares(&x, &y);

    let entry = &manifest(&ran).outputs[0];
    assert_eq!(entry.kind, OutputKind::Regression);
    let fit = entry.regression.as_ref().expect("regression summary");
    assert_eq!((fit.n, fit.residual_dof), (2000, 2000 - 8));
    let terms: Vec<&str> = fit.coefficients.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(
        terms,
        [
            "(intercept)",
            "age",
            "sex=M",
            "education=doctorate",
            "education=master",
            "education=primary",
            "education=secondary",
            "education=vocational"
        ]
    );
    for (c, want) in fit.coefficients.iter().zip(&expected) {
        assert!((c.estimate - want).abs() <= 1e-6 * want.abs().max(1.0), "{}: {} vs {want}", c.term, c.estimate);
        assert!(c.std_error > 0.0 && c.std_error.is_finite());
    }
    let exported = String::from_utf8(ran.export("income_regression.csv")).expect("utf8");
    assert!(exported.starts_with("term,estimate,std_error\n(intercept),"), "{exported}");
    assert_eq!(exported.lines().count(), 9);
    assert_eq!(ran.stdout().lines().next().map(|l| l.starts_with("n = 2000, residual dof = 1992")), Some(true));
}

#[test]
fn a_c_analysis_reads_the_csv_grant_and_writes_a_manifest_the_host_understands() {
    let limits = TestLimits { grant_extra: "csv = true", ..TestLimits::default() };
    let ran = run_guest("c-income", &[], limits);
    assert_eq!(ran.record.status, JobStatus::Succeeded, "{}", ran.stderr());
    let mut by_region: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (region, _, income) in fixture_rows() {
        by_region.entry(region).or_default().push(income);
    }
    let mut csv = String::from("region,count,sum\n");
    for (region, incomes) in &by_region {
        csv.push_str(&format!("{region},{},{}\n", incomes.len(), incomes.iter().sum::<i64>()));
    }
    assert_eq!(String::from_utf8(ran.export("income_by_region_c.csv")).expect("utf8"), csv);
    let entry = &manifest(&ran).outputs[0];
    assert_eq!((entry.kind, entry.file.as_str()), (OutputKind::Magnitude, "income_by_region_c.csv"));
    for (cell, (region, incomes)) in entry.cells.iter().zip(&by_region) {
        assert_eq!(cell.key, std::slice::from_ref(region));
        assert_eq!(cell.top1, incomes.iter().max().map(|&v| v as f64));
    }
    assert_eq!(units(&ran, entry), rows_by(|(region, _, _)| region.clone()), "the C analysis names each cell's rows");
    assert_eq!(ran.stdout(), format!("{} regions\n", by_region.len()));
}

#[test]
fn without_a_csv_grant_the_c_analysis_finds_no_csv() {
    let ran = run_guest("c-income", &[], TestLimits::default());
    assert_eq!(ran.record.status, JobStatus::Exited(1));
    assert!(ran.stderr().contains("the grant needs csv = true"), "{}", ran.stderr());
    assert!(ran.record.exports.is_empty());
}
