//! A bucket in memory as a page source, listing in key order or in SeaweedFS's folder-walk
//! order, small pages: the remote listing's ordering logic (the order check, NFD names waiting
//! for their place, the hand-over from flat pages to folder-by-folder listing) driven directly
//! by property tests, without a server.

use std::sync::Arc;

use proptest::prelude::*;

use super::folders::FolderListing;
use super::remote::{ListError, ListedObject, Page, PageRequest, PageSource, PageWait};
use super::sorted::SortedListing;
use super::{Item, item_order};

/// The order a model server lists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerOrder {
    /// UTF-8 byte order of the stored keys, as S3 specifies.
    Key,
    /// A folder's contents where the folder's name sorts (SeaweedFS 4.48): `a/b.csv` before
    /// `a b.csv`.
    FolderWalk,
}

/// How a model server reads StartAfter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartAfter {
    /// Names after it in byte order, as S3 specifies.
    Key,
    /// Names after it in the server's own order (a folder walk compares folder by folder:
    /// `a/` comes before `a b.csv`, so StartAfter `a!` leaves `a/` out).
    Walk,
    /// Ignored: every listing from the start.
    Ignored,
}

#[derive(Debug)]
struct ModelBucket {
    keys: Vec<String>,
    order: ServerOrder,
    page_size: usize,
    start_after: StartAfter,
    /// ListObjectsV2 requests answered.
    requests: std::sync::atomic::AtomicUsize,
}

impl ModelBucket {
    fn new(keys: Vec<String>, order: ServerOrder, page_size: usize, start_after: StartAfter) -> Self {
        ModelBucket { keys, order, page_size, start_after, requests: Default::default() }
    }

    /// What a listing of `request.prefix` names, in the server's order: `(name, is_folder)`.
    fn entries(&self, request: &PageRequest) -> Vec<(String, bool)> {
        let mut entries: Vec<(String, bool)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for key in &self.keys {
            let Some(rest) = key.strip_prefix(&request.prefix) else { continue };
            let entry = match rest.find('/').filter(|_| request.delimited) {
                Some(slash) => (format!("{}{}", request.prefix, &rest[..=slash]), true),
                None => (key.clone(), false),
            };
            if seen.insert(entry.clone()) {
                entries.push(entry);
            }
        }
        match self.order {
            ServerOrder::Key => entries.sort(),
            ServerOrder::FolderWalk => entries.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/'))),
        }
        entries
    }

    fn page(&self, request: &PageRequest) -> Page {
        // A page after the first starts after its token (the last name the page before it
        // gave), wherever the server's order put that.
        let entries = self.entries(request);
        let entries: Vec<(String, bool)> = match (&request.token, &request.start_after, self.start_after) {
            (None, Some(after), StartAfter::Key) => entries.into_iter().filter(|(name, _)| name > after).collect(),
            (None, Some(after), StartAfter::Walk) => {
                entries.into_iter().filter(|(name, _)| name.split('/').gt(after.split('/'))).collect()
            }
            _ => entries,
        };
        let from = match &request.token {
            None => 0,
            Some(token) => entries.iter().position(|(name, _)| name == token).map_or(entries.len(), |at| at + 1),
        };
        let shown = &entries[from.min(entries.len())..(from + self.page_size).min(entries.len())];
        let mut page = Page::default();
        for (name, folder) in shown {
            match folder {
                true => page.folders.push(name.clone()),
                false => page.objects.push(ListedObject {
                    key: name.clone(),
                    size: name.len() as u64,
                    mtime_ms: 7,
                    etag: None,
                    archived: false,
                }),
            }
        }
        if from + self.page_size < entries.len() {
            page.next = shown.last().map(|(name, _)| name.clone());
        }
        page
    }
}

impl PageSource for ModelBucket {
    fn bucket(&self) -> &str {
        "model"
    }

    fn start(&self, request: PageRequest) -> PageWait {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let page = self.page(&request);
        PageWait::computed(move || Ok(page))
    }
}

/// Names that sort differently as stored bytes, as NFC keys and as folder walks: a space, `!`,
/// `-`, `.` and `0` around the folder `a`; NFD and NFC forms of `é` and of Hangul.
const NAMES: [&str; 12] = [
    "a",
    "a b.csv",
    "a!",
    "a-b.csv",
    "a.csv",
    "a0.csv",
    "aa",
    "b.csv",
    "e\u{301}.csv",
    "\u{e9}.csv",
    "f.csv",
    "\u{1100}\u{1161}.csv",
];

/// Keys under `p/`, one to three levels deep, each once.
fn keys() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(prop::collection::vec(0..NAMES.len(), 1..4), 0..60).prop_map(|paths| {
        let mut keys: Vec<String> = paths
            .into_iter()
            .map(|path| format!("p/{}", path.iter().map(|i| NAMES[*i]).collect::<Vec<_>>().join("/")))
            .collect();
        // A name that is both a file and a folder (`p/a` and `p/a/b.csv`) is fine in S3.
        keys.sort();
        keys.dedup();
        keys
    })
}

/// Keys under `p/` of one wide level, `p/` itself or the folder `p/a/`: numbered names
/// (`n0417`), some of them folders, among names that sort around `/`.
fn wide_keys() -> impl Strategy<Value = Vec<String>> {
    let name = prop_oneof![
        3 => (0u32..5_000).prop_map(|n| format!("n{n:04}")),
        1 => (0..NAMES.len()).prop_map(|i| NAMES[i].to_string()),
    ];
    let key = (name, prop::option::weighted(0.2, 0..NAMES.len())).prop_map(|(name, inner)| match inner {
        Some(inner) => format!("{name}/{}", NAMES[inner]),
        None => name,
    });
    // The wide level is the prefix's own, or a folder's under it (beside a few other keys).
    (prop::collection::btree_set(key, 0..400), prop::bool::ANY).prop_map(|(names, deeper)| {
        let level = if deeper { "p/a/" } else { "p/" };
        let mut keys: Vec<String> = names.into_iter().map(|name| format!("{level}{name}")).collect();
        if deeper {
            keys.extend(["p/a b.csv", "p/a!", "p/b.csv"].map(String::from));
            keys.sort();
            keys.dedup();
        }
        keys
    })
}

/// Every entry (stored key relative to `p/`) in the order the merge needs: NFC key, then
/// stored name.
fn in_merge_order(keys: &[String]) -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = keys
        .iter()
        .map(|key| {
            let stored = key.strip_prefix("p/").expect("under p/").to_string();
            (super::nfc(&stored), stored)
        })
        .collect();
    expected.sort();
    expected
}

fn listed(items: &[Item]) -> Vec<(String, String)> {
    items.iter().map(item_order).map(|(key, stored)| (key.to_string(), stored.to_string())).collect()
}

/// What a listing gave before it ended or failed, and how it ended.
fn run(listing: impl Iterator<Item = Result<Item, ListError>>) -> (Vec<Item>, Option<ListError>) {
    let mut items = Vec::new();
    for result in listing {
        match result {
            Ok(item) => items.push(item),
            Err(err) => return (items, Some(err)),
        }
    }
    (items, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// In key order, the streamed listing gives every key once, in merge order, across flat
    /// pages and folders, NFD names waiting for their place.
    #[test]
    fn a_server_in_key_order_is_listed_whole_in_merge_order(keys in keys(), page_size in 1usize..5) {
        let bucket =
            Arc::new(ModelBucket::new(keys.clone(), ServerOrder::Key, page_size, StartAfter::Key));
        let (items, error) = run(FolderListing::new(bucket, "p/", false));
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(listed(&items), in_merge_order(&keys));
    }

    /// A wide level (hundreds of names in one folder, among names that sort around `/`) is
    /// listed in key ranges at once: in key order, every key once; in folder-walk order, or
    /// from a server that reads StartAfter its own way or not at all, never a key misplaced
    /// or left out unnoticed.
    #[test]
    fn a_wide_level_in_key_ranges_misses_nothing_unnoticed(
        keys in wide_keys(),
        page_size in 1usize..12,
        order in prop_oneof![Just(ServerOrder::Key), Just(ServerOrder::FolderWalk)],
        start_after in prop_oneof![Just(StartAfter::Key), Just(StartAfter::Walk), Just(StartAfter::Ignored)],
    ) {
        let bucket = Arc::new(ModelBucket::new(keys.clone(), order, page_size, start_after));
        let expected = in_merge_order(&keys);
        let (items, error) = run(FolderListing::new(bucket, "p/", false));
        let got = listed(&items);
        prop_assert!(got.windows(2).all(|pair| pair[0] < pair[1]), "passed on out of order: {got:?}");
        match error {
            None => prop_assert!(got == expected, "listed {} of {} keys", got.len(), expected.len()),
            Some(ListError::OutOfOrder { .. }) => {
                prop_assert!((order, start_after) != (ServerOrder::Key, StartAfter::Key), "a server in key order fell back");
                prop_assert!(got.iter().all(|entry| expected.contains(entry)), "{got:?}");
            }
            Some(other) => prop_assert!(false, "{other}"),
        }
    }

    /// Out of key order, the streamed listing never passes on a key out of merge order: it
    /// either gives every key once in merge order, or stops with `OutOfOrder` having passed
    /// on only keys in increasing order (the caller then lists again, sorted). The sorted
    /// listing gives every key once in merge order either way.
    #[test]
    fn a_server_out_of_key_order_is_found_before_a_key_is_misplaced(keys in keys(), page_size in 1usize..5) {
        let bucket = Arc::new(ModelBucket::new(keys.clone(), ServerOrder::FolderWalk, page_size, StartAfter::Walk));
        let expected = in_merge_order(&keys);
        let (items, error) = run(FolderListing::new(bucket.clone(), "p/", false));
        let got = listed(&items);
        prop_assert!(got.windows(2).all(|pair| pair[0] < pair[1]), "passed on out of order: {got:?}");
        prop_assert!(got.iter().all(|entry| expected.contains(entry)), "{got:?}");
        match error {
            None => prop_assert_eq!(&got, &expected),
            Some(ListError::OutOfOrder { .. }) => {}
            Some(other) => prop_assert!(false, "{other}"),
        }
        let (sorted, error) = run(SortedListing::new(bucket, "p/", false));
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(listed(&sorted), expected);
    }
}

#[test]
fn the_model_lists_folders_first_in_folder_walk_order() {
    let keys = ["p/a b.csv", "p/a.csv", "p/a/b.csv", "p/a/b/c.csv", "p/a0.csv"].map(String::from).to_vec();
    let bucket = ModelBucket::new(keys, ServerOrder::FolderWalk, 10, StartAfter::Key);
    let request =
        PageRequest { prefix: "p/".into(), delimited: false, token: None, url_encoded: false, start_after: None };
    let page = bucket.page(&request);
    let names: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, ["p/a/b/c.csv", "p/a/b.csv", "p/a b.csv", "p/a.csv", "p/a0.csv"]);
    let delimited = bucket.page(&PageRequest { delimited: true, ..request });
    assert_eq!(delimited.folders, ["p/a/"]);
}

/// Listing one wide folder in key ranges costs few requests more than one page after another
/// (ranges that turn out empty, and each range's last page read past its end), whatever the
/// names look like: a numbered series, random hexadecimal names, and dated names.
#[test]
fn key_ranges_cost_few_requests_more_than_one_chain() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let shapes: [(&str, Vec<String>); 3] = [
        ("numbered", (0..20_000).map(|n| format!("p/part-{n:06}.parquet")).collect()),
        ("hexadecimal", (0..20_000).map(|_| format!("p/{:016x}.csv", random())).collect()),
        ("dated", (0..20_000).map(|n| format!("p/2026-{:02}-{:02}T{:05}.csv", 1 + n / 1_800, 1 + n % 28, n)).collect()),
    ];
    for (shape, mut keys) in shapes {
        keys.sort();
        let page_size = 100;
        let bucket = Arc::new(ModelBucket::new(keys.clone(), ServerOrder::Key, page_size, StartAfter::Key));
        let (items, error) = run(FolderListing::new(bucket.clone(), "p/", false));
        assert!(error.is_none(), "{shape}: {error:?}");
        assert_eq!(items.len(), keys.len(), "{shape}");
        let requests = bucket.requests.load(std::sync::atomic::Ordering::Relaxed);
        // One chain: its pages, and the flat pages listed before the hand-over again.
        let chain = keys.len().div_ceil(page_size) + 5;
        assert!(requests * 10 <= chain * 16, "{shape}: {requests} requests where one chain takes {chain}");
    }
}
