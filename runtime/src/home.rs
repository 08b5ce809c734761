//! The state directory: where ringfence keeps job records, submitted modules and the compiled
//! module cache.
//!
//! ```text
//! <home>/jobs/<job-id>/job.json      the job record (see [`crate::job::JobRecord`])
//! <home>/jobs/<job-id>/stdout        captured guest output, for checkers only
//! <home>/jobs/<job-id>/exports/...   files the guest left in /export/
//! <home>/modules/<sha256>.wasm       every submitted module, by content
//! <home>/cache/modules/              compiled modules (see the sandbox's cache)
//! <home>/work/<job-id>/export        the guest's /export/ while the job runs
//! ```
//!
//! A job record appears whole or not at all: it is assembled in a hidden directory next to its
//! final place and renamed into it.

use std::path::{Path, PathBuf};

/// A problem with the state directory itself.
#[derive(Debug, thiserror::Error)]
#[error("state directory: cannot {action} {}: {source}", path.display())]
pub struct HomeError {
    /// What was being done.
    pub action: &'static str,
    /// The path involved.
    pub path: PathBuf,
    /// The underlying error.
    pub source: std::io::Error,
}

impl HomeError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + use<> {
        let path = path.to_path_buf();
        move |source| HomeError { action, path, source }
    }
}

/// An open state directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Opens the state directory at `root`, creating its layout if needed.
    pub fn open(root: &Path) -> Result<Home, HomeError> {
        let home = Home { root: root.to_path_buf() };
        for dir in [home.jobs_dir(), home.modules_dir(), home.module_cache_dir(), home.work_dir()] {
            std::fs::create_dir_all(&dir).map_err(HomeError::io("create", &dir))?;
        }
        Ok(home)
    }

    /// The state directory's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where finished jobs' records live.
    pub fn jobs_dir(&self) -> PathBuf {
        self.root.join("jobs")
    }

    /// The record directory of job `id`.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.jobs_dir().join(id)
    }

    /// Where submitted modules are kept by content hash.
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("modules")
    }

    /// Where the sandbox caches compiled modules.
    pub fn module_cache_dir(&self) -> PathBuf {
        self.root.join("cache").join("modules")
    }

    /// Where running jobs' scratch directories live.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Keeps a copy of a submitted module under its SHA-256, once.
    pub fn keep_module(&self, sha256: &str, wasm: &[u8]) -> Result<PathBuf, HomeError> {
        let path = self.modules_dir().join(format!("{sha256}.wasm"));
        if !path.exists() {
            write_atomically(&path, wasm)?;
        }
        Ok(path)
    }
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic_file`]).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    crate::atomic_file::write(path, &[bytes]).map_err(HomeError::io("write", path))
}
