//! Guarded WASI calls: the few preview-1 functions ringfence wraps around wasmtime-wasi's own.
//!
//! wasmtime-wasi grants file-system access per directory but has no notion of a quota, of
//! standard streams that must stay pipes, or of a guest that should not sleep. Each guarded
//! call shadows the WASI import of the same name; where it proceeds, it calls wasmtime-wasi's
//! original implementation, so path resolution and permissions stay wasmtime-wasi's.
//!
//! - Writes to fds 1 and 2 go straight into the job's [`CapturedOutput`] buffers.
//! - Fds 0–2 can be neither closed nor renumbered, so no export file can take their place and
//!   escape the export accounting.
//! - Every call that can grow `/export/` is checked before it runs (for the bytes it asks to
//!   write) and after (by measuring the directory), so the guest stops with
//!   [`LimitExceeded::Export`] at the call that crosses a limit.
//! - `poll_oneoff` (sleeping, waiting on fds) is refused: an analysis has nothing to wait for,
//!   and a guest blocked in the host could not be interrupted by the epoch deadline.
//!
//! [`CapturedOutput`]: super::capture::CapturedOutput

use std::path::{Path, PathBuf};

use wasmtime::{Caller, Extern, Func, Linker, Store, Val};

use super::JobState;
use super::limits::LimitExceeded;

const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// `errno` values from `wasi_snapshot_preview1.witx`.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOTSUP: i32 = 58;
}

/// Most iovecs one write may pass; wasi-libc's `IOV_MAX`.
const MAX_IOVECS: u32 = 1024;

/// The WASI functions ringfence wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarded {
    FdWrite,
    FdPwrite,
    FdFilestatSetSize,
    FdAllocate,
    FdClose,
    FdRenumber,
    PathOpen,
    PathCreateDirectory,
    PathRemoveDirectory,
    PathUnlinkFile,
    PathSymlink,
    PathLink,
    PathRename,
    PollOneoff,
}

impl Guarded {
    const ALL: [Guarded; 14] = [
        Guarded::FdWrite,
        Guarded::FdPwrite,
        Guarded::FdFilestatSetSize,
        Guarded::FdAllocate,
        Guarded::FdClose,
        Guarded::FdRenumber,
        Guarded::PathOpen,
        Guarded::PathCreateDirectory,
        Guarded::PathRemoveDirectory,
        Guarded::PathUnlinkFile,
        Guarded::PathSymlink,
        Guarded::PathLink,
        Guarded::PathRename,
        Guarded::PollOneoff,
    ];

    fn name(self) -> &'static str {
        match self {
            Guarded::FdWrite => "fd_write",
            Guarded::FdPwrite => "fd_pwrite",
            Guarded::FdFilestatSetSize => "fd_filestat_set_size",
            Guarded::FdAllocate => "fd_allocate",
            Guarded::FdClose => "fd_close",
            Guarded::FdRenumber => "fd_renumber",
            Guarded::PathOpen => "path_open",
            Guarded::PathCreateDirectory => "path_create_directory",
            Guarded::PathRemoveDirectory => "path_remove_directory",
            Guarded::PathUnlinkFile => "path_unlink_file",
            Guarded::PathSymlink => "path_symlink",
            Guarded::PathLink => "path_link",
            Guarded::PathRename => "path_rename",
            Guarded::PollOneoff => "poll_oneoff",
        }
    }

    /// Whether a successful call may change what is under `/export/`.
    fn changes_files(self) -> bool {
        !matches!(self, Guarded::FdClose | Guarded::FdRenumber | Guarded::PollOneoff)
    }
}

/// How much of the export allowance a job has used, as last measured.
pub(super) struct ExportBudget {
    dir: PathBuf,
    max_bytes: u64,
    max_entries: u64,
    used_bytes: u64,
    used_entries: u64,
}

impl ExportBudget {
    pub(super) fn new(dir: &Path, max_bytes: u64, max_entries: u64) -> Self {
        ExportBudget { dir: dir.to_path_buf(), max_bytes, max_entries, used_bytes: 0, used_entries: 0 }
    }

    /// Refuses a write of `bytes` that would take the export past its byte limit.
    fn admit(&self, bytes: u64) -> Result<(), LimitExceeded> {
        if self.used_bytes.saturating_add(bytes) > self.max_bytes {
            return Err(LimitExceeded::Export);
        }
        Ok(())
    }

    /// Measures the export directory again and stops the guest if it is over a limit.
    fn remeasure(&mut self) -> wasmtime::Result<()> {
        let (bytes, entries) = measure(&self.dir)?;
        self.used_bytes = bytes;
        self.used_entries = entries;
        if bytes > self.max_bytes || entries > self.max_entries {
            return Err(LimitExceeded::Export.into());
        }
        Ok(())
    }
}

/// Apparent size of all files and number of entries (files, directories, links) under `dir`.
/// Apparent size, not disk usage: a sparse file counts at its full length.
fn measure(dir: &Path) -> std::io::Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut entries = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            entries += 1;
            if meta.is_file() {
                bytes = bytes.saturating_add(meta.len());
            }
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok((bytes, entries))
}

/// Replaces the guarded WASI functions in `linker` (a per-job clone of the WASI linker) with
/// their guarded versions, each bound to the original as instantiated in `store`.
pub(super) fn shadow(linker: &mut Linker<JobState>, store: &mut Store<JobState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for op in Guarded::ALL {
        let Extern::Func(original) = linker.get(&mut *store, WASI_MODULE, op.name())? else {
            return Err(wasmtime::format_err!("wasmtime-wasi does not define {}", op.name()));
        };
        let ty = original.ty(&*store);
        linker.func_new(WASI_MODULE, op.name(), ty, move |mut caller, params, results| {
            guarded_call(op, &original, &mut caller, params, results)
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

fn guarded_call(
    op: Guarded,
    original: &Func,
    caller: &mut Caller<'_, JobState>,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let fd = arg_i32(params, 0);
    let is_stdio = (0..=2).contains(&fd);
    match op {
        Guarded::PollOneoff => return set_errno(results, errno::NOTSUP),
        Guarded::FdClose if is_stdio => return set_errno(results, errno::NOTSUP),
        Guarded::FdRenumber if is_stdio || (0..=2).contains(&arg_i32(params, 1)) => {
            return set_errno(results, errno::NOTSUP);
        }
        Guarded::FdWrite if fd == 1 || fd == 2 => return capture_stdio(caller, params, results),
        Guarded::FdWrite | Guarded::FdPwrite if !is_stdio => {
            let requested = match requested_bytes(caller, params) {
                Ok(bytes) => bytes,
                Err(code) => return set_errno(results, code),
            };
            caller.data().export.admit(requested)?;
        }
        Guarded::FdFilestatSetSize => caller.data().export.admit(arg_u64(params, 1))?,
        Guarded::FdAllocate => {
            caller.data().export.admit(arg_u64(params, 1).saturating_add(arg_u64(params, 2)))?;
        }
        _ => {}
    }
    original.call(&mut *caller, params, results)?;
    if op.changes_files() && results.first().and_then(Val::i32) == Some(errno::SUCCESS) {
        caller.data_mut().export.remeasure()?;
    }
    Ok(())
}

fn arg_i32(params: &[Val], index: usize) -> i32 {
    params.get(index).and_then(Val::i32).unwrap_or(-1)
}

/// An `i64` size or offset argument; negative values (invalid for WASI anyway) count as huge.
fn arg_u64(params: &[Val], index: usize) -> u64 {
    params.get(index).and_then(Val::i64).map_or(u64::MAX, |v| v as u64)
}

fn set_errno(results: &mut [Val], code: i32) -> wasmtime::Result<()> {
    match results.first_mut() {
        Some(slot) => {
            *slot = Val::I32(code);
            Ok(())
        }
        None => Err(wasmtime::format_err!("guarded WASI call without a result slot")),
    }
}

/// The `(offset, length)` pairs of the iovec array a write passes, read from guest memory.
fn iovecs(memory: &[u8], iovs: i32, iovs_len: i32) -> Result<Vec<(usize, usize)>, i32> {
    let count = u32::try_from(iovs_len).map_err(|_| errno::INVAL)?;
    if count > MAX_IOVECS {
        return Err(errno::INVAL);
    }
    let base = u32::try_from(iovs).map_err(|_| errno::FAULT)? as usize;
    (0..count as usize)
        .map(|i| {
            let at = base + i * 8;
            let word = |offset: usize| -> Result<usize, i32> {
                let bytes = memory.get(at + offset..at + offset + 4).ok_or(errno::FAULT)?;
                Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
            };
            let (ptr, len) = (word(0)?, word(4)?);
            if ptr.checked_add(len).is_none_or(|end| end > memory.len()) {
                return Err(errno::FAULT);
            }
            Ok((ptr, len))
        })
        .collect()
}

fn guest_memory(caller: &mut Caller<'_, JobState>) -> Option<wasmtime::Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

fn requested_bytes(caller: &mut Caller<'_, JobState>, params: &[Val]) -> Result<u64, i32> {
    let memory = guest_memory(caller).ok_or(errno::FAULT)?;
    let iovs = iovecs(memory.data(&*caller), arg_i32(params, 1), arg_i32(params, 2))?;
    Ok(iovs.iter().map(|&(_, len)| len as u64).sum())
}

/// `fd_write(fd, iovs, iovs_len, nwritten)` on stdout or stderr: append to the job's capture
/// buffer and report every byte written.
fn capture_stdio(caller: &mut Caller<'_, JobState>, params: &[Val], results: &mut [Val]) -> wasmtime::Result<()> {
    let Some(memory) = guest_memory(caller) else {
        return set_errno(results, errno::FAULT);
    };
    let stream = arg_i32(params, 0);
    let nwritten_at = arg_i32(params, 3);
    let (data, state) = memory.data_and_store_mut(&mut *caller);
    let iovs = match iovecs(data, arg_i32(params, 1), arg_i32(params, 2)) {
        Ok(iovs) => iovs,
        Err(code) => return set_errno(results, code),
    };
    let out = if stream == 1 { &mut state.stdout } else { &mut state.stderr };
    let mut total = 0usize;
    for (ptr, len) in iovs {
        out.push(&data[ptr..ptr + len]);
        total += len;
    }
    let written = u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes();
    let slot = u32::try_from(nwritten_at).ok().map(|at| at as usize).and_then(|at| data.get_mut(at..at + 4));
    match slot {
        Some(slot) => {
            slot.copy_from_slice(&written);
            set_errno(results, errno::SUCCESS)
        }
        None => set_errno(results, errno::FAULT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iovecs_are_read_and_bounds_checked() {
        let mut memory = vec![0u8; 64];
        memory[0..4].copy_from_slice(&32u32.to_le_bytes());
        memory[4..8].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(iovecs(&memory, 0, 1), Ok(vec![(32, 5)]));
        memory[4..8].copy_from_slice(&40u32.to_le_bytes());
        assert_eq!(iovecs(&memory, 0, 1), Err(errno::FAULT));
        assert_eq!(iovecs(&memory, 60, 1), Err(errno::FAULT));
        assert_eq!(iovecs(&memory, 0, 5000), Err(errno::INVAL));
    }

    #[test]
    fn measure_counts_entries_and_apparent_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), b"12345").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b.txt"), b"xy").expect("write");
        let (bytes, entries) = measure(dir.path()).expect("measure");
        assert_eq!((bytes, entries), (7, 3));
    }
}
