//! What enforcing a CPU limit costs: the same guest (`income-by-region` on 1 M demo rows, read
//! from a catalog projection through WASI) on three wasmtime engines that differ only in how a
//! running guest can be stopped: not at all (the reference), epoch interruption (what
//! ringfence uses: a check at loop heads and calls, a ticker thread advancing the epoch every
//! 10 ms, a callback per tick), and fuel metering (a counter decremented per instruction).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ringfence::catalog::{Catalog, DemoPopulation};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

const ROWS: u64 = 1_000_000;

/// How a running guest can be stopped.
#[derive(Clone, Copy)]
enum Interruption {
    None,
    Epoch,
    Fuel,
}

/// The guest, compiled and linked for one engine configuration.
struct Prepared {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
    interruption: Interruption,
}

fn prepare(wasm: &[u8], interruption: Interruption) -> Prepared {
    let mut config = Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    match interruption {
        Interruption::None => {}
        Interruption::Epoch => {
            config.epoch_interruption(true);
        }
        Interruption::Fuel => {
            config.consume_fuel(true);
        }
    }
    let engine = Engine::new(&config).expect("engine");
    let module = Module::new(&engine, wasm).expect("compile");
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("wasi");
    let pre = linker.instantiate_pre(&module).expect("link");
    Prepared { engine, pre, interruption }
}

impl Prepared {
    /// Runs the guest once over `data`, exporting into `export`.
    fn run(&self, data: &Path, export: &Path) {
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&["analysis"]).allow_blocking_current_thread(true);
        wasi.preopened_dir(data, "/data/persons", FsPerms::ReadOnly).expect("mount data");
        wasi.preopened_dir(export, "/export", FsPerms::ReadWrite).expect("mount export");
        let mut store = Store::new(&self.engine, wasi.build_p1());
        match self.interruption {
            Interruption::None => {}
            Interruption::Epoch => {
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1)));
            }
            Interruption::Fuel => store.set_fuel(u64::MAX).expect("fuel"),
        }
        let instance = self.pre.instantiate(&mut store).expect("instantiate");
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start").expect("_start");
        start.call(&mut store, ()).expect("the analysis succeeds");
    }
}

fn interruption(c: &mut Criterion) {
    let home = tempfile::tempdir().expect("home");
    let catalog = Catalog::open(home.path()).expect("catalog");
    let persons = catalog.generate_demo("persons", DemoPopulation { rows: ROWS, seed: 1 }, &()).expect("demo data");
    let columns = ["region".to_string(), "income".to_string()];
    let projection = catalog.project(&persons, &columns, None, false).expect("projection");
    let wasm = common::guest("income-by-region");
    let export = tempfile::tempdir().expect("export");

    let epoch_engine_ticking = Arc::new(AtomicBool::new(true));
    let mut group = c.benchmark_group("cpu_limit_1m_rows");
    group.sample_size(20);
    for (name, how) in
        [("no_interruption", Interruption::None), ("epoch", Interruption::Epoch), ("fuel", Interruption::Fuel)]
    {
        let prepared = prepare(&wasm, how);
        let ticker = matches!(how, Interruption::Epoch).then(|| {
            let engine = prepared.engine.clone();
            let ticking = Arc::clone(&epoch_engine_ticking);
            std::thread::spawn(move || {
                while ticking.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    engine.increment_epoch();
                }
            })
        });
        group.bench_function(name, |b| b.iter(|| prepared.run(&projection.dir, export.path())));
        if let Some(ticker) = ticker {
            epoch_engine_ticking.store(false, Ordering::Relaxed);
            ticker.join().expect("ticker");
        }
    }
    group.finish();
}

criterion_group!(benches, interruption);
criterion_main!(benches);
