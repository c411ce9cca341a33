//! One transfer listed on both sides and planned into a sink as its listings arrive: how
//! `haul plan` prints and saves a plan, and how `apply` feeds the executor.

use crate::content_check::ContentChecker;
use crate::error::HaulError;
use crate::listing::sides::with_sides;
use crate::manifest::{CompareMode, Direction, Job};
use crate::plan::expected::ExpectedWrites;
use crate::plan::{Action, Reason, TransferPlan};
use crate::shard::Shard;

/// What `Engine::plan_jobs` tells its caller, transfer by transfer: the heading, what
/// planning hands over as it goes, and how the transfer's planning ended.
pub trait PlanSink {
    /// A transfer's planning starts (`heading`: its name, direction and route, no actions).
    fn begin(&mut self, heading: &TransferPlan);
    fn planned(&mut self, planned: Planned);
    /// The planning of the transfer `begin` named ended: the plan's totals (without its
    /// actions), or why it failed.
    fn end(&mut self, outcome: Result<&TransferPlan, &HaulError>);
    /// Whether to go on to the next transfer (the output may have failed).
    fn go_on(&self) -> bool {
        true
    }
}

impl super::Engine {
    /// Plans `jobs` in order into `sink`, each on what the ones before it will have written
    /// by the time `apply` reaches it (their plans are kept whole only where a later
    /// transfer reads what they write). `created` (seconds): the plan's time. Fails, before
    /// anything is listed, only when a transfer's client cannot be built.
    pub fn plan_jobs(
        &mut self,
        jobs: &[&Job],
        shard: Option<Shard>,
        created: i64,
        sink: &mut dyn PlanSink,
    ) -> Result<(), HaulError> {
        super::refuse_sharded_chain(jobs, shard)?;
        self.connect(jobs)?;
        let mut earlier = crate::plan::expected::EarlierPlans::new(jobs);
        for (index, job) in jobs.iter().copied().enumerate() {
            if !sink.go_on() {
                break;
            }
            let (client, to_client) = self.clients_for(job)?;
            let expected = earlier.expected_for(index, created * 1000);
            let keep = earlier.keeps(index);
            sink.begin(&TransferPlan::empty(job, shard));
            let mut actions = Vec::new();
            let planned = plan_into(
                job,
                &client,
                to_client.as_ref(),
                self.runtime.handle(),
                shard,
                created,
                &expected,
                &mut |planned| {
                    if keep {
                        match &planned {
                            Planned::Action { action, .. } => actions.push(action.clone()),
                            Planned::ListedAgain => actions.clear(),
                            Planned::DestinationListed => {}
                        }
                    }
                    sink.planned(planned);
                },
            );
            match planned {
                Ok(mut plan) => {
                    sink.end(Ok(&plan));
                    plan.actions = actions;
                    earlier.add(Some(plan));
                }
                // One transfer failing to plan does not hide the others' plans.
                Err(err) => {
                    sink.end(Err(&err));
                    earlier.add(None);
                }
            }
        }
        Ok(())
    }
}

/// What planning hands over as it goes. (Not boxed: each action is moved on at once.)
#[allow(clippy::large_enum_variant)]
pub enum Planned {
    /// An action, as soon as it is decided. `provisional`: it copies a key the destination
    /// has not listed while that listing is not yet whole, so the key may still turn up there
    /// (a server listing out of order); it stands only once `DestinationListed` comes.
    Action { action: Action, provisional: bool },
    /// The destination's listing has ended whole and in key order: every provisional action
    /// so far stands.
    DestinationListed,
    /// The server listed out of key order, so the transfer is listed again (sorted on disk)
    /// and planned from its start: nothing handed over so far stands, but copies already made
    /// were right (only provisional ones could be wrong, and those wait).
    ListedAgain,
}

/// Plans one job as its listings arrive: each action goes to `sink` as soon as it is
/// decided (an upload that continues an unfinished one with it, an action that reads what
/// an earlier transfer writes marked so); returns the plan's totals, without its actions.
/// Unfinished multipart uploads are listed first, so an upload that continues one gets it
/// as it is planned. `started` (seconds) is when the run began: uploads started later are
/// another run's.
#[allow(clippy::too_many_arguments)]
pub fn plan_into(
    job: &Job,
    client: &aws_sdk_s3::Client,
    to_client: Option<&aws_sdk_s3::Client>,
    runtime: &tokio::runtime::Handle,
    shard: Option<Shard>,
    started: i64,
    expected: &ExpectedWrites,
    sink: &mut dyn FnMut(Planned),
) -> Result<TransferPlan, HaulError> {
    let checker = content_checker(job, client, to_client, runtime)?;
    let written = written_bucket(job, client, to_client);
    let property_checker = written.filter(|_| job.update_properties).map(|(client, bucket, prefix)| {
        crate::object_properties::PropertyChecker {
            job,
            client,
            runtime,
            bucket,
            prefix,
            bucket_owner: tokio::sync::OnceCell::new(),
        }
    });
    let checks = crate::plan::Checks {
        content: checker.as_ref().map(|checker| checker as &dyn crate::plan::ContentCheck),
        properties: property_checker.as_ref().map(|checker| checker as &dyn crate::plan::PropertyCheck),
    };
    let uploads = match written {
        Some((client, bucket, prefix)) => {
            runtime.block_on(crate::listing::remote::unfinished_uploads(client, bucket, prefix))
        }
        None => Vec::new(),
    };
    let mut left = crate::plan::UploadsLeft::new(&job.name, shard, job.direction, uploads, started);
    if let Some((client, bucket, prefix)) = written {
        // What each upload that may be continued already has, asked all at once before
        // planning (not one blocking request per action as it is decided).
        for (upload_id, parts) in runtime.block_on(sent_parts(client, bucket, prefix, &left)) {
            left.sent(&upload_id, parts.parts.len() as u64, parts.parts.iter().map(|part| part.size).sum());
        }
    }
    let mut resumed = crate::plan::Tally::default();
    // Both closures hand over to `sink`, one at a time.
    let sink = std::cell::RefCell::new(sink);
    let listing_again = || (*sink.borrow_mut())(Planned::ListedAgain);
    let rules = crate::plan::DiffRules::of(job, shard);
    let wanted = |entry: &crate::listing::Entry| rules.considers(entry);
    let (planned, temp_files) =
        with_sides(job, client, to_client, runtime, wanted, listing_again, |source, destination, pass| {
            let sink = &mut *sink.borrow_mut();
            // What this pass continues (a second pass plans everything again).
            resumed = crate::plan::Tally::default();
            let mut listed = pass.destination_listed();
            // A stop ends the listing too (the caller sees the stop and runs no delete).
            let source = source.take_while(|_| !crate::interrupt::requested());
            let planned = crate::plan::plan_streamed(
                job,
                expected.overlay(source),
                destination,
                checks,
                shard,
                &mut |mut action| {
                    expected.mark_action(&mut action);
                    left.claim(&mut action);
                    // What it already has (apply checks every part against the file).
                    if let Some(resume) = &action.resume {
                        resumed.add(resume.bytes);
                    }
                    if !listed && pass.destination_listed() {
                        listed = true;
                        sink(Planned::DestinationListed);
                    }
                    let provisional = !listed && action.reason == Reason::New;
                    sink(Planned::Action { action, provisional });
                },
            );
            if !listed && pass.destination_listed() {
                sink(Planned::DestinationListed);
            }
            planned.map(|mut plan| {
                plan.inventories = pass.inventories();
                plan
            })
        })
        .map_err(|err| HaulError::sides(job, err))?;
    let mut plan = planned?;
    plan.temp_files = temp_files;
    plan.unfinished_uploads = left.into_rest();
    plan.resumed = resumed;
    plan.deadline_shortfall = crate::plan::DeadlineShortfall::of(job, plan.copies().bytes, super::run_start(started));
    Ok(plan)
}

/// The parts each continuable upload has, by upload id, asked 16 at a time. An upload whose
/// parts cannot be read is left out (the plan shows none sent; apply lists them again).
async fn sent_parts(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    left: &crate::plan::UploadsLeft,
) -> Vec<(String, crate::listing::remote::UploadedParts)> {
    use futures_util::StreamExt as _;
    let asked: Vec<(String, String)> =
        left.continuable().map(|upload| (format!("{prefix}{}", upload.key), upload.upload_id.clone())).collect();
    futures_util::stream::iter(asked)
        .map(|(key, upload_id)| async move {
            let listed = crate::listing::remote::uploaded_parts(client, bucket, &key, &upload_id).await;
            listed.ok().map(|parts| (upload_id, parts))
        })
        .buffer_unordered(16)
        .filter_map(std::future::ready)
        .collect()
        .await
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
            .num_threads(job.concurrency.starting() as usize)
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
