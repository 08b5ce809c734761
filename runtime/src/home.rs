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
//! <home>/work/<job-id>.lock          held by the process running the job
//! <home>/lock                        shared by every writer; exclusive for crash recovery
//! <home>/state.sqlite                jobs, export queue, audit log (see [`crate::store`])
//! <home>/database.toml               or: the PostgreSQL database that holds them instead
//! <home>/blobs/<sha256>              exported files, by content, read-only
//! ```
//!
//! A job record appears whole or not at all: it is assembled in a hidden directory next to its
//! final place and renamed into it.
//!
//! The locks are files on one machine. A directory whose state is in PostgreSQL may be shared by
//! several machines, where a file lock held on one is invisible on another: there, the same
//! locks are advisory locks in the database ([`crate::store::advisory`]), and no lock files
//! exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::Database;
use crate::store::advisory::{self, AdvisoryLock, Mode, Probe};

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
    locks: Locks,
}

/// Where the directory's locks live.
#[derive(Debug, Clone)]
enum Locks {
    /// Lock files in the directory, for the processes of one machine.
    Files,
    /// Advisory locks in the directory's PostgreSQL database, for every machine.
    Database { url: String, probe: Arc<Probe> },
}

/// A lock error from the database, said as the state directory's.
fn database_error(action: &'static str, path: &Path) -> impl FnOnce(crate::store::SqlError) -> HomeError + use<> {
    let io = HomeError::io(action, path);
    move |e| io(std::io::Error::other(e))
}

impl Home {
    /// Opens the state directory at `root`, creating its layout if needed.
    pub fn open(root: &Path) -> Result<Home, HomeError> {
        let locks = match Database::of(root) {
            Ok(Database::Embedded(_)) => Locks::Files,
            Ok(Database::Postgres { url, .. }) => Locks::Database { url, probe: Arc::default() },
            Err(e) => return Err(HomeError::io("read", &root.join(crate::store::MARKER))(std::io::Error::other(e))),
        };
        let home = Home { root: root.to_path_buf(), locks };
        for dir in [home.jobs_dir(), home.modules_dir(), home.module_cache_dir(), home.work_dir(), home.blobs_dir()] {
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

    /// Where exported files are kept by content.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn job_lock_path(&self, id: &str) -> PathBuf {
        self.work_dir().join(format!("{id}.lock"))
    }

    /// Creates and takes job `id`'s lock.
    pub fn job_lock(&self, id: &str) -> Result<JobLock, HomeError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.job_lock_path(id);
        if let Locks::Database { url, .. } = &self.locks {
            let held =
                advisory::hold(url, advisory::job_key(id), Mode::Exclusive).map_err(database_error("lock", &path))?;
            return Ok(JobLock { id: id.to_string(), held: Held::Database { lock: Box::new(held) } });
        }
        loop {
            let file = std::fs::File::create(&path).map_err(HomeError::io("create", &path))?;
            file.lock().map_err(HomeError::io("lock", &path))?;
            // Recovery removes a lock file it finds unheld: if it did so between the create
            // and the lock, this lock is on a file no one else can find, so take it again.
            let held = file.metadata().map_err(HomeError::io("inspect", &path))?;
            match std::fs::metadata(&path) {
                Ok(named) if (named.dev(), named.ino()) == (held.dev(), held.ino()) => {
                    return Ok(JobLock { id: id.to_string(), held: Held::File { path, _file: file } });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(HomeError::io("inspect", &path)(e)),
            }
        }
    }

    /// Whether job `id`'s process still holds its lock.
    pub fn job_liveness(&self, id: &str) -> Result<JobLiveness, HomeError> {
        let path = self.job_lock_path(id);
        if let Locks::Database { url, probe } = &self.locks {
            let held = probe.is_held(url, advisory::job_key(id)).map_err(database_error("lock", &path))?;
            return Ok(if held { JobLiveness::Running } else { JobLiveness::Ended });
        }
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JobLiveness::Ended),
            Err(e) => return Err(HomeError::io("open", &path)(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                Ok(JobLiveness::Ended)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(JobLiveness::Running),
            Err(std::fs::TryLockError::Error(e)) => Err(HomeError::io("lock", &path)(e)),
        }
    }

    fn lock_file(&self) -> Result<(std::fs::File, PathBuf), HomeError> {
        let path = self.root.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(HomeError::io("open", &path))?;
        Ok((file, path))
    }

    /// Takes the state directory's lock shared, waiting for a recovery in progress to finish.
    pub fn lock_shared(&self) -> Result<HomeLock, HomeError> {
        if let Locks::Database { url, .. } = &self.locks {
            let held =
                advisory::hold(url, advisory::HOME_LOCK, Mode::Shared).map_err(database_error("lock", &self.root))?;
            return Ok(HomeLock { _held: Held::Database { lock: Box::new(held) } });
        }
        let (file, path) = self.lock_file()?;
        file.lock_shared().map_err(HomeError::io("lock", &path))?;
        Ok(HomeLock { _held: Held::File { path, _file: file } })
    }

    /// Takes the state directory's lock exclusively if no other process holds it.
    pub fn try_lock_exclusive(&self) -> Result<Option<HomeLock>, HomeError> {
        if let Locks::Database { url, .. } = &self.locks {
            let held = advisory::try_hold(url, advisory::HOME_LOCK).map_err(database_error("lock", &self.root))?;
            return Ok(held.map(|held| HomeLock { _held: Held::Database { lock: Box::new(held) } }));
        }
        let (file, path) = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(HomeLock { _held: Held::File { path, _file: file } })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(HomeError::io("lock", &path)(e)),
        }
    }

    /// Keeps a copy of a submitted module under its SHA-256, once.
    pub fn keep_module(&self, sha256: &str, wasm: &[u8]) -> Result<PathBuf, HomeError> {
        keep_once(self.module_path(sha256), wasm)
    }

    /// Keeps a copy of a submitted script under its SHA-256, once (beside the modules).
    pub fn keep_script(&self, sha256: &str, script: &[u8]) -> Result<PathBuf, HomeError> {
        keep_once(self.script_path(sha256), script)
    }

    /// The bytes of the script kept as `sha256` (unchecked: the caller hashes them).
    pub fn read_script(&self, sha256: &str) -> Result<Vec<u8>, HomeError> {
        let path = self.script_path(sha256);
        std::fs::read(&path).map_err(HomeError::io("read", &path))
    }

    fn script_path(&self, sha256: &str) -> PathBuf {
        self.modules_dir().join(format!("{sha256}.script"))
    }

    /// The bytes of the module kept as `sha256` (unchecked: the caller hashes them).
    pub fn read_module(&self, sha256: &str) -> Result<Vec<u8>, HomeError> {
        let path = self.module_path(sha256);
        std::fs::read(&path).map_err(HomeError::io("read", &path))
    }

    fn module_path(&self, sha256: &str) -> PathBuf {
        self.modules_dir().join(format!("{sha256}.wasm"))
    }
}

/// Writes `bytes` to `path` unless a file is there (content-addressed: it holds them already).
fn keep_once(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, HomeError> {
    if !path.exists() {
        write_atomically(&path, bytes)?;
    }
    Ok(path)
}

/// The lock a running job holds (on `work/<id>.lock`, or in the database): while it is held,
/// the job's process is alive. Dropping it releases the lock (and removes the file).
#[derive(Debug)]
pub struct JobLock {
    id: String,
    held: Held,
}

/// A held lock: an open, locked file, or a database session holding an advisory lock.
#[derive(Debug)]
enum Held {
    File { path: PathBuf, _file: std::fs::File },
    Database { lock: Box<AdvisoryLock> },
}

impl JobLock {
    /// The job this lock belongs to.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the lock is still held. A file lock is held while its file is open; an advisory
    /// lock while its session lives, which a lost connection or a killed server process ends,
    /// after which another process may have ended the job.
    pub fn is_held(&self) -> bool {
        match &self.held {
            Held::File { .. } => true,
            Held::Database { lock } => lock.is_alive(),
        }
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        if let Held::File { path, .. } = &self.held {
            // A leftover file is harmless: recovery finds it unlocked and removes it.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether a job's process still holds its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobLiveness {
    /// Another process holds the lock: the job is running.
    Running,
    /// Nobody holds it (or it is gone): the job's process has ended.
    Ended,
}

/// The state directory's own lock: every process that writes staging files holds it shared;
/// recovery, which removes abandoned staging files, holds it exclusively, so it runs only when
/// no other process is writing.
#[derive(Debug)]
pub struct HomeLock {
    _held: Held,
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic_file`]).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    crate::atomic_file::write(path, &[bytes]).map_err(HomeError::io("write", path))
}

/// Writes `bytes` as a new file at `path`, atomically, refusing to replace or follow anything
/// already there: for files handed to people (released outputs).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    crate::atomic_file::write_new(path, &[bytes]).map_err(HomeError::io("write a new file at", path))
}
