//! Both sides of one transfer, listed together: the source and destination streams a plan
//! merges, in the direction the transfer goes.
//!
//! A remote listing is trusted to come in key order and checked as it streams. A server
//! found listing out of order (SeaweedFS) is listed again from the start through an on-disk
//! sort, and remembered for the rest of the run, so its later listings are sorted from the
//! start; S3 Express directory buckets, which AWS documents as unordered, are sorted from the
//! start too. Until a remote destination's listing has ended whole and in order, a key it
//! has not listed is not yet known to be absent: [`Pass::destination_listed`] tells when it is.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Mutex;

use crate::listing::folders::FolderListing;
use crate::listing::local::LocalWalk;
use crate::listing::remote::ListError;
use crate::listing::sorted::SortedListing;
use crate::listing::{Entry, Item, SkipReason, Skipped};
use crate::manifest::{DestinationCheck, Direction, Job, S3Target};

/// Why a transfer's two sides could not be listed.
#[derive(Debug)]
pub enum SidesError {
    /// The local folder: missing (for an upload) or unreadable.
    LocalFolder(std::io::Error),
    /// The remote listing failed part way.
    Remote(ListError),
    /// The S3 Inventory report that stands for a side's listing cannot be used.
    Inventory(super::inventory::InventoryError),
}

/// How a remote listing comes to be in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As the server lists, checked as it streams (constant memory, decisions as pages come).
    Streamed,
    /// Read whole and sorted on disk before the first item (a server that does not list in
    /// key order).
    Sorted,
}

/// One reading of a transfer's two sides, as `consume` sees it.
pub struct Pass {
    destination_listed: Cell<bool>,
    /// The S3 Inventory reports that stood for a side's listing.
    inventories: std::cell::RefCell<Vec<super::inventory::ReportUse>>,
}

impl Pass {
    /// Whether the destination's listing has ended whole and in key order (a local walk is
    /// whole and ordered from the start): only then is a key it did not list proven absent.
    /// Until then, a copy planned because the destination lacks the key is provisional: the
    /// server may still list it, out of order.
    pub fn destination_listed(&self) -> bool {
        self.destination_listed.get()
    }

    /// The S3 Inventory reports read as listings so far (each when its listing started).
    pub fn inventories(&self) -> Vec<super::inventory::ReportUse> {
        self.inventories.borrow().clone()
    }
}

/// Servers found listing out of key order in this run (see [`server_key`]).
static UNORDERED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// What identifies a server's listing order: its endpoint, or for AWS itself the bucket (a
/// general purpose bucket lists in order, a directory bucket does not).
fn server_key(target: &S3Target, bucket: &str) -> String {
    match &target.endpoint {
        Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
        None => format!("aws/{bucket}"),
    }
}

/// Whether `bucket` on `target` is known not to list in key order: found so in this run, or
/// an S3 Express One Zone directory bucket (`name--zone--x-s3`), which lists in no stated order.
fn known_unordered(target: &S3Target, bucket: &str) -> bool {
    bucket.ends_with("--x-s3")
        || UNORDERED.lock().expect("order lock").as_ref().is_some_and(|set| set.contains(&server_key(target, bucket)))
}

fn remember_unordered(target: &S3Target, bucket: &str) {
    UNORDERED.lock().expect("order lock").get_or_insert_with(HashSet::new).insert(server_key(target, bucket));
}

/// Hands the job's source and destination listings (key-ordered streams) to `consume`, and
/// returns its result with the haul temp files the local walk passed. A server whose listing
/// turns out not to be in key order is listed again, sorted on disk, and `consume` is called
/// again for that second pass: whatever it decided in the first must not stand (see
/// [`Pass`]). `listing_again` runs first, before either side is listed again (so what the
/// first pass's copies wrote, once they end, is in the second listing). `client` reaches the
/// job's bucket; `to_client` a copy's destination bucket. With `destination: head` the
/// destination is not listed: the source's keys that are `wanted` (the filter's and the
/// shard's) are looked up there one by one.
pub fn with_sides<T>(
    job: &Job,
    client: &aws_sdk_s3::Client,
    to_client: Option<&aws_sdk_s3::Client>,
    runtime: &tokio::runtime::Handle,
    wanted: impl Fn(&Entry) -> bool,
    mut listing_again: impl FnMut(),
    mut consume: impl FnMut(&mut dyn Iterator<Item = Item>, &mut dyn Iterator<Item = Item>, &Pass) -> T,
) -> Result<(T, Vec<String>), SidesError> {
    // A download creates its folder; an upload of a folder that is not there is a mistake.
    if job.direction == Direction::Upload && !job.local.is_dir() {
        return Err(SidesError::LocalFolder(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the folder to upload does not exist",
        )));
    }
    // The remote sides: (target, bucket) of the source and, for a copy, of the destination.
    let source_side = (&job.target, job.bucket.as_str());
    let destination_side = job.to.as_ref().map(|to| (&to.target, to.bucket.as_str()));
    loop {
        let known = known_unordered(source_side.0, source_side.1)
            || destination_side.is_some_and(|(target, bucket)| known_unordered(target, bucket));
        let order = if known { Order::Sorted } else { Order::Streamed };
        // A download's destination is the local walk: whole and ordered from the start. So is
        // a destination looked up key by key: a key not found is absent.
        let looked_up = job.destination == DestinationCheck::Head;
        let pass = Pass {
            destination_listed: Cell::new(job.direction == Direction::Download || looked_up),
            inventories: Default::default(),
        };
        // The listing of `bucket` under `prefix`; from its S3 Inventory report when it has one
        // (`side` names it in the plan), sorted on disk as the report's rows come in no order.
        let listing = |client: &aws_sdk_s3::Client,
                       bucket: &str,
                       prefix: &str,
                       check_keys: bool,
                       (inventory, side): (Option<&crate::manifest::Inventory>, &str)| {
            let listing: Box<dyn Iterator<Item = Result<Item, ListError>>> = match inventory {
                Some(inventory) => {
                    let now_ms = super::local::millis_since_epoch(std::time::SystemTime::now());
                    match super::inventory::open(client, runtime, inventory, bucket, now_ms) {
                        Ok(report) => {
                            pass.inventories.borrow_mut().push(report.used(side, now_ms));
                            let pages = report.pages(client, runtime, bucket);
                            Box::new(SortedListing::new(pages, prefix, check_keys))
                        }
                        Err(err) => return Err(SidesError::Inventory(err)),
                    }
                }
                None => {
                    let pages = std::sync::Arc::new(super::remote::S3Pages {
                        runtime: runtime.clone(),
                        client: client.clone(),
                        bucket: bucket.to_string(),
                    });
                    match order {
                        Order::Streamed => Box::new(FolderListing::new(pages, prefix, check_keys)),
                        Order::Sorted => Box::new(SortedListing::new(pages, prefix, check_keys)),
                    }
                }
            };
            Ok(listing)
        };
        let listing_error = std::cell::RefCell::new(None);
        let keep = |item: Result<Item, ListError>| item.map_err(|err| *listing_error.borrow_mut() = Some(err)).ok();
        let (result, temp_files) = match (job.direction, &job.to, to_client) {
            _ if looked_up => {
                let (_, destination) = Place::of(job, client, to_client);
                let mut local_source;
                let mut remote_source;
                let source: &mut dyn Iterator<Item = Item> = match job.direction {
                    Direction::Upload => {
                        local_source =
                            LocalWalk::of_source(&job.local, job.follow_symlinks).map_err(SidesError::LocalFolder)?;
                        &mut local_source
                    }
                    direction => {
                        let check_keys = direction == Direction::Download;
                        let inventory = (job.inventory.as_ref(), "source");
                        remote_source =
                            listing(client, &job.bucket, &job.prefix, check_keys, inventory)?.map_while(keep);
                        &mut remote_source
                    }
                };
                let lookups = Lookups::new(source, &destination, runtime, &wanted, &listing_error);
                let (mut source, mut destination) = lookups.sides();
                (consume(&mut source, &mut destination, &pass), Vec::new())
            }
            (Direction::Copy, Some(to), Some(to_client)) => {
                // Both sides are buckets: keys are compared as S3 keeps them, none is a path.
                let source_inventory = (job.inventory.as_ref(), "source");
                let mut source = listing(client, &job.bucket, &job.prefix, false, source_inventory)?.map_while(keep);
                let destination_inventory = (to.inventory.as_ref(), "destination");
                let destination =
                    listing(to_client, &to.bucket, &to.prefix, false, destination_inventory)?.map_while(keep);
                let mut destination = ended_whole(destination, &listing_error, &pass.destination_listed);
                (consume(&mut source, &mut destination, &pass), Vec::new())
            }
            (Direction::Copy, ..) => unreachable!("a copy is listed with its destination's client"),
            (direction, ..) => {
                let walk = if direction == Direction::Upload { LocalWalk::of_source } else { LocalWalk::new };
                let mut local = walk(&job.local, job.follow_symlinks).map_err(SidesError::LocalFolder)?;
                let check_keys = direction == Direction::Download;
                let side = if direction == Direction::Upload { "destination" } else { "source" };
                let inventory = (job.inventory.as_ref(), side);
                let remote = listing(client, &job.bucket, &job.prefix, check_keys, inventory)?.map_while(keep);
                let result = match direction {
                    Direction::Upload => {
                        let mut remote = ended_whole(remote, &listing_error, &pass.destination_listed);
                        consume(&mut local, &mut remote, &pass)
                    }
                    _ => consume(&mut { remote }, &mut local, &pass),
                };
                (result, local.temp_files().to_vec())
            }
        };
        match listing_error.into_inner() {
            Some(ListError::OutOfOrder { previous, key }) if order == Order::Streamed => {
                tracing::info!(
                    transfer = %job.name,
                    "the listing is not in key order (`{key}` after `{previous}`): listing again, sorted on disk"
                );
                // Which side it was is not told apart: both are sorted from now on.
                remember_unordered(source_side.0, source_side.1);
                if let Some((target, bucket)) = destination_side {
                    remember_unordered(target, bucket);
                }
                listing_again();
                continue;
            }
            Some(source) => return Err(SidesError::Remote(source)),
            None => return Ok((result, temp_files)),
        }
    }
}

/// A destination read in step with its source, key by key (`destination: head`): for each
/// source item, the destination's entry of that name when there is one, else a skip that
/// holds its place (see `plan::diff`, which passes such a skip once the source is there).
/// Up to [`LOOKAHEAD`] lookups are in flight, in source order; a failed lookup ends both
/// sides (recorded in `error`), so no key after it is decided without its lookup.
struct Lookups<'a> {
    source: &'a mut dyn Iterator<Item = Item>,
    destination: &'a Place<'a>,
    wanted: &'a dyn Fn(&Entry) -> bool,
    /// Each source item with its destination's, in source order, up to [`LOOKAHEAD`].
    pairs: futures_util::stream::FuturesOrdered<Pair<'a>>,
    runtime: &'a tokio::runtime::Handle,
    error: &'a std::cell::RefCell<Option<ListError>>,
    /// Items read for one side and not yet taken by it: `[source, destination]`.
    waiting: [std::collections::VecDeque<Item>; 2],
    ended: bool,
}

type Pair<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Item, Item), ListError>> + 'a>>;

/// Lookups in flight at the destination of `destination: head`.
const LOOKAHEAD: usize = 128;

impl<'a> Lookups<'a> {
    fn new(
        source: &'a mut dyn Iterator<Item = Item>,
        destination: &'a Place<'a>,
        runtime: &'a tokio::runtime::Handle,
        wanted: &'a dyn Fn(&Entry) -> bool,
        error: &'a std::cell::RefCell<Option<ListError>>,
    ) -> Self {
        let pairs = futures_util::stream::FuturesOrdered::new();
        Lookups { source, destination, wanted, pairs, runtime, error, waiting: Default::default(), ended: false }
    }

    /// Reads source items until [`LOOKAHEAD`] lookups are under way. Outside the runtime: a
    /// remote source's listing blocks on it for its pages.
    fn read_ahead(&mut self) {
        while self.pairs.len() < LOOKAHEAD {
            let Some(item) = self.source.next() else { break };
            let destination = self.destination;
            let pair: Pair<'a> = match &item {
                Item::Entry(entry) if (self.wanted)(entry) => Box::pin(async move {
                    let Item::Entry(entry) = &item else { unreachable!("matched above") };
                    let found = destination.entry(entry.stored()).await.map_err(|failure| ListError::Lookup {
                        name: entry.stored().to_string(),
                        failure: Box::new(failure),
                    })?;
                    let looked_up = match found {
                        Some(found) => Item::Entry(found),
                        None => placeholder(&entry.key),
                    };
                    Ok((item, looked_up))
                }),
                Item::Entry(Entry { key, .. }) | Item::Skipped(Skipped { key, .. }) => {
                    let looked_up = placeholder(key);
                    Box::pin(std::future::ready(Ok((item, looked_up))))
                }
            };
            self.pairs.push_back(pair);
        }
    }

    /// The source and destination sides, each an iterator.
    fn sides(self) -> (impl Iterator<Item = Item> + 'a, impl Iterator<Item = Item> + 'a) {
        let shared = std::rc::Rc::new(std::cell::RefCell::new(self));
        let side = |index: usize| {
            let shared = shared.clone();
            std::iter::from_fn(move || shared.borrow_mut().next_of(index))
        };
        (side(0), side(1))
    }

    fn next_of(&mut self, side: usize) -> Option<Item> {
        if let Some(item) = self.waiting[side].pop_front() {
            return Some(item);
        }
        if self.ended {
            return None;
        }
        self.read_ahead();
        use futures_util::StreamExt as _;
        match self.runtime.block_on(self.pairs.next()) {
            Some(Ok((source, destination))) => {
                let mut pair = [Some(source), Some(destination)];
                let other = pair[1 - side].take().expect("both are there");
                self.waiting[1 - side].push_back(other);
                pair[side].take()
            }
            Some(Err(err)) => {
                *self.error.borrow_mut() = Some(err);
                self.ended = true;
                self.waiting = Default::default();
                None
            }
            None => {
                self.ended = true;
                None
            }
        }
    }
}

/// What stands for a key the destination has not (or was not asked about).
fn placeholder(key: &str) -> Item {
    Item::Skipped(Skipped { key: key.to_string(), reason: SkipReason::NotLookedUpOrAbsent })
}

/// `listing`, which sets `listed` when it ends without an error (whole, and in order: an
/// out-of-order key is an error).
fn ended_whole<'a>(
    listing: impl Iterator<Item = Item> + 'a,
    error: &'a std::cell::RefCell<Option<ListError>>,
    listed: &'a Cell<bool>,
) -> impl Iterator<Item = Item> + 'a {
    let mut listing = listing.fuse();
    std::iter::from_fn(move || {
        let next = listing.next();
        if next.is_none() && error.borrow().is_none() {
            listed.set(true);
        }
        next
    })
}

/// Where one side of a transfer keeps its objects: a local folder, or a bucket and prefix.
/// Looks up one name at a time ([`Place::entry`]), for checks that touch a few objects of a
/// side too large to list for them (a shard of a saved plan).
pub enum Place<'a> {
    Local { root: &'a std::path::Path, follow_symlinks: bool },
    Remote { client: &'a aws_sdk_s3::Client, bucket: &'a str, prefix: &'a str },
}

impl<'a> Place<'a> {
    /// The job's source and destination places, in its direction. `client` reaches the job's
    /// bucket; `to_client` a copy's destination bucket.
    pub fn of(
        job: &'a Job,
        client: &'a aws_sdk_s3::Client,
        to_client: Option<&'a aws_sdk_s3::Client>,
    ) -> (Place<'a>, Place<'a>) {
        let bucket = Place::Remote { client, bucket: &job.bucket, prefix: &job.prefix };
        let local = Place::Local { root: &job.local, follow_symlinks: job.follow_symlinks };
        match (job.direction, &job.to, to_client) {
            (Direction::Copy, Some(to), Some(to_client)) => {
                (bucket, Place::Remote { client: to_client, bucket: &to.bucket, prefix: &to.prefix })
            }
            (Direction::Copy, ..) => unreachable!("a copy is looked up with its destination's client"),
            (Direction::Upload, ..) => (local, bucket),
            (Direction::Download, ..) => (bucket, local),
        }
    }

    /// Whether its entries' times have whole seconds only (a HEAD's `Last-Modified`).
    pub fn has_whole_seconds(&self) -> bool {
        matches!(self, Place::Remote { .. })
    }

    /// The entry stored as `name` (relative to the place's root), as a listing would yield
    /// it; `None` when there is none. A remote entry comes from a HEAD request, whose
    /// `Last-Modified` has whole seconds: its time is the start of the second (a listing has
    /// milliseconds), so compare such times by the second.
    pub async fn entry(&self, name: &str) -> Result<Option<Entry>, crate::s3::RequestFailure> {
        match self {
            Place::Local { root, follow_symlinks } => {
                let found = super::local::file_entry(root, name, *follow_symlinks);
                found.map_err(|err| {
                    crate::s3::RequestFailure::local(
                        crate::s3::FailureCode::LocalIo,
                        format!("cannot read the local file: {err}"),
                        false,
                    )
                })
            }
            Place::Remote { client, bucket, prefix } => {
                super::remote::head_entry(client, bucket, &format!("{prefix}{name}"), name).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(endpoint: Option<&str>) -> S3Target {
        S3Target {
            profile: None,
            region: None,
            endpoint: endpoint.map(str::to_string),
            path_style: false,
            request_payer: false,
            retries: 0,
            ca_bundle: None,
            checksum: Default::default(),
        }
    }

    #[test]
    fn a_server_found_unordered_is_sorted_for_the_rest_of_the_run() {
        let weed = target(Some("http://127.0.0.1:1/"));
        assert!(!known_unordered(&weed, "b"));
        remember_unordered(&weed, "b");
        // Every bucket of that endpoint, however its URL ends.
        assert!(known_unordered(&target(Some("http://127.0.0.1:1")), "other"));
        // On AWS itself, only that bucket.
        let aws = target(None);
        remember_unordered(&aws, "odd");
        assert!(known_unordered(&aws, "odd"));
        assert!(!known_unordered(&aws, "plain"));
        assert!(known_unordered(&aws, "data--use1-az4--x-s3"));
    }
}
