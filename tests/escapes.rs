//! The escape table: every attack of the threat model as one row — a hostile guest (the Rust
//! `escape` guest, or a hand-written WAT module), the limits it runs under, and what must
//! happen. After each attack the same sandbox runs a well-behaved analysis and its output must be
//! exactly right. The table, with what happened, is written to `tests/ESCAPES.md`.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use common::TestLimits;
use ringfence::catalog::Catalog;
use ringfence::home::Home;
use ringfence::job::{self, JobRecord, JobRequest, ModuleSource};
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::sandbox::JobStatus;

/// What the attacker runs.
enum Guest {
    /// The `escape` guest with these arguments.
    Escape(Vec<String>),
    /// A WAT module.
    Wat(String),
    /// Raw bytes offered as a module.
    Bytes(Vec<u8>),
}

/// What must happen.
#[derive(Clone, Copy)]
enum Expect {
    /// The guest runs to the end and reports `DENIED` for its attempt.
    Denied,
    /// The job ends with this status (and nothing the attack wrote is exported).
    Status(fn(&JobStatus) -> bool, &'static str),
    /// The module is refused before it runs.
    Refused,
    /// The job succeeds and this holds of its record and stdout.
    Holds(fn(&JobRecord, &str) -> bool, &'static str),
}

struct Attack {
    area: &'static str,
    name: String,
    guest: Guest,
    limits: TestLimits,
    expect: Expect,
}

fn escape(area: &'static str, args: &[&str], expect: Expect) -> Attack {
    let name = format!("escape {}", args.join(" "));
    let guest = Guest::Escape(args.iter().map(|a| a.to_string()).collect());
    Attack { area, name, guest, limits: small(), expect }
}

fn wat(area: &'static str, name: &str, text: &str, expect: Expect) -> Attack {
    Attack { area, name: name.to_string(), guest: Guest::Wat(text.to_string()), limits: small(), expect }
}

/// Limits small enough that every limit attack ends quickly.
fn small() -> TestLimits {
    TestLimits { memory_mb: 64, cpu_seconds: 1, wall_seconds: 10, export_max_bytes: 1 << 20, ..TestLimits::default() }
}

const EXPORT_LIMIT: Expect = Expect::Status(|s| *s == JobStatus::ExportLimit, "export_limit");
const CPU_LIMIT: Expect = Expect::Status(|s| *s == JobStatus::CpuLimit, "cpu_limit");
const MEMORY_LIMIT: Expect = Expect::Status(|s| *s == JobStatus::MemoryLimit, "memory_limit");
const STACK_OVERFLOW: Expect =
    Expect::Status(|s| matches!(s, JobStatus::Trap(kind) if kind == "stack_overflow"), "trap: stack_overflow");
const NOTHING_EXPORTED: Expect =
    Expect::Holds(|r, _| r.exports.iter().all(|e| e.name == "manifest.json"), "succeeds, nothing exported");

/// A WAT command that leaves the i32 of `body` as its exit code.
fn exits_with(imports: &str, body: &str) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            {imports}
            (memory (export "memory") 1)
            (data (i32.const 100) "/etc/passwd")
            (func (export "_start") {body} call $exit))"#
    )
}

/// An attack that calls one WASI function with `args` and exits with 1 if it returned 0
/// (succeeded), else 0: exit code 0 means "refused".
fn wasi_refuses(area: &'static str, name: &str, import: &str, call: &str) -> Attack {
    let body = format!("{call} i32.eqz");
    let mut attack =
        wat(area, name, &exits_with(import, &body), Expect::Status(|s| *s == JobStatus::Succeeded, "the call fails"));
    attack.name = name.to_string();
    attack
}

fn attacks() -> Vec<Attack> {
    let mut all = Vec::new();
    for path in [
        "/etc/passwd",
        "/etc/shadow",
        "/proc/self/environ",
        "/proc/self/mem",
        "/proc/self/cmdline",
        "/dev/zero",
        "/sys/kernel/hostname",
        "/root/.ssh/id_rsa",
        "/tmp",
        "../etc/passwd",
        "../../../../etc/passwd",
        "/data/../etc/passwd",
        "/data/persons/../../etc/passwd",
        "/data/persons/./../../../../etc/hostname",
        "/data/persons//../..//etc/passwd",
        "/export/../data/persons/data.arrow",
        "/export/../../etc/passwd",
        "data.arrow",
        "//etc/passwd",
        "/data/persons/data.arrow/../../../..",
        "/data/other/data.arrow",
        "/ringfence-home/state.sqlite",
        "state.sqlite",
    ] {
        all.push(escape("paths: read", &["read", path], Expect::Denied));
    }
    let deep = format!("/data/persons/{}", "../".repeat(300));
    all.push(escape("paths: read", &["read", &deep], Expect::Denied));
    let long = format!("/data/persons/{}", "a/".repeat(3000));
    all.push(escape("paths: read", &["read", &long], Expect::Denied));
    for path in ["/", "/data", "/etc", "/proc", "..", ".", "/export/..", "/data/persons/.."] {
        all.push(escape("paths: list", &["list", path], Expect::Denied));
    }
    for path in [
        "/data/persons/data.arrow",
        "/data/persons/schema.json",
        "/data/persons/new.csv",
        "/data/new.csv",
        "/etc/x",
        "/tmp/x",
        "/x",
        "../x",
        "/export/../x",
        "/export/../data/persons/x",
        "/data/persons/../../x",
        "/proc/self/mem",
        "/export/../../ringfence-home/state.sqlite",
    ] {
        all.push(escape("/data writes and escapes", &["write", path], Expect::Denied));
    }
    for target in [
        "/etc/passwd",
        "../../../etc/passwd",
        "..",
        "/",
        "/data/persons/data.arrow",
        "../data/persons/data.arrow",
        "/export/../..",
        "../../ringfence-home/",
    ] {
        all.push(escape("paths: symlinks planted in /export", &["symlink", target], Expect::Denied));
    }
    for (target, name) in [("/etc/", "link/"), ("../", "up/"), ("/data/persons/", "d/")] {
        all.push(escape("paths: symlinks planted in /export", &["symlink", target, name], Expect::Denied));
    }
    for (from, to) in [
        ("/data/persons/data.arrow", "/export/copy.arrow"),
        ("/data/persons/schema.json", "/export/schema.json"),
        ("/etc/passwd", "/export/passwd"),
        ("/export/../data/persons/data.arrow", "/export/x"),
    ] {
        all.push(escape("paths: hard links planted in /export", &["hardlink", from, to], Expect::Denied));
    }
    for (from, to) in [
        ("/data/persons/data.arrow", "/export/moved.arrow"),
        ("/data/persons/schema.json", "/export/schema.json"),
        ("/export/../data/persons/data.arrow", "/export/x"),
    ] {
        all.push(escape("paths: renames out of /data (RUSTSEC-2026-0188)", &["rename", from, to], Expect::Denied));
    }
    all.push(wasi_refuses(
        "/data writes and escapes",
        "path_open(TRUNCATE) of data.arrow on the read-only /data preopen (RUSTSEC-2026-0149)",
        r#"(import "wasi_snapshot_preview1" "path_open" (func $f (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
           (data (i32.const 120) "data.arrow")"#,
        "i32.const 3 i32.const 0 i32.const 120 i32.const 10 i32.const 8 i64.const 64 i64.const 0 i32.const 0 i32.const 300 call $f",
    ));
    all.push(wat(
        "/data writes and escapes",
        "fd_filestat_set_times with times past the year 2262 (RUSTSEC-2026-0314)",
        &exits_with(
            r#"(import "wasi_snapshot_preview1" "fd_filestat_set_times" (func $f (param i32 i64 i64 i32) (result i32)))"#,
            "i32.const 4 i64.const -1 i64.const 9223372036854775807 i32.const 5 call $f drop i32.const 0",
        ),
        Expect::Status(|s| *s == JobStatus::Succeeded, "an errno, and the host runs on"),
    ));
    all.push(wat(
        "loops",
        "memory.fill of the whole memory, over and over (RUSTSEC-2026-0223)",
        r#"(module (memory (export "memory") 512)
            (func (export "_start") (loop (memory.fill (i32.const 0) (i32.const 7) (i32.const 33554432)) (br 0))))"#,
        CPU_LIMIT,
    ));
    all.push(escape("env and args", &["env"], Expect::Holds(|_, out| out == "env 0 []\n", "no environment variable")));
    all.push(escape(
        "env and args",
        &["stdin"],
        Expect::Holds(|_, out| out == "stdin 0 bytes (ok)\n", "stdin is empty"),
    ));
    for fd in [0, 1, 2, 3, 4, 5, 99] {
        all.push(wasi_refuses(
            "sockets",
            &format!("sock_accept on fd {fd}"),
            r#"(import "wasi_snapshot_preview1" "sock_accept" (func $f (param i32 i32 i32) (result i32)))"#,
            &format!("i32.const {fd} i32.const 0 i32.const 16 call $f"),
        ));
    }
    all.push(wasi_refuses(
        "sockets",
        "sock_recv on fd 3",
        r#"(import "wasi_snapshot_preview1" "sock_recv" (func $f (param i32 i32 i32 i32 i32 i32) (result i32)))"#,
        "i32.const 3 i32.const 0 i32.const 0 i32.const 0 i32.const 16 i32.const 20 call $f",
    ));
    all.push(wasi_refuses(
        "sockets",
        "sock_send on fd 1",
        r#"(import "wasi_snapshot_preview1" "sock_send" (func $f (param i32 i32 i32 i32 i32) (result i32)))"#,
        "i32.const 1 i32.const 0 i32.const 0 i32.const 0 i32.const 16 call $f",
    ));
    all.push(wasi_refuses(
        "sockets",
        "sock_shutdown on fd 4",
        r#"(import "wasi_snapshot_preview1" "sock_shutdown" (func $f (param i32 i32) (result i32)))"#,
        "i32.const 4 i32.const 3 call $f",
    ));
    all.push(wasi_refuses(
        "sleeping",
        "poll_oneoff",
        r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func $f (param i32 i32 i32 i32) (result i32)))"#,
        "i32.const 0 i32.const 64 i32.const 1 i32.const 128 call $f",
    ));
    all.push(escape(
        "sleeping",
        &["sleep"],
        Expect::Status(|s| matches!(s, JobStatus::Trap(_)), "the call fails at once and std aborts the guest"),
    ));
    all.push(wasi_refuses(
        "paths: read",
        "path_open of an absolute path on the /export preopen",
        r#"(import "wasi_snapshot_preview1" "path_open" (func $f (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
        "i32.const 4 i32.const 0 i32.const 100 i32.const 11 i32.const 0 i64.const 2 i64.const 0 i32.const 0 i32.const 300 call $f",
    ));
    all.push(wasi_refuses(
        "env and args",
        "fd_renumber of stdout",
        r#"(import "wasi_snapshot_preview1" "fd_renumber" (func $f (param i32 i32) (result i32)))"#,
        "i32.const 4 i32.const 1 call $f",
    ));
    all.push(wasi_refuses(
        "env and args",
        "fd_close of stderr",
        r#"(import "wasi_snapshot_preview1" "fd_close" (func $f (param i32) (result i32)))"#,
        "i32.const 2 call $f",
    ));
    all.push(escape(
        "clocks and random",
        &["time"],
        Expect::Holds(|_, out| out.starts_with("wall_subsec_nanos 0 "), "wall clock in whole seconds"),
    ));
    all.push(wat(
        "clocks and random",
        "clock_res_get of every clock is at least a second",
        &exits_with(
            r#"(import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))"#,
            "i32.const 0 i32.const 8 call $res drop i32.const 1 i32.const 16 call $res drop
             (i64.load (i32.const 8)) i64.const 1000000000 i64.lt_u
             (i64.load (i32.const 16)) i64.const 1000000000 i64.lt_u i32.or",
        ),
        Expect::Status(|s| *s == JobStatus::Succeeded, "both at least 1 s"),
    ));
    for args in [
        &["export-bytes", "10485760"][..],
        &["export-files", "50"],
        &["unlink-write", "4194304"],
        &["pwrite-far", "1073741824"],
        &["set-size", "1073741824"],
        &["deep-dirs", "500"],
        &["deep-dirs", "20"],
        &["long-names", "900"],
    ] {
        all.push(escape("export floods", args, EXPORT_LIMIT));
    }
    let names = all.last_mut().expect("attack");
    (names.limits.export_max_files, names.limits.export_max_bytes) = (1000, 100_000);
    for name in ["\u{1b}[31mred.csv", "a b.csv", "caf\u{e9}.csv", ".hidden!", &"n".repeat(101)] {
        all.push(escape("export names", &["export", name, "x"], NOTHING_EXPORTED));
    }
    for name in ["../out.csv", "sub/x.csv", &"n".repeat(300)] {
        all.push(escape("export names", &["export", name, "x"], Expect::Denied));
    }
    all.push(escape(
        "stdout/stderr floods",
        &["stdout", "3000000"],
        Expect::Holds(|r, _| r.stdout.truncated && r.stdout.captured_bytes == 1 << 20, "captured up to the cap"),
    ));
    all.push(escape(
        "stdout/stderr floods",
        &["stderr", "3000000"],
        Expect::Holds(|r, _| r.stderr.truncated && r.stderr.captured_bytes == 1 << 20, "captured up to the cap"),
    ));
    all.push(escape("memory", &["alloc"], MEMORY_LIMIT));
    all.push(wat(
        "memory",
        "memory.grow past the limit",
        r#"(module (memory (export "memory") 1) (func (export "_start") (drop (memory.grow (i32.const 2000)))))"#,
        MEMORY_LIMIT,
    ));
    all.push(wat(
        "memory",
        "initial memory above the limit",
        r#"(module (memory (export "memory") 2000) (func (export "_start")))"#,
        MEMORY_LIMIT,
    ));
    all.push(wat(
        "memory",
        "table.grow to 50 million entries (refused: it returns -1)",
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1) (table 1 funcref)
            (func (export "_start")
              (call $exit (i32.ne (table.grow (ref.null func) (i32.const 50000000)) (i32.const -1)))))"#,
        Expect::Status(|s| *s == JobStatus::Succeeded, "the growth is refused"),
    ));
    all.push(wat(
        "memory",
        "a table declared with 50 million entries",
        r#"(module (memory (export "memory") 1) (table 50000000 funcref) (func (export "_start")))"#,
        Expect::Status(|s| matches!(s, JobStatus::Trap(_)), "instantiation fails"),
    ));
    all.push(wat(
        "memory",
        "two memories",
        r#"(module (memory (export "memory") 1) (memory 1) (func (export "_start")))"#,
        Expect::Refused,
    ));
    all.push(escape(
        "recursion",
        &["recurse"],
        Expect::Status(
            |s| matches!(s, JobStatus::Trap(kind) if kind == "stack_overflow" || kind == "memory_out_of_bounds"),
            "traps: its shadow stack or the wasm stack overflows",
        ),
    ));
    all.push(wat(
        "recursion",
        "a function that calls itself",
        r#"(module (memory (export "memory") 1) (func $f (call $f)) (func (export "_start") (call $f)))"#,
        STACK_OVERFLOW,
    ));
    all.push(escape("loops", &["spin"], CPU_LIMIT));
    all.push(wat(
        "loops",
        "an empty loop, no host calls",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
        CPU_LIMIT,
    ));
    all.push(wat(
        "loops",
        "a loop of clock calls",
        r#"(module (import "wasi_snapshot_preview1" "clock_time_get" (func $t (param i32 i64 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") (loop (drop (call $t (i32.const 0) (i64.const 1) (i32.const 8))) (br 0))))"#,
        CPU_LIMIT,
    ));
    all.push(wat(
        "loops",
        "a loop of stdout writes",
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1) (data (i32.const 0) "\08\00\00\00\04\00\00\00xxxx")
            (func (export "_start") (loop (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64))) (br 0))))"#,
        CPU_LIMIT,
    ));
    all.push(wat(
        "loops",
        "an endless start function",
        r#"(module (memory (export "memory") 1) (func $s (loop (br 0))) (start $s) (func (export "_start")))"#,
        CPU_LIMIT,
    ));
    all.push(wat(
        "loops",
        "a loop of random_get",
        r#"(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") (loop (drop (call $r (i32.const 0) (i32.const 65536))) (br 0))))"#,
        CPU_LIMIT,
    ));
    for (name, text) in [
        ("shared memory", r#"(module (memory (export "memory") 1 1 shared) (func (export "_start")))"#),
        (
            "an import from another module",
            r#"(module (import "env" "f" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
        ),
        (
            "a preview-0 import",
            r#"(module (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1) (func (export "_start")))"#,
        ),
        (
            "a host function that does not exist",
            r#"(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32))) (memory (export "memory") 1) (func (export "_start")))"#,
        ),
        ("64-bit memory", r#"(module (memory (export "memory") i64 1) (func (export "_start")))"#),
        ("no _start", r#"(module (memory (export "memory") 1) (func (export "main")))"#),
        (
            "a _start that takes arguments",
            r#"(module (memory (export "memory") 1) (func (export "_start") (param i32)))"#,
        ),
    ] {
        all.push(wat("unsupported features and bad modules", name, text, Expect::Refused));
    }
    let valid = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).expect("wat");
    for (name, bytes) in [
        ("an empty file", Vec::new()),
        ("the magic number only", b"\0asm".to_vec()),
        ("garbage", b"MZ\x90\x00 not a module at all".to_vec()),
        ("a truncated module", valid[..valid.len() - 3].to_vec()),
        ("a component", b"\0asm\x0d\x00\x01\x00".to_vec()),
    ] {
        all.push(Attack {
            area: "unsupported features and bad modules",
            name: name.to_string(),
            guest: Guest::Bytes(bytes),
            limits: small(),
            expect: Expect::Refused,
        });
    }
    all
}

/// What happened: the status and first stdout line, or the refusal.
struct Observed {
    text: String,
    ok: bool,
}

/// The expected `region_counts.csv` of the fixture.
fn expected_region_counts() -> String {
    let csv = std::fs::read_to_string(common::persons_csv()).expect("persons.csv");
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        *counts.entry(line.split(',').nth(1).expect("region")).or_default() += 1;
    }
    let mut table = String::from("region,persons\n");
    for (region, count) in &counts {
        table.push_str(&format!("{region},{count}\n"));
    }
    table
}

fn run(attack: &Attack, escape_wasm: &[u8], well_behaved: &[u8], expected_table: &str) -> Observed {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, catalog, _) = common::home_with_persons(dir.path());
    let policy = common::write_policy(dir.path(), attack.limits);
    let policy = Policy::load(&policy, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
    let (wasm, args) = match &attack.guest {
        Guest::Escape(args) => (escape_wasm.to_vec(), args.clone()),
        Guest::Wat(text) => (wat::parse_str(text).unwrap_or_else(|e| panic!("{}: {e}", attack.name)), Vec::new()),
        Guest::Bytes(bytes) => (bytes.clone(), Vec::new()),
    };
    let observed = attempt(&home, &catalog, &policy, &wasm, &args, attack.expect);
    let request =
        JobRequest { policy: &policy, user: "alice", module: ModuleSource::Submitted(well_behaved), args: &[] };
    let after =
        job::run(&home, &catalog, common::sandbox(), &request, common::today()).expect("the host still runs jobs");
    let table = std::fs::read_to_string(home.job_dir(&after.id).join("exports/region_counts.csv")).unwrap_or_default();
    let healthy = after.status == JobStatus::Succeeded && table == expected_table;
    Observed { text: observed.text, ok: observed.ok && healthy }
}

fn attempt(home: &Home, catalog: &Catalog, policy: &Policy, wasm: &[u8], args: &[String], expect: Expect) -> Observed {
    let request = JobRequest { policy, user: "alice", module: ModuleSource::Submitted(wasm), args };
    let record = match job::run(home, catalog, common::sandbox(), &request, common::today()) {
        Ok(record) => record,
        Err(err) => {
            let text = format!("refused: {}", err.to_string().lines().next().unwrap_or(""));
            return Observed { ok: matches!(expect, Expect::Refused) && err.is_bad_input(), text };
        }
    };
    let stdout = String::from_utf8_lossy(&std::fs::read(home.job_dir(&record.id).join("stdout")).unwrap_or_default())
        .into_owned();
    let first = stdout.lines().next().unwrap_or("").chars().take(90).collect::<String>();
    let text = format!("{}{}", record.status, if first.is_empty() { String::new() } else { format!("; {first}") });
    let ok = match expect {
        Expect::Denied => record.status == JobStatus::Succeeded && stdout.starts_with("DENIED"),
        Expect::Status(holds, _) => holds(&record.status) && record.exports.iter().all(|e| e.name == "manifest.json"),
        Expect::Refused => false,
        Expect::Holds(holds, _) => record.status == JobStatus::Succeeded && holds(&record, &stdout),
    };
    Observed { text, ok }
}

fn expected_text(expect: Expect) -> &'static str {
    match expect {
        Expect::Denied => "refused (DENIED), job succeeds",
        Expect::Status(_, what) | Expect::Holds(_, what) => what,
        Expect::Refused => "module refused before it runs",
    }
}

/// Table cells: no pipes, no line breaks, control characters visible.
fn cell(text: &str) -> String {
    let shown = ringfence::untrusted::shown(text).replace('|', "\\|");
    if shown.chars().count() > 80 { format!("{}…", shown.chars().take(80).collect::<String>()) } else { shown }
}

#[test]
fn every_attack_in_the_table_fails_and_the_host_keeps_working() {
    let attacks = attacks();
    assert!(attacks.len() >= 100, "{} attacks", attacks.len());
    let escape_wasm = std::fs::read(common::guest("escape")).expect("escape guest");
    let well_behaved = std::fs::read(common::guest("region-counts")).expect("region-counts guest");
    let expected_table = expected_region_counts();
    let mut table = String::from(
        "# The escape table\n\nWritten by `tests/escapes.rs` (`cargo test -p ringfence --test escapes`): each row is a \
         hostile guest that the test runs, what must happen, and what did. After every row the same sandbox ran a \
         well-behaved analysis and its output was exactly right.\n\n| # | area | attack | must | observed |\n|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for (i, attack) in attacks.iter().enumerate() {
        let observed = run(attack, &escape_wasm, &well_behaved, &expected_table);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            attack.area,
            cell(&attack.name),
            expected_text(attack.expect),
            cell(&observed.text)
        );
        if !observed.ok {
            failures.push(format!(
                "#{} {}: {}",
                i + 1,
                attack.name.chars().take(80).collect::<String>(),
                observed.text
            ));
        }
    }
    let _ = writeln!(table, "\n{} attacks, {} held.", attacks.len(), attacks.len() - failures.len());
    std::fs::write(common::root().join("tests/ESCAPES.md"), &table).expect("write tests/ESCAPES.md");
    assert!(failures.is_empty(), "attacks that got through:\n{}", failures.join("\n"));
}
