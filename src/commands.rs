//! One function per subcommand: glue between the CLI and the pipeline stages.

use std::io::Write as _;
use std::path::Path;

use std::collections::HashMap;

use crate::cli::{Cli, Command, OutputFormat};
use crate::error::{Exit, HaulError};
use crate::listing::local::LocalWalk;
use crate::listing::remote::{ListError, Order, RemoteListing};
use crate::manifest::{self, Job};
use crate::manifest::{CompareMode, Direction, S3Target};
use crate::plan::TransferPlan;
use crate::render::{self, Style};

/// The starter manifest `haul init` writes (also checked by the tests to be valid).
pub const STARTER_MANIFEST: &str = include_str!("starter.yaml");

pub fn run(cli: Cli, style: Style) -> Result<Exit, HaulError> {
    match cli.command {
        Command::Validate { manifests } => validate(&manifests, style),
        Command::Plan { manifest, only, output, detailed_exitcode } => {
            plan(&manifest, &only, output, detailed_exitcode, style)
        }
        Command::Schema => schema(),
        Command::Init { path } => init(&path),
    }
}

fn validate(paths: &[std::path::PathBuf], style: Style) -> Result<Exit, HaulError> {
    let mut exit = Exit::Success;
    let stdout = std::io::stdout();
    for path in paths {
        match manifest::load_manifest(path) {
            Ok(loaded) => {
                if !loaded.warnings.is_empty() {
                    eprint!("{}", render::problems(&loaded.source, &loaded.warnings, style));
                }
                let mut out = stdout.lock();
                let count = loaded.jobs.len();
                let _ =
                    writeln!(out, "{}: valid, {count} transfer{}", path.display(), if count == 1 { "" } else { "s" });
                for job in &loaded.jobs {
                    let _ = writeln!(out, "  {}", describe(job));
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
    format!("{}  {}  {route}  [{filters}]", job.name, job.direction)
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
    println!("wrote {}; edit it, then run `haul validate {}`", path.display(), path.display());
    Ok(Exit::Success)
}

fn plan(
    path: &Path,
    only: &[String],
    output: OutputFormat,
    detailed_exitcode: bool,
    style: Style,
) -> Result<Exit, HaulError> {
    let loaded = manifest::load_manifest(path)?;
    if !loaded.warnings.is_empty() {
        eprint!("{}", render::problems(&loaded.source, &loaded.warnings, style));
    }
    let jobs = select_jobs(&loaded.jobs, only)?;
    let runtime = runtime()?;
    let mut clients: HashMap<S3Target, aws_sdk_s3::Client> = HashMap::new();
    let mut plans = Vec::new();
    let mut failed = false;
    for job in jobs {
        let client = clients
            .entry(job.target.clone())
            .or_insert_with(|| runtime.block_on(crate::s3::client(&job.target)))
            .clone();
        match plan_job(job, &client, runtime.handle()) {
            Ok(plan) => {
                if output == OutputFormat::Table {
                    print!("{}", crate::plan::render::table(&plan));
                }
                plans.push(plan);
            }
            Err(err) => {
                // One transfer failing to plan does not hide the others' plans.
                eprint!("{}", render::error(&err, style));
                failed = true;
            }
        }
    }
    if output == OutputFormat::Json {
        println!("{}", crate::plan::render::json(&plans));
    }
    Ok(if failed {
        Exit::Failure
    } else if detailed_exitcode && plans.iter().any(TransferPlan::has_changes) {
        Exit::ChangesPending
    } else {
        Exit::Success
    })
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

/// Lists both sides of one job and diffs them. A server whose listing is not in key order is
/// listed again and sorted in memory.
fn plan_job(
    job: &Job,
    client: &aws_sdk_s3::Client,
    runtime: &tokio::runtime::Handle,
) -> Result<TransferPlan, HaulError> {
    if job.compare == CompareMode::Checksum {
        return Err(HaulError::ChecksumCompareUnsupported { transfer: job.name.clone() });
    }
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
        let local = LocalWalk::new(&job.local, job.follow_symlinks).map_err(|source| HaulError::LocalFolder {
            transfer: job.name.clone(),
            path: job.local.clone(),
            source,
        })?;
        let check_keys = job.direction == Direction::Download;
        let remote = RemoteListing::new(runtime.clone(), client.clone(), &job.bucket, &job.prefix, check_keys, order);
        let mut listing_error = None;
        let remote = remote.map_while(|item| item.map_err(|err| listing_error = Some(err)).ok());
        let planned = match job.direction {
            Direction::Download => crate::plan::plan_transfer(job, remote, local),
            Direction::Upload => crate::plan::plan_transfer(job, local, remote),
        };
        match listing_error {
            Some(ListError::OutOfOrder { .. }) if order == Order::Streamed => {
                order = Order::SortInMemory;
                continue;
            }
            Some(source) => return Err(HaulError::Listing { transfer: job.name.clone(), source }),
            None => return Ok(planned?),
        }
    }
}
