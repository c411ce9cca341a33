//! The plan stage: what each transfer would move, delete and skip, and why. Pure: it takes
//! listings as streams and never talks to S3 or the disk itself.

pub mod diff;
pub mod expected;
pub mod render;
pub mod saved;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use diff::{Decision, DiffRules, Reason, SkipKind};
pub use saved::{ManifestRef, PlanFileError, Side, StaleObject};

use crate::filter::Outside;
use crate::listing::{Entry, Item, SkipReason};
use crate::manifest::{Direction, Job};
use crate::shard::Shard;

/// What one action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Upload,
    Download,
    /// Copy an object from the source bucket to the destination bucket (`direction: copy`).
    Copy,
    /// Remove an object from the bucket (an upload with `delete: true`).
    DeleteRemote,
    /// Remove a local file (a download with `delete: true`).
    DeleteLocal,
    /// Set the manifest's properties on an object the destination bucket already has, in
    /// place (`update_properties`): no bytes pass through haul.
    UpdateProperties,
}

impl ActionKind {
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Upload => "upload",
            ActionKind::Download => "download",
            ActionKind::Copy => "copy",
            ActionKind::DeleteRemote => "delete (remote)",
            ActionKind::DeleteLocal => "delete (local)",
            ActionKind::UpdateProperties => "update properties",
        }
    }

    pub fn is_delete(self) -> bool {
        matches!(self, ActionKind::DeleteRemote | ActionKind::DeleteLocal)
    }

    /// Whether it sends an object's bytes through haul (an upload, a download, a copy).
    pub fn moves_bytes(self) -> bool {
        matches!(self, ActionKind::Upload | ActionKind::Download | ActionKind::Copy)
    }
}

/// The state of one side of an object that the plan relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Seconds since the epoch (rounded down).
    pub mtime: i64,
    /// Milliseconds since the epoch: what the plan compared. Absent in plans written before
    /// haul compared milliseconds; `mtime` is then all there is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<crate::etag::ETag>,
    /// The name as stored on this side when it differs from the action's (NFC) key: an NFD
    /// name written on macOS. The executor reads, overwrites or removes this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_key: Option<String>,
    /// The earlier transfer of the plan that writes this (the plan was made before it ran):
    /// the size is that transfer's, the time the plan's, and there is no ETag yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
    /// Listed in an archive storage class (GLACIER, DEEP_ARCHIVE): restored before it can be
    /// read (see the transfer's `archived`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

impl From<&Entry> for Fingerprint {
    fn from(entry: &Entry) -> Self {
        Fingerprint {
            size: entry.size,
            mtime: entry.mtime_ms.div_euclid(1000),
            mtime_ms: Some(entry.mtime_ms),
            etag: entry.etag.clone(),
            stored_key: entry.stored_key.clone(),
            written_by: None,
            archived: entry.archived,
        }
    }
}

/// One thing the executor will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action: ActionKind,
    /// Relative to the transfer's root (NFC).
    pub key: String,
    /// Bytes to move (0 for a delete).
    pub size: u64,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Fingerprint>,
    /// An upload an interrupted run left for this object, which `apply` continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// Written under the source's stored name rather than the NFC key: one of several
    /// source names with one NFC form (twins), each written to its own name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact_name: bool,
    /// Of an `update-properties` action: the properties that differ from the manifest's
    /// (`acl`, `content_type`, `cache_control`, `content_disposition`, `metadata`, `tags`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
}

/// A multipart upload an earlier run left, to be continued instead of started over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub upload_id: String,
    /// Parts the server had when the plan was made, and their bytes (what resuming saves,
    /// once `apply` has checked each against the file).
    pub parts: u64,
    pub bytes: u64,
}

impl Action {
    /// The name to read from the source side.
    pub fn source_name(&self) -> &str {
        self.source.as_ref().and_then(|s| s.stored_key.as_deref()).unwrap_or(&self.key)
    }

    /// The name to write (or remove) on the destination side: the existing one when the
    /// destination already has this key under another normalization, so no twin appears.
    pub fn destination_name(&self) -> &str {
        let exact = self.exact_name.then(|| self.source.as_ref().and_then(|s| s.stored_key.as_deref())).flatten();
        self.destination.as_ref().and_then(|d| d.stored_key.as_deref()).or(exact).unwrap_or(&self.key)
    }
}

/// A skip worth listing (unchanged and filtered objects are only counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotableSkip {
    pub key: String,
    /// The reason's slug (`unsafe-key`, `unreadable`, `same-normalized-name`, ...), as in
    /// `by_reason`. Empty in plans of earlier versions.
    #[serde(default)]
    pub slug: String,
    /// The reason for people, with details.
    pub reason: String,
}

/// Objects and bytes under one heading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub objects: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }

    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }
}

/// One transfer's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferPlan {
    pub name: String,
    pub direction: Direction,
    pub bucket: String,
    pub prefix: String,
    pub local: PathBuf,
    pub actions: Vec<Action>,
    pub skipped: Vec<NotableSkip>,
    /// Per action kind (`upload`, `download`, `delete-local`, `delete-remote`).
    pub by_action: BTreeMap<ActionKind, Tally>,
    /// haul temp files under the local folder (relative paths), from downloads in progress
    /// or from a run that was killed; `apply` removes those whose run is gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temp_files: Vec<String>,
    /// Per reason slug, moves and skips alike (`new`, `size-differs`, `unchanged`,
    /// `filtered`, `unsafe-key`, ...): see [`REASONS`].
    pub by_reason: BTreeMap<String, Tally>,
    /// The share of the keys this plan covers (`--shard`); every key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Multipart uploads an interrupted run left under the prefix (an upload's destination),
    /// which `apply` aborts before it starts: their parts are billed until someone does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfinished_uploads: Vec<crate::listing::remote::UnfinishedUpload>,
    /// A copy's destination bucket and prefix (`direction: copy`); `local` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<CopyPlace>,
    /// How a copy moves its objects, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_method: Option<CopyMethod>,
    /// Uploads that continue an unfinished one, and the bytes their parts already hold (for
    /// the summary; each action's `resume` says it in the document).
    #[serde(skip)]
    pub resumed: Tally,
    /// Copies whose source is archived (GLACIER, DEEP_ARCHIVE): `apply` moves those already
    /// restored and, per `archived`, fails or asks to restore the others.
    #[serde(default, skip_serializing_if = "Tally::is_empty")]
    pub archived: Tally,
    /// The S3 Inventory reports that stood for a side's listing (`listing: {inventory}`):
    /// objects changed since a report was made are not in this plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventories: Vec<crate::listing::inventory::ReportUse>,
    /// The transfer's `bandwidth` cannot move the planned bytes before its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_shortfall: Option<DeadlineShortfall>,
}

/// Bytes planned that a transfer's `bandwidth` cannot move before its `deadline` or
/// `max_duration`: said before the run, not found out at the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineShortfall {
    /// The bytes to move.
    pub bytes: u64,
    /// The cap, bytes per second.
    pub bandwidth: u64,
    /// What moving them takes at the cap.
    pub needed_seconds: u64,
    /// From the run's start (the plan's time for `haul plan`) to the deadline.
    pub available_seconds: u64,
    /// The deadline, RFC 3339 UTC.
    pub deadline: String,
}

impl DeadlineShortfall {
    /// The shortfall of moving `bytes` under `job`'s cap, in a run that starts at `started`;
    /// `None` without a cap or a deadline, or when there is time enough.
    pub fn of(job: &Job, bytes: u64, started: std::time::SystemTime) -> Option<Self> {
        let bandwidth = job.bandwidth.filter(|rate| *rate > 0)?;
        let deadline = job.deadline.as_ref()?.instant(started);
        let available_seconds = deadline.duration_since(started).map_or(0, |left| left.as_secs());
        let needed_seconds = bytes.div_ceil(bandwidth);
        (needed_seconds > available_seconds).then(|| DeadlineShortfall {
            bytes,
            bandwidth,
            needed_seconds,
            available_seconds,
            deadline: humantime::format_rfc3339_seconds(deadline).to_string(),
        })
    }

    /// For people: what takes how long, and what happens.
    pub fn describe(&self) -> String {
        let time =
            |seconds: u64| humantime::format_duration(std::time::Duration::from_secs(seconds / 60 * 60)).to_string();
        let time = |seconds: u64| if seconds < 60 { format!("{seconds}s") } else { time(seconds) };
        format!(
            "at `bandwidth: {}/s` the {} to move take {}, but the deadline ({}) is {} away: what has not \
             started by then is left for the next run (exit 6)",
            crate::text::human_bytes(self.bandwidth),
            crate::text::human_bytes(self.bytes),
            time(self.needed_seconds),
            self.deadline,
            time(self.available_seconds)
        )
    }
}

/// The bucket and prefix a copy writes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyPlace {
    pub bucket: String,
    pub prefix: String,
}

/// How a copy moves its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyMethod {
    /// The server copies (CopyObject, UploadPartCopy): no bytes pass through haul. Both sides
    /// are on one endpoint and reached with one profile.
    ServerSide,
    /// haul reads each object and writes it (GET, then PUT or UploadPart): the two sides are
    /// on different endpoints or reached with different profiles.
    Streamed,
}

impl CopyMethod {
    /// The method for a copy from `source` to `destination`: server-side when one endpoint
    /// and one set of credentials reach both (a CopyObject request is signed once, for the
    /// destination, and the server reads the source as that identity).
    pub fn between(source: &crate::manifest::S3Target, destination: &crate::manifest::S3Target) -> CopyMethod {
        if source.endpoint == destination.endpoint && source.profile == destination.profile {
            CopyMethod::ServerSide
        } else {
            CopyMethod::Streamed
        }
    }

    /// Why, in words, for the plan.
    pub fn explain(self) -> &'static str {
        match self {
            CopyMethod::ServerSide => "server-side copy (one endpoint and one profile reach both buckets)",
            CopyMethod::Streamed => {
                "streamed through haul (the buckets are on different endpoints or reached with different profiles)"
            }
        }
    }
}

impl TransferPlan {
    /// The plan of `job` before its listings are read: where it goes, nothing to do yet.
    pub fn empty(job: &Job, shard: Option<Shard>) -> TransferPlan {
        TransferPlan {
            name: job.name.clone(),
            direction: job.direction,
            bucket: job.bucket.clone(),
            prefix: job.prefix.clone(),
            local: job.local.clone(),
            actions: Vec::new(),
            skipped: Vec::new(),
            temp_files: Vec::new(),
            by_action: BTreeMap::new(),
            by_reason: BTreeMap::new(),
            shard,
            unfinished_uploads: Vec::new(),
            to: job.to.as_ref().map(|to| CopyPlace { bucket: to.bucket.clone(), prefix: to.prefix.clone() }),
            copy_method: job.to.as_ref().map(|to| CopyMethod::between(&job.target, &to.target)),
            resumed: Tally::default(),
            archived: Tally::default(),
            inventories: Vec::new(),
            deadline_shortfall: None,
        }
    }

    /// Whether applying it would do anything: from its totals, so a plan whose actions went
    /// by as a stream answers too.
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty() || !self.by_action.is_empty() || !self.unfinished_uploads.is_empty()
    }

    /// Keeps, of the multipart uploads in progress under the prefix, those an interrupted
    /// run of this transfer left (see [`UploadsLeft`]): the newest one of a key this plan
    /// uploads is continued (the action's `resume`); every other one is aborted by `apply`.
    pub fn set_unfinished_uploads(&mut self, uploads: Vec<crate::listing::remote::UnfinishedUpload>, before: i64) {
        let mut left = UploadsLeft::new(&self.name, self.shard, self.direction, uploads, before);
        for action in &mut self.actions {
            left.claim(action);
        }
        self.unfinished_uploads = left.into_rest();
    }

    /// The deletes it plans, from its totals (a streamed plan holds no actions).
    pub fn deletes(&self) -> u64 {
        self.by_action.iter().filter(|(kind, _)| kind.is_delete()).map(|(_, tally)| tally.objects).sum()
    }

    /// The copies it plans (uploads, downloads or copies) and their bytes, from its totals.
    pub fn copies(&self) -> Tally {
        copies_in(&self.by_action)
    }
}

/// The copies (uploads, downloads or copies) among totals per action kind.
pub fn copies_in(by_action: &BTreeMap<ActionKind, Tally>) -> Tally {
    let copies = by_action.iter().filter(|(kind, _)| !kind.is_delete());
    copies.fold(Tally::default(), |all, (_, tally)| Tally {
        objects: all.objects + tally.objects,
        bytes: all.bytes + tally.bytes,
    })
}

/// The multipart uploads an interrupted run of a transfer left under its prefix: started
/// before this plan (a later one is another run's business), and of keys this shard owns
/// (another shard may be uploading its own).
pub struct UploadsLeft {
    /// By name: the newest upload of each, which an upload of that name continues.
    newest: std::collections::HashMap<String, crate::listing::remote::UnfinishedUpload>,
    /// Older uploads of a name, and every upload of a transfer that cannot continue one.
    rest: Vec<crate::listing::remote::UnfinishedUpload>,
    /// What the server said the continuable uploads have, by upload id: parts and bytes.
    sent: std::collections::HashMap<String, (u64, u64)>,
}

impl UploadsLeft {
    pub fn new(
        transfer: &str,
        shard: Option<Shard>,
        direction: Direction,
        uploads: Vec<crate::listing::remote::UnfinishedUpload>,
        before: i64,
    ) -> UploadsLeft {
        let owned = |key: &str| shard.is_none_or(|shard| shard.owns(transfer, &crate::listing::nfc(key)));
        let mut uploads: Vec<_> =
            uploads.into_iter().filter(|upload| upload.initiated < before && owned(&upload.key)).collect();
        let mut left = UploadsLeft {
            newest: std::collections::HashMap::new(),
            rest: Vec::new(),
            sent: std::collections::HashMap::new(),
        };
        if direction != Direction::Upload {
            left.rest = uploads;
            return left;
        }
        // Newest first, so the first one met for a key is the one to continue.
        uploads.sort_by_key(|upload| std::cmp::Reverse(upload.initiated));
        for upload in uploads {
            if left.newest.contains_key(&upload.key) {
                left.rest.push(upload);
            } else {
                left.newest.insert(upload.key.clone(), upload);
            }
        }
        left
    }

    /// The uploads an upload may continue (the newest of each name), whose parts the
    /// caller asks the server for before planning (see [`UploadsLeft::sent`]).
    pub fn continuable(&self) -> impl Iterator<Item = &crate::listing::remote::UnfinishedUpload> {
        self.newest.values()
    }

    /// What the server says a continuable upload has: its parts and their bytes.
    pub fn sent(&mut self, upload_id: &str, parts: u64, bytes: u64) {
        self.sent.insert(upload_id.to_string(), (parts, bytes));
    }

    /// Gives an upload the unfinished upload of its name to continue, if one was left.
    pub fn claim(&mut self, action: &mut Action) {
        if action.action != ActionKind::Upload || self.newest.is_empty() {
            return;
        }
        if let Some(upload) = self.newest.remove(action.destination_name()) {
            let (parts, bytes) = self.sent.get(&upload.upload_id).copied().unwrap_or_default();
            action.resume = Some(Resume { upload_id: upload.upload_id, parts, bytes });
        }
    }

    /// The uploads no action continues (to abort), by key and age.
    pub fn into_rest(self) -> Vec<crate::listing::remote::UnfinishedUpload> {
        let mut rest = self.rest;
        rest.extend(self.newest.into_values());
        rest.sort_by(|a, b| (&a.key, a.initiated).cmp(&(&b.key, b.initiated)));
        rest
    }
}

/// Why a transfer could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("transfer `{transfer}` would delete {count} objects, more than its `max_delete: {cap}`")]
    TooManyDeletes { transfer: String, count: u64, cap: u64 },
}

/// What reading both sides found for a pair of the same size (`compare: checksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentVerdict {
    Same,
    Differs,
    /// No checksum to compare (or it could not be read): copy to be sure.
    Unavailable,
}

/// Compares the content of same-size pairs for `compare: checksum`. Planning stays pure:
/// the caller supplies the reading (a HEAD with checksum mode, a local hash).
pub trait ContentCheck {
    /// One verdict per `(source, destination)` pair, in order.
    fn compare(&self, pairs: &[(&Entry, &Entry)]) -> Vec<ContentVerdict>;
}

/// What comparing an object's properties with the manifest's found (`update_properties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyVerdict {
    Same,
    /// The properties that differ, by their manifest names (`content_type`, `tags`, ...).
    Differs(Vec<String>),
    /// They could not be read: why, for people.
    Unreadable(String),
}

/// Compares the properties of destination objects with what the manifest sets for their
/// keys (`update_properties`). As with [`ContentCheck`], the caller does the reading.
pub trait PropertyCheck {
    /// One verdict per destination entry, in order.
    fn compare(&self, objects: &[&Entry]) -> Vec<PropertyVerdict>;
}

/// What planning may read beyond the listings: content (`compare: checksum`) and
/// properties (`update_properties`). Each is called only where its setting asks for it.
#[derive(Clone, Copy, Default)]
pub struct Checks<'a> {
    pub content: Option<&'a dyn ContentCheck>,
    pub properties: Option<&'a dyn PropertyCheck>,
}

impl<'a> Checks<'a> {
    pub fn content(check: Option<&'a dyn ContentCheck>) -> Self {
        Checks { content: check, properties: None }
    }
}

/// Pairs to verify are resolved in batches of this many, so the reading can run in
/// parallel while memory stays bounded.
const VERIFY_BATCH: usize = 256;

/// Builds a transfer's plan from its source and destination listings (each in key order).
/// `checks` read content and properties where the transfer's settings ask for them.
pub fn plan_transfer(
    job: &Job,
    source: impl IntoIterator<Item = Item>,
    destination: impl IntoIterator<Item = Item>,
    checks: Checks<'_>,
    shard: Option<Shard>,
) -> Result<TransferPlan, PlanError> {
    let mut actions = Vec::new();
    let mut plan = plan_streamed(job, source, destination, checks, shard, &mut |action| actions.push(action))?;
    plan.actions = actions;
    Ok(plan)
}

/// Plans a transfer as its listings arrive: each action goes to `sink` (in key order) as soon
/// as it is decided, and the plan returned has the totals, the notable skips and no actions.
/// This is how `apply` starts moving objects while the listing goes on, in memory that does
/// not grow with the number of objects. `max_delete` is checked at the end, over the whole
/// listing: the caller holds deletes until then.
pub fn plan_streamed(
    job: &Job,
    source: impl IntoIterator<Item = Item>,
    destination: impl IntoIterator<Item = Item>,
    checks: Checks<'_>,
    shard: Option<Shard>,
    sink: &mut dyn FnMut(Action),
) -> Result<TransferPlan, PlanError> {
    let (copy, delete) = match job.direction {
        Direction::Download => (ActionKind::Download, ActionKind::DeleteLocal),
        Direction::Upload => (ActionKind::Upload, ActionKind::DeleteRemote),
        Direction::Copy => (ActionKind::Copy, ActionKind::DeleteRemote),
    };
    let mut plan = TransferPlan::empty(job, shard);
    let rules = DiffRules::of(job, shard);
    let check_properties = rules.check_properties;
    let mut recorder = Recorder { plan: &mut plan, sink, copy, delete, check_properties };
    // Decisions wait here (in key order) while pairs in them are being verified.
    let mut pending: Vec<Decision> = Vec::new();
    let mut verifications = 0;
    for decision in diff::diff(source, destination, rules) {
        let verify = matches!(decision, Decision::Verify { .. } | Decision::CheckProperties { .. });
        if !verify && pending.is_empty() {
            recorder.record(decision);
            continue;
        }
        verifications += usize::from(verify);
        pending.push(decision);
        if verifications >= VERIFY_BATCH {
            recorder.resolve(&mut pending, checks);
            verifications = 0;
        }
    }
    recorder.resolve(&mut pending, checks);
    if let Some(cap) = job.max_delete.filter(|_| job.delete) {
        let count = plan.deletes();
        if count > cap {
            return Err(PlanError::TooManyDeletes { transfer: job.name.clone(), count, cap });
        }
    }
    Ok(plan)
}

/// Turns decisions into the plan's totals and skips, and actions for the sink.
struct Recorder<'a> {
    plan: &'a mut TransferPlan,
    sink: &'a mut dyn FnMut(Action),
    copy: ActionKind,
    delete: ActionKind,
    /// `update_properties`: a pair whose content is the same is checked for its properties.
    check_properties: bool,
}

impl Recorder<'_> {
    /// Verifies the pending pairs (content, then properties) and records every pending
    /// decision, in order.
    fn resolve(&mut self, pending: &mut Vec<Decision>, checks: Checks<'_>) {
        let pairs: Vec<(&Entry, &Entry)> = pending
            .iter()
            .filter_map(|decision| match decision {
                Decision::Verify { source, destination } => Some((source, destination)),
                _ => None,
            })
            .collect();
        let mut verdicts = match checks.content {
            Some(check) if !pairs.is_empty() => check.compare(&pairs),
            _ => vec![ContentVerdict::Unavailable; pairs.len()],
        }
        .into_iter();
        let mut decided: Vec<Decision> = pending
            .drain(..)
            .map(|decision| match decision {
                Decision::Verify { source, destination } => match verdicts.next() {
                    Some(ContentVerdict::Same) if self.check_properties => {
                        Decision::CheckProperties { source, destination }
                    }
                    Some(ContentVerdict::Same) => {
                        Decision::Skip { key: source.key, size: source.size, kind: SkipKind::Unchanged }
                    }
                    Some(ContentVerdict::Differs) => {
                        let reason = Reason::ChecksumDiffers;
                        Decision::Copy { source, destination: Some(destination), reason, exact_name: false }
                    }
                    Some(ContentVerdict::Unavailable) | None => {
                        let reason = Reason::ChecksumUnavailable;
                        Decision::Copy { source, destination: Some(destination), reason, exact_name: false }
                    }
                },
                other => other,
            })
            .collect();
        let objects: Vec<&Entry> = decided
            .iter()
            .filter_map(|decision| match decision {
                Decision::CheckProperties { destination, .. } => Some(destination),
                _ => None,
            })
            .collect();
        let mut verdicts = match checks.properties {
            Some(check) if !objects.is_empty() => check.compare(&objects),
            _ => vec![PropertyVerdict::Same; objects.len()],
        }
        .into_iter();
        for decision in decided.drain(..) {
            match decision {
                Decision::CheckProperties { source, destination } => {
                    match verdicts.next().unwrap_or(PropertyVerdict::Same) {
                        PropertyVerdict::Same => self.record(Decision::Skip {
                            key: source.key,
                            size: source.size,
                            kind: SkipKind::Unchanged,
                        }),
                        PropertyVerdict::Unreadable(why) => self.record(Decision::Skip {
                            key: source.key,
                            size: source.size,
                            kind: SkipKind::PropertiesUnreadable(why),
                        }),
                        PropertyVerdict::Differs(properties) => self.update(source, destination, properties),
                    }
                }
                other => self.record(other),
            }
        }
    }

    /// An object to update in place: no bytes move, so its size is counted under its reason
    /// only.
    fn update(&mut self, source: Entry, destination: Entry, properties: Vec<String>) {
        let plan = &mut *self.plan;
        plan.by_action.entry(ActionKind::UpdateProperties).or_default().add(0);
        count(&mut plan.by_reason, Reason::PropertiesDiffer.slug(), destination.size);
        (self.sink)(Action {
            resume: None,
            action: ActionKind::UpdateProperties,
            key: source.key.clone(),
            size: 0,
            reason: Reason::PropertiesDiffer,
            source: Some(Fingerprint::from(&source)),
            destination: Some(Fingerprint::from(&destination)),
            exact_name: false,
            properties,
        });
    }

    fn record(&mut self, decision: Decision) {
        let (copy, delete, plan) = (self.copy, self.delete, &mut *self.plan);
        match decision {
            Decision::Copy { source, destination, reason, exact_name } => {
                plan.by_action.entry(copy).or_default().add(source.size);
                if source.archived {
                    plan.archived.add(source.size);
                }
                count(&mut plan.by_reason, reason.slug(), source.size);
                (self.sink)(Action {
                    resume: None,
                    action: copy,
                    key: source.key.clone(),
                    size: source.size,
                    reason,
                    source: Some(Fingerprint::from(&source)),
                    destination: destination.as_ref().map(Fingerprint::from),
                    exact_name,
                    properties: Vec::new(),
                });
            }
            Decision::Delete { destination } => {
                plan.by_action.entry(delete).or_default().add(0);
                count(&mut plan.by_reason, Reason::MissingAtSource.slug(), destination.size);
                (self.sink)(Action {
                    resume: None,
                    action: delete,
                    key: destination.key.clone(),
                    size: 0,
                    reason: Reason::MissingAtSource,
                    source: None,
                    destination: Some(Fingerprint::from(&destination)),
                    exact_name: false,
                    properties: Vec::new(),
                });
            }
            Decision::Skip { key, size, kind } => {
                let slug = skip_slug(&kind);
                count(&mut plan.by_reason, slug, size);
                let detail = match kind {
                    SkipKind::Listing(reason) => skip_detail(&reason),
                    SkipKind::Twin { side, form } => twin_detail(side, form),
                    SkipKind::PropertiesUnreadable(why) => {
                        format!("{}: {why}", reason_label("properties-unreadable"))
                    }
                    SkipKind::Unchanged
                    | SkipKind::Filtered
                    | SkipKind::OtherShard
                    | SkipKind::Window(_)
                    | SkipKind::Archived
                    | SkipKind::Kept(_) => return,
                };
                plan.skipped.push(NotableSkip { key, slug: slug.to_string(), reason: detail });
            }
            Decision::Verify { .. } | Decision::CheckProperties { .. } => {
                unreachable!("verifications are resolved before they are recorded")
            }
        }
    }
}

/// Every reason an object is counted under: the slug (JSON keys, stable) and the label (for
/// people). Moves first, in [`Reason::ALL`] order, then skips.
pub const REASONS: [(&str, &str); 26] = [
    ("new", "new"),
    ("size-differs", "size differs"),
    ("source-newer", "source newer"),
    ("checksum-differs", "checksum differs"),
    ("checksum-unavailable", "no checksum to compare"),
    ("always", "compare: always"),
    ("missing-at-source", "missing at source"),
    ("properties-differ", "properties differ"),
    ("unchanged", "unchanged"),
    ("properties-unreadable", "unchanged; properties not readable (update_properties)"),
    ("filtered", "filtered"),
    ("other-shard", "in other shards"),
    ("too-recent", "modified too recently (older_than)"),
    ("too-old", "modified too long ago (newer_than)"),
    ("too-small", "under min_size"),
    ("too-large", "over max_size"),
    ("archived", "archived (GLACIER, DEEP_ARCHIVE)"),
    ("kept-existing", "kept at the destination (overwrite: never)"),
    ("destination-newer", "kept: not older at the destination (overwrite: if_newer)"),
    ("directory-marker", "directory marker"),
    ("unsafe-key", "unsafe key"),
    ("symlink", "symlink"),
    ("not-utf8", "not UTF-8"),
    ("unreadable", "unreadable"),
    ("not-a-file", "not a file"),
    ("same-normalized-name", "same name as another key"),
];

/// The label for people of a reason slug.
pub fn reason_label(slug: &str) -> &str {
    REASONS.iter().find(|(s, _)| *s == slug).map_or(slug, |(_, label)| label)
}

/// Whether a reason slug is a move (as opposed to a skip).
pub fn is_move_reason(slug: &str) -> bool {
    Reason::ALL.iter().any(|reason| reason.slug() == slug)
}

fn count(tallies: &mut BTreeMap<String, Tally>, slug: &str, bytes: u64) {
    match tallies.get_mut(slug) {
        Some(tally) => tally.add(bytes),
        None => {
            let mut tally = Tally::default();
            tally.add(bytes);
            tallies.insert(slug.to_string(), tally);
        }
    }
}

/// The reason slug a skip is counted under.
pub fn skip_slug(kind: &SkipKind) -> &'static str {
    match kind {
        SkipKind::Unchanged => "unchanged",
        SkipKind::Filtered => "filtered",
        SkipKind::OtherShard => "other-shard",
        SkipKind::Window(Outside::TooNew) => "too-recent",
        SkipKind::Window(Outside::TooOld) => "too-old",
        SkipKind::Window(Outside::TooSmall) => "too-small",
        SkipKind::Window(Outside::TooLarge) => "too-large",
        SkipKind::Archived => "archived",
        SkipKind::Kept(crate::manifest::Overwrite::IfNewer) => "destination-newer",
        SkipKind::Kept(_) => "kept-existing",
        SkipKind::Listing(reason) => listing_skip_slug(reason),
        SkipKind::Twin { .. } => "same-normalized-name",
        SkipKind::PropertiesUnreadable(_) => "properties-unreadable",
    }
}

/// Why a twin (one of several names with one NFC form) is left alone, for people: the names
/// look alike, so the form says which one this is.
fn twin_detail(side: Side, form: diff::UnicodeForm) -> String {
    let label = reason_label("same-normalized-name");
    let form = form.label();
    match side {
        Side::Source => format!(
            "{label}: this name ({form}) and another one here are the same after Unicode normalization; \
             only one of them is synced (the one the destination has by exact name, else the NFC one)"
        ),
        Side::Destination => format!(
            "{label}: left at the destination ({form}), beside a twin that is synced; the source has this \
             name only in another Unicode form (`delete: true` removes it)"
        ),
    }
}

fn listing_skip_slug(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::DirectoryMarker => "directory-marker",
        SkipReason::UnsafeKey(_) => "unsafe-key",
        SkipReason::Symlink => "symlink",
        SkipReason::NotUtf8 => "not-utf8",
        SkipReason::Unreadable(_) => "unreadable",
        SkipReason::NotAFile => "not-a-file",
        SkipReason::SameNormalizedName => "same-normalized-name",
        // Only on a destination, whose skips are never reported.
        SkipReason::NotLookedUpOrAbsent => "absent",
    }
}

fn skip_detail(reason: &SkipReason) -> String {
    let label = reason_label(listing_skip_slug(reason));
    match reason {
        SkipReason::UnsafeKey(why) => format!("{label}: {why}"),
        SkipReason::Unreadable(why) => format!("{label}: {why}"),
        _ => label.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::manifest::{ByteSize, CompareMode, FilterSummary, S3Target, UploadOptions};

    pub(crate) fn job(direction: Direction, delete: bool, max_delete: Option<u64>) -> Job {
        Job {
            name: "t".into(),
            direction,
            bucket: "b".into(),
            prefix: "p/".into(),
            local: "/tmp/x".into(),
            to: None,
            filter: Filter::everything(),
            filter_summary: FilterSummary::default(),
            compare: CompareMode::SizeMtime,
            delete,
            max_delete,
            target: S3Target {
                profile: None,
                region: None,
                endpoint: None,
                path_style: false,
                request_payer: false,
                retries: 0,
                ca_bundle: None,
                checksum: Default::default(),
            },
            concurrency: crate::manifest::Concurrency::Fixed(1),
            multipart_threshold: ByteSize(8 * ByteSize::MIB),
            part_size: ByteSize(8 * ByteSize::MIB),
            copy_cutoff: ByteSize(5 * ByteSize::GIB),
            upload: UploadOptions::default(),
            follow_symlinks: false,
            bandwidth: None,
            window: Default::default(),
            deadline: None,
            archived: Default::default(),
            overwrite: Default::default(),
            destination: Default::default(),
            inventory: None,
            property_rules: Vec::new(),
            update_properties: false,
        }
    }

    fn entries(keys: &[(&str, u64)]) -> Vec<Item> {
        keys.iter().map(|(k, size)| Item::Entry(Entry::new(k, *size, 10, None))).collect()
    }

    #[test]
    fn totals_by_action_and_reason() {
        let plan = plan_transfer(
            &job(Direction::Download, true, Some(5)),
            entries(&[("a", 10), ("b", 20), ("c", 5)]),
            entries(&[("b", 20), ("c", 6), ("z", 7)]),
            Checks::default(),
            None,
        )
        .unwrap();
        assert_eq!(plan.by_action[&ActionKind::Download], Tally { objects: 2, bytes: 15 });
        assert_eq!(plan.by_action[&ActionKind::DeleteLocal], Tally { objects: 1, bytes: 0 });
        assert_eq!(plan.by_reason["new"], Tally { objects: 1, bytes: 10 });
        assert_eq!(plan.by_reason["size-differs"], Tally { objects: 1, bytes: 5 });
        assert_eq!(plan.by_reason["unchanged"], Tally { objects: 1, bytes: 20 });
        assert_eq!(plan.by_reason["missing-at-source"], Tally { objects: 1, bytes: 7 });
        assert_eq!(
            plan.actions[1].destination,
            Some(Fingerprint {
                size: 6,
                mtime: 0,
                mtime_ms: Some(10),
                etag: None,
                stored_key: None,
                written_by: None,
                archived: false
            })
        );
    }

    /// Says "same" for keys starting with `same`, "differs" for `diff`, else unavailable.
    struct ByName(std::cell::Cell<usize>);

    impl ContentCheck for ByName {
        fn compare(&self, pairs: &[(&Entry, &Entry)]) -> Vec<ContentVerdict> {
            self.0.set(self.0.get() + 1);
            pairs
                .iter()
                .map(|(source, _)| match &source.key {
                    key if key.starts_with("same") => ContentVerdict::Same,
                    key if key.starts_with("diff") => ContentVerdict::Differs,
                    _ => ContentVerdict::Unavailable,
                })
                .collect()
        }
    }

    #[test]
    fn checksum_verdicts_become_reasons_in_key_order_in_batches() {
        let mut job = job(Direction::Upload, false, None);
        job.compare = CompareMode::Checksum;
        let mut keys: Vec<String> = (0..600).map(|i| format!("same{i:04}")).collect();
        keys.extend(["diff".to_string(), "new".to_string(), "other".to_string(), "sized".to_string()]);
        keys.sort();
        let source: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 5)).collect();
        let destination: Vec<(&str, u64)> =
            keys.iter().filter(|k| *k != "new").map(|k| (k.as_str(), if k == "sized" { 6 } else { 5 })).collect();
        let check = ByName(std::cell::Cell::new(0));
        let plan =
            plan_transfer(&job, entries(&source), entries(&destination), Checks::content(Some(&check)), None).unwrap();
        let moved: Vec<(&str, Reason)> = plan.actions.iter().map(|a| (a.key.as_str(), a.reason)).collect();
        assert_eq!(
            moved,
            vec![
                ("diff", Reason::ChecksumDiffers),
                ("new", Reason::New),
                ("other", Reason::ChecksumUnavailable),
                ("sized", Reason::SizeDiffers),
            ]
        );
        assert_eq!(plan.by_reason["unchanged"].objects, 600);
        // 602 pairs to verify in batches of 256: three calls.
        assert_eq!(check.0.get(), 3);
    }

    /// Says the properties differ for keys with `tagged` in them, cannot be read for `locked`.
    struct PropertiesByName(std::cell::RefCell<Vec<String>>);

    impl PropertyCheck for PropertiesByName {
        fn compare(&self, objects: &[&Entry]) -> Vec<PropertyVerdict> {
            self.0.borrow_mut().extend(objects.iter().map(|entry| entry.key.clone()));
            objects
                .iter()
                .map(|entry| match &entry.key {
                    key if key.contains("tagged") => PropertyVerdict::Differs(vec!["tags".into()]),
                    key if key.contains("locked") => PropertyVerdict::Unreadable("AccessDenied".into()),
                    _ => PropertyVerdict::Same,
                })
                .collect()
        }
    }

    #[test]
    fn unchanged_objects_whose_properties_differ_are_updated_in_place() {
        let mut job = job(Direction::Upload, false, None);
        job.update_properties = true;
        let source = [("a-same", 5), ("locked", 5), ("new", 5), ("sized", 5), ("tagged", 5)];
        let destination = [("a-same", 5), ("locked", 5), ("sized", 6), ("tagged", 5)];
        let check = PropertiesByName(Default::default());
        let checks = Checks { content: None, properties: Some(&check) };
        let plan = plan_transfer(&job, entries(&source), entries(&destination), checks, None).unwrap();
        let actions: Vec<(&str, ActionKind, Reason, &[String])> =
            plan.actions.iter().map(|a| (a.key.as_str(), a.action, a.reason, a.properties.as_slice())).collect();
        let tags = ["tags".to_string()];
        assert_eq!(
            actions,
            vec![
                ("new", ActionKind::Upload, Reason::New, &[][..]),
                ("sized", ActionKind::Upload, Reason::SizeDiffers, &[][..]),
                ("tagged", ActionKind::UpdateProperties, Reason::PropertiesDiffer, &tags[..]),
            ]
        );
        // Only the pairs `compare` found unchanged are read, and nothing moves for an update.
        assert_eq!(*check.0.borrow(), ["a-same", "locked", "tagged"]);
        assert_eq!(plan.by_action[&ActionKind::UpdateProperties], Tally { objects: 1, bytes: 0 });
        assert_eq!(plan.actions[2].size, 0);
        assert_eq!(plan.by_reason["properties-differ"], Tally { objects: 1, bytes: 5 });
        assert_eq!(plan.by_reason["unchanged"].objects, 1);
        assert_eq!(plan.by_reason["properties-unreadable"].objects, 1);
        assert_eq!(plan.skipped[0].key, "locked");
        assert!(plan.skipped[0].reason.ends_with("AccessDenied"), "{}", plan.skipped[0].reason);

        // Without `update_properties` nothing is read.
        job.update_properties = false;
        let check = PropertiesByName(Default::default());
        let checks = Checks { content: None, properties: Some(&check) };
        let plan = plan_transfer(&job, entries(&source), entries(&destination), checks, None).unwrap();
        assert!(check.0.borrow().is_empty());
        assert_eq!(plan.by_reason["unchanged"].objects, 3);
    }

    #[test]
    fn under_checksum_only_the_same_content_is_checked_for_properties() {
        let mut job = job(Direction::Upload, false, None);
        job.compare = CompareMode::Checksum;
        job.update_properties = true;
        let keys = [("diff-tagged", 5), ("same-tagged", 5), ("same-x", 5)];
        let check = ByName(std::cell::Cell::new(0));
        let properties = PropertiesByName(Default::default());
        let checks = Checks { content: Some(&check), properties: Some(&properties) };
        let plan = plan_transfer(&job, entries(&keys), entries(&keys), checks, None).unwrap();
        let actions: Vec<(&str, ActionKind)> = plan.actions.iter().map(|a| (a.key.as_str(), a.action)).collect();
        assert_eq!(actions, vec![("diff-tagged", ActionKind::Upload), ("same-tagged", ActionKind::UpdateProperties)]);
        assert_eq!(*properties.0.borrow(), ["same-tagged", "same-x"]);
    }

    #[test]
    fn a_cap_too_low_for_the_deadline_is_a_shortfall() {
        let mut job = job(Direction::Upload, false, None);
        let start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000);
        let hour =
            Some(crate::manifest::Deadline { wall: None, max_duration: Some(std::time::Duration::from_secs(3600)) });
        // No cap, or no deadline: nothing to say.
        job.deadline = hour.clone();
        assert_eq!(DeadlineShortfall::of(&job, 10 << 30, start), None);
        job.deadline = None;
        job.bandwidth = Some(1 << 20);
        assert_eq!(DeadlineShortfall::of(&job, 10 << 30, start), None);
        // 1 MiB/s moves 3,600 MiB in the hour: 3,600 MiB fit, one byte more does not.
        job.deadline = hour;
        assert_eq!(DeadlineShortfall::of(&job, 3600 << 20, start), None);
        let short = DeadlineShortfall::of(&job, (10 << 30) + 1, start).unwrap();
        assert_eq!((short.needed_seconds, short.available_seconds), (10 * 1024 + 1, 3600));
        assert_eq!(short.deadline, "2026-11-30T01:53:20Z");
        let said = short.describe();
        assert!(said.contains("the 10.0 GiB to move take 2h 50m"), "{said}");
        assert!(said.contains("is 1h away"), "{said}");
    }

    #[test]
    fn every_reason_has_one_slug_and_label() {
        for reason in Reason::ALL {
            assert_eq!(reason_label(reason.slug()), reason.label());
            // The slug is also how the reason serializes in an action.
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.slug());
        }
        let slugs: std::collections::BTreeSet<_> = REASONS.iter().map(|(slug, _)| slug).collect();
        assert_eq!(slugs.len(), REASONS.len());
    }

    #[test]
    fn too_many_deletes_stops_the_transfer() {
        let err = plan_transfer(
            &job(Direction::Upload, true, Some(1)),
            entries(&[]),
            entries(&[("x", 1), ("y", 1)]),
            Checks::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "transfer `t` would delete 2 objects, more than its `max_delete: 1`");
        assert!(
            plan_transfer(
                &job(Direction::Upload, true, Some(2)),
                entries(&[]),
                entries(&[("x", 1), ("y", 1)]),
                Checks::default(),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn shards_split_a_plan_into_disjoint_parts_that_add_up_to_it() {
        let job = job(Direction::Upload, true, None);
        let names: Vec<String> = (0..300).map(|i| format!("k{i:03}")).collect();
        // Sources: every name; destinations: every third (some unchanged, some stale) plus
        // names the source no longer has (deletes).
        let source: Vec<(&str, u64)> = names.iter().map(|k| (k.as_str(), 1)).collect();
        let mut destination: Vec<(String, u64)> =
            names.iter().step_by(3).enumerate().map(|(i, k)| (k.clone(), 1 + (i % 2) as u64)).collect();
        destination.extend((0..40).map(|i| (format!("z{i:02}"), 1)));
        let destination: Vec<(&str, u64)> = destination.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        let whole = plan_transfer(&job, entries(&source), entries(&destination), Checks::default(), None).unwrap();
        let whole_actions: BTreeMap<String, ActionKind> =
            whole.actions.iter().map(|a| (a.key.clone(), a.action)).collect();
        assert!(whole.deletes() == 40 && whole.actions.len() > 200, "{}", whole.actions.len());
        let mut union = BTreeMap::new();
        let mut unchanged = 0;
        for index in 0..3 {
            let shard = Shard::new(index, 3).unwrap();
            let part =
                plan_transfer(&job, entries(&source), entries(&destination), Checks::default(), Some(shard)).unwrap();
            for action in &part.actions {
                assert!(shard.owns("t", &action.key), "{} is not shard {shard}'s", action.key);
                assert!(union.insert(action.key.clone(), action.action).is_none(), "{} planned twice", action.key);
            }
            unchanged += part.by_reason.get("unchanged").map_or(0, |t| t.objects);
            // Every source key is counted once: moved or skipped here, or in another shard.
            let counted: u64 =
                part.by_reason.iter().filter(|(slug, _)| *slug != "missing-at-source").map(|(_, t)| t.objects).sum();
            assert_eq!(counted, 300);
            assert_eq!(part.shard, Some(shard));
        }
        assert_eq!(union, whole_actions);
        assert_eq!(unchanged, whole.by_reason["unchanged"].objects);
    }
}
