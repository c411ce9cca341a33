//! `haul apply`: carry out a manifest (each transfer planned right before it runs) or a saved
//! plan (checked against fresh listings first), under the run lock, with progress, and end
//! with the report and metrics.

use std::io::IsTerminal as _;
use std::path::Path;

use super::plan::Planned;
use super::{Clients, load_with_warnings, print_warnings, resolve_shard, runtime, select_jobs};
use crate::cli::{ApplyArgs, OutputFormat};
use crate::error::{Exit, HaulError};
use crate::exec::{Execution, PlanningStopped};
use crate::listing::sides::with_sides;
use crate::manifest;
use crate::plan::expected::{EarlierPlans, ExpectedWrites};
use crate::plan::saved::{PlanHeader, SavedEvent, SavedTransfers};
use crate::plan::{ManifestRef, PlanFileError, TransferPlan};
use crate::progress::{Counters, ProgressMode, Ticker};
use crate::render::Style;
use crate::report::{RunReport, TransferReport};
use crate::shard::Shard;

pub(super) fn run(args: ApplyArgs, style: Style) -> Result<Exit, HaulError> {
    let mut options = ApplyOptions {
        only: args.only.only,
        output: args.output.output,
        report: args.report,
        metrics_file: args.metrics_file,
        lock_file: args.lock_file,
        progress: progress_mode(args.quiet, args.progress_interval),
        shard: resolve_shard(&args.shard)?,
        manifest: args.target.clone(),
        bwlimit: args.bwlimit.map(|rate| rate.0),
    };
    let started = std::time::SystemTime::now();
    let result = apply(&args.target, &mut options, style);
    // A successful or failed run wrote its metrics with its report; a run that stopped
    // before transferring says so too, so a broken nightly job shows up. (Not a run
    // that found the lock held: the holder will write them.)
    if let (Err(err), Some(path)) = (&result, &options.metrics_file)
        && !matches!(err, HaulError::Lock(crate::lock::LockError::Held { .. }))
    {
        write_metrics(path, &options, started, err.exit(), None);
    }
    result
}

/// Bars on a terminal, timestamped lines every `interval` seconds elsewhere, or nothing.
pub(super) fn progress_mode(quiet: bool, interval: u64) -> ProgressMode {
    if quiet {
        ProgressMode::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Bars
    } else {
        ProgressMode::Lines(std::time::Duration::from_secs(interval.max(1)))
    }
}

/// How one `apply` (or `sync`) runs and reports.
pub(super) struct ApplyOptions {
    pub only: Vec<String>,
    pub output: OutputFormat,
    pub report: Option<std::path::PathBuf>,
    pub metrics_file: Option<std::path::PathBuf>,
    pub lock_file: Option<std::path::PathBuf>,
    pub progress: ProgressMode,
    /// From `--shard`, or from the saved plan.
    pub shard: Option<Shard>,
    /// The manifest the run carries out (a saved plan's own, once it is read).
    pub manifest: std::path::PathBuf,
    /// `--bwlimit`: every transfer's bandwidth cap, over the manifest's.
    pub bwlimit: Option<u64>,
}

fn apply(target: &Path, options: &mut ApplyOptions, style: Style) -> Result<Exit, HaulError> {
    crate::interrupt::install().map_err(HaulError::Runtime)?;
    // A saved plan is JSON that says so; anything else is read as a manifest. Its header is
    // read as a stream: a saved plan may be larger than memory should hold.
    let header = match target.is_file() {
        true => PlanHeader::read(|| std::fs::File::open(target))
            .map_err(|source| HaulError::PlanFile { path: target.to_path_buf(), source })?,
        // Said by the manifest's loader, as for any manifest that cannot be read.
        false => None,
    };
    if let Some(header) = header {
        if !options.only.is_empty() {
            return Err(HaulError::OnlyWithSavedPlan);
        }
        if options.shard.is_some() {
            return Err(HaulError::ShardWithSavedPlan);
        }
        options.shard = header.shard;
        options.manifest = header.manifest.path.clone();
        return apply_saved(target, header, options, style);
    }
    let mut loaded = load_with_warnings(target, style)?;
    cap_bandwidth(&mut loaded, options.bwlimit);
    apply_manifest(&loaded, target, options)
}

/// `--bwlimit` over every transfer's own `bandwidth`.
fn cap_bandwidth(loaded: &mut manifest::Manifest, rate: Option<u64>) {
    if let Some(rate) = rate {
        for job in &mut loaded.jobs {
            job.bandwidth = Some(rate);
        }
    }
}

/// Carries out a loaded manifest: each transfer planned as it runs. `lock_base`
/// (the manifest's path) names the run lock, unless `--lock-file` does.
pub(super) fn apply_manifest(
    loaded: &manifest::Manifest,
    lock_base: &Path,
    options: &ApplyOptions,
) -> Result<Exit, HaulError> {
    let jobs = select_jobs(&loaded.jobs, &options.only)?;
    let _lock = take_lock(lock_base, options)?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let run = Run::start(options);
    let run_started = crate::plan::saved::now_seconds();
    let mut reports = Vec::new();
    // Each transfer is planned as it runs, after the ones before it, so it sees what they
    // wrote (an upload, then a download of the same prefix).
    let count = jobs.len();
    for (index, job) in jobs.into_iter().enumerate() {
        if crate::interrupt::requested() {
            reports.push(TransferReport::interrupted_before_start(&job.name, job.direction));
            continue;
        }
        run.counters.begin_transfer(index + 1, count, &job.name);
        let client = clients.get(&runtime, job);
        let to_client = clients.to(&runtime, job);
        // Copies start while the listing goes on; the plan's totals come at its end.
        let mut execution = Execution::start(job, &client, to_client.as_ref(), runtime.handle(), &run.counters);
        let planned = super::plan::plan_into(
            job,
            &client,
            to_client.as_ref(),
            runtime.handle(),
            options.shard,
            run_started,
            &ExpectedWrites::default(),
            &mut |planned| match planned {
                Planned::Action { action, provisional } => execution.push(action, provisional),
                Planned::DestinationListed => execution.destination_listed(),
                Planned::ListedAgain => execution.listed_again(),
            },
        );
        reports.push(match planned {
            // A stop cut the listing short: what it planned is not the whole, so no delete.
            _ if crate::interrupt::requested() => execution.finish(Err(PlanningStopped::interrupted())),
            Ok(plan) => {
                tracing::info!(transfer = %job.name, "planned: {}", crate::plan::render::summary_line(&plan));
                execution.finish(Ok(&plan))
            }
            // Said once, in the report (with its hint), not also on stderr.
            Err(err) => execution.finish(Err(stopped_by(&err))),
        });
    }
    run.finish(reports, options)
}

/// Carries out a saved plan after checking that nothing it acts on changed since. The plan
/// file is read twice as a stream (once to check, once to run), never held whole.
fn apply_saved(path: &Path, header: PlanHeader, options: &ApplyOptions, style: Style) -> Result<Exit, HaulError> {
    let manifest_path = &header.manifest.path;
    let _lock = take_lock(manifest_path, options)?;
    let mut loaded = manifest::load_manifest(manifest_path)?;
    cap_bandwidth(&mut loaded, options.bwlimit);
    if ManifestRef::new(manifest_path.clone(), &loaded.source.text) != header.manifest {
        return Err(HaulError::ManifestChanged { path: manifest_path.clone() });
    }
    print_warnings(&loaded, style);
    // The digest matched, so every transfer in the plan is in the manifest.
    let jobs: Vec<&manifest::Job> = header
        .transfers
        .iter()
        .map(|name| loaded.jobs.iter().find(|job| &job.name == name))
        .collect::<Option<_>>()
        .ok_or_else(|| HaulError::ManifestChanged { path: manifest_path.clone() })?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let read_plan = || {
        let file = std::fs::File::open(path).map_err(|source| {
            HaulError::Manifest(manifest::ManifestError::Read { path: path.to_path_buf(), source })
        })?;
        Ok::<_, HaulError>(SavedTransfers::read(file))
    };
    let damaged = |source| HaulError::PlanFile { path: path.to_path_buf(), source };

    // First pass: every action against fresh listings. A server found listing out of key
    // order cut the check of its transfer short (the plan is read as a stream, once per
    // pass): the pass starts over, and that server is listed sorted from then on.
    type Checked = (Vec<crate::plan::Tally>, Vec<crate::plan::StaleObject>);
    // `Err(transfer)`: that transfer's check was cut short.
    let mut first_pass = || -> Result<Result<Checked, String>, HaulError> {
        let mut earlier = EarlierPlans::new(&jobs);
        let mut copies = Vec::new();
        let mut stale = Vec::new();
        let mut events = read_plan()?;
        for (index, job) in jobs.iter().copied().enumerate() {
            expect_begin(&mut events, &job.name).map_err(damaged)?;
            let client = clients.get(&runtime, job);
            let to_client = clients.to(&runtime, job);
            // What the transfers before this one will write was planned in, as `plan` did.
            let expected = earlier.expected_for(index, header.created * 1000);
            let mut actions = TransferActions::new(&mut events, earlier.keeps(index));
            if !actions.is_empty() {
                let mut listings = 0;
                let (found, _) = with_sides(
                    job,
                    &client,
                    to_client.as_ref(),
                    runtime.handle(),
                    || {},
                    |source, destination, _| {
                        listings += 1;
                        (listings == 1).then(|| {
                            let source = expected.overlay(source);
                            crate::plan::saved::stale_objects(&job.name, &mut actions, source, destination)
                        })
                    },
                )
                .map_err(|err| HaulError::sides(job, err))?;
                let Some(found) = found else { return Ok(Err(job.name.clone())) };
                stale.extend(found);
            }
            let (plan, kept_actions) = actions.finish();
            let mut plan = plan.map_err(damaged)?;
            copies.push(plan.copies());
            plan.actions = kept_actions.unwrap_or_default();
            earlier.add(Some(plan));
        }
        Ok(Ok((copies, stale)))
    };
    let (copies, stale) = match first_pass()? {
        Ok(checked) => checked,
        Err(_) => first_pass()?.map_err(|transfer| HaulError::UncheckablePlan { transfer })?,
    };
    if !stale.is_empty() {
        return Err(HaulError::StalePlan { objects: stale });
    }

    // Second pass: carry it out.
    let run = Run::start(options);
    let mut events = read_plan()?;
    let mut reports = Vec::new();
    let count = jobs.len();
    for (index, job) in jobs.iter().copied().enumerate() {
        expect_begin(&mut events, &job.name).map_err(damaged)?;
        run.counters.begin_transfer(index + 1, count, &job.name);
        let client = clients.get(&runtime, job);
        let to_client = clients.to(&runtime, job);
        let mut execution = Execution::start(job, &client, to_client.as_ref(), runtime.handle(), &run.counters);
        // The plan's totals are known from the first pass, and its `max_delete` was checked
        // when it was made.
        execution.whole_plan(copies[index]);
        let mut actions = TransferActions::new(&mut events, false);
        for action in &mut actions {
            // A saved plan was decided from whole listings.
            execution.push(action, false);
        }
        reports.push(match actions.finish().0 {
            Ok(plan) => execution.finish(Ok(&plan)),
            Err(err) => execution.finish(Err(stopped_by(&damaged(err)))),
        });
    }
    run.finish(reports, options)
}

/// Why a transfer stopped before its plan was whole, for its report (with the error's hint).
fn stopped_by(err: &HaulError) -> PlanningStopped {
    PlanningStopped { error: err.to_string(), hint: err.help(), interrupted: false }
}

/// The next event must start transfer `name`.
fn expect_begin(events: &mut SavedTransfers, name: &str) -> Result<(), PlanFileError> {
    match events.next() {
        Some(Ok(SavedEvent::Begin(found))) if found == name => Ok(()),
        Some(Err(err)) => Err(err),
        _ => Err(PlanFileError::Malformed(format!("transfer `{name}` is not where its header says"))),
    }
}

/// One transfer's actions from a saved plan, up to its end (kept in `end`), and a copy of
/// them when a later transfer plans on what this one writes.
struct TransferActions<'a> {
    events: &'a mut SavedTransfers,
    /// An action read ahead (by `is_empty`).
    ahead: Option<crate::plan::Action>,
    end: Option<Result<TransferPlan, PlanFileError>>,
    kept: Option<Vec<crate::plan::Action>>,
}

impl<'a> TransferActions<'a> {
    fn new(events: &'a mut SavedTransfers, keep: bool) -> Self {
        TransferActions { events, ahead: None, end: None, kept: keep.then(Vec::new) }
    }

    fn read(&mut self) -> Option<crate::plan::Action> {
        if self.end.is_some() {
            return None;
        }
        let end = match self.events.next() {
            Some(Ok(SavedEvent::Action(action))) => return Some(action),
            Some(Ok(SavedEvent::End(plan))) => Ok(plan),
            Some(Ok(SavedEvent::Begin(name))) => {
                Err(PlanFileError::Malformed(format!("transfer `{name}` starts inside another")))
            }
            Some(Err(err)) => Err(err),
            None => Err(PlanFileError::Malformed("the plan ends inside a transfer".into())),
        };
        self.end = Some(end);
        None
    }

    /// Whether the transfer has no actions.
    fn is_empty(&mut self) -> bool {
        if self.ahead.is_none() {
            self.ahead = self.read();
        }
        self.ahead.is_none()
    }

    /// Reads to the transfer's end: its totals, and its actions when they were to be kept.
    fn finish(mut self) -> (Result<TransferPlan, PlanFileError>, Option<Vec<crate::plan::Action>>) {
        while self.next().is_some() {}
        let end = self.end.take().unwrap_or_else(|| Err(PlanFileError::Malformed("a transfer has no end".into())));
        (end, self.kept.take())
    }
}

impl Iterator for TransferActions<'_> {
    type Item = crate::plan::Action;

    fn next(&mut self) -> Option<crate::plan::Action> {
        let action = match self.ahead.take() {
            Some(action) => action,
            None => self.read()?,
        };
        if let Some(kept) = &mut self.kept {
            kept.push(action.clone());
        }
        Some(action)
    }
}

/// The run lock of a manifest: `--lock-file`, or the default one for its path.
fn take_lock(manifest: &Path, options: &ApplyOptions) -> Result<Vec<crate::lock::RunLock>, HaulError> {
    let path = options.lock_file.clone().unwrap_or_else(|| crate::lock::default_path(manifest));
    Ok(crate::lock::acquire_for(&path, options.shard)?)
}

/// One `apply`: the clock, the progress display, and the report at the end.
struct Run {
    started: std::time::SystemTime,
    clock: std::time::Instant,
    counters: std::sync::Arc<Counters>,
    ticker: Ticker,
}

impl Run {
    fn start(options: &ApplyOptions) -> Run {
        let counters = std::sync::Arc::new(Counters::default());
        let ticker = Ticker::start(counters.clone(), options.progress);
        Run { started: std::time::SystemTime::now(), clock: std::time::Instant::now(), counters, ticker }
    }

    fn finish(self, reports: Vec<TransferReport>, options: &ApplyOptions) -> Result<Exit, HaulError> {
        self.ticker.finish();
        let mut report = RunReport::new(self.started, self.clock.elapsed(), reports);
        report.shard = options.shard;
        tracing::info!(
            moved = report.moved.objects,
            bytes = report.moved.bytes,
            failed = report.failed.objects,
            seconds = report.duration_seconds,
            interrupted = report.interrupted,
            "run finished"
        );
        let exit = if report.interrupted {
            Exit::Interrupted
        } else if report.succeeded() {
            Exit::Success
        } else {
            Exit::Failure
        };
        if let Some(path) = &options.metrics_file {
            write_metrics(path, options, self.started, exit, Some(&report));
        }
        if let Some(path) = &options.report {
            let path = crate::shard::expand_path(path, options.shard);
            crate::output_file::write(&path, (report.to_json() + "\n").as_bytes())
                .map_err(|source| HaulError::Write { path, source })?;
        }
        let printed = match options.output {
            OutputFormat::Table => super::print_all(report.table().as_bytes()),
            OutputFormat::Json => super::print_all((report.to_json() + "\n").as_bytes()),
        };
        match printed {
            // The transfers are done: a reader that went away does not change how they went.
            Err(err) if err.is_closed_output() => Ok(exit),
            Err(err) => Err(err),
            Ok(()) => Ok(exit),
        }
    }
}

/// Writes the metrics file; a failure to write it is reported but does not change the run's
/// outcome (the transfers are what matter).
fn write_metrics(
    path: &Path,
    options: &ApplyOptions,
    started: std::time::SystemTime,
    exit: Exit,
    report: Option<&RunReport>,
) {
    let path = crate::shard::expand_path(path, options.shard);
    let run = crate::metrics::RunMetrics {
        manifest: &options.manifest,
        shard: options.shard,
        started,
        finished: std::time::SystemTime::now(),
        exit_code: exit.code(),
        report,
    };
    if let Err(err) = crate::metrics::write(&path, &run) {
        eprintln!("warning: cannot write the metrics file `{}`: {err}", path.display());
    }
}
