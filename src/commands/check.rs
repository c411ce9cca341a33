//! `haul check`: can these credentials do what the manifest asks, before a run finds out
//! 500 objects in? Per transfer: the bucket and its region, listing the prefix, reading one
//! object per extension (downloads), writing per extension (uploads), and object owners that
//! differ from the bucket owner. Nothing is transferred and no object is created.

use std::collections::BTreeMap;

use serde::Serialize;

use super::load_with_warnings;
use crate::cli::{CheckArgs, OutputFormat};
use crate::engine::{Clients, runtime, select_jobs};
use crate::error::{Exit, HaulError};
use crate::listing::Item;
use crate::listing::local::LocalWalk;
use crate::manifest::{Direction, Job};
use crate::render::Style;
use crate::report::extension;
use crate::s3::{RequestFailure, request_failure};

pub(super) fn run(args: &CheckArgs, style: Style) -> Result<Exit, HaulError> {
    let (path, only, output) = (args.run.manifest.as_path(), &args.run.only.only, args.run.output.output);
    let loaded = load_with_warnings(path, &args.run.at.moment(), style)?;
    let jobs = select_jobs(&loaded.jobs, only)?;
    let runtime = runtime()?;
    let mut clients = Clients::default();
    let mut rows = Vec::new();
    for job in jobs {
        let client = clients.get(&runtime, job)?;
        let to_client = clients.to(&runtime, job)?;
        let region = client.config().region().map(|r| r.to_string());
        rows.extend(runtime.block_on(check_transfer(job, &client, to_client.as_ref(), region.as_deref())));
    }
    match output {
        OutputFormat::Table => super::print_all(table(&rows).as_bytes())?,
        OutputFormat::Json => {
            super::print_all(format!("{}\n", serde_json::to_string_pretty(&rows).expect("rows serialize")).as_bytes())?
        }
    }
    let failed = rows.iter().any(|row| row.status == Status::Fail);
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth knowing; does not fail the check.
    Warn,
    Fail,
    /// Could not be run (an earlier check failed, or nothing to check).
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub transfer: String,
    pub check: String,
    pub status: Status,
    pub detail: String,
}

/// Objects looked at for extensions and owners: the first listing page.
const SAMPLE: i32 = 1000;

/// Runs every check of one transfer. `to_client` reaches a copy's destination bucket.
pub async fn check_transfer(
    job: &Job,
    client: &aws_sdk_s3::Client,
    to_client: Option<&aws_sdk_s3::Client>,
    region: Option<&str>,
) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    let mut row = |check: &str, status: Status, detail: String| {
        rows.push(CheckRow { transfer: job.name.clone(), check: check.to_string(), status, detail });
    };

    // 0. The local side: a folder to read from, or one that can be made and written.
    if job.direction != Direction::Copy {
        let (status, detail) = local_check(job);
        row("local", status, detail);
    }

    // Which certificates HTTPS is checked against (a private CA's bundle, or the system's).
    if !job.target.plain_http() {
        let trust = crate::s3::trust(&job.target).await;
        row("tls", Status::Ok, format!("certificates checked against {}", trust.describe(&job.target)));
    }

    // 1. The bucket exists, and is where the manifest says.
    match client.head_bucket().bucket(&job.bucket).send().await {
        Ok(head) => {
            let actual = head.bucket_region().map(str::to_string);
            match (actual.as_deref(), region) {
                (Some(actual), Some(expected)) if actual != expected && job.target.endpoint.is_none() => row(
                    "bucket",
                    Status::Fail,
                    format!("`{}` is in {actual}, not {expected}: set `region: {actual}`", job.bucket),
                ),
                (Some(actual), _) => row("bucket", Status::Ok, format!("`{}` exists, region {actual}", job.bucket)),
                (None, _) => row("bucket", Status::Ok, format!("`{}` exists", job.bucket)),
            }
        }
        Err(err) => {
            let failure = request_failure(&err);
            match failure.code.as_deref() {
                Some("NotFound" | "NoSuchBucket") => {
                    let advice = crate::advice::shared(Some("NoSuchBucket"), None, crate::advice::SetIn::Manifest);
                    row("bucket", Status::Fail, format!("no bucket `{}`: {}", job.bucket, advice.unwrap_or_default()));
                    return rows;
                }
                Some("PermanentRedirect") | Some("AuthorizationHeaderMalformed") => {
                    let region = failure.bucket_region.as_deref();
                    let advice = crate::advice::shared(failure.code.as_deref(), region, crate::advice::SetIn::Manifest);
                    row("bucket", Status::Fail, advice.unwrap_or_default());
                    return rows;
                }
                Some("AccessDenied") => row(
                    "bucket",
                    Status::Warn,
                    "HeadBucket denied (s3:ListBucket): existence and region not confirmed".into(),
                ),
                _ => {
                    row("bucket", Status::Fail, with_help(&failure));
                    return rows;
                }
            }
        }
    }

    // 2. The prefix can be listed; its first page samples extensions and owners.
    let listing = client
        .list_objects_v2()
        .bucket(&job.bucket)
        .prefix(&job.prefix)
        .max_keys(SAMPLE)
        .fetch_owner(true)
        .send()
        .await;
    let shown = if job.prefix.is_empty() { "the bucket".to_string() } else { format!("`{}`", job.prefix) };
    let page = match listing {
        Ok(page) => {
            row("list", Status::Ok, format!("can list {shown} ({} objects in the first page)", page.contents().len()));
            page
        }
        Err(err) => {
            let failure = request_failure(&err);
            // HeadBucket has no body, so a wrong secret looked like a denial there; the
            // listing names the cause. Then it is the credentials, not the bucket.
            if crate::s3::is_credentials_problem(failure.code.as_deref()) {
                rows.retain(|r| !(r.check == "bucket" && r.status == Status::Warn));
                rows.push(CheckRow {
                    transfer: job.name.clone(),
                    check: "credentials".into(),
                    status: Status::Fail,
                    detail: with_help(&failure),
                });
                return rows;
            }
            row("list", Status::Fail, format!("cannot list {shown}: {}", failure.message));
            return rows;
        }
    };
    let objects: Vec<&aws_sdk_s3::types::Object> = page
        .contents()
        .iter()
        .filter(|o| {
            o.key().is_some_and(|k| k.len() > job.prefix.len() && job.filter.is_included(&k[job.prefix.len()..]))
        })
        .collect();

    // 3. Reading (downloads, copies) or writing (uploads, copies), once per extension.
    match job.direction {
        Direction::Download | Direction::Copy => {
            let mut by_extension: BTreeMap<String, &str> = BTreeMap::new();
            for object in &objects {
                let key = object.key().unwrap_or_default();
                by_extension.entry(extension(key)).or_insert(key);
            }
            if by_extension.is_empty() {
                row("read", Status::Skip, "no objects under the prefix pass the filters".into());
            }
            for (ext, key) in &by_extension {
                let name = extension_name(ext);
                match client.head_object().bucket(&job.bucket).key(*key).send().await {
                    Ok(_) => row(&format!("read {name}"), Status::Ok, format!("can read `{key}`")),
                    Err(err) => {
                        let failure = request_failure(&err);
                        row(
                            &format!("read {name}"),
                            Status::Fail,
                            format!("cannot read `{key}`: {}", describe(&failure)),
                        );
                    }
                }
            }
            // A copy writes what it reads into `to`: each extension found, else the filter's.
            if let (Some(to), Some(to_client)) = (&job.to, to_client) {
                let mut extensions: Vec<String> = by_extension.into_keys().collect();
                if extensions.is_empty() {
                    extensions = job.filter_summary.extensions.clone();
                }
                if extensions.is_empty() {
                    extensions.push("csv".into());
                }
                for ext in extensions {
                    let name = extension_name(&ext);
                    let (status, detail) =
                        write_probe(to_client, &to.bucket, &to.prefix, &ext, &job.upload, to.target.checksum).await;
                    row(&format!("write {name} to `{}`", to.bucket), status, detail);
                }
            }
        }
        Direction::Upload => {
            for ext in local_extensions(job) {
                let name = extension_name(&ext);
                let (status, detail) =
                    write_probe(client, &job.bucket, &job.prefix, &ext, &job.upload, job.target.checksum).await;
                row(&format!("write {name}"), status, detail);
            }
        }
    }

    // 4. Object owners that differ from the bucket owner (the ACL checks of the manual routine).
    match client.get_bucket_acl().bucket(&job.bucket).send().await {
        Ok(acl) => match acl.owner().and_then(|o| o.id()).filter(|id| !id.is_empty()) {
            None => row(
                "owners",
                Status::Skip,
                "the server did not name the bucket's owner (GetBucketAcl gave no owner ID): object owners not \
                 compared"
                    .into(),
            ),
            Some(bucket_owner) => {
                let foreign: Vec<(&str, &str)> = objects
                    .iter()
                    .filter_map(|o| Some((o.key()?, o.owner()?.id()?)))
                    .filter(|(_, owner)| *owner != bucket_owner)
                    .collect();
                if foreign.is_empty() {
                    row("owners", Status::Ok, format!("sampled objects are owned by the bucket owner {bucket_owner}"));
                } else {
                    let examples: Vec<String> =
                        foreign.iter().take(3).map(|(key, owner)| format!("{key} ({owner})")).collect();
                    row(
                        "owners",
                        Status::Warn,
                        format!(
                            "{} sampled objects are owned by another account than the bucket owner {bucket_owner}, e.g. {}",
                            foreign.len(),
                            examples.join(", ")
                        ),
                    );
                }
            }
        },
        Err(err) => {
            let failure = request_failure(&err);
            row(
                "owners",
                Status::Skip,
                format!("cannot read the bucket's owner (GetBucketAcl: {})", describe(&failure)),
            );
        }
    }
    rows
}

/// `*.csv`, or `(no extension)`.
fn extension_name(ext: &str) -> String {
    if ext.is_empty() { "(no extension)".into() } else { format!("*.{ext}") }
}

/// The failure's message and what to do, as every command says it.
fn with_help(failure: &RequestFailure) -> String {
    format!("{}: {}", failure.message, crate::error::request_help(failure, crate::advice::SetIn::Manifest))
}

fn describe(failure: &RequestFailure) -> String {
    failure.code.clone().unwrap_or_else(|| failure.message.clone())
}

/// An upload's folder exists and can be read; a download's can be created (its nearest
/// existing folder is writable) or is writable, with the free space there.
fn local_check(job: &Job) -> (Status, String) {
    let shown = job.local.display();
    match job.direction {
        Direction::Copy => (Status::Skip, "a copy has no local folder".into()),
        Direction::Upload => match std::fs::read_dir(&job.local) {
            Ok(_) => (Status::Ok, format!("can read `{shown}`")),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                (Status::Fail, format!("`{shown}` does not exist: check `local`, or create the folder"))
            }
            Err(err) => (Status::Fail, format!("cannot read `{shown}`: {err}: check its owner and permissions")),
        },
        Direction::Download => {
            let existing = job.local.ancestors().find(|folder| folder.exists()).unwrap_or(&job.local);
            let what = if existing == job.local.as_path() {
                format!("`{shown}`")
            } else {
                format!("`{}` (where `{shown}` would be created)", existing.display())
            };
            if !existing.is_dir() {
                return (Status::Fail, format!("{what} is not a folder"));
            }
            if !crate::listing::local::may_access(existing, libc::W_OK | libc::X_OK) {
                return (Status::Fail, format!("cannot write in {what}: check its owner and permissions"));
            }
            match free_bytes(existing) {
                Some(free) => (Status::Ok, format!("can write in {what}, {} free", crate::text::human_bytes(free))),
                None => (Status::Ok, format!("can write in {what}")),
            }
        }
    }
}

/// Bytes free for this user on the file system holding `folder`.
fn free_bytes(folder: &std::path::Path) -> Option<u64> {
    let path = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(folder.as_os_str())).ok()?;
    // SAFETY: statvfs fills the struct it is given; `path` is NUL-terminated and outlives it.
    unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stats) == 0).then(|| stats.f_bavail as u64 * stats.f_frsize as u64)
    }
}

/// The extensions of the local files an upload would send (a sample of the first 10,000).
fn local_extensions(job: &Job) -> Vec<String> {
    let mut found: Vec<String> = match LocalWalk::new(&job.local, job.follow_symlinks) {
        Ok(walk) => walk
            .take(10_000)
            .filter_map(|item| match item {
                Item::Entry(entry) if job.filter.is_included(&entry.key) => Some(extension(&entry.key)),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found.dedup();
    if found.is_empty() {
        found = job.filter_summary.extensions.clone();
    }
    if found.is_empty() {
        found.push("csv".into());
    }
    found
}

/// Tests whether writing `*.ext` under the prefix is allowed without storing anything: it
/// starts a multipart upload (which needs the same s3:PutObject permission as a PUT) and
/// aborts it at once. No object is ever created; an upload that cannot be aborted holds no
/// data, and is reported so it can be cleaned up. The upload is started as the transfer's
/// would be, with its checksum algorithm: a server that refuses checksum headers says so
/// here, and the detail names `checksum: off`.
async fn write_probe(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    ext: &str,
    options: &crate::manifest::UploadOptions,
    checksum: crate::manifest::UploadChecksum,
) -> (Status, String) {
    let name = if ext.is_empty() { ".haul-write-check".to_string() } else { format!(".haul-write-check.{ext}") };
    let key = format!("{prefix}{name}");
    // With the ACL and tags the transfer writes with: each needs its own permission
    // (s3:PutObjectAcl, s3:PutObjectTagging), refused at the start like a write would be.
    let with = match (options.acl, &options.tags) {
        (Some(acl), Some(_)) => format!(", with `acl: {}` and tags", acl.as_str()),
        (Some(acl), None) => format!(", with `acl: {}`", acl.as_str()),
        (None, Some(_)) => ", with tags".to_string(),
        (None, None) => String::new(),
    };
    let how = format!("a multipart upload was started{with} and aborted; nothing was stored");
    let (algorithm, kind) = crate::s3::multipart_checksum(checksum);
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(&key)
        .set_acl(options.acl.map(|acl| acl.as_str().into()))
        .set_tagging(options.tagging())
        .set_checksum_algorithm(algorithm)
        .set_checksum_type(kind)
        .send()
        .await;
    let upload_id = match created {
        Ok(created) => created.upload_id().unwrap_or_default().to_string(),
        Err(err) => {
            let failure = request_failure(&err);
            if failure.is(crate::s3::FailureCode::ChecksumHeaderRefused) {
                return (Status::Fail, format!("cannot write `{key}`: {}", with_help(&failure)));
            }
            return (Status::Fail, format!("cannot write `{key}`{with}: {}", describe(&failure)));
        }
    };
    match client.abort_multipart_upload().bucket(bucket).key(&key).upload_id(&upload_id).send().await {
        Ok(_) => (Status::Ok, format!("can write `{key}` ({how})")),
        Err(err) => (
            Status::Warn,
            format!(
                "can write `{key}`, but aborting the test upload was refused ({}): it holds no data; \
                 remove it with `aws s3api abort-multipart-upload --bucket {} --key {key} --upload-id {upload_id}` \
                 or a lifecycle rule, and allow s3:AbortMultipartUpload so failed uploads can be cleaned up",
                describe(&request_failure(&err)),
                bucket
            ),
        ),
    }
}

/// The checks as an aligned table.
pub fn table(rows: &[CheckRow]) -> String {
    use unicode_width::UnicodeWidthStr;
    let width = |f: &dyn Fn(&CheckRow) -> &str| rows.iter().map(|r| f(r).width()).max().unwrap_or(0);
    let transfer_width = width(&|r| &r.transfer).max("TRANSFER".len());
    let check_width = width(&|r| &r.check).max("CHECK".len());
    let mut out = format!("{:<transfer_width$}  {:<check_width$}  STATUS  DETAIL\n", "TRANSFER", "CHECK");
    for row in rows {
        out.push_str(&format!(
            "{}  {}  {:<6}  {}\n",
            crate::text::pad(&row.transfer, transfer_width),
            crate::text::pad(&row.check, check_width),
            row.status.label(),
            crate::text::printable(&row.detail)
        ));
    }
    out
}
