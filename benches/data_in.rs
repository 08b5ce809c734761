//! Data into the guest: a 1 GiB file in a mounted data directory read into guest memory 1 MiB
//! at a time (as the SDK's reader does) by a WAT guest calling WASI's `fd_read` through
//! ringfence's read-only mount, against the same reads natively in this process. Reported as
//! bytes per second.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringfence::sandbox::{DataMount, JobStatus, Sandbox};

const SIZE: usize = 1 << 30;
/// Bytes per read call, as the SDK's buffered reader asks for.
const CHUNK: usize = 1 << 20;

/// Opens `/data/big/data.arrow` (preopen 3), reads it 1 MiB at a time into linear memory and
/// exits 0 if it got exactly 1 GiB.
const READER: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 17)
  (data (i32.const 16) "data.arrow")
  (func (export "_start")
    (local $n i32) (local $total i64)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 10) (i32.const 0)
                         (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8))
      (then (call $exit (i32.const 2))))
    (i32.store (i32.const 32) (i32.const 65536))
    (i32.store (i32.const 36) (i32.const 1048576))
    (loop $read
      (if (call $fd_read (i32.load (i32.const 8)) (i32.const 32) (i32.const 1) (i32.const 40))
        (then (call $exit (i32.const 3))))
      (local.set $n (i32.load (i32.const 40)))
      (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (local.get $n))))
      (br_if $read (local.get $n)))
    (if (i64.ne (local.get $total) (i64.const 1073741824)) (then (call $exit (i32.const 4))))))"#;

fn data_in(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let file = data.join("data.arrow");
    let pattern: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &pattern).expect("1 GiB file");
    drop(pattern);
    let wasm = wat::parse_str(READER).expect("reader guest");
    let sandbox = Sandbox::new(&dir.path().join("cache")).expect("sandbox");
    let module = sandbox.load_module(&wasm).expect("module");
    let limits = common::limits(64 << 20);
    let mounts = [DataMount { name: "big".into(), host_dir: data.clone() }];

    let mut group = c.benchmark_group("data_into_guest_1gib");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("ringfence_guest_read", |b| {
        b.iter(|| {
            let export = tempfile::tempdir().expect("export dir");
            let outcome = sandbox.run(&module, &limits, &mounts, &[], export.path()).expect("run");
            assert_eq!(outcome.status, JobStatus::Succeeded, "the guest read exactly 1 GiB");
        })
    });
    let mut buffer = vec![0u8; CHUNK];
    group.bench_function("native_read", |b| {
        b.iter(|| {
            let mut reader = std::fs::File::open(&file).expect("open");
            let mut total = 0;
            loop {
                match std::io::Read::read(&mut reader, &mut buffer).expect("read") {
                    0 => break,
                    n => total += n,
                }
            }
            assert_eq!(total, SIZE);
        })
    });
    group.finish();
}

criterion_group!(benches, data_in);
criterion_main!(benches);
