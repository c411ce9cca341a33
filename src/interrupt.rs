//! SIGINT / SIGTERM: the first one asks the run to stop (no new objects start; in-flight
//! multipart transfers stop between parts and are left for the next run to continue; the
//! report is written; exit 130), a second one ends the process at once. Either way nothing
//! partial sits under a real name: downloads only ever become visible by an atomic rename.
//!
//! A transfer's deadline (`deadline`, `max_duration`) stops it the same way when it comes,
//! and every loop that checks for a signal checks for it too ([`requested`]); [`cause`] tells
//! the two apart for the report (exit 6).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once per process).
pub fn install() -> std::io::Result<()> {
    let flag = REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the conditional exit sees the flag before this signal sets it, so
        // only a second signal exits.
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(())
}

/// The running transfer's deadline, in milliseconds since the epoch (0: none).
static DEADLINE_MS: AtomicU64 = AtomicU64::new(0);

/// Why a run stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Signal,
    Deadline,
}

/// Sets (or with `None` clears) the deadline of the transfer about to run.
pub fn set_deadline(at: Option<std::time::SystemTime>) {
    let ms = at
        .map_or(0, |at| at.duration_since(std::time::UNIX_EPOCH).map_or(1, |since| (since.as_millis() as u64).max(1)));
    DEADLINE_MS.store(ms, Ordering::Relaxed);
}

/// Whether a stop was asked for: a signal came, or the running transfer's deadline passed.
pub fn requested() -> bool {
    cause().is_some()
}

/// Why the run is stopping, if it is (a signal first: it stops the whole run).
pub fn cause() -> Option<Cause> {
    if REQUESTED.get().is_some_and(|flag| flag.load(Ordering::Relaxed)) {
        return Some(Cause::Signal);
    }
    // Checked for every listed key and every object: the clock is read only when there is
    // a deadline to compare it with.
    let deadline = DEADLINE_MS.load(Ordering::Relaxed);
    if deadline == 0 {
        return None;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    (now >= deadline).then_some(Cause::Deadline)
}
