//! The pure diff: two key-ordered streams in, one decision per key out. No I/O, no map of
//! either listing: a merge join that holds one item of each side at a time.

use std::cmp::Ordering;
use std::iter::Peekable;

use crate::filter::Filter;
use crate::listing::{Entry, Item, SkipReason};
use crate::manifest::CompareMode;
use crate::shard::Shard;

/// Why an object moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The destination does not have it.
    New,
    SizeDiffers,
    /// Same size, but the source was modified after the destination.
    SourceNewer,
    ChecksumDiffers,
    /// `compare: checksum`, same size, but one side has no checksum haul can compare (an
    /// object from another tool with a multipart ETag, say): copied to be sure.
    ChecksumUnavailable,
    /// `compare: always`.
    Always,
    /// The source no longer has it (`delete: true`).
    MissingAtSource,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::New,
        Reason::SizeDiffers,
        Reason::SourceNewer,
        Reason::ChecksumDiffers,
        Reason::ChecksumUnavailable,
        Reason::Always,
        Reason::MissingAtSource,
    ];

    /// The stable name in JSON (also how it serializes).
    pub fn slug(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::SizeDiffers => "size-differs",
            Reason::SourceNewer => "source-newer",
            Reason::ChecksumDiffers => "checksum-differs",
            Reason::ChecksumUnavailable => "checksum-unavailable",
            Reason::Always => "always",
            Reason::MissingAtSource => "missing-at-source",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::SizeDiffers => "size differs",
            Reason::SourceNewer => "source newer",
            Reason::ChecksumDiffers => "checksum differs",
            Reason::ChecksumUnavailable => "no checksum to compare",
            Reason::Always => "compare: always",
            Reason::MissingAtSource => "missing at source",
        }
    }
}

/// Why an object stays where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipKind {
    Unchanged,
    Filtered,
    /// Another shard's key (`--shard`): that copy of haul moves it.
    OtherShard,
    /// Seen by a listing and left out there (marker, unsafe key, symlink, ...).
    Listing(SkipReason),
}

/// What to do with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Copy the source entry to the destination.
    Copy { source: Entry, destination: Option<Entry>, reason: Reason },
    /// Remove the destination entry.
    Delete { destination: Entry },
    /// Leave it; `size` counts the source's bytes where there is one.
    Skip { key: String, size: u64, kind: SkipKind },
    /// Same size under `compare: checksum`: the content decides, which takes reading both
    /// sides (the caller's job; this module does no I/O).
    Verify { source: Entry, destination: Entry },
}

/// How to compare a pair that exists on both sides.
#[derive(Debug, Clone, Copy)]
pub struct DiffRules<'a> {
    pub compare: CompareMode,
    pub delete: bool,
    pub filter: &'a Filter,
    /// Under `--shard`, only the keys this shard owns (by transfer name and key) are copied,
    /// deleted or counted; the others are counted once, as `other-shard`.
    pub shard: Option<(&'a str, Shard)>,
}

impl DiffRules<'_> {
    fn owns(&self, key: &str) -> bool {
        self.shard.is_none_or(|(transfer, shard)| shard.owns(transfer, key))
    }
}

/// Merges `source` and `destination` (each in key order) into decisions, in key order.
pub fn diff<'a, S, D>(source: S, destination: D, rules: DiffRules<'a>) -> Diff<'a, S::IntoIter, D::IntoIter>
where
    S: IntoIterator<Item = Item>,
    D: IntoIterator<Item = Item>,
{
    Diff { source: source.into_iter().peekable(), destination: destination.into_iter().peekable(), rules }
}

/// The iterator `diff` returns.
pub struct Diff<'a, S: Iterator<Item = Item>, D: Iterator<Item = Item>> {
    source: Peekable<S>,
    destination: Peekable<D>,
    rules: DiffRules<'a>,
}

impl<S: Iterator<Item = Item>, D: Iterator<Item = Item>> Iterator for Diff<'_, S, D> {
    type Item = Decision;

    fn next(&mut self) -> Option<Decision> {
        loop {
            // Items a listing skipped, and destination entries outside the filter, never
            // join: report the source's, pass over the destination's (never deleted).
            if let Some(Item::Skipped(_)) = self.source.peek() {
                let Some(Item::Skipped(skipped)) = self.source.next() else { unreachable!() };
                let kind = if self.rules.owns(&skipped.key) {
                    SkipKind::Listing(skipped.reason)
                } else {
                    SkipKind::OtherShard
                };
                return Some(Decision::Skip { key: skipped.key, size: 0, kind });
            }
            match self.destination.peek() {
                Some(Item::Skipped(_)) => {
                    self.destination.next();
                    continue;
                }
                // Another shard's key is never this shard's to delete.
                Some(Item::Entry(entry))
                    if !self.rules.filter.is_included(&entry.key) || !self.rules.owns(&entry.key) =>
                {
                    self.destination.next();
                    continue;
                }
                _ => {}
            }
            let order = match (self.source.peek(), self.destination.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Item::Entry(s)), Some(Item::Entry(d))) => s.key.cmp(&d.key),
                _ => unreachable!("skipped items were taken above"),
            };
            let source = (order != Ordering::Greater).then(|| self.take_source());
            let destination = (order != Ordering::Less).then(|| self.take_destination());
            if let Some(decision) = self.decide(source, destination) {
                return Some(decision);
            }
        }
    }
}

impl<S: Iterator<Item = Item>, D: Iterator<Item = Item>> Diff<'_, S, D> {
    fn take_source(&mut self) -> Entry {
        match self.source.next() {
            Some(Item::Entry(entry)) => entry,
            _ => unreachable!("peeked an entry"),
        }
    }

    fn take_destination(&mut self) -> Entry {
        match self.destination.next() {
            Some(Item::Entry(entry)) => entry,
            _ => unreachable!("peeked an entry"),
        }
    }

    fn decide(&self, source: Option<Entry>, destination: Option<Entry>) -> Option<Decision> {
        match (source, destination) {
            // The shard comes first, so each key is counted by exactly one shard.
            (Some(source), destination) if !self.rules.owns(&source.key) => {
                drop(destination);
                Some(Decision::Skip { key: source.key, size: source.size, kind: SkipKind::OtherShard })
            }
            (Some(source), destination) if !self.rules.filter.is_included(&source.key) => {
                drop(destination);
                Some(Decision::Skip { key: source.key, size: source.size, kind: SkipKind::Filtered })
            }
            (Some(source), None) => Some(Decision::Copy { source, destination: None, reason: Reason::New }),
            (Some(source), Some(destination)) => match compare(&source, &destination, self.rules.compare) {
                Some(reason) => Some(Decision::Copy { source, destination: Some(destination), reason }),
                None if self.rules.compare == CompareMode::Checksum => Some(Decision::Verify { source, destination }),
                None => Some(Decision::Skip { key: source.key, size: source.size, kind: SkipKind::Unchanged }),
            },
            (None, Some(destination)) => self.rules.delete.then_some(Decision::Delete { destination }),
            (None, None) => None,
        }
    }
}

/// Why `source` must be copied over `destination`, or `None` when it is unchanged.
///
/// `size-mtime` is what `aws s3 sync` does: a copy sets the destination's time to at least
/// the source's (downloads set the file's mtime to LastModified; an upload's LastModified is
/// the upload time), so only a later change to the source makes it newer again.
pub fn compare(source: &Entry, destination: &Entry, mode: CompareMode) -> Option<Reason> {
    match mode {
        CompareMode::Always => Some(Reason::Always),
        _ if source.size != destination.size => Some(Reason::SizeDiffers),
        CompareMode::SizeMtime if source.mtime > destination.mtime => Some(Reason::SourceNewer),
        CompareMode::SizeMtime | CompareMode::Size => None,
        // Same size: the content decides (`Decision::Verify`).
        CompareMode::Checksum => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::{Skipped, UnsafeKey};

    fn entry(key: &str, size: u64, mtime: i64) -> Item {
        Item::Entry(Entry::new(key, size, mtime, None))
    }

    fn rules(filter: &Filter, compare: CompareMode, delete: bool) -> DiffRules<'_> {
        DiffRules { compare, delete, filter, shard: None }
    }

    fn summarize(decisions: Vec<Decision>) -> Vec<String> {
        decisions
            .into_iter()
            .map(|d| match d {
                Decision::Copy { source, reason, .. } => format!("copy {} ({})", source.key, reason.label()),
                Decision::Delete { destination } => format!("delete {}", destination.key),
                Decision::Skip { key, kind, .. } => format!("skip {key} ({kind:?})"),
                Decision::Verify { source, .. } => format!("verify {}", source.key),
            })
            .collect()
    }

    #[test]
    fn checksum_mode_verifies_only_pairs_of_equal_size() {
        let everything = Filter::everything();
        let source = vec![entry("a", 5, 100), entry("b", 5, 100), entry("c", 1, 1)];
        let destination = vec![entry("a", 6, 100), entry("b", 5, 900)];
        let got = summarize(diff(source, destination, rules(&everything, CompareMode::Checksum, false)).collect());
        assert_eq!(got, vec!["copy a (size differs)", "verify b", "copy c (new)"]);
    }

    #[test]
    fn every_reason() {
        let everything = Filter::everything();
        let source = vec![
            entry("changed-size", 10, 100),
            entry("newer", 5, 200),
            entry("new", 1, 100),
            entry("older", 5, 50),
            entry("same", 5, 100),
        ];
        let destination = vec![
            entry("changed-size", 11, 100),
            entry("gone", 3, 100),
            entry("newer", 5, 100),
            entry("older", 5, 100),
            entry("same", 5, 100),
        ];
        let got = summarize(
            diff(source.clone(), destination.clone(), rules(&everything, CompareMode::SizeMtime, true)).collect(),
        );
        assert_eq!(
            got,
            vec![
                "copy changed-size (size differs)",
                "delete gone",
                "copy newer (source newer)",
                "copy new (new)",
                "skip older (Unchanged)",
                "skip same (Unchanged)",
            ]
        );
        let by_size = summarize(
            diff(source.clone(), destination.clone(), rules(&everything, CompareMode::Size, false)).collect(),
        );
        assert_eq!(
            by_size,
            vec![
                "copy changed-size (size differs)",
                "skip newer (Unchanged)",
                "copy new (new)",
                "skip older (Unchanged)",
                "skip same (Unchanged)"
            ]
        );
        let always = diff(source, destination, rules(&everything, CompareMode::Always, false))
            .filter(|d| matches!(d, Decision::Copy { reason: Reason::Always, .. }))
            .count();
        assert_eq!(always, 4, "every pair is copied; the new one is still `new`");
    }

    #[test]
    fn filtered_keys_are_neither_copied_nor_deleted() {
        let csv_only = Filter::new(&[], &[], &["csv".to_string()]).unwrap();
        let source = vec![entry("a.csv", 1, 1), entry("b.json", 1, 1)];
        let destination = vec![entry("c.json", 1, 1), entry("d.csv", 1, 1)];
        let got = summarize(diff(source, destination, rules(&csv_only, CompareMode::SizeMtime, true)).collect());
        assert_eq!(got, vec!["copy a.csv (new)", "skip b.json (Filtered)", "delete d.csv"]);
    }

    #[test]
    fn listing_skips_pass_through_from_the_source_only() {
        let everything = Filter::everything();
        let marker = Item::Skipped(Skipped { key: "dir/".into(), reason: SkipReason::DirectoryMarker });
        let hostile =
            Item::Skipped(Skipped { key: "../x".into(), reason: SkipReason::UnsafeKey(UnsafeKey::ParentSegment) });
        let link = Item::Skipped(Skipped { key: "link".into(), reason: SkipReason::Symlink });
        let got = summarize(
            diff(
                vec![hostile, marker, entry("dir/a", 1, 1)],
                vec![link],
                rules(&everything, CompareMode::SizeMtime, true),
            )
            .collect(),
        );
        assert_eq!(
            got,
            vec![
                "skip ../x (Listing(UnsafeKey(ParentSegment)))",
                "skip dir/ (Listing(DirectoryMarker))",
                "copy dir/a (new)"
            ]
        );
    }

    #[test]
    fn deletes_only_when_asked() {
        let everything = Filter::everything();
        let got: Vec<Decision> =
            diff(Vec::new(), vec![entry("x", 1, 1)], rules(&everything, CompareMode::SizeMtime, false)).collect();
        assert!(got.is_empty());
    }

    #[test]
    fn nfd_and_nfc_names_are_one_file() {
        let everything = Filter::everything();
        let nfd = "\u{1112}\u{1161}\u{11AB}.csv";
        let got = summarize(
            diff(vec![entry(nfd, 3, 1)], vec![entry("한.csv", 3, 1)], rules(&everything, CompareMode::SizeMtime, true))
                .collect(),
        );
        assert_eq!(got, vec!["skip 한.csv (Unchanged)"]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        fn listing() -> impl Strategy<Value = BTreeMap<String, (u64, i64)>> {
            prop::collection::btree_map("[a-c]{1,2}(/[a-c]{1,2}){0,2}(\\.csv|\\.log)?", (0u64..4, 0i64..4), 0..30)
        }

        fn items(map: &BTreeMap<String, (u64, i64)>) -> Vec<Item> {
            map.iter().map(|(k, (size, mtime))| entry(k, *size, *mtime)).collect()
        }

        proptest! {
            /// Applying the decisions to a model of the destination gives exactly the
            /// filtered source (plus, without delete, the extra destination keys), and a
            /// second diff after applying finds nothing to do.
            #[test]
            fn applying_the_plan_converges(source in listing(), destination in listing(), delete: bool, use_filter: bool) {
                let filter = if use_filter { Filter::new(&[], &[], &["csv".to_string()]).unwrap() } else { Filter::everything() };
                let rules = DiffRules { compare: CompareMode::SizeMtime, delete, filter: &filter, shard: None };
                let mut model = destination.clone();
                for decision in diff(items(&source), items(&destination), rules) {
                    match decision {
                        Decision::Copy { source, .. } => { model.insert(source.key, (source.size, source.mtime)); }
                        Decision::Delete { destination } => { model.remove(&destination.key); }
                        Decision::Skip { .. } => {}
                        Decision::Verify { .. } => unreachable!("not under size-mtime"),
                    }
                }
                for (key, value) in &source {
                    if filter.is_included(key) {
                        let (size, mtime) = model[key];
                        prop_assert_eq!(size, value.0);
                        prop_assert!(mtime >= value.1, "{key}: copied or already at least as new");
                    }
                }
                for key in model.keys() {
                    let from_source = source.contains_key(key) && filter.is_included(key);
                    let kept = destination.contains_key(key) && (!delete || !filter.is_included(key));
                    prop_assert!(from_source || kept, "{key} should not be in the destination");
                }
                let again: Vec<Decision> = diff(items(&source), items(&model), rules)
                    .filter(|d| !matches!(d, Decision::Skip { .. }))
                    .collect();
                prop_assert!(again.is_empty(), "second plan not empty: {:?}", again);
            }
        }
    }
}
