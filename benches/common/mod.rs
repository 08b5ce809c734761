//! Helpers shared by the benchmarks: where the built guests are, job limits roomy enough not to
//! interfere, and a state directory prepared by `ringfence demo`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringfence::policy::Limits;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("runtime/ has a parent").to_path_buf()
}

/// Where `scripts/setup` puts the guests.
pub fn guests() -> PathBuf {
    root().join("target/wasm32-wasip1/guest")
}

/// The bytes of guest `name` (built by `scripts/setup`).
pub fn guest(name: &str) -> Vec<u8> {
    let path = guests().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (scripts/bench builds the guests)", path.display()))
}

/// Limits that only `memory_bytes` can make a benchmark hit.
pub fn limits(memory_bytes: u64) -> Limits {
    Limits {
        memory_bytes,
        cpu: Duration::from_secs(600),
        wall: Duration::from_secs(600),
        export_max_bytes: 1 << 20,
        export_max_files: 10,
        output_max_bytes: 1 << 20,
        max_concurrent_jobs_per_user: 2,
        max_jobs_per_day: 1000,
        clock_resolution: Duration::from_millis(1),
    }
}

/// Runs `ringfence demo` on a fresh state directory at `home` with `rows` persons: the demo
/// project registered (alice and bob researchers, carol checker), its modules cached, three
/// jobs run and their requests checked.
pub fn demo_home(home: &Path, rows: u64) {
    let demo = Command::new(env!("CARGO_BIN_EXE_ringfence"))
        .arg("--home")
        .arg(home)
        .args(["demo", "--rows", &rows.to_string(), "--modules"])
        .arg(guests())
        .output()
        .expect("ringfence demo");
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
}
