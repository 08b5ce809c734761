//! From the file as written to a [`Policy`] that can be trusted: names, dates, datasets, caps.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;

use super::error::{PolicyError, PolicyErrorKind};
use super::raw::{RawDataset, RawDisclosure, RawLimits, RawMember, RawPolicy, RawProject};
use super::{DatasetGrant, Disclosure, Limits, Member, OperatorCaps, Policy, Project};
use crate::catalog::{Catalog, RowFilter, check_name};
use crate::disclosure::Thresholds;

/// Default for `limits.max_concurrent_jobs_per_user` (rule 10).
const DEFAULT_JOBS_PER_USER: u32 = 2;
/// Jobs a day one user may submit to a project when the policy does not say.
const DEFAULT_JOBS_PER_DAY: u32 = 20;
/// Default for `limits.max_upload_mb_per_day`: a day's uploads of a large interpreter or two.
const DEFAULT_UPLOAD_MB_PER_DAY: u64 = 1024;
/// Default for `limits.output_max_bytes`: 1 MiB each of stdout and stderr.
const DEFAULT_OUTPUT_MAX_BYTES: u64 = 1 << 20;
/// Default for `limits.clock_resolution_ms`: guests see time in whole seconds.
const DEFAULT_CLOCK_RESOLUTION_MS: u64 = 1000;

pub(super) fn validate(
    raw: RawPolicy,
    file: &Path,
    sha256: String,
    caps: &OperatorCaps,
    catalog: &Catalog,
    today: NaiveDate,
) -> Result<Policy, PolicyError> {
    Ok(Policy {
        source: file.to_path_buf(),
        sha256,
        project: project(raw.project, file, today)?,
        members: members(raw.members, file)?,
        datasets: datasets(raw.datasets, file, catalog)?,
        limits: limits(raw.limits, file, caps)?,
        disclosure: disclosure(raw.disclosure, file)?,
    })
}

fn err(file: &Path, key: impl Into<String>, kind: PolicyErrorKind) -> PolicyError {
    PolicyError::new(file, key, kind)
}

/// Checks that `value` is a non-empty name made of `[A-Za-z0-9._-]`, not starting with a dot.
fn name(file: &Path, key: &str, value: &str, allowed: &'static str, lowercase_only: bool) -> Result<(), PolicyError> {
    if value.is_empty() {
        return Err(err(file, key, PolicyErrorKind::Empty));
    }
    let ok_char = |c: char| {
        (if lowercase_only { c.is_ascii_lowercase() } else { c.is_ascii_alphabetic() })
            || c.is_ascii_digit()
            || matches!(c, '-' | '_' | '.')
    };
    if value.len() > 64 || value.starts_with('.') || !value.chars().all(ok_char) {
        return Err(err(file, key, PolicyErrorKind::InvalidName { value: value.to_string(), allowed }));
    }
    Ok(())
}

fn non_empty(file: &Path, key: &str, value: String) -> Result<String, PolicyError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(err(file, key, PolicyErrorKind::Empty));
    }
    Ok(trimmed.to_string())
}

fn project(raw: RawProject, file: &Path, today: NaiveDate) -> Result<Project, PolicyError> {
    name(file, "project.id", &raw.id, "letters, digits, '.', '-' and '_' (at most 64)", false)?;
    let expires = match (raw.expires.date, raw.expires.time) {
        (Some(d), None) => NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day)),
        _ => None,
    }
    .ok_or_else(|| err(file, "project.expires", PolicyErrorKind::InvalidDate(raw.expires.to_string())))?;
    if today > expires {
        return Err(err(file, "project.expires", PolicyErrorKind::Expired { expires, today }));
    }
    let mut runtimes: Vec<String> = Vec::new();
    for (i, runtime) in raw.runtimes.unwrap_or_default().into_iter().enumerate() {
        let key = format!("project.runtimes[{i}]");
        if crate::interpreters::pin(&runtime).is_none() {
            let known = crate::interpreters::known_names();
            return Err(err(file, key, PolicyErrorKind::UnknownRuntime { value: runtime, known }));
        }
        if runtimes.contains(&runtime) {
            return Err(err(file, key, PolicyErrorKind::Duplicate(runtime)));
        }
        runtimes.push(runtime);
    }
    Ok(Project {
        id: raw.id,
        title: non_empty(file, "project.title", raw.title)?,
        purpose: non_empty(file, "project.purpose", raw.purpose)?,
        expires,
        runtimes,
    })
}

pub(super) fn members(raw: Vec<RawMember>, file: &Path) -> Result<Vec<Member>, PolicyError> {
    if raw.is_empty() {
        return Err(err(file, "members", PolicyErrorKind::NoEntries));
    }
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let key = format!("members[{i}]");
            name(file, &format!("{key}.user"), &m.user, "letters, digits, '.', '-' and '_' (at most 64)", false)?;
            if !seen.insert(m.user.clone()) {
                return Err(err(file, format!("{key}.user"), PolicyErrorKind::Duplicate(m.user)));
            }
            if m.roles.is_empty() {
                return Err(err(file, format!("{key}.roles"), PolicyErrorKind::NoEntries));
            }
            Ok(Member { user: m.user, roles: m.roles })
        })
        .collect()
}

fn datasets(raw: Vec<RawDataset>, file: &Path, catalog: &Catalog) -> Result<Vec<DatasetGrant>, PolicyError> {
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, d)| {
            let key = |field: &str| format!("datasets[{i}].{field}");
            name(file, &key("mount"), &d.mount, "lower-case letters, digits, '.', '-' and '_' (at most 64)", true)?;
            if !seen.insert(d.mount.clone()) {
                return Err(err(file, key("mount"), PolicyErrorKind::Duplicate(d.mount)));
            }
            let missing = |field: &str, message: String| err(file, key(field), PolicyErrorKind::Dataset(message));
            check_name(&d.dataset).map_err(|e| missing("dataset", e.to_string()))?;
            let version = match (d.version, &d.sha256) {
                (Some(number), pin) => {
                    let version = catalog.get(&d.dataset, number).map_err(|e| missing("version", e.to_string()))?;
                    if pin.as_ref().is_some_and(|sha| *sha != version.sha256) {
                        return Err(missing(
                            "sha256",
                            format!("does not match dataset {} version {number} ({})", d.dataset, version.sha256),
                        ));
                    }
                    version
                }
                (None, Some(sha)) => catalog
                    .versions(&d.dataset)
                    .map_err(|e| missing("dataset", e.to_string()))?
                    .into_iter()
                    .find(|v| v.sha256 == *sha)
                    .ok_or_else(|| {
                        missing("sha256", format!("no version of dataset {} has this SHA-256", d.dataset))
                    })?,
                (None, None) => {
                    return Err(missing(
                        "version",
                        "pin a version (or a sha256) so every job runs on known bytes".into(),
                    ));
                }
            };
            if d.columns.is_empty() {
                return Err(err(file, key("columns"), PolicyErrorKind::NoEntries));
            }
            let mut granted = HashSet::new();
            for (j, column) in d.columns.iter().enumerate() {
                if !version.columns.iter().any(|c| c.name == *column) {
                    let message = format!("dataset {} version {} has no column {column:?}", d.dataset, version.version);
                    return Err(missing(&format!("columns[{j}]"), message));
                }
                if !granted.insert(column) {
                    return Err(err(file, key(&format!("columns[{j}]")), PolicyErrorKind::Duplicate(column.clone())));
                }
            }
            let filter = match &d.filter {
                None => None,
                Some(text) => {
                    let bad = |message: String| err(file, key("filter"), PolicyErrorKind::Filter(message));
                    let filter: RowFilter =
                        text.parse().map_err(|e: crate::catalog::FilterError| bad(e.to_string()))?;
                    let schema = catalog.schema(&version).map_err(|e| missing("dataset", e.to_string()))?;
                    filter.check(&schema).map_err(|e| bad(e.to_string()))?;
                    Some(filter)
                }
            };
            Ok(DatasetGrant {
                mount: d.mount,
                dataset: version.name,
                version: version.version,
                sha256: version.sha256,
                columns: d.columns,
                filter,
                csv: d.csv.unwrap_or(false),
            })
        })
        .collect()
}

fn limits(raw: RawLimits, file: &Path, caps: &OperatorCaps) -> Result<Limits, PolicyError> {
    let check = |key: &str, value: u64, cap: u64| caps.check(file, &format!("limits.{key}"), value, cap);
    check("memory_mb", raw.memory_mb, caps.memory_mb)?;
    check("cpu_seconds", raw.cpu_seconds, caps.cpu_seconds)?;
    check("wall_seconds", raw.wall_seconds, caps.wall_seconds)?;
    check("export_max_bytes", raw.export_max_bytes, caps.export_max_bytes)?;
    check("export_max_files", raw.export_max_files, caps.export_max_files)?;
    let output_max_bytes = raw.output_max_bytes.unwrap_or(DEFAULT_OUTPUT_MAX_BYTES);
    check("output_max_bytes", output_max_bytes, caps.output_max_bytes)?;
    let jobs = raw.max_concurrent_jobs_per_user.unwrap_or(DEFAULT_JOBS_PER_USER);
    check("max_concurrent_jobs_per_user", u64::from(jobs), caps.max_concurrent_jobs_per_user)?;
    let per_day = raw.max_jobs_per_day.unwrap_or(DEFAULT_JOBS_PER_DAY);
    check("max_jobs_per_day", u64::from(per_day), caps.max_jobs_per_day)?;
    // By default as many uploads may be refused (a module that does not load) as jobs accepted.
    let uploads = raw.max_uploads_per_day.unwrap_or(per_day.saturating_mul(2));
    check("max_uploads_per_day", u64::from(uploads), caps.max_uploads_per_day)?;
    let upload_mb = raw.max_upload_mb_per_day.unwrap_or(DEFAULT_UPLOAD_MB_PER_DAY);
    check("max_upload_mb_per_day", upload_mb, caps.max_upload_mb_per_day)?;
    let clock_ms = raw.clock_resolution_ms.unwrap_or(DEFAULT_CLOCK_RESOLUTION_MS);
    check("clock_resolution_ms", clock_ms, u64::MAX)?;
    Ok(Limits {
        memory_bytes: raw.memory_mb.saturating_mul(1 << 20),
        cpu: Duration::from_secs(raw.cpu_seconds),
        wall: Duration::from_secs(raw.wall_seconds),
        export_max_bytes: raw.export_max_bytes,
        export_max_files: raw.export_max_files,
        output_max_bytes,
        max_concurrent_jobs_per_user: jobs,
        max_jobs_per_day: per_day,
        max_uploads_per_day: uploads,
        max_upload_bytes_per_day: upload_mb.saturating_mul(1 << 20),
        clock_resolution: Duration::from_millis(clock_ms),
        retry_interrupted: raw.retry_interrupted.unwrap_or(false),
    })
}

/// Most independent checkers a policy may require (`disclosure.reviews_required`).
const MAX_REVIEWS: u32 = 5;

fn disclosure(raw: RawDisclosure, file: &Path) -> Result<Disclosure, PolicyError> {
    let defaults = Thresholds::default();
    let range = |key: &str, value: String, allowed: &'static str| {
        err(file, format!("disclosure.{key}"), PolicyErrorKind::OutOfRange { value, allowed })
    };
    let whole = |key: &str, value: Option<u64>, default: u64| match value {
        Some(0) => Err(range(key, "0".into(), "at least 1")),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let share = |key: &str, value: Option<f64>, default: f64, allowed: &'static str, (low, high): (f64, f64)| {
        let v = value.unwrap_or(default);
        if !(low..=high).contains(&v) || (v == low && low == 0.0) {
            return Err(range(key, v.to_string(), allowed));
        }
        Ok(v)
    };
    let dominance_n = raw.dominance_n.unwrap_or(defaults.dominance_n);
    if !(1..=2).contains(&dominance_n) {
        return Err(range("dominance_n", dominance_n.to_string(), "1 or 2"));
    }
    let reviews_required = raw.reviews_required.unwrap_or(1);
    if !(1..=MAX_REVIEWS).contains(&reviews_required) {
        return Err(range("reviews_required", reviews_required.to_string(), "1 to 5"));
    }
    let thresholds = Thresholds {
        min_units: whole("min_units", raw.min_units, defaults.min_units)?,
        dominance_n,
        dominance_k: share("dominance_k", raw.dominance_k, defaults.dominance_k, "above 0 and at most 1", (0.0, 1.0))?,
        p_ratio: share("p_percent", raw.p_percent, defaults.p_ratio * 100.0, "above 0 and at most 100", (0.0, 100.0))?
            / 100.0,
        min_residual_dof: whole("min_residual_dof", raw.min_residual_dof, defaults.min_residual_dof)?,
        rounding_base: whole("rounding_base", raw.rounding_base, defaults.rounding_base)?,
    };
    Ok(Disclosure { thresholds, reviews_required, show_check_names: raw.show_check_names.unwrap_or(true) })
}
