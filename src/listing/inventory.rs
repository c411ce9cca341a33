//! An S3 Inventory report read as a bucket's listing (`listing: {inventory: s3://...}`), so a
//! bucket of a hundred million keys is not listed page by page every night.
//!
//! A report is a `manifest.json` (which bucket, when, which format and columns, which data
//! files) and its data files: CSV gzipped (keys URL-encoded, `+` for a space) or Parquet
//! (keys as they are). ORC is not read: no maintained Rust crate reads it. The rows come in no
//! order, and a report covers the whole bucket: the rows under the listed prefix are handed
//! out as the pages of a [`PageSource`], which [`super::sorted::SortedListing`] sorts on disk
//! in bounded memory, as it does any listing out of key order. Each data file is downloaded
//! to an unnamed temp file (checked against the manifest's MD5), read, and dropped.
//!
//! A report is a picture taken at its creation time: objects changed since are not in it.
//! [`open`] refuses one older than the transfer's `max_age`, and the plan says how old the
//! one it used is; a saved plan's check looks each object up in the bucket itself.

use std::io::{BufReader, Seek, Write};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use serde::Deserialize;
use tokio::runtime::Handle;

use super::remote::{ListedObject, Page, PageFailure, PageRequest, PageSource, PageWait};
use crate::etag::ETag;
use crate::s3::{FailureCode, RequestFailure};

/// Why a report cannot stand for the bucket's listing.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("reading the inventory report {url} failed: {}", failure.message)]
    Request { url: String, failure: Box<RequestFailure> },
    #[error("the inventory report {url} cannot be read: {why}")]
    Unreadable { url: String, why: String },
    #[error("no inventory report under {url} (no folder named by its date, such as `2026-12-01T01-00Z/`)")]
    NoReport { url: String },
    #[error("the inventory report {url} lists bucket `{found}`, not `{bucket}`")]
    OtherBucket { url: String, found: String, bucket: String },
    #[error("the inventory report {url} is in {format} format, which haul does not read")]
    Format { url: String, format: String },
    #[error(
        "the inventory report {url} was made {created} ({age} ago), longer ago than `max_age: {max_age}`: objects changed since would not be seen"
    )]
    Stale { url: String, created: String, age: String, max_age: String },
}

/// The report a listing came from, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportUse {
    /// `source` or `destination`.
    pub side: String,
    /// The report's `manifest.json`.
    pub report: String,
    /// When S3 made it (RFC 3339).
    pub created: String,
    /// How long before the plan, in seconds.
    pub age_seconds: u64,
}

/// What a report's `manifest.json` says, of what haul reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportManifest {
    source_bucket: String,
    /// Milliseconds since the epoch, as text.
    creation_timestamp: String,
    file_format: String,
    #[serde(default)]
    file_schema: String,
    files: Vec<DataFile>,
}

#[derive(Debug, Clone, Deserialize)]
struct DataFile {
    key: String,
    #[serde(rename = "MD5checksum")]
    md5: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

/// Where each field is in a CSV row (the manifest's `fileSchema` names the columns).
#[derive(Debug, Clone, Copy)]
struct CsvColumns {
    key: usize,
    size: usize,
    last_modified: usize,
    etag: Option<usize>,
    storage_class: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

/// An opened report: what it is and its data files.
pub struct Report {
    /// Its `manifest.json`, as a URL.
    pub url: String,
    pub created_ms: i64,
    bucket: String,
    format: Format,
    columns: Option<CsvColumns>,
    files: Vec<DataFile>,
}

/// Opens the report `inventory` names for `bucket`: the newest under a folder, or the one
/// named. Checks that it is `bucket`'s, in a format haul reads, and no older than its
/// `max_age` at `now_ms`.
pub fn open(
    client: &Client,
    runtime: &Handle,
    inventory: &crate::manifest::Inventory,
    bucket: &str,
    now_ms: i64,
) -> Result<Report, InventoryError> {
    let read = |key: &str| {
        runtime.block_on(async {
            let answer = client.get_object().bucket(&inventory.bucket).key(key).send().await;
            let answer = answer.map_err(|err| crate::s3::request_failure(&err))?;
            let body = answer.body.collect().await.map_err(|err| {
                RequestFailure::local(FailureCode::ShortBody, format!("the manifest's body broke off: {err}"), true)
            })?;
            Ok::<_, RequestFailure>(body.into_bytes())
        })
    };
    let (key, text) = match inventory.key.ends_with('/') {
        false => (inventory.key.clone(), read(&inventory.key)),
        // The newest report that has its manifest.json (S3 writes it last).
        true => {
            let mut found = None;
            for folder in report_folders(client, runtime, inventory)? {
                let key = format!("{folder}manifest.json");
                match read(&key) {
                    Err(failure) if failure.status == Some(404) => continue,
                    text => {
                        found = Some((key, text));
                        break;
                    }
                }
            }
            found.ok_or_else(|| InventoryError::NoReport { url: inventory.url() })?
        }
    };
    let url = format!("s3://{}/{key}", inventory.bucket);
    let request = |failure| InventoryError::Request { url: url.clone(), failure: Box::new(failure) };
    let unreadable = |why: String| InventoryError::Unreadable { url: url.clone(), why };
    let text = text.map_err(request)?;
    let manifest: ReportManifest =
        serde_json::from_slice(&text).map_err(|err| unreadable(format!("its manifest.json: {err}")))?;
    if manifest.source_bucket != bucket {
        return Err(InventoryError::OtherBucket { url, found: manifest.source_bucket, bucket: bucket.to_string() });
    }
    let created_ms: i64 = manifest
        .creation_timestamp
        .trim()
        .parse()
        .map_err(|_| unreadable(format!("`creationTimestamp` `{}` is not a time", manifest.creation_timestamp)))?;
    let age_ms = now_ms.saturating_sub(created_ms).max(0) as u64;
    if std::time::Duration::from_millis(age_ms) > inventory.max_age {
        return Err(InventoryError::Stale {
            url,
            created: rfc3339(created_ms),
            age: humantime::format_duration(std::time::Duration::from_secs(age_ms / 1000)).to_string(),
            max_age: humantime::format_duration(inventory.max_age).to_string(),
        });
    }
    let (format, columns) = match manifest.file_format.to_ascii_uppercase().as_str() {
        "CSV" => (Format::Csv, Some(csv_columns(&manifest.file_schema).map_err(unreadable)?)),
        "PARQUET" => (Format::Parquet, None),
        _ => return Err(InventoryError::Format { url, format: manifest.file_format }),
    };
    Ok(Report { url, created_ms, bucket: inventory.bucket.clone(), format, columns, files: manifest.files })
}

impl Report {
    /// What the plan says of it, for the listing of `side`.
    pub fn used(&self, side: &str, now_ms: i64) -> ReportUse {
        ReportUse {
            side: side.to_string(),
            report: self.url.clone(),
            created: rfc3339(self.created_ms),
            age_seconds: (now_ms.saturating_sub(self.created_ms).max(0) / 1000) as u64,
        }
    }

    /// Its rows as listing pages (of the prefix each page request names), in no order.
    pub fn pages(self, client: &Client, runtime: &Handle, listed_bucket: &str) -> Arc<dyn PageSource> {
        Arc::new(ReportPages {
            report: Arc::new(self),
            client: client.clone(),
            runtime: runtime.clone(),
            listed_bucket: listed_bucket.to_string(),
            rows: Arc::new(Mutex::new(Rows { next_file: 0, reader: None })),
        })
    }
}

/// The reports under a configuration's folder, newest first: its subfolders named by their
/// date (`2026-12-01T01-00Z/`), which sort as their times do.
fn report_folders(
    client: &Client,
    runtime: &Handle,
    inventory: &crate::manifest::Inventory,
) -> Result<Vec<String>, InventoryError> {
    let url = inventory.url();
    let mut folders = Vec::new();
    let mut token = None;
    loop {
        let request = client
            .list_objects_v2()
            .bucket(&inventory.bucket)
            .prefix(&inventory.key)
            .delimiter("/")
            .set_continuation_token(token.take());
        let page = runtime.block_on(request.send()).map_err(|err| InventoryError::Request {
            url: url.clone(),
            failure: Box::new(crate::s3::request_failure(&err)),
        })?;
        for folder in page.common_prefixes().iter().filter_map(|prefix| prefix.prefix()) {
            let name = folder.strip_prefix(inventory.key.as_str()).unwrap_or(folder).trim_end_matches('/');
            if is_report_date(name) {
                folders.push(folder.to_string());
            }
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    folders.sort_unstable_by(|a, b| b.cmp(a));
    Ok(folders)
}

/// `2026-12-01T01-00Z`: the name S3 gives a report's folder.
fn is_report_date(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 17
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            4 | 7 | 13 => *byte == b'-',
            10 => *byte == b'T',
            16 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        })
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |time| time.to_string())
}

/// The columns of a CSV report, from its `fileSchema` (`Bucket, Key, Size, ...`).
fn csv_columns(schema: &str) -> Result<CsvColumns, String> {
    let names: Vec<String> = schema.split(',').map(|name| name.trim().to_ascii_lowercase()).collect();
    let find = |name: &str| names.iter().position(|found| found == name);
    let required = |name: &str| find(name).ok_or_else(|| format!("its `fileSchema` has no `{name}` field ({schema})"));
    Ok(CsvColumns {
        key: required("key")?,
        size: required("size")?,
        last_modified: required("lastmodifieddate")?,
        etag: find("etag"),
        storage_class: find("storageclass"),
        is_latest: find("islatest"),
        is_delete_marker: find("isdeletemarker"),
    })
}

/// A CSV report's key: URL-encoded, as an HTML form encodes (`+` for a space).
fn decode_key(encoded: &str) -> Result<String, String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("the key `{encoded}` is not URL-encoded UTF-8"))
}

/// One row, as the listing wants it; `None` for a row that is no current object (an older
/// version, a delete marker).
struct Row {
    key: String,
    object: Option<ListedObject>,
}

/// A report's rows as pages. Requests come one after another (a listing asks for the next
/// page once it has the one before), and the rows are read where the last page stopped.
struct ReportPages {
    report: Arc<Report>,
    client: Client,
    runtime: Handle,
    listed_bucket: String,
    rows: Arc<Mutex<Rows>>,
}

/// Where the reading is: the next data file, and the rows of the one being read.
struct Rows {
    next_file: usize,
    reader: Option<RowReader>,
}

enum RowReader {
    Csv { records: Box<csv::Reader<flate2::read::MultiGzDecoder<BufReader<std::fs::File>>>>, columns: CsvColumns },
    Parquet(parquet::record::reader::RowIter<'static>),
}

/// Rows per page, as ListObjectsV2 gives them.
const PAGE_ROWS: usize = 1000;

impl PageSource for ReportPages {
    fn bucket(&self) -> &str {
        &self.listed_bucket
    }

    fn start(&self, request: PageRequest) -> PageWait {
        let (report, client, runtime, rows) =
            (self.report.clone(), self.client.clone(), self.runtime.clone(), self.rows.clone());
        PageWait::computed(move || {
            let mut rows = rows.lock().expect("inventory rows lock");
            let mut page = Page::default();
            while page.objects.len() < PAGE_ROWS {
                let row = match rows.reader.as_mut().and_then(|reader| reader.next()) {
                    Some(row) => row.map_err(|why| failed(&report, why))?,
                    None => {
                        rows.reader = None;
                        let Some(file) = report.files.get(rows.next_file) else { break };
                        rows.next_file += 1;
                        rows.reader = Some(open_file(&report, file, &client, &runtime)?);
                        continue;
                    }
                };
                if let Some(object) = row.object.filter(|_| row.key.starts_with(&request.prefix)) {
                    page.objects.push(object);
                }
            }
            let more = rows.reader.is_some() || rows.next_file < report.files.len();
            page.next = more.then(|| "inventory".to_string());
            Ok(page)
        })
    }
}

fn failed(report: &Report, why: String) -> PageFailure {
    PageFailure::Failed(RequestFailure::local(
        FailureCode::LocalIo,
        format!("the inventory report {} cannot be read: {why}", report.url),
        false,
    ))
}

/// Downloads one data file to an unnamed temp file, checks its MD5, and opens it for rows.
fn open_file(report: &Report, file: &DataFile, client: &Client, runtime: &Handle) -> Result<RowReader, PageFailure> {
    let what = format!("s3://{}/{}", report.bucket, file.key);
    let mut temp = tempfile::tempfile_in(super::sorted::spill_folder())
        .map_err(|err| failed(report, format!("no temp file for {what}: {err}")))?;
    let md5 = runtime.block_on(async {
        use md5::Digest as _;
        let answer = client.get_object().bucket(&report.bucket).key(&file.key).send().await;
        let mut body = answer.map_err(|err| PageFailure::Failed(crate::s3::request_failure(&err)))?.body;
        let mut digest = md5::Md5::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| failed(report, format!("{what} broke off: {err}")))?;
            digest.update(&chunk);
            temp.write_all(&chunk).map_err(|err| failed(report, format!("writing {what} to a temp file: {err}")))?;
        }
        Ok::<_, PageFailure>(digest.finalize().iter().map(|byte| format!("{byte:02x}")).collect::<String>())
    })?;
    if let Some(expected) = &file.md5
        && !expected.eq_ignore_ascii_case(&md5)
    {
        return Err(failed(report, format!("{what} has MD5 {md5}, its manifest says {expected}")));
    }
    temp.rewind().map_err(|err| failed(report, format!("{what}: {err}")))?;
    match report.format {
        Format::Csv => {
            let columns = report.columns.expect("a CSV report has its columns");
            let gunzip = flate2::read::MultiGzDecoder::new(BufReader::new(temp));
            let records = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(gunzip);
            Ok(RowReader::Csv { records: Box::new(records), columns })
        }
        Format::Parquet => {
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(temp)
                .map_err(|err| failed(report, format!("{what} is not a Parquet file: {err}")))?;
            Ok(RowReader::Parquet(parquet::record::reader::RowIter::from_file_into(Box::new(reader))))
        }
    }
}

impl RowReader {
    fn next(&mut self) -> Option<Result<Row, String>> {
        match self {
            RowReader::Csv { records, columns } => {
                let mut record = csv::StringRecord::new();
                match records.read_record(&mut record) {
                    Ok(true) => Some(csv_row(&record, columns)),
                    Ok(false) => None,
                    Err(err) => Some(Err(format!("a CSV row: {err}"))),
                }
            }
            RowReader::Parquet(rows) => {
                Some(rows.next()?.map_err(|err| format!("a Parquet row: {err}")).and_then(parquet_row))
            }
        }
    }
}

fn csv_row(record: &csv::StringRecord, columns: &CsvColumns) -> Result<Row, String> {
    let field = |at: usize| record.get(at).unwrap_or("");
    let optional = |at: Option<usize>| at.map(field).filter(|text| !text.is_empty());
    let key = decode_key(field(columns.key))?;
    let current = optional(columns.is_latest) != Some("false") && optional(columns.is_delete_marker) != Some("true");
    let size = field(columns.size);
    if !current || size.is_empty() {
        return Ok(Row { key, object: None });
    }
    let size = size.parse().map_err(|_| format!("`{key}`: size `{size}` is not a number"))?;
    let modified = field(columns.last_modified);
    let mtime_ms = modified
        .parse::<jiff::Timestamp>()
        .map_err(|_| format!("`{key}`: `{modified}` is not a time"))?
        .as_millisecond();
    let object = ListedObject {
        key: key.clone(),
        size,
        mtime_ms,
        etag: optional(columns.etag).map(ETag::new),
        archived: optional(columns.storage_class).is_some_and(super::remote::is_archived),
    };
    Ok(Row { key, object: Some(object) })
}

fn parquet_row(row: parquet::record::Row) -> Result<Row, String> {
    use parquet::record::Field;
    let (mut key, mut size, mut mtime_ms, mut etag, mut archived) = (None, None, None, None, false);
    let mut current = true;
    for (name, field) in row.get_column_iter() {
        match (name.as_str(), field) {
            ("key", Field::Str(text)) => key = Some(text.clone()),
            ("size", Field::Long(bytes)) => size = u64::try_from(*bytes).ok(),
            ("size", Field::Int(bytes)) => size = u64::try_from(*bytes).ok(),
            ("last_modified_date", Field::TimestampMillis(ms)) => mtime_ms = Some(*ms),
            ("last_modified_date", Field::TimestampMicros(us)) => mtime_ms = Some(us.div_euclid(1000)),
            ("last_modified_date", Field::Long(ms)) => mtime_ms = Some(*ms),
            ("e_tag", Field::Str(text)) if !text.is_empty() => etag = Some(ETag::new(text)),
            ("storage_class", Field::Str(class)) => archived = super::remote::is_archived(class),
            ("is_latest", Field::Bool(latest)) => current &= *latest,
            ("is_delete_marker", Field::Bool(marker)) => current &= !*marker,
            _ => {}
        }
    }
    let key = key.ok_or("a row without `key`")?;
    // A delete marker has no size.
    let object = match (current, size, mtime_ms) {
        (true, Some(size), Some(mtime_ms)) => Some(ListedObject { key: key.clone(), size, mtime_ms, etag, archived }),
        _ => None,
    };
    Ok(Row { key, object })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_keys_decode_as_a_form_encodes() {
        assert_eq!(decode_key("a+b%2Bc/%ED%95%9C.csv").unwrap(), "a b+c/\u{D55C}.csv");
        assert!(decode_key("%FF").is_err());
    }

    #[test]
    fn report_folders_are_named_by_their_date() {
        assert!(is_report_date("2026-12-01T01-00Z"));
        assert!(!is_report_date("hive"));
        assert!(!is_report_date("2026-12-01T01:00Z"));
    }

    #[test]
    fn csv_rows_that_are_no_current_object_are_left_out() {
        let columns =
            csv_columns("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass")
                .unwrap();
        let row = |fields: &[&str]| csv_row(&csv::StringRecord::from(fields.to_vec()), &columns).unwrap();
        let current = row(&["b", "d/a+1.csv", "v1", "true", "false", "3", "2026-12-01T00:00:00.250Z", "e1", "GLACIER"]);
        let object = current.object.unwrap();
        assert_eq!((object.key.as_str(), object.size, object.mtime_ms), ("d/a 1.csv", 3, 1_796_083_200_250));
        assert!(object.archived);
        assert!(
            row(&["b", "old.csv", "v0", "false", "false", "3", "2026-12-01T00:00:00.000Z", "e0", ""]).object.is_none()
        );
        assert!(row(&["b", "gone.csv", "v2", "true", "true", "", "2026-12-01T00:00:00.000Z", "", ""]).object.is_none());
        assert!(
            row(&["b", "gone.csv", "v2", "true", "true", "0", "2026-12-01T00:00:00.000Z", "", ""]).object.is_none()
        );
        assert!(csv_columns("Bucket, Key, ETag").is_err());
    }
}
