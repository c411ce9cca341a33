//! One function per subcommand: glue between the CLI and the pipeline stages.

use std::io::Write as _;
use std::path::Path;

use crate::cli::{Cli, Command};
use crate::error::{Exit, HaulError};
use crate::manifest::{self, Job, ManifestError};
use crate::render::{self, Style};

/// The starter manifest `haul init` writes (also checked by the tests to be valid).
pub const STARTER_MANIFEST: &str = include_str!("starter.yaml");

pub fn run(cli: Cli, style: Style) -> Result<Exit, HaulError> {
    match cli.command {
        Command::Validate { manifests } => validate(&manifests, style),
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
            Err(
                err @ (ManifestError::Invalid { .. } | ManifestError::Read { .. } | ManifestError::IsDirectory { .. }),
            ) => {
                eprint!("{}", render::error(&HaulError::Manifest(err), style));
                exit = Exit::Invalid;
            }
        }
    }
    Ok(exit)
}

/// One line per transfer: name, direction, where from and to, and its filters.
fn describe(job: &Job) -> String {
    let remote = job.remote_url();
    let local = job.local.display();
    let route = match job.direction {
        manifest::Direction::Download => format!("{remote} -> {local}"),
        manifest::Direction::Upload => format!("{local} -> {remote}"),
    };
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
