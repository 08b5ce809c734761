//! Moving what a guest left in `/export/` into its job record, with sizes and checksums.
//!
//! Only regular files are taken; symbolic links are never followed and, like anything else that
//! is not a plain file or directory, are listed as discarded with the reason.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::home::HomeError;

/// A file the guest exported, as kept in the job record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedExport {
    /// Path relative to `/export/`, with `/` separators.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the contents.
    pub sha256: String,
}

/// Something under `/export/` that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscardedExport {
    /// Path relative to `/export/` (lossily decoded).
    pub name: String,
    /// Why it was not kept.
    pub reason: String,
}

/// Moves every regular file under `from` to the same relative path under `to`.
pub(super) fn capture(from: &Path, to: &Path) -> Result<(Vec<CapturedExport>, Vec<DiscardedExport>), HomeError> {
    let mut captured = Vec::new();
    let mut discarded = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let dir = from.join(&relative);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(HomeError::io("read", &dir))?
            .collect::<Result<_, _>>()
            .map_err(HomeError::io("read", &dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let raw_name = entry.file_name();
            let Some(name) = raw_name.to_str() else {
                discarded.push(DiscardedExport {
                    name: format!("{relative}{}", raw_name.to_string_lossy()),
                    reason: "the file name is not UTF-8".into(),
                });
                continue;
            };
            let name = format!("{relative}{name}");
            let source = entry.path();
            let meta = source.symlink_metadata().map_err(HomeError::io("inspect", &source))?;
            if meta.is_dir() {
                pending.push(format!("{name}/"));
            } else if meta.is_file() {
                let target = to.join(&name);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(HomeError::io("create", parent))?;
                }
                std::fs::rename(&source, &target).map_err(HomeError::io("move", &source))?;
                let sha256 = sha256_file(&target)?;
                captured.push(CapturedExport { name, size: meta.len(), sha256 });
            } else {
                let kind = if meta.file_type().is_symlink() { "a symbolic link" } else { "not a regular file" };
                discarded.push(DiscardedExport { name, reason: format!("{kind}; only regular files are exported") });
            }
        }
    }
    captured.sort_by(|a, b| a.name.cmp(&b.name));
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
