//! Starting a job, for the `crosstab` analysis (1.8 MB of wasm): compiling it (module not in
//! the cache), loading it from the module cache file (a new process), finding it already
//! loaded (a process that ran it before), and from there to a guest that has run its `_start`
//! (hash the submission, instantiate, WASI set-up, the Rust runtime's start-up, exit); and a
//! queued job's start, which names its module by the SHA-256 taken at submission and so skips
//! the hash; against starting the same analysis as a native process. Prints the module cache's size. A second
//! group compares wasmtime's default instance allocator with its pooling allocator.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ringfence::sandbox::Sandbox;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn job_start(c: &mut Criterion) {
    let wasm = common::guest("crosstab");
    let native = common::root().join("target/release/crosstab");
    assert!(native.exists(), "{} is missing (scripts/bench builds it)", native.display());
    let cache = tempfile::tempdir().expect("cache dir");
    let sandbox = Sandbox::new(cache.path()).expect("sandbox");
    sandbox.load_module(&wasm).expect("module");
    println!("module cache: {} bytes for a {}-byte module", dir_size(cache.path()), wasm.len());

    let mut group = c.benchmark_group("job_start");
    group.sample_size(10);
    // A new sandbox stands for a new process, with nothing loaded in memory.
    let load_in_new_sandbox = |cache_dir: &Path| {
        let fresh = Sandbox::new(cache_dir).expect("sandbox");
        let started = Instant::now();
        fresh.load_module(&wasm).expect("load");
        started.elapsed()
    };
    group.bench_function("compile_uncached", |b| {
        b.iter_custom(|n| (0..n).map(|_| load_in_new_sandbox(tempfile::tempdir().expect("dir").path())).sum())
    });
    group.sample_size(50);
    group.bench_function("load_from_cache_file", |b| {
        b.iter_custom(|n| (0..n).map(|_| load_in_new_sandbox(cache.path())).sum())
    });
    group.bench_function("load_in_memory", |b| b.iter(|| sandbox.load_module(&wasm).expect("loaded")));
    let export = tempfile::tempdir().expect("export dir");
    group.bench_function("cached_to_started", |b| {
        b.iter(|| {
            let module = sandbox.load_module(&wasm).expect("cached");
            sandbox.run(&module, &common::limits(256 << 20), &[], &[], export.path()).expect("run")
        })
    });
    // A queued job: its module was checked and hashed when it was submitted, and the job names
    // it by that SHA-256.
    let sha256 = sandbox.load_module(&wasm).expect("loaded").sha256;
    group.bench_function("queued_to_started", |b| {
        b.iter(|| {
            let module = sandbox.loaded_module(&sha256).expect("loaded");
            sandbox.run(&module, &common::limits(256 << 20), &[], &[], export.path()).expect("run")
        })
    });
    group.bench_function("native_process", |b| {
        b.iter(|| Command::new(&native).env_clear().output().expect("native crosstab"))
    });
    group.finish();
}

/// The guest linked on an engine with `strategy`, ready to instantiate.
fn linked(wasm: &[u8], strategy: InstanceAllocationStrategy) -> (Engine, InstancePre<WasiP1Ctx>) {
    let mut config = Config::new();
    config.epoch_interruption(true).allocation_strategy(strategy);
    let engine = Engine::new(&config).expect("engine");
    let module = Module::new(&engine, wasm).expect("compile");
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("wasi");
    let pre = linker.instantiate_pre(&module).expect("link");
    (engine, pre)
}

/// Instantiates and runs `_start` once (the guest stops at once: it has no data).
fn start_once(engine: &Engine, pre: &InstancePre<WasiP1Ctx>) {
    let mut store = Store::new(engine, WasiCtxBuilder::new().build_p1());
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = pre.instantiate(&mut store).expect("instantiate");
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").expect("_start");
    let _exit_code = start.call(&mut store, ());
}

/// Instantiation alone, with wasmtime's default allocator (what ringfence uses) against its
/// pooling allocator (pre-reserved slots, memory images mapped copy-on-write).
fn allocators(c: &mut Criterion) {
    let wasm = common::guest("crosstab");
    let (on_demand_engine, on_demand) = linked(&wasm, InstanceAllocationStrategy::OnDemand);
    let mut pooling = PoolingAllocationConfig::default();
    pooling.total_core_instances(8).total_memories(8).total_tables(8).max_memory_size(1 << 30);
    let (pooling_engine, pooled) = linked(&wasm, InstanceAllocationStrategy::Pooling(pooling));
    let mut group = c.benchmark_group("instantiate_to_started");
    group.bench_function("on_demand", |b| b.iter(|| start_once(&on_demand_engine, &on_demand)));
    group.bench_function("pooling", |b| b.iter(|| start_once(&pooling_engine, &pooled)));
    group.finish();
}

criterion_group!(benches, job_start, allocators);
criterion_main!(benches);
