//! `haul validate`: every manifest checked, every problem with its place; no network.

use super::say_text;
use crate::cli::ValidateArgs;
use crate::error::{Exit, HaulError};
use crate::manifest::{self, Job};
use crate::render::{self, Style};

pub(super) fn run(args: &ValidateArgs, style: Style) -> Result<Exit, HaulError> {
    let mut exit = Exit::Success;
    let at = args.at.moment();
    for path in &args.manifests {
        match manifest::load_manifest(path, &at) {
            Ok(loaded) => {
                super::print_warnings(&loaded, style);
                let count = loaded.jobs.len();
                let mut out =
                    format!("{}: valid, {count} transfer{}\n", path.display(), if count == 1 { "" } else { "s" });
                for job in &loaded.jobs {
                    out.push_str(&format!("  {}\n", crate::text::printable_lines(&describe(job))));
                }
                super::print_all(out.as_bytes())?;
            }
            // Every file is checked and reported, so one run shows all that needs fixing.
            Err(err) => {
                say_text(&render::error(&HaulError::Manifest(err), style));
                exit = Exit::Invalid;
            }
        }
    }
    Ok(exit)
}

/// One line per transfer: name, direction, where from and to, and its filters.
fn describe(job: &Job) -> String {
    let route = job.route();
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
    filters.extend(summary.window.iter().cloned());
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
