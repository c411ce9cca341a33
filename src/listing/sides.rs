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
/// turns out not to be in key order is listed again and sorted in memory.
pub fn with_sides<T>(
    job: &Job,
    client: &aws_sdk_s3::Client,
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
        let walk = if job.direction == Direction::Upload { LocalWalk::of_source } else { LocalWalk::new };
        let mut local = walk(&job.local, job.follow_symlinks).map_err(SidesError::LocalFolder)?;
        let check_keys = job.direction == Direction::Download;
        let remote: Box<dyn Iterator<Item = Result<Item, ListError>>> = match order {
            Order::Streamed => {
                Box::new(FolderListing::new(runtime.clone(), client.clone(), &job.bucket, &job.prefix, check_keys))
            }
            Order::SortInMemory => Box::new(RemoteListing::new(
                runtime.clone(),
                client.clone(),
                &job.bucket,
                &job.prefix,
                check_keys,
                order,
            )),
        };
        let mut listing_error = None;
        let mut remote = remote.map_while(|item| item.map_err(|err| listing_error = Some(err)).ok());
        let result = match job.direction {
            Direction::Download => consume(&mut remote, &mut local),
            Direction::Upload => consume(&mut local, &mut remote),
        };
        match listing_error {
            Some(ListError::OutOfOrder { previous, key }) if order == Order::Streamed => {
                tracing::info!(
                    transfer = %job.name,
                    "the listing is not in key order (`{key}` after `{previous}`): listing again, sorted in memory"
                );
                order = Order::SortInMemory;
                continue;
            }
            Some(source) => return Err(SidesError::Remote(source)),
            None => return Ok((result, local.temp_files().to_vec())),
        }
    }
}
