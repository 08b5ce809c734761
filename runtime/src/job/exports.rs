//! Moving what a guest left in `/export/` into its job record, with sizes and checksums.
//!
//! Only regular files at the top of `/export/` whose names are safe export names
//! ([`ringfence_sdk::manifest::export_name_problem`]) are taken. Everything else — other names,
//! directories and what they hold, symbolic links (never followed), special files — is listed
//! as discarded with the reason, for checkers and operators.

use std::io::Read;
use std::path::Path;

use ringfence_sdk::manifest::{MANIFEST_FILES, export_name_problem};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::home::HomeError;

/// A file the guest exported, as kept in the job record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedExport {
    /// The file's name under `/export/`: a safe export name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the contents.
    pub sha256: String,
}

/// Something under `/export/` that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscardedExport {
    /// Its name under `/export/` (lossily decoded; guest text: escape it to print it).
    pub name: String,
    /// Why it was not kept.
    pub reason: String,
}

/// Moves every regular file at the top of `from` whose name is a safe export name (or the
/// manifest's) to `to`.
pub(super) fn capture(from: &Path, to: &Path) -> Result<(Vec<CapturedExport>, Vec<DiscardedExport>), HomeError> {
    let mut captured = Vec::new();
    let mut discarded = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .map_err(HomeError::io("read", from))?
        .collect::<Result<_, _>>()
        .map_err(HomeError::io("read", from))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let raw_name = entry.file_name();
        let name = raw_name.to_string_lossy().into_owned();
        let source = entry.path();
        let meta = source.symlink_metadata().map_err(HomeError::io("inspect", &source))?;
        let refused = if meta.file_type().is_symlink() {
            Some("a symbolic link; only regular files are exported".to_string())
        } else if meta.is_dir() {
            Some("a directory; only plain files at the top of /export are exported".to_string())
        } else if !meta.is_file() {
            Some("not a regular file; only regular files are exported".to_string())
        } else if raw_name.to_str().is_none() {
            Some("the file name is not UTF-8".to_string())
        } else if MANIFEST_FILES.contains(&name.as_str()) {
            None
        } else {
            export_name_problem(&name).map(|problem| format!("{problem}; the file is not exported"))
        };
        if let Some(reason) = refused {
            discarded.push(DiscardedExport { name, reason });
            continue;
        }
        let target = to.join(&name);
        std::fs::rename(&source, &target).map_err(HomeError::io("move", &source))?;
        let sha256 = sha256_file(&target)?;
        captured.push(CapturedExport { name, size: meta.len(), sha256 });
    }
    Ok((captured, discarded))
}

/// SHA-256 (hex) of a file's contents, streamed.
pub(crate) fn sha256_file(path: &Path) -> Result<String, HomeError> {
    let mut file = std::fs::File::open(path).map_err(HomeError::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(HomeError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
