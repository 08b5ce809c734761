//! The epoch ticker: the clock that lets the host interrupt running guest code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// How often the engine's epoch advances. Each tick gives every running guest a chance to be
/// stopped for CPU or wall-clock limits, so it bounds how far past a limit a guest can run.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// A background thread advancing the engines' epochs every [`TICK`] until dropped.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(super) fn start(engines: &[Engine]) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engines = engines.to_vec();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("ringfence-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engines.iter().for_each(Engine::increment_epoch);
            }
        })?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
