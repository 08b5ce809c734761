//! The automated disclosure checks on hand-built tables with known answers, including the edge
//! cases: empty tables, all-zero cells, ties in dominance, negative and missing values, lying
//! files, free-form files, differencing and suppression with safe margins.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use ringfence::disclosure::data::{Categorical, JobData, MountData, Numeric};
use ringfence::disclosure::{self, CellIndex, IndexedCell, NoIndex, Outcome, Report, Subject, Thresholds};
use ringfence_sdk::manifest::{Cell, Coefficient, OutputEntry, OutputKind, QuantileValue, RegressionSummary, UnitsRef};
use ringfence_sdk::units::{RoaringBitmap, write_block};

/// Per-key unit counts, as a recount returns them.
type Counts = ringfence::disclosure::data::Counts;

/// One mount held in memory: `persons`, with text key columns and numeric value columns.
#[derive(Default)]
struct Memory {
    rows: u64,
    columns: Vec<String>,
    keys: HashMap<String, Vec<String>>,
    values: HashMap<String, Vec<f64>>,
    counts: Option<Counts>,
}

impl MountData for Memory {
    fn rows(&self) -> u64 {
        self.rows
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn unit_space(&self) -> &str {
        "memory"
    }

    fn categorical(&self, column: &str) -> Result<Categorical, String> {
        let labels_of_rows = self.keys.get(column).ok_or_else(|| format!("no text column {column}"))?;
        Ok(Categorical::from_labels(labels_of_rows.iter().map(String::as_str)))
    }

    fn numeric(&self, column: &str) -> Result<Numeric, String> {
        self.values.get(column).cloned().map(Numeric::from).ok_or_else(|| format!("no numeric column {column}"))
    }
}

impl JobData for Memory {
    fn counts(&self, _: &[String], _: Option<&str>) -> Result<Counts, String> {
        self.counts.clone().ok_or_else(|| "no dataset the job saw has these variables".into())
    }

    fn mount(&self, name: &str) -> Result<&dyn MountData, String> {
        if name == "persons" && self.rows > 0 { Ok(self) } else { Err(format!("no mount {name}")) }
    }
}

/// Data with exactly the given counts per key and no rows (an output without units).
fn counted(counts: Counts) -> Memory {
    Memory { counts: Some(counts), ..Memory::default() }
}

/// An output, the data its cells were computed from, and the block of units naming the rows.
struct Truth {
    entry: OutputEntry,
    data: Memory,
    block: Vec<u8>,
}

/// The values of a magnitude cell's units that give its claimed statistics: the two largest,
/// the negatives (-1 each), the zeros, equal shares of the rest of the sum, and missing ones.
fn values_of(cell: &Cell) -> Vec<f64> {
    let (negatives, zeros, missing) = (cell.negatives.unwrap_or(0), cell.zeros.unwrap_or(0), cell.missing.unwrap_or(0));
    let (top1, top2, sum) = (cell.top1.unwrap_or(0.0), cell.top2.unwrap_or(0.0), cell.sum.unwrap_or(0.0));
    let mut values: Vec<f64> = [top1, top2].into_iter().take(cell.count as usize).collect();
    values.extend(std::iter::repeat_n(-1.0, negatives as usize));
    values.extend(std::iter::repeat_n(0.0, zeros.min(cell.count.saturating_sub(values.len() as u64)) as usize));
    let rest = cell.count.saturating_sub(values.len() as u64);
    let share = (sum - values.iter().sum::<f64>()) / rest.max(1) as f64;
    values.extend(std::iter::repeat_n(share, rest as usize));
    values.extend(std::iter::repeat_n(f64::NAN, missing as usize));
    values
}

/// `entry` with units, over data made to match it: each cell gets its own rows, and the host's
/// recomputation finds the claimed numbers. `values` gives a cell's values (NaN for missing)
/// where the claim alone cannot (quantiles); otherwise they are made from the claim.
fn truthful_with(entry: &OutputEntry, values: Option<&[Vec<f64>]>) -> Truth {
    let mut data = Memory { columns: entry.variables.clone(), ..Memory::default() };
    let mut cells = Vec::new();
    let mut value_column = Vec::new();
    for (i, cell) in entry.cells.iter().enumerate() {
        let cell_values = match (entry.kind, values) {
            (_, Some(given)) => given[i].clone(),
            (OutputKind::Frequency, None) => vec![0.0; cell.count as usize],
            (_, None) => values_of(cell),
        };
        let first = data.rows as u32;
        data.rows += cell_values.len() as u64;
        cells.push((first..data.rows as u32).collect::<RoaringBitmap>());
        for (variable, label) in entry.variables.iter().zip(&cell.key) {
            data.keys
                .entry(variable.clone())
                .or_default()
                .extend(std::iter::repeat_n(label.clone(), cell_values.len()));
        }
        value_column.extend(cell_values);
    }
    if let Some(value) = &entry.value {
        data.columns.push(value.clone());
        data.values.insert(value.clone(), value_column);
    }
    data.counts = Some(entry.cells.iter().map(|c| (c.key.clone(), c.count)).collect());
    let block = write_block(&cells);
    let units = Some(UnitsRef { mount: "persons".into(), offset: 0, length: block.len() as u64 });
    Truth { entry: OutputEntry { units, ..entry.clone() }, data, block }
}

fn truthful(entry: &OutputEntry) -> Truth {
    truthful_with(entry, None)
}

/// Earlier outputs' cells, held in memory.
struct Earlier(Vec<IndexedCell>);

impl CellIndex for Earlier {
    fn near(&self, _: &str, sizes: RangeInclusive<u64>, each: &mut dyn FnMut(IndexedCell)) -> Result<(), String> {
        self.0.iter().filter(|c| sizes.contains(&c.units.len())).cloned().for_each(each);
        Ok(())
    }
}

fn key(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn frequency(variables: &[&str], cells: &[(&[&str], u64)]) -> OutputEntry {
    OutputEntry {
        file: "table.csv".into(),
        kind: OutputKind::Frequency,
        description: "test".into(),
        variables: key(variables),
        value: None,
        cells: cells.iter().map(|(k, count)| Cell { key: key(k), count: *count, ..Cell::default() }).collect(),
        regression: None,
        units: None,
    }
}

/// A magnitude cell with no negative, zero or missing values.
fn magnitude_cell(categories: &[&str], count: u64, sum: f64, top1: f64, top2: f64) -> Cell {
    Cell {
        key: key(categories),
        count,
        sum: Some(sum),
        top1: Some(top1),
        top2: Some(top2),
        negatives: Some(0),
        zeros: Some(0),
        missing: Some(0),
        quantiles: vec![],
    }
}

/// A magnitude cell: (key, count, sum, top1, top2).
fn magnitude(cells: &[(&str, u64, f64, f64, f64)]) -> OutputEntry {
    OutputEntry {
        file: "table.csv".into(),
        kind: OutputKind::Magnitude,
        description: "test".into(),
        variables: key(&["region"]),
        value: Some("income".into()),
        cells: cells.iter().map(|&(k, count, sum, top1, top2)| magnitude_cell(&[k], count, sum, top1, top2)).collect(),
        regression: None,
        units: None,
    }
}

/// The CSV the SDK would write for `entry`, so the consistency check passes.
fn csv_for(entry: &OutputEntry) -> String {
    let mut header = entry.variables.clone();
    let magnitude = entry.kind == OutputKind::Magnitude;
    header.extend(if magnitude { vec!["count".to_string(), "sum".into()] } else { vec!["count".to_string()] });
    let mut csv = header.join(",") + "\n";
    for cell in &entry.cells {
        let mut row = cell.key.clone();
        row.push(cell.count.to_string());
        if magnitude {
            row.push(cell.sum.unwrap_or_default().to_string());
        }
        csv += &(row.join(",") + "\n");
    }
    csv
}

/// Checks `entry` over data made to match it.
fn run(entry: &OutputEntry) -> Report {
    let truth = truthful(entry);
    run_truth(&truth, &csv_for(entry), &NoIndex, &Thresholds::default())
}

/// Checks `truth` with `csv` as the file.
fn run_truth(truth: &Truth, csv: &str, index: &dyn CellIndex, thresholds: &Thresholds) -> Report {
    let subject = Subject {
        file: &truth.entry.file,
        bytes: csv.as_bytes(),
        entry: Some(&truth.entry),
        manifest_problem: None,
        units: Some(Ok(&truth.block)),
        data: &truth.data,
        index,
    };
    disclosure::check(&subject, thresholds).report
}

/// Checks `entry`, which names no units, against `data`.
fn run_without_units(entry: &OutputEntry, csv: &str, data: &dyn JobData) -> Report {
    let subject = Subject {
        file: &entry.file,
        bytes: csv.as_bytes(),
        entry: Some(entry),
        manifest_problem: None,
        units: None,
        data,
        index: &NoIndex,
    };
    disclosure::check(&subject, &Thresholds::default()).report
}

fn result<'a>(report: &'a Report, check: &str) -> &'a disclosure::CheckResult {
    report.results.iter().find(|r| r.check == check).unwrap_or_else(|| panic!("no {check} result in {report:#?}"))
}

#[test]
fn a_safe_frequency_table_passes_every_check() {
    let entry = frequency(&["region"], &[(&["Utrecht"], 120), (&["Zeeland"], 10)]);
    let report = run(&entry);
    assert_eq!(report.outcome, Outcome::Pass, "{report:#?}");
    assert!(report.suppression.is_none());
    assert_eq!(report.thresholds, Thresholds::default());
}

#[test]
fn the_threshold_rule_names_the_small_cell_and_the_minimum() {
    let entry = frequency(&["region", "status"], &[(&["Groningen", "employed"], 40), (&["Groningen", "retired"], 4)]);
    let report = run(&entry);
    assert_eq!(report.outcome, Outcome::Fail);
    let threshold = result(&report, "threshold");
    assert_eq!(threshold.outcome, Outcome::Fail);
    assert_eq!(threshold.findings.len(), 1);
    assert_eq!(threshold.findings[0].message, "cell region=Groningen × status=retired has 4 units; minimum is 10");
    assert_eq!(threshold.findings[0].cell, Some(key(&["Groningen", "retired"])));
    let suggestion = threshold.suggestion.as_deref().expect("a suggestion");
    assert!(suggestion.contains("suppress") && suggestion.contains("round every count to base 5"), "{suggestion}");
}

#[test]
fn a_cell_with_exactly_the_minimum_passes_and_one_below_fails() {
    let at = run(&frequency(&["region"], &[(&["A"], 10), (&["B"], 50)]));
    assert_eq!(result(&at, "threshold").outcome, Outcome::Pass);
    let below = run(&frequency(&["region"], &[(&["A"], 9), (&["B"], 50)]));
    assert_eq!(result(&below, "threshold").outcome, Outcome::Fail);
}

#[test]
fn an_empty_table_is_reviewed_not_passed() {
    let report = run(&frequency(&["region"], &[]));
    assert_eq!(result(&report, "zeros").outcome, Outcome::Review);
    assert_eq!(report.outcome, Outcome::Review);
}

#[test]
fn zero_cells_fail_and_all_zero_magnitude_cells_fail() {
    let report = run(&frequency(&["region"], &[(&["A"], 0), (&["B"], 50)]));
    assert_eq!(result(&report, "zeros").outcome, Outcome::Fail);

    let mut entry = magnitude(&[("A", 12, 0.0, 0.0, 0.0), ("B", 40, 4000.0, 200.0, 150.0)]);
    entry.cells[0].zeros = Some(12);
    let report = run(&entry);
    let zeros = result(&report, "zeros");
    assert_eq!(zeros.outcome, Outcome::Fail);
    assert_eq!(zeros.findings.len(), 1);
    assert!(zeros.findings[0].message.contains("all 12 units"), "{}", zeros.findings[0].message);
}

#[test]
fn dominance_counts_ties_and_the_boundary_as_dominated() {
    // Two units of 50 in a total of 100: the top two hold 100 %.
    let tie = run(&magnitude(&[("A", 12, 100.0, 50.0, 50.0)]));
    assert_eq!(result(&tie, "dominance").outcome, Outcome::Fail);
    // Exactly 90 %: the rule is "less than k", so this fails.
    let boundary = run(&magnitude(&[("A", 12, 1000.0, 600.0, 300.0)]));
    assert_eq!(result(&boundary, "dominance").outcome, Outcome::Fail);
    // 89 %: passes.
    let below = run(&magnitude(&[("A", 12, 1000.0, 600.0, 290.0)]));
    assert_eq!(result(&below, "dominance").outcome, Outcome::Pass);
    let message = &result(&boundary, "dominance").findings[0].message;
    assert!(message.contains("90.0%") && message.contains("limit is 90%"), "{message}");
}

#[test]
fn the_p_percent_rule_protects_the_largest_unit() {
    // Others hold 9 ≥ 10 % of 80: safe.
    let safe = run(&magnitude(&[("A", 12, 100.0, 80.0, 11.0)]));
    assert_eq!(result(&safe, "p_percent").outcome, Outcome::Pass);
    // Others hold 7 < 8: the second largest can estimate the largest to within 10 %.
    let unsafe_cell = run(&magnitude(&[("A", 12, 100.0, 80.0, 13.0)]));
    assert_eq!(result(&unsafe_cell, "p_percent").outcome, Outcome::Fail);
}

#[test]
fn negative_and_missing_values_go_to_review() {
    let mut entry = magnitude(&[("A", 30, 5000.0, 900.0, 800.0)]);
    entry.cells[0].negatives = Some(2);
    entry.cells[0].missing = Some(3);
    let report = run(&entry);
    assert_eq!(result(&report, "negatives").outcome, Outcome::Review);
    assert_eq!(result(&report, "missing").outcome, Outcome::Review);
    assert_eq!(report.outcome, Outcome::Review);
}

#[test]
fn regressions_need_enough_residual_degrees_of_freedom_and_an_honest_count() {
    let fit = |n: u64, dof: u64| OutputEntry {
        file: "fit.csv".into(),
        kind: OutputKind::Regression,
        description: "test".into(),
        variables: vec![],
        value: None,
        cells: vec![],
        regression: Some(RegressionSummary {
            dependent: "income".into(),
            n,
            residual_dof: dof,
            r_squared: 0.3,
            coefficients: vec![
                Coefficient { term: "(intercept)".into(), estimate: 1.5, std_error: 0.25 },
                Coefficient { term: "age".into(), estimate: 2.0, std_error: 0.5 },
            ],
        }),
        units: None,
    };
    let csv = "term,estimate,std_error\n(intercept),1.5,0.25\nage,2,0.5\n";
    let check = |entry: &OutputEntry| run_without_units(entry, csv, &Memory::default());
    assert_eq!(result(&check(&fit(12, 10)), "residual_dof").outcome, Outcome::Pass);
    let few = check(&fit(7, 5));
    assert_eq!(result(&few, "residual_dof").outcome, Outcome::Fail);
    assert!(result(&few, "residual_dof").summary.contains("5 residual degrees of freedom"));
    let lie = check(&fit(7, 50));
    assert_eq!(result(&lie, "residual_dof").outcome, Outcome::Fail);
    assert!(result(&lie, "residual_dof").summary.contains("claims 50"), "{}", result(&lie, "residual_dof").summary);
}

#[test]
fn minimum_and_maximum_fail_and_single_unit_quantiles_are_reviewed() {
    let entry = |quantiles: Vec<QuantileValue>| OutputEntry {
        file: "q.csv".into(),
        kind: OutputKind::Quantiles,
        description: "test".into(),
        variables: key(&["region"]),
        value: Some("income".into()),
        cells: vec![Cell { key: key(&["A"]), count: 50, missing: Some(0), quantiles, ..Cell::default() }],
        regression: None,
        units: None,
    };
    let q = |p: f64, units_at_value: u64| QuantileValue { p, value: 10.0, units_at_value };
    let csv = |e: &OutputEntry| {
        let columns: Vec<String> =
            e.cells[0].quantiles.iter().map(|q| format!("p{}", (q.p * 1000.0).round() / 10.0)).collect();
        format!("region,count,{}\nA,50,{}\n", columns.join(","), vec!["10"; columns.len()].join(","))
    };
    let unconfirmed =
        |e: &OutputEntry| run_without_units(e, &csv(e), &counted([(key(&["A"]), 50)].into_iter().collect()));
    let max = entry(vec![q(0.5, 0), q(1.0, 1)]);
    assert_eq!(result(&unconfirmed(&max), "quantiles").outcome, Outcome::Fail);
    let single = entry(vec![q(0.5, 1)]);
    assert_eq!(result(&unconfirmed(&single), "quantiles").outcome, Outcome::Review);
    // 50 distinct values: the quartile and median fall between two units each.
    let values: Vec<f64> = (1..=50).map(f64::from).collect();
    let mut safe = entry(vec![]);
    safe.cells[0].quantiles = [0.25, 0.5].map(|p| ringfence_sdk::table::quantile(&values, p)).to_vec();
    let truth = truthful_with(&safe, Some(std::slice::from_ref(&values)));
    let safe_csv = format!(
        "region,count,p25,p50\nA,50,{},{}\n",
        safe.cells[0].quantiles[0].value, safe.cells[0].quantiles[1].value
    );
    let report = run_truth(&truth, &safe_csv, &NoIndex, &Thresholds::default());
    assert_eq!(report.outcome, Outcome::Pass, "{report:#?}");
}

#[test]
fn a_file_that_differs_from_its_manifest_fails() {
    let entry = frequency(&["region"], &[(&["A"], 30), (&["B"], 50)]);
    let changed = "region,count\nA,3\nB,50\n";
    let truth = truthful(&entry);
    let report = run_truth(&truth, changed, &NoIndex, &Thresholds::default());
    let consistency = result(&report, "consistency");
    assert_eq!(consistency.outcome, Outcome::Fail);
    assert!(consistency.findings[0].message.contains("line 2, column count: the file says 3; the manifest says 30"));

    let extra_column = "region,count,max_income\nA,30,999999\nB,50,888888\n";
    let report = run_truth(&truth, extra_column, &NoIndex, &Thresholds::default());
    assert_eq!(result(&report, "consistency").outcome, Outcome::Fail);
    assert!(result(&report, "consistency").findings[0].message.contains("max_income"));

    let extra_row = "region,count\nA,30\nB,50\nC,2\n";
    let report = run_truth(&truth, extra_row, &NoIndex, &Thresholds::default());
    assert_eq!(result(&report, "consistency").outcome, Outcome::Fail);
}

#[test]
fn a_manifest_claiming_more_units_than_the_data_has_fails_the_recount() {
    let entry = frequency(&["region"], &[(&["A"], 30), (&["B"], 50)]);
    let data = counted([(key(&["A"]), 3), (key(&["B"]), 70)].into_iter().collect());
    let report = run_without_units(&entry, &csv_for(&entry), &data);
    let recount = result(&report, "recount");
    assert_eq!(recount.outcome, Outcome::Fail);
    assert_eq!(recount.findings.len(), 1, "B counts fewer than the data: a filtered analysis may");
    assert_eq!(recount.findings[0].message, "cell region=A claims 30 units, but the data the job saw has only 3");
    let underived = run_without_units(&entry, &csv_for(&entry), &Memory::default());
    assert_eq!(result(&underived, "recount").outcome, Outcome::Review);
}

#[test]
fn free_form_files_and_missing_or_malformed_manifests_are_reviewed_never_passed() {
    let subject = |entry: Option<&OutputEntry>, problem: Option<&str>| {
        let s = Subject {
            file: "plot.png",
            bytes: b"\x89PNG",
            entry,
            manifest_problem: problem,
            units: None,
            data: &Memory::default(),
            index: &NoIndex,
        };
        disclosure::check(&s, &Thresholds::default()).report
    };
    assert_eq!(subject(None, None).outcome, Outcome::Review);
    assert_eq!(subject(None, Some("manifest.json is not valid")).outcome, Outcome::Review);
    let mut file = frequency(&[], &[]);
    file.kind = OutputKind::File;
    assert_eq!(subject(Some(&file), None).outcome, Outcome::Review);
    let mut malformed = frequency(&["region", "status"], &[(&["A", "x"], 30)]);
    malformed.cells.push(Cell { key: key(&["B"]), count: 40, ..Cell::default() });
    let report = subject(Some(&malformed), None);
    assert_eq!(report.outcome, Outcome::Review);
    assert!(report.results[0].summary.contains("malformed"), "{}", report.results[0].summary);
}

#[test]
fn differencing_flags_tables_that_isolate_a_few_units() {
    // The earlier cell had this table's 127 units of A and 3 more: subtracting reveals the 3.
    let now = truthful(&frequency(&["region"], &[(&["A"], 127), (&["B"], 50)]));
    let earlier = |extra: u32| IndexedCell {
        request: 7,
        file: "earlier.csv".into(),
        label: "cell age=adult".into(),
        units: (0..127 + extra).collect(),
    };
    let csv = csv_for(&now.entry);
    let report = run_truth(&now, &csv, &Earlier(vec![earlier(3)]), &Thresholds::default());
    let differencing = result(&report, "differencing");
    assert_eq!(differencing.outcome, Outcome::Fail);
    let message = &differencing.findings[0].message;
    assert!(
        message.contains("cell region=A") && message.contains("request 7") && message.contains("differ by 3 units"),
        "{message}"
    );
    let far = run_truth(&now, &csv, &Earlier(vec![earlier(30)]), &Thresholds::default());
    assert_eq!(result(&far, "differencing").outcome, Outcome::Pass);
    // Without units there is nothing to compare: a person must look.
    let report = run_without_units(&now.entry, &csv, &Memory::default());
    assert_eq!(result(&report, "differencing").outcome, Outcome::Review);
}

#[test]
fn suppression_protects_every_line_and_margins_cover_the_full_table() {
    // 3 × 3 table with one small cell.
    let cells: Vec<(Vec<&str>, u64)> = vec![
        (vec!["a", "x"], 3),
        (vec!["a", "y"], 40),
        (vec!["a", "z"], 25),
        (vec!["b", "x"], 30),
        (vec!["b", "y"], 50),
        (vec!["b", "z"], 60),
        (vec!["c", "x"], 20),
        (vec!["c", "y"], 70),
        (vec!["c", "z"], 80),
    ];
    let borrowed: Vec<(&[&str], u64)> = cells.iter().map(|(k, c)| (k.as_slice(), *c)).collect();
    let entry = frequency(&["row", "col"], &borrowed);
    let report = run(&entry);
    let suppression = report.suppression.expect("a suggested suppression");
    assert_eq!(suppression.primary, 1);
    assert!(suppression.secondary >= 3, "each line through a suppressed cell needs a second one");
    // No line may have exactly one suppressed cell, and the suppressed cells of a line must
    // together hold at least the minimum.
    for dimension in 0..2 {
        let mut lines: HashMap<String, Vec<&ringfence::disclosure::SuggestedCell>> = HashMap::new();
        for cell in &suppression.cells {
            lines.entry(cell.key[1 - dimension].clone()).or_default().push(cell);
        }
        for (line, members) in lines {
            let hidden: Vec<_> = members.iter().filter(|c| c.value.is_none()).collect();
            assert_ne!(hidden.len(), 1, "line {line} along {dimension} reveals its only suppressed cell");
            if !hidden.is_empty() {
                assert!(hidden.iter().map(|c| c.count).sum::<u64>() >= 10);
            }
        }
    }
    // Margins are over the full table: the row margin of "a" is 3 + 40 + 25.
    let row_a = suppression.margins.iter().find(|m| m.key == key(&["a", "Total"])).expect("row margin a");
    assert_eq!(row_a.value, Some(68.0));
    let total = suppression.margins.last().expect("grand total");
    assert_eq!((total.key.clone(), total.value), (key(&["Total", "Total"]), Some(378.0)));
}

#[test]
fn a_one_way_table_with_one_small_cell_gets_a_second_suppression() {
    let entry = frequency(&["region"], &[(&["A"], 4), (&["B"], 50), (&["C"], 30)]);
    let suppression = run(&entry).suppression.expect("suppression");
    let hidden: Vec<&str> = suppression.cells.iter().filter(|c| c.value.is_none()).map(|c| c.key[0].as_str()).collect();
    assert_eq!(hidden, ["A", "C"], "the smallest other cell protects A from the total");
}

#[test]
fn thresholds_from_the_policy_are_used_and_recorded() {
    let entry = frequency(&["region"], &[(&["A"], 12), (&["B"], 50)]);
    let strict = Thresholds { min_units: 15, ..Thresholds::default() };
    let report = run_truth(&truthful(&entry), &csv_for(&entry), &NoIndex, &strict);
    assert_eq!(result(&report, "threshold").outcome, Outcome::Fail);
    assert_eq!(report.thresholds.min_units, 15);
}

#[test]
fn a_magnitude_table_whose_claims_differ_from_its_rows_fails_and_is_judged_on_the_data() {
    // The data: 12 incomes in A, the largest 9 000 of 10 000 in all. The manifest claims a
    // harmless spread; the host finds the dominant unit from the rows themselves.
    let honest = magnitude(&[("A", 12, 10_000.0, 9_000.0, 200.0)]);
    let mut truth = truthful(&honest);
    truth.entry.cells[0].top1 = Some(1_000.0);
    truth.entry.cells[0].top2 = Some(900.0);
    let report = run_truth(&truth, &csv_for(&truth.entry), &NoIndex, &Thresholds::default());
    let recount = result(&report, "recount");
    assert_eq!(recount.outcome, Outcome::Fail);
    assert!(recount.findings[0].message.contains("largest value 1000, the rows it names give 9000"), "{recount:#?}");
    assert_eq!(result(&report, "dominance").outcome, Outcome::Fail, "judged on the real contributions");
    assert_eq!(result(&report, "p_percent").outcome, Outcome::Fail);
}

#[test]
fn rows_of_another_category_and_absent_combinations_are_found() {
    let entry = frequency(&["region", "sex"], &[(&["A", "f"], 20), (&["A", "m"], 30), (&["B", "f"], 40)]);
    let mut truth = truthful(&entry);
    // The key columns: B × m never occurs, so the full table has an empty cell.
    let report = run_truth(&truth, &csv_for(&entry), &NoIndex, &Thresholds::default());
    let zeros = result(&report, "zeros");
    assert_eq!(zeros.outcome, Outcome::Fail);
    assert_eq!(zeros.findings[0].cell, Some(key(&["B", "m"])), "{zeros:#?}");
    assert!(result(&report, "recount").summary.contains("absent from the table, judged as empty cells: 1"));
    // A cell that names rows of another region fails, naming the rows.
    truth.block = write_block(&[(0..20).collect(), (20..50).collect(), (10..50).collect()]);
    let report = run_truth(&truth, &csv_for(&entry), &NoIndex, &Thresholds::default());
    let recount = result(&report, "recount");
    assert_eq!(recount.outcome, Outcome::Fail);
    assert!(
        recount.findings[0].message.contains("names row 10 and 39 more rows whose region is A, not B"),
        "{recount:#?}"
    );
}

#[test]
fn large_cells_recomputed_window_by_window_get_every_number_and_misplaced_row_right() {
    // Three regions interleaved over 300 000 rows, each cell far larger than one window of
    // the data, with a missing income every 1 000th row.
    const ROWS: u32 = 300_000;
    let regions = ["A", "B", "C"];
    let region_of = |row: u32| regions[(row % 3) as usize];
    let income = |row: u32| if row % 1000 == 7 { f64::NAN } else { f64::from(row % 5000) - 100.0 };
    let mut data = Memory { rows: u64::from(ROWS), columns: key(&["region", "income"]), ..Memory::default() };
    data.keys.insert("region".into(), (0..ROWS).map(|row| region_of(row).to_string()).collect());
    data.values.insert("income".into(), (0..ROWS).map(income).collect());
    let units: Vec<RoaringBitmap> = (0..3).map(|r| (0..ROWS).filter(|row| row % 3 == r).collect()).collect();
    let cells: Vec<Cell> = regions
        .iter()
        .zip(&units)
        .map(|(region, rows)| {
            let mut tally = ringfence_sdk::table::MagnitudeCell::default();
            for row in rows {
                match income(row) {
                    value if value.is_nan() => tally.missing += 1,
                    value => tally.add(value),
                }
            }
            tally.cell(key(&[region]))
        })
        .collect();
    let block = write_block(&units);
    let named = Some(UnitsRef { mount: "persons".into(), offset: 0, length: block.len() as u64 });
    let entry = OutputEntry { cells, units: named, ..magnitude(&[]) };
    let mut truth = Truth { entry: entry.clone(), data, block };
    let report = run_truth(&truth, &csv_for(&entry), &NoIndex, &Thresholds::default());
    let recount = result(&report, "recount");
    assert_eq!(recount.outcome, Outcome::Pass, "{recount:#?}");
    assert_eq!(result(&report, "missing").outcome, Outcome::Review, "the missing incomes are counted");
    assert_eq!(result(&report, "negatives").outcome, Outcome::Review, "and the negative ones");
    // A cell that claims one unit too many, and one that names a row of another region.
    truth.entry.cells[1].count += 1;
    let mut named = units.clone();
    named[2].insert(0);
    truth.block = write_block(&named);
    let report = run_truth(&truth, &csv_for(&truth.entry), &NoIndex, &Thresholds::default());
    let recount = result(&report, "recount");
    assert_eq!(recount.outcome, Outcome::Fail);
    let messages: Vec<&str> = recount.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("region=B: the manifest says count 99901, the rows it names give 99900")),
        "{messages:#?}"
    );
    assert!(messages.iter().any(|m| m.contains("region=C names row 0 whose region is A, not C")), "{messages:#?}");
}

#[test]
fn a_frequency_table_may_publish_counts_only() {
    let entry = frequency(&["region"], &[(&["A"], 30), (&["B"], 50)]);
    let truth = truthful(&entry);
    let with_maximum = "region,count,p100\nA,30,98000\nB,50,87000\n";
    let report = run_truth(&truth, with_maximum, &NoIndex, &Thresholds::default());
    let consistency = result(&report, "consistency");
    assert_eq!(consistency.outcome, Outcome::Fail);
    assert!(consistency.findings[0].message.contains("\"p100\" is not one a frequency table publishes"));
}

#[test]
fn cells_of_one_table_that_overlap_by_all_but_a_few_units_are_flagged() {
    // Two derived categories (say, "over 40" and "over 41") whose units differ by 2.
    let mut truth = truthful(&frequency(&["band"], &[(&["over40"], 50), (&["over41"], 48)]));
    truth.data.columns.clear();
    truth.block = write_block(&[(0..50).collect(), (2..50).collect()]);
    let report = run_truth(&truth, &csv_for(&truth.entry), &NoIndex, &Thresholds::default());
    let differencing = result(&report, "differencing");
    assert_eq!(differencing.outcome, Outcome::Fail, "{report:#?}");
    assert!(differencing.findings[0].message.contains("differ by 2 units"));
    assert!(result(&report, "recount").summary.contains("band derived in the analysis"));
}

/// sdcTable's own test (`tests/testthat/test-protectTable.r`): its `microdata1` (100 units) as
/// region × gender, with region A × female (2 units) the only primary cell. sdcTable's OPT,
/// HYPERCUBE, HITAS and SIMPLEHEURISTIC methods all suppress A×male, A×female, C×male and
/// C×female — 3 secondary cells (GAUSS suppresses D instead of C, also 3). ringfence suppresses
/// the same four cells, and its interval attack finds the pattern safe as it is.
#[test]
fn sdctable_microdata1_gets_the_same_three_secondary_cells_as_sdctables_methods() {
    let counts: [(&[&str], u64); 8] = [
        (&["A", "female"], 2),
        (&["A", "male"], 18),
        (&["B", "female"], 19),
        (&["B", "male"], 14),
        (&["C", "female"], 10),
        (&["C", "male"], 12),
        (&["D", "female"], 14),
        (&["D", "male"], 11),
    ];
    let report = run(&frequency(&["region", "gender"], &counts));
    let threshold = result(&report, "threshold");
    assert_eq!(threshold.findings.len(), 1);
    assert_eq!(threshold.findings[0].cell, Some(key(&["A", "female"])));
    let suppression = report.suppression.expect("a suggested suppression");
    let hidden: Vec<Vec<String>> =
        suppression.cells.iter().filter(|c| c.value.is_none()).map(|c| c.key.clone()).collect();
    let sdctable = [key(&["A", "female"]), key(&["A", "male"]), key(&["C", "female"]), key(&["C", "male"])];
    assert_eq!(hidden, sdctable);
    assert_eq!((suppression.primary, suppression.secondary, suppression.added_by_audit), (1, 3, 0));
    assert!(suppression.audit.contains("none exact, every primary cell protected"), "{}", suppression.audit);
}

/// A magnitude cell over two variables: (row, col, count, sum, top1, top2).
fn magnitude2(cells: &[(&str, &str, u64, f64, f64, f64)]) -> OutputEntry {
    let mut entry = magnitude(&[]);
    entry.variables = key(&["row", "col"]);
    entry.cells =
        cells.iter().map(|&(r, c, count, sum, top1, top2)| magnitude_cell(&[r, c], count, sum, top1, top2)).collect();
    entry
}

/// The line-by-line rule picks secondary cells by their units, and here the ones it picks hold
/// little value: the dominated cell (1 000, of which one unit has 950) can then be narrowed to
/// [0, 1 030] from the margins, less than the 95 above its value that the p% rule asks for. The
/// interval attack finds this and adds cells until the largest contributor is protected.
#[test]
fn a_pattern_the_line_rule_accepts_is_broken_by_the_interval_attack_and_repaired() {
    let entry = magnitude2(&[
        ("r1", "c1", 12, 1000.0, 950.0, 20.0),
        ("r1", "c2", 15, 30.0, 2.0, 2.0),
        ("r1", "c3", 40, 5000.0, 200.0, 200.0),
        ("r2", "c1", 25, 400.0, 20.0, 20.0),
        ("r2", "c2", 30, 6000.0, 300.0, 300.0),
        ("r2", "c3", 50, 7000.0, 300.0, 300.0),
    ]);
    let report = run(&entry);
    assert_eq!(result(&report, "recount").outcome, Outcome::Pass, "{report:#?}");
    assert_eq!(result(&report, "p_percent").findings.len(), 1);
    let suppression = report.suppression.expect("a suggested suppression");
    assert_eq!(suppression.primary, 1);
    assert_eq!(suppression.added_by_audit, 2, "{suppression:#?}");
    assert_eq!(suppression.secondary, 5);
    assert!(suppression.audit.contains("none exact"), "{}", suppression.audit);
}

/// ACRO's test data (`data/test_data.dta` in AI-SDC/ACRO, MIT licence; 918 charity-years),
/// cut to the three columns its table tests use: each (year, grant_type) with its rows'
/// `inc_grants` (NaN where missing), in key order.
fn acro_groups() -> Vec<([String; 2], Vec<f64>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/acro_test_data.csv");
    let mut groups: std::collections::BTreeMap<[String; 2], Vec<f64>> = Default::default();
    for record in csv::Reader::from_path(path).expect("ACRO's test data").records() {
        let record = record.expect("a row");
        let value = match &record[2] {
            "" => f64::NAN,
            text => text.parse().expect("inc_grants is a number"),
        };
        groups.entry([record[0].to_string(), record[1].to_string()]).or_default().push(value);
    }
    groups.into_iter().collect()
}

/// The cells a check's findings name, as `year × grant_type`.
fn flagged(report: &Report, check: &str) -> Vec<String> {
    result(report, check).findings.iter().filter_map(|f| f.cell.as_ref()).map(|key| key.join(" × ")).collect()
}

/// ACRO's `test_crosstab_threshold` and `test_crosstab_without_suppression`: year × grant_type
/// has 6 cells below 10 (every year's R/G, 8 charities each, 48 in all). ringfence flags the
/// same 6 and suggests suppressing them.
#[test]
fn acros_year_by_grant_type_crosstab_fails_the_same_six_cells_as_in_acros_tests() {
    let groups = acro_groups();
    let keys: Vec<[&str; 2]> = groups.iter().map(|(k, _)| [k[0].as_str(), k[1].as_str()]).collect();
    let cells: Vec<(&[&str], u64)> =
        keys.iter().zip(&groups).map(|(k, (_, rows))| (&k[..], rows.len() as u64)).collect();
    let report = run(&frequency(&["year", "grant_type"], &cells));
    let expected: Vec<String> = (2010..=2015).map(|year| format!("{year} × R/G")).collect();
    assert_eq!(flagged(&report, "threshold"), expected, "{report:#?}");
    assert_eq!(cells.iter().filter(|(k, _)| k[1] == "R/G").map(|(_, n)| n).sum::<u64>(), 48);
    assert_eq!(result(&report, "recount").outcome, Outcome::Pass);
    let suppression = report.suppression.expect("a suggested suppression");
    assert_eq!(suppression.primary, 6);
}

/// ACRO's `test_crosstab_multiple`: the mean of inc_grants by year × grant_type, where ACRO
/// reports NKCheck 1 cell, PPercentCheck 2 cells and MinimumThresholdCheck 6 cells. ringfence
/// flags 2010 × R/G under both dominance rules, as ACRO does; ACRO's second p% cell, 2010 × N,
/// has five values, all 0 (ACRO's p% takes a cell whose largest value is 0 as dominated):
/// ringfence names it under the zero rule, as revealing each unit's value, and under the
/// threshold rule, because it counts the units with a value (5), where ACRO counts rows (59) —
/// so ringfence's threshold rule flags 7 cells, ACRO's 6. The 103 missing values send the
/// table to review (ACRO's default leaves missing values unchecked).
#[test]
fn acros_mean_income_table_fails_on_the_cells_acros_dominance_tests_name() {
    let groups = acro_groups();
    let mut entry = magnitude(&[]);
    entry.variables = key(&["year", "grant_type"]);
    entry.value = Some("inc_grants".into());
    entry.cells = groups
        .iter()
        .map(|(k, rows)| {
            let mut tally = ringfence_sdk::table::MagnitudeCell::default();
            for &value in rows {
                if value.is_nan() { tally.missing += 1 } else { tally.add(value) }
            }
            tally.cell(k.to_vec())
        })
        .collect();
    let values: Vec<Vec<f64>> = groups.into_iter().map(|(_, rows)| rows).collect();
    let truth = truthful_with(&entry, Some(&values));
    let report = run_truth(&truth, &csv_for(&truth.entry), &NoIndex, &Thresholds::default());
    assert_eq!(result(&report, "recount").outcome, Outcome::Pass, "{report:#?}");
    assert_eq!(flagged(&report, "dominance"), ["2010 × R/G"]);
    assert_eq!(flagged(&report, "p_percent"), ["2010 × R/G"]);
    assert_eq!(flagged(&report, "zeros"), ["2010 × N"]);
    let mut threshold: Vec<String> = (2010..=2015).map(|year| format!("{year} × R/G")).collect();
    threshold.insert(0, "2010 × N".into());
    assert_eq!(flagged(&report, "threshold"), threshold);
    assert_eq!(result(&report, "missing").outcome, Outcome::Review);
    assert!(result(&report, "missing").summary.starts_with("11 cells"), "{report:#?}");
}
