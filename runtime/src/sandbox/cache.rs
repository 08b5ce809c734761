//! The compiled-module cache: a second run of the same module skips compilation.
//!
//! Entries live in the state directory, keyed by the module's SHA-256 and the engine's
//! compilation settings. `Module::deserialize` trusts its input completely, so each entry starts
//! with the SHA-256 of the compiled artifact; an entry whose checksum does not match (a torn
//! write, a flipped bit, a truncated file) is discarded and rebuilt, never loaded.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Length of the checksum header in front of each cache entry.
const CHECKSUM_LEN: usize = 32;

/// Where a job's compiled module came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Already compiled, checked and linked in this process (an earlier job ran it).
    Memory,
    /// Loaded from a verified cache entry.
    Hit,
    /// Compiled now; no entry existed.
    Miss,
    /// Compiled now; the existing entry failed verification and was replaced.
    Rebuilt,
}

/// A directory of compiled modules for one engine configuration.
pub(super) struct ModuleCache {
    dir: PathBuf,
    engine_key: String,
}

impl ModuleCache {
    pub(super) fn new(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ModuleCache { dir: dir.to_path_buf(), engine_key: format!("{:016x}", hasher.finish()) })
    }

    /// The cache file for a module with this SHA-256 (hex).
    pub(super) fn entry_path(&self, module_sha256: &str) -> PathBuf {
        self.dir.join(format!("{module_sha256}-{}.cwasm", self.engine_key))
    }

    /// Loads the verified entry for `module_sha256`, if one exists. `Ok(None)` with
    /// `found_corrupt = true` means an entry existed but failed verification.
    pub(super) fn load(&self, engine: &Engine, module_sha256: &str) -> (Option<Module>, bool) {
        let Ok(bytes) = std::fs::read(self.entry_path(module_sha256)) else {
            return (None, false);
        };
        if bytes.len() < CHECKSUM_LEN {
            return (None, true);
        }
        let (checksum, artifact) = bytes.split_at(CHECKSUM_LEN);
        if Sha256::digest(artifact).as_slice() != checksum {
            return (None, true);
        }
        // SAFETY: the artifact was produced by `Module::serialize` of this engine configuration
        // (the file name carries the engine's compatibility hash) and its SHA-256 matches the one
        // written with it, so it is byte-for-byte what wasmtime wrote. The cache directory is
        // inside the operator's state directory, out of reach of researchers and guests.
        match unsafe { Module::deserialize(engine, artifact) } {
            Ok(module) => (Some(module), false),
            Err(_) => (None, true),
        }
    }

    /// Stores `module` under `module_sha256`, atomically: a reader sees the old entry, no entry
    /// or the complete new one.
    pub(super) fn store(&self, module: &Module, module_sha256: &str) -> std::io::Result<()> {
        let artifact = module.serialize().map_err(std::io::Error::other)?;
        let checksum = Sha256::digest(&artifact);
        crate::atomic_file::write(&self.entry_path(module_sha256), &[checksum.as_slice(), &artifact])
    }
}
