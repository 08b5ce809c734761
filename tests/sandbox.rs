//! The sandbox against the threat model: each test runs a guest that tries something for real
//! and asserts exactly what happened.

mod common;

use std::collections::BTreeMap;

use common::{TestLimits, run_guest, run_wat};
use ringfence::sandbox::{CacheOutcome, JobStatus, SandboxError};

fn limits() -> TestLimits {
    TestLimits::default()
}

#[test]
fn well_behaved_analysis_reads_its_dataset_and_exports_a_table() {
    let ran = run_guest("region-counts", &[], limits());
    assert_eq!(ran.record.status, JobStatus::Succeeded);
    let names: Vec<&str> = ran.record.exports.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["manifest.json", "region_counts.csv"]);

    let csv = std::fs::read_to_string(common::persons_csv()).expect("persons.csv");
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        *expected.entry(line.split(',').nth(1).expect("region")).or_default() += 1;
    }
    let mut table = String::from("region,persons\n");
    for (region, count) in &expected {
        table.push_str(&format!("{region},{count}\n"));
    }
    let exported = ran.export("region_counts.csv");
    assert_eq!(String::from_utf8_lossy(&exported), table);
    assert_eq!(ran.record.exports[1].size, exported.len() as u64);
    assert_eq!(ran.record.exports[1].sha256, sha256_hex(&exported));
    let manifest: ringfence_sdk::manifest::Manifest =
        serde_json::from_slice(&ran.export("manifest.json")).expect("manifest");
    assert_eq!(manifest.outputs[0].kind, ringfence_sdk::manifest::OutputKind::File);
    assert_eq!(manifest.outputs[0].description, "Persons per region");
    assert_eq!(ran.stdout(), format!("counted {} regions\n", expected.len()));

    let stored = ringfence::job::JobRecord::load(&ran.home, &ran.record.id).expect("job.json");
    assert_eq!(stored.status, JobStatus::Succeeded);
    assert_eq!(stored.exports, ran.record.exports);
    assert_eq!(stored.datasets[0].mount, "persons");
    assert_eq!(stored.datasets[0].projection.sha256, ran.record.datasets[0].projection.sha256);
    assert_eq!(stored.datasets[0].projection.columns, common::GRANTED_COLUMNS);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn paths_outside_the_granted_directories_cannot_be_read() {
    for path in [
        "/etc/passwd",
        "/data/persons/../../etc/passwd",
        "/data/persons/../../../../../../etc/hostname",
        "/export/../data/persons/data.arrow",
        "../../etc/passwd",
        "data.arrow",
        "/proc/self/environ",
    ] {
        let ran = run_guest("escape", &["read", path], limits());
        assert_eq!(ran.record.status, JobStatus::Succeeded);
        assert!(ran.stdout().starts_with("DENIED read"), "reading {path}: {}", ran.stdout());
    }
}

#[test]
fn the_guest_sees_only_its_mounts() {
    let ran = run_guest("escape", &["list", "/data/persons"], limits());
    assert_eq!(ran.stdout(), "ALLOWED list: data.arrow,schema.json\n");
    for path in ["/", "/data", "/tmp", "."] {
        let ran = run_guest("escape", &["list", path], limits());
        assert!(ran.stdout().starts_with("DENIED list"), "listing {path}: {}", ran.stdout());
    }
}

#[test]
fn datasets_are_read_only() {
    for path in ["/data/persons/data.arrow", "/data/persons/schema.json", "/data/persons/new.csv"] {
        let ran = run_guest("escape", &["write", path], limits());
        assert!(ran.stdout().starts_with("DENIED write"), "writing {path}: {}", ran.stdout());
        let projection = ran.dir.path().join("home/projections");
        let entries: Vec<_> = std::fs::read_dir(&projection).expect("projections").collect();
        assert_eq!(entries.len(), 1, "one projection");
        let dir = entries.into_iter().next().expect("one").expect("entry").path().join("data");
        assert!(!dir.join("new.csv").exists());
        let data = std::fs::read(dir.join("data.arrow")).expect("data.arrow");
        assert!(!data.windows(7).any(|w| w == b"escaped"));
    }
}

#[test]
fn no_environment_variables_reach_the_guest() {
    let ran = run_guest("escape", &["env"], limits());
    assert_eq!(ran.stdout(), "env 0 []\n");
}

#[test]
fn symlinks_in_export_cannot_leave_the_sandbox() {
    for target in ["/etc/passwd", "../../../../etc/passwd", "/data/persons/data.arrow"] {
        let ran = run_guest("escape", &["symlink", target], limits());
        assert!(ran.stdout().starts_with("DENIED symlink"), "link to {target}: {}", ran.stdout());
        assert!(ran.record.exports.is_empty(), "a link was exported: {:?}", ran.record.exports);
    }
}

#[test]
fn symlinks_with_trailing_slashes_cannot_leave_the_sandbox() {
    for (target, name) in [("/etc/", "up/"), ("../../../../etc/", "up/"), ("/etc", "up/"), ("../", "up/")] {
        let ran = run_guest("escape", &["symlink", target, name], limits());
        assert!(ran.stdout().starts_with("DENIED symlink"), "link {name} -> {target}: {}", ran.stdout());
        assert!(ran.record.exports.is_empty());
    }
}

#[test]
fn stdin_is_empty() {
    let ran = run_guest("escape", &["stdin"], limits());
    assert_eq!(ran.stdout(), "stdin 0 bytes (ok)\n");
}

#[test]
fn clocks_are_coarse() {
    let ran = run_guest("escape", &["time"], limits());
    let out = ran.stdout();
    let field = |name: &str| -> u128 {
        let rest = out.split(name).nth(1).expect("field present");
        rest.split_whitespace().next().expect("value").parse().expect("number")
    };
    assert_eq!(field("wall_subsec_nanos "), 0, "{out}");
    assert_eq!(field("elapsed_nanos ") % 1_000_000_000, 0, "{out}");
}

#[test]
fn an_infinite_loop_ends_at_the_cpu_limit() {
    let ran = run_guest("escape", &["spin"], TestLimits { cpu_seconds: 1, ..limits() });
    assert_eq!(ran.record.status, JobStatus::CpuLimit);
    assert!(ran.record.cpu_ms >= 1000.0 && ran.record.cpu_ms < 5000.0, "cpu {} ms", ran.record.cpu_ms);
}

#[test]
fn a_long_job_ends_at_the_wall_clock_limit() {
    let ran = run_guest("escape", &["spin"], TestLimits { wall_seconds: 1, ..limits() });
    assert_eq!(ran.record.status, JobStatus::WallClockLimit);
    assert!(ran.record.duration_ms >= 1000.0 && ran.record.duration_ms < 5000.0);
}

#[test]
fn sleeping_is_refused_rather_than_blocking_the_host() {
    let ran = run_guest("escape", &["sleep"], limits());
    assert!(matches!(ran.record.status, JobStatus::Trap(_)), "{}", ran.record.status);
    assert!(!ran.stdout().contains("ALLOWED"));
    assert!(ran.record.duration_ms < 5000.0);
}

#[test]
fn a_memory_bomb_ends_at_the_memory_limit() {
    let ran = run_guest("escape", &["alloc"], TestLimits { memory_mb: 64, ..limits() });
    assert_eq!(ran.record.status, JobStatus::MemoryLimit);
    assert!(ran.record.peak_memory_bytes <= 64 << 20);
    assert!(ran.record.peak_memory_bytes >= 32 << 20);
}

#[test]
fn a_huge_initial_memory_is_refused_at_instantiation() {
    let ran = run_wat(r#"(module (memory 32768) (func (export "_start")))"#, limits());
    assert_eq!(ran.record.status, JobStatus::MemoryLimit);
}

#[test]
fn deep_recursion_ends_in_a_stack_overflow_trap() {
    let ran = run_wat(r#"(module (func $down (call $down)) (func (export "_start") (call $down)))"#, limits());
    assert_eq!(ran.record.status, JobStatus::Trap("stack_overflow".into()));
    assert!(ran.record.detail.as_deref().is_some_and(|d| d.contains("stack")), "{:?}", ran.record.detail);
}

#[test]
fn deep_recursion_in_rust_overflows_its_own_shadow_stack_and_traps() {
    // Rust keeps its stack in linear memory (1 MiB by default); overflowing it is an
    // out-of-bounds access before wasmtime's own stack limit is reached.
    let ran = run_guest("escape", &["recurse"], limits());
    assert_eq!(ran.record.status, JobStatus::Trap("memory_out_of_bounds".into()));
    assert!(!ran.stdout().contains("depth"));
}

#[test]
fn a_stdout_flood_is_captured_up_to_the_cap_and_never_fails_the_guest() {
    let ran = run_guest("escape", &["stdout", "10485760"], limits());
    assert_eq!(ran.record.status, JobStatus::Succeeded);
    assert_eq!(ran.record.stdout.captured_bytes, 1 << 20);
    assert_eq!(ran.record.stdout.written_bytes, 10 << 20);
    assert!(ran.record.stdout.truncated);
    assert_eq!(ran.stdout().len(), 1 << 20);
    assert_eq!(ran.stderr(), "flooded 10485760 bytes\n");
}

#[test]
fn an_export_over_the_byte_cap_stops_the_guest_and_keeps_nothing() {
    let ran = run_guest("escape", &["export-bytes", "10485760"], TestLimits { export_max_bytes: 1 << 20, ..limits() });
    assert_eq!(ran.record.status, JobStatus::ExportLimit);
    assert!(ran.record.exports.is_empty());
    assert!(!ran.stdout().contains("ALLOWED"), "the guest finished writing: {}", ran.stdout());
}

#[test]
fn an_export_within_the_byte_cap_is_kept() {
    let ran = run_guest("escape", &["export-bytes", "655360"], TestLimits { export_max_bytes: 1 << 20, ..limits() });
    assert_eq!(ran.record.status, JobStatus::Succeeded);
    assert_eq!(ran.record.exports.len(), 1);
    assert_eq!(ran.record.exports[0].size, 655360);
}

#[test]
fn an_export_over_the_file_cap_stops_the_guest() {
    let ran = run_guest("escape", &["export-files", "50"], TestLimits { export_max_files: 10, ..limits() });
    assert_eq!(ran.record.status, JobStatus::ExportLimit);
    assert!(ran.record.exports.is_empty());
    let ran = run_guest("escape", &["export-files", "10"], TestLimits { export_max_files: 10, ..limits() });
    assert_eq!(ran.record.status, JobStatus::Succeeded);
    assert_eq!(ran.record.exports.len(), 10);
}

#[test]
fn data_cannot_be_hard_linked_into_the_export_directory() {
    for (from, to) in [("/data/persons/data.arrow", "/export/copy.arrow"), ("/data/persons/schema.json", "/export/s")] {
        let ran = run_guest("escape", &["hardlink", from, to], limits());
        assert!(ran.stdout().starts_with("DENIED hardlink"), "{from} -> {to}: {}", ran.stdout());
    }
}

#[test]
fn bytes_written_to_an_unlinked_file_still_count() {
    let capped = TestLimits { export_max_bytes: 1 << 20, ..limits() };
    let ran = run_guest("escape", &["unlink-write", "4194304"], capped);
    assert_eq!(ran.record.status, JobStatus::ExportLimit, "{}", ran.stdout());
    assert!(!ran.stdout().contains("ALLOWED"), "the guest finished writing: {}", ran.stdout());
    let small = run_guest("escape", &["unlink-write", "131072"], capped);
    assert_eq!(small.record.status, JobStatus::Succeeded, "a small ghost file stays within the cap");
}

#[test]
fn sparse_files_and_grown_files_count_at_their_length() {
    let capped = TestLimits { export_max_bytes: 1 << 20, ..limits() };
    for args in [&["pwrite-far", "1073741824"][..], &["set-size", "1073741824"]] {
        let ran = run_guest("escape", args, capped);
        assert_eq!(ran.record.status, JobStatus::ExportLimit, "{args:?}: {}", ran.stdout());
        assert!(ran.record.exports.is_empty());
    }
    let within = run_guest("escape", &["set-size", "1000"], capped);
    assert_eq!(within.record.status, JobStatus::Succeeded, "{}", within.stdout());
    assert_eq!(within.record.exports[0].size, 1000);
}

#[test]
fn names_and_directories_count_towards_the_export_limits() {
    let ran = run_guest(
        "escape",
        &["long-names", "200"],
        TestLimits { export_max_bytes: 40_000, export_max_files: 1000, ..limits() },
    );
    assert_eq!(ran.record.status, JobStatus::ExportLimit, "200 names of 255 bytes: {}", ran.stdout());
    let deep = run_guest("escape", &["deep-dirs", "500"], TestLimits { export_max_files: 1000, ..limits() });
    assert_eq!(deep.record.status, JobStatus::ExportLimit, "500 directories of a block each: {}", deep.stdout());
    let nested = run_guest("escape", &["deep-dirs", "50"], TestLimits { export_max_files: 20, ..limits() });
    assert_eq!(nested.record.status, JobStatus::ExportLimit, "deeper than the entry cap");
}

/// A WAT command that calls `$body` (which leaves an i32 on the stack) and exits with it.
fn exit_with(imports: &str, body: &str) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            {imports}
            (memory (export "memory") 1)
            (data (i32.const 100) "data.arrow")
            (data (i32.const 200) "../escape.txt")
            (func (export "_start") {body} call $exit))"#
    )
}

#[test]
fn exit_codes_are_recorded() {
    let ran = run_wat(&exit_with("", "i32.const 7"), limits());
    assert_eq!(ran.record.status, JobStatus::Exited(7));
}

#[test]
fn socket_calls_fail_on_every_descriptor() {
    for fd in 0..6 {
        let wat = exit_with(
            r#"(import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))"#,
            &format!("i32.const {fd} i32.const 0 i32.const 16 call $accept"),
        );
        let ran = run_wat(&wat, limits());
        assert!(matches!(ran.record.status, JobStatus::Exited(code) if code != 0), "fd {fd}: {}", ran.record.status);
        let wat = exit_with(
            r#"(import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))"#,
            &format!("i32.const {fd} i32.const 0 i32.const 0 i32.const 0 i32.const 16 call $send"),
        );
        let ran = run_wat(&wat, limits());
        assert!(matches!(ran.record.status, JobStatus::Exited(code) if code != 0), "fd {fd}: {}", ran.record.status);
    }
}

const PATH_OPEN: &str = r#"(import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#;

#[test]
fn a_read_only_dataset_cannot_be_opened_for_writing() {
    // fd 3 is /data/persons; ask for fd_write (1 << 6) on persons.csv, without creating.
    let wat = exit_with(
        PATH_OPEN,
        "i32.const 3 i32.const 0 i32.const 100 i32.const 11 i32.const 0 i64.const 64 i64.const 0 i32.const 0 i32.const 16 call $open",
    );
    let ran = run_wat(&wat, limits());
    assert!(matches!(ran.record.status, JobStatus::Exited(code) if code != 0), "{}", ran.record.status);
}

#[test]
fn dot_dot_from_the_export_directory_is_refused() {
    // fd 4 is /export; create "../escape.txt" (O_CREAT = 1).
    let wat = exit_with(
        PATH_OPEN,
        "i32.const 4 i32.const 0 i32.const 200 i32.const 13 i32.const 1 i64.const 64 i64.const 0 i32.const 0 i32.const 16 call $open",
    );
    let ran = run_wat(&wat, limits());
    assert!(matches!(ran.record.status, JobStatus::Exited(code) if code != 0), "{}", ran.record.status);
    assert!(!ran.dir.path().join("home/work/escape.txt").exists());
}

const RENUMBER: &str =
    r#"(import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))"#;

#[test]
fn standard_streams_cannot_be_renumbered_or_closed() {
    const NOTSUP: i32 = 58;
    for (from, to) in [(4, 1), (1, 4), (2, 0)] {
        let wat = exit_with(RENUMBER, &format!("i32.const {from} i32.const {to} call $renumber"));
        assert_eq!(run_wat(&wat, limits()).record.status, JobStatus::Exited(NOTSUP), "renumber {from} -> {to}");
    }
    let close = r#"(import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))"#;
    let wat = exit_with(close, "i32.const 1 call $close");
    assert_eq!(run_wat(&wat, limits()).record.status, JobStatus::Exited(NOTSUP));
}

#[test]
fn renumbering_onto_itself_or_a_missing_fd_does_not_crash_the_host() {
    for (from, to) in [(3, 3), (4, 3), (3, 1000), (1000, 3), (-1, 3)] {
        let wat = exit_with(RENUMBER, &format!("i32.const {from} i32.const {to} call $renumber"));
        let status = run_wat(&wat, limits()).record.status;
        assert!(matches!(status, JobStatus::Exited(_) | JobStatus::Succeeded), "renumber {from} -> {to}: {status}");
    }
}

#[test]
fn invalid_modules_are_refused_with_a_reason() {
    let sandbox = common::sandbox();
    let cases: [(&[u8], &str); 5] = [
        (b"not wasm at all", "not a valid WebAssembly module"),
        (
            &wat::parse_str(r#"(module (import "env" "peek" (func)) (func (export "_start")))"#).expect("wat"),
            "env::peek",
        ),
        (&wat::parse_str(r#"(module (func (export "main")))"#).expect("wat"), "no `_start`"),
        (
            &wat::parse_str(
                r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))"#,
            )
            .expect("wat"),
            "cannot be linked",
        ),
        (&wat::parse_str(r#"(component)"#).expect("wat"), "component"),
    ];
    for (wasm, expected) in cases {
        match sandbox.load_module(wasm) {
            Err(SandboxError::InvalidModule(msg)) => assert!(msg.contains(expected), "{msg:?} lacks {expected:?}"),
            Err(other) => panic!("wrong error for {expected:?}: {other}"),
            Ok(_) => panic!("module accepted: {expected:?}"),
        }
    }
}

#[test]
fn shared_memory_and_threads_are_not_available() {
    let wasm = wat::parse_str(r#"(module (memory 1 1 shared) (func (export "_start")))"#).expect("wat");
    assert!(matches!(common::sandbox().load_module(&wasm), Err(SandboxError::InvalidModule(_))));
}

#[test]
fn compiled_modules_are_cached_and_a_corrupt_entry_is_rebuilt() {
    let cache = tempfile::tempdir().expect("tempdir");
    // Each new sandbox stands for a new process: it has nothing loaded in memory yet.
    let process = || ringfence::sandbox::Sandbox::new(cache.path()).expect("sandbox");
    let wasm = wat::parse_str(r#"(module (func (export "_start")) (func (export "cache_test_marker")))"#).expect("wat");
    let sandbox = process();
    assert_eq!(sandbox.load_module(&wasm).expect("first").cache, CacheOutcome::Miss);
    assert_eq!(sandbox.load_module(&wasm).expect("again").cache, CacheOutcome::Memory);
    assert_eq!(process().load_module(&wasm).expect("second").cache, CacheOutcome::Hit);
    let entry = std::fs::read_dir(cache.path()).expect("ls").next().expect("one entry").expect("entry").path();
    let mut bytes = std::fs::read(&entry).expect("read entry");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&entry, &bytes).expect("corrupt entry");
    assert_eq!(sandbox.load_module(&wasm).expect("loaded").cache, CacheOutcome::Memory, "memory is not re-read");
    assert_eq!(process().load_module(&wasm).expect("third").cache, CacheOutcome::Rebuilt);
    assert_eq!(process().load_module(&wasm).expect("fourth").cache, CacheOutcome::Hit);
    std::fs::write(&entry, b"short").expect("truncate entry");
    assert_eq!(process().load_module(&wasm).expect("fifth").cache, CacheOutcome::Rebuilt);
}

#[test]
fn the_host_keeps_running_after_a_guest_hits_a_limit() {
    let ran = run_guest("escape", &["alloc"], TestLimits { memory_mb: 32, ..limits() });
    assert_eq!(ran.record.status, JobStatus::MemoryLimit);
    let ran = run_guest("region-counts", &[], limits());
    assert_eq!(ran.record.status, JobStatus::Succeeded);
}
