//! Operator caps: the most any project's policy may grant.

use std::path::Path;

use serde::Deserialize;

use super::error::{PolicyError, PolicyErrorKind};

/// Upper bounds an operator sets for every project's limits. A policy asking for more is
/// refused, so a project cannot grant itself the whole machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorCaps {
    /// Cap on `limits.memory_mb`.
    pub memory_mb: u64,
    /// Cap on `limits.cpu_seconds`.
    pub cpu_seconds: u64,
    /// Cap on `limits.wall_seconds`.
    pub wall_seconds: u64,
    /// Cap on `limits.export_max_bytes`.
    pub export_max_bytes: u64,
    /// Cap on `limits.export_max_files`.
    pub export_max_files: u64,
    /// Cap on `limits.output_max_bytes`.
    pub output_max_bytes: u64,
    /// Cap on `limits.max_concurrent_jobs_per_user` (rule 10: at most two sessions).
    pub max_concurrent_jobs_per_user: u64,
    /// Cap on `limits.max_jobs_per_day`: with the bits a job can signal before review
    /// (SECURITY.md), it bounds what a hostile analysis can signal in a day.
    pub max_jobs_per_day: u64,
    /// Cap on `limits.max_uploads_per_day`.
    pub max_uploads_per_day: u64,
    /// Cap on `limits.max_upload_mb_per_day`.
    pub max_upload_mb_per_day: u64,
}

impl Default for OperatorCaps {
    /// Caps suited to a shared analysis server: 4 GiB of guest memory (the wasm32 maximum),
    /// a day of CPU, two days of wall time, 1 GiB and 1000 files of exports, 100 jobs, 200
    /// uploads and 16 GiB of modules a day.
    fn default() -> Self {
        OperatorCaps {
            memory_mb: 4096,
            cpu_seconds: 24 * 3600,
            wall_seconds: 48 * 3600,
            export_max_bytes: 1 << 30,
            export_max_files: 1000,
            output_max_bytes: 16 << 20,
            max_concurrent_jobs_per_user: 2,
            max_jobs_per_day: 100,
            max_uploads_per_day: 200,
            max_upload_mb_per_day: 16 << 10,
        }
    }
}

impl OperatorCaps {
    /// Reads caps from a TOML file of `key = value` lines; keys left out keep their default.
    pub fn load(path: &Path) -> Result<OperatorCaps, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::unreadable(path, &e))?;
        toml::from_str(&text).map_err(|e| PolicyError::parse(path, &text, &e))
    }

    /// Checks `value` of `key` against its cap.
    pub(super) fn check(&self, file: &Path, key: &str, value: u64, cap: u64) -> Result<(), PolicyError> {
        if value == 0 {
            return Err(PolicyError::new(file, key, PolicyErrorKind::Zero));
        }
        if value > cap {
            return Err(PolicyError::new(file, key, PolicyErrorKind::AboveCap { value, cap }));
        }
        Ok(())
    }
}
