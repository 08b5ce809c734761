//! Reading the datasets a project's policy grants.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

/// Environment variable naming the data root when the analysis runs natively. Inside the
/// sandbox no environment variables exist and the root is `/data`.
pub const DATA_DIR_ENV: &str = "RINGFENCE_DATA_DIR";

/// The directory holding the dataset granted under `mount`: `/data/<mount>` in the sandbox,
/// `$RINGFENCE_DATA_DIR/<mount>` natively.
///
/// ```
/// let dir = ringfence_sdk::data::dir("persons");
/// assert!(dir.ends_with("persons"));
/// ```
pub fn dir(mount: &str) -> PathBuf {
    let root = std::env::var_os(DATA_DIR_ENV).map_or_else(|| PathBuf::from("/data"), PathBuf::from);
    root.join(mount)
}

/// Opens `file` of the dataset granted under `mount` for buffered reading.
///
/// ```no_run
/// use std::io::BufRead;
/// let header = ringfence_sdk::data::open("persons", "persons.csv")?.lines().next();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open(mount: &str, file: &str) -> std::io::Result<BufReader<File>> {
    Ok(BufReader::with_capacity(1 << 16, File::open(dir(mount).join(file))?))
}
