//! Copies from one bucket to another (`direction: copy`).
//!
//! Server-side where one endpoint and one profile reach both buckets: CopyObject below
//! `copy_cutoff` (5 GiB, the most it takes), UploadPartCopy in parallel parts above it; no
//! bytes pass through haul.
//! Streamed otherwise: haul reads each object (or each part of a large one) into memory within
//! a byte budget shared by the transfer, and writes it with its CRC32C as a header, so the
//! destination refuses bytes that are not the ones read. Every read asks `If-Match` on the
//! ETag the plan listed: an object replaced while it is copied fails instead of mixing two
//! versions, and a multipart upload that fails is aborted.
//!
//! Carried over: Content-Type, Content-Encoding, Content-Disposition, Content-Language,
//! Cache-Control, Expires and user metadata. Not carried: ACLs (the copy belongs to the
//! destination bucket's owner, with its default ACL) and tags, except that a server-side
//! CopyObject keeps the source's tags (S3 copies them by default).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, CompletedPart, MetadataDirective, TaggingDirective};
use futures_util::StreamExt as _;

use super::Context;
use super::integrity::{BodyCheck, with_body_check};
use super::multipart::{Multipart, PartLayout, part_number};
use super::ranged::RangedObject;
use crate::etag::ETag;
use crate::manifest::CopyDestination;
use crate::plan::{Action, CopyMethod};
use crate::progress::ObjectProgress;
use crate::s3::{RequestFailure, request_failure};

/// The destination side of a copy, as the executor reaches it.
pub(super) struct CopyTarget {
    pub client: aws_sdk_s3::Client,
    pub destination: CopyDestination,
    pub method: CopyMethod,
    /// Bytes a streamed copy may hold in memory at once, in KiB (shared by all objects).
    pub budget: Arc<tokio::sync::Semaphore>,
}

/// What a streamed copy may hold in memory at once, across all its objects and parts: a part
/// waits for room, so memory does not grow with concurrency, object size or part size
/// (above one part).
pub(super) const STREAM_BUDGET_KIB: usize = 64 * 1024;

/// The object's properties a copy carries over.
#[derive(Default)]
struct Properties {
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
    metadata: Option<std::collections::HashMap<String, String>>,
}

macro_rules! properties_of {
    ($answer:expr) => {
        Properties {
            content_type: $answer.content_type().map(str::to_string),
            content_encoding: $answer.content_encoding().map(str::to_string),
            content_disposition: $answer.content_disposition().map(str::to_string),
            content_language: $answer.content_language().map(str::to_string),
            cache_control: $answer.cache_control().map(str::to_string),
            expires: $answer.expires_string().map(str::to_string),
            metadata: $answer.metadata().cloned(),
        }
    };
}

macro_rules! with_properties {
    ($request:expr, $properties:expr) => {{
        let p = $properties;
        $request
            .set_content_type(p.content_type.clone())
            .set_content_encoding(p.content_encoding.clone())
            .set_content_disposition(p.content_disposition.clone())
            .set_content_language(p.content_language.clone())
            .set_cache_control(p.cache_control.clone())
            .set_expires(p.expires.as_deref().and_then(|text| {
                aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::HttpDate).ok()
            }))
            .set_metadata(p.metadata.clone())
    }};
}

pub(super) async fn copy(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let Some(target) = context.to.as_ref() else {
        return Err(RequestFailure::local(crate::s3::FailureCode::Internal, "a copy without a destination", false));
    };
    let object = Object {
        key: context.remote_key(action.source_name()),
        etag: action.source.as_ref().and_then(|source| source.etag.clone()),
        size: action.size,
    };
    let destination_key = format!("{}{}", target.destination.prefix, action.destination_name());
    let progress = context.counters.start(&action.key, action.size);
    // A server copies an object up to `copy_cutoff` in one request (often without moving its
    // bytes); haul streams anything above `multipart_threshold` in parts.
    let large = match target.method {
        CopyMethod::ServerSide => action.size >= context.job.copy_cutoff.0,
        CopyMethod::Streamed => action.size >= context.job.multipart_threshold.0,
    };
    // Streamed parts count their bytes as they go; the others when the object is done.
    let counted_by_parts = large && target.method == CopyMethod::Streamed;
    match (target.method, large) {
        (CopyMethod::ServerSide, false) => server_side(context, target, &object, &destination_key).await?,
        (CopyMethod::ServerSide, true) => server_side_parts(context, target, &object, &destination_key).await?,
        (CopyMethod::Streamed, false) => streamed(context, target, &object, &destination_key).await?,
        (CopyMethod::Streamed, true) => {
            streamed_parts(context, target, &object, &destination_key, &progress).await?;
        }
    }
    if !counted_by_parts {
        progress.add(action.size);
    }
    progress.finish();
    Ok(())
}

/// The source object as the plan listed it.
struct Object {
    key: String,
    etag: Option<ETag>,
    size: u64,
}

impl Object {
    fn if_match(&self) -> Option<String> {
        self.etag.as_ref().map(ETag::quoted)
    }
}

/// `x-amz-copy-source`: the bucket and the key, percent-encoded (keys may hold any character).
pub(super) fn copy_source(bucket: &str, key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    format!("{bucket}/{}", percent_encoding::utf8_percent_encode(key, KEEP))
}

/// A copy refused because the source changed since the plan: said as such.
fn source_changed(failure: RequestFailure) -> RequestFailure {
    match failure.code.as_deref() {
        Some("PreconditionFailed") => super::object_changed(),
        _ => failure,
    }
}

fn request_payer(context: &Context) -> Option<aws_sdk_s3::types::RequestPayer> {
    context.job.target.request_payer.then_some(aws_sdk_s3::types::RequestPayer::Requester)
}

/// One CopyObject: the server copies the object with its properties. No checksum algorithm is
/// asked for: the copy keeps the source's checksum where the server carries it over (AWS and
/// moto do), and a server that stores objects by content (Garage) can then copy without
/// reading a byte; asking for CRC32C made Garage read and hash every object (W6: 1 GiB in
/// 4.9 s against 0.1 s).
async fn server_side(
    context: &Context,
    target: &CopyTarget,
    object: &Object,
    destination_key: &str,
) -> Result<(), RequestFailure> {
    let request = target
        .client
        .copy_object()
        .bucket(&target.destination.bucket)
        .key(destination_key)
        .copy_source(copy_source(&context.job.bucket, &object.key))
        .set_copy_source_if_match(object.if_match())
        .set_if_none_match(super::create_only(context).then(|| "*".to_string()))
        .set_request_payer(request_payer(context));
    let options = &*context.options_for(destination_key);
    let mut request = with_storage!(request, options);
    // A server-side copy keeps the source's metadata and tags unless told to replace them.
    if options.replaces_metadata() {
        request = with_manifest_properties!(request.metadata_directive(MetadataDirective::Replace), options);
    }
    if options.tags.is_some() {
        request = request.tagging_directive(TaggingDirective::Replace);
    }
    let create_only = super::create_only(context);
    request.send().await.map_err(|err| super::created_meanwhile(source_changed(request_failure(&err)), create_only))?;
    Ok(())
}

/// The source read in ranges: its HEAD (`If-Match` on the listed ETag; its properties, size
/// and checksum) and ranges in parts of the destination's upload (at most 10,000).
async fn ranged_source(context: &Context, object: &Object) -> Result<RangedObject, RequestFailure> {
    let chunk = PartLayout::new(object.size, context.job.part_size.0).part_size;
    RangedObject::head(context, &object.key, object.etag.as_ref(), object.size, chunk).await.map_err(source_changed)
}

/// A multipart upload at the destination, started with the source's properties.
async fn start_upload(
    context: &Context,
    target: &CopyTarget,
    key: &str,
    properties: &Properties,
) -> Result<Multipart, RequestFailure> {
    let checksum = target.destination.target.checksum;
    let upload = Multipart::start(&target.client, &target.destination.bucket, key, checksum, |request| {
        let options = &*context.options_for(key);
        with_manifest_properties!(with_storage!(with_properties!(request, properties), options), options)
    })
    .await?;
    Ok(upload.create_only(super::create_only(context)))
}

/// UploadPartCopy in parallel: the server copies each range (`If-Match` on the source's
/// ETag), at most `concurrency` parts at a time across the transfer.
async fn server_side_parts(
    context: &Context,
    target: &CopyTarget,
    object: &Object,
    destination_key: &str,
) -> Result<(), RequestFailure> {
    let head =
        super::ranged::head_object(context, &object.key, object.etag.as_ref(), None).await.map_err(source_changed)?;
    super::ensure_version(object.etag.as_ref(), head.e_tag())?;
    let properties = properties_of!(head);
    let size = head.content_length().map_or(object.size, |length| length as u64);
    let part = PartCopy {
        source: copy_source(&context.job.bucket, &object.key),
        etag: head.e_tag().map(ETag::new).or_else(|| object.etag.clone()),
        layout: PartLayout::new(size, context.job.part_size.0),
    };
    let upload = start_upload(context, target, destination_key, &properties).await?;
    let parts = futures_util::stream::iter(0..part.layout.count())
        .map(|index| part.copy(context, target, &upload, destination_key, index))
        .buffer_unordered(context.level.most() as usize);
    let parts = futures_util::TryStreamExt::try_collect(parts).await;
    upload.complete_or_abort(parts).await
}

/// What each UploadPartCopy of one object needs.
struct PartCopy {
    source: String,
    etag: Option<ETag>,
    layout: PartLayout,
}

impl PartCopy {
    async fn copy(
        &self,
        context: &Context,
        target: &CopyTarget,
        upload: &Multipart,
        key: &str,
        index: u64,
    ) -> Result<CompletedPart, RequestFailure> {
        let _pass = context.level.parts.enter().await;
        super::check_interrupt()?;
        let (start, length) = self.layout.part(index);
        let end = start + length - 1;
        let number = part_number(index);
        let answer = target
            .client
            .upload_part_copy()
            .bucket(&target.destination.bucket)
            .key(key)
            .upload_id(&upload.id)
            .part_number(number)
            .copy_source(&self.source)
            .copy_source_range(format!("bytes={start}-{end}"))
            .set_copy_source_if_match(self.etag.as_ref().map(ETag::quoted))
            .set_request_payer(request_payer(context))
            .send()
            .await
            .map_err(|err| source_changed(request_failure(&err)))?;
        let result = answer.copy_part_result();
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(result.and_then(|r| r.e_tag()).map(str::to_string))
            .set_checksum_crc32_c(result.and_then(|r| r.checksum_crc32_c()).map(str::to_string))
            .build())
    }
}

/// Room in the streamed copies' memory budget for `bytes`.
async fn room(target: &CopyTarget, bytes: u64) -> tokio::sync::SemaphorePermit<'_> {
    let kib = bytes.div_ceil(1024).clamp(1, STREAM_BUDGET_KIB as u64) as u32;
    target.budget.acquire_many(kib).await.expect("the budget semaphore is never closed")
}

/// GET the whole object (checked against its checksum where it has a full one), then PUT it
/// with its properties and a CRC32C of the bytes read.
async fn streamed(
    context: &Context,
    target: &CopyTarget,
    object: &Object,
    destination_key: &str,
) -> Result<(), RequestFailure> {
    let _room = room(target, object.size).await;
    context.pace(object.size).await;
    let response = context
        .client
        .get_object()
        .bucket(&context.job.bucket)
        .key(&object.key)
        .set_if_match(object.if_match())
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|err| source_changed(request_failure(&err)))?;
    super::ensure_version(object.etag.as_ref(), response.e_tag())?;
    let properties = properties_of!(response);
    let length = response.content_length().map(|length| length as u64);
    super::ranged::check_total(length, object.size)?;
    let bytes = response.body.collect().await.map_err(super::ranged::body_failure)?.into_bytes();
    super::ranged::check_length(length, bytes.len() as u64)?;
    let check = BodyCheck::of_bytes(&bytes, target.destination.target.checksum);
    let request = target
        .client
        .put_object()
        .bucket(&target.destination.bucket)
        .key(destination_key)
        .content_length(bytes.len() as i64)
        .set_if_none_match(super::create_only(context).then(|| "*".to_string()))
        .body(ByteStream::from(bytes));
    let request = with_properties!(with_body_check!(request, &check), &properties);
    let options = context.options_for(destination_key);
    let request = with_manifest_properties!(with_storage!(request, &options), &options);
    let create_only = super::create_only(context);
    let answer = request.send().await.map_err(|err| super::created_meanwhile(request_failure(&err), create_only))?;
    check.agrees_with(answer.e_tag(), super::integrity::encrypted(answer.server_side_encryption()))
}

/// Ranged GETs (`If-Match` on the ETag) uploaded as parts, each with its CRC32C (or MD5). The ranges
/// follow the source's parts where its checksum is composite, so the ranges read add up to
/// the source's checksum, which is checked before the upload completes.
async fn streamed_parts(
    context: &Context,
    target: &CopyTarget,
    object: &Object,
    destination_key: &str,
    progress: &ObjectProgress<'_>,
) -> Result<(), RequestFailure> {
    let source = ranged_source(context, object).await?;
    let properties = properties_of!(source.head);
    let stream = PartStream {
        key: &object.key,
        etag: source.etag.clone(),
        crc: source.crc(),
        crcs: std::sync::Mutex::new(Vec::new()),
    };
    let upload = start_upload(context, target, destination_key, &properties).await?;
    let parts = futures_util::stream::iter(source.ranges.iter().copied().enumerate())
        .map(|(index, range)| stream.part(context, target, &upload, index, range, progress))
        .buffer_unordered(context.level.most() as usize);
    let mut parts: Result<Vec<CompletedPart>, _> = futures_util::TryStreamExt::try_collect(parts).await;
    // The ranges read must add up to the source's checksum before they become the copy.
    if parts.is_ok()
        && let Err(failure) = source.verify(&mut stream.crcs.lock().expect("range checksums"))
    {
        parts = Err(failure);
    }
    upload.complete_or_abort(parts).await
}

/// What each part of one streamed copy needs.
struct PartStream<'a> {
    key: &'a str,
    etag: Option<ETag>,
    /// The source's CRC to hash each range with, when its checksum can be rebuilt from them.
    crc: Option<crc_fast::CrcAlgorithm>,
    crcs: std::sync::Mutex<Vec<(u64, u64, u64)>>,
}

impl PartStream<'_> {
    async fn part(
        &self,
        context: &Context,
        target: &CopyTarget,
        upload: &Multipart,
        index: usize,
        (start, end): (u64, u64),
        progress: &ObjectProgress<'_>,
    ) -> Result<CompletedPart, RequestFailure> {
        let length = end - start + 1;
        let _pass = context.level.parts.enter().await;
        let _room = room(target, length).await;
        context.pace(length).await;
        super::check_interrupt()?;
        let response = context
            .client
            .get_object()
            .bucket(&context.job.bucket)
            .key(self.key)
            .range(format!("bytes={start}-{end}"))
            .set_if_match(self.etag.as_ref().map(ETag::quoted))
            .send()
            .await
            .map_err(|err| source_changed(request_failure(&err)))?;
        super::ensure_version(self.etag.as_ref(), response.e_tag())?;
        let bytes = response.body.collect().await.map_err(super::ranged::body_failure)?.into_bytes();
        super::ranged::check_length(Some(length), bytes.len() as u64)?;
        if let Some(algorithm) = self.crc {
            let mut digest = crc_fast::Digest::new(algorithm);
            digest.update(&bytes);
            self.crcs.lock().expect("range checksums").push((start, length, digest.finalize()));
        }
        let check = BodyCheck::of_bytes(&bytes, target.destination.target.checksum);
        let part = upload.send_part(part_number(index as u64), length, &check, ByteStream::from(bytes)).await?;
        progress.add(length);
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_sources_are_percent_encoded_but_keep_slashes() {
        assert_eq!(super::copy_source("b", "reports/2026/매출 1.csv"), "b/reports/2026/%EB%A7%A4%EC%B6%9C%201.csv");
        assert_eq!(super::copy_source("b", "a+b?c#d.csv"), "b/a%2Bb%3Fc%23d.csv");
    }
}
