//! The remote side: ListObjectsV2 under the prefix, page by page, in key order.
//!
//! S3 returns keys in UTF-8 byte order, and the walk holds one page (≤ 1,000 keys) at a time.
//! NFC-normalizing an NFD key moves it (to a later place, for Hangul and accented Latin): such
//! keys wait until the listing reaches their place. Not every S3-compatible server keeps byte
//! order (SeaweedFS lists a folder's contents before the names that sort before it): when a
//! key still arrives out of order the listing stops with `OutOfOrder` before passing it on,
//! and the caller lists again through [`super::sorted::SortedListing`], which sorts on disk.

use std::collections::VecDeque;
use std::sync::Arc;

use aws_sdk_s3::Client;
use tokio::runtime::Handle;

use super::{Entry, Item, SkipReason, Skipped, check_key};
use crate::etag::ETag;

/// One ListObjectsV2 request as a listing asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub prefix: String,
    /// One level (`delimiter=/`): deeper keys come back as their folders.
    pub delimited: bool,
    /// The continuation token of the page before (`None`: the first page).
    pub token: Option<String>,
    /// Keys asked for with `encoding-type=url`.
    pub url_encoded: bool,
    /// Only names after this one (StartAfter; sent with the first page's request only).
    pub start_after: Option<String>,
}

/// One page as a listing reads it.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// As sent: URL-encoded when `encoded`.
    pub objects: Vec<ListedObject>,
    /// Folders of a delimited listing (their full prefixes, as sent).
    pub folders: Vec<String>,
    /// The continuation token of the next page; `None` after the last one.
    pub next: Option<String>,
    /// The server URL-encoded the keys.
    pub encoded: bool,
}

/// One object as a page lists it.
#[derive(Debug, Clone)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    /// LastModified in milliseconds since the epoch.
    pub mtime_ms: i64,
    pub etag: Option<ETag>,
    /// In an archive storage class (GLACIER, DEEP_ARCHIVE): not readable until restored.
    pub archived: bool,
}

/// Why a page did not come.
#[derive(Debug)]
pub enum PageFailure {
    /// The answer came (HTTP 2xx) but could not be read: a key XML cannot carry. Asking for
    /// URL-encoded keys gets it through.
    Unreadable(crate::s3::RequestFailure),
    Failed(crate::s3::RequestFailure),
}

/// A page request already sent: [`PageWait::wait`] blocks until its page is there;
/// [`PageWait::ready`] says whether it would block.
pub struct PageWait {
    /// Set when the answer is in (never set: the answer is computed on waiting).
    answered: Option<Arc<std::sync::atomic::AtomicBool>>,
    wait: Box<dyn FnOnce() -> Result<Page, PageFailure> + Send>,
}

impl PageWait {
    /// A page computed when waited for (a model bucket, an inventory report's rows): always
    /// ready, since waiting costs no round trip.
    pub fn computed(wait: impl FnOnce() -> Result<Page, PageFailure> + Send + 'static) -> Self {
        PageWait { answered: None, wait: Box::new(wait) }
    }

    /// Whether waiting would return at once.
    pub fn ready(&self) -> bool {
        self.answered.as_ref().is_none_or(|answered| answered.load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn wait(self) -> Result<Page, PageFailure> {
        (self.wait)()
    }
}

/// Where a listing's pages come from: S3 through the SDK, or, in tests, a model of a bucket
/// that lists in key order or in another order. The listing's own logic (order checks, NFD
/// names waiting for their place, the hand-over to folder-by-folder listing) is the same.
pub trait PageSource: Send + Sync {
    /// The bucket, for messages.
    fn bucket(&self) -> &str;
    /// Sends `request` at once, without waiting for its answer.
    fn start(&self, request: PageRequest) -> PageWait;
}

/// A bucket's pages from S3: each request sent on the runtime as soon as it is known.
pub struct S3Pages {
    pub runtime: Handle,
    pub client: Client,
    pub bucket: String,
}

impl S3Pages {
    fn request(
        &self,
        request: &PageRequest,
    ) -> aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2FluentBuilder {
        let mut builder = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&request.prefix)
            .set_continuation_token(request.token.clone());
        if request.token.is_none() {
            builder = builder.set_start_after(request.start_after.clone());
        }
        if let Some(keys) = page_keys() {
            builder = builder.max_keys(keys);
        }
        if request.delimited {
            builder = builder.delimiter("/");
        }
        if request.url_encoded { builder.encoding_type(aws_sdk_s3::types::EncodingType::Url) } else { builder }
    }
}

/// Keys a page holds: the server's page (1,000 on S3) unless a test asks for fewer
/// (`HAUL_LIST_PAGE_KEYS`), to list many pages without writing thousands of objects.
fn page_keys() -> Option<i32> {
    static KEYS: std::sync::OnceLock<Option<i32>> = std::sync::OnceLock::new();
    *KEYS.get_or_init(|| std::env::var("HAUL_LIST_PAGE_KEYS").ok()?.parse().ok().filter(|keys| *keys > 0))
}

impl PageSource for S3Pages {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn start(&self, request: PageRequest) -> PageWait {
        let send = self.request(&request);
        let again = self.request(&request);
        let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let answered_in_task = answered.clone();
        let handle = self.runtime.spawn(async move {
            let answer = send.send().await;
            answered_in_task.store(true, std::sync::atomic::Ordering::Release);
            answer
        });
        let runtime = self.runtime.clone();
        let wait = Box::new(move || {
            let answer = match runtime.block_on(handle) {
                Ok(answer) => answer,
                // The task cannot be cancelled or panic short of a bug in the SDK: ask again, here.
                Err(_) => runtime.block_on(again.send()),
            };
            match answer {
                Ok(page) => Ok(page_of(&page)),
                Err(err) if unreadable_page(&err) => Err(PageFailure::Unreadable(crate::s3::request_failure(&err))),
                Err(err) => Err(PageFailure::Failed(crate::s3::request_failure(&err))),
            }
        });
        PageWait { answered: Some(answered), wait }
    }
}

/// A ListObjectsV2 answer as a listing reads it.
fn page_of(answer: &ListPage) -> Page {
    let next = answer.next_continuation_token().filter(|_| answer.is_truncated().unwrap_or(false));
    Page {
        objects: answer
            .contents()
            .iter()
            .filter_map(|object| {
                Some(ListedObject {
                    key: object.key()?.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    mtime_ms: object.last_modified().map_or(0, millis),
                    etag: object.e_tag().map(ETag::new),
                    archived: object.storage_class().is_some_and(|class| is_archived(class.as_str())),
                })
            })
            .collect(),
        folders: answer.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_string).collect(),
        next: next.map(str::to_string),
        encoded: answer.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url),
    }
}

/// Why listing failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("the server returned `{key}` after `{previous}`: its listing is not in key order")]
    OutOfOrder { previous: String, key: String },
    #[error("listing s3://{bucket}/{prefix} failed: {}", failure.message)]
    Request { bucket: String, prefix: String, failure: Box<crate::s3::RequestFailure> },
    /// Looking one key up at a destination read key by key (`destination: head`) failed.
    #[error("looking up `{name}` at the destination failed: {}", failure.message)]
    Lookup { name: String, failure: Box<crate::s3::RequestFailure> },
    /// Sorting an out-of-order listing on disk failed (the temp folder full or unwritable).
    #[error("sorting the listing of s3://{bucket}/{prefix} in {} failed: {source}", folder.display())]
    Sort { bucket: String, prefix: String, folder: std::path::PathBuf, source: std::io::Error },
}

/// The objects under `s3://bucket/prefix` in the order the server lists them (UTF-8 byte
/// order of the stored keys, on most servers): [`super::folders::FolderListing`] checks that order and
/// brings NFD names to their place, [`super::sorted::SortedListing`] sorts.
pub struct RemoteListing {
    source: Arc<dyn PageSource>,
    /// What this listing lists: the transfer's prefix, or one folder under it.
    pub(super) prefix: String,
    /// What keys are made relative to: the transfer's prefix.
    pub(super) key_base: String,
    /// List one level (`delimiter=/`): folders come back as [`PageEntry::Folder`].
    delimited: bool,
    /// Pages fetched so far.
    pub(super) pages: usize,
    /// The last key (as stored) of the last page fetched.
    pub(super) last_listed: Option<String>,
    /// Downloads refuse keys that could escape the target folder; uploads only write them.
    check_keys: bool,
    /// Fetched entries not yet read, with their names as stored (in full).
    pub(super) page: VecDeque<(String, PageEntry)>,
    continuation: Option<String>,
    pub(super) finished: bool,
    failed: bool,
    /// Pages are asked for with `encoding-type=url` (after one could not be parsed).
    url_encoded: bool,
    /// Each page's keys must come in stored byte order (off for a listing to be sorted).
    check_order: bool,
    /// The request for the next page, already sent (with its token).
    prefetched: Option<(Option<String>, PageWait)>,
    /// A key range's lower end: only names after it (StartAfter).
    start_after: Option<String>,
    /// A key range's upper end, the last name it covers: a page's names past it end the
    /// listing and are kept in `overrun`, for the next range to list first.
    until: Option<String>,
    /// The names of the last page past `until`, in order.
    overrun: Vec<String>,
    /// The last name (object or folder, as stored) of the pages so far: each page of a
    /// delimited listing must start after it.
    last_name: Option<String>,
    /// The first and last name of the page last fetched, when more pages follow: how far a
    /// page reaches, to split the rest of a key range by. Taken by the splitter.
    pub(super) span: Option<(String, String)>,
    /// A page fetched ahead of the reader that failed: given to the reader when it gets here.
    deferred: Option<ListError>,
}

impl RemoteListing {
    pub fn new(source: Arc<dyn PageSource>, prefix: &str, check_keys: bool) -> Self {
        RemoteListing {
            source,
            prefix: prefix.to_string(),
            key_base: prefix.to_string(),
            delimited: false,
            pages: 0,
            last_listed: None,
            check_keys,
            page: VecDeque::new(),
            continuation: None,
            finished: false,
            failed: false,
            url_encoded: false,
            check_order: true,
            prefetched: None,
            start_after: None,
            until: None,
            overrun: Vec::new(),
            last_name: None,
            span: None,
            deferred: None,
        }
    }

    /// The same listing without the order check (its items are sorted afterwards).
    pub fn unchecked(self) -> Self {
        RemoteListing { check_order: false, ..self }
    }

    /// The request for the page after `token`.
    fn page_request(&self, token: Option<String>) -> PageRequest {
        let start_after = if token.is_none() { self.start_after.clone() } else { None };
        PageRequest {
            prefix: self.prefix.clone(),
            delimited: self.delimited,
            token,
            url_encoded: self.url_encoded,
            start_after,
        }
    }

    /// Sends the request for the page after `token`, without waiting for it.
    fn start_page(&self, token: Option<String>) -> (Option<String>, PageWait) {
        (token.clone(), self.source.start(self.page_request(token)))
    }

    fn request_page(&self, token: Option<String>) -> Result<Page, PageFailure> {
        self.start_page(token).1.wait()
    }

    /// Fetches the next page into `self.page`. The request for the page after it is sent at
    /// once, so the network wait overlaps with the caller's work on this page (a listing is a
    /// chain: each page names the next).
    fn fetch_page(&mut self) -> Result<(), ListError> {
        let token = self.continuation.take();
        let first = match self.prefetched.take() {
            Some((sent, wait)) if sent == token => wait.wait(),
            _ => self.request_page(token.clone()),
        };
        let response = match first {
            // A key with a character XML 1.0 cannot carry (a control character) makes the page
            // unreadable. Ask again with keys URL-encoded, as the AWS CLI always does. Not by
            // default: some S3-compatible servers (s3s-fs) echo the encoding but send raw keys.
            Err(PageFailure::Unreadable(_)) if !self.url_encoded => {
                self.url_encoded = true;
                self.request_page(token)
            }
            other => other,
        };
        let response = response.map_err(|failure| ListError::Request {
            bucket: self.source.bucket().to_string(),
            prefix: self.prefix.clone(),
            failure: Box::new(match failure {
                PageFailure::Unreadable(failure) | PageFailure::Failed(failure) => failure,
            }),
        })?;
        self.continuation = response.next.clone();
        self.finished = self.continuation.is_none();
        // A key range sends the next request only once it knows the page did not pass its
        // end; any other listing at once.
        if !self.finished && self.until.is_none() {
            self.prefetched = Some(self.start_page(self.continuation.clone()));
        }
        let encoded = self.url_encoded && response.encoded;
        let decode = |raw: &str| if encoded { url_decode(raw) } else { Some(raw.to_string()) };
        // A delimited page holds objects and folders apart; both go out merged in key order.
        let mut entries: Vec<(String, PageEntry)> = Vec::with_capacity(response.objects.len());
        // The page's keys in stored byte order, after the last page's: checked before any of
        // them is passed on, so a server that lists out of order (a small prefix is one page)
        // is found before the plan uses a key.
        let mut previous = self.last_listed.clone();
        for object in &response.objects {
            let raw_key = object.key.as_str();
            let Some(full_key) = decode(raw_key) else {
                let skipped = Skipped { key: raw_key.to_string(), reason: SkipReason::NotUtf8 };
                entries.push((raw_key.to_string(), PageEntry::Item(Item::Skipped(skipped))));
                continue;
            };
            if self.check_order
                && let Some(previous) = previous.replace(full_key.clone())
                && full_key <= previous
            {
                return Err(ListError::OutOfOrder { previous, key: full_key });
            }
            let item = self.object_item(&full_key, object);
            entries.push((full_key, PageEntry::Item(item)));
        }
        for folder in &response.folders {
            match decode(folder) {
                Some(full) => entries.push((full.clone(), PageEntry::Folder(full))),
                None => {
                    let skipped = Skipped { key: folder.to_string(), reason: SkipReason::NotUtf8 };
                    entries.push((folder.to_string(), PageEntry::Item(Item::Skipped(skipped))));
                }
            }
        }
        self.pages += 1;
        if let Some(last) = response.objects.last().and_then(|o| decode(&o.key)) {
            self.last_listed = Some(last);
        }
        if self.delimited {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            // Pages of a delimited listing follow each other in key order, folders too: a
            // server that lists a folder where its name sorts (`a/` before `a b.csv`) is found
            // here when the two fall on different pages.
            if let (true, Some(previous), Some((first, _))) = (self.check_order, &self.last_name, entries.first())
                && first <= previous
            {
                return Err(ListError::OutOfOrder { previous: previous.clone(), key: first.clone() });
            }
        }
        // A key range's first page holds only names after its start: a server that ignores
        // StartAfter would list names another range lists.
        if self.pages == 1
            && let Some(after) = &self.start_after
            && let Some((name, _)) = entries.iter().find(|(name, _)| name <= after)
        {
            return Err(ListError::OutOfOrder { previous: after.clone(), key: name.clone() });
        }
        if let Some(until) = &self.until {
            let past = entries.iter().position(|(name, _)| name > until).unwrap_or(entries.len());
            self.overrun = entries.drain(past..).map(|(name, _)| name).collect();
            if !self.overrun.is_empty() {
                self.finished = true;
                self.continuation = None;
            } else if !self.finished {
                self.prefetched = Some(self.start_page(self.continuation.clone()));
            }
        }
        if let Some((last, _)) = entries.last() {
            self.last_name = Some(last.clone());
        }
        self.span = match (self.finished, entries.first(), entries.last()) {
            (false, Some((first, _)), Some((last, _))) => Some((first.clone(), last.clone())),
            _ => None,
        };
        self.page.extend(entries);
        Ok(())
    }

    /// Takes in the next page if its answer is already in and fewer than `room` entries wait
    /// to be read: a key range listed ahead of the reader keeps its chain of pages going. A
    /// failure waits for the reader. Whether a page came in.
    pub(super) fn take_ready_page(&mut self, room: usize) -> bool {
        if self.finished || self.failed || self.deferred.is_some() || self.page.len() >= room {
            return false;
        }
        match &self.prefetched {
            Some((sent, wait)) if *sent == self.continuation && wait.ready() => {}
            _ => return false,
        }
        if let Err(err) = self.fetch_page() {
            self.deferred = Some(err);
        }
        true
    }

    /// A request for a page is out.
    pub(super) fn in_flight(&self) -> bool {
        self.prefetched.is_some()
    }

    /// The first page was asked for (or came).
    pub(super) fn started(&self) -> bool {
        self.prefetched.is_some() || self.pages > 0 || self.failed || self.deferred.is_some()
    }

    /// Sends the request for the first page.
    pub(super) fn start(&mut self) {
        if !self.started() {
            self.prefetched = Some(self.start_page(None));
        }
    }

    /// Entries fetched and not yet read.
    pub(super) fn buffered(&self) -> usize {
        self.page.len()
    }

    /// The upper end of this key range (`None`: the end of the prefix).
    pub(super) fn until(&self) -> Option<&str> {
        self.until.as_deref()
    }

    /// Ends this key range at `until` (a name after everything it has fetched).
    pub(super) fn end_at(&mut self, until: String) {
        self.until = Some(until);
    }

    /// The names the last page listed past this range's end, taken.
    pub(super) fn take_overrun(&mut self) -> Vec<String> {
        std::mem::take(&mut self.overrun)
    }

    /// All pages fetched (or failed).
    pub(super) fn is_finished(&self) -> bool {
        self.finished || self.failed
    }

    /// The length of this listing's prefix: where names start to differ.
    pub(super) fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// The key range of this (delimited) listing's prefix from after `start_after` to `until`,
    /// keyed and encoded like this one; not started.
    pub(super) fn range(&self, start_after: Option<String>, until: Option<String>) -> RemoteListing {
        let mut listing = self.sibling(&self.prefix, true);
        listing.start_after = start_after;
        listing.until = until;
        listing
    }

    /// One listed object as an item, keyed relative to the transfer's prefix.
    fn object_item(&self, full_key: &str, object: &ListedObject) -> Item {
        let relative = full_key.strip_prefix(self.key_base.as_str()).unwrap_or(full_key);
        let size = object.size;
        if relative.is_empty() || (relative.ends_with('/') && size == 0) {
            Item::Skipped(Skipped { key: relative.to_string(), reason: SkipReason::DirectoryMarker })
        } else if let Err(unsafe_key) = if self.check_keys { check_key(relative) } else { Ok(()) } {
            Item::Skipped(Skipped { key: relative.to_string(), reason: SkipReason::UnsafeKey(unsafe_key) })
        } else {
            let mut entry = Entry::new(relative, size, object.mtime_ms, object.etag.clone());
            entry.archived = object.archived;
            Item::Entry(entry)
        }
    }

    /// The listing of `folder` (a full prefix this delimited listing returned), keyed like
    /// this one, its first page already requested.
    pub(super) fn folder_listing(&self, folder: &str) -> RemoteListing {
        self.started_listing(folder, false)
    }

    /// A listing of `prefix` in the same bucket, keyed and encoded like this one, its first
    /// page already requested.
    fn started_listing(&self, prefix: &str, delimited: bool) -> RemoteListing {
        let mut listing = self.sibling(prefix, delimited);
        listing.start();
        listing
    }

    /// A listing of `prefix` in the same bucket, keyed and encoded like this one; not started.
    fn sibling(&self, prefix: &str, delimited: bool) -> RemoteListing {
        let mut listing = RemoteListing::new(self.source.clone(), prefix, self.check_keys);
        listing.key_base = self.key_base.clone();
        listing.delimited = delimited;
        listing.url_encoded = self.url_encoded;
        listing
    }

    /// The next entry as the pages come. The key order is checked by [`super::folders::FolderListing`], which
    /// reads every streamed listing.
    pub(super) fn next_streamed(&mut self) -> Option<Result<(String, PageEntry), ListError>> {
        loop {
            if let Some(entry) = self.page.pop_front() {
                return Some(Ok(entry));
            }
            if let Some(err) = self.deferred.take() {
                self.failed = true;
                return Some(Err(err));
            }
            if self.finished {
                return None;
            }
            if let Err(err) = self.fetch_page() {
                self.failed = true;
                return Some(Err(err));
            }
        }
    }
}

/// The object at `key`, named `name` under its prefix, as a HEAD request finds it; `None`
/// when there is none. `Last-Modified` has whole seconds: the entry's time is the second's
/// start.
pub async fn head_entry(
    client: &Client,
    bucket: &str,
    key: &str,
    name: &str,
) -> Result<Option<Entry>, crate::s3::RequestFailure> {
    let head = match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => head,
        Err(err) => {
            let failure = crate::s3::request_failure(&err);
            return match failure.status {
                Some(404) => Ok(None),
                _ => Err(failure),
            };
        }
    };
    let size = head.content_length().map_or(0, |length| length.max(0) as u64);
    let mtime_ms = head.last_modified().map_or(0, millis);
    let mut entry = Entry::new(name, size, mtime_ms, head.e_tag().map(ETag::new));
    entry.archived = head.storage_class().is_some_and(|class| is_archived(class.as_str()));
    Ok(Some(entry))
}

/// Whether an object stored in the storage class named `class` (`GLACIER`, as a listing, a
/// HEAD or an inventory report names it) must be restored to be read.
pub fn is_archived(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

/// S3's LastModified in milliseconds since the epoch (the precision listings carry).
pub fn millis(time: &aws_smithy_types::DateTime) -> i64 {
    time.secs().saturating_mul(1000).saturating_add(i64::from(time.subsec_nanos() / 1_000_000))
}

impl Iterator for RemoteListing {
    type Item = Result<Item, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            match self.next_streamed()? {
                Ok((_, PageEntry::Item(item))) => return Some(Ok(item)),
                Err(err) => return Some(Err(err)),
                // Only a delimited listing has folders, and only `FolderListing` reads one.
                Ok((_, PageEntry::Folder(_))) => continue,
            }
        }
    }
}

/// What a page of a listing holds: an object (as an item), or, in a delimited listing, a
/// folder (its full prefix).
pub(super) enum PageEntry {
    Item(Item),
    Folder(String),
}

/// A multipart upload in progress under a prefix (ListMultipartUploads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnfinishedUpload {
    /// Relative to the prefix, as stored.
    pub key: String,
    pub upload_id: String,
    /// When it was started, seconds since the epoch.
    pub initiated: i64,
}

/// A part a multipart upload already has, as ListParts tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub number: i32,
    pub size: u64,
    /// The part's MD5 in hex where the server uses that (AWS without KMS, moto, Garage).
    pub etag: Option<crate::etag::ETag>,
    /// The part's CRC32C, where the server gives it.
    pub crc32c: Option<String>,
}

/// What a multipart upload has so far.
#[derive(Debug, Clone, Default)]
pub struct UploadedParts {
    pub parts: Vec<UploadedPart>,
    /// The checksum algorithm it was started with (`CRC32C`), where the server says.
    pub checksum_algorithm: Option<String>,
}

/// Every part of a multipart upload, in part order (ListParts, page by page). `Err` with the
/// failure when the upload cannot be listed (gone: `NoSuchUpload`).
pub async fn uploaded_parts(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadedParts, crate::s3::RequestFailure> {
    let mut parts = Vec::new();
    let mut checksum_algorithm = None;
    let mut marker: Option<String> = None;
    loop {
        let answer = client
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.take())
            .send()
            .await;
        let page = match answer {
            Ok(page) => page,
            // moto (and so LocalStack's older S3) wraps the answer in `ListPartsResponse`
            // where S3 writes `ListPartsResult`, which the SDK refuses: read it ourselves.
            Err(aws_sdk_s3::error::SdkError::ServiceError(service))
                if service.raw().status().is_success()
                    && let Some(page) = service.raw().body().bytes().and_then(parts_page) =>
            {
                page
            }
            Err(err) => return Err(crate::s3::request_failure(&err)),
        };
        if let Some(algorithm) = page.checksum_algorithm() {
            checksum_algorithm = Some(algorithm.as_str().to_string());
        }
        for part in page.parts() {
            parts.push(UploadedPart {
                number: part.part_number().unwrap_or(0),
                size: part.size().map_or(0, |size| size as u64),
                etag: part.e_tag().map(crate::etag::ETag::new),
                crc32c: part.checksum_crc32_c().map(str::to_string),
            });
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = page.next_part_number_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    parts.sort_by_key(|part| part.number);
    Ok(UploadedParts { parts, checksum_algorithm })
}

/// A ListParts answer read whatever its root element is called (see [`uploaded_parts`]).
fn parts_page(body: &[u8]) -> Option<aws_sdk_s3::operation::list_parts::ListPartsOutput> {
    use aws_smithy_xml::decode::{Document, try_data};
    let text = std::str::from_utf8(body).ok()?;
    let mut document = Document::new(text);
    let mut root = document.root_element().ok()?;
    let mut page = aws_sdk_s3::operation::list_parts::ListPartsOutput::builder();
    while let Some(mut tag) = root.next_tag() {
        let name = tag.start_el().local().to_string();
        match name.as_str() {
            "IsTruncated" => page = page.is_truncated(try_data(&mut tag).ok()? == "true"),
            "NextPartNumberMarker" => page = page.next_part_number_marker(try_data(&mut tag).ok()?),
            "ChecksumAlgorithm" => page = page.checksum_algorithm(try_data(&mut tag).ok()?.as_ref().into()),
            "Part" => {
                let mut part = aws_sdk_s3::types::Part::builder();
                while let Some(mut field) = tag.next_tag() {
                    let field_name = field.start_el().local().to_string();
                    let value = try_data(&mut field).ok()?.to_string();
                    part = match field_name.as_str() {
                        "PartNumber" => part.part_number(value.parse().ok()?),
                        "Size" => part.size(value.parse().ok()?),
                        "ETag" => part.e_tag(value),
                        "ChecksumCRC32C" => part.checksum_crc32_c(value),
                        _ => part,
                    };
                }
                page = page.parts(part.build());
            }
            _ => {}
        }
    }
    Some(page.build())
}

/// The multipart uploads in progress under `s3://bucket/prefix`, page by page. A server that
/// does not list them (s3s-fs), or credentials that may not, give none: there is nothing
/// haul could do about them anyway.
pub async fn unfinished_uploads(client: &Client, bucket: &str, prefix: &str) -> Vec<UnfinishedUpload> {
    let mut found = Vec::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let request = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take());
        let page = match request.send().await {
            Ok(page) => page,
            Err(err) => {
                tracing::debug!(bucket, prefix, "cannot list multipart uploads: {}", crate::s3::describe_error(&err));
                return found;
            }
        };
        for upload in page.uploads() {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else { continue };
            let Some(relative) = key.strip_prefix(prefix) else { continue };
            found.push(UnfinishedUpload {
                key: relative.to_string(),
                upload_id: upload_id.to_string(),
                initiated: upload.initiated().map_or(0, |time| time.secs()),
            });
        }
        if page.is_truncated() != Some(true) {
            return found;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() && id_marker.is_none() {
            return found;
        }
    }
}

type ListPage = aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
pub type ListPageError = aws_sdk_s3::error::SdkError<
    aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
    aws_sdk_s3::config::http::HttpResponse,
>;

/// A listing answer that came back (HTTP 2xx) but could not be parsed.
pub fn unreadable_page(err: &ListPageError) -> bool {
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(service) => service.raw().status().is_success(),
        aws_sdk_s3::error::SdkError::ResponseError(_) => true,
        _ => false,
    }
}

/// Decodes a key from a listing with `encoding-type=url` (`+` is a space, `%XX` a byte), as
/// the AWS CLI does; `None` when the bytes are not UTF-8.
pub fn url_decode(key: &str) -> Option<String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|key| key.into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_list_parts_answer_is_read_whatever_its_root_is_called() {
        // moto 5.2.5's answer, root `ListPartsResponse` (S3: `ListPartsResult`).
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<ListPartsResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId><NextPartNumberMarker>2</NextPartNumberMarker><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><ETag>"e8ee920a6b8af960cb33b35f2b613e4c"</ETag><Size>5242880</Size></Part><Part><PartNumber>2</PartNumber><ETag>"3d05"</ETag><Size>7</Size><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C></Part></ListPartsResponse>"#;
        let page = super::parts_page(body).unwrap();
        assert_eq!(page.is_truncated(), Some(false));
        let parts: Vec<(i32, i64)> =
            page.parts().iter().map(|p| (p.part_number().unwrap(), p.size().unwrap())).collect();
        assert_eq!(parts, [(1, 5_242_880), (2, 7)]);
        assert_eq!(page.parts()[1].checksum_crc32_c(), Some("AAAAAA=="));
        assert!(super::parts_page(b"not xml").is_none());
    }
}
