//! The sandbox: runs one WebAssembly module with exactly what a project's policy grants.
//!
//! The only inputs are a module, a validated policy's [`Limits`], the data directories its
//! grants resolve to and the job's arguments; the only output is a [`JobOutcome`]. Nothing outside this module touches wasmtime types.
//!
//! What a guest gets (and nothing more):
//! - each granted dataset, read-only, at `/data/<mount>/`;
//! - an empty, writable `/export/`, capped in bytes and entries;
//! - its arguments; no environment variables, an empty stdin, no sockets;
//! - stdout and stderr captured into memory, capped;
//! - clocks at the policy's resolution;
//! - memory, CPU time and wall-clock time up to the policy's limits, a fixed wasm stack.

mod cache;
mod capture;
mod clock;
mod guard;
mod limits;
mod outcome;
mod ticker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::policy::Limits;

pub use cache::CacheOutcome;
pub use capture::{CapturedOutput, OutputSummary};
pub use limits::LimitExceeded;
pub use outcome::{GuestModule, JobOutcome, JobStatus, UnknownStatus};

/// Most wasm stack a guest may use. Deep recursion ends as `trap: stack_overflow` well before
/// the host thread's own stack is at risk.
const MAX_WASM_STACK: usize = 1 << 20;

/// The name a guest sees as `argv[0]`.
const GUEST_PROGRAM_NAME: &str = "analysis.wasm";

/// A host directory the guest sees, read-only, at `/data/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMount {
    /// The directory name under `/data/`.
    pub name: String,
    /// The host directory (a catalog projection).
    pub host_dir: std::path::PathBuf,
}

/// Why the host could not run a job (as opposed to the guest failing, which is a
/// [`JobStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The submitted bytes are not a core WebAssembly module ringfence can run.
    #[error("{0}")]
    InvalidModule(String),
    /// The engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// A granted directory could not be opened for the guest.
    #[error("cannot give the guest {guest_path}: {reason}")]
    Mount {
        /// Where the guest would have seen it.
        guest_path: String,
        /// Why it failed.
        reason: String,
    },
    /// The module cache could not be created.
    #[error("cannot open the module cache at {path}: {source}")]
    Cache {
        /// The cache directory.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Per-store state: the guest's WASI context and everything the host tracks about the job.
pub(crate) struct JobState {
    wasi: WasiP1Ctx,
    limiter: limits::JobLimiter,
    deadlines: limits::Deadlines,
    export: guard::ExportBudget,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

/// One engine, its WASI linker, its epoch ticker and its module cache; shared by every job of
/// a process.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<JobState>,
    cache: cache::ModuleCache,
    /// Modules this process has already checked and linked, by SHA-256: a job of a module
    /// that ran before starts without reading, verifying and deserializing its cache entry.
    loaded: Mutex<HashMap<String, InstancePre<JobState>>>,
    _ticker: ticker::EpochTicker,
}

/// Linked modules kept in memory (each holds its compiled code, a few MB).
const MAX_LOADED: usize = 16;

impl Sandbox {
    /// Sets up the engine, with compiled modules cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<Sandbox, SandboxError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(MAX_WASM_STACK);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Deny by default here too: proposals a wasm32-wasip1 analysis has no use for stay off
        // (threads and shared memory are not compiled in at all).
        config.wasm_memory64(false);
        config.wasm_multi_memory(false);
        let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut JobState| &mut state.wasi)
            .and_then(|()| guard::add_to_linker(&mut linker))
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let cache = cache::ModuleCache::new(cache_dir, &engine)
            .map_err(|source| SandboxError::Cache { path: cache_dir.to_path_buf(), source })?;
        let ticker = ticker::EpochTicker::start(&engine).map_err(|e| SandboxError::Engine(e.to_string()))?;
        Ok(Sandbox { engine, linker, cache, loaded: Mutex::new(HashMap::new()), _ticker: ticker })
    }

    /// Checks that `wasm` is a core module ringfence can run (a `_start` command importing only
    /// WASI preview 1) and compiles it, or loads it from the cache.
    pub fn load_module(&self, wasm: &[u8]) -> Result<GuestModule, SandboxError> {
        let started = Instant::now();
        if wasmtime::wasmparser::Parser::is_component(wasm) {
            return Err(SandboxError::InvalidModule(
                "this is a WebAssembly component; ringfence runs core modules built for wasm32-wasip1".into(),
            ));
        }
        let sha256 = hex::encode(Sha256::digest(wasm));
        if let Some(module) = self.loaded_since(&sha256, started) {
            return Ok(module);
        }
        let (cached, found_corrupt) = self.cache.load(&self.engine, &sha256);
        let (module, cache) = match cached {
            Some(module) => (module, CacheOutcome::Hit),
            None => {
                let module = Module::new(&self.engine, wasm)
                    .map_err(|e| SandboxError::InvalidModule(format!("not a valid WebAssembly module: {e:#}")))?;
                let outcome = if found_corrupt { CacheOutcome::Rebuilt } else { CacheOutcome::Miss };
                if let Err(e) = self.cache.store(&module, &sha256) {
                    tracing::warn!(error = %e, "could not store the compiled module in the cache");
                }
                (module, outcome)
            }
        };
        let pre = self.check_interface(&module)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if loaded.len() >= MAX_LOADED {
            loaded.clear();
        }
        loaded.insert(sha256.clone(), pre.clone());
        Ok(GuestModule { pre, sha256, cache, load_time: started.elapsed() })
    }

    /// The module with SHA-256 `sha256`, if this sandbox has it loaded: a job whose module was
    /// checked and hashed when it was submitted starts without reading or hashing it again.
    pub fn loaded_module(&self, sha256: &str) -> Option<GuestModule> {
        self.loaded_since(sha256, Instant::now())
    }

    fn loaded_since(&self, sha256: &str, started: Instant) -> Option<GuestModule> {
        let loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.get(sha256).map(|pre| GuestModule {
            pre: pre.clone(),
            sha256: sha256.to_string(),
            cache: CacheOutcome::Memory,
            load_time: started.elapsed(),
        })
    }

    /// Refuses modules that import anything but WASI preview 1 or that are not commands, and
    /// links the others.
    fn check_interface(&self, module: &Module) -> Result<InstancePre<JobState>, SandboxError> {
        if let Some(import) = module.imports().find(|i| i.module() != "wasi_snapshot_preview1") {
            return Err(SandboxError::InvalidModule(format!(
                "the module imports {}::{}; ringfence provides only wasi_snapshot_preview1",
                import.module(),
                import.name()
            )));
        }
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|e| SandboxError::InvalidModule(format!("the module cannot be linked: {e:#}")))?;
        match module.get_export("_start").and_then(|e| e.func().cloned()) {
            Some(ty) if ty.params().len() == 0 && ty.results().len() == 0 => Ok(pre),
            _ => Err(SandboxError::InvalidModule(
                "the module has no `_start` function; build it as a command for wasm32-wasip1".into(),
            )),
        }
    }

    /// Runs `module` with `args` under `limits`, giving it each of `mounts` read-only and
    /// `export_dir` (which must exist and be empty) as `/export/`. Guest failures, including
    /// limits, are a [`JobStatus`] in the outcome; only host-side problems are errors.
    pub fn run(
        &self,
        module: &GuestModule,
        limits: &Limits,
        mounts: &[DataMount],
        args: &[String],
        export_dir: &Path,
    ) -> Result<JobOutcome, SandboxError> {
        let limits = *limits;
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&[GUEST_PROGRAM_NAME])
            .args(args)
            .allow_blocking_current_thread(true)
            .wall_clock(clock::CoarseWallClock { resolution: limits.clock_resolution })
            .monotonic_clock(clock::CoarseMonotonicClock {
                resolution: limits.clock_resolution,
                start: Instant::now(),
            });
        for mount in mounts {
            let guest_path = format!("/data/{}", mount.name);
            wasi.preopened_dir(&mount.host_dir, &guest_path, FsPerms::ReadOnly)
                .map_err(|e| SandboxError::Mount { guest_path, reason: format!("{e:#}") })?;
        }
        wasi.preopened_dir(export_dir, "/export", FsPerms::ReadWrite)
            .map_err(|e| SandboxError::Mount { guest_path: "/export".into(), reason: format!("{e:#}") })?;

        let state = JobState {
            wasi: wasi.build_p1(),
            limiter: limits::JobLimiter::new(limits.memory_bytes),
            deadlines: limits::Deadlines::start(limits.cpu, limits.wall),
            export: guard::ExportBudget::new(export_dir, limits.export_max_bytes, limits.export_max_files),
            stdout: CapturedOutput::new(limits.output_max_bytes),
            stderr: CapturedOutput::new(limits.output_max_bytes),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| ctx.data().deadlines.on_tick());

        let result = module
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        let (status, detail) = match result {
            Ok(()) => (JobStatus::Succeeded, None),
            Err(err) => {
                let status = JobStatus::from_error(&err);
                let detail = matches!(status, JobStatus::Trap(_)).then(|| format!("{err:?}"));
                (status, detail)
            }
        };
        let state = store.into_data();
        Ok(JobOutcome {
            status,
            detail,
            duration: state.deadlines.wall_used(),
            cpu_time: state.deadlines.cpu_used(),
            peak_memory_bytes: state.limiter.peak_memory as u64,
            stdout: state.stdout,
            stderr: state.stderr,
        })
    }
}
