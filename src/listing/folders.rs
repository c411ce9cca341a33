//! The remote side of a large prefix folder by folder, each large folder in key ranges: the
//! listing that plans stream from (in stored byte order, NFD names brought to their place).

use std::collections::VecDeque;
use std::sync::Arc;

use super::Item;
use super::ranges::LevelRanges;
use super::remote::{ListError, PageEntry, PageSource, RemoteListing};

/// The remote side of a large prefix folder by folder. A listing is a chain of pages, each
/// naming the next, so one chain lists at one page per round trip. The listing starts as one
/// flat chain; a prefix still unfinished after [`FLAT_PAGES`] pages is large, and the rest is
/// listed folder by folder: the top level with `delimiter=/`, and each folder's own chain
/// started as soon as the top level names it, up to [`FOLDERS_AHEAD`] ahead of the one being
/// read, spliced back in key order. It starts from the prefix's start: what the flat pages
/// passed on is listed again and must be the same keys (a count and a hash), else the server
/// does not list in key order (`OutOfOrder`). Memory stays a few pages per started folder.
/// (Small prefixes stay flat: a request per folder would cost more than the few pages it
/// saves.)
pub struct FolderListing {
    stored: StoredOrder,
    /// The last entry passed on: its key and its stored name.
    last_key: Option<(String, String)>,
    /// Entries whose NFC key differs from their stored name (NFD names), waiting for their
    /// place: the server lists by stored bytes, the merge needs NFC keys (`e\u{301}` lists
    /// before `f`, its NFC form `é` after it). Each waits until the listing reaches its key, so
    /// NFD names never make the listing start over; a prefix of many NFD names holds them
    /// all, as sorting it would.
    normalized: std::collections::BinaryHeap<std::cmp::Reverse<Waiting>>,
    /// The next entry in stored order, passed on once the waiting ones before it are.
    next_listed: Option<Item>,
    failed: bool,
}

/// The entries of a prefix or of one folder under it as the server lists them (stored byte
/// order): flat pages, then, for a large one, folder by folder, each folder listed the same
/// way (a folder of 200,000 names two levels down is listed in key ranges too).
struct StoredOrder {
    flat: Option<RemoteListing>,
    /// The top level in key ranges, after the hand-over.
    top: Option<LevelRanges>,
    /// Top-level entries read ahead of the consumer, folders already started.
    ahead: VecDeque<Ahead>,
    folders_ahead: usize,
    top_done: bool,
    current: Option<Box<StoredOrder>>,
    /// What the flat pages passed on (in flat mode).
    flat_passed: Passed,
    /// After the hand-over: what the flat pages passed on, which the folder-by-folder listing
    /// (from the prefix's start) must list again, the same, before going on.
    covered: Option<Covered>,
}

impl StoredOrder {
    fn new(flat: RemoteListing) -> Self {
        StoredOrder {
            flat: Some(flat),
            top: None,
            ahead: VecDeque::new(),
            folders_ahead: 0,
            top_done: false,
            current: None,
            flat_passed: Passed::default(),
            covered: None,
        }
    }
}

/// An entry with an NFC key other than its stored name, ordered as the merge needs it.
struct Waiting(Item);

impl Waiting {
    fn order(&self) -> (&str, &str) {
        super::item_order(&self.0)
    }
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

enum Ahead {
    Item(Item),
    Folder(Box<StoredOrder>),
}

/// Pages listed flat before a prefix counts as large.
const FLAT_PAGES: usize = 5;
/// Folder listings in flight beyond the one being read.
const FOLDERS_AHEAD: usize = 16;
/// Top-level objects read ahead at most while looking for folders to start.
const TOP_AHEAD: usize = 2_000;

impl FolderListing {
    pub fn new(source: Arc<dyn PageSource>, prefix: &str, check_keys: bool) -> Self {
        let flat = RemoteListing::new(source, prefix, check_keys);
        FolderListing {
            stored: StoredOrder::new(flat),
            last_key: None,
            normalized: std::collections::BinaryHeap::new(),
            next_listed: None,
            failed: false,
        }
    }

    /// Passes an item on, checking the key order across folders (an NFD name that
    /// normalizes past its neighbour would break it; the caller then sorts in memory). Twins
    /// (one NFC key, several stored names) may follow each other in stored byte order.
    fn checked(&mut self, item: Item) -> Option<Result<Item, ListError>> {
        if let Item::Entry(entry) = &item {
            if let Some((key, stored)) = &self.last_key
                && (entry.key.as_str(), entry.stored()) <= (key.as_str(), stored.as_str())
            {
                self.failed = true;
                return Some(Err(ListError::OutOfOrder { previous: key.clone(), key: entry.key.clone() }));
            }
            self.last_key = Some((entry.key.clone(), entry.stored().to_string()));
        }
        Some(Ok(item))
    }

    fn fail(&mut self, err: ListError) -> Option<Result<Item, ListError>> {
        self.failed = true;
        Some(Err(err))
    }
}

impl Iterator for FolderListing {
    type Item = Result<Item, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            // Pass on whichever comes first: a waiting NFD name, or the next one listed.
            if let Some(listed) = &self.next_listed {
                let waiting_first =
                    self.normalized.peek().is_some_and(|waiting| waiting.0.order() <= super::item_order(listed));
                let item = match waiting_first {
                    true => self.normalized.pop().expect("peeked").0.0,
                    false => self.next_listed.take().expect("checked"),
                };
                return self.checked(item);
            }
            match self.stored.next() {
                Some(Ok(Item::Entry(entry))) if entry.stored_key.is_some() => {
                    self.normalized.push(std::cmp::Reverse(Waiting(Item::Entry(entry))));
                }
                Some(Ok(item)) => self.next_listed = Some(item),
                Some(Err(err)) => return self.fail(err),
                None => {
                    let waiting = self.normalized.pop()?;
                    return self.checked(waiting.0.0);
                }
            }
        }
    }
}

impl StoredOrder {
    /// The entries as the server lists them (stored byte order), across flat pages and
    /// folders.
    fn next(&mut self) -> Option<Result<Item, ListError>> {
        if let Some(flat) = &mut self.flat {
            // Between pages of a large prefix: hand over to the folder-by-folder listing.
            if flat.pages >= FLAT_PAGES && flat.page.is_empty() && !flat.finished && flat.last_listed.is_some() {
                tracing::debug!(
                    prefix = %flat.prefix,
                    after = flat.last_listed.as_deref().unwrap_or_default(),
                    "large prefix: listing the rest folder by folder"
                );
                // From the prefix's start, not after the last key listed: on a server that
                // lists out of key order, keys before that one may not have come yet
                // (SeaweedFS lists `a b.csv` after all of `a/`), and a StartAfter would skip
                // them unseen. What the flat pages listed is listed again and must be the same.
                let last = flat.last_listed.as_deref().unwrap_or_default();
                let last = last.strip_prefix(flat.key_base.as_str()).unwrap_or(last).to_string();
                self.covered =
                    Some(Covered { last, flat: std::mem::take(&mut self.flat_passed), again: Passed::default() });
                self.top = Some(LevelRanges::new(flat.range(None, None)));
                self.flat = None;
            } else {
                let next = flat.next();
                if let Some(Ok(item)) = &next {
                    self.flat_passed.add(item);
                }
                return next;
            }
        }
        loop {
            let next = self.next_from_folders();
            let Some(covered) = &mut self.covered else { return next };
            match next {
                Some(Ok(item)) if stored_name(&item) <= covered.last.as_str() => covered.again.add(&item),
                Some(Err(err)) => return Some(Err(err)),
                next => {
                    let covered = self.covered.take().expect("checked above");
                    if covered.again != covered.flat {
                        let key = next.as_ref().and_then(|n| n.as_ref().ok()).map(stored_name).unwrap_or("(the end)");
                        return Some(Err(ListError::OutOfOrder { previous: covered.last, key: key.to_string() }));
                    }
                    return next;
                }
            }
        }
    }

    /// The entries of the folder-by-folder listing, in stored byte order: the top level's
    /// objects and each folder's listing spliced in where the folder's name sorts.
    fn next_from_folders(&mut self) -> Option<Result<Item, ListError>> {
        loop {
            if let Some(current) = &mut self.current {
                match current.next() {
                    Some(result) => return Some(result),
                    None => self.current = None,
                }
            }
            let top = self.top.as_mut().expect("a folder listing has its top level");
            while !self.top_done && self.folders_ahead < FOLDERS_AHEAD && self.ahead.len() < TOP_AHEAD {
                match top.next_streamed() {
                    None => self.top_done = true,
                    Some(Err(err)) => return Some(Err(err)),
                    Some(Ok((_, PageEntry::Item(item)))) => self.ahead.push_back(Ahead::Item(item)),
                    Some(Ok((_, PageEntry::Folder(folder)))) => {
                        self.folders_ahead += 1;
                        let folder = StoredOrder::new(top.folder_listing(&folder));
                        self.ahead.push_back(Ahead::Folder(Box::new(folder)));
                    }
                }
            }
            match self.ahead.pop_front()? {
                Ahead::Item(item) => return Some(Ok(item)),
                Ahead::Folder(listing) => {
                    self.folders_ahead -= 1;
                    self.current = Some(listing);
                }
            }
        }
    }
}

/// An item's name as stored (relative to the prefix), what a server's listing is ordered by.
fn stored_name(item: &Item) -> &str {
    super::item_order(item).1
}

/// What a listing passed on, in order, in constant memory: how many items and a hash of
/// their names. Two listings of the same keys in the same order pass the same.
#[derive(Default)]
struct Passed {
    count: u64,
    hash: xxhash_rust::xxh3::Xxh3,
}

impl Passed {
    fn add(&mut self, item: &Item) {
        self.count += 1;
        self.hash.update(stored_name(item).as_bytes());
        self.hash.update(&[0]);
    }
}

impl PartialEq for Passed {
    fn eq(&self, other: &Self) -> bool {
        (self.count, self.hash.digest()) == (other.count, other.hash.digest())
    }
}

/// The keys the flat pages listed before the hand-over, up to `last`: listed again by the
/// folder-by-folder listing (`again`) and compared.
struct Covered {
    last: String,
    flat: Passed,
    again: Passed,
}
