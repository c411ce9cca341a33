//! Both sides of one transfer, listed together: the source and destination streams a plan
//! merges, in the direction the transfer goes.

use crate::listing::Item;
use crate::listing::local::LocalWalk;
use crate::listing::remote::{FolderListing, ListError, Order, RemoteListing};
use crate::manifest::{Direction, Job};

/// Why a transfer's two sides could not be listed.
#[derive(Debug)]
pub enum SidesError {
    /// The local folder: missing (for an upload) or unreadable.
    LocalFolder(std::io::Error),
    /// The remote listing failed part way.
    Remote(ListError),
}

/// Hands the job's source and destination listings (key-ordered streams) to `consume`, and
/// returns its result with the haul temp files the local walk passed. A server whose listing
/// turns out not to be in key order is listed again and sorted in memory. `client` reaches
/// the job's bucket; `to_client` a copy's destination bucket.
pub fn with_sides<T>(
    job: &Job,
    client: &aws_sdk_s3::Client,
    to_client: Option<&aws_sdk_s3::Client>,
    runtime: &tokio::runtime::Handle,
    mut consume: impl FnMut(&mut dyn Iterator<Item = Item>, &mut dyn Iterator<Item = Item>) -> T,
) -> Result<(T, Vec<String>), SidesError> {
    // A download creates its folder; an upload of a folder that is not there is a mistake.
    if job.direction == Direction::Upload && !job.local.is_dir() {
        return Err(SidesError::LocalFolder(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the folder to upload does not exist",
        )));
    }
    let mut order = Order::Streamed;
    loop {
        let listing = |client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, check_keys: bool| {
            let listing: Box<dyn Iterator<Item = Result<Item, ListError>>> = match order {
                Order::Streamed => {
                    Box::new(FolderListing::new(runtime.clone(), client.clone(), bucket, prefix, check_keys))
                }
                Order::SortInMemory => {
                    Box::new(RemoteListing::new(runtime.clone(), client.clone(), bucket, prefix, check_keys, order))
                }
            };
            listing
        };
        let listing_error = std::cell::RefCell::new(None);
        let keep = |item: Result<Item, ListError>| item.map_err(|err| *listing_error.borrow_mut() = Some(err)).ok();
        let (result, temp_files) = match (job.direction, &job.to, to_client) {
            (Direction::Copy, Some(to), Some(to_client)) => {
                // Both sides are buckets: keys are compared as S3 keeps them, none is a path.
                let mut source = listing(client, &job.bucket, &job.prefix, false).map_while(keep);
                let mut destination = listing(to_client, &to.bucket, &to.prefix, false).map_while(keep);
                (consume(&mut source, &mut destination), Vec::new())
            }
            (Direction::Copy, ..) => unreachable!("a copy is listed with its destination's client"),
            (direction, ..) => {
                let walk = if direction == Direction::Upload { LocalWalk::of_source } else { LocalWalk::new };
                let mut local = walk(&job.local, job.follow_symlinks).map_err(SidesError::LocalFolder)?;
                let check_keys = direction == Direction::Download;
                let mut remote = listing(client, &job.bucket, &job.prefix, check_keys).map_while(keep);
                let result = match direction {
                    Direction::Upload => consume(&mut local, &mut remote),
                    _ => consume(&mut remote, &mut local),
                };
                (result, local.temp_files().to_vec())
            }
        };
        match listing_error.into_inner() {
            Some(ListError::OutOfOrder { previous, key }) if order == Order::Streamed => {
                tracing::info!(
                    transfer = %job.name,
                    "the listing is not in key order (`{key}` after `{previous}`): listing again, sorted in memory"
                );
                order = Order::SortInMemory;
                continue;
            }
            Some(source) => return Err(SidesError::Remote(source)),
            None => return Ok((result, temp_files)),
        }
    }
}
