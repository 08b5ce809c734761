//! Recomputing an output from its units: the host takes no published number on the guest's
//! word.
//!
//! Each cell of a version-2 manifest names the rows of a mounted `data.arrow` it was computed
//! from. The host reads those rows of the data the job saw and computes the cell itself: count,
//! sum, largest contributions, zeros, negatives, missing values, quantiles and the units at
//! each, a regression's observations and residual degrees of freedom. Where a key variable is a
//! granted column, every row the cell names must have the cell's category (keys derived in the
//! analysis cannot be confirmed, and are named). A cell whose claimed numbers differ from the
//! host's fails; the rules then judge the host's numbers, never the claim. The table is judged
//! whole: every combination of its variables' categories that it leaves out is added as an
//! empty cell, so the zero rule sees it.

use ringfence_sdk::manifest::{Cell, OutputEntry, OutputKind, RegressionSummary};
use ringfence_sdk::table::{MISSING, MagnitudeCell, quantile};
use ringfence_sdk::units::RoaringBitmap;

use super::data::{Categorical, JobData, MountData, Numeric};
use super::parallel::in_parts;
use super::{Check, CheckResult, Finding, MAX_CELLS, Outcome, cell_label, cells_word, close};

/// An output as the data says it is.
#[derive(Debug, Clone)]
pub struct Recomputed {
    /// The claimed cells with the host's numbers, then every absent combination as an empty
    /// cell; for a regression, the claimed fit with the host's `n` and residual dof.
    pub entry: OutputEntry,
    /// Each cell's units (the rows with a value, for magnitude and quantile tables), in the
    /// order of `entry.cells`; one set for a regression.
    pub units: Vec<RoaringBitmap>,
    /// Which rows the units number, across jobs ([`MountData::unit_space`]).
    pub unit_space: String,
    /// Whether the cells are known to share no unit: every key is a granted column and every
    /// row has its cell's categories.
    pub disjoint: bool,
    /// The `recount` check's result: what differed, or what could not be confirmed.
    pub result: CheckResult,
}

/// Most rows the cells of one output may name in all (a row counts once per cell that names
/// it): bitmaps of whole ranges are small, so without a bound a few bytes of units could make
/// the host read for hours.
pub const MAX_NAMED_ROWS: u64 = 1 << 30;

/// Recomputes `entry` from `units` (one bitmap per cell, or one for a regression) in the
/// mount `mount` of `data`; `Err` when that cannot be done at all (the output then goes to a
/// person).
pub(super) fn recompute(
    entry: &OutputEntry,
    mount: &str,
    units: Vec<RoaringBitmap>,
    data: &dyn JobData,
) -> Result<Recomputed, String> {
    let mount = data.mount(mount)?;
    let expected = if entry.kind == OutputKind::Regression { 1 } else { entry.cells.len() };
    if units.len() != expected {
        return Err(format!("the manifest names units for {} sets of rows, not {expected}", units.len()));
    }
    if let Some(beyond) = units.iter().filter_map(RoaringBitmap::max).find(|&row| u64::from(row) >= mount.rows()) {
        return Err(format!("the units name row {beyond}, but the data the job saw has {} rows", mount.rows()));
    }
    let named = units.iter().try_fold(0u64, |total, cell| total.checked_add(cell.len()));
    if named.is_none_or(|total| total > MAX_NAMED_ROWS) {
        return Err(format!("its cells name more than {MAX_NAMED_ROWS} rows in all, more than the checks read"));
    }
    if entry.kind == OutputKind::Regression {
        return regression(entry, units, mount);
    }
    table(entry, units, mount)
}

/// `entry` with `cells` in place of its own, without copying its own.
fn with_cells(entry: &OutputEntry, cells: Vec<Cell>) -> OutputEntry {
    OutputEntry {
        file: entry.file.clone(),
        kind: entry.kind,
        description: entry.description.clone(),
        variables: entry.variables.clone(),
        value: entry.value.clone(),
        cells,
        regression: entry.regression.clone(),
        units: entry.units.clone(),
    }
}

/// What one variable of a table is: a granted column, whose categories the host knows, or
/// derived in the analysis.
enum Variable {
    Granted(Categorical),
    Derived,
}

fn table(entry: &OutputEntry, units: Vec<RoaringBitmap>, mount: &dyn MountData) -> Result<Recomputed, String> {
    let granted = |name: &String| mount.columns().contains(name);
    let variables: Vec<Variable> = entry
        .variables
        .iter()
        .map(|name| Ok(if granted(name) { Variable::Granted(mount.categorical(name)?) } else { Variable::Derived }))
        .collect::<Result<_, String>>()?;
    let values = match (entry.kind, &entry.value) {
        (OutputKind::Frequency, _) => None,
        (_, Some(value)) if granted(value) => Some(mount.numeric(value)?),
        (_, value) => {
            return Err(format!(
                "its value {} is not a column of the data (derived in the analysis?)",
                value.as_deref().unwrap_or("(none)")
            ));
        }
    };
    let lengths = variables.iter().filter_map(|v| match v {
        Variable::Granted(column) => Some(column.rows()),
        Variable::Derived => None,
    });
    if lengths.chain(values.as_ref().map(Numeric::rows)).any(|length| length != mount.rows()) {
        return Err(format!(
            "a column of the data the job saw does not have the {} rows its record says",
            mount.rows()
        ));
    }
    let mut grid = Grid::new(entry, &variables)?;
    let mut findings = Vec::new();
    let mut miscategorised = false;
    let mut cells = Vec::with_capacity(entry.cells.len());
    let mut valued = Vec::with_capacity(entry.cells.len());
    let values = values.as_ref();
    let mut large = windowed(entry.kind, &variables, &entry.cells, &units, values).into_iter().peekable();
    let mut ids = Vec::with_capacity(variables.len());
    for (at, (claimed, owned)) in entry.cells.iter().zip(units).enumerate() {
        category_ids(&variables, claimed, &mut ids);
        let pass = match large.next_if(|(cell, _)| *cell == at) {
            Some((_, pass)) => pass,
            None => {
                let mut pass = Pass::new(entry.kind, &variables, &ids);
                in_runs(owned.iter(), |run| pass.add(run, values));
                pass
            }
        };
        let label = || cell_label(&entry.variables, &claimed.key);
        let (cell, with_value, misplaced) = pass.finish(claimed, &owned, values, &entry.variables);
        if let Some(problem) = misplaced {
            miscategorised = true;
            findings.push(Finding { cell: Some(claimed.key.clone()), message: format!("{} {problem}", label()) });
        }
        if let Some(grid) = &mut grid {
            grid.mark(&claimed.key, &ids);
        }
        let with_value = with_value.unwrap_or(owned);
        let differences = differences(claimed, &cell);
        if !differences.is_empty() {
            let message = format!("{}: {}", label(), differences.join("; "));
            findings.push(Finding { cell: Some(claimed.key.clone()), message });
        }
        cells.push(cell);
        valued.push(with_value);
    }
    let absent = grid.map(|grid| grid.absent()).unwrap_or_default();
    let expanded = absent.len();
    for key in absent {
        cells.push(empty_cell(entry.kind, key, entry.cells.first()));
        valued.push(RoaringBitmap::new());
    }
    let derived: Vec<&str> = entry
        .variables
        .iter()
        .zip(&variables)
        .filter(|(_, v)| matches!(v, Variable::Derived))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut passed = "every cell's numbers are the data's, recomputed from the rows it names".to_string();
    if expanded > 0 {
        passed.push_str(&format!("; combinations absent from the table, judged as empty cells: {expanded}"));
    }
    if !derived.is_empty() {
        passed.push_str(&format!(
            "; {} derived in the analysis, so the host could not confirm each row's category",
            derived.join(", ")
        ));
    }
    let result = CheckResult::from_findings(
        Check::Recount,
        Outcome::Fail,
        findings,
        passed,
        |n| {
            format!(
                "{} differ from the rows they name in the data the job saw: the manifest is not true",
                cells_word(n)
            )
        },
        None,
    );
    Ok(Recomputed {
        entry: with_cells(entry, cells),
        units: valued,
        unit_space: mount.unit_space().to_string(),
        disjoint: derived.is_empty() && !miscategorised,
        result,
    })
}

/// Sets `ids` to the number of `cell`'s category of each variable, where the variable is a
/// granted column that has it.
fn category_ids(variables: &[Variable], cell: &Cell, ids: &mut Vec<Option<u32>>) {
    ids.clear();
    ids.extend(variables.iter().zip(&cell.key).map(|(variable, label)| match variable {
        Variable::Granted(column) => column.id(label),
        Variable::Derived => None,
    }));
}

/// Rows in one window of the data: the cells with at least this many units are recomputed
/// together, window by window, so that the rows they read stay in the cache (each cell read
/// alone would stream the whole column once per cell).
const WINDOW: u32 = 1 << 16;

/// The cells of at least [`WINDOW`] units, by position, each recomputed window by window
/// over the data, when there are several; none otherwise.
fn windowed<'c>(
    kind: OutputKind,
    variables: &'c [Variable],
    cells: &[Cell],
    units: &[RoaringBitmap],
    values: Option<&Numeric>,
) -> Vec<(usize, Pass<'c>)> {
    let large: Vec<usize> = (0..units.len()).filter(|&at| units[at].len() >= u64::from(WINDOW)).collect();
    if large.len() < 2 {
        return Vec::new();
    }
    let mut ids = Vec::with_capacity(variables.len());
    let passes: Vec<(usize, Pass<'c>)> = large
        .into_iter()
        .map(|at| {
            category_ids(variables, &cells[at], &mut ids);
            (at, Pass::new(kind, variables, &ids))
        })
        .collect();
    let windows = passes.iter().filter_map(|(at, _)| units[*at].max()).max().map_or(0, |last| last / WINDOW + 1);
    let parts = in_parts(windows as usize, |part| {
        let mut passes = passes.clone();
        for window in part {
            let first = window as u32 * WINDOW;
            for (at, pass) in &mut passes {
                in_runs(units[*at].range(first..=first.saturating_add(WINDOW - 1)), |run| pass.add(run, values));
            }
        }
        passes
    });
    let mut parts = parts.into_iter();
    let mut passes = parts.next().unwrap_or_default();
    for part in parts {
        passes.iter_mut().zip(part).for_each(|((_, pass), (_, later))| pass.merge(later));
    }
    passes
}

/// One cell being recomputed: its statistics so far, and the rows found outside its
/// categories. Rows come in ascending runs, all at once or window by window; passes over
/// consecutive parts of the rows are merged in order.
#[derive(Clone)]
struct Pass<'c> {
    kind: OutputKind,
    tally: MagnitudeCell,
    /// A quantile table's values.
    sorted: Vec<f64>,
    lacking: u64,
    expected: Vec<Expected<'c>>,
}

impl<'c> Pass<'c> {
    /// A pass over a cell of a table of `kind` whose categories have numbers `ids`.
    fn new(kind: OutputKind, variables: &'c [Variable], ids: &[Option<u32>]) -> Pass<'c> {
        let expected = variables
            .iter()
            .zip(ids)
            .enumerate()
            .filter_map(|(variable, (v, &id))| match v {
                // A label the column does not have matches no row: every row is misplaced.
                Variable::Granted(column) => Some(Expected::new(variable, column, id.unwrap_or(u32::MAX))),
                Variable::Derived => None,
            })
            .collect();
        Pass { kind, tally: MagnitudeCell::default(), sorted: Vec::new(), lacking: 0, expected }
    }

    /// Adds the rows of `run`, whose values (of a magnitude or quantile table) are in `values`.
    fn add(&mut self, run: &[u32], values: Option<&Numeric>) {
        self.expected.iter_mut().for_each(|e| e.look(run));
        let Some(values) = values else { return };
        // Locals, not fields, so the loop keeps them in registers.
        let (mut tally, mut lacking) = (self.tally, self.lacking);
        if self.kind == OutputKind::Quantiles {
            let sorted = &mut self.sorted;
            values.each(run, |value| if value.is_nan() { lacking += 1 } else { sorted.push(value) });
        } else {
            values.each(run, |value| if value.is_nan() { lacking += 1 } else { tally.add(value) });
        }
        (self.tally, self.lacking) = (tally, lacking);
    }

    /// Adds what `later` found in the rows after this pass's.
    fn merge(&mut self, later: Pass<'c>) {
        self.tally.merge(&later.tally);
        self.sorted.extend(later.sorted);
        self.lacking += later.lacking;
        self.expected.iter_mut().zip(later.expected).for_each(|(e, later)| e.merge(later));
    }

    /// The cell `claimed` as its rows `rows` give it, once every row is added; the rows among
    /// them with a value when some lack one (`None`: all of `rows`); and why some row does not
    /// belong in it (`names`: the table's variables).
    fn finish(
        mut self,
        claimed: &Cell,
        rows: &RoaringBitmap,
        values: Option<&Numeric>,
        names: &[String],
    ) -> (Cell, Option<RoaringBitmap>, Option<String>) {
        let misplaced = misplaced(&self.expected, claimed, names);
        let key = claimed.key.clone();
        let Some(values) = values else {
            return (Cell { key, count: rows.len(), ..Cell::default() }, None, misplaced);
        };
        let filtered = (self.lacking > 0).then(|| rows.iter().filter(|&row| !values.value(row).is_nan()).collect());
        let cell = if self.kind == OutputKind::Quantiles {
            self.sorted.sort_by(f64::total_cmp);
            Cell {
                key,
                count: self.sorted.len() as u64,
                missing: Some(self.lacking),
                quantiles: claimed.quantiles.iter().map(|q| quantile(&self.sorted, q.p)).collect(),
                ..Cell::default()
            }
        } else {
            self.tally.missing = self.lacking;
            self.tally.cell(key)
        };
        (cell, filtered, misplaced)
    }
}

/// The category of a granted variable that every row of a cell must have, and the rows
/// found without it.
#[derive(Clone)]
struct Expected<'c> {
    variable: usize,
    column: &'c Categorical,
    wanted: u32,
    first: Option<u32>,
    others: u64,
}

impl<'c> Expected<'c> {
    fn new(variable: usize, column: &'c Categorical, wanted: u32) -> Expected<'c> {
        Expected { variable, column, wanted, first: None, others: 0 }
    }

    /// Adds what `later` found in the rows after this one's.
    fn merge(&mut self, later: Expected<'c>) {
        match (self.first, later.first) {
            (None, first) => (self.first, self.others) = (first, self.others + later.others),
            (Some(_), Some(_)) => self.others += later.others + 1,
            (Some(_), None) => self.others += later.others,
        }
    }

    /// Notes the rows of `run` whose category is not the wanted one.
    fn look(&mut self, run: &[u32]) {
        let (found, first) = self.column.others(run, self.wanted);
        if found == 0 {
            return;
        }
        match self.first {
            Some(_) => self.others += found,
            None => {
                self.first = first;
                self.others += found - 1;
            }
        }
    }
}

/// Calls `f` on the rows of `iter` in ascending runs of up to [`RUN`] rows: loops over a
/// run of row numbers are tight, where a call per row through the bitmap's iterator is not.
fn in_runs(mut iter: roaring::bitmap::Iter<'_>, mut f: impl FnMut(&[u32])) {
    let mut buffer = [0u32; RUN];
    loop {
        let run = iter.next_many(&mut buffer);
        if run.is_empty() {
            return;
        }
        f(run);
    }
}

/// Rows per run of [`in_runs`].
const RUN: usize = 2048;

/// Why some row of a cell does not belong in it, from the first granted variable whose
/// category some row lacks.
fn misplaced(expected: &[Expected<'_>], cell: &Cell, names: &[String]) -> Option<String> {
    let wrong = expected.iter().find(|e| e.first.is_some())?;
    let first = wrong.first?;
    let found = &wrong.column.labels[wrong.column.category(first) as usize];
    let more = if wrong.others > 0 { format!(" and {} more rows", wrong.others) } else { String::new() };
    let (name, label) = (&names[wrong.variable], &cell.key[wrong.variable]);
    Some(format!("names row {first}{more} whose {name} is {found}, not {label}"))
}

/// What the claimed cell says that the recomputed one does not, one phrase per statistic.
fn differences(claimed: &Cell, actual: &Cell) -> Vec<String> {
    let mut found = Vec::new();
    let mut compare = |what: &str, claim: Option<f64>, truth: Option<f64>| {
        let same = match (claim, truth) {
            (Some(c), Some(t)) => close(c, t) || (c.is_nan() && t.is_nan()),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !same {
            let shown = |v: Option<f64>| v.map_or("nothing".to_string(), |v| v.to_string());
            found.push(format!("the manifest says {what} {}, the rows it names give {}", shown(claim), shown(truth)));
        }
    };
    let count = |n: Option<u64>| n.map(|n| n as f64);
    compare("count", Some(claimed.count as f64), Some(actual.count as f64));
    compare("sum", claimed.sum, actual.sum);
    compare("largest value", claimed.top1, actual.top1);
    compare("second largest value", claimed.top2, actual.top2);
    compare("negative values", count(claimed.negatives), count(actual.negatives));
    compare("zero values", count(claimed.zeros), count(actual.zeros));
    compare("missing values", count(claimed.missing), count(actual.missing));
    for (c, a) in claimed.quantiles.iter().zip(&actual.quantiles) {
        compare(&format!("quantile p={}", c.p), Some(c.value), Some(a.value));
        compare(&format!("units at quantile p={}", c.p), Some(c.units_at_value as f64), Some(a.units_at_value as f64));
    }
    found
}

/// The full cross product of a table's variables' categories: a granted variable's are those
/// of the data the job saw, a derived one's those the table uses. Combinations are numbered
/// with the last variable fastest; the grid marks those the table has.
struct Grid<'a> {
    categories: Vec<Vec<&'a str>>,
    places: Vec<Places<'a>>,
    present: Vec<bool>,
}

/// Where each category of one variable sits among the grid's categories of it.
enum Places<'a> {
    /// By category number, for a granted column (`None`: a category no row has).
    ById(Vec<Option<usize>>),
    /// By label, for a derived variable.
    ByLabel(rustc_hash::FxHashMap<&'a str, usize>),
}

impl<'a> Grid<'a> {
    /// The grid of `entry`'s variables; `None` when some variable has no category (there is
    /// nothing to cross); `Err` when it would have more cells than the checks judge.
    fn new(entry: &'a OutputEntry, variables: &'a [Variable]) -> Result<Option<Grid<'a>>, String> {
        let mut categories = Vec::with_capacity(variables.len());
        let mut places = Vec::with_capacity(variables.len());
        for (i, variable) in variables.iter().enumerate() {
            match variable {
                Variable::Granted(column) => {
                    let mut position = 0;
                    let by_id = column
                        .present
                        .iter()
                        .map(|&present| {
                            present.then(|| {
                                position += 1;
                                position - 1
                            })
                        })
                        .collect();
                    let labels = column.labels.iter().zip(&column.present).filter(|(_, present)| **present);
                    categories.push(labels.map(|(label, _)| label.as_str()).collect());
                    places.push(Places::ById(by_id));
                }
                Variable::Derived => {
                    let mut seen: Vec<&str> =
                        entry.cells.iter().filter_map(|c| c.key.get(i).map(String::as_str)).collect();
                    seen.sort_unstable();
                    seen.dedup();
                    places.push(Places::ByLabel(seen.iter().enumerate().map(|(at, &label)| (label, at)).collect()));
                    categories.push(seen);
                }
            }
        }
        let size =
            match categories.iter().try_fold(1usize, |product, c: &Vec<&str>| product.checked_mul(c.len().max(1))) {
                Some(size) if size <= MAX_CELLS => size,
                _ => {
                    return Err(format!(
                        "its variables' categories make more than {MAX_CELLS} combinations, more than the checks judge"
                    ));
                }
            };
        if categories.iter().any(Vec::is_empty) {
            return Ok(None);
        }
        Ok(Some(Grid { categories, places, present: vec![false; size] }))
    }

    /// Marks the combination `key` (whose categories have numbers `ids`) as present; a key
    /// with a category not among its variable's takes no place (the cell is judged as it is).
    fn mark(&mut self, key: &[String], ids: &[Option<u32>]) {
        let place = key.iter().zip(ids).zip(self.places.iter().zip(&self.categories)).try_fold(
            0usize,
            |index, ((label, id), (places, categories))| {
                let at = match places {
                    Places::ById(by_id) => by_id.get(usize::try_from((*id)?).ok()?).copied().flatten(),
                    Places::ByLabel(by_label) => by_label.get(label.as_str()).copied(),
                }?;
                Some(index * categories.len() + at)
            },
        );
        if let Some(place) = place {
            self.present[place] = true;
        }
    }

    /// The keys of the combinations not marked.
    fn absent(&self) -> Vec<Vec<String>> {
        self.present
            .iter()
            .enumerate()
            .filter(|(_, present)| !**present)
            .map(|(mut index, _)| {
                let mut key = vec![String::new(); self.categories.len()];
                for (slot, c) in key.iter_mut().zip(&self.categories).rev() {
                    *slot = c[index % c.len()].to_string();
                    index /= c.len();
                }
                key
            })
            .collect()
    }
}

/// An absent combination as a cell with no units, shaped like the table's other cells.
fn empty_cell(kind: OutputKind, key: Vec<String>, like: Option<&Cell>) -> Cell {
    let zero = (kind == OutputKind::Magnitude).then_some(0.0);
    let none = (kind != OutputKind::Frequency).then_some(0);
    let quantiles = like.map_or_else(Vec::new, |c| c.quantiles.iter().map(|q| quantile(&[], q.p)).collect());
    Cell {
        key,
        count: 0,
        sum: zero,
        top1: zero,
        top2: zero,
        negatives: none.filter(|_| kind == OutputKind::Magnitude),
        zeros: none.filter(|_| kind == OutputKind::Magnitude),
        missing: none,
        quantiles,
    }
}

/// A regression recomputed from the rows it names: every one must have the dependent variable
/// and every regressor, and its `n` and residual dof are the host's.
fn regression(entry: &OutputEntry, units: Vec<RoaringBitmap>, mount: &dyn MountData) -> Result<Recomputed, String> {
    let Some(owned) = units.into_iter().next() else {
        return Err("the manifest names no rows for the regression".into());
    };
    let rows = &owned;
    let Some(fit) = &entry.regression else {
        return Err("the manifest declares a regression but gives no fit summary".into());
    };
    let mut findings = Vec::new();
    let mut derived = Vec::new();
    let numeric: Vec<&String> = std::iter::once(&fit.dependent)
        .chain(entry.variables.iter().filter(|v| fit.coefficients.iter().any(|c| &c.term == *v)))
        .collect();
    for name in entry.variables.iter().chain(std::iter::once(&fit.dependent)) {
        if !mount.columns().contains(name) {
            derived.push(name.as_str());
            continue;
        }
        let lacking = if numeric.contains(&name) {
            let values = mount.numeric(name)?;
            rows.iter().filter(|&row| values.value(row).is_nan()).count()
        } else {
            let column = mount.categorical(name)?;
            let missing = column.id(MISSING);
            rows.iter().filter(|&row| Some(column.category(row)) == missing).count()
        };
        if lacking > 0 {
            findings.push(Finding {
                cell: None,
                message: format!(
                    "the regression names {lacking} rows whose {name} is missing, which it cannot have used"
                ),
            });
        }
    }
    let n = rows.len();
    let residual_dof = n.saturating_sub(fit.coefficients.len() as u64);
    if fit.n != n || fit.residual_dof != residual_dof {
        findings.push(Finding {
            cell: None,
            message: format!(
                "the manifest says {} observations and {} residual degrees of freedom; the rows it names give {n} and {residual_dof}",
                fit.n, fit.residual_dof
            ),
        });
    }
    let mut passed = format!("the regression's {n} observations are the rows it names in the data");
    if !derived.is_empty() {
        passed.push_str(&format!("; {} derived in the analysis", derived.join(", ")));
    }
    let result = CheckResult::from_findings(
        Check::Recount,
        Outcome::Fail,
        findings,
        passed,
        |_| "the regression's observations are not the rows it names in the data: the manifest is not true".into(),
        None,
    );
    let regression = Some(RegressionSummary { n, residual_dof, ..fit.clone() });
    Ok(Recomputed {
        entry: OutputEntry { regression, ..with_cells(entry, Vec::new()) },
        units: vec![owned],
        unit_space: mount.unit_space().to_string(),
        disjoint: true,
        result,
    })
}
