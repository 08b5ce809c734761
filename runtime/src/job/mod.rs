//! A job: one researcher's run of one module under one project policy, from authorisation to
//! a durable record.

mod exports;
mod record;

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use sha2::Digest;

use crate::catalog::{Catalog, CatalogError};
use crate::home::{Home, HomeError, JobLock};
use crate::interpreters::{InstallError, Installed};
use crate::policy::{Policy, Role};
use crate::sandbox::{DataMount, GuestModule, Sandbox, SandboxError, Script};

pub(crate) use exports::sha256_file;
pub use exports::{CapturedExport, DiscardedExport};
pub use record::{JobRecord, MountedDataset, ScriptRecord};

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
    /// A kept module's or script's bytes no longer hash to the SHA-256 it was kept under.
    #[error("the module or script kept as {expected} now has SHA-256 {found}; refusing to run it")]
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
    /// The project's policy does not let its researchers use the script's runtime.
    #[error("project {project:?} does not allow {runtime} scripts (its policy's project.runtimes does not list it)")]
    RuntimeNotAllowed {
        /// The project.
        project: String,
        /// The runtime the script needs.
        runtime: String,
    },
    /// The script's runtime is not installed on this host.
    #[error(
        "the {runtime} runtime is not installed on this host; an operator installs it with `ringfence runtime install {runtime}`"
    )]
    RuntimeNotInstalled {
        /// The runtime.
        runtime: String,
    },
    /// An installed runtime could not be read.
    #[error(transparent)]
    Runtime(#[from] InstallError),
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
                | JobError::RuntimeNotAllowed { .. }
                | JobError::RuntimeNotInstalled { .. }
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
    /// A script for an installed interpreter runtime: the job's module is the interpreter.
    Script(ScriptSource<'a>),
}

/// A submitted script and the runtime it is for.
#[derive(Debug, Clone, Copy)]
pub struct ScriptSource<'a> {
    /// The runtime's name (`python`), which the project's policy must list.
    pub runtime: &'a str,
    /// The script's bytes.
    pub text: &'a [u8],
}

/// Where a script job's script is, read-only, as [`SCRIPT_NAME`] (the researcher's own file
/// name is theirs, not the host's to use as a path); `start.py` runs `/job/analysis.py`.
const SCRIPT_DIR: &str = "/job";

/// The script's name in [`SCRIPT_DIR`].
const SCRIPT_NAME: &str = "analysis.py";

/// Where the Python SDK is, read-only: `ringfence.py`, and `start.py`, which puts the SDK on
/// the interpreter's path (it runs isolated: its path is its library alone) and runs the
/// script as `__main__` with the job's arguments.
const SDK_DIR: &str = "/sdk";

/// The file the interpreter runs: the SDK's `start.py`.
const SDK_START: &str = "/sdk/start.py";

/// Where an interpreter's library is, read-only.
const LIB_DIR: &str = "/usr/local/lib";

/// The files of the Python SDK directory.
const PYTHON_SDK: [(&str, &str); 2] = [
    ("ringfence.py", include_str!("../../../guest-sdk/python/ringfence.py")),
    ("start.py", include_str!("../../../guest-sdk/python/start.py")),
];

/// The module `source` names, loaded into `sandbox`; a submission is also kept in `home`. A
/// script's module is its runtime's interpreter.
pub fn load_module(home: &Home, sandbox: &Sandbox, source: ModuleSource<'_>) -> Result<GuestModule, JobError> {
    match source {
        ModuleSource::Script(script) => {
            let installed = installed(home, script.runtime)?;
            Ok(sandbox.load_interpreter(&installed.interpreter_sha256, &installed.interpreter())?)
        }
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

/// The installation of `runtime`, or why there is none.
fn installed(home: &Home, runtime: &str) -> Result<Installed, JobError> {
    Installed::find(home, runtime)?.ok_or_else(|| JobError::RuntimeNotInstalled { runtime: runtime.to_string() })
}

/// Checks that the request's user may submit jobs to its policy's project on `today`, and
/// that a script's runtime is one the project allows.
pub fn authorize(request: &JobRequest<'_>, today: NaiveDate) -> Result<(), JobError> {
    let (policy, user) = (request.policy, request.user);
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
    if let ModuleSource::Script(script) = request.module
        && !policy.project.allows_runtime(script.runtime)
    {
        return Err(JobError::RuntimeNotAllowed { project, runtime: script.runtime.to_string() });
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
    script: Option<PreparedScript>,
    mounts: Vec<DataMount>,
    datasets: Vec<MountedDataset>,
    work: PathBuf,
    lock: JobLock,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("id", &self.id).field("module", &self.module.sha256).finish_non_exhaustive()
    }
}

/// A script job's files: the runtime it runs under, and each read-only directory the guest
/// sees with its guest path.
struct PreparedScript {
    record: ScriptRecord,
    read_only: Vec<(PathBuf, &'static str)>,
    scratch: PathBuf,
}

impl Prepared {
    /// SHA-256 of the job's module (a script job's interpreter).
    pub fn module_sha256(&self) -> &str {
        &self.module.sha256
    }

    /// A script job's script and runtime.
    pub fn script(&self) -> Option<&ScriptRecord> {
        self.script.as_ref().map(|s| &s.record)
    }

    /// The job's lock, held while this exists.
    pub fn lock(&self) -> &JobLock {
        &self.lock
    }
}

/// A script accepted for its installed runtime and kept in the state directory.
pub struct KeptScript {
    /// The script and the runtime it runs under.
    pub record: ScriptRecord,
    /// The runtime's installation.
    pub installed: Installed,
}

/// Checks that `script`'s runtime is installed and keeps the script in `home` under its
/// SHA-256 (once), for a job that runs it now or later.
pub fn keep_script(home: &Home, script: ScriptSource<'_>) -> Result<KeptScript, JobError> {
    let installed = installed(home, script.runtime)?;
    let sha256 = hex::encode(sha2::Sha256::digest(script.text));
    home.keep_script(&sha256, script.text)?;
    let record = ScriptRecord {
        runtime: installed.name.clone(),
        runtime_version: installed.version.clone(),
        library_sha256: installed.library_sha256.clone(),
        sha256,
    };
    Ok(KeptScript { record, installed })
}

/// The script kept as `sha256` (a queued job's), checked against its hash.
pub fn kept_script(home: &Home, sha256: &str) -> Result<Vec<u8>, JobError> {
    let text = home.read_script(sha256)?;
    let found = hex::encode(sha2::Sha256::digest(&text));
    if found != sha256 {
        return Err(JobError::ModuleChanged { expected: sha256.to_string(), found });
    }
    Ok(text)
}

/// Writes `script` into `work/job/` and the SDK into `work/sdk/` (the guest's `/job` and
/// `/sdk`, read-only), makes its empty scratch directory `work/tmp/`, keeps the script in
/// `home`, and says what it will run under.
fn prepare_script(home: &Home, work: &Path, script: ScriptSource<'_>) -> Result<PreparedScript, JobError> {
    let KeptScript { record, installed } = keep_script(home, script)?;
    let (job_dir, sdk_dir) = (work.join("job"), work.join("sdk"));
    let files = std::iter::once((&job_dir, SCRIPT_NAME, script.text))
        .chain(PYTHON_SDK.iter().map(|(name, text)| (&sdk_dir, *name, text.as_bytes())));
    for (dir, name, bytes) in files {
        std::fs::create_dir_all(dir).map_err(HomeError::io("create", dir))?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(HomeError::io("write", &path))?;
    }
    let scratch = work.join("tmp");
    std::fs::create_dir_all(&scratch).map_err(HomeError::io("create", &scratch))?;
    let mut read_only = vec![(installed.lib_dir(), LIB_DIR)];
    read_only.extend(installed.data_dir());
    read_only.extend([(job_dir, SCRIPT_DIR), (sdk_dir, SDK_DIR)]);
    Ok(PreparedScript { record, read_only, scratch })
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
    authorize(request, today)?;
    let module = load_module(home, sandbox, request.module)?;
    let (mounts, datasets) = mount_datasets(catalog, request.policy)?;
    let id = lock.id().to_string();
    let work = home.work_dir().join(&id);
    let export_dir = work.join("export");
    std::fs::create_dir_all(&export_dir).map_err(HomeError::io("create", &export_dir))?;
    let script = match request.module {
        ModuleSource::Script(script) => Some(prepare_script(home, &work, script)?),
        ModuleSource::Submitted(_) | ModuleSource::Kept(_) => None,
    };
    Ok(Prepared { id, module, script, mounts, datasets, work, lock })
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
    let limits = &request.policy.limits;
    let outcome = match &job.script {
        None => sandbox.run(&job.module, limits, &job.mounts, request.args, &export_dir)?,
        Some(script) => {
            let read_only: Vec<(&Path, &str)> = script.read_only.iter().map(|(dir, at)| (dir.as_path(), *at)).collect();
            let program = Script {
                interpreter: &job.module,
                read_only: &read_only,
                program: SDK_START,
                scratch: &script.scratch,
            };
            sandbox.run_script(&program, limits, &job.mounts, request.args, &export_dir)?
        }
    };
    let finished_at = Utc::now();
    let datasets = job.datasets.clone();
    let mut record = JobRecord::new(&job.id, request, &job.module, datasets, &outcome, started_at, finished_at);
    record.script = job.script().cloned();
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
