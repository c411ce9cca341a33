//! `haul plan`: list both sides of each transfer, diff them, print (or save) what would move
//! and why. Changes nothing. Each transfer's actions are printed and saved as they are
//! decided, so a plan of a million objects is never held whole. `plan_into` is also how
//! `apply` plans a transfer into the executor.

use std::io::Write as _;
use std::path::Path;

use super::{load_with_warnings, resolve_shard};
use crate::cli::{OutputFormat, PlanArgs};
use crate::engine::planning::{Planned, plan_into};
use crate::engine::{Clients, runtime, select_jobs};
use crate::error::{Exit, HaulError};
use crate::output_file::Held;
use crate::plan::expected::EarlierPlans;
use crate::plan::render::Table;
use crate::plan::saved::PlanWriter;
use crate::plan::{ManifestRef, TransferPlan};
use crate::render::{self, Style};
use crate::shard::Shard;
use crate::text::printable;

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
    let manifest = manifest_ref(path, &loaded.source.text);
    // The table, or the JSON document, on stdout. Each output holds a transfer's rows until
    // its listing has ended in key order: a server found listing out of order is read again,
    // and only that reading is shown. The first error writing stdout is kept (`shown`): later
    // writes are skipped and planning stops after the transfer, unless a plan is being saved
    // and stdout's reader only went away (`haul plan -o plan.json | head`).
    let mut shown = Shown::default();
    let mut stdout = Held::new(std::io::BufWriter::new(std::io::stdout()));
    let mut printed = match output {
        OutputFormat::Json => shown.check(PlanWriter::begin(
            Held::new(std::io::BufWriter::new(std::io::stdout())),
            &manifest,
            created,
            shard,
        )),
        OutputFormat::Table => None,
    };
    let out = request.out.map(|out| crate::shard::expand_path(out, shard));
    fn write_error(out: &Path) -> impl Fn(std::io::Error) -> HaulError + '_ {
        move |source| HaulError::Write { path: out.to_path_buf(), source }
    }
    let mut saved = match &out {
        Some(out) => {
            let file = crate::output_file::Pending::create(out).map_err(write_error(out))?;
            Some(PlanWriter::begin(Held::new(file), &manifest, created, shard).map_err(write_error(out))?)
        }
        None => None,
    };
    let mut save_error = None;
    // A later transfer that reads where an earlier one writes is planned on what that one
    // will have written (as `apply` runs them in order): those earlier plans are kept whole.
    let mut earlier = EarlierPlans::new(&jobs);
    let mut failed = false;
    let mut changes = false;
    for (index, job) in jobs.iter().copied().enumerate() {
        if shown.stops(out.is_some()) {
            break;
        }
        let client = clients.get(&runtime, job);
        let to_client = clients.to(&runtime, job);
        let expected = earlier.expected_for(index, created * 1000);
        let keep = earlier.keeps(index);
        let heading = TransferPlan::empty(job, shard);
        let mut table = (output == OutputFormat::Table).then(|| Table::begin(&heading));
        if let Some(printed) = &mut printed {
            shown.check(printed.begin_transfer(&heading).and_then(|()| printed.output().mark()));
        }
        if let Some(saved) = &mut saved {
            save_error = save_error.or(saved.begin_transfer(&heading).err());
            save_error = save_error.or(saved.output().mark().err());
        }
        shown.check(stdout.mark());
        let mut actions = Vec::new();
        let planned = plan_into(
            job,
            &client,
            to_client.as_ref(),
            runtime.handle(),
            shard,
            created,
            &expected,
            &mut |planned| {
                let action = match planned {
                    Planned::Action { action, .. } => action,
                    // Output is held until the listing ends: nothing else to wait for.
                    Planned::DestinationListed => return,
                    Planned::ListedAgain => {
                        // Nothing the first reading decided is shown or saved.
                        eprintln!(
                            "note: the server of `{}` does not list in key order: its listing is read again and sorted on disk",
                            printable(&job.name)
                        );
                        shown.check(stdout.take_back());
                        table = (output == OutputFormat::Table).then(|| Table::begin(&heading));
                        if let Some(printed) = &mut printed {
                            shown.check(printed.output().take_back());
                            printed.restart_transfer();
                        }
                        if let Some(saved) = &mut saved {
                            save_error = save_error.take().or(saved.output().take_back().err());
                            saved.restart_transfer();
                        }
                        actions.clear();
                        return;
                    }
                };
                if let Some(table) = &mut table
                    && shown.ok()
                {
                    shown.check(table.action(&action, &mut stdout));
                }
                if let Some(printed) = &mut printed
                    && shown.ok()
                {
                    shown.check(printed.action(&action));
                }
                if let Some(saved) = &mut saved
                    && save_error.is_none()
                {
                    save_error = saved.action(&action).err();
                }
                if keep {
                    actions.push(action);
                }
            },
        );
        match planned {
            Ok(mut plan) => {
                if let Some(table) = table
                    && shown.ok()
                {
                    shown.check(table.finish(&plan, &mut stdout));
                }
                if let Some(printed) = &mut printed
                    && shown.ok()
                {
                    shown.check(printed.end_transfer(&plan).and_then(|()| printed.flush()));
                }
                if let Some(saved) = &mut saved {
                    save_error = save_error.or(saved.end_transfer(&plan).err());
                }
                if shown.ok() {
                    shown.check(stdout.flush());
                }
                changes |= plan.has_changes();
                plan.actions = actions;
                earlier.add(Some(plan));
            }
            Err(err) => {
                // One transfer failing to plan does not hide the others' plans.
                if let Some(printed) = &mut printed
                    && shown.ok()
                {
                    shown.check(printed.end_failed_transfer(&heading, &err.to_string()).and_then(|()| printed.flush()));
                }
                if shown.ok() {
                    shown.check(stdout.flush());
                }
                eprint!("{}", render::error(&err, style));
                failed = true;
                earlier.add(None);
            }
        }
    }
    if let Some(printed) = printed
        && shown.ok()
    {
        shown.check(printed.finish().map(drop));
    }
    if let Some(err) = shown.error_to_stop(out.is_some()) {
        // Nothing is saved: the plan was cut short, or the disk it would go to is full.
        return Err(err);
    }
    if let (Some(saved), Some(out)) = (saved, &out) {
        if failed {
            // A partial plan saved under the name cron will apply would be a trap.
            eprintln!("not saving {}: some transfers could not be planned", out.display());
        } else {
            let file = saved.finish().and_then(Held::into_inner);
            let persisted = match (save_error, file) {
                (Some(err), _) | (None, Err(err)) => Err(err),
                (None, Ok(file)) => file.persist(),
            };
            persisted.map_err(write_error(out))?;
            if output == OutputFormat::Table && shown.ok() {
                shown.check(writeln!(
                    stdout,
                    "saved to {}; carry it out with `haul apply {}`",
                    out.display(),
                    out.display()
                ));
            }
        }
    }
    if shown.ok() {
        shown.check(stdout.flush());
    }
    // The plan is saved: a reader of stdout that went away does not change the outcome.
    if let Some(err) = shown.error_to_stop(false).filter(|err| !err.is_closed_output() || out.is_none()) {
        return Err(err);
    }
    Ok(if failed {
        Exit::Failure
    } else if request.detailed_exitcode && changes {
        Exit::ChangesPending
    } else {
        Exit::Success
    })
}

/// How writing the plan to standard output went: the first error, after which nothing more is
/// written there.
#[derive(Default)]
struct Shown(Option<std::io::Error>);

impl Shown {
    fn ok(&self) -> bool {
        self.0.is_none()
    }

    /// Keeps the first error; the value of a success.
    fn check<T>(&mut self, result: std::io::Result<T>) -> Option<T> {
        result.map_err(|err| self.0 = self.0.take().or(Some(err))).ok()
    }

    /// Whether planning stops here: on any error but a closed pipe while a plan is saved.
    fn stops(&self, saving: bool) -> bool {
        self.0.as_ref().is_some_and(|err| !(saving && err.kind() == std::io::ErrorKind::BrokenPipe))
    }

    /// The error that ends the command, when it `stops`.
    fn error_to_stop(&mut self, saving: bool) -> Option<HaulError> {
        if !self.stops(saving) {
            return None;
        }
        self.0.take().map(HaulError::output)
    }
}

/// The manifest as a saved plan names it: absolute path and digest.
pub(super) fn manifest_ref(path: &Path, text: &str) -> ManifestRef {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    ManifestRef::new(absolute, text)
}
