//! Reading content for `compare: checksum`: for each pair of the same size, a HEAD with
//! checksum mode on the object and the same checksum computed over the local file (or, for a
//! copy, a HEAD of both objects), on a rayon pool of the job's `concurrency` (HEADs wait on
//! the network, hashing on the CPU).
//! The plan stage asks through its `ContentCheck` trait and stays pure; this does the I/O.

use std::path::Path;

use aws_sdk_s3::types::ChecksumMode;
use rayon::prelude::*;

use crate::checksum::{RemoteChecksum, checksum_of};
use crate::listing::Entry;
use crate::plan::{ContentCheck, ContentVerdict};

/// Compares pairs by reading the object's checksum and hashing the local file.
pub struct ContentChecker<'a> {
    pub client: &'a aws_sdk_s3::Client,
    pub runtime: &'a tokio::runtime::Handle,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub local_root: &'a Path,
    /// Download: the source is the object; upload: the destination is.
    pub remote_is_source: bool,
    /// A copy's destination bucket (client, bucket, prefix): both sides are objects.
    pub to: Option<(&'a aws_sdk_s3::Client, &'a str, &'a str)>,
    pub pool: rayon::ThreadPool,
}

impl ContentCheck for ContentChecker<'_> {
    fn compare(&self, pairs: &[(&Entry, &Entry)]) -> Vec<ContentVerdict> {
        self.pool.install(|| {
            pairs
                .par_iter()
                .with_max_len(1)
                .map(|(source, destination)| {
                    if let Some(to) = self.to {
                        return self.compare_objects(source, destination, to);
                    }
                    let (remote, local) =
                        if self.remote_is_source { (source, destination) } else { (destination, source) };
                    self.compare_one(remote, local)
                })
                .collect()
        })
    }
}

impl ContentChecker<'_> {
    /// Two objects (a copy): the same when both have a checksum of the same kind (algorithm,
    /// full-object or the same number of parts) and it is equal; unavailable otherwise, so
    /// the object is copied to be sure.
    fn compare_objects(
        &self,
        source: &Entry,
        destination: &Entry,
        (to_client, to_bucket, to_prefix): (&aws_sdk_s3::Client, &str, &str),
    ) -> ContentVerdict {
        let checksum = |client: &aws_sdk_s3::Client, bucket: &str, key: String| {
            let head = client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled);
            self.runtime.block_on(head.send()).ok().as_ref().and_then(RemoteChecksum::from_head)
        };
        let source = checksum(self.client, self.bucket, format!("{}{}", self.prefix, source.stored()));
        let destination = checksum(to_client, to_bucket, format!("{to_prefix}{}", destination.stored()));
        match (source, destination) {
            (Some(a), Some(b)) if a.algorithm == b.algorithm && a.parts == b.parts => {
                if a.value == b.value {
                    ContentVerdict::Same
                } else {
                    ContentVerdict::Differs
                }
            }
            _ => ContentVerdict::Unavailable,
        }
    }

    fn compare_one(&self, remote: &Entry, local: &Entry) -> ContentVerdict {
        let key = format!("{}{}", self.prefix, remote.stored());
        let Ok(path) = crate::listing::local_path(self.local_root, local.stored()) else {
            return ContentVerdict::Unavailable;
        };
        let head = self.client.head_object().bucket(self.bucket).key(&key).checksum_mode(ChecksumMode::Enabled);
        let Ok(head) = self.runtime.block_on(head.send()) else { return ContentVerdict::Unavailable };
        let Some(expected) = RemoteChecksum::from_head(&head) else { return ContentVerdict::Unavailable };
        let part_size = match expected.parts {
            None => None,
            Some(_) => {
                // The upload's part size is the size of its first part.
                let first = self.client.head_object().bucket(self.bucket).key(&key).part_number(1);
                match self.runtime.block_on(first.send()).ok().and_then(|h| h.content_length()) {
                    Some(length) if length > 0 => Some(length as u64),
                    _ => return ContentVerdict::Unavailable,
                }
            }
        };
        let Ok(mut file) = std::fs::File::open(&path) else { return ContentVerdict::Unavailable };
        let Ok(actual) = checksum_of(&mut file, expected.algorithm, part_size) else {
            return ContentVerdict::Unavailable;
        };
        // A server that ignores `partNumber` answers with the whole object: the part size is
        // then unknown, and the parts cannot be recomputed.
        if expected.parts != part_size.map(|size| local.size.div_ceil(size).max(1)) {
            return ContentVerdict::Unavailable;
        }
        if actual == expected.value { ContentVerdict::Same } else { ContentVerdict::Differs }
    }
}
