//! Exported files stored by content: `<home>/blobs/<sha256>`, read-only. A request's file never
//! changes after the job wrote it; a released copy is checked against the checksum on the way
//! out.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::home::HomeError;
use crate::job::sha256_file;

/// The content-addressed file store.
#[derive(Debug, Clone)]
pub(super) struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub(super) fn new(dir: PathBuf) -> Blobs {
        Blobs { dir }
    }

    /// Where the blob with this checksum lives.
    pub(super) fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Stores `source`, whose checksum is `sha256`: a hard link when the file system allows,
    /// else a synced copy renamed into place. Storing the same content twice is a no-op.
    pub(super) fn put(&self, sha256: &str, source: &Path) -> Result<(), HomeError> {
        let target = self.path(sha256);
        if target.exists() {
            return Ok(());
        }
        let staged = self.dir.join(format!(".{sha256}.{}", uuid::Uuid::now_v7()));
        if std::fs::hard_link(source, &staged).is_err() {
            std::fs::copy(source, &staged).map_err(HomeError::io("copy", source))?;
            std::fs::File::open(&staged).and_then(|f| f.sync_all()).map_err(HomeError::io("sync", &staged))?;
        }
        if sha256_file(&staged)? != sha256 {
            let _ = std::fs::remove_file(&staged);
            let source_err =
                std::io::Error::new(std::io::ErrorKind::InvalidData, "the file changed while it was stored");
            return Err(HomeError::io("store", source)(source_err));
        }
        let mut permissions = std::fs::metadata(&staged).map_err(HomeError::io("inspect", &staged))?.permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&staged, permissions).map_err(HomeError::io("protect", &staged))?;
        std::fs::rename(&staged, &target).map_err(HomeError::io("move into place", &target))?;
        Ok(())
    }

    /// Removes blobs no request refers to, and staged copies a crash left behind. Only safe
    /// while no other process is storing blobs (under the state directory's exclusive lock).
    pub(super) fn sweep(&self, referenced: &HashSet<String>) -> Result<usize, HomeError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(HomeError::io("read", &self.dir))? {
            let entry = entry.map_err(HomeError::io("read", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                std::fs::remove_file(entry.path()).map_err(HomeError::io("remove", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
