//! Files that appear whole or not at all: written to a temporary file beside the target,
//! synced, then renamed over it.

use std::io::Write;
use std::path::Path;

/// Writes the concatenation of `parts` to `path` so that readers see either the old file or
/// the complete new one, never a torn write.
pub(crate) fn write(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        tmp.write_all(part)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Like [`write`], but refuses to replace anything already at `path` (a file, a directory, a
/// symbolic link, which is never followed): the new file is linked into place only if the name
/// is free, atomically.
pub(crate) fn write_new(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        tmp.write_all(part)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}
