//! Guest-chosen arguments to every WASI call ringfence guards (writes, truncation, renumbering,
//! polling, and every path call that can change `/export/`), made for real by the `escape`
//! guest in the sandbox: the host never fails, the job always ends in a status, and nothing
//! over the export cap is ever kept.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringfence::catalog::Catalog;
use ringfence::home::Home;
use ringfence::job::{self, JobRequest, ModuleSource};
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::sandbox::Sandbox;

/// The calls the guest's `raw` command makes.
const CALLS: [&str; 13] = [
    "fd_write",
    "fd_pwrite",
    "fd_filestat_set_size",
    "fd_close",
    "fd_renumber",
    "poll_oneoff",
    "path_open",
    "path_create_directory",
    "path_remove_directory",
    "path_unlink_file",
    "path_symlink",
    "path_link",
    "path_rename",
];

/// The export cap the fuzzed jobs run under.
const EXPORT_MAX_BYTES: u64 = 65536;

struct Fixture {
    _dir: tempfile::TempDir,
    home: Home,
    catalog: Catalog,
    policy: Policy,
    sandbox: Sandbox,
    wasm: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let wasm = std::fs::read(root.join("target/wasm32-wasip1/guest/escape.wasm"))
            .expect("the escape guest (scripts/setup builds it)");
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(&dir.path().join("home")).expect("home");
        let (catalog, _) = common::catalog_with_persons(home.root(), "region,age\nUtrecht,34\nZeeland,51\n");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(
            &policy_path,
            format!(
                "[project]\nid = \"fuzz\"\ntitle = \"Fuzz\"\npurpose = \"Fuzzing\"\nexpires = 2099-01-01\n\n\
                 [[members]]\nuser = \"alice\"\nroles = [\"researcher\"]\n\n\
                 [[datasets]]\nmount = \"persons\"\ndataset = \"persons\"\nversion = 1\ncolumns = [\"region\", \"age\"]\n\n\
                 [limits]\nmemory_mb = 64\ncpu_seconds = 2\nwall_seconds = 10\nexport_max_bytes = {EXPORT_MAX_BYTES}\n\
                 export_max_files = 16\nmax_jobs_per_day = 100\n"
            ),
        )
        .expect("policy");
        let policy =
            Policy::load(&policy_path, &OperatorCaps::default(), &catalog, chrono::Utc::now().date_naive()).expect("policy");
        let sandbox = Sandbox::new(&dir.path().join("cache")).expect("sandbox");
        Fixture { _dir: dir, home, catalog, policy, sandbox, wasm }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&call, rest)) = data.split_first() else { return };
    let call = CALLS[usize::from(call) % CALLS.len()];
    let (numbers, scratch) = rest.split_at(rest.len().min(72));
    let mut args = vec!["raw".to_string(), call.to_string()];
    args.push(scratch.iter().map(|b| format!("{b:02x}")).collect());
    args.extend(numbers.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        // Small values (offsets into the scratch buffer, fds) as often as large ones.
        let value = i64::from_le_bytes(word);
        if word[7] & 1 == 0 { (value & 0xfff).to_string() } else { value.to_string() }
    }));
    let fixture = fixture();
    let request = JobRequest {
        policy: &fixture.policy,
        user: "alice",
        module: ModuleSource::Submitted(&fixture.wasm),
        args: &args,
    };
    let today = chrono::Utc::now().date_naive();
    let record = job::run(&fixture.home, &fixture.catalog, &fixture.sandbox, &request, today)
        .unwrap_or_else(|err| panic!("the host failed on {args:?}: {err}"));
    let kept: u64 = record.exports.iter().map(|e| e.size).sum();
    assert!(kept <= EXPORT_MAX_BYTES, "{kept} bytes kept over a cap of {EXPORT_MAX_BYTES}: {args:?}");
    let _ = std::fs::remove_dir_all(fixture.home.job_dir(&record.id));
});
