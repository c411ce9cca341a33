//! The pure diff: two key-ordered streams in, one decision per key out. No I/O, no map of
//! either listing: a merge join that holds one item of each side at a time.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::iter::Peekable;

use super::saved::Side;
use crate::filter::{Filter, Outside, Window};
use crate::listing::{Entry, Item, SkipReason};
use crate::manifest::{CompareMode, Overwrite};
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
    /// Unchanged, but its properties are not the manifest's (`update_properties`): updated in
    /// place, its bytes not sent again.
    PropertiesDiffer,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::New,
        Reason::SizeDiffers,
        Reason::SourceNewer,
        Reason::ChecksumDiffers,
        Reason::ChecksumUnavailable,
        Reason::Always,
        Reason::MissingAtSource,
        Reason::PropertiesDiffer,
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
            Reason::PropertiesDiffer => "properties-differ",
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
            Reason::PropertiesDiffer => "properties differ",
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
    /// Outside the transfer's size or age window (`min_size`, `older_than`, ...): held back,
    /// its destination copy kept.
    Window(Outside),
    /// A source object in an archive storage class, with `archived: skip`.
    Archived,
    /// The destination has it and `overwrite` keeps it: `never`, or `if_newer` with a source
    /// not modified after it.
    Kept(Overwrite),
    /// Seen by a listing and left out there (marker, unsafe key, symlink, ...).
    Listing(SkipReason),
    /// Unchanged, but its properties could not be read to compare them (`update_properties`):
    /// why.
    PropertiesUnreadable(String),
    /// One of several names with one NFC form (see [`Diff`]) that is not synced: a source
    /// name whose twin is, or a destination name the source has only in another form (left
    /// as is; deleted instead under `delete: true`).
    Twin {
        side: Side,
        form: UnicodeForm,
    },
}

/// How a name is normalized, for people telling twins apart (they look alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnicodeForm {
    Nfc,
    Nfd,
    Other,
}

impl UnicodeForm {
    pub fn of(name: &str) -> Self {
        if unicode_normalization::is_nfc(name) {
            UnicodeForm::Nfc
        } else if unicode_normalization::is_nfd(name) {
            UnicodeForm::Nfd
        } else {
            UnicodeForm::Other
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            UnicodeForm::Nfc => "NFC",
            UnicodeForm::Nfd => "NFD",
            UnicodeForm::Other => "neither NFC nor NFD",
        }
    }
}

/// What to do with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Copy the source entry to the destination. `exact_name`: under the source's stored
    /// name, not the NFC key (a source twin, written to its own name as `aws s3 sync` does).
    Copy { source: Entry, destination: Option<Entry>, reason: Reason, exact_name: bool },
    /// Remove the destination entry.
    Delete { destination: Entry },
    /// Leave it; `size` counts the entry's bytes where there is one. `key` is the name as
    /// stored for a twin (twins share their NFC key).
    Skip { key: String, size: u64, kind: SkipKind },
    /// Same size under `compare: checksum`: the content decides, which takes reading both
    /// sides (the caller's job; this module does no I/O).
    Verify { source: Entry, destination: Entry },
    /// Unchanged, and `update_properties` asks whether the destination object's properties
    /// are the manifest's (the caller reads them, as for `Verify`).
    CheckProperties { source: Entry, destination: Entry },
}

/// How to compare a pair that exists on both sides.
#[derive(Debug, Clone, Copy)]
pub struct DiffRules<'a> {
    pub compare: CompareMode,
    pub delete: bool,
    pub filter: &'a Filter,
    /// `min_size`, `max_size`, `older_than`, `newer_than`: decided on the source's entry.
    pub window: Window,
    /// `archived: skip`: an archived source object is never copied (its copy is kept).
    pub skip_archived: bool,
    /// When an object the destination has may be replaced.
    pub overwrite: Overwrite,
    /// Under `--shard`, only the keys this shard owns (by transfer name and key) are copied,
    /// deleted or counted; the others are counted once, as `other-shard`.
    pub shard: Option<(&'a str, Shard)>,
    /// A download: the destination's times are a local file system's (see [`source_newer`]).
    pub destination_is_local: bool,
    /// `update_properties`: an unchanged pair is checked for its properties.
    pub check_properties: bool,
}

impl<'a> DiffRules<'a> {
    /// The rules of `job`'s transfer, for shard `shard` (every key when `None`).
    pub fn of(job: &'a crate::manifest::Job, shard: Option<Shard>) -> Self {
        use crate::manifest::{ArchivedObjects, Direction};
        DiffRules {
            compare: job.compare,
            delete: job.delete,
            filter: &job.filter,
            window: job.window,
            skip_archived: job.archived.mode == ArchivedObjects::Skip,
            overwrite: job.overwrite,
            shard: shard.map(|shard| (job.name.as_str(), shard)),
            destination_is_local: job.direction == Direction::Download,
            check_properties: job.update_properties,
        }
    }

    fn owns(&self, key: &str) -> bool {
        self.shard.is_none_or(|(transfer, shard)| shard.owns(transfer, key))
    }

    /// Whether a source entry is one the transfer may copy, so what the destination has of it
    /// matters: this shard's, inside the filter and the size and age window. (A destination
    /// looked up key by key is asked about these alone.)
    pub fn considers(&self, source: &Entry) -> bool {
        self.owns(&source.key)
            && self.filter.is_included(&source.key)
            && self.window.outside(source.size, source.mtime_ms).is_none()
    }
}

/// Merges `source` and `destination` (each in key order) into decisions, in key order.
///
/// Keys are NFC, so names that differ only in Unicode form (twins: `한.csv` in NFC and in
/// NFD, which Linux and S3 keep apart and macOS does not) join as one key. Among a key's
/// twins, on both sides and in both directions:
/// 1. a source and a destination name that are the same bytes are a pair, compared as usual;
/// 2. when no name pairs that way, one source name is copied: the NFC one, else the first in
///    byte order, onto the destination's name in NFC, else its first (so a macOS NFD file
///    and its NFC key stay one object), or, with none, under the NFC name;
/// 3. into a bucket (`destination_is_local: false`), which keeps names apart, a source with
///    several twins writes each to its own name (`exact_name`), as `aws s3 sync` does; into
///    a local folder every other source name is skipped as `same-normalized-name` (it would
///    write a name that is already synced: a second writer to one file on macOS);
/// 4. every destination name left over has no source with its bytes: deleted under
///    `delete: true`, else left and listed as `same-normalized-name`.
///
/// So nothing is written twice in a run, and a second run finds nothing to do.
pub fn diff<'a, S, D>(source: S, destination: D, rules: DiffRules<'a>) -> Diff<'a, S::IntoIter, D::IntoIter>
where
    S: IntoIterator<Item = Item>,
    D: IntoIterator<Item = Item>,
{
    Diff {
        source: source.into_iter().peekable(),
        destination: destination.into_iter().peekable(),
        rules,
        queued: VecDeque::new(),
        shadows: VecDeque::new(),
        order: OrderCheck::default(),
    }
}

/// The iterator `diff` returns.
pub struct Diff<'a, S: Iterator<Item = Item>, D: Iterator<Item = Item>> {
    source: Peekable<S>,
    destination: Peekable<D>,
    rules: DiffRules<'a>,
    /// Decisions about a key with twins, not yet handed out.
    queued: VecDeque<Decision>,
    /// Source names the listing could not read (a file or folder, `dir/`), in key order:
    /// the destination's copies of them are never deleted for "missing at source".
    shadows: VecDeque<String>,
    order: OrderCheck,
}

/// In debug builds (the tests), checks the merge join's precondition: each side comes in
/// key order. A listing out of order would pair nothing and copy or delete wrongly.
#[derive(Default)]
struct OrderCheck {
    #[cfg(debug_assertions)]
    last: [Option<String>; 2],
}

impl OrderCheck {
    #[cfg(debug_assertions)]
    fn check(&mut self, side: usize, key: &str) {
        let last = &mut self.last[side];
        assert!(last.as_deref().is_none_or(|last| last <= key), "side {side}: `{key}` after `{last:?}`");
        *last = Some(key.to_string());
    }

    #[cfg(not(debug_assertions))]
    fn check(&mut self, _side: usize, _key: &str) {}
}

impl<S: Iterator<Item = Item>, D: Iterator<Item = Item>> Iterator for Diff<'_, S, D> {
    type Item = Decision;

    fn next(&mut self) -> Option<Decision> {
        loop {
            if let Some(decision) = self.queued.pop_front() {
                return Some(decision);
            }
            // Items a listing skipped, and destination entries outside the filter, never
            // join: report the source's, pass over the destination's (never deleted).
            if let Some(Item::Skipped(_)) = self.source.peek() {
                let Some(Item::Skipped(skipped)) = self.source.next() else { unreachable!() };
                if shadows_destination(&skipped.reason) {
                    self.shadows.push_back(skipped.key.clone());
                }
                let kind = if self.rules.owns(&skipped.key) {
                    SkipKind::Listing(skipped.reason)
                } else {
                    SkipKind::OtherShard
                };
                return Some(Decision::Skip { key: skipped.key, size: 0, kind });
            }
            if self.pass_over_destination() {
                continue;
            }
            let order = match (self.source.peek(), self.destination.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Item::Entry(s)), Some(Item::Entry(d))) => s.key.cmp(&d.key),
                // A destination's skip after the source's key waits for the source to get there.
                (Some(Item::Entry(_)), Some(Item::Skipped(_))) => Ordering::Less,
                _ => unreachable!("skipped items were taken above"),
            };
            let source = (order != Ordering::Greater).then(|| self.take_source());
            let destination = (order != Ordering::Less).then(|| self.take_destination());
            let key = &source.as_ref().or(destination.as_ref()).expect("one side has an entry").key;
            if self.source_twin_follows(key) || self.destination_twin_follows(key) {
                let mut sources: Vec<Entry> = source.into_iter().collect();
                let mut destinations: Vec<Entry> = destination.into_iter().collect();
                let key = sources.first().or(destinations.first()).expect("one side has an entry").key.clone();
                while self.source_twin_follows(&key) {
                    sources.push(self.take_source());
                }
                while self.destination_twin_follows(&key) {
                    destinations.push(self.take_destination());
                }
                self.decide_twins(sources, destinations);
                continue;
            }
            if let Some(decision) = self.decide(source, destination) {
                return Some(decision);
            }
        }
    }
}

impl<S: Iterator<Item = Item>, D: Iterator<Item = Item>> Diff<'_, S, D> {
    fn take_source(&mut self) -> Entry {
        match self.source.next() {
            Some(Item::Entry(entry)) => {
                self.order.check(0, &entry.key);
                entry
            }
            _ => unreachable!("peeked an entry"),
        }
    }

    fn take_destination(&mut self) -> Entry {
        match self.destination.next() {
            Some(Item::Entry(entry)) => {
                self.order.check(1, &entry.key);
                entry
            }
            _ => unreachable!("peeked an entry"),
        }
    }

    /// Drops the next destination item when it never joins: a listing's skip, a key outside
    /// the filter, another shard's key (never this shard's to delete). A skip is dropped once
    /// the source has come to its key: a destination looked up key by key (`destination:
    /// head`) has one item per source item, a skip where nothing is there, and is read in
    /// step with the source, never ahead of it.
    fn pass_over_destination(&mut self) -> bool {
        let source_key = match self.source.peek() {
            Some(Item::Entry(entry)) => Some(entry.key.as_str()),
            Some(Item::Skipped(skipped)) => Some(skipped.key.as_str()),
            None => None,
        };
        let drop = match self.destination.peek() {
            Some(Item::Skipped(skipped)) => source_key.is_none_or(|key| skipped.key.as_str() <= key),
            Some(Item::Entry(entry)) => !self.rules.filter.is_included(&entry.key) || !self.rules.owns(&entry.key),
            None => false,
        };
        if drop {
            self.destination.next();
        }
        drop
    }

    fn source_twin_follows(&mut self, key: &str) -> bool {
        matches!(self.source.peek(), Some(Item::Entry(next)) if next.key == key)
    }

    fn destination_twin_follows(&mut self, key: &str) -> bool {
        while self.pass_over_destination() {}
        matches!(self.destination.peek(), Some(Item::Entry(next)) if next.key == key)
    }

    fn decide(&mut self, source: Option<Entry>, destination: Option<Entry>) -> Option<Decision> {
        match self.decide_pair(source, destination) {
            // Copied only when it would be (an unchanged one is unchanged, archived or not).
            Some(Decision::Copy { source, .. } | Decision::Verify { source, .. })
                if source.archived && self.rules.skip_archived =>
            {
                Some(Decision::Skip { key: source.key, size: source.size, kind: SkipKind::Archived })
            }
            decision => decision,
        }
    }

    fn decide_pair(&mut self, source: Option<Entry>, destination: Option<Entry>) -> Option<Decision> {
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
            // Held back, and what the destination has of it stays (it may be the only
            // complete copy of a file still being written).
            (Some(source), destination)
                if let Some(outside) = self.rules.window.outside(source.size, source.mtime_ms) =>
            {
                drop(destination);
                Some(Decision::Skip { key: source.key, size: source.size, kind: SkipKind::Window(outside) })
            }
            (Some(source), None) => {
                Some(Decision::Copy { source, destination: None, reason: Reason::New, exact_name: false })
            }
            (Some(source), Some(destination)) if self.kept(&source, &destination) => {
                let kind = SkipKind::Kept(self.rules.overwrite);
                Some(Decision::Skip { key: source.key, size: source.size, kind })
            }
            (Some(source), Some(destination)) => match compare(&source, &destination, &self.rules) {
                Some(reason) => {
                    Some(Decision::Copy { source, destination: Some(destination), reason, exact_name: false })
                }
                None if self.rules.compare == CompareMode::Checksum => Some(Decision::Verify { source, destination }),
                None if self.rules.check_properties => Some(Decision::CheckProperties { source, destination }),
                None => Some(Decision::Skip { key: source.key, size: source.size, kind: SkipKind::Unchanged }),
            },
            (None, Some(destination)) => (self.rules.delete
                && !self.shadowed(&destination.key)
                && self.rules.window.outside(destination.size, destination.mtime_ms).is_none())
            .then_some(Decision::Delete { destination }),
            (None, None) => None,
        }
    }

    /// Whether `overwrite` keeps what the destination has, whatever `compare` would say.
    fn kept(&self, source: &Entry, destination: &Entry) -> bool {
        match self.rules.overwrite {
            Overwrite::Always => false,
            Overwrite::Never => true,
            Overwrite::IfNewer => !source_newer(source.mtime_ms, destination.mtime_ms, self.rules.destination_is_local),
        }
    }

    /// Whether the source has `key` (or a folder holding it) but could not read it.
    fn shadowed(&mut self, key: &str) -> bool {
        let covers = |shadow: &str| shadow == key || (shadow.ends_with('/') && key.starts_with(shadow));
        // Destination keys come in order: a shadow below `key` that does not cover it is past.
        // What is left starts with the smallest shadow, and only it can cover `key` (a shadow
        // covers keys at or after it; one after `key` cannot).
        while self.shadows.front().is_some_and(|front| front.as_str() < key && !covers(front)) {
            self.shadows.pop_front();
        }
        self.shadows.front().is_some_and(|shadow| covers(shadow))
    }

    /// Queues the decisions for one key that has twins (see [`diff`] for the rule).
    fn decide_twins(&mut self, sources: Vec<Entry>, destinations: Vec<Entry>) {
        let key = &sources.first().or(destinations.first()).expect("a key has an entry").key;
        // Twins share their key, so the filter and the shard take or leave them all.
        if !sources.is_empty() && (!self.rules.owns(key) || !self.rules.filter.is_included(key)) {
            for source in sources {
                let decision = self.decide(Some(source), None);
                self.queued.extend(decision);
            }
            return;
        }
        let mut unpaired: Vec<Option<Entry>> = destinations.into_iter().map(Some).collect();
        let mut lone_sources = Vec::new();
        let mut paired = false;
        for source in sources {
            let exact = unpaired.iter_mut().find(|d| d.as_ref().is_some_and(|d| d.stored() == source.stored()));
            match exact.and_then(Option::take) {
                Some(destination) => {
                    paired = true;
                    let decision = self.decide(Some(source), Some(destination));
                    self.queued.extend(decision);
                }
                None => lone_sources.push(source),
            }
        }
        let mut unpaired: Vec<Entry> = unpaired.into_iter().flatten().collect();
        // Twins on the source side, written to a bucket (where names never fold together):
        // each goes to its own name, as `aws s3 sync` does.
        if !self.rules.destination_is_local && lone_sources.len() + usize::from(paired) > 1 {
            for source in lone_sources.drain(..) {
                let decision = self.decide(Some(source), None).map(|decision| match decision {
                    Decision::Copy { source, destination, reason, .. } => {
                        Decision::Copy { source, destination, reason, exact_name: true }
                    }
                    other => other,
                });
                self.queued.extend(decision);
            }
        }
        if !paired && !lone_sources.is_empty() {
            let source = lone_sources.remove(preferred(&lone_sources));
            let destination = (!unpaired.is_empty()).then(|| unpaired.remove(preferred(&unpaired)));
            let decision = self.decide(Some(source), destination);
            self.queued.extend(decision);
        }
        for source in lone_sources {
            let form = UnicodeForm::of(source.stored());
            let kind = SkipKind::Twin { side: Side::Source, form };
            self.queued.push_back(Decision::Skip { key: source.stored().to_string(), size: source.size, kind });
        }
        for destination in unpaired {
            let decision =
                if self.rules.delete && self.rules.window.outside(destination.size, destination.mtime_ms).is_none() {
                    Decision::Delete { destination }
                } else {
                    let kind = SkipKind::Twin { side: Side::Destination, form: UnicodeForm::of(destination.stored()) };
                    Decision::Skip { key: destination.stored().to_string(), size: destination.size, kind }
                };
            self.queued.push_back(decision);
        }
    }
}

/// Whether a source skip stands for something the source has: an unreadable file or folder
/// is not "missing at source", and deleting its destination copy would lose the only
/// readable one. (A directory marker or an unsafe key stands for nothing on this side.)
fn shadows_destination(reason: &SkipReason) -> bool {
    matches!(reason, SkipReason::Unreadable(_) | SkipReason::NotAFile | SkipReason::Symlink)
}

/// Which of a key's twins is synced when no name pairs exactly: the one stored in NFC (the
/// name haul writes), else the first in byte order.
fn preferred(twins: &[Entry]) -> usize {
    twins.iter().position(|twin| twin.stored_key.is_none()).unwrap_or(0)
}

/// Why `source` must be copied over `destination`, or `None` when it is unchanged.
///
/// `size-mtime`: same size, and the source not modified after the destination (see
/// [`source_newer`]). A copy sets the destination's time to at least the source's (a download
/// sets the file's mtime to the listed LastModified; an upload's LastModified is the upload
/// time), so only a later change to the source makes it newer again.
pub fn compare(source: &Entry, destination: &Entry, rules: &DiffRules<'_>) -> Option<Reason> {
    match rules.compare {
        CompareMode::Always => Some(Reason::Always),
        _ if source.size != destination.size => Some(Reason::SizeDiffers),
        CompareMode::SizeMtime if source_newer(source.mtime_ms, destination.mtime_ms, rules.destination_is_local) => {
            Some(Reason::SourceNewer)
        }
        CompareMode::SizeMtime | CompareMode::Size => None,
        // Same size: the content decides (`Decision::Verify`).
        CompareMode::Checksum => None,
    }
}

/// Whether the source was modified after the destination: to the millisecond, the precision
/// S3 listings have (file systems keep finer; it is cut to milliseconds).
///
/// A local destination whose time is a whole second is compared in whole seconds: a file
/// system that keeps seconds only (FAT, HFS+, some network shares) cuts the millisecond haul
/// gave a download, and the object would look newer on every run. On a file system that keeps
/// milliseconds, a download's time is a whole second only when its object's is (a server that
/// lists whole seconds, as AWS S3 does), and both comparisons then agree.
///
/// A remote destination is not treated so: a server that lists whole seconds gives an object
/// written at 10.700 the time 10.000, and a file edited at 10.400 after that upload must still
/// count as newer. The price, on such a server, is that a file uploaded within the second it
/// was last written is uploaded once more by the next run (as `aws s3 sync` does); the copy
/// after that is dated a later second.
pub fn source_newer(source_ms: i64, destination_ms: i64, destination_is_local: bool) -> bool {
    if destination_is_local && destination_ms.rem_euclid(1000) == 0 {
        source_ms.div_euclid(1000) > destination_ms.div_euclid(1000)
    } else {
        source_ms > destination_ms
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
        DiffRules {
            compare,
            delete,
            filter,
            window: Window::default(),
            skip_archived: false,
            overwrite: Overwrite::Always,
            shard: None,
            destination_is_local: false,
            check_properties: false,
        }
    }

    fn summarize(decisions: Vec<Decision>) -> Vec<String> {
        decisions
            .into_iter()
            .map(|d| match d {
                Decision::Copy { source, reason, .. } => format!("copy {} ({})", source.key, reason.label()),
                Decision::Delete { destination } => format!("delete {}", destination.key),
                Decision::Skip { key, kind, .. } => format!("skip {key} ({kind:?})"),
                Decision::Verify { source, .. } => format!("verify {}", source.key),
                Decision::CheckProperties { source, .. } => format!("check properties {}", source.key),
            })
            .collect()
    }

    /// A destination looked up key by key (`destination: head`) comes as one item per source
    /// item, a skip where nothing is there; the merge reads it in step with the source, never
    /// more than one item ahead (else it would hold source items without bound while it looks
    /// for the next object there), and decides as with a listing.
    #[test]
    fn a_destination_read_in_step_with_the_source_is_never_read_ahead_of_it() {
        use std::cell::Cell;
        let keys: Vec<String> = (0..2_000).map(|n| format!("k{n:05}")).collect();
        let (source_read, destination_read) = (Cell::new(0usize), Cell::new(0usize));
        let source = keys.iter().map(|key| {
            source_read.set(source_read.get() + 1);
            entry(key, 1, 1_000)
        });
        // Every 100th key is at the destination (unchanged), the others are not.
        let destination = keys.iter().map(|key| {
            destination_read.set(destination_read.get() + 1);
            assert!(destination_read.get() <= source_read.get() + 1, "read ahead of the source at {key}");
            if key.ends_with("00") {
                entry(key, 1, 1_000)
            } else {
                Item::Skipped(Skipped { key: key.clone(), reason: SkipReason::NotLookedUpOrAbsent })
            }
        });
        let filter = Filter::everything();
        let decisions: Vec<Decision> =
            diff(source, destination, rules(&filter, CompareMode::SizeMtime, false)).collect();
        let copies = decisions.iter().filter(|d| matches!(d, Decision::Copy { reason: Reason::New, .. })).count();
        let unchanged =
            decisions.iter().filter(|d| matches!(d, Decision::Skip { kind: SkipKind::Unchanged, .. })).count();
        assert_eq!((copies, unchanged), (1_980, 20));
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
        // In key order, as the merge join requires (`new` sorts before `newer`).
        let source = vec![
            entry("changed-size", 10, 100),
            entry("new", 1, 100),
            entry("newer", 5, 200),
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
                "copy new (new)",
                "copy newer (source newer)",
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
                "copy new (new)",
                "skip newer (Unchanged)",
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
    fn a_window_holds_back_source_files_and_never_deletes_what_it_hides() {
        let everything = Filter::everything();
        // Settle time: modified by 1,000 ms; and at least 1 byte.
        let window = Window { min_size: Some(1), modified_by_ms: Some(1_000), ..Window::default() };
        let rules = DiffRules { window, ..rules(&everything, CompareMode::SizeMtime, true) };
        let source = vec![
            entry("empty", 0, 500),
            entry("settled", 5, 900),
            entry("writing", 7, 1_500),
            entry("writing-synced", 9, 1_500),
        ];
        let destination = vec![
            entry("empty", 3, 100),
            entry("gone-new", 4, 1_200),
            entry("gone-old", 4, 800),
            entry("writing-synced", 5, 100),
        ];
        let got = summarize(diff(source, destination, rules).collect());
        assert_eq!(
            got,
            vec![
                "skip empty (Window(TooSmall))",
                "skip gone-new (too recent to delete)",
                "delete gone-old",
                "copy settled (new)",
                "skip writing (Window(TooNew))",
                "skip writing-synced (Window(TooNew))",
            ]
            .into_iter()
            .filter(|line| !line.contains("to delete"))
            .collect::<Vec<_>>(),
            "a destination key outside the window is kept (not listed), one inside it is deleted"
        );
    }

    #[test]
    fn archived_sources_are_skipped_with_archived_skip_and_their_copies_kept() {
        let everything = Filter::everything();
        let archived = |key: &str, size: u64| {
            let mut entry = Entry::new(key, size, 100, None);
            entry.archived = true;
            Item::Entry(entry)
        };
        let source = vec![archived("changed", 5), archived("new", 1), archived("same", 3), entry("warm", 2, 100)];
        let destination = vec![entry("changed", 4, 100), entry("same", 3, 100)];
        let skip = DiffRules { skip_archived: true, ..rules(&everything, CompareMode::SizeMtime, true) };
        let got = summarize(diff(source.clone(), destination.clone(), skip).collect());
        assert_eq!(
            got,
            vec!["skip changed (Archived)", "skip new (Archived)", "skip same (Unchanged)", "copy warm (new)"]
        );
        // Otherwise they are copies like any other (the executor decides what it can read).
        let copy = summarize(diff(source, destination, rules(&everything, CompareMode::SizeMtime, true)).collect());
        assert_eq!(
            copy,
            vec!["copy changed (size differs)", "copy new (new)", "skip same (Unchanged)", "copy warm (new)"]
        );
    }

    #[test]
    fn overwrite_never_keeps_every_existing_object_and_if_newer_all_but_older_ones() {
        let everything = Filter::everything();
        let source =
            vec![entry("changed", 5, 100), entry("new", 1, 100), entry("newer", 5, 200), entry("older", 6, 50)];
        let destination = vec![entry("changed", 4, 100), entry("newer", 5, 100), entry("older", 5, 100)];
        let with = |overwrite| {
            let rules = DiffRules { overwrite, ..rules(&everything, CompareMode::SizeMtime, false) };
            summarize(diff(source.clone(), destination.clone(), rules).collect())
        };
        assert_eq!(
            with(Overwrite::Never),
            vec![
                "skip changed (Kept(Never))",
                "copy new (new)",
                "skip newer (Kept(Never))",
                "skip older (Kept(Never))"
            ]
        );
        // `changed` has the destination's time: not newer, kept though its size differs.
        assert_eq!(
            with(Overwrite::IfNewer),
            vec![
                "skip changed (Kept(IfNewer))",
                "copy new (new)",
                "copy newer (source newer)",
                "skip older (Kept(IfNewer))"
            ]
        );
        assert_eq!(with(Overwrite::Always).len(), 4);
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
    fn what_the_source_cannot_read_is_never_deleted_at_the_destination() {
        let everything = Filter::everything();
        let unreadable =
            |key: &str| Item::Skipped(Skipped { key: key.into(), reason: SkipReason::Unreadable("denied".into()) });
        let got = summarize(
            diff(
                vec![entry("a", 1, 1), unreadable("locked.csv"), unreadable("private/")],
                vec![
                    entry("a", 1, 1),
                    entry("gone.csv", 1, 1),
                    entry("locked.csv", 1, 1),
                    entry("private/x.csv", 1, 1),
                    entry("private/y/z.csv", 1, 1),
                    entry("public.csv", 1, 1),
                ],
                rules(&everything, CompareMode::SizeMtime, true),
            )
            .collect(),
        );
        assert_eq!(
            got,
            vec![
                "skip a (Unchanged)",
                "skip locked.csv (Listing(Unreadable(\"denied\")))",
                "skip private/ (Listing(Unreadable(\"denied\")))",
                "delete gone.csv",
                "delete public.csv",
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

    const NFC: &str = "\u{D55C}.csv"; // 한.csv
    const NFD: &str = "\u{1112}\u{1161}\u{11AB}.csv"; // 한.csv as macOS writes it

    /// Decisions with the stored names they act on, for twins (which share a key).
    fn stored(decisions: Vec<Decision>) -> Vec<String> {
        let form = |name: &str| UnicodeForm::of(name).label();
        decisions
            .into_iter()
            .map(|d| match d {
                Decision::Copy { source, destination, reason, exact_name } => format!(
                    "copy {} onto {} ({})",
                    form(source.stored()),
                    destination
                        .as_ref()
                        .map_or(if exact_name { "its own name" } else { "NFC (new)" }, |d| form(d.stored())),
                    reason.label()
                ),
                Decision::Delete { destination } => format!("delete {}", form(destination.stored())),
                Decision::Skip { key, kind, .. } => format!("skip {} ({kind:?})", form(&key)),
                Decision::Verify { source, .. } => format!("verify {}", form(source.stored())),
                Decision::CheckProperties { source, .. } => format!("check properties {}", form(source.stored())),
            })
            .collect()
    }

    fn twins_diff(source: Vec<Item>, destination: Vec<Item>, delete: bool) -> Vec<String> {
        let everything = Filter::everything();
        stored(diff(source, destination, rules(&everything, CompareMode::SizeMtime, delete)).collect())
    }

    /// The same into a local folder (a download), where two twins may be one file.
    fn twins_diff_to_local(source: Vec<Item>, destination: Vec<Item>) -> Vec<String> {
        let everything = Filter::everything();
        let rules = DiffRules { destination_is_local: true, ..rules(&everything, CompareMode::SizeMtime, false) };
        stored(diff(source, destination, rules).collect())
    }

    #[test]
    fn local_twins_upload_each_to_its_own_name_and_a_second_plan_is_quiet() {
        // NFC and NFD local names, different bytes, an empty bucket: a bucket keeps both
        // names apart, so each is uploaded to its own name (as `aws s3 sync` does).
        let source = || vec![entry(NFD, 4, 1), entry(NFC, 3, 1)];
        assert_eq!(
            twins_diff(source(), vec![], false),
            vec!["copy NFD onto its own name (new)", "copy NFC onto its own name (new)"]
        );
        // After the upload the bucket holds both keys: nothing left to do (an unchanged skip
        // shows the key, NFC).
        let after = twins_diff(source(), vec![entry(NFD, 4, 5), entry(NFC, 3, 5)], false);
        assert_eq!(after, vec!["skip NFC (Unchanged)", "skip NFC (Unchanged)"]);
        // With one of them there already, the other is still written to its own name.
        let one = twins_diff(source(), vec![entry(NFC, 3, 5)], false);
        assert_eq!(one, vec!["skip NFC (Unchanged)", "copy NFD onto its own name (new)"]);
        let changed = twins_diff(source(), vec![entry(NFD, 9, 5)], true);
        assert_eq!(changed, vec!["copy NFD onto NFD (size differs)", "copy NFC onto its own name (new)"]);
    }

    #[test]
    fn remote_twins_download_the_exact_name() {
        // Both keys in the bucket, nothing local: the NFC key is the NFC file, and the NFD
        // key is not written (on macOS the two names are one file).
        let source = || vec![entry(NFD, 4, 1), entry(NFC, 3, 1)];
        let got = twins_diff_to_local(source(), vec![]);
        assert_eq!(got, vec!["copy NFC onto NFC (new) (new)", "skip NFD (Twin { side: Source, form: Nfd })"]);
        let again = twins_diff_to_local(source(), vec![entry(NFC, 3, 5)]);
        assert_eq!(again, vec!["skip NFC (Unchanged)", "skip NFD (Twin { side: Source, form: Nfd })"]);
    }

    #[test]
    fn an_exact_name_wins_over_a_twin_at_the_destination() {
        // Case 3: the bucket has both, the folder the NFC name only: the NFC key is updated,
        // the NFD key is listed (or deleted with `delete: true`), never written.
        let source = || vec![entry(NFC, 5, 9)];
        let destination = || vec![entry(NFD, 4, 1), entry(NFC, 3, 1)];
        assert_eq!(
            twins_diff(source(), destination(), false),
            vec!["copy NFC onto NFC (size differs)", "skip NFD (Twin { side: Destination, form: Nfd })"]
        );
        assert_eq!(twins_diff(source(), destination(), true), vec!["copy NFC onto NFC (size differs)", "delete NFD"]);
    }

    #[test]
    fn one_name_in_another_form_on_each_side_is_one_file() {
        // The macOS case: a local NFD file and its NFC key are one object, updated in place.
        assert_eq!(
            twins_diff(vec![entry(NFD, 5, 9)], vec![entry(NFC, 3, 1)], true),
            vec!["copy NFD onto NFC (size differs)"]
        );
        // With twins on both sides and no exact match, one pair is made; the rest is left.
        let got = twins_diff(vec![entry(NFD, 5, 9)], vec![entry(NFD, 5, 1), entry(NFC, 3, 1)], false);
        assert_eq!(got, vec!["copy NFD onto NFD (source newer)", "skip NFC (Twin { side: Destination, form: Nfc })"]);
    }

    #[test]
    fn twins_that_match_exactly_on_both_sides_are_both_synced() {
        // A destination that already holds both names can hold both: each keeps its own.
        let got = twins_diff(vec![entry(NFD, 4, 9), entry(NFC, 3, 9)], vec![entry(NFD, 4, 1), entry(NFC, 2, 1)], false);
        assert_eq!(got, vec!["copy NFD onto NFD (source newer)", "copy NFC onto NFC (size differs)"]);
    }

    #[test]
    fn twins_outside_the_filter_are_filtered_alike() {
        let csv_only = Filter::new(&[], &[], &["parquet".to_string()]).unwrap();
        let got = stored(
            diff(
                vec![entry(NFD, 4, 9), entry(NFC, 3, 9)],
                vec![entry(NFC, 3, 1)],
                rules(&csv_only, CompareMode::SizeMtime, true),
            )
            .collect(),
        );
        // Counted, not listed: filtered skips show the key (NFC) only.
        assert_eq!(got, vec!["skip NFC (Filtered)", "skip NFC (Filtered)"]);
    }

    #[test]
    fn a_whole_second_local_destination_is_compared_in_seconds() {
        // An object at .172 downloaded to a file system that keeps seconds: unchanged.
        assert!(!source_newer(25_172, 25_000, true));
        assert!(source_newer(26_001, 25_000, true));
        // The same times with the bucket as destination: the file is newer.
        assert!(source_newer(25_172, 25_000, false));
        // Milliseconds everywhere else.
        assert!(source_newer(25_999, 25_172, true) && !source_newer(25_172, 25_172, true));
    }

    #[test]
    fn milliseconds_decide_within_one_second() {
        // Case 4: the file was edited 827 ms after the object was written, in the same second.
        let everything = Filter::everything();
        let got = summarize(
            diff(
                vec![entry("a.csv", 3, 1_764_134_665_999)],
                vec![entry("a.csv", 3, 1_764_134_665_172)],
                rules(&everything, CompareMode::SizeMtime, false),
            )
            .collect(),
        );
        assert_eq!(got, vec!["copy a.csv (source newer)"]);
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
                let rules = DiffRules { compare: CompareMode::SizeMtime, delete, filter: &filter, window: Window::default(), skip_archived: false, overwrite: Overwrite::Always, shard: None, destination_is_local: false, check_properties: false };
                let mut model = destination.clone();
                for decision in diff(items(&source), items(&destination), rules) {
                    match decision {
                        Decision::Copy { source, .. } => { model.insert(source.key, (source.size, source.mtime_ms)); }
                        Decision::Delete { destination } => { model.remove(&destination.key); }
                        Decision::Skip { .. } => {}
                        Decision::Verify { .. } | Decision::CheckProperties { .. } => {
                            unreachable!("not under size-mtime without update_properties")
                        }
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
