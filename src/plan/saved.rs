//! The plan document: what `plan --output json` prints and `plan -o FILE` saves, and the
//! staleness check `apply FILE` runs before it writes anything.
//!
//! A saved plan names its manifest (path and SHA-256 of its bytes) and carries, for every
//! action, the fingerprints of both sides it relied on. Applying it re-lists both sides and
//! compares: an object that changed since the plan was made is stale, and nothing is written.

use std::iter::Peekable;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Fingerprint, TransferPlan};
use crate::listing::{Entry, Item};

/// Marks a JSON file as a haul plan (so `apply` can tell it from a manifest).
pub const PLAN_FORMAT: &str = "haul-plan";
/// Version of the document's shape; bumped only when a field changes meaning or goes away.
pub const PLAN_VERSION: u32 = 1;

/// The manifest a plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    /// Absolute path, so a plan applied from another folder finds it.
    pub path: PathBuf,
    /// SHA-256 of the manifest's bytes, lowercase hex.
    pub sha256: String,
}

impl ManifestRef {
    pub fn new(path: PathBuf, text: &str) -> Self {
        ManifestRef { path, sha256: sha256_hex(text.as_bytes()) }
    }
}

/// One plan for a whole manifest (or the `--only` transfers of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format: String,
    pub version: u32,
    pub manifest: ManifestRef,
    /// Seconds since the epoch when the plan was made.
    pub created: i64,
    /// True when any transfer has an action.
    pub changes: bool,
    /// The shard the plan covers (`plan --shard`); `apply` runs it as that shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    pub transfers: Vec<TransferPlan>,
}

impl PlanDocument {
    /// `created` is when planning started (seconds since the epoch, [`now_seconds`]).
    pub fn new(
        manifest: ManifestRef,
        created: i64,
        transfers: Vec<TransferPlan>,
        shard: Option<crate::shard::Shard>,
    ) -> Self {
        PlanDocument {
            format: PLAN_FORMAT.into(),
            version: PLAN_VERSION,
            manifest,
            created,
            changes: transfers.iter().any(TransferPlan::has_changes),
            shard,
            transfers,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plans serialize")
    }

    /// Reads a plan document; `Ok(None)` when the text is not one (such as a YAML manifest).
    pub fn from_json(text: &str) -> Result<Option<PlanDocument>, PlanFileError> {
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let Ok(header) = serde_json::from_str::<Header>(text) else { return Ok(None) };
        if header.format.as_deref() != Some(PLAN_FORMAT) {
            return Ok(None);
        }
        match header.version {
            Some(PLAN_VERSION) => {}
            found => return Err(PlanFileError::Version { found }),
        }
        serde_json::from_str(text).map(Some).map_err(|err| PlanFileError::Malformed(err.to_string()))
    }
}

/// Why a file that says it is a plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("plan format version {} is not supported (this haul reads version {PLAN_VERSION})", found.map_or("(none)".to_string(), |v| v.to_string()))]
    Version { found: Option<u32> },
    #[error("the plan file is damaged: {0}")]
    Malformed(String),
}

/// Which side of an action changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Destination,
}

/// An object that is no longer as the plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleObject {
    pub transfer: String,
    pub key: String,
    pub side: Side,
    /// What the plan saw (`None`: it was absent).
    pub planned: Option<Fingerprint>,
    /// What is there now (`None`: it is gone).
    pub now: Option<Fingerprint>,
}

impl TransferPlan {
    /// The plan's objects whose source or destination differs from the current listings
    /// (each in key order, as the listing stage yields them). A merge join over the plan's
    /// actions, which are in key order: one item of each listing in memory at a time.
    pub fn stale_objects(
        &self,
        source: impl IntoIterator<Item = Item>,
        destination: impl IntoIterator<Item = Item>,
    ) -> Vec<StaleObject> {
        let mut source = Cursor::new(source.into_iter());
        let mut destination = Cursor::new(destination.into_iter());
        let mut stale = Vec::new();
        for action in &self.actions {
            let sides = [
                (Side::Source, &action.source, source.find(&action.key, action.source_name())),
                (Side::Destination, &action.destination, destination.find(&action.key, action.destination_name())),
            ];
            for (side, planned, current) in sides {
                let now = current.as_ref().map(Fingerprint::from);
                if !same_state(planned.as_ref(), now.as_ref()) {
                    stale.push(StaleObject {
                        transfer: self.name.clone(),
                        key: action.key.clone(),
                        side,
                        planned: planned.clone(),
                        now,
                    });
                }
            }
        }
        stale
    }
}

/// Equal size and mtime, and equal ETags where both sides have one (a local file has none).
fn same_state(planned: Option<&Fingerprint>, now: Option<&Fingerprint>) -> bool {
    match (planned, now) {
        (None, None) => true,
        (Some(planned), Some(now)) => {
            planned.size == now.size
                && match (planned.mtime_ms, now.mtime_ms) {
                    (Some(a), Some(b)) => a == b,
                    // A plan from before milliseconds were compared.
                    _ => planned.mtime == now.mtime,
                }
                && match (&planned.etag, &now.etag) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        }
        _ => false,
    }
}

/// Walks a key-ordered listing forward to a key.
/// A listing read forward to the keys the plan's actions name (in key order), holding the
/// entries of one key at a time: its twins, told apart by their stored names.
struct Cursor<I: Iterator<Item = Item>> {
    items: Peekable<I>,
    key: Option<String>,
    group: Vec<Entry>,
}

impl<I: Iterator<Item = Item>> Cursor<I> {
    fn new(items: I) -> Self {
        Cursor { items: items.peekable(), key: None, group: Vec::new() }
    }

    /// The entry stored as `stored` among those keyed `key`. Keys must not go backwards.
    fn find(&mut self, key: &str, stored: &str) -> Option<Entry> {
        if self.key.as_deref() != Some(key) {
            self.group.clear();
            while let Some(item) = self.items.peek() {
                match item {
                    Item::Skipped(_) => {}
                    Item::Entry(entry) if entry.key.as_str() < key => {}
                    Item::Entry(entry) if entry.key == key => {
                        let Some(Item::Entry(entry)) = self.items.next() else { unreachable!() };
                        self.group.push(entry);
                        continue;
                    }
                    Item::Entry(_) => break,
                }
                self.items.next();
            }
            self.key = Some(key.to_string());
        }
        self.group.iter().find(|entry| entry.stored() == stored).cloned()
    }
}

/// Seconds since the epoch, now.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::text::hex(&sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, ActionKind, Reason};

    fn fp(size: u64, mtime_ms: i64, etag: Option<&str>) -> Fingerprint {
        Fingerprint {
            size,
            mtime: mtime_ms.div_euclid(1000),
            mtime_ms: Some(mtime_ms),
            etag: etag.map(str::to_string),
            stored_key: None,
            written_by: None,
        }
    }

    fn action(key: &str, source: Option<Fingerprint>, destination: Option<Fingerprint>) -> Action {
        Action {
            resume: None,
            action: if source.is_some() { ActionKind::Download } else { ActionKind::DeleteLocal },
            key: key.into(),
            size: source.as_ref().map_or(0, |s| s.size),
            reason: if destination.is_none() { Reason::New } else { Reason::SizeDiffers },
            source,
            destination,
        }
    }

    fn plan(actions: Vec<Action>) -> TransferPlan {
        TransferPlan {
            name: "t".into(),
            direction: crate::manifest::Direction::Download,
            bucket: "b".into(),
            prefix: "p/".into(),
            local: "/tmp/l".into(),
            actions,
            skipped: vec![],
            temp_files: vec![],
            by_action: Default::default(),
            by_reason: Default::default(),
            shard: None,
            unfinished_uploads: vec![],
            to: None,
            copy_method: None,
        }
    }

    fn listing(entries: &[(&str, u64, i64, Option<&str>)]) -> Vec<Item> {
        entries
            .iter()
            .map(|(key, size, mtime, etag)| Item::Entry(Entry::new(key, *size, *mtime, etag.map(str::to_string))))
            .collect()
    }

    #[test]
    fn unchanged_sides_are_not_stale() {
        let plan = plan(vec![
            action("a", Some(fp(1, 10, Some("e1"))), None),
            action("b", Some(fp(2, 10, Some("e2"))), Some(fp(3, 5, None))),
            action("c", None, Some(fp(4, 5, None))),
        ]);
        let source = listing(&[("a", 1, 10, Some("e1")), ("a0", 9, 9, None), ("b", 2, 10, Some("e2"))]);
        let destination = listing(&[("b", 3, 5, None), ("c", 4, 5, None), ("d", 1, 1, None)]);
        assert_eq!(plan.stale_objects(source, destination), vec![]);
    }

    #[test]
    fn every_kind_of_change_is_stale() {
        // In key order, as a plan's actions are.
        let plan = plan(vec![
            action("appeared", Some(fp(1, 10, None)), None),
            action("etag", Some(fp(1, 10, Some("old"))), None),
            action("gone", Some(fp(1, 10, None)), None),
            action("mtime", Some(fp(1, 10, None)), Some(fp(2, 5, None))),
            action("removed", None, Some(fp(4, 5, None))),
        ]);
        let source = listing(&[("appeared", 1, 10, None), ("etag", 1, 10, Some("new")), ("mtime", 1, 10, None)]);
        let destination = listing(&[("appeared", 7, 7, None), ("mtime", 2, 6, None)]);
        let stale: Vec<(String, Side)> =
            plan.stale_objects(source, destination).into_iter().map(|s| (s.key, s.side)).collect();
        assert_eq!(
            stale,
            vec![
                ("appeared".to_string(), Side::Destination),
                ("etag".to_string(), Side::Source),
                ("gone".to_string(), Side::Source),
                ("mtime".to_string(), Side::Destination),
                ("removed".to_string(), Side::Destination),
            ]
        );
    }

    #[test]
    fn documents_round_trip_and_are_recognized() {
        let doc = PlanDocument::new(
            ManifestRef::new("/m.yaml".into(), "version: 1\n"),
            now_seconds(),
            vec![plan(vec![action("매출.csv", Some(fp(1, 10, Some("e"))), None)])],
            None,
        );
        assert_eq!(doc.manifest.sha256.len(), 64);
        let back = PlanDocument::from_json(&doc.to_json()).unwrap().expect("a plan");
        assert_eq!(back.transfers[0].actions, doc.transfers[0].actions);
        assert_eq!(back.manifest, doc.manifest);
        assert!(back.changes);
        assert!(PlanDocument::from_json("version: 1\ntransfers: []\n").unwrap().is_none());
        assert!(PlanDocument::from_json("{\"version\": 1}").unwrap().is_none());
        let future = doc.to_json().replace("\"version\": 1", "\"version\": 99");
        assert!(matches!(PlanDocument::from_json(&future), Err(PlanFileError::Version { found: Some(99) })));
    }
}
