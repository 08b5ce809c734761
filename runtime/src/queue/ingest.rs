//! From a finished job to checked export requests: store the files, create the requests (one
//! transaction with the job's end and every audit entry), then run the checks on each.

use chrono::Utc;
use ringfence_sdk::manifest::{MANIFEST_FILE, MANIFEST_VERSION, Manifest, OutputEntry, OutputKind};

use super::request::ExportRequest;
use super::{ExportQueue, QueueError, Status, now};
use crate::audit::{self, Action, Event};
use crate::disclosure::recount::MountedData;
use crate::disclosure::{self, Released, Subject};
use crate::job::JobRecord;
use crate::policy::Disclosure;

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
    if manifest.version != MANIFEST_VERSION {
        return Err(format!(
            "{MANIFEST_FILE} has version {}; this host reads version {MANIFEST_VERSION}",
            manifest.version
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

/// Stores the job's exported files and, in one transaction, records the job's end and creates
/// a pending request for each file. Returns the new requests' numbers.
pub(super) fn ingest(queue: &mut ExportQueue, record: &JobRecord, rules: &Disclosure) -> Result<Vec<i64>, QueueError> {
    let exports_dir = queue.home.job_dir(&record.id).join("exports");
    let outputs: Vec<_> = record.exports.iter().filter(|e| e.name != MANIFEST_FILE).collect();
    for export in &outputs {
        queue.blobs.put(&export.sha256, &exports_dir.join(&export.name))?;
    }
    let (entries, problem) = match manifest(queue, record) {
        Ok(entries) => (entries, None),
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let datasets = serde_json::to_string(&record.datasets).map_err(|e| queue.store.corrupt("job record", e))?;
    let thresholds = serde_json::to_string(&rules.thresholds).map_err(|e| queue.store.corrupt("thresholds", e))?;
    let wrap = queue.store.err();
    let tx = queue.store.write()?;
    let at = now();
    let updated = tx
        .execute(
            "UPDATE jobs SET status = ?2, finished_at = ?3 WHERE id = ?1 AND status = 'running'",
            (&record.id, record.status.to_string(), &at),
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
    audit::append(&tx, finished, Utc::now()).map_err(&wrap)?;
    let mut ids = Vec::new();
    for export in outputs {
        let entry = entries.iter().find(|e| e.file == export.name);
        let manifest_json =
            entry.map(serde_json::to_string).transpose().map_err(|e| queue.store.corrupt("manifest", e))?;
        let kind = entry.map_or(OutputKind::File, |e| e.kind).as_str();
        let guest_description = entry.map(|e| e.description.clone()).unwrap_or_default();
        tx.execute(
            "INSERT INTO requests (project, job, submitted_by, module_sha256, policy_sha256, datasets, file, size,
                 sha256, kind, manifest, manifest_problem, thresholds, reviews_required, guest_description,
                 show_check_names, description, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, '', 'pending', ?17, ?17)",
            rusqlite::params![
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
                at
            ],
        )
        .map_err(&wrap)?;
        let id = tx.last_insert_rowid();
        let created = Event {
            actor: &record.user,
            action: Action::RequestCreated,
            project: Some(&record.project),
            subject: Some(format!("request:{id}")),
            detail: serde_json::json!({
                "job": record.id, "file": export.name, "size": export.size, "sha256": export.sha256, "kind": kind,
            }),
        };
        audit::append(&tx, created, Utc::now()).map_err(&wrap)?;
        ids.push(id);
    }
    tx.commit().map_err(&wrap)?;
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
    let tx = queue.store.write()?;
    tx.execute("UPDATE jobs SET status = ?3, finished_at = ?2 WHERE id = ?1", (job, now(), status)).map_err(&wrap)?;
    let event = Event {
        actor: "system",
        action: Action::JobFinished,
        project: Some(project),
        subject: Some(format!("job:{job}")),
        detail: serde_json::json!({ "status": status, "error": message }),
    };
    audit::append(&tx, event, Utc::now()).map_err(&wrap)?;
    tx.commit().map_err(&wrap)?;
    Ok(())
}

/// Released outputs of `project` with a manifest entry, for the differencing check.
fn released(queue: &ExportQueue, project: &str, except: i64) -> Result<Vec<Released>, QueueError> {
    Ok(queue
        .list(Some(project), Some(Status::Released))?
        .into_iter()
        .filter(|r| r.id != except)
        .filter_map(|r| Some(Released { request: r.id, file: r.file, entry: r.manifest? }))
        .collect())
}

/// The report of the automatic checks on `request`.
fn report(queue: &ExportQueue, request: &ExportRequest) -> Result<disclosure::Report, QueueError> {
    let structured = request.manifest.as_ref().is_some_and(|e| e.kind != ringfence_sdk::manifest::OutputKind::File);
    let bytes = if structured {
        match super::review::verified_content(queue, request) {
            Ok(bytes) => bytes,
            Err(err) => return Ok(disclosure::unreadable(&request.file, &err.to_string(), &request.thresholds)),
        }
    } else {
        Vec::new()
    };
    let data = MountedData::new(
        request
            .datasets
            .iter()
            .map(|d| (d.projection.columns.clone(), queue.catalog.projection_dir(&d.projection).join("data.arrow")))
            .collect(),
    );
    let released = released(queue, &request.project, request.id)?;
    let subject = Subject {
        file: &request.file,
        bytes: &bytes,
        entry: request.manifest.as_ref(),
        manifest_problem: request.manifest_problem.as_deref(),
        recount: &data,
        released: &released,
    };
    Ok(disclosure::check(&subject, &request.thresholds))
}

/// Runs the automatic checks on each pending request among `ids` and moves it to `checked`.
/// A request that cannot be loaded or judged (a row that no longer parses, a file that cannot
/// be read) is checked as failing `check_error` with the reason, so that no single request can
/// keep the others, or the queue's opening, from going on.
pub(super) fn check_pending(queue: &mut ExportQueue, ids: &[i64]) -> Result<(), QueueError> {
    for &id in ids {
        let judged = queue.get(id).and_then(|request| {
            let report = if request.status == Status::Pending { Some(report(queue, &request)?) } else { None };
            Ok((request.project, report))
        });
        let (project, report) = match judged {
            Ok((_, None)) => continue,
            Ok((project, Some(report))) => (project, report),
            Err(err) => {
                let project: String = queue
                    .store
                    .conn()
                    .query_row("SELECT project FROM requests WHERE id = ?1", [id], |r| r.get(0))
                    .map_err(queue.store.err())?;
                let thresholds = crate::disclosure::Thresholds::default();
                (project, disclosure::check_error(&format!("request {id}"), &err.to_string(), &thresholds))
            }
        };
        let report_json = serde_json::to_string(&report).map_err(|e| queue.store.corrupt("report", e))?;
        let wrap = queue.store.err();
        let tx = queue.store.write()?;
        let updated = tx
            .execute(
                "UPDATE requests SET checks = ?2, outcome = ?3, status = 'checked', updated_at = ?4
                 WHERE id = ?1 AND status = 'pending'",
                (id, &report_json, report.outcome.to_string(), now()),
            )
            .map_err(&wrap)?;
        if updated == 0 {
            continue;
        }
        let outcomes: serde_json::Map<String, serde_json::Value> =
            report.results.iter().map(|r| (r.check.as_str().to_string(), r.outcome.to_string().into())).collect();
        let event = Event {
            actor: "system",
            action: Action::RequestChecked,
            project: Some(&project),
            subject: Some(format!("request:{id}")),
            detail: serde_json::json!({ "outcome": report.outcome.to_string(), "checks": outcomes }),
        };
        audit::append(&tx, event, Utc::now()).map_err(&wrap)?;
        tx.commit().map_err(&wrap)?;
    }
    Ok(())
}
