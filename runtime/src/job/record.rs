//! The job record: what ran, on what, under which rules, and how it ended.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::JobRequest;
use super::exports::{self, CapturedExport, DiscardedExport};
use crate::catalog::Projection;
use crate::home::{Home, HomeError, write_atomically};
use crate::sandbox::{CacheOutcome, GuestModule, JobOutcome, JobStatus, OutputSummary};

/// The durable record of one job, kept as `job.json` in the job's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id (a UUIDv7: sorts by start time).
    pub id: String,
    /// The project the job ran for.
    pub project: String,
    /// The researcher who submitted it.
    pub user: String,
    /// SHA-256 of the submitted module; for a script job, of the interpreter that ran it.
    pub module_sha256: String,
    /// A script job's script and runtime; `None` for a module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<ScriptRecord>,
    /// Whether the compiled module came from the cache.
    pub module_cache: CacheOutcome,
    /// Time to compile or load the module, in milliseconds.
    pub module_load_ms: f64,
    /// The policy file the job ran under.
    pub policy_file: PathBuf,
    /// SHA-256 of that policy file.
    pub policy_sha256: String,
    /// Arguments given to the guest.
    pub args: Vec<String>,
    /// The data the guest saw, exactly.
    pub datasets: Vec<MountedDataset>,
    /// When the guest started.
    pub started_at: DateTime<Utc>,
    /// When the guest ended.
    pub finished_at: DateTime<Utc>,
    /// How the guest ended.
    pub status: JobStatus,
    /// wasmtime's account of a trap, for checkers and operators.
    pub detail: Option<String>,
    /// Wall-clock time of the guest's run, in milliseconds.
    pub duration_ms: f64,
    /// CPU time of the guest's run, in milliseconds.
    pub cpu_ms: f64,
    /// Largest linear memory the guest had, in bytes.
    pub peak_memory_bytes: u64,
    /// Sizes of the captured stdout.
    pub stdout: OutputSummary,
    /// Sizes of the captured stderr.
    pub stderr: OutputSummary,
    /// Files the guest exported, now in the record's `exports/` directory.
    pub exports: Vec<CapturedExport>,
    /// Entries under `/export/` that were not kept.
    pub discarded: Vec<DiscardedExport>,
}

impl JobRecord {
    pub(super) fn new(
        id: &str,
        request: &JobRequest<'_>,
        module: &GuestModule,
        datasets: Vec<MountedDataset>,
        outcome: &JobOutcome,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> JobRecord {
        let policy = request.policy;
        JobRecord {
            id: id.to_string(),
            project: policy.project.id.clone(),
            user: request.user.to_string(),
            module_sha256: module.sha256.clone(),
            script: None,
            module_cache: module.cache,
            module_load_ms: module.load_time.as_secs_f64() * 1e3,
            policy_file: policy.source.clone(),
            policy_sha256: policy.sha256.clone(),
            args: request.args.to_vec(),
            datasets,
            started_at,
            finished_at,
            status: outcome.status.clone(),
            detail: outcome.detail.clone(),
            duration_ms: outcome.duration.as_secs_f64() * 1e3,
            cpu_ms: outcome.cpu_time.as_secs_f64() * 1e3,
            peak_memory_bytes: outcome.peak_memory_bytes,
            stdout: outcome.stdout.summary(),
            stderr: outcome.stderr.summary(),
            exports: Vec::new(),
            discarded: Vec::new(),
        }
    }

    /// Reads the record of job `id` from `home`.
    pub fn load(home: &Home, id: &str) -> Result<JobRecord, HomeError> {
        let path = home.job_dir(id).join("job.json");
        let text = std::fs::read(&path).map_err(HomeError::io("read", &path))?;
        serde_json::from_slice(&text).map_err(|e| HomeError {
            action: "parse",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }
}

/// What a script job ran: the script, and the runtime it ran under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRecord {
    /// SHA-256 of the script.
    pub sha256: String,
    /// The runtime's name.
    pub runtime: String,
    /// The runtime's version.
    pub runtime_version: String,
    /// SHA-256 of the runtime's library (the interpreter's is the record's `module_sha256`).
    pub library_sha256: String,
}

/// One dataset as the guest saw it: where, and exactly which projection (version, columns,
/// rows, bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountedDataset {
    /// Directory name under `/data/`.
    pub mount: String,
    /// The projection mounted there.
    #[serde(flatten)]
    pub projection: Projection,
}

/// Assembles the job's directory next to its final place — exports, captured streams, record —
/// and renames it into place, so a crash leaves either no record or a complete one.
pub(super) fn persist(
    home: &Home,
    mut record: JobRecord,
    outcome: &JobOutcome,
    export_dir: &Path,
) -> Result<JobRecord, HomeError> {
    let staging = home.jobs_dir().join(format!(".{}.partial", record.id));
    let exports_dir = staging.join("exports");
    std::fs::create_dir_all(&exports_dir).map_err(HomeError::io("create", &exports_dir))?;
    if record.status == JobStatus::ExportLimit {
        record.discarded = vec![DiscardedExport {
            name: "*".into(),
            reason: "the job went over its export limit; none of its exports are kept".into(),
        }];
    } else {
        (record.exports, record.discarded) = exports::capture(export_dir, &exports_dir)?;
    }
    write_atomically(&staging.join("stdout"), outcome.stdout.bytes())?;
    write_atomically(&staging.join("stderr"), outcome.stderr.bytes())?;
    let json = serde_json::to_vec_pretty(&record).map_err(|e| HomeError {
        action: "encode",
        path: staging.join("job.json"),
        source: std::io::Error::other(e),
    })?;
    write_atomically(&staging.join("job.json"), &json)?;
    let final_dir = home.job_dir(&record.id);
    std::fs::rename(&staging, &final_dir).map_err(HomeError::io("move into place", &final_dir))?;
    Ok(record)
}
