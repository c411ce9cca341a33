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
            .set_server_side_encryption(super::sse(options))
            .set_ssekms_key_id(options.sse_kms_key_id.clone())
            .set_acl(options.acl.map(|acl| acl.as_str().into()))
            .set_tagging(options.tagging())
    }};
}

/// The object properties a manifest sets (`content_type`, `cache_control`,
/// `content_disposition`, `metadata`) over what a request has: after the source's, so the
/// manifest wins.
macro_rules! with_manifest_properties {
    ($request:expr, $options:expr) => {{
        let options: &crate::manifest::UploadOptions = $options;
        let mut request = $request;
        if let Some(content_type) = &options.content_type {
            request = request.content_type(content_type);
        }
        if let Some(cache_control) = &options.cache_control {
            request = request.cache_control(cache_control);
        }
        if let Some(disposition) = &options.content_disposition {
            request = request.content_disposition(disposition);
        }
        if let Some(metadata) = &options.metadata {
            request = request.set_metadata(Some(metadata.clone().into_iter().collect()));
        }
        request
    }};
}

/// The encryption a manifest asks for, as the SDK names it.
fn sse(options: &crate::manifest::UploadOptions) -> Option<aws_sdk_s3::types::ServerSideEncryption> {
    use crate::manifest::ServerSideEncryption;
    options.sse.map(|sse| match sse {
        ServerSideEncryption::Aes256 => aws_sdk_s3::types::ServerSideEncryption::Aes256,
        ServerSideEncryption::AwsKms => aws_sdk_s3::types::ServerSideEncryption::AwsKms,
    })
}

mod archive;
mod copy;
mod delete;
mod download;
mod integrity;
mod level;
mod multipart;
mod properties;
mod ranged;
mod resume;
mod throttle;
mod upload;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rayon::prelude::*;

use crate::manifest::Job;
use crate::plan::{Action, ActionKind, TransferPlan};
use crate::progress::Counters;
use crate::report::TransferReport;
use crate::s3::RequestFailure;

/// What each action needs while it runs, shared by the transfer's worker tasks.
struct Context {
    job: Job,
    client: aws_sdk_s3::Client,
    counters: Arc<Counters>,
    /// Objects in flight, and parts of large objects in flight across all workers (its
    /// `parts` gate). Neither direction holds a part in memory (an upload streams each part
    /// from the file after a checksum pass, a download writes each chunk where it belongs as
    /// it arrives).
    level: Arc<level::Level>,
    /// Folders downloads renamed files into, fsynced once at the end of the transfer. A folder
    /// in here exists already, so the next download into it skips creating it.
    touched_folders: Mutex<HashSet<PathBuf>>,
    /// A copy's destination.
    to: Option<copy::CopyTarget>,
    /// The transfer's bandwidth cap, shared by its workers.
    throttle: Option<Arc<throttle::Throttle>>,
    /// Multipart uploads under way or left by a failed attempt, by key: a retry continues
    /// its own, and what is left at the end is for the next run to continue.
    uploads_left: Mutex<HashMap<String, String>>,
    /// Bytes not sent again because an upload was continued.
    resumed_bytes: AtomicU64,
    /// Uploads that could not be continued and started over.
    restarted_uploads: AtomicU64,
    /// Temp files of ranged downloads an attempt of this run left with their records, by key:
    /// the next attempt, or the next run, continues them.
    partial_downloads: Mutex<HashMap<String, PathBuf>>,
    /// Partial downloads of stopped runs, found as downloads start in their folders.
    stale_partials: Mutex<StalePartials>,
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

    /// What the object at `key` (a full key where the transfer writes) is written with: the
    /// transfer's properties and its matching `properties` rules.
    fn options_for(&self, key: &str) -> std::borrow::Cow<'_, crate::manifest::UploadOptions> {
        let (_, _, prefix) = self.written_bucket();
        self.job.upload_options_for(key.strip_prefix(prefix).unwrap_or(key))
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

/// The copies of one transfer, handed out one at a time to the workers as they are planned,
/// and what became of them.
struct Work {
    queue: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Action>>,
    report: Mutex<TransferReport>,
    moved_extensions: Mutex<BTreeSet<String>>,
    /// Copies taken from the queue and ended, however.
    ended: AtomicU64,
}

impl Work {
    async fn take(&self) -> Option<Action> {
        self.queue.lock().await.recv().await
    }

    fn record(&self, action: &Action, outcome: Result<(), (RequestFailure, u32)>, counters: &Counters) {
        let _ended = Ended(&self.ended);
        let mut report = self.report.lock().expect("report lock");
        match outcome {
            Ok(()) if action.action == ActionKind::UpdateProperties => report.properties_updated.add(0),
            Ok(()) => {
                report.moved.add(action.size);
                drop(report);
                let extension = crate::report::extension(&action.key);
                self.moved_extensions.lock().expect("extensions lock").insert(extension);
            }
            Err((failure, _)) if failure.is(crate::s3::FailureCode::Interrupted) => {
                report.interrupted.add(action.size);
            }
            Err((failure, _)) if failure.is(crate::s3::FailureCode::DeadlineReached) => {
                report.left_at_deadline.add(action.size);
            }
            Err((failure, _)) if failure.is(crate::s3::FailureCode::RestoreRequested) => {
                report.restores_requested.add(action.size);
            }
            Err((failure, _)) if failure.is(crate::s3::FailureCode::RestoreInProgress) => {
                report.restores_in_progress.add(action.size);
            }
            Err((failure, _)) if failure.is(crate::s3::FailureCode::ExistsNow) => {
                report.created_meanwhile.add(action.size);
            }
            Err((failure, attempts)) => {
                counters.fail();
                report.record_failure(&action.key, action.action, action.size, failure, attempts);
            }
        }
    }
}

/// The transfer's worker tasks: as many as its level has been at most (spawned as it rises;
/// a lower level leaves some waiting for a pass).
struct Crew {
    context: Arc<Context>,
    work: Arc<Work>,
    runtime: tokio::runtime::Handle,
    tasks: Mutex<Vec<AbortOnDrop<()>>>,
}

impl Crew {
    fn grow_to(&self, count: u32) {
        let mut tasks = self.tasks.lock().expect("worker list");
        while tasks.len() < count as usize {
            tasks.push(AbortOnDrop(self.runtime.spawn(run_worker(self.context.clone(), self.work.clone()))));
        }
    }

    /// The tasks so far, to wait for (the list is then empty).
    fn take(&self) -> Vec<AbortOnDrop<()>> {
        std::mem::take(&mut *self.tasks.lock().expect("worker list"))
    }

    fn all_finished(&self) -> bool {
        self.tasks.lock().expect("worker list").iter().all(|task| task.0.is_finished())
    }
}

/// Counts a copy as ended when dropped (after its outcome is recorded).
struct Ended<'a>(&'a AtomicU64);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Copies planned but not yet taken by a worker: enough to keep every worker busy while the
/// planner fetches the next listing page, few enough that memory does not depend on the
/// number of objects.
const QUEUED_COPIES: usize = 1024;

/// Why a transfer's planning stopped before its end, for its report.
pub struct PlanningStopped {
    pub error: String,
    pub hint: Option<String>,
    /// By SIGINT / SIGTERM.
    pub interrupted: bool,
    /// By the transfer's deadline.
    pub at_deadline: bool,
}

impl PlanningStopped {
    /// Stopped by a signal or the deadline ([`crate::interrupt::cause`]).
    pub fn stopped() -> PlanningStopped {
        match crate::interrupt::cause() {
            Some(crate::interrupt::Cause::Deadline) => PlanningStopped {
                error: "stopped at its deadline; the next run continues it; no delete ran".into(),
                hint: None,
                interrupted: false,
                at_deadline: true,
            },
            _ => PlanningStopped {
                error: "stopped by a signal; no delete ran".into(),
                hint: None,
                interrupted: true,
                at_deadline: false,
            },
        }
    }
}

/// One transfer being carried out while it is planned: `push` each action as the planner
/// decides it (copies start at once), then `finish` with the plan's totals. A transfer with
/// `delete: true` holds its copies until the whole listing is planned, so a run that would
/// delete more than `max_delete` moves nothing.
pub struct Execution {
    context: Arc<Context>,
    work: Arc<Work>,
    queue: Option<tokio::sync::mpsc::Sender<Action>>,
    workers: Arc<Crew>,
    /// The task that moves the level (`exec::level::steer`), and how to stop it.
    steering: Option<(AbortOnDrop<()>, Arc<tokio::sync::Notify>)>,
    /// Copies waiting for the end of the listing (`delete: true`).
    held: Option<Vec<Action>>,
    /// Copies of keys the destination had not listed while its listing was not yet whole:
    /// they wait until it is (a server that lists out of order may still list the key).
    provisional: Vec<Action>,
    /// Copies handed to the workers, and how many of them have ended (`Work::ended`).
    sent: u64,
    /// Deletes run after every copy, and only when the plan ended well.
    deletes: Vec<Action>,
    /// The display has the plan's totals already (a saved plan): copies are not counted as
    /// they come.
    counted: bool,
    runtime: tokio::runtime::Handle,
}

impl Execution {
    /// Starts the transfer's worker tasks, waiting for copies. `found`: with `concurrency:
    /// auto`, the level to start from (where an earlier transfer between the same servers
    /// ended).
    pub fn start(
        job: &Job,
        client: &aws_sdk_s3::Client,
        to_client: Option<&aws_sdk_s3::Client>,
        runtime: &tokio::runtime::Handle,
        counters: &Arc<Counters>,
        found: Option<u32>,
    ) -> Execution {
        tune_allocator();
        let level = level::Level::new(job.concurrency, found);
        let context = Arc::new(Context {
            job: job.clone(),
            client: client.clone(),
            counters: counters.clone(),
            level: level.clone(),
            touched_folders: Mutex::new(HashSet::new()),
            to: match (&job.to, to_client) {
                (Some(destination), Some(client)) => Some(copy::CopyTarget {
                    client: client.clone(),
                    destination: destination.clone(),
                    method: crate::plan::CopyMethod::between(&job.target, &destination.target),
                    budget: Arc::new(tokio::sync::Semaphore::new(copy::STREAM_BUDGET_KIB)),
                }),
                _ => None,
            },
            throttle: job.bandwidth.map(|rate| Arc::new(throttle::Throttle::new(rate))),
            uploads_left: Mutex::new(HashMap::new()),
            resumed_bytes: AtomicU64::new(0),
            restarted_uploads: AtomicU64::new(0),
            partial_downloads: Mutex::new(HashMap::new()),
            stale_partials: Mutex::new(StalePartials::default()),
        });
        let (sender, receiver) = tokio::sync::mpsc::channel(QUEUED_COPIES);
        let work = Arc::new(Work {
            queue: tokio::sync::Mutex::new(receiver),
            report: Mutex::new(TransferReport::empty(&job.name, job.direction)),
            moved_extensions: Mutex::new(BTreeSet::new()),
            ended: AtomicU64::new(0),
        });
        let stop_steering = Arc::new(tokio::sync::Notify::new());
        let workers = Arc::new(Crew {
            context: context.clone(),
            work: work.clone(),
            runtime: runtime.clone(),
            tasks: Mutex::new(Vec::new()),
        });
        workers.grow_to(level.now());
        counters.set_level(level.now());
        let steering = level.adaptive().then(|| {
            let crew = workers.clone();
            let raised = move |count| crew.grow_to(count);
            AbortOnDrop(runtime.spawn(level::steer(level, counters.clone(), stop_steering.clone(), raised)))
        });
        Execution {
            context,
            work,
            queue: Some(sender),
            workers,
            steering: steering.map(|task| (task, stop_steering)),
            held: job.delete.then(Vec::new),
            provisional: Vec::new(),
            sent: 0,
            deletes: Vec::new(),
            counted: false,
            runtime: runtime.clone(),
        }
    }

    /// Hands one planned action over: a copy to the workers (waiting while the queue is
    /// full), a delete to the end. A `provisional` copy (see `destination_listed`) waits.
    pub fn push(&mut self, action: Action, provisional: bool) {
        if action.action.is_delete() {
            self.deletes.push(action);
            return;
        }
        if !self.counted {
            self.context.counters.add_planned(1, action.size);
        }
        match &mut self.held {
            Some(held) => held.push(action),
            None if provisional => self.provisional.push(action),
            None => self.send(action),
        }
    }

    /// The destination's listing has ended whole and in key order: the provisional copies
    /// stand, and go to the workers.
    pub fn destination_listed(&mut self) {
        for action in std::mem::take(&mut self.provisional) {
            self.send(action);
        }
    }

    /// The listing is read again from its start, sorted (the server listed out of key order):
    /// the held and provisional copies and the deletes are dropped, as they come again from the
    /// sorted reading. Copies already handed to the workers were decided on what both sides
    /// did list, so they are right; they end before the second reading lists, which then finds
    /// them in place instead of planning them twice.
    pub fn listed_again(&mut self) {
        self.deletes.clear();
        let dropped =
            std::mem::take(&mut self.provisional).into_iter().chain(self.held.iter_mut().flat_map(std::mem::take));
        let (objects, bytes) = dropped.fold((0, 0), |(objects, bytes), action| (objects + 1, bytes + action.size));
        if !self.counted {
            self.context.counters.remove_planned(objects, bytes);
        }
        // (Workers that are gone, by a panic `finish` raises, end nothing more.)
        while self.work.ended.load(Ordering::Acquire) < self.sent && !self.workers.all_finished() {
            // The planner's own thread, outside the runtime (it hands copies over with
            // `blocking_send`): waiting here holds no worker up.
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut report = self.work.report.lock().expect("report lock");
        report.listed_again = Some(report.moved);
    }

    /// A saved plan: the display gets its totals at once (its copies are not counted as they
    /// come), and its `max_delete` was checked when it was made (nothing is held).
    pub fn whole_plan(&mut self, copies: crate::plan::Tally) {
        self.context.counters.add_planned(copies.objects, copies.bytes);
        self.context.counters.listed();
        self.counted = true;
        self.held = None;
    }

    fn send(&mut self, action: Action) {
        if let Some(queue) = &self.queue {
            // Fails only when every worker is gone (a panic, which `finish` raises again).
            if queue.blocking_send(action).is_ok() {
                self.sent += 1;
            }
        }
    }

    /// Waits for the copies to end, then deletes, aborts the multipart uploads no copy
    /// continued, removes stale temp files, and reports. `planned` is the plan's totals (its
    /// `temp_files` and `unfinished_uploads` included) or why planning stopped part way;
    /// then the copies already made stand, and held copies and every delete are dropped.
    pub fn finish(mut self, planned: Result<&TransferPlan, PlanningStopped>) -> TransferReport {
        self.context.counters.listed();
        let held = self.held.take().unwrap_or_default();
        if planned.is_ok() {
            // The plan ended well, so both listings were whole and in order.
            for action in held.into_iter().chain(std::mem::take(&mut self.provisional)) {
                self.send(action);
            }
        }
        drop(self.queue.take());
        let steering = self.steering.take();
        self.runtime.block_on(async {
            // Until none are left: the level may rise, and spawn more, while they end.
            loop {
                let workers = self.workers.take();
                if workers.is_empty() {
                    break;
                }
                for task in workers {
                    if let Err(err) = task.await
                        && err.is_panic()
                    {
                        std::panic::resume_unwind(err.into_panic());
                    }
                }
            }
            if let Some((task, stop)) = steering {
                stop.notify_one();
                let _ = task.await;
            }
        });
        let context = &self.context;
        let folders: Vec<PathBuf> = context.touched_folders.lock().expect("folder set").drain().collect();
        folders.par_iter().for_each(|folder| download::sync_folder(folder));
        let mut report = std::mem::replace(
            &mut *self.work.report.lock().expect("report lock"),
            TransferReport::empty("", context.job.direction),
        );
        report.concurrency = (self.sent > 0).then(|| context.level.summary());
        report.bytes_resumed = context.resumed_bytes.load(Ordering::Relaxed);
        report.uploads_restarted = context.restarted_uploads.load(Ordering::Relaxed);
        report.uploads_left = context.uploads_left.lock().expect("uploads lock").len() as u64;
        report.downloads_left = context.partial_downloads.lock().expect("downloads lock").len() as u64;
        match planned {
            Ok(plan) => {
                report.add_plan(plan);
                report.uploads_aborted =
                    self.runtime.block_on(upload::abort_unfinished(context, &plan.unfinished_uploads));
                report.temp_files_removed = remove_stale_temp_files(context, plan);
                self.delete(&mut report);
            }
            Err(stopped) => {
                report.error = Some(stopped.error);
                report.hint = stopped.hint;
                report.stopped_before_start = stopped.interrupted;
                report.stopped_at_deadline = stopped.at_deadline;
            }
        }
        report.group_failures(&self.work.moved_extensions.lock().expect("extensions lock"));
        report
    }

    /// Runs the deletes, unless a copy failed or was interrupted (then they wait for a run
    /// that completes: what a failed copy would replace must not be removed first).
    fn delete(&self, report: &mut TransferReport) {
        if self.deletes.is_empty() {
            return;
        }
        if report.failed.objects > 0 || report.interrupted.objects > 0 || report.left_at_deadline.objects > 0 {
            report.deletes_held_back = self.deletes.len() as u64;
            return;
        }
        let deletes: Vec<&Action> = self.deletes.iter().collect();
        let outcomes = delete::delete_all(&self.context, &deletes, &self.runtime);
        for (action, outcome) in deletes.iter().zip(outcomes) {
            match outcome {
                Ok(()) => report.deleted.add(0),
                Err(failure) => {
                    self.context.counters.fail();
                    report.record_failure(&action.key, action.action, 0, failure, 1);
                }
            }
        }
    }
}

/// One worker: takes copies until none are left, each with its retries, and runs each when
/// the level lets it (it waits for a pass of the objects gate with the copy in hand, so that
/// when the queue ends the workers end, whatever the level).
async fn run_worker(context: Arc<Context>, work: Arc<Work>) {
    while let Some(action) = work.take().await {
        let action = &action;
        let _pass = context.level.objects.enter().await;
        if let Some(until) = crate::s3::pressure::paused_until() {
            // The server said when to come back (`Retry-After`).
            tokio::time::sleep_until(until.into()).await;
        }
        if crate::interrupt::requested() {
            work.record(action, Err((interrupted(), 0)), &context.counters);
            continue;
        }
        let _busy = context.level.busy();
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

/// Whether a haul temp file (`name`, at `path`) belongs to a run that is gone (killed,
/// crashed, power lost). A file from this host is stale when the PID in its name is not a
/// live process; files of live runs, this one included, are not. A file from another host
/// (a shard on another machine writing the same shared folder) cannot be judged by PID: it
/// is stale when nothing has written to it for [`FOREIGN_TEMP_AGE`], as a live download
/// writes all the time.
fn is_stale_temp_file(path: &std::path::Path, name: &str) -> bool {
    let Some(owner) = crate::listing::temp_owner(name) else { return false };
    // A name without a host is from before hosts were named: taken as this host's.
    match owner.host.as_deref() {
        Some(host) if host != crate::listing::this_host() => std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > FOREIGN_TEMP_AGE)),
        _ => owner.pid != std::process::id() && !process_alive(owner.pid),
    }
}

/// Partial downloads stopped runs left, found folder by folder as ranged downloads start
/// there (a plan is not known whole before its downloads start, so they cannot be sorted
/// out first).
#[derive(Default)]
struct StalePartials {
    scanned: HashSet<PathBuf>,
    /// By the key their record names: the file, and the object's size and ETag it was for.
    by_key: HashMap<String, (PathBuf, u64, String)>,
    /// Taken by a download of this run (kept from the clean-up at the end).
    adopted: HashSet<PathBuf>,
}

impl Context {
    /// A stopped run's partial download of `action` in `folder`, if one is there for this
    /// very object (same key, size and ETag where listed); the download checks the record's
    /// ETag against the object's again before it uses a byte. The first call for a folder
    /// reads it.
    fn adopt_stale_partial(&self, folder: &std::path::Path, action: &Action) -> Option<PathBuf> {
        let mut partials = self.stale_partials.lock().expect("partials lock");
        if partials.scanned.insert(folder.to_path_buf()) {
            let found = tokio::task::block_in_place(|| stale_partials_in(folder));
            for (key, entry) in found {
                partials.by_key.entry(key).or_insert(entry);
            }
        }
        let etag = action.source.as_ref().and_then(|source| source.etag.as_ref()).map(crate::etag::ETag::as_str);
        let wanted = partials
            .by_key
            .get(&action.key)
            .is_some_and(|(_, size, recorded)| *size == action.size && etag.is_none_or(|etag| etag == recorded));
        if !wanted {
            return None;
        }
        let (path, ..) = partials.by_key.remove(&action.key)?;
        partials.adopted.insert(path.clone());
        Some(path)
    }
}

/// The stale haul temp files in `folder` with a resume record, by the key it names.
fn stale_partials_in(folder: &std::path::Path) -> Vec<(String, (PathBuf, u64, String))> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let path = entry.path();
            if !crate::listing::is_temp_name(&name) || !is_stale_temp_file(&path, &name) {
                return None;
            }
            let record = resume::Record::read(&std::fs::File::open(&path).ok()?)?;
            tracing::debug!(file = %path.display(), key = %record.key, size = record.size, "a stopped run's partial download");
            Some((record.key, (path, record.size, record.etag)))
        })
        .collect()
}

/// Removes the stale temp files the plan's local walk passed, except partial downloads this
/// run continued or keeps for the next one, and those of keys another shard owns (another
/// shard's partial downloads in a shared folder are that shard's to continue).
fn remove_stale_temp_files(context: &Context, plan: &TransferPlan) -> u64 {
    let adopted = std::mem::take(&mut context.stale_partials.lock().expect("partials lock").adopted);
    let kept: HashSet<PathBuf> = context.partial_downloads.lock().expect("downloads lock").values().cloned().collect();
    let owned = |key: &str| plan.shard.is_none_or(|shard| shard.owns(&plan.name, key));
    let mut removed = 0;
    for relative in &plan.temp_files {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let path = context.job.local.join(relative);
        if adopted.contains(&path) || kept.contains(&path) || !is_stale_temp_file(&path, name) {
            continue;
        }
        let record = std::fs::File::open(&path).ok().and_then(|file| resume::Record::read(&file));
        if record.is_some_and(|found| !owned(&found.key)) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
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

async fn copy(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let reads_source = matches!(action.action, ActionKind::Download | ActionKind::Copy);
    if reads_source && action.source.as_ref().is_some_and(|source| source.archived) {
        archive::readable(context, action).await?;
    }
    match action.action {
        ActionKind::Download => download::download(context, action).await,
        ActionKind::Upload => upload::upload(context, action).await,
        ActionKind::Copy => copy::copy(context, action).await,
        ActionKind::UpdateProperties => properties::update(context, action).await,
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
fn ensure_version(asked: Option<&crate::etag::ETag>, answered: Option<&str>) -> Result<(), RequestFailure> {
    match (asked, answered) {
        (Some(asked), Some(answered)) if !asked.is(answered) => Err(object_changed()),
        _ => Ok(()),
    }
}

/// An object that is no longer the version the plan listed.
fn object_changed() -> RequestFailure {
    RequestFailure::local(
        crate::s3::FailureCode::ObjectChanged,
        "the object changed since the plan; nothing of the new version was written",
        false,
    )
}

/// `overwrite: never`: every copy the plan made is of a key the destination did not have,
/// and is written only if it still has not (another writer may have been first).
fn create_only(context: &Context) -> bool {
    context.job.overwrite == crate::manifest::Overwrite::Never
}

/// A conditional create refused (`412 Precondition Failed` to `If-None-Match: *`): the key
/// exists now, written by someone else, and is kept.
fn created_meanwhile(failure: RequestFailure, create_only: bool) -> RequestFailure {
    if create_only && failure.status == Some(412) { exists_now() } else { failure }
}

fn exists_now() -> RequestFailure {
    RequestFailure::local(
        crate::s3::FailureCode::ExistsNow,
        "another writer created it during the run; kept (overwrite: never)",
        false,
    )
}

/// Why an object stops, or never starts, when a stop is asked for: a signal, or the
/// transfer's deadline.
fn interrupted() -> RequestFailure {
    match crate::interrupt::cause() {
        Some(crate::interrupt::Cause::Deadline) => {
            RequestFailure::local(crate::s3::FailureCode::DeadlineReached, "the deadline came", false)
        }
        _ => RequestFailure::local(crate::s3::FailureCode::Interrupted, "interrupted", false),
    }
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
    use crate::s3::FailureCode;
    let (code, transient) = match err.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => (FailureCode::DiskFull, false),
        Some(libc::EMFILE | libc::ENFILE) => (FailureCode::TooManyOpenFiles, true),
        _ if err.kind() == std::io::ErrorKind::NotFound => (FailureCode::LocalFileGone, false),
        _ => (FailureCode::LocalIo, false),
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
        for (name, stale, what) in &names {
            assert_eq!(is_stale_temp_file(&dir.path().join(name), name), *stale, "{what}: {name}");
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
            Err(RequestFailure::coded("SlowDown", "busy", true))
        });
        let (failure, attempts) = result.unwrap_err();
        assert_eq!((calls, attempts, failure.code.as_deref()), (3, 3, Some("SlowDown")));
    }

    #[test]
    fn permanent_failures_are_not_retried_and_success_stops() {
        let mut calls = 0;
        let result: Result<(), _> = retried(5, || {
            calls += 1;
            Err(RequestFailure::coded("AccessDenied", "no", false))
        });
        assert_eq!((calls, result.unwrap_err().1), (1, 1));
        let mut calls = 0;
        let result = retried(5, || {
            calls += 1;
            if calls < 2 { Err(RequestFailure::coded("InternalError", "oops", true)) } else { Ok(calls) }
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
