//! One function per subcommand: glue between the CLI and the pipeline stages.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use crate::account::ls::{LsOptions, S3Url};
use crate::cli::{Cli, Command, OutputFormat, ShardArgs, TargetArgs};
use crate::content_check::ContentChecker;
use crate::error::{Exit, HaulError};
use crate::exec::Transfer;
use crate::listing::Item;
use crate::listing::local::LocalWalk;
use crate::listing::remote::{FolderListing, ListError, Order, RemoteListing};
use crate::manifest::{self, Job};
use crate::manifest::{CompareMode, Direction, S3Target};
use crate::plan::expected::{ExpectedWrites, Writers};
use crate::plan::{ManifestRef, PlanDocument, TransferPlan};
use crate::progress::{Counters, ProgressMode, Ticker};
use crate::render::{self, Style};
use crate::report::{RunReport, TransferReport};
use crate::shard::Shard;

/// The starter manifest `haul init` writes (also checked by the tests to be valid).
pub const STARTER_MANIFEST: &str = include_str!("starter.yaml");

pub fn run(cli: Cli, style: Style) -> Result<Exit, HaulError> {
    match cli.command {
        Command::Validate { manifests } => validate(&manifests, style),
        Command::Plan { manifest, only, output, detailed_exitcode, out, shard } => {
            let shard = resolve_shard(&shard)?;
            plan(&manifest, &only.only, output.output, detailed_exitcode, out.as_deref(), shard, style)
        }
        Command::Apply { target, only, output, report, metrics_file, quiet, progress_interval, lock_file, shard } => {
            let mut options = ApplyOptions {
                only: only.only,
                output: output.output,
                report,
                metrics_file,
                lock_file,
                progress: if quiet {
                    ProgressMode::Quiet
                } else if std::io::stderr().is_terminal() {
                    ProgressMode::Bars
                } else {
                    ProgressMode::Lines(std::time::Duration::from_secs(progress_interval.max(1)))
                },
                shard: resolve_shard(&shard)?,
                manifest: target.clone(),
            };
            let started = std::time::SystemTime::now();
            let result = apply(&target, &mut options, style);
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
        Command::Whoami { target, manifest, output } => whoami(&target, manifest.as_deref(), output, style),
        Command::Ls { url, target, recursive, human_readable, summarize, owner, request_payer, output } => {
            let options = crate::account::ls::LsOptions {
                recursive,
                human_readable,
                summarize,
                owner,
                json: output == OutputFormat::Json,
            };
            ls(url.as_deref(), &target, request_payer, options)
        }
        Command::Check { manifest, only, output } => check(&manifest, &only.only, output.output, style),
        Command::Schema => schema(),
        Command::Init { path } => init(&path),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "haul", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(Exit::Success)
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            // A closed pipe (`haul man | head`) is not an error.
            let _ = page.render(&mut std::io::stdout());
            Ok(Exit::Success)
        }
    }
}

/// The shard of `--shard I/N` or `--shard auto` (from the batch engine's environment).
fn resolve_shard(args: &ShardArgs) -> Result<Option<Shard>, HaulError> {
    let shard = match args.shard.as_deref() {
        None => return Ok(None),
        Some("auto") => Shard::from_environment(|name| std::env::var(name).ok(), args.shard_count)?,
        Some(text) => {
            if let Some(count) = args.shard_count {
                return Err(crate::shard::ShardError::CountWithoutAuto { count }.into());
            }
            Shard::parse(text)?
        }
    };
    tracing::info!(%shard, "running one shard");
    Ok(Some(shard))
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

fn validate(paths: &[std::path::PathBuf], style: Style) -> Result<Exit, HaulError> {
    let mut exit = Exit::Success;
    let stdout = std::io::stdout();
    for path in paths {
        match manifest::load_manifest(path) {
            Ok(loaded) => {
                print_warnings(&loaded, style);
                let mut out = stdout.lock();
                let count = loaded.jobs.len();
                let _ =
                    writeln!(out, "{}: valid, {count} transfer{}", path.display(), if count == 1 { "" } else { "s" });
                for job in &loaded.jobs {
                    let _ = writeln!(out, "  {}", crate::text::printable_lines(&describe(job)));
                }
            }
            // Every file is checked and reported, so one run shows all that needs fixing.
            Err(err) => {
                eprint!("{}", render::error(&HaulError::Manifest(err), style));
                exit = Exit::Invalid;
            }
        }
    }
    Ok(exit)
}

/// One line per transfer: name, direction, where from and to, and its filters.
fn describe(job: &Job) -> String {
    let route = manifest::route(job.direction, &job.bucket, &job.prefix, &job.local);
    let summary = &job.filter_summary;
    let mut filters = Vec::new();
    if !summary.extensions.is_empty() {
        filters.push(format!("extensions: {}", summary.extensions.join(", ")));
    }
    if !summary.include.is_empty() {
        filters.push(format!("include: {}", summary.include.join(", ")));
    }
    if !summary.exclude.is_empty() {
        filters.push(format!("exclude: {}", summary.exclude.join(", ")));
    }
    if job.delete {
        filters.push(format!("delete up to {}", job.max_delete.unwrap_or(0)));
    }
    let filters = if filters.is_empty() { "all files".to_string() } else { filters.join("; ") };
    let mut line = format!("{}  {}  {route}  [{filters}]", job.name, job.direction);
    // A folder reached through a symbolic link is written through it: say where that is.
    if let Ok(real) = std::fs::canonicalize(&job.local)
        && real != job.local
    {
        line.push_str(&format!(
            "\n    note: `{}` is reached through a symbolic link: it is `{}`",
            job.local.display(),
            real.display()
        ));
    }
    line
}

fn schema() -> Result<Exit, HaulError> {
    // A closed pipe (`haul schema | head`) is not an error worth a message.
    let _ = writeln!(std::io::stdout(), "{}", schema_json());
    Ok(Exit::Success)
}

/// The schema exactly as checked in under `schemas/manifest.schema.json`.
pub fn schema_json() -> String {
    serde_json::to_string_pretty(&manifest::manifest_schema()).expect("a schema serializes to JSON")
}

fn init(path: &Path) -> Result<Exit, HaulError> {
    // create_new: never overwrite, even if the file appears between a check and the write.
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(HaulError::InitTargetExists { path: path.to_path_buf() });
        }
        Err(source) => {
            return Err(HaulError::Write { path: path.to_path_buf(), source });
        }
    };
    file.write_all(STARTER_MANIFEST.as_bytes())
        .map_err(|source| HaulError::Write { path: path.to_path_buf(), source })?;
    // A closed pipe is not an error (`haul init | head`): output goes through `let _ = write`.
    let _ =
        writeln!(std::io::stdout(), "wrote {}; edit it, then run `haul validate {}`", path.display(), path.display());
    Ok(Exit::Success)
}

fn plan(
    path: &Path,
    only: &[String],
    output: OutputFormat,
    detailed_exitcode: bool,
    out: Option<&Path>,
    shard: Option<Shard>,
    style: Style,
) -> Result<Exit, HaulError> {
    let loaded = load_with_warnings(path, style)?;
    let jobs = select_jobs(&loaded.jobs, only)?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let created = crate::plan::saved::now_seconds();
    let mut planned: Vec<&Job> = Vec::new();
    let mut plans: Vec<TransferPlan> = Vec::new();
    let mut writers = Writers::default();
    let mut failed = false;
    for job in jobs {
        let client = clients.get(&runtime, job);
        // `apply` will run the transfers before this one first: plan it on what they write.
        let earlier = writers.under_source_of(job).into_iter().map(|i| (planned[i], &plans[i]));
        let expected = ExpectedWrites::for_source_of(job, earlier, created * 1000);
        match plan_job(job, &client, runtime.handle(), shard, &expected, created) {
            Ok(plan) => {
                if output == OutputFormat::Table {
                    let _ = write!(std::io::stdout(), "{}", crate::plan::render::table(&plan));
                }
                writers.add(plans.len(), job);
                planned.push(job);
                plans.push(plan);
            }
            Err(err) => {
                // One transfer failing to plan does not hide the others' plans.
                eprint!("{}", render::error(&err, style));
                failed = true;
            }
        }
    }
    let changes = plans.iter().any(TransferPlan::has_changes);
    let document = PlanDocument::new(manifest_ref(path, &loaded.source.text), created, plans, shard);
    if output == OutputFormat::Json {
        let _ = writeln!(std::io::stdout(), "{}", document.to_json());
    }
    if let Some(out) = out.map(|out| crate::shard::expand_path(out, shard)) {
        let out = out.as_path();
        if failed {
            // A partial plan saved under the name cron will apply would be a trap.
            eprintln!("not saving {}: some transfers could not be planned", out.display());
        } else {
            crate::output_file::write(out, (document.to_json() + "\n").as_bytes())
                .map_err(|source| HaulError::Write { path: out.to_path_buf(), source })?;
            if output == OutputFormat::Table {
                let _ = writeln!(
                    std::io::stdout(),
                    "saved to {}; carry it out with `haul apply {}`",
                    out.display(),
                    out.display()
                );
            }
        }
    }
    Ok(if failed {
        Exit::Failure
    } else if detailed_exitcode && changes {
        Exit::ChangesPending
    } else {
        Exit::Success
    })
}

/// The manifest as a saved plan names it: absolute path and digest.
fn manifest_ref(path: &Path, text: &str) -> ManifestRef {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    ManifestRef::new(absolute, text)
}

/// One SDK client per distinct target (profile, region, endpoint, ...), shared by its jobs.
#[derive(Default)]
struct Clients(HashMap<S3Target, aws_sdk_s3::Client>);

impl Clients {
    fn get(&mut self, runtime: &tokio::runtime::Runtime, job: &Job) -> aws_sdk_s3::Client {
        self.0.entry(job.target.clone()).or_insert_with(|| runtime.block_on(crate::s3::client(&job.target))).clone()
    }
}

struct ApplyOptions {
    only: Vec<String>,
    output: OutputFormat,
    report: Option<std::path::PathBuf>,
    metrics_file: Option<std::path::PathBuf>,
    lock_file: Option<std::path::PathBuf>,
    progress: ProgressMode,
    /// From `--shard`, or from the saved plan.
    shard: Option<Shard>,
    /// The manifest the run carries out (a saved plan's own, once it is read).
    manifest: std::path::PathBuf,
}

fn apply(target: &Path, options: &mut ApplyOptions, style: Style) -> Result<Exit, HaulError> {
    crate::interrupt::install().map_err(HaulError::Runtime)?;
    let text = std::fs::read_to_string(target)
        .map_err(|source| HaulError::Manifest(manifest::ManifestError::Read { path: target.to_path_buf(), source }));
    // A saved plan is JSON that says so; anything else is read as a manifest.
    if let Ok(text) = &text
        && let Some(document) = PlanDocument::from_json(text)
            .map_err(|source| HaulError::PlanFile { path: target.to_path_buf(), source })?
    {
        if !options.only.is_empty() {
            return Err(HaulError::OnlyWithSavedPlan);
        }
        if options.shard.is_some() {
            return Err(HaulError::ShardWithSavedPlan);
        }
        options.shard = document.shard;
        options.manifest = document.manifest.path.clone();
        return apply_saved(document, options, style);
    }
    let loaded = load_with_warnings(target, style)?;
    let jobs = select_jobs(&loaded.jobs, &options.only)?;
    let _lock = take_lock(target, options)?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let run = Run::start(options);
    let run_started = crate::plan::saved::now_seconds();
    let mut reports = Vec::new();
    // Each transfer is planned right before it runs, so a transfer sees what the ones before
    // it wrote (an upload, then a download of the same prefix).
    for job in jobs {
        if crate::interrupt::requested() {
            reports.push(TransferReport::interrupted_before_start(&job.name, job.direction));
            continue;
        }
        let client = clients.get(&runtime, job);
        match plan_job(job, &client, runtime.handle(), options.shard, &ExpectedWrites::default(), run_started) {
            Ok(plan) => {
                tracing::info!(transfer = %job.name, "planned: {}", crate::plan::render::summary_line(&plan));
                let transfer = Transfer { job, plan: &plan, client };
                reports.push(crate::exec::execute_transfer(&transfer, runtime.handle(), &run.counters));
            }
            // Said once, in the report (with its hint), not also on stderr.
            Err(err) => {
                let mut report = TransferReport::not_run(&job.name, job.direction, err.to_string());
                report.hint = err.help();
                reports.push(report);
            }
        }
    }
    run.finish(reports, options)
}

/// Carries out a saved plan after checking that nothing it acts on changed since.
fn apply_saved(document: PlanDocument, options: &ApplyOptions, style: Style) -> Result<Exit, HaulError> {
    let manifest_path = &document.manifest.path;
    let _lock = take_lock(manifest_path, options)?;
    let loaded = manifest::load_manifest(manifest_path)?;
    if ManifestRef::new(manifest_path.clone(), &loaded.source.text) != document.manifest {
        return Err(HaulError::ManifestChanged { path: manifest_path.clone() });
    }
    print_warnings(&loaded, style);
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut writers = Writers::default();
    let mut stale = Vec::new();
    for plan in &document.transfers {
        // The digest matched, so every transfer in the plan is in the manifest.
        let Some(job) = loaded.jobs.iter().find(|job| job.name == plan.name) else {
            return Err(HaulError::ManifestChanged { path: manifest_path.clone() });
        };
        let client = clients.get(&runtime, job);
        if plan.has_changes() {
            // What the transfers before this one will write was planned in, as `plan` did.
            let earlier = writers.under_source_of(job).into_iter().map(|i| (transfers[i].job, transfers[i].plan));
            let expected = ExpectedWrites::for_source_of(job, earlier, document.created * 1000);
            let (found, _) = with_listings(job, &client, runtime.handle(), |source, destination| {
                plan.stale_objects(expected.overlay(source), destination)
            })?;
            stale.extend(found);
        }
        writers.add(transfers.len(), job);
        transfers.push(Transfer { job, plan, client });
    }
    if !stale.is_empty() {
        return Err(HaulError::StalePlan { objects: stale });
    }
    let run = Run::start(options);
    let reports = transfers.iter().map(|t| crate::exec::execute_transfer(t, runtime.handle(), &run.counters)).collect();
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
        let mut stdout = std::io::stdout().lock();
        let _ = match options.output {
            OutputFormat::Table => write!(stdout, "{}", report.table()),
            OutputFormat::Json => writeln!(stdout, "{}", report.to_json()),
        };
        Ok(exit)
    }
}

/// The target of a command that takes flags instead of a manifest.
fn flag_target(args: &TargetArgs, request_payer: bool) -> S3Target {
    S3Target {
        profile: args.profile.clone(),
        region: args.region.clone(),
        endpoint: args.endpoint.clone(),
        path_style: args.path_style,
        request_payer,
        retries: 3,
    }
}

fn whoami(args: &TargetArgs, manifest: Option<&Path>, output: OutputFormat, style: Style) -> Result<Exit, HaulError> {
    let runtime = runtime()?;
    let targets: Vec<(S3Target, &str)> = match manifest {
        None => vec![(flag_target(args, false), "--region")],
        Some(path) => {
            let loaded = load_with_warnings(path, style)?;
            let mut distinct: Vec<S3Target> = Vec::new();
            for job in &loaded.jobs {
                // Request payer and retries do not change who one is.
                let target = S3Target { request_payer: false, retries: 3, ..job.target.clone() };
                if !distinct.contains(&target) {
                    distinct.push(target);
                }
            }
            distinct.into_iter().map(|t| (t, "the manifest")).collect()
        }
    };
    let identities: Vec<_> = targets
        .iter()
        .map(|(target, explicit)| runtime.block_on(crate::account::whoami::whoami(target, explicit)))
        .collect();
    let mut stdout = std::io::stdout().lock();
    match output {
        OutputFormat::Json => {
            let value = if manifest.is_some() {
                serde_json::to_string_pretty(&identities)
            } else {
                serde_json::to_string_pretty(&identities[0])
            };
            let _ = writeln!(stdout, "{}", value.expect("identities serialize"));
        }
        OutputFormat::Table => {
            for (index, identity) in identities.iter().enumerate() {
                if index > 0 {
                    let _ = writeln!(stdout);
                }
                let _ = write!(stdout, "{}", crate::account::whoami::table(identity));
            }
        }
    }
    Ok(if identities.iter().all(|i| i.ok()) { Exit::Success } else { Exit::Failure })
}

fn ls(url: Option<&str>, args: &TargetArgs, request_payer: bool, options: LsOptions) -> Result<Exit, HaulError> {
    let runtime = runtime()?;
    let target = flag_target(args, request_payer);
    let client = runtime.block_on(crate::s3::client(&target));
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let result = match url {
        None => runtime
            .block_on(crate::account::ls::list_buckets(&client, options, &mut stdout))
            .map_err(|failure| HaulError::Request { what: "cannot list buckets".into(), failure }),
        Some(text) => {
            let url = S3Url::parse(text).ok_or_else(|| HaulError::BadS3Url { url: text.to_string() })?;
            runtime.block_on(crate::account::ls::list_objects(&client, &url, options, &mut stdout)).map_err(|failure| {
                HaulError::Request { what: format!("cannot list s3://{}/{}", url.bucket, url.prefix), failure }
            })
        }
    };
    let _ = stdout.flush();
    result.map(|()| Exit::Success)
}

fn check(path: &Path, only: &[String], output: OutputFormat, style: Style) -> Result<Exit, HaulError> {
    let loaded = load_with_warnings(path, style)?;
    let jobs = select_jobs(&loaded.jobs, only)?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let mut rows = Vec::new();
    for job in jobs {
        let client = clients.get(&runtime, job);
        let region = client.config().region().map(|r| r.to_string());
        rows.extend(runtime.block_on(crate::account::check::check_transfer(job, &client, region.as_deref())));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = match output {
        OutputFormat::Table => write!(stdout, "{}", crate::account::check::table(&rows)),
        OutputFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&rows).expect("rows serialize")),
    };
    let failed = rows.iter().any(|row| row.status == crate::account::check::Status::Fail);
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

/// Loads a manifest for a command that goes on to use it; its warnings go to stderr.
fn load_with_warnings(path: &Path, style: Style) -> Result<manifest::Manifest, HaulError> {
    let loaded = manifest::load_manifest(path)?;
    print_warnings(&loaded, style);
    Ok(loaded)
}

fn print_warnings(loaded: &manifest::Manifest, style: Style) {
    if !loaded.warnings.is_empty() {
        eprint!("{}", render::problems(&loaded.source, &loaded.warnings, style));
    }
}

/// The jobs `--only` names (all of them without it), in manifest order.
fn select_jobs<'a>(jobs: &'a [Job], only: &[String]) -> Result<Vec<&'a Job>, HaulError> {
    for name in only {
        if !jobs.iter().any(|job| &job.name == name) {
            return Err(HaulError::UnknownTransfer {
                name: name.clone(),
                known: jobs.iter().map(|job| job.name.clone()).collect(),
            });
        }
    }
    Ok(jobs.iter().filter(|job| only.is_empty() || only.contains(&job.name)).collect())
}

fn runtime() -> Result<tokio::runtime::Runtime, HaulError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(HaulError::Runtime)
}

/// Lists both sides of one job and diffs them.
fn plan_job(
    job: &Job,
    client: &aws_sdk_s3::Client,
    runtime: &tokio::runtime::Handle,
    shard: Option<Shard>,
    expected: &ExpectedWrites,
    started: i64,
) -> Result<TransferPlan, HaulError> {
    // Filters compile on first use; a set too large for globset is an error here, not a
    // filter that lets nothing through.
    job.filter.compiled().map_err(|source| HaulError::Filter { transfer: job.name.clone(), source })?;
    let checker = match job.compare {
        CompareMode::Checksum => Some(ContentChecker {
            client,
            runtime,
            bucket: &job.bucket,
            prefix: &job.prefix,
            local_root: &job.local,
            remote_is_source: job.direction == Direction::Download,
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(job.concurrency as usize)
                .build()
                .map_err(|err| HaulError::Runtime(std::io::Error::other(err)))?,
        }),
        _ => None,
    };
    let check = checker.as_ref().map(|checker| checker as &dyn crate::plan::ContentCheck);
    let (planned, temp_files) = with_listings(job, client, runtime, |source, destination| {
        crate::plan::plan_transfer(job, expected.overlay(source), destination, check, shard)
    })?;
    let mut plan = planned?;
    expected.mark(&mut plan);
    if job.direction == Direction::Upload {
        let uploads = runtime.block_on(crate::listing::remote::unfinished_uploads(client, &job.bucket, &job.prefix));
        plan.set_unfinished_uploads(uploads, started);
    }
    plan.temp_files = temp_files;
    Ok(plan)
}

/// Hands the job's source and destination listings (key-ordered streams) to `consume`, and
/// returns its result with the haul temp files the local walk passed. A server whose listing
/// turns out not to be in key order is listed again and sorted in memory.
fn with_listings<T>(
    job: &Job,
    client: &aws_sdk_s3::Client,
    runtime: &tokio::runtime::Handle,
    mut consume: impl FnMut(&mut dyn Iterator<Item = Item>, &mut dyn Iterator<Item = Item>) -> T,
) -> Result<(T, Vec<String>), HaulError> {
    // A download creates its folder; an upload of a folder that is not there is a mistake.
    if job.direction == Direction::Upload && !job.local.is_dir() {
        return Err(HaulError::LocalFolder {
            transfer: job.name.clone(),
            path: job.local.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "the folder to upload does not exist"),
        });
    }
    let mut order = Order::Streamed;
    loop {
        let walk = if job.direction == Direction::Upload { LocalWalk::of_source } else { LocalWalk::new };
        let mut local = walk(&job.local, job.follow_symlinks).map_err(|source| HaulError::LocalFolder {
            transfer: job.name.clone(),
            path: job.local.clone(),
            source,
        })?;
        let check_keys = job.direction == Direction::Download;
        let remote: Box<dyn Iterator<Item = Result<Item, ListError>>> = match order {
            Order::Streamed => {
                Box::new(FolderListing::new(runtime.clone(), client.clone(), &job.bucket, &job.prefix, check_keys))
            }
            Order::SortInMemory => Box::new(RemoteListing::new(
                runtime.clone(),
                client.clone(),
                &job.bucket,
                &job.prefix,
                check_keys,
                order,
            )),
        };
        let mut listing_error = None;
        let mut remote = remote.map_while(|item| item.map_err(|err| listing_error = Some(err)).ok());
        let result = match job.direction {
            Direction::Download => consume(&mut remote, &mut local),
            Direction::Upload => consume(&mut local, &mut remote),
        };
        match listing_error {
            Some(ListError::OutOfOrder { previous, key }) if order == Order::Streamed => {
                tracing::info!(
                    transfer = %job.name,
                    "the listing is not in key order (`{key}` after `{previous}`): listing again, sorted in memory"
                );
                order = Order::SortInMemory;
                continue;
            }
            Some(source) => return Err(HaulError::Listing { transfer: job.name.clone(), source }),
            None => return Ok((result, local.temp_files().to_vec())),
        }
    }
}
