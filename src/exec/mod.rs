//! The executor: the only code that writes. It carries out a plan's actions with
//! `concurrency` worker tasks per transfer on the one shared tokio runtime. Each worker takes
//! the next action from the plan and runs it to the end, so a request, its answer and the
//! next request stay on one runtime thread; file work that can block (fsync, renames, reading
//! files for uploads) goes to tokio's blocking pool. A failed object is recorded and the run
//! goes on.

/// Sets how a written object is stored (`storage_class`, `sse`, `sse_kms_key_id` of
/// `options`) on any request that writes one: PutObject, CreateMultipartUpload, CopyObject.
/// A macro because the SDK's request builders share no trait.
macro_rules! with_storage {
    ($request:expr, $options:expr) => {{
        let options: &crate::manifest::UploadOptions = $options;
        $request
            .set_storage_class(options.storage_class.map(|class| class.as_str().into()))
            .set_server_side_encryption(super::upload::sse(options))
            .set_ssekms_key_id(options.sse_kms_key_id.clone())
    }};
}

mod copy;
mod delete;
mod download;
mod resume;
mod throttle;
mod upload;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    pub plan: Arc<TransferPlan>,
    pub client: aws_sdk_s3::Client,
    /// A copy's destination client.
    pub to_client: Option<aws_sdk_s3::Client>,
}

/// What each action needs while it runs, shared by the transfer's worker tasks.
struct Context {
    job: Job,
    client: aws_sdk_s3::Client,
    counters: Arc<Counters>,
    /// Bounds the parts of large objects in flight across all workers: `concurrency`. Neither
    /// direction holds a part in memory (an upload streams each part from the file after a
    /// checksum pass, a download writes each chunk where it belongs as it arrives).
    parts: Arc<tokio::sync::Semaphore>,
    /// Folders downloads renamed files into, fsynced once at the end of the transfer. A folder
    /// in here exists already, so the next download into it skips creating it.
    touched_folders: Mutex<HashSet<PathBuf>>,
    /// A copy's destination.
    to: Option<copy::CopyTarget>,
    /// The transfer's bandwidth cap, shared by its workers.
    throttle: Option<Arc<throttle::Throttle>>,
    /// Multipart uploads under way or left by a failed attempt, by key: a retry continues
    /// its own, and what is left at the end is for the next run to continue.
    uploads_left: Mutex<std::collections::HashMap<String, String>>,
    /// Bytes not sent again because an upload was continued.
    resumed_bytes: std::sync::atomic::AtomicU64,
    /// Uploads that could not be continued and started over.
    restarted_uploads: std::sync::atomic::AtomicU64,
    /// Temp files of unfinished ranged downloads with their records, by key: from a stopped
    /// run (adopted before the copies start) or from a failed attempt of this one.
    partial_downloads: Mutex<HashMap<String, PathBuf>>,
}

impl Context {
    /// Waits until `bytes` may move under the bandwidth cap (at once without one).
    async fn pace(&self, bytes: u64) {
        if let Some(throttle) = &self.throttle {
            throttle.take(bytes).await;
        }
    }

    /// The key of `name` in the job's bucket (the source of a download or a copy).
    fn remote_key(&self, name: &str) -> String {
        format!("{}{name}", self.job.prefix)
    }

    /// The bucket this transfer writes and deletes in: an upload's, or a copy's `to`, with
    /// its client and prefix.
    fn written_bucket(&self) -> (&aws_sdk_s3::Client, &str, &str) {
        match &self.to {
            Some(to) => (&to.client, &to.destination.bucket, &to.destination.prefix),
            None => (&self.client, &self.job.bucket, &self.job.prefix),
        }
    }
}

/// The copies of one plan, handed out one at a time to the workers, and what became of them.
struct Work {
    plan: Arc<TransferPlan>,
    /// The index of the next action to look at (deletes are skipped: they run after).
    next: AtomicUsize,
    report: Mutex<TransferReport>,
    moved_extensions: Mutex<BTreeSet<String>>,
}

impl Work {
    fn take(&self) -> Option<&Action> {
        loop {
            let action = self.plan.actions.get(self.next.fetch_add(1, Ordering::Relaxed))?;
            if !action.action.is_delete() {
                return Some(action);
            }
        }
    }

    fn record(&self, action: &Action, outcome: Result<(), (RequestFailure, u32)>, counters: &Counters) {
        let mut report = self.report.lock().expect("report lock");
        match outcome {
            Ok(()) => {
                report.moved.add(action.size);
                drop(report);
                let extension = crate::report::extension(&action.key);
                self.moved_extensions.lock().expect("extensions lock").insert(extension);
            }
            Err((failure, _)) if failure.code.as_deref() == Some(INTERRUPTED) => {
                report.interrupted.add(action.size);
            }
            Err((failure, attempts)) => {
                counters.fail();
                report.record_failure(&action.key, action.action, action.size, failure, attempts);
            }
        }
    }
}

/// Carries out one transfer's plan: copies by `concurrency` worker tasks, then deletes (held
/// back when any copy failed). Adds its work to `counters` for the progress display.
pub fn execute_transfer(
    transfer: &Transfer<'_>,
    runtime: &tokio::runtime::Handle,
    counters: &Arc<Counters>,
) -> TransferReport {
    tune_allocator();
    // Objects in flight within the open-file limit (see `limits`).
    let concurrency = crate::limits::objects_in_flight(transfer.job.concurrency).max(1);
    let job = Job { concurrency, ..transfer.job.clone() };
    let copies = transfer.plan.actions.iter().filter(|a| !a.action.is_delete());
    let (objects, bytes) = copies.fold((0, 0), |(n, b), a| (n + 1, b + a.size));
    counters.add_planned(objects, bytes);
    let context = Arc::new(Context {
        job,
        client: transfer.client.clone(),
        counters: counters.clone(),
        parts: Arc::new(tokio::sync::Semaphore::new(concurrency as usize)),
        touched_folders: Mutex::new(HashSet::new()),
        to: match (&transfer.job.to, &transfer.to_client) {
            (Some(destination), Some(client)) => Some(copy::CopyTarget {
                client: client.clone(),
                destination: destination.clone(),
                method: transfer.plan.copy_method.unwrap_or(crate::plan::CopyMethod::Streamed),
                budget: Arc::new(tokio::sync::Semaphore::new(copy::STREAM_BUDGET_KIB)),
            }),
            _ => None,
        },
        throttle: transfer.job.bandwidth.map(|rate| Arc::new(throttle::Throttle::new(rate))),
        uploads_left: Mutex::new(std::collections::HashMap::new()),
        resumed_bytes: std::sync::atomic::AtomicU64::new(0),
        restarted_uploads: std::sync::atomic::AtomicU64::new(0),
        partial_downloads: Mutex::new(HashMap::new()),
    });
    let mut first = TransferReport::new(&transfer.plan);
    // Partial downloads of a stopped run that this plan downloads again are continued.
    let wanted: HashMap<&str, (u64, Option<&str>)> = transfer
        .plan
        .actions
        .iter()
        .filter(|action| action.action == ActionKind::Download)
        .map(|action| (action.key.as_str(), (action.size, action.source.as_ref().and_then(|s| s.etag.as_deref()))))
        .collect();
    // Another shard's partial downloads in a shared folder are that shard's to continue.
    let owned = |key: &str| transfer.plan.shard.is_none_or(|shard| shard.owns(&transfer.plan.name, key));
    let (removed, adopted) = sort_stale_temp_files(&context.job.local, &transfer.plan.temp_files, &wanted, &owned);
    first.temp_files_removed = removed;
    *context.partial_downloads.lock().expect("downloads lock") = adopted;
    first.uploads_aborted = runtime.block_on(upload::abort_unfinished(&context, &transfer.plan.unfinished_uploads));
    let work = Arc::new(Work {
        plan: transfer.plan.clone(),
        next: AtomicUsize::new(0),
        report: Mutex::new(first),
        moved_extensions: Mutex::new(BTreeSet::new()),
    });
    let workers = objects.min(u64::from(concurrency)) as usize;
    runtime.block_on(async {
        let tasks: Vec<_> =
            (0..workers).map(|_| AbortOnDrop(tokio::spawn(run_worker(context.clone(), work.clone())))).collect();
        for task in tasks {
            if let Err(err) = task.await
                && err.is_panic()
            {
                std::panic::resume_unwind(err.into_panic());
            }
        }
    });
    let folders: Vec<PathBuf> = context.touched_folders.lock().expect("folder set").drain().collect();
    folders.par_iter().for_each(|folder| download::sync_folder(folder));
    let work = Arc::try_unwrap(work).unwrap_or_else(|_| unreachable!("every worker has finished"));
    let mut report = work.report.into_inner().expect("report lock");
    report.bytes_resumed = context.resumed_bytes.load(std::sync::atomic::Ordering::Relaxed);
    report.uploads_restarted = context.restarted_uploads.load(std::sync::atomic::Ordering::Relaxed);
    report.uploads_left = context.uploads_left.lock().expect("uploads lock").len() as u64;
    report.downloads_left = context.partial_downloads.lock().expect("downloads lock").len() as u64;
    let deletes: Vec<&Action> = transfer.plan.actions.iter().filter(|action| action.action.is_delete()).collect();
    if !deletes.is_empty() {
        if report.failed.objects > 0 || report.interrupted.objects > 0 {
            report.deletes_held_back = deletes.len() as u64;
        } else {
            let outcomes = delete::delete_all(&context, &deletes, runtime);
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
    report.group_failures(&work.moved_extensions.into_inner().expect("extensions lock"));
    report
}

/// One worker: takes copies until none are left, each with its retries.
async fn run_worker(context: Arc<Context>, work: Arc<Work>) {
    while let Some(action) = work.take() {
        if crate::interrupt::requested() {
            work.record(action, Err((interrupted(), 0)), &context.counters);
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = with_retries(context.job.target.retries, &action.key, || copy(&context, action)).await;
        match &outcome {
            Ok(()) => tracing::debug!(
                transfer = %context.job.name,
                key = %action.key,
                bytes = action.size,
                ms = started.elapsed().as_millis() as u64,
                "{} done",
                action.action.label()
            ),
            Err((failure, attempts)) => tracing::info!(
                transfer = %context.job.name,
                key = %action.key,
                attempts,
                code = failure.code.as_deref().unwrap_or("network"),
                "{} failed: {}",
                action.action.label(),
                failure.message
            ),
        }
        work.record(action, outcome, &context.counters);
    }
}

/// Removes the temp files of downloads whose run is gone (killed, crashed, power lost).
/// A file from this host is stale when the PID in its name is not a live process; files of
/// live runs, this one included, stay. A file from another host (a shard on another machine
/// writing the same shared folder) cannot be judged by PID: it is stale when nothing has
/// written to it for [`FOREIGN_TEMP_AGE`], as a live download writes all the time.
///
/// Those whose resume record is for a download `wanted` names (key -> planned size and ETag,
/// where the listing gave one) are kept and returned by key, to be continued (the download
/// checks the record's ETag against the object's again before it uses a byte).
fn sort_stale_temp_files(
    local: &std::path::Path,
    temp_files: &[String],
    wanted: &HashMap<&str, (u64, Option<&str>)>,
    owned: &dyn Fn(&str) -> bool,
) -> (u64, HashMap<String, PathBuf>) {
    let mut removed = 0;
    let mut adopted = HashMap::new();
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
        if !stale {
            continue;
        }
        let record = std::fs::File::open(&path).ok().and_then(|file| resume::Record::read(&file));
        tracing::debug!(
            file = %path.display(),
            record = ?record.as_ref().map(|r| (&r.key, r.size, &r.etag, r.ranges.len())),
            wanted = ?record.as_ref().and_then(|r| wanted.get(r.key.as_str())),
            "a stopped run's temp file"
        );
        if let Some(found) = &record
            && wanted
                .get(found.key.as_str())
                .is_some_and(|(size, etag)| *size == found.size && etag.is_none_or(|etag| etag == found.etag))
            && !adopted.contains_key(&found.key)
        {
            adopted.insert(found.key.clone(), path);
            continue;
        }
        if record.as_ref().is_some_and(|found| !owned(&found.key)) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    (removed, adopted)
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

async fn copy(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    match action.action {
        ActionKind::Download => download::download(context, action).await,
        ActionKind::Upload => upload::upload(context, action).await,
        ActionKind::Copy => copy::copy(context, action).await,
        ActionKind::DeleteLocal | ActionKind::DeleteRemote => unreachable!("deletes run after the copies"),
    }
}

/// Tries `attempt` until it succeeds, fails for good, or `retries` more attempts failed
/// transiently (5xx, throttling, dropped connections, a short or damaged body). This is on
/// top of the SDK's own retries of single requests: it also covers a body that broke off
/// halfway, which the SDK cannot retry. Backoff doubles from 200 ms up to 10 s, with jitter.
async fn with_retries<T, F>(
    retries: u32,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Result<T, (RequestFailure, u32)>
where
    F: std::future::Future<Output = Result<T, RequestFailure>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(failure) if failure.transient && attempts <= retries && !crate::interrupt::requested() => {
                let pause = backoff(attempts);
                tracing::debug!(key = %what, attempt = attempts, pause_ms = pause.as_millis() as u64, "retrying: {}", failure.message);
                tokio::time::sleep(pause).await;
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
        return Err(interrupted());
    }
    Ok(())
}

/// An answer must be the version that was asked for: `If-Match` makes a server refuse any
/// other, and this checks the ETag it answered with, for servers that ignore `If-Match`
/// (s3s-fs does), so an object replaced mid-transfer is never stitched from two versions.
fn ensure_version(asked: Option<&str>, answered: Option<&str>) -> Result<(), RequestFailure> {
    match (asked, answered) {
        (Some(asked), Some(answered)) if asked.trim_matches('"') != answered.trim_matches('"') => Err(object_changed()),
        _ => Ok(()),
    }
}

/// An object that is no longer the version the plan listed.
fn object_changed() -> RequestFailure {
    RequestFailure::local(
        "ObjectChanged",
        "the object changed since the plan; nothing of the new version was written",
        false,
    )
}

fn interrupted() -> RequestFailure {
    RequestFailure::local(INTERRUPTED, "interrupted", false)
}

/// A spawned task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs blocking file work (fsync, rename, reading a file) on tokio's blocking pool, so a
/// slow disk holds up one pool thread and not the runtime thread other transfers run on.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RequestFailure> + Send + 'static,
) -> Result<T, RequestFailure> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|err| match err.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(_) => Err(interrupted()),
    })
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
        assert_eq!(sort_stale_temp_files(dir.path(), &listed, &HashMap::new(), &|_| true).0, 3);
        for (name, removed, what) in &names {
            assert_eq!(!dir.path().join(name).exists(), *removed, "{what}: {name}");
        }
    }

    use super::*;

    /// Runs a retry loop to the end (its pauses are real, up to a second in all).
    fn retried<T>(
        retries: u32,
        mut attempt: impl FnMut() -> Result<T, RequestFailure>,
    ) -> Result<T, (RequestFailure, u32)> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(with_retries(retries, "k", || std::future::ready(attempt())))
    }

    #[test]
    fn transient_failures_are_retried_up_to_the_limit() {
        let mut calls = 0;
        let result: Result<(), _> = retried(2, || {
            calls += 1;
            Err(RequestFailure::local("SlowDown", "busy", true))
        });
        let (failure, attempts) = result.unwrap_err();
        assert_eq!((calls, attempts, failure.code.as_deref()), (3, 3, Some("SlowDown")));
    }

    #[test]
    fn permanent_failures_are_not_retried_and_success_stops() {
        let mut calls = 0;
        let result: Result<(), _> = retried(5, || {
            calls += 1;
            Err(RequestFailure::local("AccessDenied", "no", false))
        });
        assert_eq!((calls, result.unwrap_err().1), (1, 1));
        let mut calls = 0;
        let result = retried(5, || {
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
