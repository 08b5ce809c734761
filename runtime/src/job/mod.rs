//! A job: one researcher's run of one module under one project policy, from authorisation to
//! a durable record.

mod exports;
mod record;

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};

use crate::catalog::{Catalog, CatalogError};
use crate::home::{Home, HomeError, JobLock};
use crate::policy::{Policy, Role};
use crate::sandbox::{DataMount, GuestModule, Sandbox, SandboxError};

pub(crate) use exports::sha256_file;
pub use exports::{CapturedExport, DiscardedExport};
pub use record::{JobRecord, MountedDataset};

/// Why a job was not run or not recorded.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The user is not a member of the project.
    #[error("user {user:?} is not a member of project {project:?}")]
    NotMember {
        /// The user who asked.
        user: String,
        /// The project.
        project: String,
    },
    /// The user is a member but not a researcher.
    #[error("user {user:?} is not a researcher in project {project:?} and cannot submit jobs")]
    NotResearcher {
        /// The user who asked.
        user: String,
        /// The project.
        project: String,
    },
    /// The project is past its expiry date.
    #[error("project {project:?} expired on {expires}; no more jobs can run")]
    Expired {
        /// The project.
        project: String,
        /// Its expiry date.
        expires: NaiveDate,
    },
    /// A kept module's bytes no longer hash to the SHA-256 it was kept under.
    #[error("the module kept as {expected} now has SHA-256 {found}; refusing to run it")]
    ModuleChanged {
        /// The SHA-256 the job was submitted with.
        expected: String,
        /// What the kept file hashes to now.
        found: String,
    },
    /// A granted dataset version no longer matches its pin, or its projection failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The catalog holds different bytes under a pinned version than the policy was checked
    /// against.
    #[error("dataset {dataset} version {version} has changed since the policy was checked; refusing to run")]
    DatasetChanged {
        /// The dataset.
        dataset: String,
        /// The version.
        version: u32,
    },
    /// The sandbox refused the module or could not run it.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The state directory could not be written.
    #[error(transparent)]
    Home(#[from] HomeError),
}

impl JobError {
    /// Whether the request itself was at fault (exit code 2), rather than the host.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            JobError::NotMember { .. }
                | JobError::NotResearcher { .. }
                | JobError::Expired { .. }
                | JobError::DatasetChanged { .. }
                | JobError::Sandbox(SandboxError::InvalidModule(_))
        )
    }
}

/// What a researcher submits.
#[derive(Debug, Clone)]
pub struct JobRequest<'a> {
    /// The project's policy.
    pub policy: &'a Policy,
    /// The submitting user.
    pub user: &'a str,
    /// The module.
    pub module: ModuleSource<'a>,
    /// Arguments passed to the guest after `argv[0]`.
    pub args: &'a [String],
}

/// Where a job's module comes from.
#[derive(Debug, Clone, Copy)]
pub enum ModuleSource<'a> {
    /// A submission's bytes: checked, hashed and kept in the state directory.
    Submitted(&'a [u8]),
    /// A module kept earlier (a queued job's), by its SHA-256. Taken from the modules the
    /// sandbox has loaded when it is one of them (no read, no second hash: it was checked when
    /// it was loaded), else read from the state directory and checked against the hash.
    Kept(&'a str),
}

/// The module `source` names, loaded into `sandbox`; a submission is also kept in `home`.
pub fn load_module(home: &Home, sandbox: &Sandbox, source: ModuleSource<'_>) -> Result<GuestModule, JobError> {
    match source {
        ModuleSource::Submitted(wasm) => {
            let module = sandbox.load_module(wasm)?;
            home.keep_module(&module.sha256, wasm)?;
            Ok(module)
        }
        ModuleSource::Kept(sha256) => {
            if let Some(module) = sandbox.loaded_module(sha256) {
                return Ok(module);
            }
            let wasm = home.read_module(sha256)?;
            let module = sandbox.load_module(&wasm)?;
            if module.sha256 != sha256 {
                return Err(JobError::ModuleChanged { expected: sha256.to_string(), found: module.sha256 });
            }
            Ok(module)
        }
    }
}

/// Checks that `user` may submit jobs to the policy's project on `today`.
pub fn authorize(policy: &Policy, user: &str, today: NaiveDate) -> Result<(), JobError> {
    let project = policy.project.id.clone();
    if policy.member(user).is_none() {
        return Err(JobError::NotMember { user: user.to_string(), project });
    }
    if !policy.has_role(user, Role::Researcher) {
        return Err(JobError::NotResearcher { user: user.to_string(), project });
    }
    if policy.is_expired(today) {
        return Err(JobError::Expired { project, expires: policy.project.expires });
    }
    Ok(())
}

/// Resolves each grant to its projection in the catalog: the directories the guest will see.
fn mount_datasets(catalog: &Catalog, policy: &Policy) -> Result<(Vec<DataMount>, Vec<MountedDataset>), JobError> {
    let mut mounts = Vec::new();
    let mut mounted = Vec::new();
    for grant in &policy.datasets {
        let version = catalog.get(&grant.dataset, grant.version)?;
        if version.sha256 != grant.sha256 {
            return Err(JobError::DatasetChanged { dataset: grant.dataset.clone(), version: grant.version });
        }
        let projection = catalog.project(&version, &grant.columns, grant.filter.as_ref(), grant.csv)?;
        mounts.push(DataMount { name: grant.mount.clone(), host_dir: projection.dir.clone() });
        mounted.push(MountedDataset { mount: grant.mount.clone(), projection });
    }
    Ok((mounts, mounted))
}

/// A job that is authorised and ready to start: its module is loaded, its data projected and
/// its scratch directory made. While a `Prepared` exists its lock file is held, which is how
/// recovery tells a running job from one whose process died.
pub struct Prepared {
    /// The job's id (a UUIDv7: sorts by start time).
    pub id: String,
    module: GuestModule,
    mounts: Vec<DataMount>,
    datasets: Vec<MountedDataset>,
    work: PathBuf,
    _lock: JobLock,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("id", &self.id).field("module", &self.module.sha256).finish_non_exhaustive()
    }
}

impl Prepared {
    /// SHA-256 of the job's module.
    pub fn module_sha256(&self) -> &str {
        &self.module.sha256
    }
}

/// A new job id: a UUIDv7, so ids sort by submission time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Authorises the request and gets everything ready for [`execute`], for the job whose lock
/// (from [`Home::job_lock`]) is `lock`.
pub fn prepare(
    home: &Home,
    catalog: &Catalog,
    sandbox: &Sandbox,
    request: &JobRequest<'_>,
    today: NaiveDate,
    lock: JobLock,
) -> Result<Prepared, JobError> {
    authorize(request.policy, request.user, today)?;
    let module = load_module(home, sandbox, request.module)?;
    let (mounts, datasets) = mount_datasets(catalog, request.policy)?;
    let id = lock.id().to_string();
    let work = home.work_dir().join(&id);
    let export_dir = work.join("export");
    std::fs::create_dir_all(&export_dir).map_err(HomeError::io("create", &export_dir))?;
    Ok(Prepared { id, module, mounts, datasets, work, _lock: lock })
}

/// Runs a prepared job and records it. Returns the record once it is durable in `home`; the job
/// counts as running until `job` is dropped.
pub fn execute(
    home: &Home,
    sandbox: &Sandbox,
    request: &JobRequest<'_>,
    job: &Prepared,
) -> Result<JobRecord, JobError> {
    let export_dir = job.work.join("export");
    let started_at = Utc::now();
    let outcome = sandbox.run(&job.module, &request.policy.limits, &job.mounts, request.args, &export_dir)?;
    let finished_at = Utc::now();
    let datasets = job.datasets.clone();
    let record = JobRecord::new(&job.id, request, &job.module, datasets, &outcome, started_at, finished_at);
    let record = record::persist(home, record, &outcome, &export_dir)?;
    std::fs::remove_dir_all(&job.work).map_err(HomeError::io("remove", &job.work))?;
    Ok(record)
}

/// Authorises, runs and records one job: [`prepare`] then [`execute`].
pub fn run(
    home: &Home,
    catalog: &Catalog,
    sandbox: &Sandbox,
    request: &JobRequest<'_>,
    today: NaiveDate,
) -> Result<JobRecord, JobError> {
    let job = prepare(home, catalog, sandbox, request, today, home.job_lock(&new_id())?)?;
    execute(home, sandbox, request, &job)
}
