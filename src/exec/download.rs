//! Downloads: into a temp file next to the target, fsynced, given the object's LastModified
//! as mtime, then renamed into place. Until the rename nothing sits under the real name; a
//! failed or interrupted download leaves at most a `.haul-*.tmp` file, never listed as data.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt as _;

use std::path::Path;

use aws_sdk_s3::types::ChecksumMode;
use futures_util::StreamExt as _;
use md5::Digest as _;

use super::ranged::RangedObject;
use super::{AbortOnDrop, Context, io_failure};
use crate::etag::ETag;
use crate::plan::Action;
use crate::progress::ObjectProgress;
use crate::s3::{FailureCode, RequestFailure, request_failure};

pub(super) async fn download(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let key = context.remote_key(action.source_name());
    // The listing refused unsafe keys already; checking again costs nothing and keeps this
    // function safe on its own (a hand-edited plan file, say).
    let target = crate::listing::local_path(&context.job.local, action.destination_name())
        .map_err(|why| RequestFailure::local(crate::s3::FailureCode::UnsafeKey, format!("the key {why}"), false))?;
    let folder = target.parent().expect("a key has at least one segment").to_path_buf();
    let folder_exists = context.touched_folders.lock().expect("folder set").contains(&folder);
    let progress = context.counters.start(&action.key, action.size);
    let no_clobber = super::create_only(context);
    let etag = action.source.as_ref().and_then(|source| source.etag.clone());
    let large = action.size > context.job.part_size.0 && action.size >= context.job.multipart_threshold.0;
    // A multipart object (ETag `…-N`) has at most a composite checksum, which the SDK does not
    // check on a whole GET; the ranged path rebuilds and checks it, whatever the size.
    let multipart = etag.as_ref().and_then(ETag::parts).is_some();
    let ranged_download = large || (multipart && action.size > 0);
    if !ranged_download && action.size <= IN_MEMORY_UP_TO {
        // A small object is read into memory and written in one go on the blocking pool:
        // create, write, stamp, fsync and rename are one hand-off instead of five.
        let mut bytes = Vec::with_capacity(action.size as usize);
        let fetched = whole(context, &key, etag, &mut bytes, IN_MEMORY_UP_TO, &progress).await?;
        let modified = modification_time(context, action, &key, &fetched).await;
        let into = folder.clone();
        super::blocking(move || {
            if !folder_exists {
                create_folder(&into)?;
            }
            let mut temp = new_temp_file(&into)?;
            temp.write_all(&bytes).map_err(|err| io_failure("cannot write", err))?;
            finish(temp, modified, &target, no_clobber)
        })
        .await?;
    } else {
        if !folder_exists {
            create_folder(&folder)?;
        }
        // A partial download a stopped run (or an earlier attempt) kept for this key goes on.
        let own = context.partial_downloads.lock().expect("downloads lock").remove(&action.key);
        let partial = own.or_else(|| ranged_download.then(|| context.adopt_stale_partial(&folder, action)).flatten());
        let partial = partial.filter(|path| {
            // Only ranged downloads write records; a whole GET starts a fresh file.
            ranged_download || std::fs::remove_file(path).is_err()
        });
        let (temp, record) = match partial.and_then(|path| reopen(&path)) {
            Some((temp, record)) => (temp, Some(record)),
            None => (new_temp_file(&folder)?, None),
        };
        let fetched = if ranged_download {
            match ranged(context, &key, &action.key, action.size, etag, temp.as_file(), &progress, record).await {
                Ok(fetched) => fetched,
                Err(failure) => {
                    // What another attempt or run can get past keeps what was fetched; not a
                    // checksum failure: a range damaged on the way would be kept with it.
                    let resumable = failure.transient || failure.is(FailureCode::Interrupted);
                    if resumable && !failure.is(FailureCode::ChecksumMismatch) {
                        keep_partial(context, &action.key, temp);
                    }
                    return Err(failure);
                }
            }
        } else {
            let mut writer = std::io::BufWriter::with_capacity(256 * 1024, temp.as_file());
            let fetched = whole(context, &key, etag, &mut writer, u64::MAX, &progress).await?;
            writer.flush().map_err(|err| io_failure("cannot write", err))?;
            fetched
        };
        let modified = modification_time(context, action, &key, &fetched).await;
        super::blocking(move || finish(temp, modified, &target, no_clobber)).await?;
    }
    // The rename is made durable by one fsync per folder at the end of the transfer, not one
    // per file (the data itself is already on disk, so a crash before then loses the name at
    // worst, and the next run downloads it again).
    if !folder_exists {
        context.touched_folders.lock().expect("folder set").insert(folder);
    }
    progress.finish();
    Ok(())
}

/// Opens a kept partial download with its record (`None`: gone, or no whole record).
fn reopen(path: &Path) -> Option<(tempfile::NamedTempFile, super::resume::Record)> {
    let file = std::fs::File::options().read(true).write(true).open(path).ok()?;
    let record = super::resume::Record::read(&file)?;
    Some((tempfile::NamedTempFile::from_parts(file, tempfile::TempPath::try_from_path(path).ok()?), record))
}

/// Keeps a partial download's temp file (with the record its ranges wrote) for the next attempt
/// of this run, or for the next run, which adopts it by its record.
fn keep_partial(context: &Context, key: &str, temp: tempfile::NamedTempFile) {
    let has_record = super::resume::Record::read(temp.as_file()).is_some_and(|record| !record.ranges.is_empty());
    if !has_record {
        return;
    }
    match temp.keep() {
        Ok((_, path)) => {
            context.partial_downloads.lock().expect("downloads lock").insert(key.to_string(), path);
        }
        Err(err) => tracing::debug!(key, "cannot keep a partial download: {}", err.error),
    }
}

/// Objects up to this size are read into memory, then written (at most `concurrency` of
/// them at a time); larger ones are written as they arrive.
const IN_MEMORY_UP_TO: u64 = 256 * 1024;

fn create_folder(folder: &Path) -> Result<(), RequestFailure> {
    std::fs::create_dir_all(folder).map_err(|err| io_failure(&format!("cannot create {}", folder.display()), err))
}

/// A temp file in `folder`, named so that listings skip it and a later run can tell whose it
/// is (see `listing::temp_owner`).
fn new_temp_file(folder: &Path) -> Result<tempfile::NamedTempFile, RequestFailure> {
    tempfile::Builder::new()
        .prefix(&crate::listing::temp_prefix())
        .suffix(crate::listing::TEMP_SUFFIX)
        // tempfile's default is 0600; a download gets what any new file gets under the umask.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(folder)
        .map_err(|err| io_failure(&format!("cannot create a temp file in {}", folder.display()), err))
}

/// Stamps the downloaded file, flushes it to disk and renames it into place: until the
/// rename nothing sits under the real name. `no_clobber` (`overwrite: never`): the rename
/// never replaces a file that appeared under the name meanwhile.
fn finish(
    temp: tempfile::NamedTempFile,
    modified: Option<std::time::SystemTime>,
    target: &Path,
    no_clobber: bool,
) -> Result<(), RequestFailure> {
    let file = temp.as_file();
    if let Some(modified) = modified {
        file.set_modified(modified).map_err(|err| io_failure("cannot set the modification time", err))?;
    }
    file.sync_all().map_err(|err| io_failure("cannot flush the file to disk", err))?;
    let renamed = if no_clobber { temp.persist_noclobber(target) } else { temp.persist(target) };
    renamed.map_err(|err| {
        if no_clobber && err.error.kind() == std::io::ErrorKind::AlreadyExists {
            super::exists_now()
        } else {
            io_failure(&format!("cannot rename into {}", target.display()), err.error)
        }
    })?;
    Ok(())
}

/// What a GET or HEAD said about the object it read.
struct Fetched {
    /// Whole seconds: HTTP dates have no finer precision.
    last_modified: Option<std::time::SystemTime>,
    etag: Option<ETag>,
}

impl Fetched {
    fn new(last_modified: Option<&aws_smithy_types::DateTime>, etag: Option<&str>) -> Self {
        Fetched {
            last_modified: last_modified.and_then(|time| std::time::SystemTime::try_from(*time).ok()),
            etag: etag.map(ETag::new),
        }
    }
}

/// The mtime a download gets: the object's LastModified to the millisecond, as listings give
/// it. A GET's Last-Modified header has whole seconds only; a file stamped with that would be
/// older than its object by the milliseconds and fetched again on every run.
///
/// The listed time is taken when it falls in the second the GET answered (the same version:
/// the GET asked `If-Match` on the listed ETag where there was one). Too old a time is only
/// ever a second fetch; too new a one would hide a later change, so a listed time is never
/// taken for a later version. A plan that expected an earlier transfer to write the object (a
/// saved plan of an upload, then a download of the same prefix) did not list it: its time
/// comes from listing the key now.
async fn modification_time(
    context: &Context,
    action: &Action,
    key: &str,
    fetched: &Fetched,
) -> Option<std::time::SystemTime> {
    let from_millis =
        |ms: i64| u64::try_from(ms).ok().map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    let answered = fetched.last_modified.map(crate::listing::local::millis_since_epoch);
    let same_second = |ms: i64| answered.is_none_or(|answered| answered.div_euclid(1000) == ms.div_euclid(1000));
    let planned = action.source.as_ref().filter(|planned| planned.written_by.is_none());
    if let Some(ms) = planned.and_then(|planned| planned.mtime_ms).filter(|ms| same_second(*ms)) {
        return from_millis(ms);
    }
    let listed = context
        .client
        .list_objects_v2()
        .bucket(&context.job.bucket)
        .prefix(key)
        .max_keys(1)
        .send()
        .await
        .ok()
        .and_then(|page| page.contents().first().cloned())
        .filter(|object| object.key() == Some(key))
        .filter(|object| match (object.e_tag(), &fetched.etag) {
            (Some(listed), Some(fetched)) => fetched.is(listed),
            _ => true,
        })
        .and_then(|object| object.last_modified().map(crate::listing::remote::millis))
        .filter(|ms| same_second(*ms));
    listed.and_then(from_millis).or(fetched.last_modified)
}

/// One GET for the whole object, written to `sink`. With checksum mode on, the SDK checks the
/// body against the object's full checksum where it has one and fails the read on a mismatch.
/// A body longer than `limit` is refused before it is read (the object grew since the plan).
async fn whole(
    context: &Context,
    key: &str,
    etag: Option<ETag>,
    sink: &mut impl Write,
    limit: u64,
    progress: &ObjectProgress<'_>,
) -> Result<Fetched, RequestFailure> {
    let request = context
        .client
        .get_object()
        .bucket(&context.job.bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .set_if_match(etag.as_ref().map(ETag::quoted));
    let response = request.send().await.map_err(|err| request_failure(&err))?;
    super::ensure_version(etag.as_ref(), response.e_tag())?;
    let expected = response.content_length().map(|length| length as u64);
    if let Some(length) = expected.filter(|length| *length > limit) {
        return Err(RequestFailure::local(
            crate::s3::FailureCode::ObjectChanged,
            format!("the object is {length} bytes now, more than when planned"),
            false,
        ));
    }
    let fetched = Fetched::new(response.last_modified(), response.e_tag());
    let mut md5 = etag_md5(&response).map(|md5| (md5, md5::Md5::new()));
    let mut body = response.body;
    let mut written = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(super::ranged::body_failure)? {
        context.pace(chunk.len() as u64).await;
        if let Some((_, hasher)) = &mut md5 {
            hasher.update(&chunk);
        }
        sink.write_all(&chunk).map_err(|err| io_failure("cannot write", err))?;
        written += chunk.len() as u64;
        progress.add(chunk.len() as u64);
    }
    super::ranged::check_length(expected, written)?;
    if let Some((expected, hasher)) = md5
        && !crate::text::hex(&hasher.finalize()).eq_ignore_ascii_case(&expected)
    {
        return Err(RequestFailure::local(
            crate::s3::FailureCode::ChecksumMismatch,
            format!("the body read does not match the object's MD5 ({expected}, its ETag)"),
            true,
        ));
    }
    Ok(fetched)
}

/// The MD5 a whole body is checked against when the server gave no checksum of its own (an
/// object written without one, or a server that keeps none): the ETag, where it is one and
/// the object is stored unencrypted (an encrypted object's ETag is no MD5 with KMS on AWS, and
/// on MinIO with any encryption: a false mismatch would fail every such download).
fn etag_md5(response: &aws_sdk_s3::operation::get_object::GetObjectOutput) -> Option<String> {
    let checksums = [
        response.checksum_crc64_nvme(),
        response.checksum_crc32_c(),
        response.checksum_crc32(),
        response.checksum_sha256(),
        response.checksum_sha1(),
    ];
    if checksums.iter().any(Option::is_some)
        || super::integrity::encrypted(response.server_side_encryption())
        || response.sse_customer_algorithm().is_some()
    {
        return None;
    }
    Some(ETag::new(response.e_tag()?).md5_hex()?.to_string())
}

/// Parallel ranged GETs written in place. One HEAD first (`If-Match` on the listed ETag)
/// learns the object's ETag, time and checksum; every range then asks `If-Match` on that
/// ETag, so an object replaced mid-download fails instead of being stitched from two
/// versions. Each range is hashed as it arrives and the hashes are combined into the object's
/// CRC checksum (full-object or composite, see [`range_checksum`]), so a corrupted range fails
/// the download like a corrupted whole-object GET does.
///
/// Each range runs as its own tokio task and writes its chunks where they arrive: on the
/// runtime thread that read them from the socket. Polling them all from the one worker
/// thread that waits for this file moved every chunk across threads (perf: a third of the
/// CPU went to switching threads).
#[allow(clippy::too_many_arguments)]
async fn ranged(
    context: &Context,
    key: &str,
    relative_key: &str,
    size: u64,
    etag: Option<ETag>,
    file: &File,
    progress: &ObjectProgress<'_>,
    kept: Option<super::resume::Record>,
) -> Result<Fetched, RequestFailure> {
    let object = RangedObject::head(context, key, etag.as_ref(), size, context.job.part_size.0).await?;
    let fetched = Fetched::new(object.head.last_modified(), object.head.e_tag());
    let ranges = &object.ranges;
    // Every range is hashed: with the object's CRC where it can be rebuilt from them, else
    // with CRC32C, for the resume record alone.
    let algorithm = object.crc().unwrap_or(crc_fast::CrcAlgorithm::Crc32Iscsi);
    let mut record = super::resume::Record {
        version: super::resume::Record::VERSION,
        key: relative_key.to_string(),
        size,
        etag: object.etag.as_ref().map(|etag| etag.as_str().to_string()).unwrap_or_default(),
        chunk: context.job.part_size.0,
        part_size: object.source_part_size,
        algorithm: format!("{algorithm:?}"),
        ranges: Vec::new(),
    };
    let file = std::sync::Arc::new(file.try_clone().map_err(|err| io_failure("cannot share the temp file", err))?);
    // What a stopped run or attempt fetched, when it is this version cut the same way, and
    // each range still reads back with its CRC.
    if let Some(kept) = kept.filter(|kept| {
        (&kept.key, kept.size, &kept.etag, kept.chunk, kept.part_size, &kept.algorithm)
            == (&record.key, record.size, &record.etag, record.chunk, record.part_size, &record.algorithm)
    }) {
        let reader = file.clone();
        record.ranges = super::blocking(move || {
            Ok(kept.ranges.into_iter().filter(|range| range_reads_back(&reader, *range, algorithm)).collect())
        })
        .await?;
    }
    let missing = gaps(ranges, &mut record.ranges);
    let resumed: u64 = record.ranges.iter().map(|(_, length, _)| length).sum();
    if resumed > 0 {
        progress.add(resumed);
        context.resumed_bytes.fetch_add(resumed, std::sync::atomic::Ordering::Relaxed);
    }
    record.write(&file).map_err(|err| io_failure("cannot write", err))?;
    let source = std::sync::Arc::new(RangeSource {
        client: context.client.clone(),
        bucket: context.job.bucket.clone(),
        key: key.to_string(),
        etag: object.etag.clone(),
        crc: Some(algorithm),
        throttle: context.throttle.clone(),
        in_flight: std::sync::Mutex::new(std::collections::HashMap::new()),
    });
    // Spawned in order, at most `concurrency` at a time (a 5 TB object has 600,000 ranges:
    // spawning them all up front would hold a task each); the part semaphore, shared by the
    // transfer's files, is fair, so ranges start in order too. A failure drops the rest,
    // which aborts them.
    let mut tasks = futures_util::stream::iter(missing)
        .map(|range| {
            let (source, file, parts) = (source.clone(), file.clone(), context.level.parts.clone());
            AbortOnDrop(tokio::spawn(async move {
                let _pass = parts.enter().await;
                super::check_interrupt()?;
                get_range(&source, range, &file).await
            }))
        })
        .buffer_unordered(context.level.most() as usize);
    // The record is rewritten after each range (for objects of more than 1,000 ranges, after
    // every thousandth of them) and four times a second with what the ranges under way have
    // written, so a stop at any point loses at most a quarter second of work.
    let record_every = ranges.len().div_ceil(1000).max(1);
    let mut since_record = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let result = tokio::select! {
            next = tasks.next() => match next {
                Some(result) => result,
                None => break,
            },
            _ = tick.tick() => {
                let mut snapshot = record.clone();
                snapshot.ranges.extend(source.written_so_far());
                if let Err(err) = snapshot.write(&file) {
                    tracing::debug!(key, "cannot update the resume record: {err}");
                }
                continue;
            }
        };
        let answer = result.map_err(|err| {
            RequestFailure::local(crate::s3::FailureCode::Internal, format!("a range task failed: {err}"), true)
        })??;
        super::ranged::check_total(answer.total, size)?;
        progress.add(answer.length);
        record.ranges.push((answer.start, answer.length, answer.crc.unwrap_or(0)));
        since_record += 1;
        if since_record >= record_every {
            since_record = 0;
            if let Err(err) = record.write(&file) {
                tracing::debug!(key, "cannot update the resume record: {err}");
            }
        }
    }
    object.verify(&mut record.ranges)?;
    file.set_len(size).map_err(|err| io_failure("cannot size the file", err))?;
    Ok(fetched)
}

/// What of `ranges` (inclusive `(first, last)`) the pieces `have` (`(start, length, crc)`,
/// checked already) do not cover, as ranges to fetch; `have` keeps only pieces that lie
/// within one range and overlap no other piece.
fn gaps(ranges: &[(u64, u64)], have: &mut Vec<(u64, u64, u64)>) -> Vec<(u64, u64)> {
    have.sort_unstable_by_key(|&(start, _, _)| start);
    let mut kept: Vec<(u64, u64, u64)> = Vec::with_capacity(have.len());
    let mut missing = Vec::new();
    let mut pieces = have.iter().copied().peekable();
    for &(first, last) in ranges {
        let mut at = first;
        while let Some(&(start, length, crc)) = pieces.peek() {
            if start > last {
                break;
            }
            pieces.next();
            let end = start + length - 1;
            // A piece before `at`, or past the range's end, is not used.
            if length == 0 || start < at || end > last {
                continue;
            }
            if start > at {
                missing.push((at, start - 1));
            }
            kept.push((start, length, crc));
            at = end + 1;
        }
        if at <= last {
            missing.push((at, last));
        }
    }
    *have = kept;
    missing
}

/// Whether `(start, length, crc)` of `file` still holds the bytes it was recorded with.
fn range_reads_back(file: &File, (start, length, crc): (u64, u64, u64), algorithm: crc_fast::CrcAlgorithm) -> bool {
    let mut digest = crc_fast::Digest::new(algorithm);
    let read = crate::checksum::read_range(file, start, length, 256 * 1024, |piece| digest.update(piece));
    read.is_ok() && digest.finalize() == crc
}

/// The object a ranged download reads, owned so that range tasks can outlive the caller's
/// borrows.
struct RangeSource {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    /// The ETag every range must match (`If-Match`).
    etag: Option<ETag>,
    /// The CRC to hash each range with, when the object's checksum can be rebuilt from them.
    crc: Option<crc_fast::CrcAlgorithm>,
    throttle: Option<std::sync::Arc<super::throttle::Throttle>>,
    /// Ranges being written: bytes written from their start, and the CRC so far, for the
    /// resume record (a stop keeps what a range has, not only whole ranges).
    in_flight: std::sync::Mutex<std::collections::HashMap<u64, (u64, crc_fast::Digest)>>,
}

impl RangeSource {
    /// `(start, length, crc)` of what the ranges under way have written so far.
    fn written_so_far(&self) -> Vec<(u64, u64, u64)> {
        let in_flight = self.in_flight.lock().expect("ranges lock");
        in_flight
            .iter()
            .filter(|(_, (written, _))| *written > 0)
            .map(|(start, (written, digest))| (*start, *written, digest.finalize()))
            .collect()
    }
}

/// One range's answer: where it was, the object's size it reported, and the range's CRC.
struct RangeAnswer {
    start: u64,
    length: u64,
    /// The object's whole size, from `Content-Range`.
    total: Option<u64>,
    crc: Option<u64>,
}

async fn get_range(source: &RangeSource, (start, end): (u64, u64), file: &File) -> Result<RangeAnswer, RequestFailure> {
    let request = source
        .client
        .get_object()
        .bucket(&source.bucket)
        .key(&source.key)
        .range(format!("bytes={start}-{end}"))
        .set_if_match(source.etag.as_ref().map(ETag::quoted));
    let response = request.send().await.map_err(|err| request_failure(&err))?;
    super::ensure_version(source.etag.as_ref(), response.e_tag())?;
    // `Content-Range: bytes 0-99/12345`: the total after the slash.
    let total = response.content_range().and_then(|range| range.rsplit('/').next()?.parse().ok());
    let mut digest = source.crc.map(crc_fast::Digest::new);
    let mut body = response.body;
    let mut offset = start;
    while let Some(chunk) = body.try_next().await.map_err(super::ranged::body_failure)? {
        if let Some(throttle) = &source.throttle {
            throttle.take(chunk.len() as u64).await;
        }
        file.write_all_at(&chunk, offset).map_err(|err| io_failure("cannot write", err))?;
        if let Some(digest) = &mut digest {
            digest.update(&chunk);
        }
        offset += chunk.len() as u64;
        if let Some(digest) = digest {
            source.in_flight.lock().expect("ranges lock").insert(start, (offset - start, digest));
        }
    }
    source.in_flight.lock().expect("ranges lock").remove(&start);
    super::ranged::check_length(Some(end - start + 1), offset - start)?;
    start_writeback(file, start, offset - start);
    Ok(RangeAnswer { start, length: offset - start, total, crc: digest.map(|d| d.finalize()) })
}

/// Starts writing a finished range to disk without waiting for it, so the fsync before the
/// rename finds little left to do instead of flushing the whole file at once.
fn start_writeback(file: &File, offset: u64, length: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: a valid open descriptor; the call only schedules writeback of that range.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                length as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, length);
}

/// Makes renames in `folder` durable. Best effort: not every filesystem lets a folder be
/// fsynced.
pub(super) fn sync_folder(folder: &Path) {
    if let Ok(handle) = File::open(folder) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gaps_are_what_the_kept_pieces_leave() {
        let ranges = [(0, 9), (10, 19), (20, 29)];
        // Range 0 whole, a prefix of range 1, nothing of range 2, and a piece that straddles.
        let mut have = vec![(0, 10, 1), (10, 4, 2), (18, 5, 9)];
        let missing = super::gaps(&ranges, &mut have);
        assert_eq!(missing, [(14, 19), (20, 29)]);
        assert_eq!(have, [(0, 10, 1), (10, 4, 2)]);
        // Nothing kept: everything is missing.
        let mut none = Vec::new();
        assert_eq!(super::gaps(&ranges, &mut none), ranges);
        // A later piece of a range after a prefix from an earlier stop.
        let mut two = vec![(10, 4, 2), (14, 3, 3)];
        assert_eq!(super::gaps(&ranges, &mut two), [(0, 9), (17, 19), (20, 29)]);
    }
}
