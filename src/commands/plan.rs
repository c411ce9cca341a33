//! `haul plan`: list both sides of each transfer, diff them, print (or save) what would move
//! and why. Changes nothing. Each transfer's actions are printed and saved as they are
//! decided, so a plan of a million objects is never held whole. `plan_into` is also how
//! `apply` plans a transfer into the executor.

use super::say_text;
use std::io::Write as _;
use std::path::Path;

use super::{load_with_warnings, resolve_shard};
use crate::cli::{OutputFormat, PlanArgs};
use crate::engine::planning::{PlanSink, Planned};
use crate::engine::{Engine, select_jobs};
use crate::error::{Exit, HaulError};
use crate::output_file::Held;
use crate::plan::render::Table;
use crate::plan::saved::PlanWriter;
use crate::plan::{ManifestRef, TransferPlan};
use crate::render::{self, Style};
use crate::shard::Shard;
use crate::text::printable;

pub(super) fn run(args: &PlanArgs, style: Style) -> Result<Exit, HaulError> {
    let shard = resolve_shard(&args.shard)?;
    let path = args.run.manifest.as_path();
    let loaded = load_with_warnings(path, &args.run.at.moment(), style)?;
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
    let mut engine = Engine::new()?;
    let created = crate::plan::saved::now_seconds();
    let manifest = manifest_ref(path, &loaded.source.text);
    let out = request.out.map(|out| crate::shard::expand_path(out, shard));
    fn write_error(out: &Path) -> impl Fn(std::io::Error) -> HaulError + '_ {
        move |source| HaulError::Write { path: out.to_path_buf(), source }
    }
    let saved = match &out {
        Some(out) => {
            let file = crate::output_file::Pending::create(out).map_err(write_error(out))?;
            Some(PlanWriter::begin(Held::new(file), &manifest, created, &loaded.at, shard).map_err(write_error(out))?)
        }
        None => None,
    };
    let mut shown = Shown::default();
    let printed = match output {
        OutputFormat::Json => shown.check(PlanWriter::begin(
            Held::new(std::io::BufWriter::new(std::io::stdout())),
            &manifest,
            created,
            &loaded.at,
            shard,
        )),
        OutputFormat::Table => None,
    };
    let mut outputs = Outputs {
        output,
        style,
        shown,
        stdout: Held::new(std::io::BufWriter::new(std::io::stdout())),
        heading: None,
        table: None,
        printed,
        saved,
        save_error: None,
        failed: false,
        changes: false,
    };
    engine.plan_jobs(&jobs, shard, created, &mut outputs)?;
    let Outputs { mut shown, mut stdout, printed, saved, save_error, failed, changes, .. } = outputs;
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
            say!("not saving {}: some transfers could not be planned", out.display());
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
    if let Some(err) = shown.error_to_stop(out.is_some()) {
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

type Stdout = Held<std::io::BufWriter<std::io::Stdout>>;

/// Where a plan goes as it is made: the table or the JSON document on stdout, and the saved
/// plan (`-o`). Each holds a transfer's rows until its listing has ended in key order: a
/// server found listing out of order is read again, and only that reading is shown. The
/// first error writing stdout is kept (`shown`): later writes are skipped and planning stops
/// after the transfer, unless a plan is being saved and stdout's reader only went away
/// (`haul plan -o plan.json | head`).
struct Outputs {
    output: OutputFormat,
    style: Style,
    shown: Shown,
    stdout: Stdout,
    /// The transfer being planned (no actions).
    heading: Option<TransferPlan>,
    table: Option<Table>,
    printed: Option<PlanWriter<Stdout>>,
    saved: Option<PlanWriter<Held<crate::output_file::Pending>>>,
    save_error: Option<std::io::Error>,
    failed: bool,
    changes: bool,
}

impl PlanSink for Outputs {
    fn begin(&mut self, heading: &TransferPlan) {
        self.heading = Some(heading.clone());
        self.table = (self.output == OutputFormat::Table).then(|| Table::begin(heading));
        if let Some(printed) = &mut self.printed {
            self.shown.check(printed.begin_transfer(heading).and_then(|()| printed.output().mark()));
        }
        if let Some(saved) = &mut self.saved {
            self.save_error = self.save_error.take().or(saved.begin_transfer(heading).err());
            self.save_error = self.save_error.take().or(saved.output().mark().err());
        }
        self.shown.check(self.stdout.mark());
    }

    fn planned(&mut self, planned: Planned) {
        let action = match planned {
            Planned::Action { action, .. } => action,
            // Output is held until the listing ends: nothing else to wait for.
            Planned::DestinationListed => return,
            Planned::ListedAgain => return self.listed_again(),
        };
        if let Some(table) = &mut self.table
            && self.shown.ok()
        {
            self.shown.check(table.action(&action, &mut self.stdout));
        }
        if let Some(printed) = &mut self.printed
            && self.shown.ok()
        {
            self.shown.check(printed.action(&action));
        }
        if let Some(saved) = &mut self.saved
            && self.save_error.is_none()
        {
            self.save_error = saved.action(&action).err();
        }
    }

    fn end(&mut self, outcome: Result<&TransferPlan, &HaulError>) {
        match outcome {
            Ok(plan) => {
                if let Some(table) = self.table.take()
                    && self.shown.ok()
                {
                    self.shown.check(table.finish(plan, &mut self.stdout));
                }
                if let Some(printed) = &mut self.printed
                    && self.shown.ok()
                {
                    self.shown.check(printed.end_transfer(plan).and_then(|()| printed.flush()));
                }
                if let Some(saved) = &mut self.saved {
                    self.save_error = self.save_error.take().or(saved.end_transfer(plan).err());
                }
                self.changes |= plan.has_changes();
            }
            Err(err) => {
                if let Some(printed) = &mut self.printed
                    && let Some(heading) = &self.heading
                    && self.shown.ok()
                {
                    let ended = printed.end_failed_transfer(heading, &err.to_string());
                    self.shown.check(ended.and_then(|()| printed.flush()));
                }
                say_text(&render::error(err, self.style));
                self.failed = true;
            }
        }
        if self.shown.ok() {
            self.shown.check(self.stdout.flush());
        }
    }

    fn go_on(&self) -> bool {
        !self.shown.stops(self.saved.is_some())
    }
}

impl Outputs {
    /// The server listed out of key order: nothing the first reading decided is shown or
    /// saved (its listing is read again, sorted, and planned anew).
    fn listed_again(&mut self) {
        let Some(heading) = &self.heading else { return };
        say!(
            "note: the server of `{}` does not list in key order: its listing is read again and sorted on disk",
            printable(&heading.name)
        );
        self.table = (self.output == OutputFormat::Table).then(|| Table::begin(heading));
        self.shown.check(self.stdout.take_back());
        if let Some(printed) = &mut self.printed {
            self.shown.check(printed.output().take_back());
            printed.restart_transfer();
        }
        if let Some(saved) = &mut self.saved {
            self.save_error = self.save_error.take().or(saved.output().take_back().err());
            saved.restart_transfer();
        }
    }
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
