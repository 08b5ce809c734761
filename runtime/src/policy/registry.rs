//! The registry of project policies an operator has registered with a state directory: which
//! projects exist, and which datasets they use.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::error::{PolicyError, PolicyErrorKind};
use super::{Member, Policy, Role, raw, validate};
use crate::catalog::DatasetVersion;

/// A registered project's grant of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetUse {
    /// The project.
    pub project: String,
    /// The project's expiry date.
    pub expires: Option<NaiveDate>,
    /// The dataset.
    pub dataset: String,
    /// The pinned version, if pinned by number.
    pub version: Option<u32>,
    /// The pinned SHA-256, if pinned by hash.
    pub sha256: Option<String>,
}

impl DatasetUse {
    /// Whether this grant is of `version`.
    pub fn is_of(&self, version: &DatasetVersion) -> bool {
        self.dataset == version.name
            && self.version.is_none_or(|v| v == version.version)
            && self.sha256.as_ref().is_none_or(|s| *s == version.sha256)
    }

    /// Whether the project can still run jobs on `today`.
    pub fn is_live(&self, today: NaiveDate) -> bool {
        self.expires.is_none_or(|expires| today <= expires)
    }
}

/// `<home>/policies/<project-id>.toml`: one registered policy per project.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// Opens (creating if needed) the registry under the state directory `home`.
    pub fn open(home: &Path) -> Result<Registry, PolicyError> {
        let dir = home.join("policies");
        std::fs::create_dir_all(&dir).map_err(|e| PolicyError::unwritable(&dir, &e))?;
        Ok(Registry { dir })
    }

    /// Registers a validated policy, replacing the project's earlier one. Copies the exact bytes
    /// that were validated, or refuses if the file changed since.
    pub fn register(&self, policy: &Policy) -> Result<PathBuf, PolicyError> {
        let bytes = std::fs::read(&policy.source).map_err(|e| PolicyError::unreadable(&policy.source, &e))?;
        if hex::encode(Sha256::digest(&bytes)) != policy.sha256 {
            let reason = "the file changed while it was being registered; check it again".to_string();
            return Err(PolicyError::new(&policy.source, "", PolicyErrorKind::Unreadable(reason)));
        }
        let target = self.dir.join(format!("{}.toml", policy.project.id));
        crate::atomic_file::write(&target, &[&bytes]).map_err(|e| PolicyError::unwritable(&target, &e))?;
        Ok(target)
    }

    /// The registered policy files.
    pub fn files(&self) -> Result<Vec<PathBuf>, PolicyError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| PolicyError::unreadable(&self.dir, &e))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| PolicyError::unreadable(&self.dir, &e))?.path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// The members of registered project `project`, as its registered policy names them now:
    /// who may decide on, describe and release the project's outputs. Only the members are
    /// validated, so an expired project's outputs can still be reviewed.
    pub fn members(&self, project: &str) -> Result<Vec<Member>, PolicyError> {
        let file = self.policy_file(project);
        if !file.exists() {
            let reason =
                format!("project {project:?} has no registered policy; register it with `ringfence policy register`");
            return Err(PolicyError::new(&file, "", PolicyErrorKind::Unreadable(reason)));
        }
        let (policy, _) = raw::read(&file)?;
        validate::members(policy.members, &file)
    }

    /// The registered projects `user` belongs to, with the roles held in each.
    pub fn memberships(&self, user: &str) -> Result<Vec<(String, Vec<Role>)>, PolicyError> {
        let mut found = Vec::new();
        for file in self.files()? {
            let (policy, _) = raw::read(&file)?;
            let project = policy.project.id.clone();
            if let Some(member) = validate::members(policy.members, &file)?.into_iter().find(|m| m.user == user) {
                found.push((project, member.roles));
            }
        }
        Ok(found)
    }

    /// The registered policy file of `project` (which may not exist).
    pub fn policy_file(&self, project: &str) -> PathBuf {
        self.dir.join(format!("{project}.toml"))
    }

    /// Every dataset grant of every registered policy, read as written (a registered policy
    /// stays readable after its project expires or its dataset changes).
    pub fn dataset_uses(&self) -> Result<Vec<DatasetUse>, PolicyError> {
        let mut uses = Vec::new();
        for file in self.files()? {
            let (policy, _) = raw::read(&file)?;
            let expires = policy
                .project
                .expires
                .date
                .and_then(|d| NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day)));
            for grant in policy.datasets {
                uses.push(DatasetUse {
                    project: policy.project.id.clone(),
                    expires,
                    dataset: grant.dataset,
                    version: grant.version,
                    sha256: grant.sha256,
                });
            }
        }
        Ok(uses)
    }
}
