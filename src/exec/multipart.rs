//! The multipart upload, one path for uploads and copies: how an object is cut into parts (at
//! most 10,000), starting an upload with CRC32C checksums (a full-object CRC64NVME, or none, as `checksum` says), sending
//! a part with its check as a plain header (servers such as Garage reject the SDK's
//! streaming trailer), completing
//! with the parts in order, and aborting (a failed upload leaves no parts costing money).

use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::integrity::{BodyCheck, with_body_check};
use crate::manifest::UploadChecksum;
use crate::s3::{RequestFailure, request_failure};

/// S3 allows at most this many parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// How an object of `size` bytes is cut into parts of `part_size` (the last one shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartLayout {
    pub size: u64,
    pub part_size: u64,
}

impl PartLayout {
    /// Parts of the configured size, grown (in whole MiB) when the object would need more
    /// than 10,000 of them.
    pub fn new(size: u64, configured: u64) -> PartLayout {
        const MIB: u64 = 1024 * 1024;
        let part_size = match size.div_ceil(configured) <= MAX_PARTS {
            true => configured,
            false => size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB,
        };
        PartLayout { size, part_size }
    }

    /// How many parts (an empty object has one, empty).
    pub fn count(&self) -> u64 {
        self.size.div_ceil(self.part_size).max(1)
    }

    /// Where part `index` (from 0) starts and how long it is.
    pub fn part(&self, index: u64) -> (u64, u64) {
        let offset = index * self.part_size;
        (offset, self.part_size.min(self.size - offset))
    }

    /// The part `number` (from 1, as S3 counts) as an index, if the object has it.
    pub fn index_of(&self, number: i32) -> Option<u64> {
        u64::try_from(number).ok().filter(|n| *n >= 1 && *n <= self.count()).map(|n| n - 1)
    }
}

/// S3's part number of part `index` (from 0).
pub(super) fn part_number(index: u64) -> i32 {
    (index + 1) as i32
}

/// A multipart upload in a bucket.
pub(super) struct Multipart {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    pub id: String,
    /// Completed only if the key is still absent (`If-None-Match: *`, `overwrite: never`).
    create_only: bool,
}

impl Multipart {
    /// An upload that exists already (one a run left, to continue or abort).
    pub fn existing(client: &aws_sdk_s3::Client, bucket: &str, key: &str, id: &str) -> Multipart {
        Multipart {
            client: client.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            id: id.to_string(),
            create_only: false,
        }
    }

    /// Completes only if nothing has taken the key meanwhile (`overwrite: never`).
    pub fn create_only(mut self, create_only: bool) -> Multipart {
        self.create_only = create_only;
        self
    }

    /// Starts an upload with CRC32C checksums (none with `checksum: off`: its parts go with
    /// Content-MD5); `configure` adds the object's properties (content type, storage class,
    /// encryption, metadata).
    pub async fn start(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        checksum: UploadChecksum,
        configure: impl FnOnce(CreateMultipartUploadFluentBuilder) -> CreateMultipartUploadFluentBuilder,
    ) -> Result<Multipart, RequestFailure> {
        let (algorithm, kind) = crate::s3::multipart_checksum(checksum);
        let request = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_checksum_algorithm(algorithm)
            .set_checksum_type(kind);
        let created = configure(request).send().await.map_err(|err| request_failure(&err))?;
        let id = created.upload_id().unwrap_or_default();
        Ok(Multipart::existing(client, bucket, key, id))
    }

    /// Sends part `number` with its check (its CRC32C, or its Content-MD5, which its ETag
    /// must then be).
    pub async fn send_part(
        &self,
        number: i32,
        length: u64,
        check: &BodyCheck,
        body: ByteStream,
    ) -> Result<CompletedPart, RequestFailure> {
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(number)
            .content_length(length as i64)
            .body(body);
        let answer = with_body_check!(request, check).send().await.map_err(|err| request_failure(&err))?;
        check.agrees_with(answer.e_tag(), super::integrity::encrypted(answer.server_side_encryption()))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(answer.e_tag().map(str::to_string))
            .set_checksum_crc32_c(check.crc32c())
            .set_checksum_crc64_nvme(check.crc64nvme())
            .build())
    }

    /// Completes the upload with `parts`, in any order.
    pub async fn complete(&self, mut parts: Vec<CompletedPart>) -> Result<(), RequestFailure> {
        parts.sort_by_key(|part| part.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .set_if_none_match(self.create_only.then(|| "*".to_string()))
            .send()
            .await
            .map_err(|err| super::created_meanwhile(request_failure(&err), self.create_only))?;
        Ok(())
    }

    /// Aborts the upload. One that is gone already counts as aborted.
    pub async fn abort(&self) -> Result<(), RequestFailure> {
        let request = self.client.abort_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.id);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if aws_sdk_s3::error::ProvideErrorMetadata::code(&err) == Some("NoSuchUpload") => Ok(()),
            Err(err) => Err(request_failure(&err)),
        }
    }

    /// Completes the upload with `parts`, or aborts it when they (or the completion) failed.
    /// The abort is best effort: the first failure is what the report needs, and an upload
    /// left behind is found and aborted by the next run's plan.
    pub async fn complete_or_abort(
        self,
        parts: Result<Vec<CompletedPart>, RequestFailure>,
    ) -> Result<(), RequestFailure> {
        let result = match parts {
            Ok(parts) => self.complete(parts).await,
            Err(failure) => Err(failure),
        };
        if result.is_err()
            && let Err(failure) = self.abort().await
        {
            tracing::debug!(key = %self.key, "cannot abort the multipart upload: {}", failure.message);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_to_stay_within_ten_thousand() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(PartLayout::new(100 * MIB, 8 * MIB).part_size, 8 * MIB);
        assert_eq!(PartLayout::new(80_000 * MIB, 8 * MIB).part_size, 8 * MIB);
        let grown = PartLayout::new(80_001 * MIB, 8 * MIB);
        assert_eq!(grown.part_size, 9 * MIB);
        assert!(grown.count() <= MAX_PARTS);
        let huge = 5 * 1024 * 1024 * MIB; // 5 TiB, the S3 maximum object size
        assert!(PartLayout::new(huge, 8 * MIB).count() <= MAX_PARTS);
    }

    #[test]
    fn parts_cover_the_object_once() {
        let layout = PartLayout { size: 10, part_size: 4 };
        assert_eq!(layout.count(), 3);
        assert_eq!((0..3).map(|i| layout.part(i)).collect::<Vec<_>>(), [(0, 4), (4, 4), (8, 2)]);
        assert_eq!(
            (layout.index_of(1), layout.index_of(3), layout.index_of(4), layout.index_of(0)),
            (Some(0), Some(2), None, None)
        );
        assert_eq!(PartLayout { size: 0, part_size: 4 }.count(), 1);
        assert_eq!(part_number(0), 1);
    }
}
