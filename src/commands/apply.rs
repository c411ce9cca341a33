//! `haul apply`: carry out a manifest (each transfer planned right before it runs) or a saved
//! plan (checked against fresh listings first), under the run lock, with progress, and end
//! with the report and metrics.

use std::io::IsTerminal as _;
use std::path::Path;

use super::{load_with_warnings, print_warnings, resolve_shard};
use crate::cli::{ApplyArgs, OutputFormat};
use crate::engine::apply::SavedPlan;
use crate::engine::{Engine, select_jobs};
use crate::error::{Exit, HaulError};
use crate::manifest;
use crate::plan::ManifestRef;
use crate::plan::saved::{PlanHeader, ShardShare};
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
        at: args.at.at,
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
    /// `--at`: the moment a manifest's dates and ages are read at (now without it).
    pub at: Option<manifest::Moment>,
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
        if let (Some(planned), Some(_)) = (header.shard, options.shard) {
            return Err(HaulError::ShardWithSavedPlan { planned });
        }
        if options.at.is_some() {
            return Err(HaulError::AtWithSavedPlan);
        }
        // A plan of every key applied as one shard of it (`--shard`), or as the shard it
        // was made for.
        options.shard = options.shard.or(header.shard);
        options.manifest = header.manifest.path.clone();
        return apply_saved(target, header, options, style);
    }
    let at = options.at.clone().unwrap_or_else(manifest::Moment::now);
    let mut loaded = load_with_warnings(target, &at, style)?;
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
    let mut engine = Engine::new()?;
    let run = Run::start(options);
    let reports = engine.apply_jobs(&jobs, options.shard, crate::plan::saved::now_seconds(), &run.counters)?;
    run.finish(reports, options)
}

/// Carries out a saved plan after checking that nothing it acts on changed since. The plan
/// file is read twice as a stream (once to check, once to run), never held whole.
fn apply_saved(path: &Path, header: PlanHeader, options: &ApplyOptions, style: Style) -> Result<Exit, HaulError> {
    let manifest_path = &header.manifest.path;
    let _lock = take_lock(manifest_path, options)?;
    // The dates in its paths and the ages in its windows as they were when it was planned.
    let mut loaded = manifest::load_manifest(manifest_path, &header.at)?;
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
    let started = crate::plan::saved::now_seconds();
    // A plan made for one shard holds that shard's actions alone; a plan of every key
    // applied with `--shard` is split here.
    let share = options.shard.filter(|_| header.shard.is_none()).map(|shard| ShardShare { shard });
    let saved = SavedPlan { path: path.to_path_buf(), jobs, created: header.created, started, share };
    let mut engine = Engine::new()?;
    let copies = engine.check_saved(&saved)?;
    let run = Run::start(options);
    let reports = engine.apply_saved(&saved, &copies, &run.counters)?;
    run.finish(reports, options)
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
        } else if !report.succeeded() {
            Exit::Failure
        } else if report.stopped_at_deadline {
            Exit::Deadline
        } else {
            Exit::Success
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
        say!("warning: cannot write the metrics file `{}`: {err}", path.display());
    }
}
