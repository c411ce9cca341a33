//! The engine under the commands: it plans and carries out the transfers of a loaded
//! manifest or a saved plan, from typed options that owe nothing to the command line. The
//! commands map their arguments to these options and render what comes back (tables, JSON,
//! the report); nothing here prints.

pub mod apply;
pub mod planning;

use std::collections::HashMap;

use crate::error::HaulError;
use crate::manifest::{Job, S3Target};

/// The runtime and the SDK clients of one run, shared by its transfers: what `plan` and
/// `apply` (engine::planning, engine::apply) run on.
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    clients: Clients,
    /// With `concurrency: auto`, the level the last transfer between the same servers ended
    /// at, proven to pay: the next one starts there, so a run of many small transfers climbs
    /// once, not once per transfer (each would end before its climb did).
    levels: HashMap<(S3Target, Option<S3Target>), u32>,
}

impl Engine {
    pub fn new() -> Result<Engine, HaulError> {
        Ok(Engine { runtime: runtime()?, clients: Clients::default(), levels: HashMap::new() })
    }

    /// Starts carrying out `job`, from the level an earlier transfer between the same servers
    /// found; `remember_level` takes what this one finds.
    fn start_execution(
        &mut self,
        job: &Job,
        client: &aws_sdk_s3::Client,
        to_client: Option<&aws_sdk_s3::Client>,
        counters: &std::sync::Arc<crate::progress::Counters>,
    ) -> crate::exec::Execution {
        let found = self.levels.get(&level_key(job)).copied();
        crate::exec::Execution::start(job, client, to_client, self.runtime.handle(), counters, found)
    }

    fn remember_level(&mut self, job: &Job, report: &crate::report::TransferReport) {
        if let Some(level) = report.concurrency.filter(|level| level.adaptive) {
            self.levels.insert(level_key(job), level.proven);
        }
    }

    /// Builds the SDK clients of every transfer before any is planned: a setting that makes
    /// no client (a CA bundle that cannot be read) stops the run before anything is listed.
    fn connect(&mut self, jobs: &[&Job]) -> Result<(), HaulError> {
        jobs.iter().try_for_each(|job| self.clients_for(job).map(drop))
    }

    /// A transfer's SDK clients: its bucket's, and a copy's destination bucket's.
    fn clients_for(&mut self, job: &Job) -> Result<(aws_sdk_s3::Client, Option<aws_sdk_s3::Client>), HaulError> {
        Ok((self.clients.get(&self.runtime, job)?, self.clients.to(&self.runtime, job)?))
    }
}

/// The servers a transfer reads and writes.
fn level_key(job: &Job) -> (S3Target, Option<S3Target>) {
    (job.target.clone(), job.to.as_ref().map(|to| to.target.clone()))
}

/// One SDK client per distinct target (profile, region, endpoint, ...), shared by its jobs.
#[derive(Default)]
pub struct Clients(HashMap<S3Target, aws_sdk_s3::Client>);

impl Clients {
    pub fn get(&mut self, runtime: &tokio::runtime::Runtime, job: &Job) -> Result<aws_sdk_s3::Client, HaulError> {
        self.of(runtime, &job.target)
    }

    /// The client of a copy's destination bucket; `None` for other transfers.
    pub fn to(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        job: &Job,
    ) -> Result<Option<aws_sdk_s3::Client>, HaulError> {
        job.to.as_ref().map(|to| self.of(runtime, &to.target)).transpose()
    }

    fn of(&mut self, runtime: &tokio::runtime::Runtime, target: &S3Target) -> Result<aws_sdk_s3::Client, HaulError> {
        if let Some(client) = self.0.get(target) {
            return Ok(client.clone());
        }
        let client = runtime.block_on(crate::s3::client(target))?;
        self.0.insert(target.clone(), client.clone());
        Ok(client)
    }
}

/// A run's (or a plan's) start, `started` seconds since the epoch: deadlines count from it.
fn run_start(started: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(started.max(0) as u64)
}

/// `--shard` on transfers of which a later one reads where an earlier one writes: refused
/// before anything is listed (see `HaulError::ShardedChain`).
fn refuse_sharded_chain(jobs: &[&Job], shard: Option<crate::shard::Shard>) -> Result<(), HaulError> {
    if shard.is_none_or(|shard| shard.count <= 1) {
        return Ok(());
    }
    let earlier = crate::plan::expected::EarlierPlans::new(jobs);
    let chain = (0..jobs.len()).find_map(|writer| earlier.first_reader_of(writer).map(|reader| (writer, reader)));
    match chain {
        Some((writer, reader)) => Err(HaulError::ShardedChain {
            writer: jobs[writer].name.clone(),
            reader: jobs[reader].name.clone(),
            saved_plan: false,
        }),
        None => Ok(()),
    }
}

/// The jobs `--only` names (all of them without it), in manifest order.
pub fn select_jobs<'a>(jobs: &'a [Job], only: &[String]) -> Result<Vec<&'a Job>, HaulError> {
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

/// The async runtime every network call runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, HaulError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(HaulError::Runtime)
}
