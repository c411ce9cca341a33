//! The plan stage: what each transfer would move, delete and skip, and why. Pure: it takes
//! listings as streams and never talks to S3 or the disk itself.

pub mod diff;
pub mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

pub use diff::{Decision, DiffRules, Reason, SkipKind};

use crate::listing::{Entry, Item, SkipReason};
use crate::manifest::{Direction, Job};

/// What one action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Upload,
    Download,
    /// Remove an object from the bucket (an upload with `delete: true`).
    DeleteRemote,
    /// Remove a local file (a download with `delete: true`).
    DeleteLocal,
}

impl ActionKind {
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Upload => "upload",
            ActionKind::Download => "download",
            ActionKind::DeleteRemote => "delete (remote)",
            ActionKind::DeleteLocal => "delete (local)",
        }
    }
}

/// The state of one side of an object that the plan relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl From<&Entry> for Fingerprint {
    fn from(entry: &Entry) -> Self {
        Fingerprint { size: entry.size, mtime: entry.mtime, etag: entry.etag.clone() }
    }
}

/// One thing the executor will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub action: ActionKind,
    /// Relative to the transfer's root (NFC).
    pub key: String,
    /// The source's stored name when it differs from `key` (an NFD name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    /// Bytes to move (0 for a delete).
    pub size: u64,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Fingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Fingerprint>,
}

/// A skip worth listing (unchanged and filtered objects are only counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotableSkip {
    pub key: String,
    pub reason: String,
}

/// Objects and bytes under one heading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub objects: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }
}

/// One transfer's plan.
#[derive(Debug, Clone, Serialize)]
pub struct TransferPlan {
    pub name: String,
    pub direction: Direction,
    pub bucket: String,
    pub prefix: String,
    pub local: PathBuf,
    pub actions: Vec<Action>,
    pub skipped: Vec<NotableSkip>,
    /// Per action kind (`upload`, `download`, `delete (local)`, ...).
    pub by_action: BTreeMap<&'static str, Tally>,
    /// Per reason, moves and skips alike (`new`, `unchanged`, `filtered`, `unsafe key`, ...).
    pub by_reason: BTreeMap<&'static str, Tally>,
}

impl TransferPlan {
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    pub fn deletes(&self) -> u64 {
        self.actions.iter().filter(|a| matches!(a.action, ActionKind::DeleteLocal | ActionKind::DeleteRemote)).count()
            as u64
    }
}

/// Why a transfer could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("transfer `{transfer}` would delete {count} objects, more than its `max_delete: {cap}`")]
    TooManyDeletes { transfer: String, count: u64, cap: u64 },
}

/// Builds a transfer's plan from its source and destination listings (each in key order).
pub fn plan_transfer(
    job: &Job,
    source: impl IntoIterator<Item = Item>,
    destination: impl IntoIterator<Item = Item>,
) -> Result<TransferPlan, PlanError> {
    let (copy, delete) = match job.direction {
        Direction::Download => (ActionKind::Download, ActionKind::DeleteLocal),
        Direction::Upload => (ActionKind::Upload, ActionKind::DeleteRemote),
    };
    let mut plan = TransferPlan {
        name: job.name.clone(),
        direction: job.direction,
        bucket: job.bucket.clone(),
        prefix: job.prefix.clone(),
        local: job.local.clone(),
        actions: Vec::new(),
        skipped: Vec::new(),
        by_action: BTreeMap::new(),
        by_reason: BTreeMap::new(),
    };
    let rules = DiffRules { compare: job.compare, delete: job.delete, filter: &job.filter };
    for decision in diff::diff(source, destination, rules) {
        match decision {
            Decision::Copy { source, destination, reason } => {
                plan.by_action.entry(copy.label()).or_default().add(source.size);
                plan.by_reason.entry(reason.label()).or_default().add(source.size);
                plan.actions.push(Action {
                    action: copy,
                    key: source.key.clone(),
                    source_key: source.stored_key.clone(),
                    size: source.size,
                    reason,
                    source: Some(Fingerprint::from(&source)),
                    destination: destination.as_ref().map(Fingerprint::from),
                });
            }
            Decision::Delete { destination } => {
                plan.by_action.entry(delete.label()).or_default().add(0);
                plan.by_reason.entry(Reason::MissingAtSource.label()).or_default().add(destination.size);
                plan.actions.push(Action {
                    action: delete,
                    key: destination.key.clone(),
                    source_key: None,
                    size: 0,
                    reason: Reason::MissingAtSource,
                    source: None,
                    destination: Some(Fingerprint::from(&destination)),
                });
            }
            Decision::Skip { key, size, kind } => {
                let label = skip_label(&kind);
                plan.by_reason.entry(label).or_default().add(size);
                if let SkipKind::Listing(reason) = kind {
                    plan.skipped.push(NotableSkip { key, reason: skip_detail(&reason) });
                }
            }
        }
    }
    if let Some(cap) = job.max_delete.filter(|_| job.delete) {
        let count = plan.deletes();
        if count > cap {
            return Err(PlanError::TooManyDeletes { transfer: job.name.clone(), count, cap });
        }
    }
    Ok(plan)
}

/// The reason label a skip is counted under.
pub fn skip_label(kind: &SkipKind) -> &'static str {
    match kind {
        SkipKind::Unchanged => "unchanged",
        SkipKind::Filtered => "filtered",
        SkipKind::Listing(reason) => listing_skip_label(reason),
    }
}

fn listing_skip_label(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::DirectoryMarker => "directory marker",
        SkipReason::UnsafeKey(_) => "unsafe key",
        SkipReason::Symlink => "symlink",
        SkipReason::NotUtf8 => "not UTF-8",
        SkipReason::Unreadable(_) => "unreadable",
        SkipReason::NotAFile => "not a file",
        SkipReason::SameNormalizedName => "same name as another key",
    }
}

fn skip_detail(reason: &SkipReason) -> String {
    let label = listing_skip_label(reason);
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

    fn job(direction: Direction, delete: bool, max_delete: Option<u64>) -> Job {
        Job {
            name: "t".into(),
            direction,
            bucket: "b".into(),
            prefix: "p/".into(),
            local: "/tmp/x".into(),
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
            },
            concurrency: 1,
            multipart_threshold: ByteSize(8 * ByteSize::MIB),
            part_size: ByteSize(8 * ByteSize::MIB),
            upload: UploadOptions::default(),
            follow_symlinks: false,
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
        )
        .unwrap();
        assert_eq!(plan.by_action["download"], Tally { objects: 2, bytes: 15 });
        assert_eq!(plan.by_action["delete (local)"], Tally { objects: 1, bytes: 0 });
        assert_eq!(plan.by_reason["new"], Tally { objects: 1, bytes: 10 });
        assert_eq!(plan.by_reason["size differs"], Tally { objects: 1, bytes: 5 });
        assert_eq!(plan.by_reason["unchanged"], Tally { objects: 1, bytes: 20 });
        assert_eq!(plan.by_reason["missing at source"], Tally { objects: 1, bytes: 7 });
        assert_eq!(plan.actions[1].destination, Some(Fingerprint { size: 6, mtime: 10, etag: None }));
    }

    #[test]
    fn too_many_deletes_stops_the_transfer() {
        let err = plan_transfer(&job(Direction::Upload, true, Some(1)), entries(&[]), entries(&[("x", 1), ("y", 1)]))
            .unwrap_err();
        assert_eq!(err.to_string(), "transfer `t` would delete 2 objects, more than its `max_delete: 1`");
        assert!(
            plan_transfer(&job(Direction::Upload, true, Some(2)), entries(&[]), entries(&[("x", 1), ("y", 1)])).is_ok()
        );
    }
}
