//! What the earlier transfers of a plan will have written by the time a later one runs.
//!
//! `apply` takes transfers in manifest order, so a download of the prefix an upload before it
//! writes downloads what that upload wrote. A plan of the whole manifest is made before
//! anything runs; to say what `apply` will do, a later transfer's source listing is read as
//! it will be then: the earlier transfers' planned copies added (or replaced) and their
//! deletes removed. Pure: it takes plans and listings, and does no I/O.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::path::Path;

use super::{ActionKind, TransferPlan};
use crate::listing::{Entry, Item, check_key, item_order};
use crate::manifest::{Direction, Job};

/// The transfers planned so far (by their index in run order), found by where they write,
/// so a later transfer looks only at those that write where it reads: a manifest may hold
/// 100,000 transfers, and asking every earlier one would make planning quadratic.
#[derive(Debug, Default)]
struct Writers {
    /// Where each writes (see [`place`]) -> the transfers writing exactly there.
    places: BTreeMap<String, Vec<usize>>,
}

impl Writers {
    /// Notes that transfer `index` writes where `job` writes.
    fn add(&mut self, index: usize, job: &Job) {
        self.places.entry(Spot::written_by(job).place()).or_default().push(index);
    }

    /// The transfers that write at, inside or above where `job` reads, in run order.
    fn under_source_of(&self, job: &Job) -> Vec<usize> {
        let read = Spot::read_by(job).place();
        // At or inside: the places that start with it (a place ends with its separator).
        let mut found: Vec<usize> = self
            .places
            .range(read.clone()..)
            .take_while(|(place, _)| place.starts_with(read.as_str()))
            .flat_map(|(_, writers)| writers.iter().copied())
            .collect();
        // Above: the places it starts with, one per enclosing level.
        for (end, _) in read.match_indices(['/', '\0']) {
            if let Some(writers) = self.places.get(&read[..=end]).filter(|_| end + 1 < read.len()) {
                found.extend(writers);
            }
        }
        found.sort_unstable();
        found
    }
}

/// The plans of a run's transfers that later transfers read from, kept as they are made, so
/// each transfer is planned on what the earlier ones will have written and no other plan is
/// held (a plan of a million actions is written out as it is made).
pub struct EarlierPlans<'a> {
    jobs: &'a [&'a Job],
    writers: Writers,
    /// Per transfer: whether a later one reads where it writes.
    read_later: Vec<bool>,
    /// The plans made so far, in run order; those no later transfer reads from are `None`.
    kept: Vec<Option<TransferPlan>>,
}

impl<'a> EarlierPlans<'a> {
    pub fn new(jobs: &'a [&'a Job]) -> Self {
        let mut writers = Writers::default();
        for (index, job) in jobs.iter().enumerate() {
            writers.add(index, job);
        }
        let mut read_later = vec![false; jobs.len()];
        for (reader, job) in jobs.iter().enumerate() {
            for writer in writers.under_source_of(job).into_iter().filter(|&writer| writer < reader) {
                read_later[writer] = true;
            }
        }
        EarlierPlans { jobs, writers, read_later, kept: Vec::new() }
    }

    /// Whether transfer `index`'s actions are to be kept (a later transfer reads from it).
    pub fn keeps(&self, index: usize) -> bool {
        self.read_later[index]
    }

    /// The first transfer after `index` that reads where it writes.
    pub fn first_reader_of(&self, index: usize) -> Option<usize> {
        if !self.read_later[index] {
            return None;
        }
        (index + 1..self.jobs.len()).find(|&reader| self.writers.under_source_of(self.jobs[reader]).contains(&index))
    }

    /// What the transfers before `index` will have written under its source.
    pub fn expected_for(&self, index: usize, written_at_ms: i64) -> ExpectedWrites {
        let job = self.jobs[index];
        let earlier = self.writers.under_source_of(job).into_iter().filter(|&writer| writer < index);
        let earlier = earlier.filter_map(|writer| Some((self.jobs[writer], self.kept.get(writer)?.as_ref()?)));
        ExpectedWrites::for_source_of(job, earlier, written_at_ms)
    }

    /// Records the next transfer's plan (`None`: it could not be planned); kept only when a
    /// later transfer reads from it.
    pub fn add(&mut self, plan: Option<TransferPlan>) {
        let keep = self.read_later[self.kept.len()];
        self.kept.push(plan.filter(|_| keep));
    }
}

/// Where a transfer reads or writes.
enum Spot<'a> {
    Remote { endpoint: Option<&'a str>, bucket: &'a str, prefix: &'a str },
    Local(&'a Path),
}

impl<'a> Spot<'a> {
    fn written_by(job: &'a Job) -> Self {
        match (job.direction, &job.to) {
            (Direction::Download, _) => Spot::Local(&job.local),
            (Direction::Copy, Some(to)) => {
                Spot::Remote { endpoint: to.target.endpoint.as_deref(), bucket: &to.bucket, prefix: &to.prefix }
            }
            _ => Spot::source_bucket(job),
        }
    }

    fn read_by(job: &'a Job) -> Self {
        match job.direction {
            Direction::Upload => Spot::Local(&job.local),
            Direction::Download | Direction::Copy => Spot::source_bucket(job),
        }
    }

    fn source_bucket(job: &'a Job) -> Self {
        Spot::Remote { endpoint: job.target.endpoint.as_deref(), bucket: &job.bucket, prefix: &job.prefix }
    }

    /// As a place: `s3`, the server, the bucket and the prefix (a folder: it ends in `/`), or
    /// `local` and a folder's components each followed by `/`, so a place inside another
    /// starts with it.
    fn place(&self) -> String {
        match self {
            Spot::Remote { endpoint, bucket, prefix } => format!("s3\0{}\0{bucket}\0{prefix}", endpoint.unwrap_or("")),
            Spot::Local(folder) => {
                let mut place = String::from("local\0");
                for part in folder.components().filter(|c| matches!(c, std::path::Component::Normal(_))) {
                    place.push_str(&part.as_os_str().to_string_lossy());
                    place.push('/');
                }
                place
            }
        }
    }
}

/// The entries earlier transfers will write under one transfer's source, by key and stored
/// name; `None` for one they will remove.
#[derive(Debug, Default)]
pub struct ExpectedWrites {
    entries: BTreeMap<(String, String), Option<Written>>,
}

/// An entry an earlier transfer writes, and which transfer.
#[derive(Debug)]
struct Written {
    entry: Entry,
    by: String,
}

impl ExpectedWrites {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the earlier transfers (`earlier`, in run order, with their plans) will write under
    /// `job`'s source. An object uploaded by an earlier transfer is expected with its size and
    /// `written_at_ms` as its LastModified (the plan's creation time: the real one is only
    /// known once it is written); a file downloaded earlier, with the object's size and time,
    /// which the download gives it.
    pub fn for_source_of<'a>(
        job: &Job,
        earlier: impl IntoIterator<Item = (&'a Job, &'a TransferPlan)>,
        written_at_ms: i64,
    ) -> Self {
        let mut expected = ExpectedWrites::default();
        for (writer, plan) in earlier {
            for action in &plan.actions {
                let Some(relative) = source_key(job, writer, action.destination_name()) else { continue };
                let mtime_ms = match action.action {
                    // An object written to a bucket is dated when it is written.
                    ActionKind::Upload | ActionKind::Copy | ActionKind::UpdateProperties => written_at_ms,
                    ActionKind::Download => {
                        let planned = action.source.as_ref();
                        planned.map_or(written_at_ms, |p| p.mtime_ms.unwrap_or(p.mtime * 1000))
                    }
                    ActionKind::DeleteRemote | ActionKind::DeleteLocal => {
                        expected.entries.insert((crate::listing::nfc(&relative), relative), None);
                        continue;
                    }
                };
                // An update in place moves no bytes; the object keeps its size.
                let size = match (action.action, &action.destination) {
                    (ActionKind::UpdateProperties, Some(destination)) => destination.size,
                    _ => action.size,
                };
                let entry = Entry::new(&relative, size, mtime_ms, None);
                let entry = Some(Written { entry, by: plan.name.clone() });
                let key = crate::listing::nfc(&relative);
                expected.entries.insert((key, relative), entry);
            }
        }
        expected
    }

    /// Notes in `plan` which of its actions read what an earlier transfer writes.
    pub fn mark(&self, plan: &mut TransferPlan) {
        for action in &mut plan.actions {
            self.mark_action(action);
        }
    }

    /// Notes in `action` when it reads what an earlier transfer writes.
    pub fn mark_action(&self, action: &mut super::Action) {
        if self.entries.is_empty() {
            return;
        }
        let name = (action.key.clone(), action.source_name().to_string());
        if let (Some(Some(written)), Some(source)) = (self.entries.get(&name), action.source.as_mut()) {
            source.written_by = Some(written.by.clone());
        }
    }

    /// `listing` (in key order) as it will be once the expected writes are made.
    pub fn overlay<I: Iterator<Item = Item>>(&self, listing: I) -> Overlaid<'_, I> {
        Overlaid { listing: listing.peekable(), expected: self.entries.iter().peekable() }
    }
}

/// Where a name that `writer` writes (relative to its destination) sits under `job`'s
/// source, when it does.
fn source_key(job: &Job, writer: &Job, written: &str) -> Option<String> {
    let relative = match (Spot::read_by(job), Spot::written_by(writer)) {
        // Reads a bucket that `writer` uploads or copies into.
        (
            Spot::Remote { endpoint, bucket, prefix },
            Spot::Remote { endpoint: writer_endpoint, bucket: writer_bucket, prefix: writer_prefix },
        ) => {
            if writer_bucket != bucket || writer_endpoint != endpoint {
                return None;
            }
            let full = format!("{writer_prefix}{written}");
            let relative = full.strip_prefix(prefix)?.to_string();
            check_key(&relative).ok()?;
            relative
        }
        // Reads the folder that `writer` downloads into.
        (Spot::Local(folder), Spot::Local(writer_folder)) => {
            let path = crate::listing::local_path(writer_folder, written).ok()?;
            relative_key(&path, folder)?
        }
        _ => return None,
    };
    (!relative.is_empty()).then_some(relative)
}

/// `path` relative to `root`, with `/` separators, when it is inside (both normalized).
fn relative_key(path: &Path, root: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rest.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// A listing with the expected writes merged in (see [`ExpectedWrites::overlay`]).
pub struct Overlaid<'a, I: Iterator<Item = Item>> {
    listing: Peekable<I>,
    expected: Peekable<std::collections::btree_map::Iter<'a, (String, String), Option<Written>>>,
}

impl<I: Iterator<Item = Item>> Iterator for Overlaid<'_, I> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let order = match (self.listing.peek(), self.expected.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(item), Some(((key, stored), _))) => item_order(item).cmp(&(key.as_str(), stored.as_str())),
            };
            if order == std::cmp::Ordering::Less {
                return self.listing.next();
            }
            if order == std::cmp::Ordering::Equal {
                // Replaced (or removed) by what the earlier transfer writes.
                self.listing.next();
            }
            let (_, expected) = self.expected.next().expect("peeked");
            if let Some(written) = expected {
                return Some(Item::Entry(written.entry.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Fingerprint, Reason};

    fn job(name: &str, direction: Direction, prefix: &str, local: &str) -> Job {
        let mut job = crate::plan::tests::job(direction, false, None);
        job.name = name.into();
        job.prefix = prefix.into();
        job.local = local.into();
        job
    }

    fn action(kind: ActionKind, key: &str, size: u64, mtime_ms: i64) -> Action {
        let fingerprint = Fingerprint {
            size,
            mtime: mtime_ms.div_euclid(1000),
            mtime_ms: Some(mtime_ms),
            etag: Some("e".into()),
            stored_key: None,
            written_by: None,
            archived: false,
        };
        Action {
            resume: None,
            action: kind,
            key: key.into(),
            size: if kind.is_delete() { 0 } else { size },
            reason: Reason::New,
            source: (!kind.is_delete()).then(|| fingerprint.clone()),
            destination: kind.is_delete().then_some(fingerprint),
            exact_name: false,
            properties: Vec::new(),
        }
    }

    fn plan_of(job: &Job, actions: Vec<Action>) -> TransferPlan {
        let mut plan =
            crate::plan::plan_transfer(job, Vec::new(), Vec::new(), crate::plan::Checks::default(), None).unwrap();
        plan.actions = actions;
        plan
    }

    fn keys(items: impl Iterator<Item = Item>) -> Vec<String> {
        items
            .map(|item| match item {
                Item::Entry(e) => format!("{} {} {}", e.key, e.size, e.mtime_ms),
                Item::Skipped(s) => format!("skip {}", s.key),
            })
            .collect()
    }

    #[test]
    fn a_download_sees_what_an_earlier_upload_writes_under_its_prefix() {
        let up = job("up", Direction::Upload, "samples/", "/src");
        let down = job("down", Direction::Download, "samples/2026/", "/dst");
        let plan = plan_of(
            &up,
            vec![
                action(ActionKind::Upload, "2025/a.csv", 1, 5),
                action(ActionKind::Upload, "2026/b.csv", 2, 5),
                action(ActionKind::DeleteRemote, "2026/gone.csv", 3, 5),
                action(ActionKind::Upload, "2026/c.csv", 4, 5),
            ],
        );
        let expected = ExpectedWrites::for_source_of(&down, [(&up, &plan)], 7_000);
        let listed = vec![
            Item::Entry(Entry::new("b.csv", 9, 1, Some("old".into()))),
            Item::Entry(Entry::new("gone.csv", 3, 1, None)),
            Item::Entry(Entry::new("z.csv", 1, 1, None)),
        ];
        assert_eq!(keys(expected.overlay(listed.into_iter())), vec!["b.csv 2 7000", "c.csv 4 7000", "z.csv 1 1"]);
        // Another bucket, or another server, is another place.
        let mut elsewhere = down.clone();
        elsewhere.bucket = "other".into();
        assert!(ExpectedWrites::for_source_of(&elsewhere, [(&up, &plan)], 7_000).is_empty());
        elsewhere.bucket = down.bucket.clone();
        elsewhere.target.endpoint = Some("http://127.0.0.1:1".into());
        assert!(ExpectedWrites::for_source_of(&elsewhere, [(&up, &plan)], 7_000).is_empty());
    }

    #[test]
    fn writers_are_found_at_inside_and_above_the_place_read() {
        let mut writers = Writers::default();
        let jobs = [
            job("w0", Direction::Upload, "samples/2026/", "/a"),
            job("w1", Direction::Upload, "other/", "/b"),
            job("w2", Direction::Upload, "", "/c"),
            job("w3", Direction::Download, "x/", "/data/in"),
            job("w4", Direction::Download, "y/", "/elsewhere"),
            job("w5", Direction::Upload, "samples-old/", "/d"),
        ];
        for (index, writer) in jobs.iter().enumerate() {
            writers.add(index, writer);
        }
        // Reading samples/: w0 writes inside it, w2 the whole bucket above it; not other/ nor
        // samples-old/ (a prefix is a folder).
        assert_eq!(writers.under_source_of(&job("r", Direction::Download, "samples/", "/r")), vec![0, 2]);
        // Reading /data: w3 writes inside it; reading /data/in/sub: w3 writes above it.
        assert_eq!(writers.under_source_of(&job("r", Direction::Upload, "z/", "/data")), vec![3]);
        assert_eq!(writers.under_source_of(&job("r", Direction::Upload, "z/", "/data/in/sub")), vec![3]);
        let mut elsewhere = job("r", Direction::Download, "samples/", "/r");
        elsewhere.target.endpoint = Some("http://127.0.0.1:1".into());
        assert!(writers.under_source_of(&elsewhere).is_empty());
    }

    #[test]
    fn an_upload_sees_what_an_earlier_download_writes_in_its_folder() {
        let down = job("down", Direction::Download, "p/", "/data/in");
        let up = job("up", Direction::Upload, "q/", "/data");
        let plan = plan_of(
            &down,
            vec![action(ActionKind::Download, "x/매출.csv", 3, 1_234), action(ActionKind::DeleteLocal, "y.csv", 1, 5)],
        );
        let expected = ExpectedWrites::for_source_of(&up, [(&down, &plan)], 9_000);
        let listed =
            vec![Item::Entry(Entry::new("in/y.csv", 1, 1, None)), Item::Entry(Entry::new("top.csv", 1, 1, None))];
        assert_eq!(keys(expected.overlay(listed.into_iter())), vec!["in/x/매출.csv 3 1234", "top.csv 1 1"]);
        // A transfer of the same direction never feeds this one.
        let other_up = job("up2", Direction::Upload, "r/", "/data/in");
        let other_plan = plan_of(&other_up, vec![action(ActionKind::Upload, "a", 1, 1)]);
        assert!(ExpectedWrites::for_source_of(&up, [(&other_up, &other_plan)], 9_000).is_empty());
    }
}
