//! The worker `ringfence serve` starts for itself: a `ringfence worker` child process on the same
//! state directory, so that a guest that crashes the host's code or exhausts its memory takes
//! that worker down, never the API. The service wakes it over its stdin when a job is queued,
//! and starts another when it dies (the new one's recovery ends the dead one's jobs as
//! `interrupted`). It lives and dies with the service: the kernel kills it when the service's
//! process ends, however that ends.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How to start the local worker: the `ringfence` executable and its arguments
/// (`--home H worker --jobs N --wake-on-stdin`), which the binary knows and the library does
/// not.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// How long the service waits before starting a worker again after one died, so a worker that
/// cannot start does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// The running local worker, as the service sees it.
pub(crate) struct LocalWorker {
    stdin: Mutex<Option<ChildStdin>>,
}

impl LocalWorker {
    /// Starts the worker, and a thread that starts it again whenever it exits.
    pub(crate) fn start(command: WorkerCommand) -> Arc<LocalWorker> {
        let worker = Arc::new(LocalWorker { stdin: Mutex::new(None) });
        let supervised = Arc::clone(&worker);
        std::thread::spawn(move || supervised.supervise(&command));
        worker
    }

    /// Wakes the worker: a job was queued. A full pipe means it has wake-ups it has not read
    /// yet, so the byte is not needed and the service never waits for it.
    pub(crate) fn wake(&self) {
        if let Some(stdin) = self.stdin.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = stdin.write(b"\n");
        }
    }

    /// Runs the worker, again and again: this thread lives as long as the service.
    fn supervise(&self, command: &WorkerCommand) {
        loop {
            let mut child = Command::new(&command.program);
            child.args(&command.args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
            // SAFETY: between fork and exec the closure makes one async-signal-safe system call.
            // The signal comes when this thread ends, which is when the service's process does.
            unsafe {
                child.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match child.spawn() {
                Ok(mut child) => {
                    if let Some(stdin) = child.stdin.take() {
                        set_nonblocking(&stdin);
                        *self.stdin.lock().unwrap_or_else(PoisonError::into_inner) = Some(stdin);
                    }
                    match child.wait() {
                        Ok(status) => tracing::error!("the local worker ended ({status}); starting another"),
                        Err(err) => tracing::error!("the local worker is lost ({err}); starting another"),
                    }
                    *self.stdin.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
                Err(err) => tracing::error!("cannot start the local worker {}: {err}", command.program.display()),
            }
            std::thread::sleep(RESTART_DELAY);
        }
    }
}

/// Makes writes to the worker's stdin fail instead of waiting when the pipe is full.
fn set_nonblocking(stdin: &ChildStdin) {
    let fd = stdin.as_raw_fd();
    // SAFETY: `fd` is open (owned by `stdin`, borrowed for the call); F_GETFL and F_SETFL only
    // read and set its status flags.
    let set = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags != -1 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != -1
    };
    if !set {
        tracing::warn!("cannot make the local worker's wake-up pipe non-blocking: {}", std::io::Error::last_os_error());
    }
}
