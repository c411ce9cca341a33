//! Uploads: one PUT below `multipart_threshold`, a multipart upload with parallel parts above
//! it. Every request carries a CRC32C computed by haul up front, as a plain header: servers
//! such as Garage reject the SDK's streaming-trailer checksum, and a header works everywhere
//! (with `checksum: off`, a Content-MD5 instead: `integrity`).
//! A multipart upload that fails is aborted, so no orphaned parts accrue storage charges.
//!
//! Memory: a body (a whole small file, or a part) above [`IN_MEMORY_UP_TO`] is never held
//! whole. It is read twice: once for its CRC32C, then streamed from the file as the request
//! goes out (the page cache makes the second read cheap). The header doubles as the guard
//! against a file that changes while it is sent: the server refuses a body whose bytes do not
//! match it, and a change between the start and a checksum pass is seen from the file's
//! size, modification and change times. Either way the upload fails as `FileChanged` (a
//! multipart upload is aborted), and no object mixes two versions of the file.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedPart;
use futures_util::StreamExt as _;

use super::integrity::{BodyCheck, with_body_check};
use super::multipart::{Multipart, PartLayout, part_number};
use super::{Context, io_failure};
use crate::checksum::Algorithm;
use crate::etag::ETag;
use crate::manifest::UploadChecksum;

use crate::plan::Action;
use crate::progress::ObjectProgress;
use crate::s3::{RequestFailure, request_failure};

/// Bodies up to this size are read into memory once and sent from there (one read beats two
/// for the many small files); larger ones are streamed from the file.
const IN_MEMORY_UP_TO: u64 = 256 * 1024;

/// The read size of the checksum pass and of the stream that sends the body: 64 KiB costs
/// about 0.25 MiB per request in flight against 0.6 MiB at 256 KiB, at the same speed
/// (bench/results/upload-memory-20261126.md).
const READ_CHUNK: usize = 64 * 1024;

/// What says a file is still the version an upload started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Version {
    fn of(file: &File) -> std::io::Result<Version> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = file.metadata()?;
        Ok(Version {
            size: meta.len(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// The file being uploaded: opened once, its version taken at the start.
struct Source {
    path: std::path::PathBuf,
    file: File,
    version: Version,
}

impl Source {
    /// Opens the file and takes its version. Blocking: run it on the blocking pool.
    fn open(path: std::path::PathBuf) -> Result<Source, RequestFailure> {
        let file = File::open(&path).map_err(|err| io_failure(&format!("cannot open {}", path.display()), err))?;
        // The size now, not the planned one: a file that grew since is uploaded whole.
        let version = Version::of(&file).map_err(|err| io_failure(&format!("cannot read {}", path.display()), err))?;
        Ok(Source { path, file, version })
    }

    /// Fails as `FileChanged` when the file is no longer the version the upload started with.
    fn ensure_unchanged(&self) -> Result<(), RequestFailure> {
        let now = Version::of(&self.file).map_err(|err| io_failure("cannot read the file", err))?;
        if now == self.version { Ok(()) } else { Err(changed()) }
    }

    /// `length` bytes from `offset`, read into memory, with their check. Blocking.
    fn read(&self, offset: u64, length: u64, mode: UploadChecksum) -> Result<(Vec<u8>, BodyCheck), RequestFailure> {
        let bytes = read_at(&self.file, offset, length)?;
        self.ensure_unchanged()?;
        let check = BodyCheck::of_bytes(&bytes, mode);
        Ok((bytes, check))
    }

    /// The body of `length` bytes from `offset`, with its check. The reading runs on the
    /// blocking pool.
    async fn body(
        &self,
        offset: u64,
        length: u64,
        mode: UploadChecksum,
    ) -> Result<(ByteStream, BodyCheck), RequestFailure> {
        let file = self.file.try_clone().map_err(|err| io_failure("cannot read the file", err))?;
        if length <= IN_MEMORY_UP_TO {
            let (bytes, check) = super::blocking(move || {
                read_at(&file, offset, length).map(|bytes| {
                    let check = BodyCheck::of_bytes(&bytes, mode);
                    (bytes, check)
                })
            })
            .await?;
            self.ensure_unchanged()?;
            return Ok((ByteStream::from(bytes), check));
        }
        let checksum = super::blocking(move || checksum_of_range(&file, offset, length, mode)).await?;
        // The check is of the version the upload started with, or the upload stops here.
        self.ensure_unchanged()?;
        // By path, so the SDK can open it again for a retry; a file replaced under the name
        // since is refused by the server (its bytes do not match the checksum).
        let body = ByteStream::read_from()
            .path(&self.path)
            .offset(offset)
            .length(aws_sdk_s3::primitives::Length::Exact(length))
            .buffer_size(READ_CHUNK)
            .build()
            .await
            .map_err(|err| match std::error::Error::source(&err).and_then(|e| e.downcast_ref::<std::io::Error>()) {
                // Gone, unreadable: said as any other read of the file.
                Some(io) => io_failure("cannot read the file", std::io::Error::new(io.kind(), io.to_string())),
                // Its only other failure: the file is shorter than the range, so it changed.
                None => changed(),
            })?;
        Ok((body, checksum))
    }

    /// A request that failed: the server refusing the checksum means the file changed under it
    /// (the bytes sent are not the ones read for the checksum) when the file says so too.
    fn explain(&self, failure: RequestFailure) -> RequestFailure {
        let refused =
            matches!(failure.code.as_deref(), Some("BadDigest" | "InvalidDigest" | "XAmzContentChecksumMismatch"));
        if refused && self.ensure_unchanged().is_err() { changed() } else { failure }
    }
}

fn changed() -> RequestFailure {
    RequestFailure::local(
        crate::s3::FailureCode::FileChanged,
        "the file changed while it was being sent; nothing of the new version was stored".to_string(),
        false,
    )
}

pub(super) async fn upload(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let path = crate::listing::local_path(&context.job.local, action.source_name())
        .map_err(|why| RequestFailure::local(crate::s3::FailureCode::UnsafeKey, format!("the name {why}"), false))?;
    let threshold = context.job.multipart_threshold.0;
    let mode = context.job.target.checksum;
    // Opening the file, and reading a small one whole with its checksum, is one hand-off to
    // the blocking pool.
    let (source, whole) = super::blocking(move || {
        let source = Source::open(path)?;
        let size = source.version.size;
        let whole = if size < threshold && size <= IN_MEMORY_UP_TO { Some(source.read(0, size, mode)?) } else { None };
        Ok((source, whole))
    })
    .await?;
    let size = source.version.size;
    let key = context.remote_key(action.destination_name());
    let progress = context.counters.start(&action.key, size);
    if size < threshold {
        put(context, &key, &source, whole, &progress).await?;
    } else {
        multipart(context, &key, &source, &progress, action.resume.as_ref()).await?;
    }
    progress.finish();
    Ok(())
}

async fn put(
    context: &Context,
    key: &str,
    source: &Source,
    whole: Option<(Vec<u8>, BodyCheck)>,
    progress: &ObjectProgress<'_>,
) -> Result<(), RequestFailure> {
    let size = source.version.size;
    let (body, check) = match whole {
        Some((bytes, check)) => (ByteStream::from(bytes), check),
        None => source.body(0, size, context.job.target.checksum).await?,
    };
    context.pace(size).await;
    let request = context
        .client
        .put_object()
        .bucket(&context.job.bucket)
        .key(key)
        .content_length(size as i64)
        .content_type(content_type(key))
        .set_if_none_match(super::create_only(context).then(|| "*".to_string()))
        .body(body);
    let options = context.options_for(key);
    let request = with_manifest_properties!(with_storage!(with_body_check!(request, &check), &options), &options);
    let create_only = super::create_only(context);
    let answer = request
        .send()
        .await
        .map_err(|err| super::created_meanwhile(source.explain(request_failure(&err)), create_only))?;
    check.agrees_with(answer.e_tag(), super::integrity::encrypted(answer.server_side_encryption()))?;
    progress.add(size);
    Ok(())
}

/// A multipart upload: continued where an earlier attempt of this run, or the run the plan
/// found it from, stopped (every part the server has is first checked against the file), or
/// started. A failure that another attempt or run can get past (the network, the server, a
/// stop asked for) leaves the upload for it; any other aborts it, so no parts are billed for
/// nothing.
async fn multipart(
    context: &Context,
    key: &str,
    source: &Source,
    progress: &ObjectProgress<'_>,
    planned: Option<&crate::plan::Resume>,
) -> Result<(), RequestFailure> {
    let earlier = context.uploads_left.lock().expect("uploads lock").get(key).cloned();
    let earlier = earlier.or_else(|| planned.map(|resume| resume.upload_id.clone()));
    let (upload_id, done) = match earlier {
        Some(upload_id) => match continuable(context, key, &upload_id, source).await {
            Ok(done) => (upload_id, done),
            Err(why) => {
                tracing::info!(transfer = %context.job.name, key, "starting the upload over: {why}");
                context.restarted_uploads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                abort(context, key, &upload_id).await;
                (start(context, key).await?.id, Vec::new())
            }
        },
        None => (start(context, key).await?.id, Vec::new()),
    };
    context.uploads_left.lock().expect("uploads lock").insert(key.to_string(), upload_id.clone());
    let resumed: u64 = done.iter().map(|(_, length)| length).sum();
    if resumed > 0 {
        progress.add(resumed);
        context.resumed_bytes.fetch_add(resumed, std::sync::atomic::Ordering::Relaxed);
    }
    let done: Vec<CompletedPart> = done.into_iter().map(|(part, _)| part).collect();
    let result = upload_parts(context, key, &upload_id, source, progress, done).await;
    match &result {
        Err(failure) if failure.transient || failure.is(crate::s3::FailureCode::Interrupted) => {
            tracing::info!(transfer = %context.job.name, key, "the multipart upload is left for the next attempt or run to continue");
        }
        Err(_) => {
            abort(context, key, &upload_id).await;
            context.uploads_left.lock().expect("uploads lock").remove(key);
        }
        Ok(()) => {
            context.uploads_left.lock().expect("uploads lock").remove(key);
        }
    }
    result
}

/// Starts a multipart upload of the file.
async fn start(context: &Context, key: &str) -> Result<Multipart, RequestFailure> {
    Multipart::start(&context.client, &context.job.bucket, key, context.job.target.checksum, |request| {
        let options = context.options_for(key);
        let request = with_storage!(request.content_type(content_type(key)), &options);
        with_manifest_properties!(request, &options)
    })
    .await
}

/// Best effort; a failure to abort leaves it for the next run's plan to find.
async fn abort(context: &Context, key: &str, upload_id: &str) {
    if let Err(failure) = Multipart::existing(&context.client, &context.job.bucket, key, upload_id).abort().await {
        tracing::debug!(key, "cannot abort the multipart upload: {}", failure.message);
    }
}

/// The parts of `upload_id` that hold exactly the file's bytes (with their lengths), ready to
/// complete with, or why the upload cannot be continued. Every part the server has is read
/// back from the file and checked: by its CRC32C where the server gives it, else by its ETag
/// (the part's MD5 on AWS without KMS, moto, Garage). A part of another size than this run's
/// layout, a part that differs (the file changed since), or one that cannot be checked means
/// starting over: nothing is ever stitched from two versions.
async fn continuable(
    context: &Context,
    key: &str,
    upload_id: &str,
    source: &Source,
) -> Result<Vec<(CompletedPart, u64)>, String> {
    let listed = crate::listing::remote::uploaded_parts(&context.client, &context.job.bucket, key, upload_id)
        .await
        .map_err(|failure| format!("its parts cannot be listed ({})", failure.message))?;
    // Its parts are completed as they were sent: with the upload's algorithm, or (`checksum:
    // off`) none. (Some servers do not say which algorithm an upload has.)
    let mode = context.job.target.checksum;
    match (mode, listed.checksum_algorithm.as_deref()) {
        (UploadChecksum::Crc32c, Some("CRC32C") | None)
        | (UploadChecksum::Crc64nvme, Some("CRC64NVME") | None)
        | (UploadChecksum::Off, None) => {}
        (_, Some(other)) => return Err(format!("it was started with {other} checksums, not as `checksum` says")),
    }
    let layout = PartLayout::new(source.version.size, context.job.part_size.0);
    let mut checks = Vec::with_capacity(listed.parts.len());
    for part in listed.parts {
        let Some(index) = layout.index_of(part.number) else {
            return Err(format!("part {} is past the end of the file", part.number));
        };
        let (offset, length) = layout.part(index);
        if part.size != length {
            return Err(format!("part {} has {} bytes where this run's part has {length}", part.number, part.size));
        }
        checks.push((part, offset, length));
    }
    let file = source.file.try_clone().map_err(|err| format!("the file cannot be read ({err})"))?;
    let verified = super::blocking(move || {
        let mut done = Vec::with_capacity(checks.len());
        for (part, offset, length) in checks {
            // The part's own checksum as the upload sends it, and its MD5 (the ETag's).
            let algorithms = [BodyCheck::algorithm(mode), Algorithm::Md5];
            let sums = crate::checksum::checksums_of_range(&file, offset, length, &algorithms, READ_CHUNK)
                .map_err(|err| io_failure("cannot read the file", err))?;
            let (check, md5) = (BodyCheck::new(mode, sums[0].clone()), &sums[1]);
            let same = match (
                part.crc32c.as_ref().filter(|_| check.crc32c().is_some()),
                part.etag.as_ref().and_then(ETag::md5_hex),
            ) {
                (Some(listed), _) => Some(listed) == check.crc32c().as_ref(),
                (None, Some(etag_md5)) => etag_md5.eq_ignore_ascii_case(md5),
                _ => return Ok(Err(format!("part {} has no checksum haul can check", part.number))),
            };
            if !same {
                return Ok(Err(format!(
                    "part {} differs from the file: the file changed since it was sent",
                    part.number
                )));
            }
            let completed = CompletedPart::builder()
                .part_number(part.number)
                .set_e_tag(part.etag.as_ref().map(ETag::quoted))
                .set_checksum_crc32_c(check.crc32c())
                .set_checksum_crc64_nvme(check.crc64nvme())
                .build();
            done.push((completed, length));
        }
        Ok(Ok(done))
    })
    .await
    .map_err(|failure| failure.message)??;
    // The file is still the version the parts were checked against.
    source.ensure_unchanged().map_err(|failure| failure.message)?;
    Ok(verified)
}

/// Sends the parts not in `done` and completes the upload with all of them.
async fn upload_parts(
    context: &Context,
    key: &str,
    upload_id: &str,
    source: &Source,
    progress: &ObjectProgress<'_>,
    done: Vec<CompletedPart>,
) -> Result<(), RequestFailure> {
    let layout = PartLayout::new(source.version.size, context.job.part_size.0);
    let upload = Multipart::existing(&context.client, &context.job.bucket, key, upload_id)
        .create_only(super::create_only(context));
    let upload = &upload;
    let have: std::collections::HashSet<i32> = done.iter().filter_map(|part| part.part_number()).collect();
    let missing = (0..layout.count()).filter(|index| !have.contains(&part_number(*index)));
    let parts = futures_util::stream::iter(missing.map(|index| async move {
        let _pass = context.level.parts.enter().await;
        super::check_interrupt()?;
        let (offset, length) = layout.part(index);
        let (body, check) = source.body(offset, length, context.job.target.checksum).await?;
        context.pace(length).await;
        let part = upload.send_part(part_number(index), length, &check, body).await;
        let part = part.map_err(|failure| source.explain(failure))?;
        progress.add(length);
        Ok::<_, RequestFailure>(part)
    }))
    .buffer_unordered(context.level.most() as usize);
    let mut completed: Vec<CompletedPart> = futures_util::TryStreamExt::try_collect(parts).await?;
    completed.extend(done);
    // Every part matched its checksum, each taken of the starting version; one last look
    // before the parts become the object.
    source.ensure_unchanged()?;
    upload.complete(completed).await
}

fn read_at(file: &File, offset: u64, length: u64) -> Result<Vec<u8>, RequestFailure> {
    let mut buffer = vec![0; length as usize];
    file.read_exact_at(&mut buffer, offset).map_err(|err| io_failure("cannot read the file", err))?;
    Ok(buffer)
}

/// The check of a range of the file, read [`READ_CHUNK`] at a time; a file shorter than the
/// upload started with has changed.
fn checksum_of_range(file: &File, offset: u64, length: u64, mode: UploadChecksum) -> Result<BodyCheck, RequestFailure> {
    crate::checksum::checksum_of_range(file, offset, length, BodyCheck::algorithm(mode), READ_CHUNK)
        .map(|value| BodyCheck::new(mode, value))
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => changed(),
            _ => io_failure("cannot read the file", err),
        })
}

fn content_type(key: &str) -> String {
    mime_guess::from_path(key).first_or_octet_stream().essence_str().to_string()
}

/// Aborts the multipart uploads an interrupted run left (the plan lists them), so their
/// parts stop costing money; returns how many are gone. One that is gone already counts.
pub(super) async fn abort_unfinished(context: &Context, uploads: &[crate::listing::remote::UnfinishedUpload]) -> u64 {
    let mut aborted = 0;
    let (client, bucket, prefix) = context.written_bucket();
    for upload in uploads {
        let key = format!("{prefix}{}", upload.key);
        match Multipart::existing(client, bucket, &key, &upload.upload_id).abort().await {
            Ok(()) => aborted += 1,
            Err(failure) => {
                tracing::warn!(key = %key, "cannot abort an unfinished multipart upload: {}", failure.message)
            }
        }
    }
    aborted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_shorter_than_the_upload_started_with_has_changed() {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &[7; 1000]).unwrap();
        for mode in [UploadChecksum::Crc32c, UploadChecksum::Crc64nvme, UploadChecksum::Off] {
            assert_eq!(checksum_of_range(&file, 0, 1000, mode).unwrap(), BodyCheck::of_bytes(&[7; 1000], mode));
        }
        let failure = checksum_of_range(&file, 0, 1001, UploadChecksum::Crc32c).unwrap_err();
        assert_eq!(failure.code.as_deref(), Some("FileChanged"));
    }

    #[test]
    fn content_types_are_guessed_from_the_name() {
        assert_eq!(content_type("a/매출.csv"), "text/csv");
        assert_eq!(content_type("a/b.parquet"), "application/vnd.apache.parquet");
        assert_eq!(content_type("a/b.unknown-ext"), "application/octet-stream");
        assert_eq!(content_type("a/b.json"), "application/json");
    }
}
