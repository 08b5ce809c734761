//! Helpers shared by the benchmarks: where the built guests are, job limits roomy enough not to
//! interfere, and a state directory prepared by `ringfence demo`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringfence::policy::Limits;

/// A PostgreSQL server for the benchmarks, as the tests start it.
#[path = "../../tests/common/postgres.rs"]
pub mod postgres;

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
        max_uploads_per_day: 2000,
        max_upload_bytes_per_day: u64::MAX,
        clock_resolution: Duration::from_millis(1),
        retry_interrupted: false,
    }
}

/// Runs `ringfence demo` on a fresh state directory at `home` with `rows` persons: the demo
/// project registered (alice and bob researchers, carol checker), its modules cached, three
/// jobs run and their requests checked. The project's daily quotas, which a benchmark's
/// thousands of jobs would pass, are lifted: operator caps in `<home>/caps.toml` allow
/// [`BENCH_QUOTA`] and the demo policy is registered again with that.
pub fn demo_home(home: &Path, rows: u64) {
    let demo = Command::new(env!("CARGO_BIN_EXE_ringfence"))
        .arg("--home")
        .arg(home)
        .args(["demo", "--rows", &rows.to_string(), "--modules"])
        .arg(guests())
        .output()
        .expect("ringfence demo");
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let quotas = format!(
        "max_jobs_per_day = {BENCH_QUOTA}\nmax_uploads_per_day = {BENCH_QUOTA}\nmax_upload_mb_per_day = {BENCH_QUOTA}\n"
    );
    std::fs::write(home.join("caps.toml"), &quotas).expect("caps");
    let demo_policy = std::fs::read_to_string(root().join("policies/demo.toml")).expect("demo policy");
    let lifted = demo_policy.replace("max_jobs_per_day = 20\n", &quotas);
    assert_ne!(lifted, demo_policy, "the demo policy sets max_jobs_per_day = 20");
    let policy_file = home.join("bench-demo.toml");
    std::fs::write(&policy_file, lifted).expect("policy");
    let register = Command::new(env!("CARGO_BIN_EXE_ringfence"))
        .arg("--home")
        .arg(home)
        .args(["policy", "register"])
        .arg(&policy_file)
        .output()
        .expect("ringfence policy register");
    assert!(register.status.success(), "{}", String::from_utf8_lossy(&register.stderr));
}

/// The daily quotas of the demo project in benchmarks.
pub const BENCH_QUOTA: u64 = 1_000_000;

/// The operator caps of a state directory made by [`demo_home`].
pub fn caps(home: &Path) -> ringfence::policy::OperatorCaps {
    ringfence::policy::OperatorCaps::load(&home.join("caps.toml")).expect("caps")
}
