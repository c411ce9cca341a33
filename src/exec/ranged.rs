//! The verified ranged read, one path for downloads and streamed copies: a HEAD of the object
//! with `If-Match` on the ETag the plan listed, its size checked against the plan, the size of
//! its first part asked when its checksum is composite, ranges laid out on its parts, and the
//! ranges' CRCs combined into its checksum before anything made of them is kept. And what
//! every read of a body checks: its length, and the SDK's checksum of a whole object.

use aws_sdk_s3::types::ChecksumMode;

use super::Context;
use crate::checksum::RemoteChecksum;
use crate::checksum::range::{self as range_checksum, RangeVerification};
use crate::etag::ETag;
use crate::s3::{RequestFailure, request_failure};

/// An object about to be read in ranges.
pub(super) struct RangedObject {
    pub head: aws_sdk_s3::operation::head_object::HeadObjectOutput,
    /// What every range must match (`If-Match`): the HEAD's ETag, else the listed one.
    pub etag: Option<ETag>,
    /// Inclusive `(first, last)` byte ranges, in order.
    pub ranges: Vec<(u64, u64)>,
    /// The object's part size where its checksum is composite: the ranges follow its parts.
    pub source_part_size: Option<u64>,
    verification: Option<RangeVerification>,
}

impl RangedObject {
    /// HEADs `key` (which must still be `listed` and `size` bytes) and lays out its ranges,
    /// `chunk` bytes each where its checksum does not ask for its own parts' sizes.
    pub async fn head(
        context: &Context,
        key: &str,
        listed: Option<&ETag>,
        size: u64,
        chunk: u64,
    ) -> Result<RangedObject, RequestFailure> {
        let head = head_object(context, key, listed, None).await?;
        super::ensure_version(listed, head.e_tag())?;
        check_total(head.content_length().map(|length| length as u64), size)?;
        let checksum = RemoteChecksum::from_head(&head);
        let first_part = match checksum.as_ref().and_then(|c| c.parts) {
            // Without If-Match: moto compares it with the part's ETag. The ranges check the ETag.
            Some(_) => head_object(context, key, None, Some(1)).await?.content_length().map(|length| length as u64),
            None => None,
        };
        let verification = checksum.and_then(|checksum| RangeVerification::new(&checksum, size, first_part));
        let source_part_size = verification.as_ref().and_then(|v| v.part_size);
        let ranges = range_checksum::layout(size, chunk, source_part_size);
        let etag = head.e_tag().map(ETag::new).or_else(|| listed.cloned());
        Ok(RangedObject { head, etag, ranges, source_part_size, verification })
    }

    /// The CRC to hash each range with, where the object's checksum can be rebuilt from them.
    pub fn crc(&self) -> Option<crc_fast::CrcAlgorithm> {
        self.verification.as_ref().map(|v| v.algorithm)
    }

    /// The ranges read (`(start, length, crc)`, any order) must add up to the object's
    /// checksum, where it has one to rebuild; `ChecksumMismatch` (worth another attempt) if not.
    pub fn verify(&self, crcs: &mut [(u64, u64, u64)]) -> Result<(), RequestFailure> {
        match &self.verification {
            Some(verification) if !verification.matches(crcs) => Err(RequestFailure::local(
                crate::s3::FailureCode::ChecksumMismatch,
                "the ranges read do not add up to the object's checksum",
                true,
            )),
            _ => Ok(()),
        }
    }
}

/// A HEAD with checksum mode, `If-Match` on `etag`, of the whole object or of one part.
pub(super) async fn head_object(
    context: &Context,
    key: &str,
    etag: Option<&ETag>,
    part: Option<i32>,
) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, RequestFailure> {
    let request = context
        .client
        .head_object()
        .bucket(&context.job.bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .set_if_match(etag.map(ETag::quoted))
        .set_part_number(part);
    request.send().await.map_err(|err| request_failure(&err))
}

/// The object's size as an answer gives it must be the planned one (else it changed since).
pub(super) fn check_total(total: Option<u64>, size: u64) -> Result<(), RequestFailure> {
    if total == Some(size) {
        return Ok(());
    }
    Err(RequestFailure::local(
        crate::s3::FailureCode::ObjectChanged,
        format!("the object is {} bytes now, {size} when planned", total.map_or("?".into(), |t| t.to_string())),
        false,
    ))
}

/// A body must be as long as its answer said.
pub(super) fn check_length(expected: Option<u64>, written: u64) -> Result<(), RequestFailure> {
    match expected {
        Some(expected) if expected != written => Err(RequestFailure::local(
            crate::s3::FailureCode::ShortBody,
            format!("the body ended after {written} of {expected} bytes"),
            true,
        )),
        _ => Ok(()),
    }
}

/// A body that broke off, or failed the checksum check: worth another attempt.
pub(super) fn body_failure(err: aws_sdk_s3::primitives::ByteStreamError) -> RequestFailure {
    // The SDK's checksum check fails the body with its own error type, somewhere down the chain.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut mismatch = false;
    while let Some(error) = source {
        mismatch |= error.downcast_ref::<aws_smithy_checksums::body::validate::Error>().is_some();
        source = error.source();
    }
    let code = if mismatch { crate::s3::FailureCode::ChecksumMismatch } else { crate::s3::FailureCode::ShortBody };
    RequestFailure::local(code, format!("reading the body: {}", crate::s3::error_chain(&err)), true)
}
