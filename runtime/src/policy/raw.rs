//! The policy file exactly as written: serde types that refuse unknown keys.
//!
//! Nothing here is trusted; [`super::validate`] turns it into a [`super::Policy`].

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::value::Datetime;

use super::Role;
use super::error::{PolicyError, PolicyErrorKind};

/// Reads and parses a policy file; returns it with the SHA-256 of its bytes.
pub(super) fn read(path: &Path) -> Result<(RawPolicy, String), PolicyError> {
    let bytes = std::fs::read(path).map_err(|e| PolicyError::unreadable(path, &e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| PolicyError::new(path, "", PolicyErrorKind::NotUtf8))?;
    let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::parse(path, text, &e))?;
    Ok((raw, hex::encode(Sha256::digest(&bytes))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub project: RawProject,
    pub members: Vec<RawMember>,
    #[serde(default)]
    pub datasets: Vec<RawDataset>,
    pub limits: RawLimits,
    #[serde(default)]
    pub disclosure: RawDisclosure,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub id: String,
    pub title: String,
    pub purpose: String,
    pub expires: Datetime,
    pub runtimes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMember {
    pub user: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataset {
    pub mount: String,
    pub dataset: String,
    pub version: Option<u32>,
    pub sha256: Option<String>,
    pub columns: Vec<String>,
    pub filter: Option<String>,
    pub csv: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub memory_mb: u64,
    pub cpu_seconds: u64,
    pub wall_seconds: u64,
    pub export_max_bytes: u64,
    pub export_max_files: u64,
    pub max_concurrent_jobs_per_user: Option<u32>,
    pub max_jobs_per_day: Option<u32>,
    pub max_uploads_per_day: Option<u32>,
    pub max_upload_mb_per_day: Option<u64>,
    pub output_max_bytes: Option<u64>,
    pub clock_resolution_ms: Option<u64>,
    pub retry_interrupted: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDisclosure {
    pub min_units: Option<u64>,
    pub dominance_n: Option<u32>,
    pub dominance_k: Option<f64>,
    pub p_percent: Option<f64>,
    pub min_residual_dof: Option<u64>,
    pub rounding_base: Option<u64>,
    pub reviews_required: Option<u32>,
    pub show_check_names: Option<bool>,
}
