//! The open-file limit: raised at start, and respected by how many objects are in flight.
//!
//! Every object in flight holds about two descriptors (its file and its connection). With
//! `concurrency: 1024` and the common soft limit of 1024, most objects would fail at once
//! with "Too many open files". Like Go's runtime, haul raises the soft limit to the hard one
//! when it starts; when that is still too low, a transfer runs fewer objects at a time and
//! says so once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Descriptors kept for everything else: stdio, logs, the lock, the runtime, listings.
const RESERVE: u64 = 64;
/// Descriptors one object in flight may hold.
const PER_OBJECT: u64 = 2;

/// Raises the soft limit on open files to the hard limit (best effort).
pub fn raise_open_files() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max {
            return;
        }
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            tracing::debug!("cannot raise the open-file limit from {}", limit.rlim_cur);
        }
    }
}

/// The soft limit on open files now (`None`: unlimited or unknown).
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// How many of `wanted` objects may be in flight at once under the open-file limit.
pub fn objects_in_flight(wanted: u32) -> u32 {
    let Some(limit) = open_file_limit() else { return wanted };
    let allowed = allowed_by(limit, wanted);
    if allowed < wanted {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "concurrency {wanted} lowered to {allowed}: the open-file limit is {limit} (about {PER_OBJECT} per \
                 object in flight); raise it (`ulimit -n`, `LimitNOFILE=` in a systemd unit) to run more at once"
            );
        }
    }
    allowed
}

fn allowed_by(limit: u64, wanted: u32) -> u32 {
    let allowed = (limit.saturating_sub(RESERVE) / PER_OBJECT).max(1);
    wanted.min(u32::try_from(allowed).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_in_flight_fit_the_limit() {
        assert_eq!(allowed_by(1024, 1024), 480);
        assert_eq!(allowed_by(1024, 64), 64);
        assert_eq!(allowed_by(65_536, 1024), 1024);
        assert_eq!(allowed_by(10, 64), 1);
    }
}
