//! From a finished job to checked export requests: store the files, create the requests (one
//! transaction with the job's end and every audit entry), then run the checks on each.

use std::ops::RangeInclusive;
use std::path::Path;

use chrono::Utc;
use ringfence_sdk::manifest::{
    MANIFEST_FILE, MANIFEST_FILES, MANIFEST_VERSIONS, Manifest, OutputEntry, OutputKind, UnitsRef,
};
use ringfence_sdk::units::{RoaringBitmap, UNITS_FILE};

use super::request::ExportRequest;
use super::{ExportQueue, QueueError, Status, now};
use crate::audit::{Action, Event};
use crate::disclosure::data::{Mount, MountedData};
use crate::disclosure::{self, CellIndex, IndexedCell, Overlap, PublishedCells, Subject};
use crate::home::JobLock;
use crate::job::JobRecord;
use crate::policy::Disclosure;
use crate::store::{Connection, DecodeError, SqlError};

/// The largest `manifest.json` the host parses (16 MiB); a larger one leaves every output of
/// its job to a person.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The job's manifest entries by file, or why the manifest cannot be used.
fn manifest(queue: &ExportQueue, record: &JobRecord) -> Result<Vec<OutputEntry>, String> {
    if !record.exports.iter().any(|e| e.name == MANIFEST_FILE) {
        return Ok(Vec::new());
    }
    let path = queue.home.job_dir(&record.id).join("exports").join(MANIFEST_FILE);
    let size = std::fs::metadata(&path).map_err(|e| format!("cannot read it: {e}"))?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{MANIFEST_FILE} is {size} bytes; the host reads manifests of at most {MAX_MANIFEST_BYTES}"
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read it: {e}"))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST_FILE} is not valid: {e}"))?;
    if !MANIFEST_VERSIONS.contains(&manifest.version) {
        return Err(format!(
            "{MANIFEST_FILE} has version {}; this host reads versions {} to {}",
            manifest.version,
            MANIFEST_VERSIONS.start(),
            MANIFEST_VERSIONS.end()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for entry in &manifest.outputs {
        if !seen.insert(entry.file.as_str()) {
            return Err(format!("{MANIFEST_FILE} describes {} twice", entry.file));
        }
    }
    Ok(manifest.outputs)
}

/// The job's `manifest.units`, if it wrote one, or why it cannot be read.
fn units_file(exports_dir: &Path, record: &JobRecord) -> Option<Result<Vec<u8>, String>> {
    record
        .exports
        .iter()
        .any(|e| e.name == UNITS_FILE)
        .then(|| std::fs::read(exports_dir.join(UNITS_FILE)).map_err(|e| format!("{UNITS_FILE} cannot be read: {e}")))
}

/// The block of `file` that `named` points at, or why it cannot be had.
fn units_block(file: Option<&Result<Vec<u8>, String>>, named: &UnitsRef) -> Result<Vec<u8>, String> {
    let bytes = match file {
        None => return Err(format!("the manifest names units, but the job wrote no {UNITS_FILE}")),
        Some(Err(why)) => return Err(why.clone()),
        Some(Ok(bytes)) => bytes,
    };
    let end = named.offset.checked_add(named.length).filter(|&end| end <= bytes.len() as u64).ok_or_else(|| {
        format!(
            "the units are bytes {}..+{} of {UNITS_FILE}, which has {} bytes",
            named.offset,
            named.length,
            bytes.len()
        )
    })?;
    Ok(bytes[named.offset as usize..end as usize].to_vec())
}

/// Who records a job's end: the process running it, which holds its lock, or recovery, which
/// found the job's process dead.
pub(super) enum Recorder<'a> {
    /// The job's own process, with the job's lock.
    Owner(&'a JobLock),
    /// Recovery, for a job whose lock nobody holds.
    Recovery,
}

impl Recorder<'_> {
    /// Refuses an owner whose lock was lost: recovery may have ended the job, even queued it
    /// again, since. Asked inside the write transaction that records the end, which recovery
    /// needs too, so the answer holds until it commits.
    fn still_owns(&self, job: &str) -> Result<(), QueueError> {
        match self {
            Recorder::Owner(lock) if !lock.is_held() => Err(QueueError::LockLost { id: job.to_string() }),
            _ => Ok(()),
        }
    }
}

/// Stores the job's exported files and, in one transaction, records the job's end and creates
/// a pending request for each file. Returns the new requests' numbers.
pub(super) fn ingest(
    queue: &mut ExportQueue,
    record: &JobRecord,
    rules: &Disclosure,
    recorder: Recorder<'_>,
) -> Result<Vec<i64>, QueueError> {
    let exports_dir = queue.home.job_dir(&record.id).join("exports");
    let outputs: Vec<_> = record.exports.iter().filter(|e| !MANIFEST_FILES.contains(&e.name.as_str())).collect();
    for export in &outputs {
        queue.blobs.put(&export.sha256, &exports_dir.join(&export.name))?;
    }
    let (entries, problem) = match manifest(queue, record) {
        Ok(entries) => (entries, None),
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let units_file = units_file(&exports_dir, record);
    let datasets = serde_json::to_string(&record.datasets).map_err(|e| queue.store.corrupt("job record", e))?;
    let thresholds = serde_json::to_string(&rules.thresholds).map_err(|e| queue.store.corrupt("thresholds", e))?;
    let wrap = queue.store.err();
    let mut tx = queue.store.audited()?;
    recorder.still_owns(&record.id)?;
    let at = now();
    let updated = tx
        .execute(
            "UPDATE jobs SET status = ?2, finished_at = ?3 WHERE id = ?1 AND status = 'running'",
            crate::params![record.id, record.status.to_string(), at],
        )
        .map_err(&wrap)?;
    if updated == 0 {
        // Someone else (recovery in another process) already recorded this job's end.
        return Ok(Vec::new());
    }
    let finished = Event {
        actor: "system",
        action: Action::JobFinished,
        project: Some(&record.project),
        subject: Some(format!("job:{}", record.id)),
        detail: serde_json::json!({
            "status": record.status.to_string(),
            "duration_ms": record.duration_ms,
            "cpu_ms": record.cpu_ms,
            "exports": outputs.len(),
            "discarded": record.discarded.len(),
        }),
    };
    tx.record(finished, Utc::now())?;
    let mut ids = Vec::new();
    for export in outputs {
        let entry = entries.iter().find(|e| e.file == export.name);
        let manifest_json =
            entry.map(serde_json::to_string).transpose().map_err(|e| queue.store.corrupt("manifest", e))?;
        let kind = entry.map_or(OutputKind::File, |e| e.kind).as_str();
        let guest_description = entry.map(|e| e.description.clone()).unwrap_or_default();
        let units = entry.and_then(|e| e.units.as_ref()).map(|named| units_block(units_file.as_ref(), named));
        let (units, units_problem) = match units {
            None => (None, None),
            Some(Ok(block)) => (Some(block), None),
            Some(Err(why)) => (None, Some(why)),
        };
        let id: i64 = tx
            .query_row(
                "INSERT INTO requests (project, job, submitted_by, module_sha256, policy_sha256, datasets, file, size,
                 sha256, kind, manifest, manifest_problem, thresholds, reviews_required, guest_description,
                 show_check_names, description, status, created_at, updated_at, units, units_problem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, '', 'pending', ?17, ?17,
                     ?18, ?19)
             RETURNING id",
                crate::params![
                    record.project,
                    record.id,
                    record.user,
                    record.module_sha256,
                    record.policy_sha256,
                    datasets,
                    export.name,
                    export.size as i64,
                    export.sha256,
                    kind,
                    manifest_json,
                    problem,
                    thresholds,
                    rules.reviews_required,
                    guest_description,
                    rules.show_check_names,
                    at,
                    units,
                    units_problem
                ],
                |r| r.get(0),
            )
            .map_err(&wrap)?;
        let created = Event {
            actor: &record.user,
            action: Action::RequestCreated,
            project: Some(&record.project),
            subject: Some(format!("request:{id}")),
            detail: serde_json::json!({
                "job": record.id, "file": export.name, "size": export.size, "sha256": export.sha256, "kind": kind,
            }),
        };
        tx.record(created, Utc::now())?;
        ids.push(id);
    }
    tx.commit()?;
    Ok(ids)
}

/// Records that a job ended without a record: the host failed (`host_error`), or a queued job
/// could no longer start (`refused`), with why.
pub(super) fn ended_without_record(
    queue: &mut ExportQueue,
    job: &str,
    project: &str,
    status: &str,
    message: &str,
) -> Result<(), QueueError> {
    let wrap = queue.store.err();
    let mut tx = queue.store.audited()?;
    let updated = tx
        .execute(
            "UPDATE jobs SET status = ?3, finished_at = ?2 WHERE id = ?1 AND status = 'running'",
            crate::params![job, now(), status],
        )
        .map_err(&wrap)?;
    if updated == 0 {
        // Recovery in another process already ended it.
        return Ok(());
    }
    let event = Event {
        actor: "system",
        action: Action::JobFinished,
        project: Some(project),
        subject: Some(format!("job:{job}")),
        detail: serde_json::json!({ "status": status, "error": message }),
    };
    tx.record(event, Utc::now())?;
    tx.commit()?;
    Ok(())
}

/// The cells of a project's other outputs, from the differencing index.
struct ProjectCells<'a> {
    conn: &'a Connection,
    project: &'a str,
    except: i64,
}

impl CellIndex for ProjectCells<'_> {
    fn near(&self, space: &str, sizes: RangeInclusive<u64>, each: &mut dyn FnMut(IndexedCell)) -> Result<(), String> {
        let bound = |size: u64| i64::try_from(size).unwrap_or(i64::MAX);
        let rows = self
            .conn
            .query(
                "SELECT c.request, r.file, c.label, c.bitmap FROM unit_cells c JOIN requests r ON r.id = c.request
                 WHERE c.project = ?1 AND c.space = ?2 AND c.units BETWEEN ?3 AND ?4 AND c.request != ?5
                   AND r.status != 'rejected'",
                crate::params![self.project, space, bound(*sizes.start()), bound(*sizes.end()), self.except],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get::<Vec<u8>>(3)?)),
            )
            .map_err(|e| e.to_string())?;
        for (request, file, label, bitmap) in rows {
            let units = RoaringBitmap::deserialize_from(bitmap.as_slice()).map_err(|e| e.to_string())?;
            each(IndexedCell { request, file, label, units });
        }
        Ok(())
    }
}

/// The block of units stored with `request`, or why there is none to use; `None` when its
/// manifest entry names none.
fn stored_units(queue: &ExportQueue, request: &ExportRequest) -> Result<Option<Result<Vec<u8>, String>>, QueueError> {
    if request.manifest.as_ref().is_none_or(|e| e.units.is_none()) {
        return Ok(None);
    }
    let (block, problem): (Option<Vec<u8>>, Option<String>) = queue
        .store
        .conn()
        .query_opt("SELECT units, units_problem FROM requests WHERE id = ?1", crate::params![request.id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(queue.store.err())?
        .unwrap_or_default();
    Ok(Some(block.ok_or_else(|| problem.unwrap_or_else(|| "the units were not stored".into()))))
}

/// The mounts of the job behind `request`, as the checks read them.
fn mounted_data(queue: &ExportQueue, request: &ExportRequest) -> MountedData {
    MountedData::new(
        request
            .datasets
            .iter()
            .map(|d| Mount {
                name: d.mount.clone(),
                columns: d.projection.columns.clone(),
                rows: d.projection.rows,
                unit_space: format!(
                    "{}:{}",
                    d.projection.dataset_sha256,
                    d.projection.filter.as_ref().map(|f| f.to_string()).unwrap_or_default()
                ),
                path: queue.catalog.projection_dir(&d.projection).join("data.arrow"),
            })
            .collect(),
    )
}

/// The automatic checks on `request`.
fn report(queue: &ExportQueue, request: &ExportRequest) -> Result<disclosure::Checked, QueueError> {
    let structured = request.manifest.as_ref().is_some_and(|e| e.kind != OutputKind::File);
    let bytes = if structured {
        match super::review::verified_content(queue, request) {
            Ok(bytes) => bytes,
            Err(err) => {
                let report = disclosure::unreadable(&request.file, &err.to_string(), &request.thresholds);
                return Ok(disclosure::Checked::unjudged(report));
            }
        }
    } else {
        Vec::new()
    };
    let units = stored_units(queue, request)?;
    let data = mounted_data(queue, request);
    let index = ProjectCells { conn: queue.store.conn(), project: &request.project, except: request.id };
    let subject = Subject {
        file: &request.file,
        bytes: &bytes,
        entry: request.manifest.as_ref(),
        manifest_problem: request.manifest_problem.as_deref(),
        units: units.as_ref().map(|u| u.as_deref().map_err(String::as_str)),
        data: &data,
        index: &index,
    };
    Ok(disclosure::check(&subject, &request.thresholds))
}

/// Adds `cells` of request `id` to the differencing index, inside `tx`.
fn index_cells(tx: &Connection, id: i64, project: &str, cells: &PublishedCells) -> Result<(), SqlError> {
    let mut bitmap = Vec::new();
    for (label, units) in &cells.cells {
        bitmap.clear();
        units.serialize_into(&mut bitmap).map_err(|e| DecodeError { column: 5, message: e.to_string() })?;
        tx.execute(
            "INSERT INTO unit_cells (request, project, space, label, units, bitmap) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            crate::params![id, project, cells.unit_space, label, units.len() as i64, bitmap],
        )?;
    }
    Ok(())
}

/// Records, inside `tx`, that cells of request `later` differ by a few units from cells of
/// earlier requests, so that those requests' checkers see the pair too.
fn record_overlaps(tx: &Connection, later: i64, overlaps: &[Overlap]) -> Result<(), SqlError> {
    for o in overlaps {
        let units = i64::try_from(o.units).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO differencing_pairs (earlier, earlier_cell, later, later_cell, units)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            crate::params![o.earlier, o.earlier_cell, later, o.cell, units],
        )?;
    }
    Ok(())
}

/// Runs the automatic checks on each pending request among `ids` and moves it to `checked`.
/// A request that cannot be loaded or judged (a row that no longer parses, a file that cannot
/// be read) is checked as failing `check_error` with the reason, so that no single request can
/// keep the others, or the queue's opening, from going on.
pub(super) fn check_pending(queue: &mut ExportQueue, ids: &[i64]) -> Result<(), QueueError> {
    for &id in ids {
        let judged = queue.get(id).and_then(|request| {
            let checked = if request.status == Status::Pending { Some(report(queue, &request)?) } else { None };
            Ok((request.project, checked))
        });
        let (project, report, cells, overlaps) = match judged {
            Ok((_, None)) => continue,
            Ok((project, Some(checked))) => (project, checked.report, checked.cells, checked.overlaps),
            Err(err) => {
                let project: String = queue
                    .store
                    .conn()
                    .query_row("SELECT project FROM requests WHERE id = ?1", crate::params![id], |r| r.get(0))
                    .map_err(queue.store.err())?;
                let thresholds = crate::disclosure::Thresholds::default();
                let report = disclosure::check_error(&format!("request {id}"), &err.to_string(), &thresholds);
                (project, report, None, Vec::new())
            }
        };
        let report_json = serde_json::to_string(&report).map_err(|e| queue.store.corrupt("report", e))?;
        let wrap = queue.store.err();
        let mut tx = queue.store.audited()?;
        let updated = tx
            .execute(
                "UPDATE requests SET checks = ?2, outcome = ?3, status = 'checked', updated_at = ?4
                 WHERE id = ?1 AND status = 'pending'",
                crate::params![id, report_json, report.outcome.to_string(), now()],
            )
            .map_err(&wrap)?;
        if updated == 0 {
            continue;
        }
        if let Some(cells) = &cells {
            index_cells(&tx, id, &project, cells).map_err(&wrap)?;
        }
        record_overlaps(&tx, id, &overlaps).map_err(&wrap)?;
        let outcomes: serde_json::Map<String, serde_json::Value> =
            report.results.iter().map(|r| (r.check.as_str().to_string(), r.outcome.to_string().into())).collect();
        let mut detail = serde_json::json!({ "outcome": report.outcome.to_string(), "checks": outcomes });
        if !overlaps.is_empty() {
            let mut earlier: Vec<i64> = overlaps.iter().map(|o| o.earlier).collect();
            earlier.sort_unstable();
            earlier.dedup();
            detail["differs_from_requests"] = earlier.into();
        }
        let event = Event {
            actor: "system",
            action: Action::RequestChecked,
            project: Some(&project),
            subject: Some(format!("request:{id}")),
            detail,
        };
        tx.record(event, Utc::now())?;
        tx.commit()?;
    }
    Ok(())
}
