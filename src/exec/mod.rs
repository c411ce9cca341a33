//! The executor: the only code that writes. It carries out a plan's actions on a rayon pool of
//! `concurrency` workers per transfer; each worker drives the async SDK on the one shared
//! tokio runtime. A failed object is recorded and the run goes on.

mod delete;
mod download;
mod upload;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rayon::prelude::*;

use crate::manifest::Job;
use crate::plan::{Action, ActionKind, TransferPlan};
use crate::progress::Counters;
use crate::report::TransferReport;
use crate::s3::RequestFailure;

/// One transfer to carry out: its job (settings), its plan (actions) and its client.
pub struct Transfer<'a> {
    pub job: &'a Job,
    pub plan: &'a TransferPlan,
    pub client: aws_sdk_s3::Client,
}

/// What each action needs while it runs.
struct Context<'a> {
    job: &'a Job,
    client: &'a aws_sdk_s3::Client,
    counters: &'a Counters,
    /// Bounds the parts of large objects in flight across all workers: `concurrency`. Neither
    /// direction holds a part in memory (an upload streams each part from the file after a
    /// checksum pass, a download writes each chunk where it belongs as it arrives).
    parts: Arc<tokio::sync::Semaphore>,
    /// Folders downloads renamed files into, fsynced once at the end of the transfer.
    touched_folders: Mutex<std::collections::HashSet<std::path::PathBuf>>,
}

impl Context<'_> {
    fn remote_key(&self, name: &str) -> String {
        format!("{}{name}", self.job.prefix)
    }
}

/// Carries out one transfer's plan: copies on a pool of `concurrency` workers, then deletes
/// (held back when any copy failed). Adds its work to `counters` for the progress display.
pub fn execute_transfer(
    transfer: &Transfer<'_>,
    runtime: &tokio::runtime::Handle,
    counters: &Counters,
) -> TransferReport {
    tune_allocator();
    // Objects in flight within the open-file limit (see `limits`).
    let concurrency = crate::limits::objects_in_flight(transfer.job.concurrency);
    let limited = (concurrency < transfer.job.concurrency).then(|| Job { concurrency, ..transfer.job.clone() });
    let job = limited.as_ref().unwrap_or(transfer.job);
    let copies = transfer.plan.actions.iter().filter(|a| !a.action.is_delete());
    let (objects, bytes) = copies.fold((0, 0), |(n, b), a| (n + 1, b + a.size));
    counters.add_planned(objects, bytes);
    let context = Context {
        job,
        client: &transfer.client,
        counters,
        parts: Arc::new(tokio::sync::Semaphore::new(job.concurrency.max(1) as usize)),
        touched_folders: Mutex::new(std::collections::HashSet::new()),
    };
    let mut first = TransferReport::new(transfer.plan);
    first.temp_files_removed = remove_stale_temp_files(&job.local, &transfer.plan.temp_files);
    first.uploads_aborted = runtime.block_on(upload::abort_unfinished(&context, &transfer.plan.unfinished_uploads));
    let report = Mutex::new(first);
    let moved_extensions = Mutex::new(BTreeSet::new());
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(job.concurrency as usize)
        .thread_name(|i| format!("haul-worker-{i}"))
        .build()
    {
        Ok(pool) => pool,
        Err(err) => {
            return TransferReport::not_run(&job.name, job.direction, format!("cannot start worker threads: {err}"));
        }
    };
    let (deletes, copies): (Vec<&Action>, Vec<&Action>) =
        transfer.plan.actions.iter().partition(|action| action.action.is_delete());
    pool.install(|| {
        // One action per task: objects differ in size by orders of magnitude, so rayon's
        // splitting must not bundle a large one with many small ones on a worker.
        copies.par_iter().with_max_len(1).for_each(|action| {
            if crate::interrupt::requested() {
                report.lock().expect("report lock").interrupted.add(action.size);
                return;
            }
            let started = std::time::Instant::now();
            let outcome = with_retries(job.target.retries, &action.key, || runtime.block_on(copy(&context, action)));
            match &outcome {
                Ok(()) => tracing::debug!(
                    transfer = %job.name,
                    key = %action.key,
                    bytes = action.size,
                    ms = started.elapsed().as_millis() as u64,
                    "{} done",
                    action.action.label()
                ),
                Err((failure, attempts)) => tracing::info!(
                    transfer = %job.name,
                    key = %action.key,
                    attempts,
                    code = failure.code.as_deref().unwrap_or("network"),
                    "{} failed: {}",
                    action.action.label(),
                    failure.message
                ),
            }
            let mut report = report.lock().expect("report lock");
            match outcome {
                Ok(()) => {
                    report.moved.add(action.size);
                    drop(report);
                    let extension = crate::report::extension(&action.key);
                    moved_extensions.lock().expect("extensions lock").insert(extension);
                }
                Err((failure, _)) if failure.code.as_deref() == Some(INTERRUPTED) => {
                    report.interrupted.add(action.size);
                }
                Err((failure, attempts)) => {
                    counters.fail();
                    report.record_failure(&action.key, action.action, action.size, failure, attempts);
                }
            }
        });
    });
    let folders: Vec<std::path::PathBuf> = context.touched_folders.lock().expect("folder set").drain().collect();
    pool.install(|| folders.par_iter().for_each(|folder| download::sync_folder(folder)));
    let mut report = report.into_inner().expect("report lock");
    if !deletes.is_empty() {
        if report.failed.objects > 0 || report.interrupted.objects > 0 {
            report.deletes_held_back = deletes.len() as u64;
        } else {
            let outcomes = pool.install(|| delete::delete_all(&context, &deletes, runtime));
            for (action, outcome) in deletes.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => report.deleted.add(0),
                    Err(failure) => {
                        counters.fail();
                        report.record_failure(&action.key, action.action, 0, failure, 1);
                    }
                }
            }
        }
    }
    report.group_failures(&moved_extensions.into_inner().expect("extensions lock"));
    report
}

/// Removes the temp files of downloads whose run is gone (killed, crashed, power lost).
/// A file from this host is stale when the PID in its name is not a live process; files of
/// live runs, this one included, stay. A file from another host (a shard on another machine
/// writing the same shared folder) cannot be judged by PID: it is stale when nothing has
/// written to it for [`FOREIGN_TEMP_AGE`], as a live download writes all the time.
fn remove_stale_temp_files(local: &std::path::Path, temp_files: &[String]) -> u64 {
    let mut removed = 0;
    for relative in temp_files {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let Some(owner) = crate::listing::temp_owner(name) else { continue };
        let path = local.join(relative);
        // A name without a host is from before hosts were named: taken as this host's.
        let stale = match owner.host.as_deref() {
            Some(host) if host != crate::listing::this_host() => std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > FOREIGN_TEMP_AGE)),
            _ => owner.pid != std::process::id() && !process_alive(owner.pid),
        };
        if stale && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// How long another host's temp file may sit unwritten before it counts as abandoned.
const FOREIGN_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid, 0) };
    // EPERM: it exists, under another user.
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Part buffers (MiBs each, allocated and freed by many threads) must go back to the OS when
/// freed. glibc raises its mmap threshold after the first large free, and later buffers then
/// come from per-thread heaps that keep their memory: 4 x 256 MiB uploads peaked at 713 MiB
/// RSS. A fixed threshold keeps large buffers on mmap, so RSS follows the buffers in use.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only changes allocator tuning; it runs once, before the workers start.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        });
    }
}

async fn copy(context: &Context<'_>, action: &Action) -> Result<(), RequestFailure> {
    match action.action {
        ActionKind::Download => download::download(context, action).await,
        ActionKind::Upload => upload::upload(context, action).await,
        ActionKind::DeleteLocal | ActionKind::DeleteRemote => unreachable!("deletes run after the copies"),
    }
}

/// Tries `attempt` until it succeeds, fails for good, or `retries` more attempts failed
/// transiently (5xx, throttling, dropped connections, a short or damaged body). This is on
/// top of the SDK's own retries of single requests: it also covers a body that broke off
/// halfway, which the SDK cannot retry. Backoff doubles from 200 ms up to 10 s, with jitter.
fn with_retries<T>(
    retries: u32,
    what: &str,
    mut attempt: impl FnMut() -> Result<T, RequestFailure>,
) -> Result<T, (RequestFailure, u32)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt() {
            Ok(value) => return Ok(value),
            Err(failure) if failure.transient && attempts <= retries && !crate::interrupt::requested() => {
                let pause = backoff(attempts);
                tracing::debug!(key = %what, attempt = attempts, pause_ms = pause.as_millis() as u64, "retrying: {}", failure.message);
                std::thread::sleep(pause);
            }
            Err(failure) => return Err((failure, attempts)),
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(10));
    base.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// The failure code of an object stopped by SIGINT / SIGTERM (counted apart from failures).
const INTERRUPTED: &str = "Interrupted";

/// Stops a multipart transfer between parts once a stop was asked for; the caller's error
/// path aborts the upload or drops the temp file.
fn check_interrupt() -> Result<(), RequestFailure> {
    if crate::interrupt::requested() {
        return Err(RequestFailure::local(INTERRUPTED, "interrupted", false));
    }
    Ok(())
}

/// A local file system error as a failure, with a code per cause so the report can say
/// what to do: a full disk, too many open files (transient: descriptors free up as other
/// objects finish), a file removed during the run, anything else.
fn io_failure(what: &str, err: std::io::Error) -> RequestFailure {
    let (code, transient) = match err.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => ("DiskFull", false),
        Some(libc::EMFILE | libc::ENFILE) => ("TooManyOpenFiles", true),
        _ if err.kind() == std::io::ErrorKind::NotFound => ("LocalFileGone", false),
        _ => ("LocalIo", false),
    };
    RequestFailure::local(code, format!("{what}: {err}"), transient)
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_errors_get_a_code_per_cause() {
        let code = |errno: i32| super::io_failure("x", std::io::Error::from_raw_os_error(errno));
        assert_eq!(code(libc::ENOSPC).code.as_deref(), Some("DiskFull"));
        assert_eq!(code(libc::EDQUOT).code.as_deref(), Some("DiskFull"));
        let emfile = code(libc::EMFILE);
        assert_eq!((emfile.code.as_deref(), emfile.transient), (Some("TooManyOpenFiles"), true));
        assert_eq!(code(libc::ENOENT).code.as_deref(), Some("LocalFileGone"));
        assert_eq!(code(libc::EIO).code.as_deref(), Some("LocalIo"));
        // Each has its own hint.
        let hints: std::collections::BTreeSet<String> = ["DiskFull", "TooManyOpenFiles", "LocalFileGone", "LocalIo"]
            .iter()
            .map(|code| crate::report::hint_for(code, crate::manifest::Direction::Upload))
            .collect();
        assert_eq!(hints.len(), 4, "{hints:?}");
    }

    #[test]
    fn stale_temp_files_are_judged_by_pid_here_and_by_age_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let here = crate::listing::this_host();
        // PID 0x7ffffff0 exists on no Linux (pid_max is at most 2^22).
        let dead = 0x7fff_fff0u32;
        let names = [
            (format!(".haul-{}@{here}-aaaaaa.tmp", std::process::id()), false, "this run's own"),
            (format!(".haul-{dead}@{here}-bbbbbb.tmp"), true, "a dead run here"),
            (format!(".haul-{dead}-cccccc.tmp"), true, "a dead run, old-style name"),
            (format!(".haul-{dead}@other-pod-7-dddddd.tmp"), false, "another host's, being written"),
            (format!(".haul-{dead}@other-pod-7-eeeeee.tmp"), true, "another host's, untouched for 2 h"),
        ];
        for (name, _, _) in &names {
            std::fs::write(dir.path().join(name), b"partial").unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(&names[4].0))
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let listed: Vec<String> = names.iter().map(|(n, _, _)| n.clone()).collect();
        assert_eq!(remove_stale_temp_files(dir.path(), &listed), 3);
        for (name, removed, what) in &names {
            assert_eq!(!dir.path().join(name).exists(), *removed, "{what}: {name}");
        }
    }

    use super::*;

    #[test]
    fn transient_failures_are_retried_up_to_the_limit() {
        let mut calls = 0;
        let result: Result<(), _> = with_retries(2, "k", || {
            calls += 1;
            Err(RequestFailure::local("SlowDown", "busy", true))
        });
        let (failure, attempts) = result.unwrap_err();
        assert_eq!((calls, attempts, failure.code.as_deref()), (3, 3, Some("SlowDown")));
    }

    #[test]
    fn permanent_failures_are_not_retried_and_success_stops() {
        let mut calls = 0;
        let result: Result<(), _> = with_retries(5, "k", || {
            calls += 1;
            Err(RequestFailure::local("AccessDenied", "no", false))
        });
        assert_eq!((calls, result.unwrap_err().1), (1, 1));
        let mut calls = 0;
        let result = with_retries(5, "k", || {
            calls += 1;
            if calls < 2 { Err(RequestFailure::local("InternalError", "oops", true)) } else { Ok(calls) }
        });
        assert_eq!(result.unwrap(), 2);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(400));
        assert!(backoff(1) >= Duration::from_millis(200));
        assert!(backoff(20) <= Duration::from_secs(10));
    }
}
