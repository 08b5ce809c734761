//! Guarded WASI calls: the few preview-1 functions ringfence wraps around wasmtime-wasi's own.
//!
//! wasmtime-wasi grants file-system access per directory but has no notion of a quota, of
//! standard streams that must stay pipes, or of a guest that should not sleep. Each guarded
//! call shadows the WASI import of the same name in the linker; where it proceeds, it runs
//! wasmtime-wasi's own implementation of that call (the `wasi_snapshot_preview1` ABI functions
//! wiggle generates) on the guest's memory, so path resolution and permissions stay
//! wasmtime-wasi's. The wasmtime-wasi version is pinned exactly, since those functions are
//! generated code rather than a documented API.
//!
//! - Writes to fds 1 and 2 go straight into the job's [`CapturedOutput`] buffers; the guest
//!   always sees them succeed.
//! - Fds 0–2 can be neither closed nor renumbered, so no export file can take their place and
//!   escape the export accounting.
//! - Every call that can grow `/export/` (or a script's `/tmp`, charged to the same allowance)
//!   is checked before it runs (for the bytes it asks to write) and after (by measuring the
//!   directories), so the guest stops with
//!   [`LimitExceeded::Export`] at the call that crosses a limit. Unlinking a file does not give
//!   its bytes back, nor can writing to a file no longer in the tree escape the count
//!   ([`ExportBudget`]).
//! - `poll_oneoff` (sleeping, waiting on fds) is refused: an analysis has nothing to wait for,
//!   and a guest blocked in the host could not be interrupted by the epoch deadline.
//!
//! [`CapturedOutput`]: super::capture::CapturedOutput

use std::path::{Path, PathBuf};

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};

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

/// What one directory costs in the export allowance, besides its name: a block on disk.
const DIRECTORY_BYTES: u64 = 4096;

/// How much of the export allowance a job has used, over every directory it may write
/// (`/export/`, and a script's `/tmp`). Three parts, none of which a guest can make smaller
/// than what it really holds on the host's disk:
///
/// - the trees of those directories as last measured: every file's apparent size (a sparse file
///   counts at its full length), every name, and a block per directory;
/// - every byte that left the tree by an unlink, a rename over another file or a directory's
///   removal: an open descriptor may still hold it, so it is never refunded;
/// - once anything left the tree, every byte written through any descriptor: it may land in a
///   file no longer in the tree, where measuring cannot see it.
pub(super) struct ExportBudget {
    dirs: Vec<PathBuf>,
    max_bytes: u64,
    max_entries: u64,
    in_tree: u64,
    entries: u64,
    released: u64,
    written_since_release: u64,
}

impl ExportBudget {
    pub(super) fn new(dirs: Vec<PathBuf>, max_bytes: u64, max_entries: u64) -> Self {
        ExportBudget { dirs, max_bytes, max_entries, in_tree: 0, entries: 0, released: 0, written_since_release: 0 }
    }

    /// The bytes charged so far.
    fn charged(&self) -> u64 {
        self.in_tree.saturating_add(self.released).saturating_add(self.written_since_release)
    }

    /// Refuses a write of `bytes` that would take the export past its byte limit.
    fn admit(&self, bytes: u64) -> Result<(), LimitExceeded> {
        if self.charged().saturating_add(bytes) > self.max_bytes {
            return Err(LimitExceeded::Export);
        }
        Ok(())
    }

    /// Charges `bytes` just written through a descriptor, once anything has left the tree.
    fn wrote(&mut self, bytes: u64) {
        if self.released > 0 {
            self.written_since_release = self.written_since_release.saturating_add(bytes);
        }
    }

    /// Measures the writable directories again after a `change` and stops the guest if it is over a
    /// limit. What a removal took out of the tree stays charged; what a truncation freed does not
    /// (the file is still in the tree, its blocks are gone).
    fn remeasure(&mut self, change: Change) -> wasmtime::Result<()> {
        let (mut bytes, mut entries) = (0u64, 0u64);
        for dir in &self.dirs {
            let (dir_bytes, dir_entries) = measure(dir)?;
            bytes = bytes.saturating_add(dir_bytes);
            entries = entries.saturating_add(dir_entries);
        }
        if change == Change::Removal {
            self.released = self.released.saturating_add(self.in_tree.saturating_sub(bytes));
        }
        self.in_tree = bytes;
        self.entries = entries;
        if self.charged() > self.max_bytes || entries > self.max_entries {
            return Err(LimitExceeded::Export.into());
        }
        Ok(())
    }
}

/// What a call did to `/export/`, for [`ExportBudget::remeasure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// It may have taken names out of the tree (unlink, rename over a file, rmdir).
    Removal,
    /// Anything else: creating, writing, truncating.
    Other,
}

/// The bytes `dir`'s tree takes — files' apparent sizes, names, a block per directory — and its
/// number of entries (files, directories, links).
fn measure(dir: &Path) -> std::io::Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut entries = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            entries += 1;
            bytes = bytes.saturating_add(entry.file_name().len() as u64);
            if meta.is_file() {
                bytes = bytes.saturating_add(meta.len());
            }
            if meta.is_dir() {
                bytes = bytes.saturating_add(DIRECTORY_BYTES);
                pending.push(entry.path());
            }
        }
    }
    Ok((bytes, entries))
}

/// Runs wasmtime-wasi's own implementation of preview-1 call `$func` on the guest's memory,
/// exactly as its linker entry would.
macro_rules! wasi_call {
    ($caller:expr, $func:ident($($arg:expr),*)) => {{
        let caller: &mut Caller<'_, JobState> = $caller;
        let fuel = caller.as_context_mut().hostcall_fuel();
        let memory = guest_memory(caller).ok_or_else(|| wasmtime::format_err!("missing required memory export"))?;
        let (bytes, state) = memory.data_and_store_mut(&mut *caller);
        state.wasi.set_hostcall_fuel(fuel);
        let mut memory = wiggle::GuestMemory::Unshared(bytes);
        wasmtime_wasi::runtime::in_tokio(p1::$func(&mut state.wasi, &mut memory, $($arg),*))
    }};
}

/// Shadows `$func` with a version that runs the original, then measures `/export/` if it
/// succeeded, as a change of kind `$change`.
macro_rules! guard_file_call {
    ($linker:expr, $change:expr, $func:ident($($arg:ident: $ty:ty),*)) => {
        $linker.func_wrap(
            WASI_MODULE,
            stringify!($func),
            |mut caller: Caller<'_, JobState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                let code = wasi_call!(&mut caller, $func($($arg),*))?;
                after_file_change(&mut caller, code, $change)
            },
        )?
    };
}

/// Replaces the guarded WASI functions in `linker`, which already holds wasmtime-wasi's
/// preview-1 functions.
pub(super) fn add_to_linker(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI_MODULE,
        "fd_write",
        |mut caller: Caller<'_, JobState>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| -> wasmtime::Result<i32> {
            if fd == 1 || fd == 2 {
                return Ok(capture_stdio(&mut caller, fd, iovs, iovs_len, nwritten));
            }
            let requested = match admit_write(&mut caller, fd, iovs, iovs_len)? {
                Ok(requested) => requested,
                Err(code) => return Ok(code),
            };
            let code = wasi_call!(&mut caller, fd_write(fd, iovs, iovs_len, nwritten))?;
            after_write(&mut caller, code, requested)
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, JobState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         offset: i64,
         nwritten: i32|
         -> wasmtime::Result<i32> {
            let requested = match admit_write(&mut caller, fd, iovs, iovs_len)? {
                Ok(requested) => requested,
                Err(code) => return Ok(code),
            };
            let code = wasi_call!(&mut caller, fd_pwrite(fd, iovs, iovs_len, offset, nwritten))?;
            after_write(&mut caller, code, requested)
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, JobState>, fd: i32, size: i64| -> wasmtime::Result<i32> {
            let grown = u64::try_from(size).unwrap_or(u64::MAX);
            caller.data().export.admit(grown)?;
            let code = wasi_call!(&mut caller, fd_filestat_set_size(fd, size))?;
            after_write(&mut caller, code, grown)
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_close",
        |mut caller: Caller<'_, JobState>, fd: i32| -> wasmtime::Result<i32> {
            if is_stdio(fd) {
                return Ok(errno::NOTSUP);
            }
            wasi_call!(&mut caller, fd_close(fd))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, JobState>, fd: i32, to: i32| -> wasmtime::Result<i32> {
            if is_stdio(fd) || is_stdio(to) {
                return Ok(errno::NOTSUP);
            }
            wasi_call!(&mut caller, fd_renumber(fd, to))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "poll_oneoff",
        |_: Caller<'_, JobState>, _input: i32, _output: i32, _subscriptions: i32, _events: i32| -> i32 {
            errno::NOTSUP
        },
    )?;
    guard_file_call!(linker, Change::Other, path_open(
        fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32,
        rights_base: i64, rights_inheriting: i64, fdflags: i32, opened_fd: i32
    ));
    guard_file_call!(linker, Change::Other, path_create_directory(fd: i32, path: i32, path_len: i32));
    guard_file_call!(linker, Change::Removal, path_remove_directory(fd: i32, path: i32, path_len: i32));
    guard_file_call!(linker, Change::Removal, path_unlink_file(fd: i32, path: i32, path_len: i32));
    guard_file_call!(linker, Change::Other, path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32));
    guard_file_call!(linker, Change::Other, path_link(
        old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32
    ));
    guard_file_call!(linker, Change::Removal, path_rename(
        fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32
    ));
    linker.allow_shadowing(false);
    Ok(())
}

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

/// After a call that may have changed `/export/`: measure it again if the call succeeded.
fn after_file_change(caller: &mut Caller<'_, JobState>, code: i32, change: Change) -> wasmtime::Result<i32> {
    if code == errno::SUCCESS {
        caller.data_mut().export.remeasure(change)?;
    }
    Ok(code)
}

/// After a write of up to `bytes` through a descriptor (or growing a file to `bytes`): charge
/// it, and measure `/export/` again, if the call succeeded.
fn after_write(caller: &mut Caller<'_, JobState>, code: i32, bytes: u64) -> wasmtime::Result<i32> {
    if code == errno::SUCCESS {
        caller.data_mut().export.wrote(bytes);
    }
    after_file_change(caller, code, Change::Other)
}

/// Before a write to a file: stop the guest if the bytes it asks to write would cross the
/// export limit. Returns the bytes asked for, or `Ok(Err(errno))` when the iovecs themselves
/// are invalid.
fn admit_write(
    caller: &mut Caller<'_, JobState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
) -> wasmtime::Result<Result<u64, i32>> {
    if is_stdio(fd) {
        return Ok(Ok(0));
    }
    let Some(memory) = guest_memory(caller) else {
        return Ok(Err(errno::FAULT));
    };
    let requested = match iovecs(memory.data(&*caller), iovs, iovs_len) {
        Ok(iovs) => iovs.iter().fold(0u64, |sum, &(_, len)| sum.saturating_add(len as u64)),
        Err(code) => return Ok(Err(code)),
    };
    caller.data().export.admit(requested)?;
    Ok(Ok(requested))
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

/// `fd_write` on stdout or stderr: append to the job's capture buffer and report every byte
/// written. Returns the errno.
fn capture_stdio(caller: &mut Caller<'_, JobState>, stream: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let Some(memory) = guest_memory(caller) else {
        return errno::FAULT;
    };
    let (data, state) = memory.data_and_store_mut(&mut *caller);
    let iovs = match iovecs(data, iovs, iovs_len) {
        Ok(iovs) => iovs,
        Err(code) => return code,
    };
    let out = if stream == 1 { &mut state.stdout } else { &mut state.stderr };
    let mut total = 0usize;
    for (ptr, len) in iovs {
        out.push(&data[ptr..ptr + len]);
        total += len;
    }
    let written = u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes();
    let slot = usize::try_from(nwritten).ok().and_then(|at| data.get_mut(at..at.checked_add(4)?));
    match slot {
        Some(slot) => {
            slot.copy_from_slice(&written);
            errno::SUCCESS
        }
        None => errno::FAULT,
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
        assert_eq!((bytes, entries), (5 + 2 + "a.csv".len() as u64 + 3 + 5 + DIRECTORY_BYTES, 3));
    }
}
