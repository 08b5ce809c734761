//! The automated disclosure checks on hand-built tables with known answers, including the edge
//! cases: empty tables, all-zero cells, ties in dominance, negative and missing values, lying
//! files, free-form files, differencing and suppression with safe margins.

use std::collections::HashMap;

use ringfence::disclosure::recount::{Counts, Recount};
use ringfence::disclosure::{self, Outcome, Released, Report, Subject, Thresholds};
use ringfence_sdk::manifest::{Cell, Coefficient, OutputEntry, OutputKind, QuantileValue, RegressionSummary};

/// Data that has exactly the given counts per key (what a recount from the job's data returns).
struct Data(Counts);

impl Recount for Data {
    fn counts(&self, _: &[String], _: Option<&str>) -> Result<Counts, String> {
        Ok(self.0.clone())
    }
}

/// Data the checks cannot recount from (variables derived in the guest).
struct NoData;

impl Recount for NoData {
    fn counts(&self, _: &[String], _: Option<&str>) -> Result<Counts, String> {
        Err("no dataset the job saw has these variables".into())
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
        cells: cells
            .iter()
            .map(|&(k, count, sum, top1, top2)| Cell {
                key: key(&[k]),
                count,
                sum: Some(sum),
                top1: Some(top1),
                top2: Some(top2),
                negatives: Some(0),
                zeros: Some(0),
                missing: Some(0),
                quantiles: vec![],
            })
            .collect(),
        regression: None,
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

/// Data with exactly the table's own counts: a truthful recount.
fn truthful(entry: &OutputEntry) -> Data {
    Data(entry.cells.iter().map(|c| (c.key.clone(), c.count)).collect())
}

fn run(entry: &OutputEntry) -> Report {
    run_with(entry, &csv_for(entry), &truthful(entry), &[])
}

fn run_with(entry: &OutputEntry, csv: &str, data: &dyn Recount, released: &[Released]) -> Report {
    let subject = Subject {
        file: &entry.file,
        bytes: csv.as_bytes(),
        entry: Some(entry),
        manifest_problem: None,
        recount: data,
        released,
    };
    disclosure::check(&subject, &Thresholds::default())
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
    };
    let csv = "term,estimate,std_error\n(intercept),1.5,0.25\nage,2,0.5\n";
    let check = |entry: &OutputEntry| run_with(entry, csv, &NoData, &[]);
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
    };
    let q = |p: f64, units_at_value: u64| QuantileValue { p, value: 10.0, units_at_value };
    let csv = |e: &OutputEntry| {
        let columns: Vec<String> =
            e.cells[0].quantiles.iter().map(|q| format!("p{}", (q.p * 1000.0).round() / 10.0)).collect();
        format!("region,count,{}\nA,50,{}\n", columns.join(","), vec!["10"; columns.len()].join(","))
    };
    let max = entry(vec![q(0.5, 0), q(1.0, 1)]);
    let report = run_with(&max, &csv(&max), &truthful(&max), &[]);
    assert_eq!(result(&report, "quantiles").outcome, Outcome::Fail, "{report:#?}");
    let single = entry(vec![q(0.5, 1)]);
    let report = run_with(&single, &csv(&single), &truthful(&single), &[]);
    assert_eq!(result(&report, "quantiles").outcome, Outcome::Review);
    let safe = entry(vec![q(0.25, 0), q(0.5, 3)]);
    let report = run_with(&safe, &csv(&safe), &truthful(&safe), &[]);
    assert_eq!(report.outcome, Outcome::Pass, "{report:#?}");
}

#[test]
fn a_file_that_differs_from_its_manifest_fails() {
    let entry = frequency(&["region"], &[(&["A"], 30), (&["B"], 50)]);
    let changed = "region,count\nA,3\nB,50\n";
    let report = run_with(&entry, changed, &truthful(&entry), &[]);
    let consistency = result(&report, "consistency");
    assert_eq!(consistency.outcome, Outcome::Fail);
    assert!(consistency.findings[0].message.contains("line 2, column count: the file says 3; the manifest says 30"));

    let extra_column = "region,count,max_income\nA,30,999999\nB,50,888888\n";
    let report = run_with(&entry, extra_column, &truthful(&entry), &[]);
    assert_eq!(result(&report, "consistency").outcome, Outcome::Fail);
    assert!(result(&report, "consistency").findings[0].message.contains("max_income"));

    let extra_row = "region,count\nA,30\nB,50\nC,2\n";
    assert_eq!(result(&run_with(&entry, extra_row, &truthful(&entry), &[]), "consistency").outcome, Outcome::Fail);
}

#[test]
fn a_manifest_claiming_more_units_than_the_data_has_fails_the_recount() {
    let entry = frequency(&["region"], &[(&["A"], 30), (&["B"], 50)]);
    let data = Data([(key(&["A"]), 3), (key(&["B"]), 70)].into_iter().collect());
    let report = run_with(&entry, &csv_for(&entry), &data, &[]);
    let recount = result(&report, "recount");
    assert_eq!(recount.outcome, Outcome::Fail);
    assert_eq!(recount.findings.len(), 1, "B counts fewer than the data: a filtered analysis may");
    assert_eq!(recount.findings[0].message, "cell region=A claims 30 units, but the data the job saw has only 3");
    let underived = run_with(&entry, &csv_for(&entry), &NoData, &[]);
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
            recount: &NoData,
            released: &[],
        };
        disclosure::check(&s, &Thresholds::default())
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
    let earlier = frequency(&["region"], &[(&["A"], 130), (&["B"], 50)]);
    let released = [Released { request: 7, file: "earlier.csv".into(), entry: earlier }];
    let now = frequency(&["region"], &[(&["A"], 127), (&["B"], 50)]);
    let report = run_with(&now, &csv_for(&now), &truthful(&now), &released);
    let differencing = result(&report, "differencing");
    assert_eq!(differencing.outcome, Outcome::Review);
    assert!(differencing.findings[0].message.contains("isolates 3 units"), "{}", differencing.findings[0].message);
    let far = frequency(&["region"], &[(&["A"], 100), (&["B"], 50)]);
    assert_eq!(
        result(&run_with(&far, &csv_for(&far), &truthful(&far), &released), "differencing").outcome,
        Outcome::Pass
    );
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
    let csv = csv_for(&entry);
    let subject = Subject {
        file: "t.csv",
        bytes: csv.as_bytes(),
        entry: Some(&entry),
        manifest_problem: None,
        recount: &truthful(&entry),
        released: &[],
    };
    let report = disclosure::check(&subject, &strict);
    assert_eq!(result(&report, "threshold").outcome, Outcome::Fail);
    assert_eq!(report.thresholds.min_units, 15);
}
