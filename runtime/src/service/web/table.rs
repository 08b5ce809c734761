//! An output file laid out for a checker: the CSV's rows with each cell's worst finding and
//! the suppression the checks suggest, so failing cells can be highlighted where they are.
//! Every text in it is the guest's, shown with [`shown`] (maud escapes HTML; this makes control
//! and direction-changing characters visible too).

use std::collections::HashMap;

use crate::disclosure::{Outcome, Report};
use crate::queue::ExportRequest;
use crate::untrusted::shown;

/// Rows shown at most; a checker downloads larger tables through the CLI.
const MAX_ROWS: usize = 2000;

/// One row of the output table.
pub(crate) struct Row {
    /// The row's fields, as written (escaped).
    pub fields: Vec<String>,
    /// The worst finding on this row's cell, if any check found something.
    pub outcome: Option<Outcome>,
    /// What the findings say about the cell.
    pub messages: Vec<String>,
    /// `primary` or `secondary` when the suggested suppression hides this cell.
    pub suppressed: Option<String>,
}

/// An output table as the request page shows it.
pub(crate) struct TableView {
    /// The header row.
    pub header: Vec<String>,
    /// The first [`MAX_ROWS`] rows.
    pub rows: Vec<Row>,
    /// Rows not shown.
    pub more: usize,
}

/// What the report says about each cell, by the cell's categories.
fn findings_by_cell(report: &Report) -> HashMap<Vec<String>, (Outcome, Vec<String>)> {
    let mut cells: HashMap<Vec<String>, (Outcome, Vec<String>)> = HashMap::new();
    for result in report.results.iter().filter(|r| r.outcome != Outcome::Pass) {
        for finding in &result.findings {
            if let Some(key) = &finding.cell {
                let entry = cells.entry(key.clone()).or_insert((result.outcome, Vec::new()));
                entry.0 = entry.0.max(result.outcome);
                entry.1.push(format!("{}: {}", result.check, shown(&finding.message)));
            }
        }
    }
    cells
}

/// Lays out `bytes` (the request's file) as a table, or `None` when it is not a CSV table with
/// a manifest naming its key variables (free-form files are shown as a download only).
pub(crate) fn table(request: &ExportRequest, bytes: &[u8]) -> Option<TableView> {
    let entry = request.manifest.as_ref()?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let raw_header: Vec<String> = reader.headers().ok()?.iter().map(str::to_string).collect();
    let keys: Vec<usize> =
        entry.variables.iter().map(|v| raw_header.iter().position(|h| h == v)).collect::<Option<_>>()?;
    let header = raw_header.iter().map(|h| shown(h).into_owned()).collect();
    let findings = request.report.as_ref().map(findings_by_cell).unwrap_or_default();
    let suppressed: HashMap<&[String], &str> = request
        .report
        .iter()
        .flat_map(|r| r.suppression.iter())
        .flat_map(|s| s.cells.iter())
        .filter_map(|c| Some((c.key.as_slice(), c.suppressed.as_deref()?)))
        .collect();
    let mut rows = Vec::new();
    let mut more = 0;
    for record in reader.records() {
        let record = record.ok()?;
        if rows.len() == MAX_ROWS {
            more += 1;
            continue;
        }
        let key: Vec<String> = keys.iter().map(|&i| record.get(i).unwrap_or_default().to_string()).collect();
        let fields: Vec<String> = record.iter().map(|f| shown(f).into_owned()).collect();
        let (outcome, messages) = match findings.get(&key) {
            Some((outcome, messages)) => (Some(*outcome), messages.clone()),
            None => (None, Vec::new()),
        };
        let suppressed = suppressed.get(key.as_slice()).map(|s| s.to_string());
        rows.push(Row { fields, outcome, messages, suppressed });
    }
    Some(TableView { header, rows, more })
}
