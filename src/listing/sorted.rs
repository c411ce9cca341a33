//! The remote side of a server that does not list in key order, sorted on disk.
//!
//! S3 lists keys in UTF-8 byte order and the plan's merge relies on it. SeaweedFS lists a
//! folder's contents before the names that sort before it (`a/b.csv` before `a-b.csv`),
//! S3 Express directory buckets in no stated order. Such a listing is read whole and sorted
//! by an external merge sort: runs of [`RUN_ITEMS`] items are sorted in memory and spilled to
//! a temp folder, then merged as the plan reads them, so memory stays a run's worth whatever
//! the number of keys (a million keys spill about 130 MB of runs). Nothing is decided before
//! the listing has ended: the first item comes after the last page.

use std::cmp::Ordering;
use std::io::{Read, Write};
use std::path::PathBuf;

use super::remote::{ListError, PageSource, RemoteListing};
use super::{Item, item_order};

/// Items sorted in memory before a run is written to disk: about 20-30 MB of keys.
pub const RUN_ITEMS: usize = 100_000;

/// Items a run holds: [`RUN_ITEMS`] unless a test asks for fewer.
fn run_items() -> usize {
    std::env::var("HAUL_SORT_RUN_ITEMS").ok().and_then(|items| items.parse().ok()).unwrap_or(RUN_ITEMS).max(1)
}

/// Where sorted runs are spilled: the system's temp folder (`TMPDIR`).
pub fn spill_folder() -> PathBuf {
    std::env::temp_dir()
}

/// The objects under `s3://bucket/prefix` in key order (NFC key, then stored name), whatever
/// order the server lists them in.
pub struct SortedListing {
    state: State,
}

enum State {
    /// Not read yet (the first `next` reads every page).
    Unread(Box<RemoteListing>, ListingName),
    Sorted(Sorted, ListingName),
    Done,
}

/// What a sort error names.
struct ListingName {
    bucket: String,
    prefix: String,
}

impl SortedListing {
    pub fn new(source: std::sync::Arc<dyn PageSource>, prefix: &str, check_keys: bool) -> Self {
        let name = ListingName { bucket: source.bucket().to_string(), prefix: prefix.to_string() };
        let listing = RemoteListing::new(source, prefix, check_keys).unchecked();
        SortedListing { state: State::Unread(Box::new(listing), name) }
    }

    fn sort_error(name: &ListingName, source: std::io::Error) -> ListError {
        ListError::Sort { bucket: name.bucket.clone(), prefix: name.prefix.clone(), folder: spill_folder(), source }
    }
}

/// Sorted items, read back from the runs.
type Sorted = Box<dyn Iterator<Item = std::io::Result<Item>>>;

/// Reads `listing` whole into an external sort with runs of `run` items. A listing error
/// ends the read; the inner error is the sort's own (writing or reading a run).
///
/// Written here rather than taken from a crate: `extsort`, the one in wide use, builds a
/// doc-test generator (skeptic, with unmaintained dependencies) into every build, and the
/// merge of sorted runs is short.
fn sort(
    listing: impl Iterator<Item = Result<Item, ListError>>,
    run: usize,
) -> Result<std::io::Result<Sorted>, ListError> {
    let mut runs = Vec::new();
    let mut buffer = Vec::with_capacity(run.min(RUN_ITEMS));
    for item in listing {
        buffer.push(item?);
        if buffer.len() >= run
            && let Err(err) = spill(&mut buffer).map(|file| runs.push(file))
        {
            return Ok(Err(err));
        }
    }
    if runs.is_empty() {
        // It fit in one run: no disk.
        buffer.sort_by(compare);
        return Ok(Ok(Box::new(buffer.into_iter().map(Ok))));
    }
    if !buffer.is_empty()
        && let Err(err) = spill(&mut buffer).map(|file| runs.push(file))
    {
        return Ok(Err(err));
    }
    Ok(Merge::new(runs).map(|merge| Box::new(merge) as Sorted))
}

/// Sorts `buffer` and writes it to a new temp file (removed when dropped), emptying it.
fn spill(buffer: &mut Vec<Item>) -> std::io::Result<std::fs::File> {
    buffer.sort_by(compare);
    let mut file = std::io::BufWriter::new(tempfile::tempfile_in(spill_folder())?);
    for item in buffer.drain(..) {
        encode(&item, &mut file)?;
    }
    let mut file = file.into_inner().map_err(|err| err.into_error())?;
    use std::io::Seek as _;
    file.seek(std::io::SeekFrom::Start(0))?;
    Ok(file)
}

/// Key order, and among items of one key, entries before skips (a total order: a listing
/// names each stored key once).
fn compare(a: &Item, b: &Item) -> Ordering {
    let kind = |item: &Item| matches!(item, Item::Skipped(_));
    item_order(a).cmp(&item_order(b)).then_with(|| kind(a).cmp(&kind(b)))
}

/// The k-way merge of sorted runs: the head of each run in a heap, one item per run in memory.
struct Merge {
    runs: Vec<std::io::BufReader<std::fs::File>>,
    heads: std::collections::BinaryHeap<std::cmp::Reverse<Head>>,
}

/// A run's next item, ordered by [`compare`] (then by run, for a total order).
struct Head(Item, usize);

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0).then(self.1.cmp(&other.1))
    }
}

impl Merge {
    fn new(files: Vec<std::fs::File>) -> std::io::Result<Merge> {
        let mut merge = Merge {
            runs: files.into_iter().map(|file| std::io::BufReader::with_capacity(64 << 10, file)).collect(),
            heads: std::collections::BinaryHeap::new(),
        };
        for run in 0..merge.runs.len() {
            merge.advance(run)?;
        }
        Ok(merge)
    }

    /// Puts run `run`'s next item in the heap (none at its end).
    fn advance(&mut self, run: usize) -> std::io::Result<()> {
        if let Some(item) = decode(&mut self.runs[run])? {
            self.heads.push(std::cmp::Reverse(Head(item, run)));
        }
        Ok(())
    }
}

impl Iterator for Merge {
    type Item = std::io::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        let std::cmp::Reverse(Head(item, run)) = self.heads.pop()?;
        Some(self.advance(run).map(|()| item))
    }
}

/// An item as a run stores it: its length, then its JSON.
fn encode(item: &Item, writer: &mut impl Write) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(item).map_err(std::io::Error::other)?;
    writer.write_all(&(bytes.len() as u32).to_le_bytes())?;
    writer.write_all(&bytes)
}

/// The next item of a run, `None` at its end.
fn decode(reader: &mut impl Read) -> std::io::Result<Option<Item>> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length) {
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut bytes = vec![0u8; u32::from_le_bytes(length) as usize];
    reader.read_exact(&mut bytes)?;
    serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other)
}

impl Iterator for SortedListing {
    type Item = Result<Item, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return None,
                State::Unread(listing, name) => match sort(*listing, run_items()) {
                    Err(err) => return Some(Err(err)),
                    Ok(Err(err)) => return Some(Err(Self::sort_error(&name, err))),
                    Ok(Ok(sorted)) => self.state = State::Sorted(sorted, name),
                },
                State::Sorted(mut sorted, name) => {
                    return match sorted.next()? {
                        Ok(item) => {
                            self.state = State::Sorted(sorted, name);
                            Some(Ok(item))
                        }
                        Err(err) => Some(Err(Self::sort_error(&name, err))),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::{Entry, SkipReason, Skipped};

    fn entry(key: &str) -> Item {
        Item::Entry(Entry::new(key, key.len() as u64, 7, Some(crate::etag::ETag::new(&format!("e-{key}")))))
    }

    #[test]
    fn a_folder_walk_listing_comes_out_in_key_order_across_spilled_runs() {
        // SeaweedFS's order for these keys: each folder's contents before the names that
        // sort before it.
        let walked = ["a/b/c.csv", "a/b.csv", "a b.csv", "a!", "a-b.csv", "a.csv", "a0.csv", "aa/x"];
        let nfd = "\u{1100}\u{1161}\u{11A8}.csv"; // 각.csv decomposed
        let mut listed: Vec<Result<Item, ListError>> = walked.iter().map(|key| Ok(entry(key))).collect();
        listed.push(Ok(entry(nfd)));
        listed.push(Ok(Item::Skipped(Skipped { key: "a/".into(), reason: SkipReason::DirectoryMarker })));
        // Runs of 3 items: several spilled runs merged.
        let sorted = sort(listed.into_iter(), 3).unwrap().unwrap();
        let sorted: Vec<Item> = sorted.map(|item| item.unwrap()).collect();
        let keys: Vec<&str> = sorted.iter().map(|item| item_order(item).0).collect();
        assert_eq!(
            keys,
            ["a b.csv", "a!", "a-b.csv", "a.csv", "a/", "a/b.csv", "a/b/c.csv", "a0.csv", "aa/x", "각.csv"]
        );
        // Everything an entry carries survives the run files.
        let Item::Entry(hangul) = &sorted[9] else { panic!("an entry") };
        assert_eq!((hangul.stored(), hangul.size, hangul.mtime_ms), (nfd, nfd.len() as u64, 7));
        assert_eq!(hangul.etag.as_ref().map(crate::etag::ETag::as_str), Some(format!("e-{nfd}").as_str()));
    }

    #[test]
    fn a_listing_error_ends_the_sort() {
        let failure = ListError::OutOfOrder { previous: "b".into(), key: "a".into() };
        let listed = vec![Ok(entry("b")), Err(failure), Ok(entry("a"))];
        assert!(matches!(sort(listed.into_iter(), 3), Err(ListError::OutOfOrder { .. })));
    }
}
