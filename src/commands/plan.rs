//! `haul plan`: list both sides of each transfer, diff them, print (or save) what would move
//! and why. Changes nothing. `plan_job` is also how `apply` plans a transfer right before
//! running it.

use std::io::Write as _;
use std::path::Path;

use super::{Clients, load_with_warnings, resolve_shard, runtime, select_jobs};
use crate::cli::{OutputFormat, PlanArgs};
use crate::content_check::ContentChecker;
use crate::error::{Exit, HaulError};
use crate::listing::sides::with_sides;
use crate::manifest::{CompareMode, Direction, Job};
use crate::plan::expected::{ExpectedWrites, Writers};
use crate::plan::{ManifestRef, PlanDocument, TransferPlan};
use crate::render::{self, Style};
use crate::shard::Shard;

pub(super) fn run(args: &PlanArgs, style: Style) -> Result<Exit, HaulError> {
    let shard = resolve_shard(&args.shard)?;
    let path = args.run.manifest.as_path();
    let loaded = load_with_warnings(path, style)?;
    let request = PlanRequest {
        only: &args.run.only.only,
        shard,
        output: args.run.output.output,
        detailed_exitcode: args.detailed_exitcode,
        out: args.out.as_deref(),
    };
    plan_manifest(&loaded, path, &request, style)
}

/// What to plan of a manifest and how to show it.
pub(super) struct PlanRequest<'a> {
    pub only: &'a [String],
    pub shard: Option<Shard>,
    pub output: OutputFormat,
    pub detailed_exitcode: bool,
    /// Where to save the plan.
    pub out: Option<&'a Path>,
}

/// Plans a loaded manifest (`path` is what a saved plan names) and prints the plan.
pub(super) fn plan_manifest(
    loaded: &crate::manifest::Manifest,
    path: &Path,
    request: &PlanRequest<'_>,
    style: Style,
) -> Result<Exit, HaulError> {
    let (shard, output) = (request.shard, request.output);
    let jobs = select_jobs(&loaded.jobs, request.only)?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let created = crate::plan::saved::now_seconds();
    let mut planned: Vec<&Job> = Vec::new();
    let mut plans: Vec<TransferPlan> = Vec::new();
    let mut writers = Writers::default();
    let mut failed = false;
    for job in jobs {
        let client = clients.get(&runtime, job);
        let to_client = clients.to(&runtime, job);
        // `apply` will run the transfers before this one first: plan it on what they write.
        let earlier = writers.under_source_of(job).into_iter().map(|i| (planned[i], &plans[i]));
        let expected = ExpectedWrites::for_source_of(job, earlier, created * 1000);
        match plan_job(job, &client, to_client.as_ref(), runtime.handle(), shard, &expected, created) {
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
    if let Some(out) = request.out.map(|out| crate::shard::expand_path(out, shard)) {
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
    } else if request.detailed_exitcode && changes {
        Exit::ChangesPending
    } else {
        Exit::Success
    })
}

/// The manifest as a saved plan names it: absolute path and digest.
pub(super) fn manifest_ref(path: &Path, text: &str) -> ManifestRef {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    ManifestRef::new(absolute, text)
}

/// Lists both sides of one job and diffs them.
pub(super) fn plan_job(
    job: &Job,
    client: &aws_sdk_s3::Client,
    to_client: Option<&aws_sdk_s3::Client>,
    runtime: &tokio::runtime::Handle,
    shard: Option<Shard>,
    expected: &ExpectedWrites,
    started: i64,
) -> Result<TransferPlan, HaulError> {
    let checker = content_checker(job, client, to_client, runtime)?;
    let check = checker.as_ref().map(|checker| checker as &dyn crate::plan::ContentCheck);
    let (planned, temp_files) = with_sides(job, client, to_client, runtime, |source, destination| {
        crate::plan::plan_transfer(job, expected.overlay(source), destination, check, shard)
    })
    .map_err(|err| HaulError::sides(job, err))?;
    let mut plan = planned?;
    expected.mark(&mut plan);
    if let Some((client, bucket, prefix)) = written_bucket(job, client, to_client) {
        let uploads = runtime.block_on(crate::listing::remote::unfinished_uploads(client, bucket, prefix));
        plan.set_unfinished_uploads(uploads, started);
        // What each upload to continue already has (apply checks every part against the file).
        for action in plan.actions.iter_mut() {
            let key = format!("{prefix}{}", action.destination_name());
            let Some(resume) = action.resume.as_mut() else { continue };
            let listed = crate::listing::remote::uploaded_parts(client, bucket, &key, &resume.upload_id);
            if let Ok(listed) = runtime.block_on(listed) {
                resume.parts = listed.parts.len() as u64;
                resume.bytes = listed.parts.iter().map(|part| part.size).sum();
            }
        }
    }
    plan.temp_files = temp_files;
    Ok(plan)
}

/// Plans one job into `execution` as its listings arrive, so objects move while the listing
/// goes on (how `apply` runs a manifest); returns the plan's totals, without its actions.
/// Unfinished multipart uploads are listed first, so an upload that continues one gets it
/// as it is planned.
pub(super) fn stream_job(
    job: &Job,
    client: &aws_sdk_s3::Client,
    to_client: Option<&aws_sdk_s3::Client>,
    runtime: &tokio::runtime::Handle,
    shard: Option<Shard>,
    started: i64,
    execution: &mut crate::exec::Execution,
) -> Result<TransferPlan, HaulError> {
    let checker = content_checker(job, client, to_client, runtime)?;
    let check = checker.as_ref().map(|checker| checker as &dyn crate::plan::ContentCheck);
    let uploads = match written_bucket(job, client, to_client) {
        Some((client, bucket, prefix)) => {
            runtime.block_on(crate::listing::remote::unfinished_uploads(client, bucket, prefix))
        }
        None => Vec::new(),
    };
    let mut left = crate::plan::UploadsLeft::new(&job.name, shard, job.direction, uploads, started);
    let (planned, temp_files) = with_sides(job, client, to_client, runtime, |source, destination| {
        // A stop ends the listing too (the caller sees the stop and runs no delete).
        let source = source.take_while(|_| !crate::interrupt::requested());
        crate::plan::plan_streamed(job, source, destination, check, shard, &mut |mut action| {
            left.claim(&mut action);
            execution.push(action);
        })
    })
    .map_err(|err| HaulError::sides(job, err))?;
    let mut plan = planned?;
    plan.temp_files = temp_files;
    plan.unfinished_uploads = left.into_rest();
    Ok(plan)
}

/// What reads content for `compare: checksum` (nothing for other modes). Filters compile
/// here too: a set too large for globset is an error before listing, not a filter that lets
/// nothing through.
fn content_checker<'a>(
    job: &'a Job,
    client: &'a aws_sdk_s3::Client,
    to_client: Option<&'a aws_sdk_s3::Client>,
    runtime: &'a tokio::runtime::Handle,
) -> Result<Option<ContentChecker<'a>>, HaulError> {
    job.filter.compiled().map_err(|source| HaulError::Filter { transfer: job.name.clone(), source })?;
    if job.compare != CompareMode::Checksum {
        return Ok(None);
    }
    Ok(Some(ContentChecker {
        client,
        runtime,
        bucket: &job.bucket,
        prefix: &job.prefix,
        local_root: &job.local,
        remote_is_source: job.direction == Direction::Download,
        to: copy_destination(job, to_client),
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(job.concurrency as usize)
            .build()
            .map_err(|err| HaulError::Runtime(std::io::Error::other(err)))?,
    }))
}

/// A copy's destination bucket: its client, bucket and prefix.
fn copy_destination<'a>(
    job: &'a Job,
    to_client: Option<&'a aws_sdk_s3::Client>,
) -> Option<(&'a aws_sdk_s3::Client, &'a str, &'a str)> {
    job.to.as_ref().zip(to_client).map(|(to, client)| (client, to.bucket.as_str(), to.prefix.as_str()))
}

/// Where a job writes to a bucket (an upload's, a copy's `to`): client, bucket and prefix.
fn written_bucket<'a>(
    job: &'a Job,
    client: &'a aws_sdk_s3::Client,
    to_client: Option<&'a aws_sdk_s3::Client>,
) -> Option<(&'a aws_sdk_s3::Client, &'a str, &'a str)> {
    match job.direction {
        Direction::Upload => Some((client, job.bucket.as_str(), job.prefix.as_str())),
        Direction::Copy => copy_destination(job, to_client),
        Direction::Download => None,
    }
}
