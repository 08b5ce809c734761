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
