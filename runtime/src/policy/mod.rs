//! Project policies: what one project may do, as a validated, typed value.
//!
//! A policy is one TOML file per project (see `policies/README.md` for every key). It is parsed
//! with unknown keys refused ([`raw`]), then validated against the calendar, the file system and
//! the operator's caps ([`caps`]) into a [`Policy`]. Every error names the file, the key and the
//! reason ([`PolicyError`]).

mod caps;
mod error;
mod raw;
mod registry;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use serde::Serialize;

pub use caps::OperatorCaps;
pub use registry::{DatasetUse, Registry};

use crate::catalog::{Catalog, RowFilter};
use crate::disclosure::Thresholds;
pub use error::{PolicyError, PolicyErrorKind};

/// A validated project policy: every capability a job of this project may have, and no other.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file the policy was read from.
    pub source: PathBuf,
    /// SHA-256 of the policy file's bytes, recorded with every job so a job's record says
    /// exactly which rules it ran under.
    pub sha256: String,
    /// Who the project is and why it exists.
    pub project: Project,
    /// The people who may act on this project, with their roles.
    pub members: Vec<Member>,
    /// The datasets the project's jobs see, each under `/data/<mount>/`.
    pub datasets: Vec<DatasetGrant>,
    /// Resource limits for each job of the project.
    pub limits: Limits,
    /// How the project's outputs are checked before release.
    pub disclosure: Disclosure,
}

/// The project's disclosure-control rules: the thresholds of the automated checks and how many
/// checkers must approve each output.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Disclosure {
    /// Thresholds of the automated checks (`[disclosure]`; docs/design.md §5 defaults).
    pub thresholds: Thresholds,
    /// Different checkers who must approve an output before release (2 gives four eyes).
    pub reviews_required: u32,
    /// Whether researchers see the names of the checks an output did not pass before it is
    /// released (up to one bit per check and output that a guest can steer; SECURITY.md).
    #[serde(default = "shown")]
    pub show_check_names: bool,
}

/// The default of [`Disclosure::show_check_names`], also for rules stored before it existed.
fn shown() -> bool {
    true
}

/// The project's identity and declared purpose (rule 1: no use beyond the approved purpose).
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// Short stable identifier, e.g. `demo-2026-001`.
    pub id: String,
    /// Human-readable title.
    pub title: String,
    /// The approved research purpose.
    pub purpose: String,
    /// Last day on which the project may run jobs.
    pub expires: NaiveDate,
    /// The installed interpreter runtimes its researchers may submit scripts for (`python`);
    /// none unless listed: a project that does not list one runs WebAssembly modules only.
    pub runtimes: Vec<String>,
}

impl Project {
    /// Whether the project's researchers may submit scripts for the runtime `name`.
    pub fn allows_runtime(&self, name: &str) -> bool {
        self.runtimes.iter().any(|r| r == name)
    }
}

/// A role a member holds in a project (docs/design.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits jobs and describes their outputs; never sees data or raw output.
    Researcher,
    /// Reviews export requests for disclosure risk.
    Checker,
    /// Manages policies, datasets and tokens.
    Operator,
}

impl Role {
    /// Whether the role may read export requests in full (findings, cells, counts): checkers
    /// and operators. Researchers see only each check's outcome and suggestion.
    pub fn sees_findings(self) -> bool {
        matches!(self, Role::Checker | Role::Operator)
    }
}

/// One person's membership of the project.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The user name, as used with `--user` and in tokens.
    pub user: String,
    /// The roles this user holds in this project.
    pub roles: Vec<Role>,
}

/// A dataset the project may read — one pinned version, only some columns, maybe only some
/// rows — and where the guest sees it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DatasetGrant {
    /// Name of the directory under `/data/` in the guest.
    pub mount: String,
    /// The catalog dataset.
    pub dataset: String,
    /// The pinned version.
    pub version: u32,
    /// The pinned version's SHA-256.
    pub sha256: String,
    /// The approved variables, in the order the guest sees them.
    pub columns: Vec<String>,
    /// The approved rows, when not all.
    pub filter: Option<RowFilter>,
    /// Whether the guest also gets the data as `data.csv`, for languages without Arrow.
    pub csv: bool,
}

/// Hard limits the host enforces on each job.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Largest linear memory the guest may have, in bytes.
    pub memory_bytes: u64,
    /// CPU time the guest may use.
    pub cpu: Duration,
    /// Wall-clock time the job may take.
    pub wall: Duration,
    /// Total bytes the guest may write under `/export/`.
    pub export_max_bytes: u64,
    /// Number of files (and directories) the guest may create under `/export/`.
    pub export_max_files: u64,
    /// Bytes of stdout, and separately of stderr, kept in the job record; the rest is counted
    /// and dropped.
    pub output_max_bytes: u64,
    /// Running jobs one user may have at once for this project (rule 10).
    pub max_concurrent_jobs_per_user: u32,
    /// Jobs one user may submit to this project in any 24 hours: with the bits one job can
    /// signal before review, the bound on what a hostile analysis signals in a day.
    pub max_jobs_per_day: u32,
    /// Modules one user may upload for this project in any 24 hours, loaded or refused: each
    /// costs the host a validation and a compilation.
    pub max_uploads_per_day: u32,
    /// Bytes of modules one user may upload for this project in any 24 hours: what they can
    /// make the host keep in its module store.
    pub max_upload_bytes_per_day: u64,
    /// Granularity of the clocks the guest can read.
    pub clock_resolution: Duration,
    /// Whether a job whose worker died before it ended is queued once more (once), rather
    /// than ended as `interrupted` at once.
    pub retry_interrupted: bool,
}

impl Policy {
    /// Reads, parses and validates the policy at `path` as of `today`, against the operator's
    /// `caps` and the datasets in `catalog`.
    pub fn load(path: &Path, caps: &OperatorCaps, catalog: &Catalog, today: NaiveDate) -> Result<Policy, PolicyError> {
        let (raw, sha256) = raw::read(path)?;
        validate::validate(raw, path, sha256, caps, catalog, today)
    }

    /// The member entry for `user`, if the user belongs to the project.
    pub fn member(&self, user: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user == user)
    }

    /// Whether `user` holds `role` in this project.
    pub fn has_role(&self, user: &str, role: Role) -> bool {
        self.member(user).is_some_and(|m| m.roles.contains(&role))
    }

    /// Whether the project is past its expiry date on `today`.
    pub fn is_expired(&self, today: NaiveDate) -> bool {
        today > self.project.expires
    }
}
