//! Carrying transfers out: a manifest's (each planned right before it runs, into the
//! executor), or a saved plan's (checked against fresh listings first, then run as saved).
//! Progress goes to the run's `Counters`; each transfer ends in its `TransferReport`.

use std::path::PathBuf;
use std::sync::Arc;

use super::Engine;
use super::planning::{Planned, plan_into};
use crate::error::HaulError;
use crate::exec::PlanningStopped;
use crate::listing::sides::Place;
use crate::listing::sides::with_sides;
use crate::manifest::{DestinationCheck, Job};
use crate::plan::expected::{EarlierPlans, ExpectedWrites};
use crate::plan::saved::{SavedTransfers, ShardShare, ShareTally, Side, TransferActions, expect_begin, stale_side};
use crate::plan::{Fingerprint, PlanFileError, StaleObject, Tally};
use crate::progress::Counters;
use crate::report::TransferReport;
use crate::shard::Shard;

impl Engine {
    /// Carries out `jobs` in order, each planned as it runs, after the ones before it (so it
    /// sees what they wrote: an upload, then a download of the same prefix). `started`
    /// (seconds) is when the run began: unfinished uploads started later are another run's.
    pub fn apply_jobs(
        &mut self,
        jobs: &[&Job],
        shard: Option<Shard>,
        started: i64,
        counters: &Arc<Counters>,
    ) -> Result<Vec<TransferReport>, HaulError> {
        super::refuse_sharded_chain(jobs, shard)?;
        self.connect(jobs)?;
        let mut reports = Vec::new();
        let count = jobs.len();
        for (index, job) in jobs.iter().copied().enumerate() {
            if let Some(report) = not_started(job, started) {
                reports.push(report);
                continue;
            }
            counters.begin_transfer(index + 1, count, &job.name);
            let (client, to_client) = self.clients_for(job)?;
            // Copies start while the listing goes on; the plan's totals come at its end.
            let mut execution = self.start_execution(job, &client, to_client.as_ref(), counters);
            let planned = plan_into(
                job,
                &client,
                to_client.as_ref(),
                self.runtime.handle(),
                shard,
                started,
                &ExpectedWrites::default(),
                &mut |planned| match planned {
                    Planned::Action { action, provisional } => execution.push(action, provisional),
                    Planned::DestinationListed => execution.destination_listed(),
                    Planned::ListedAgain => execution.listed_again(),
                },
            );
            let mut report = match planned {
                // A stop cut the listing short: what it planned is not the whole, so no delete.
                _ if crate::interrupt::requested() => execution.finish(Err(PlanningStopped::stopped())),
                Ok(plan) => {
                    tracing::info!(transfer = %job.name, "planned: {}", crate::plan::render::summary_line(&plan));
                    execution.finish(Ok(&plan))
                }
                // Said once, in the report (with its hint), not also on stderr.
                Err(err) => execution.finish(Err(stopped_by(&err))),
            };
            report.deadline = deadline_text(job, started);
            reports.push(report);
            self.remember_level(job, reports.last().expect("a report was just added"));
        }
        crate::interrupt::set_deadline(None);
        Ok(reports)
    }

    /// The first pass over a saved plan: every action against fresh listings. Returns each
    /// transfer's copy totals (for the second pass), or the objects that changed since the
    /// plan was made (`HaulError::StalePlan`). The plan file is read as a stream.
    pub fn check_saved(&mut self, saved: &SavedPlan<'_>) -> Result<Vec<Tally>, HaulError> {
        self.connect(&saved.jobs)?;
        if let Some(share) = saved.share {
            let (copies, stale) = self.check_share(saved, share)?;
            if !stale.is_empty() {
                return Err(HaulError::StalePlan { objects: stale });
            }
            return Ok(copies);
        }
        // A server found listing out of key order cuts the check of its transfer short (the
        // plan is read as a stream, once per pass): the pass starts over, and that server is
        // listed sorted from then on.
        let (copies, stale) = match self.check_pass(saved)? {
            Ok(checked) => checked,
            Err(_) => self.check_pass(saved)?.map_err(|transfer| HaulError::UncheckablePlan { transfer })?,
        };
        if !stale.is_empty() {
            return Err(HaulError::StalePlan { objects: stale });
        }
        Ok(copies)
    }

    /// One checking pass; `Err(transfer)` when that transfer's check was cut short.
    #[allow(clippy::type_complexity)]
    fn check_pass(
        &mut self,
        saved: &SavedPlan<'_>,
    ) -> Result<Result<(Vec<Tally>, Vec<StaleObject>), String>, HaulError> {
        let mut earlier = EarlierPlans::new(&saved.jobs);
        let mut copies = Vec::new();
        let mut stale = Vec::new();
        let mut events = saved.read()?;
        for (index, job) in saved.jobs.iter().copied().enumerate() {
            expect_begin(&mut events, &job.name).map_err(|err| saved.damaged(err))?;
            let (client, to_client) = self.clients_for(job)?;
            // What the transfers before this one will write was planned in, as `plan` did.
            let expected = earlier.expected_for(index, saved.created * 1000);
            let mut actions = TransferActions::new(&mut events, earlier.keeps(index));
            if checked_by_lookups(job) {
                // A side is not listed (`destination: head`), or listed from an inventory
                // report that does not see what changed since: each action's objects are
                // looked up in the bucket itself.
                stale.extend(self.stale_by_lookups(job, &mut actions, ShardShare::whole())?.1);
            } else if !actions.is_empty() {
                let mut listings = 0;
                let (found, _) = with_sides(
                    job,
                    &client,
                    to_client.as_ref(),
                    self.runtime.handle(),
                    // Looks nothing up: a destination read key by key is checked above.
                    |_| false,
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
            let mut plan = plan.map_err(|err| saved.damaged(err))?;
            copies.push(plan.copies());
            plan.actions = kept_actions.unwrap_or_default();
            earlier.add(Some(plan));
        }
        Ok(Ok((copies, stale)))
    }

    /// The check of one shard's share of a saved plan: its actions' objects looked up one
    /// by one on both sides (a HEAD, or a file's metadata), not listed, so the machines that
    /// share one plan do not each list both sides whole. Returns each transfer's copy totals
    /// (this shard's) and the objects that changed since the plan was made.
    fn check_share(
        &mut self,
        saved: &SavedPlan<'_>,
        share: ShardShare,
    ) -> Result<(Vec<Tally>, Vec<StaleObject>), HaulError> {
        let earlier = EarlierPlans::new(&saved.jobs);
        let mut copies = Vec::new();
        let mut stale = Vec::new();
        let mut events = saved.read()?;
        for (index, job) in saved.jobs.iter().copied().enumerate() {
            expect_begin(&mut events, &job.name).map_err(|err| saved.damaged(err))?;
            let mut actions = TransferActions::new(&mut events, false);
            // A later transfer reads what this one writes: its shards would read objects
            // other machines may not have written yet.
            if let Some(reader) = earlier.first_reader_of(index).filter(|_| !actions.is_empty()) {
                return Err(HaulError::ShardedChain {
                    writer: job.name.clone(),
                    reader: saved.jobs[reader].name.clone(),
                    saved_plan: true,
                });
            }
            let (tally, found) = self.stale_by_lookups(job, &mut actions, share)?;
            stale.extend(found);
            actions.finish().0.map_err(|err| saved.damaged(err))?;
            copies.push(tally);
        }
        stale.sort_by(|a, b| (&a.transfer, &a.key).cmp(&(&b.transfer, &b.key)));
        Ok((copies, stale))
    }

    /// The objects of `share`'s actions of `job` that changed since the plan, each looked up
    /// on its own on both sides, and the share's copies.
    fn stale_by_lookups(
        &mut self,
        job: &Job,
        actions: &mut TransferActions<'_>,
        share: ShardShare,
    ) -> Result<(Tally, Vec<StaleObject>), HaulError> {
        let (client, to_client) = self.clients_for(job)?;
        let (source, destination) = Place::of(job, &client, to_client.as_ref());
        let mut tally = ShareTally::default();
        let mut stale = Vec::new();
        loop {
            let mut batch = Vec::with_capacity(LOOKUP_BATCH);
            for action in actions.by_ref() {
                if share.count(&mut tally, &job.name, &action) {
                    batch.push(action);
                    if batch.len() == LOOKUP_BATCH {
                        break;
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            stale.extend(self.runtime.block_on(stale_in(&job.name, &batch, &source, &destination))?);
        }
        Ok((tally.copies(), stale))
    }

    /// The second pass: carries out a checked saved plan as it was saved. `copies`: each
    /// transfer's totals from `check_saved`.
    pub fn apply_saved(
        &mut self,
        saved: &SavedPlan<'_>,
        copies: &[Tally],
        counters: &Arc<Counters>,
    ) -> Result<Vec<TransferReport>, HaulError> {
        let mut events = saved.read()?;
        let mut reports = Vec::new();
        let count = saved.jobs.len();
        for (index, job) in saved.jobs.iter().copied().enumerate() {
            expect_begin(&mut events, &job.name).map_err(|err| saved.damaged(err))?;
            if let Some(report) = not_started(job, saved.started) {
                // Its actions are read past, unused.
                TransferActions::new(&mut events, false).for_each(drop);
                reports.push(report);
                continue;
            }
            counters.begin_transfer(index + 1, count, &job.name);
            let (client, to_client) = self.clients_for(job)?;
            let mut execution = self.start_execution(job, &client, to_client.as_ref(), counters);
            // The plan's totals are known from the first pass, and its `max_delete` was
            // checked when it was made.
            execution.whole_plan(copies[index]);
            let mut actions = TransferActions::new(&mut events, false);
            let mut tally = ShareTally::default();
            for action in &mut actions {
                if let Some(share) = saved.share
                    && !share.count(&mut tally, &job.name, &action)
                {
                    continue;
                }
                // A saved plan was decided from whole listings.
                execution.push(action, false);
            }
            let planned = actions.finish().0.map(|mut plan| {
                if let Some(share) = saved.share {
                    share.narrow(&mut plan, tally);
                }
                plan
            });
            let mut report = match planned {
                Ok(plan) => execution.finish(Ok(&plan)),
                Err(err) => execution.finish(Err(stopped_by(&saved.damaged(err)))),
            };
            report.deadline = deadline_text(job, saved.started);
            reports.push(report);
            self.remember_level(job, reports.last().expect("a report was just added"));
        }
        crate::interrupt::set_deadline(None);
        Ok(reports)
    }
}

/// Sets `job`'s deadline (for a run that started at `started`, seconds) as the one stops
/// check; the report of a transfer that must not start (a signal came, or its deadline
/// passed), else `None`.
fn not_started(job: &Job, started: i64) -> Option<TransferReport> {
    crate::interrupt::set_deadline(job.deadline.as_ref().map(|deadline| deadline.instant(super::run_start(started))));
    match crate::interrupt::cause()? {
        crate::interrupt::Cause::Signal => Some(TransferReport::interrupted_before_start(&job.name, job.direction)),
        crate::interrupt::Cause::Deadline => Some(TransferReport::past_deadline_before_start(
            &job.name,
            job.direction,
            deadline_text(job, started).unwrap_or_default(),
        )),
    }
}

/// `job`'s deadline in a run that started at `started`, as the report says it (UTC).
fn deadline_text(job: &Job, started: i64) -> Option<String> {
    let at = job.deadline.as_ref()?.instant(super::run_start(started));
    Some(humantime::format_rfc3339_seconds(at).to_string())
}

/// A saved plan to check and carry out: its file, the manifest's jobs it names (in its
/// order), and when it was made (seconds).
pub struct SavedPlan<'a> {
    pub path: PathBuf,
    pub jobs: Vec<&'a Job>,
    pub created: i64,
    /// When this run started (seconds): deadlines count from it.
    pub started: i64,
    /// The shard of the plan this run carries out (`apply PLAN --shard I/N` on a plan made
    /// for every key); `None`: all of it.
    pub share: Option<ShardShare>,
}

impl SavedPlan<'_> {
    fn read(&self) -> Result<SavedTransfers, HaulError> {
        let file = std::fs::File::open(&self.path).map_err(|source| {
            HaulError::Manifest(crate::manifest::ManifestError::Read { path: self.path.clone(), source })
        })?;
        Ok(SavedTransfers::read(file))
    }

    fn damaged(&self, source: PlanFileError) -> HaulError {
        HaulError::PlanFile { path: self.path.clone(), source }
    }
}

/// Whether a saved plan's transfer is checked object by object rather than against fresh
/// listings: its destination is looked up key by key, or a side's listing is an S3 Inventory
/// report (listing it again would read the same report, blind to what changed since).
fn checked_by_lookups(job: &Job) -> bool {
    job.destination == DestinationCheck::Head
        || job.inventory.is_some()
        || job.to.as_ref().is_some_and(|to| to.inventory.is_some())
}

/// Actions whose objects are looked up together, and lookups in flight: enough to fill a
/// long round trip (128 in flight make 1,280 lookups a second at 100 ms).
const LOOKUP_BATCH: usize = 1024;
const LOOKUPS_IN_FLIGHT: usize = 128;

/// The stale objects among `batch`'s: each action's source and destination looked up by the
/// name it reads or writes, compared with what the plan saw.
async fn stale_in(
    transfer: &str,
    batch: &[crate::plan::Action],
    source: &Place<'_>,
    destination: &Place<'_>,
) -> Result<Vec<StaleObject>, HaulError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let lookups = batch.iter().flat_map(|action| [(Side::Source, action), (Side::Destination, action)]);
    stream::iter(lookups)
        // A source an earlier transfer of the plan writes is not there yet: nothing to check.
        .filter(|(side, action)| {
            let written_earlier =
                *side == Side::Source && action.source.as_ref().is_some_and(|s| s.written_by.is_some());
            std::future::ready(!written_earlier)
        })
        .map(|(side, action)| async move {
            let (place, name) = match side {
                Side::Source => (source, action.source_name()),
                Side::Destination => (destination, action.destination_name()),
            };
            let found = place.entry(name).await.map_err(|failure| HaulError::Request {
                what: format!(
                    "transfer `{transfer}`: cannot check `{}` at the {}",
                    crate::text::printable(name),
                    side.label()
                ),
                failure,
            })?;
            let now = found.as_ref().map(|entry| {
                let mut now = Fingerprint::from(entry);
                if place.has_whole_seconds() {
                    now.mtime_ms = None;
                }
                now
            });
            Ok(stale_side(transfer, action, side, now))
        })
        .buffer_unordered(LOOKUPS_IN_FLIGHT)
        .try_filter_map(|stale| async move { Ok(stale) })
        .try_collect()
        .await
}

/// Why a transfer stopped before its plan was whole, for its report (with the error's hint).
fn stopped_by(err: &HaulError) -> PlanningStopped {
    PlanningStopped { error: err.to_string(), hint: err.help(), interrupted: false, at_deadline: false }
}
