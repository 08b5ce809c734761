//! Ordinary least squares in one pass, reporting what disclosure checks need: coefficients,
//! standard errors, observations and residual degrees of freedom.
//!
//! The pass accumulates the sufficient statistics `X'X`, `X'y` and `y'y`. Categorical terms get
//! one dummy per category as categories appear (earlier rows had a zero there, so growing the
//! matrices with zeros is exact); at the end the alphabetically first category of each term is
//! dropped as the reference, which is also exact, and the dummies are reported in category order.

use rustc_hash::FxHashMap as HashMap;

use arrow_array::RecordBatch;

use super::text::Text;
use super::values::Values;
use super::{Table, TableError, csv_field};
use crate::manifest::{Cell, Coefficient, OutputKind, RegressionSummary};
use crate::units::{RoaringBitmap, Source, Units};

/// A regressor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A numeric column, entered as is.
    Numeric(String),
    /// A text column, entered as one dummy per category but the reference.
    Categorical(String),
}

#[derive(Debug, Clone)]
enum TermState {
    Numeric { column: String, index: usize },
    Categorical { column: String, categories: HashMap<String, usize> },
}

/// A linear regression of one variable on numeric and categorical terms, with an intercept.
/// Rows with a missing value in any variable are left out.
///
/// ```
/// # use std::sync::Arc;
/// # use ringfence_sdk::arrow_array::{Float64Array, RecordBatch};
/// use ringfence_sdk::table::{Ols, Term};
///
/// # let batch = RecordBatch::try_from_iter([
/// #     ("x", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])) as _),
/// #     ("y", Arc::new(Float64Array::from(vec![3.0, 5.0, 7.0, 9.5])) as _),
/// # ]).unwrap();
/// let mut ols = Ols::new("y", vec![Term::Numeric("x".into())]);
/// ols.add(&batch)?;
/// let fit = ols.fit()?;
/// assert_eq!((fit.n, fit.residual_dof), (4, 2));
/// assert!((fit.coefficients[1].estimate - 2.15).abs() < 1e-9);
/// # Ok::<(), ringfence_sdk::table::TableError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Ols {
    dependent: String,
    terms: Vec<TermState>,
    names: Vec<String>,
    xtx: Vec<Vec<f64>>,
    xty: Vec<f64>,
    yty: f64,
    y_sum: f64,
    n: u64,
    dropped: u64,
    row: Vec<f64>,
    units: RoaringBitmap,
    source: Source,
}

impl Ols {
    /// A regression of `dependent` on `terms` (plus an intercept).
    pub fn new(dependent: &str, terms: Vec<Term>) -> Ols {
        let mut names = vec!["(intercept)".to_string()];
        let states = terms
            .into_iter()
            .map(|term| match term {
                Term::Numeric(column) => {
                    names.push(column.clone());
                    TermState::Numeric { column, index: names.len() - 1 }
                }
                Term::Categorical(column) => TermState::Categorical { column, categories: HashMap::default() },
            })
            .collect();
        let width = names.len();
        Ols {
            dependent: dependent.to_string(),
            terms: states,
            names,
            xtx: vec![vec![0.0; width]; width],
            xty: vec![0.0; width],
            yty: 0.0,
            y_sum: 0.0,
            n: 0,
            dropped: 0,
            row: Vec::new(),
            units: RoaringBitmap::new(),
            source: Source::default(),
        }
    }

    /// Adds a regressor column of zeros so far.
    fn grow(&mut self, name: String) -> usize {
        self.names.push(name);
        for row in &mut self.xtx {
            row.push(0.0);
        }
        self.xtx.push(vec![0.0; self.names.len()]);
        self.xty.push(0.0);
        self.names.len() - 1
    }

    /// Adds the rows of `batch`.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), TableError> {
        let y = Values::of(batch, &self.dependent)?;
        let rows = self.source.add(batch);
        let mut numeric = Vec::new();
        let mut text = Vec::new();
        for (t, term) in self.terms.iter().enumerate() {
            match term {
                TermState::Numeric { column, .. } => numeric.push((t, Values::of(batch, column)?)),
                TermState::Categorical { column, .. } => text.push((t, Text::of(batch, column)?)),
            }
        }
        'rows: for r in 0..batch.num_rows() {
            let Some(yv) = y.get(r) else {
                self.dropped += 1;
                continue;
            };
            self.row.clear();
            self.row.resize(self.names.len(), 0.0);
            self.row[0] = 1.0;
            for (t, values) in &numeric {
                let (Some(v), TermState::Numeric { index, .. }) = (values.get(r), &self.terms[*t]) else {
                    self.dropped += 1;
                    continue 'rows;
                };
                self.row[*index] = v;
            }
            for (t, values) in &text {
                let Some(label) = values.get(r)? else {
                    self.dropped += 1;
                    continue 'rows;
                };
                let known = match &self.terms[*t] {
                    TermState::Categorical { categories, .. } => categories.get(label).copied(),
                    TermState::Numeric { .. } => None,
                };
                let index = match known {
                    Some(index) => index,
                    None => {
                        let TermState::Categorical { column, .. } = &self.terms[*t] else { continue 'rows };
                        let index = self.grow(format!("{column}={label}"));
                        if let TermState::Categorical { categories, .. } = &mut self.terms[*t] {
                            categories.insert(label.to_string(), index);
                        }
                        self.row.push(0.0);
                        index
                    }
                };
                self.row[index] = 1.0;
            }
            for i in 0..self.row.len() {
                let xi = self.row[i];
                if xi == 0.0 {
                    continue;
                }
                self.xty[i] += xi * yv;
                for j in i..self.row.len() {
                    self.xtx[i][j] += xi * self.row[j];
                }
            }
            self.yty += yv * yv;
            self.y_sum += yv;
            self.n += 1;
            if let Some(rows) = rows {
                self.units.insert(rows.value(r));
            }
        }
        Ok(())
    }

    /// Rows left out for a missing value.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Solves the normal equations.
    pub fn fit(&self) -> Result<RegressionSummary, TableError> {
        // Intercept, then each term in the order given; a categorical term's dummies sorted by
        // category, the first category left out as the reference.
        let mut keep: Vec<usize> = vec![0];
        for term in &self.terms {
            match term {
                TermState::Numeric { index, .. } => keep.push(*index),
                TermState::Categorical { categories, .. } => {
                    let mut sorted: Vec<(&String, &usize)> = categories.iter().collect();
                    sorted.sort();
                    keep.extend(sorted.iter().skip(1).map(|&(_, &index)| index));
                }
            }
        }
        let k = keep.len();
        if self.n <= k as u64 {
            return Err(TableError::Unfittable(format!("{} observations cannot fit {k} coefficients", self.n)));
        }
        let at = |i: usize, j: usize| if i <= j { self.xtx[i][j] } else { self.xtx[j][i] };
        let a: Vec<Vec<f64>> = keep.iter().map(|&i| keep.iter().map(|&j| at(i, j)).collect()).collect();
        let inverse = invert(a).ok_or_else(|| TableError::Unfittable("the regressors are collinear".into()))?;
        let b: Vec<f64> = (0..k).map(|i| (0..k).map(|j| inverse[i][j] * self.xty[keep[j]]).sum()).collect();
        let explained: f64 = (0..k).map(|i| b[i] * self.xty[keep[i]]).sum();
        let rss = (self.yty - explained).max(0.0);
        let dof = self.n - k as u64;
        let sigma2 = rss / dof as f64;
        let tss = self.yty - self.y_sum * self.y_sum / self.n as f64;
        Ok(RegressionSummary {
            dependent: self.dependent.clone(),
            n: self.n,
            residual_dof: dof,
            r_squared: if tss > 0.0 { 1.0 - rss / tss } else { 0.0 },
            coefficients: keep
                .iter()
                .enumerate()
                .map(|(i, &column)| Coefficient {
                    term: self.names[column].clone(),
                    estimate: b[i],
                    std_error: (sigma2 * inverse[i][i]).sqrt(),
                })
                .collect(),
        })
    }
}

/// Inverts a symmetric positive-definite matrix by Gauss–Jordan elimination with partial
/// pivoting; `None` when it is singular.
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    let scale = a.iter().enumerate().map(|(i, r)| r[i].abs()).fold(0.0, f64::max).max(1.0);
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() <= scale * 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..n {
            if row != col {
                let f = a[row][col];
                if f != 0.0 {
                    for j in 0..n {
                        a[row][j] -= f * a[col][j];
                        inv[row][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

impl Table for Ols {
    fn kind(&self) -> OutputKind {
        OutputKind::Regression
    }

    fn variables(&self) -> Vec<String> {
        self.terms
            .iter()
            .map(|t| match t {
                TermState::Numeric { column, .. } | TermState::Categorical { column, .. } => column.clone(),
            })
            .collect()
    }

    fn value(&self) -> Option<String> {
        Some(self.dependent.clone())
    }

    fn cells(&self) -> Vec<Cell> {
        Vec::new()
    }

    fn regression(&self) -> Option<RegressionSummary> {
        self.fit().ok()
    }

    fn units(&self) -> Option<Units> {
        Some(Units { mount: self.source.mount()?.to_string(), cells: vec![self.units.clone()] })
    }

    fn to_csv(&self) -> String {
        let mut csv = String::from("term,estimate,std_error\n");
        if let Ok(fit) = self.fit() {
            for c in &fit.coefficients {
                csv.push_str(&format!("{},{},{}\n", csv_field(&c.term), c.estimate, c.std_error));
            }
        }
        csv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{Float64Array, StringArray};

    #[test]
    fn recovers_an_exact_linear_relation_with_dummies() {
        let x: Vec<f64> = (0..40).map(f64::from).collect();
        let group: Vec<&str> = (0..40).map(|i| ["b", "a", "c"][i % 3]).collect();
        let effect = |g: &str| match g {
            "b" => 5.0,
            "c" => -2.0,
            _ => 0.0,
        };
        let y: Vec<f64> = x.iter().zip(&group).map(|(x, g)| 1.5 + 0.5 * x + effect(g)).collect();
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(Float64Array::from(x)) as _),
            ("group", Arc::new(StringArray::from(group)) as _),
            ("y", Arc::new(Float64Array::from(y)) as _),
        ])
        .expect("batch");
        let mut ols = Ols::new("y", vec![Term::Numeric("x".into()), Term::Categorical("group".into())]);
        ols.add(&batch).expect("add");
        let fit = ols.fit().expect("fit");
        let terms: Vec<&str> = fit.coefficients.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(terms, ["(intercept)", "x", "group=b", "group=c"]);
        for (c, want) in fit.coefficients.iter().zip([1.5, 0.5, 5.0, -2.0]) {
            assert!((c.estimate - want).abs() < 1e-8, "{}: {} vs {want}", c.term, c.estimate);
        }
        assert_eq!((fit.n, fit.residual_dof), (40, 36));
        assert!((fit.r_squared - 1.0).abs() < 1e-9);
    }

    #[test]
    fn collinear_or_tiny_regressions_are_refused() {
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0, 5.0])) as _),
            ("z", Arc::new(Float64Array::from(vec![2.0, 4.0, 6.0, 8.0, 10.0])) as _),
            ("y", Arc::new(Float64Array::from(vec![1.0, 0.0, 2.0, 1.0, 3.0])) as _),
        ])
        .expect("batch");
        let mut ols = Ols::new("y", vec![Term::Numeric("x".into()), Term::Numeric("z".into())]);
        ols.add(&batch).expect("add");
        assert!(matches!(ols.fit(), Err(TableError::Unfittable(m)) if m.contains("collinear")));
        let mut tiny = Ols::new("y", vec![Term::Numeric("x".into())]);
        tiny.add(&batch.slice(0, 2)).expect("add");
        assert!(matches!(tiny.fit(), Err(TableError::Unfittable(m)) if m.contains("2 observations")));
    }
}
