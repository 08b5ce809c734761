//! Does the file say what its manifest entry says? A guest can write one thing to the CSV and
//! claim another in the manifest; the checks judge the manifest, so the file must match it
//! exactly: same variables, same cells in the same order, same numbers, and no column the
//! manifest does not describe.

use ringfence_sdk::manifest::{Cell, OutputEntry, OutputKind};

use super::{Check, CheckResult, Finding, Outcome, close};

/// Most mismatches listed; the count says how many there were.
const MAX_FINDINGS: usize = 20;

/// A statistic column a table of `kind` may publish, and where its value comes from in a
/// cell; `None` for a column the kind does not publish (a frequency table publishes counts
/// only, so no maximum can ride along in it).
fn statistic(kind: OutputKind, cell: &Cell, column: &str) -> Option<Option<f64>> {
    match (kind, column) {
        (OutputKind::Frequency | OutputKind::Magnitude | OutputKind::Quantiles, "count") => {
            Some(Some(cell.count as f64))
        }
        (OutputKind::Magnitude, "sum") => Some(cell.sum),
        (OutputKind::Magnitude, "mean") => Some(cell.sum.filter(|_| cell.count > 0).map(|s| s / cell.count as f64)),
        (OutputKind::Quantiles, p) if p.starts_with('p') => {
            cell.quantiles.iter().find(|q| quantile_column(q.p) == p).map(|q| Some(q.value).filter(|v| !v.is_nan()))
        }
        _ => None,
    }
}

/// The column name the SDK gives quantile `p`: `p50`, `p2.5`.
fn quantile_column(p: f64) -> String {
    format!("p{}", (p * 1000.0).round() / 10.0)
}

fn same_number(text: &str, expected: Option<f64>) -> bool {
    match (text.trim(), expected) {
        ("", None) => true,
        (_, None) | ("", Some(_)) => false,
        (text, Some(expected)) => text.parse::<f64>().is_ok_and(|found| close(found, expected)),
    }
}

/// Compares the file's bytes with its manifest entry.
pub(super) fn check(bytes: &[u8], entry: &OutputEntry) -> CheckResult {
    let result = match entry.kind {
        OutputKind::Regression => regression_rows(bytes, entry),
        _ => table_rows(bytes, entry),
    };
    match result {
        Ok(()) => CheckResult::pass(Check::Consistency, "the file holds exactly what the manifest describes"),
        Err(mut findings) => {
            let total = findings.len();
            findings.truncate(MAX_FINDINGS);
            CheckResult {
                check: Check::Consistency,
                outcome: Outcome::Fail,
                summary: format!(
                    "the file does not match its manifest entry ({total} differences); the checks cannot vouch for it"
                ),
                findings,
                suggestion: Some("write tables with ringfence_sdk::export::table, which writes both together".into()),
            }
        }
    }
}

fn problem(message: String) -> Finding {
    Finding { cell: None, message }
}

fn read(bytes: &[u8]) -> Result<(Vec<String>, Vec<csv::StringRecord>), Vec<Finding>> {
    let mut reader = reader(bytes);
    let header = header(&mut reader)?;
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| vec![problem(format!("the file is not valid CSV: {e}"))])?;
    Ok((header, rows))
}

/// A CSV reader over `bytes` whose first record is the header.
fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(true).from_reader(bytes)
}

/// The file's header; `reader` is then at its first row.
fn header(reader: &mut csv::Reader<&[u8]>) -> Result<Vec<String>, Vec<Finding>> {
    Ok(reader
        .headers()
        .map_err(|e| vec![problem(format!("the file is not CSV: {e}"))])?
        .iter()
        .map(str::to_string)
        .collect())
}

/// Compares a table's rows with its cells as they are read, one record buffer for all.
fn table_rows(bytes: &[u8], entry: &OutputEntry) -> Result<(), Vec<Finding>> {
    let mut reader = reader(bytes);
    let header = header(&mut reader)?;
    let vars = entry.variables.len();
    if header.len() < vars || header[..vars] != entry.variables[..] {
        return Err(vec![problem(format!(
            "the file's first columns are {:?}; the manifest's variables are {:?}",
            &header[..vars.min(header.len())],
            entry.variables
        ))]);
    }
    let statistics = &header[vars..];
    let mut findings = Vec::new();
    let probe = Cell::default();
    for (at, column) in statistics.iter().enumerate() {
        let cell = entry.cells.first().unwrap_or(&probe);
        if statistic(entry.kind, cell, column).is_none() {
            findings.push(problem(format!("column {column:?} is not one a {} table publishes", entry.kind)));
        } else if statistics[..at].contains(column) {
            findings.push(problem(format!("column {column:?} appears twice")));
        }
    }
    let mut row = csv::StringRecord::new();
    let mut cells = entry.cells.iter();
    let mut rows = 0;
    while reader.read_record(&mut row).map_err(|e| vec![problem(format!("the file is not valid CSV: {e}"))])? {
        rows += 1;
        let line = rows + 1;
        let Some(cell) = cells.next() else { continue };
        if !row.iter().take(vars).eq(cell.key.iter().map(String::as_str)) {
            let key: Vec<&str> = row.iter().take(vars).collect();
            findings.push(problem(format!("line {line} is cell {key:?}; the manifest has {:?} there", cell.key)));
            continue;
        }
        for (column, text) in statistics.iter().zip(row.iter().skip(vars)) {
            if let Some(expected) = statistic(entry.kind, cell, column)
                && !same_number(text, expected)
            {
                let claimed = expected.map_or("nothing".to_string(), |v| v.to_string());
                findings.push(Finding {
                    cell: Some(cell.key.clone()),
                    message: format!("line {line}, column {column}: the file says {text}; the manifest says {claimed}"),
                });
            }
        }
    }
    if rows != entry.cells.len() {
        findings.push(problem(format!("the file has {rows} rows; the manifest has {} cells", entry.cells.len())));
    }
    if findings.is_empty() { Ok(()) } else { Err(findings) }
}

fn regression_rows(bytes: &[u8], entry: &OutputEntry) -> Result<(), Vec<Finding>> {
    let (header, rows) = read(bytes)?;
    let Some(fit) = &entry.regression else {
        return Err(vec![problem("the manifest declares a regression but gives no fit summary".into())]);
    };
    if header != ["term", "estimate", "std_error"] {
        return Err(vec![problem(format!("the file's columns are {header:?}; expected term, estimate, std_error"))]);
    }
    let mut findings = Vec::new();
    if rows.len() != fit.coefficients.len() {
        let (found, claimed) = (rows.len(), fit.coefficients.len());
        findings.push(problem(format!("the file has {found} terms; the manifest has {claimed}")));
    }
    for (line, (row, c)) in rows.iter().zip(&fit.coefficients).enumerate() {
        let line = line + 2;
        let fields: Vec<&str> = row.iter().collect();
        if fields.first() != Some(&c.term.as_str())
            || !same_number(fields.get(1).unwrap_or(&""), Some(c.estimate))
            || !same_number(fields.get(2).unwrap_or(&""), Some(c.std_error))
        {
            findings.push(problem(format!(
                "line {line} is {fields:?}; the manifest has {}, {}, {}",
                c.term, c.estimate, c.std_error
            )));
        }
    }
    if findings.is_empty() { Ok(()) } else { Err(findings) }
}
