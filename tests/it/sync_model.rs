//! The whole pipeline against a model: random trees and buckets (Unicode twins, case twins,
//! sub-second times, empty files, deep paths, punctuation and emoji in names, edits between
//! runs), `apply` on a real server in both directions, then: the destination is what the
//! documented rules say, every file is accounted for in the plan, and a second plan is empty.
//! The server answers listings in key order, or (through a proxy) reversed, in folder-walk
//! order as SeaweedFS does, or shuffled: none of it may change a result.
//!
//! Each case starts its own s3s-fs server, so cases are few: `HAUL_PIPELINE_CASES` sets how
//! many (default 16, about 8 s; `./scripts/test --extended` runs 64).

use std::collections::BTreeMap;

use crate::common::{BUCKET, Fixture, bytes, tree};
use haul_testkit::{Fault, FaultRule, RecordingProxy};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization as _;

/// Folder names: NFC only (a local folder and its NFD twin are one folder on macOS; on Linux
/// the walk takes one of them, see `listing::local`), with case twins.
const FOLDERS: [&str; 6] = ["d", "D", "\u{D55C}", "x y", "\u{E9}", "\u{1F600}"];

/// File names: NFC/NFD twins (Hangul, Latin), case twins, punctuation, emoji.
const FILES: [&str; 10] = [
    "\u{D55C}.csv",
    "\u{1112}\u{1161}\u{11AB}.csv",
    "\u{E9}.parquet",
    "e\u{301}.parquet",
    "A.csv",
    "a.csv",
    "+ % # ? ; = & ' \" [] {} ~ ^ , @ $.csv",
    "\u{1F600} emoji.txt",
    "empty.csv",
    "no-extension",
];

/// A relative path: up to three folders, then a file name.
fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(prop::sample::select(FOLDERS.to_vec()), 0..4), prop::sample::select(FILES.to_vec()))
        .prop_map(|(folders, file)| {
            let mut parts: Vec<&str> = folders;
            parts.push(file);
            parts.join("/")
        })
}

/// Bucket keys may also have folders in NFD (written by another tool from a Mac).
fn key() -> impl Strategy<Value = String> {
    (path(), any::<bool>()).prop_map(|(path, nfd)| if nfd { path.nfd().collect() } else { path })
}

/// Files with their length (0 to 40 bytes) and a sub-second offset for their mtime.
fn files() -> impl Strategy<Value = BTreeMap<String, (usize, u64)>> {
    prop::collection::btree_map(path(), (0usize..40, 0u64..1000), 1..12)
}

/// What happens to the local tree between the two uploads.
#[derive(Debug, Clone)]
enum Edit {
    /// New content of another size.
    Resize(usize),
    /// New content of the same size, modified now (after the last upload, often within its
    /// second): only the time tells.
    SameSize,
    Remove,
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, Edit)>> {
    let edit = prop_oneof![(41usize..60).prop_map(Edit::Resize), Just(Edit::SameSize), Just(Edit::Remove)];
    prop::collection::vec((any::<prop::sample::Index>(), edit), 0..4)
}

/// A name's bytes and its time in milliseconds (mtime, or LastModified).
type Tree = BTreeMap<String, (Vec<u8>, i64)>;

/// The destination's bytes as the documented rules make them (README "Names that differ only
/// in Unicode form", "Plans"). Names are grouped by NFC form; in a group, source and
/// destination names that are the same bytes pair; with no such pair, one source (NFC-named,
/// else first) goes onto one destination name (NFC-named, else first; the NFC name when there
/// is none); other source names are skipped, except into a bucket (`into_bucket`), where each
/// goes to its own name; destination names left over go under `delete`. A pair is copied when
/// the sizes differ or the source is newer (`size-mtime`).
fn model(source: &Tree, destination: &Tree, delete: bool, into_bucket: bool) -> BTreeMap<String, Vec<u8>> {
    let nfc = |name: &str| name.nfc().collect::<String>();
    let mut groups: BTreeMap<String, (Vec<&String>, Vec<&String>)> = BTreeMap::new();
    for name in source.keys() {
        groups.entry(nfc(name)).or_default().0.push(name);
    }
    for name in destination.keys() {
        groups.entry(nfc(name)).or_default().1.push(name);
    }
    let mut result: BTreeMap<String, Vec<u8>> = destination.iter().map(|(k, (b, _))| (k.clone(), b.clone())).collect();
    let mut copy = |from: &String, to: &String| {
        let (bytes, ms) = &source[from];
        let changed = destination.get(to).is_none_or(|(old, old_ms)| old.len() != bytes.len() || ms > old_ms);
        if changed {
            result.insert(to.clone(), bytes.clone());
        }
    };
    let mut kept: Vec<String> = Vec::new();
    for (key, (sources, destinations)) in &groups {
        let exact: Vec<&String> = sources.iter().filter(|s| destinations.contains(s)).copied().collect();
        for name in &exact {
            copy(name, name);
            kept.push((*name).clone());
        }
        if into_bucket && sources.len() > 1 {
            for name in sources.iter().filter(|name| !exact.contains(name)) {
                copy(name, name);
                kept.push((*name).clone());
            }
        } else if exact.is_empty() && !sources.is_empty() {
            let writer = sources.iter().find(|s| **s == key).unwrap_or(&sources[0]);
            let target = destinations.iter().find(|d| **d == key).or(destinations.first()).map_or(key, |d| *d);
            copy(writer, target);
            kept.push(target.clone());
        }
    }
    if delete {
        for (_, destinations) in groups.values() {
            for name in destinations {
                if !kept.contains(name) {
                    result.remove(*name);
                }
            }
        }
    }
    result
}

/// Every object under `data/`, by key relative to it, with its bytes and LastModified.
fn bucket(f: &Fixture) -> Tree {
    let mut objects = Tree::new();
    let mut pages = f.client.list_objects_v2().bucket(BUCKET).prefix("data/").into_paginator().send();
    while let Some(page) = f.runtime.block_on(pages.next()) {
        for object in page.unwrap().contents() {
            let key = object.key().unwrap();
            let time = object.last_modified().unwrap();
            let ms = time.secs() * 1000 + i64::from(time.subsec_nanos() / 1_000_000);
            objects.insert(key.strip_prefix("data/").unwrap().to_string(), (f.get(key), ms));
        }
    }
    objects
}

fn contents(tree: &Tree) -> BTreeMap<String, Vec<u8>> {
    tree.iter().map(|(k, (b, _))| (k.clone(), b.clone())).collect()
}

/// Writes `name` under `local/` with `body`, modified `ago` before now; returns its mtime in
/// milliseconds as the file system keeps it.
fn write_file(f: &Fixture, name: &str, body: &[u8], ago: std::time::Duration) -> i64 {
    f.file(name, body);
    let path = f.path("local").join(name);
    let time = std::time::SystemTime::now() - ago;
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(time).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A plan of one transfer: every source file is moved or counted under a reason, and each
/// skip of a twin is listed.
fn check_accounting(f: &Fixture, m: &str, transfer: &str, sources: usize) -> Result<(), TestCaseError> {
    let plan = f.json(&[m, "--only", transfer]);
    let plan = &plan["transfers"][0];
    let counted: u64 = plan["by_reason"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(slug, _)| *slug != "missing-at-source")
        .map(|(_, tally)| tally["objects"].as_u64().unwrap())
        .sum();
    let twins = |place: &str| {
        plan["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["reason"].as_str().unwrap().starts_with("same name as another key"))
            .filter(|s| s["reason"].as_str().unwrap().contains("left at the destination") == (place == "destination"))
            .count() as u64
    };
    prop_assert_eq!(counted - twins("destination"), sources as u64, "every source file counted once: {:#}", plan);
    prop_assert_eq!(
        plan["by_reason"]["same-normalized-name"]["objects"].as_u64().unwrap_or(0),
        twins("source") + twins("destination"),
        "every twin skipped is listed: {:#}",
        plan
    );
    Ok(())
}

/// `plan --detailed-exitcode` of one transfer exits 0: nothing left to do.
fn check_quiet(f: &Fixture, m: &str, transfer: &str) -> Result<(), TestCaseError> {
    let out = f.plan(&[m, "--only", transfer, "--detailed-exitcode"]);
    prop_assert_eq!(out.code, 0, "a second plan is not empty:\n{}{}", out.stdout, out.stderr);
    Ok(())
}

fn cases() -> u32 {
    let from = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    from("HAUL_PIPELINE_CASES").unwrap_or(if from("PROPTEST_CASES").is_some_and(|n| n > 256) { 64 } else { 16 })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn upload_then_download_match_the_model_and_settle(
        files in files(),
        seeds in prop::collection::btree_map(key(), 50usize..60, 0..3),
        twins in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(), 50usize..60), 0..3),
        edits in edits(),
        delete: bool,
        order in 0u8..4,
        seed: u64,
    ) {
        let f = Fixture::s3s_fs();
        let extra = if delete { "  delete: true\n  max_delete: 1000\n" } else { "" };
        // haul talks to the server in key order, or through a proxy that answers listings in
        // another order (the result must not change).
        let fault = [None, Some(Fault::ReverseListing), Some(Fault::FolderWalkListing), Some(Fault::ShuffleListing(seed))]
            [usize::from(order)];
        let proxy = fault.map(|fault| {
            let proxy = RecordingProxy::start(&f.endpoint).unwrap();
            proxy.set_faults(&[FaultRule::new(fault, 1, u64::MAX).on_listings()]);
            proxy
        });
        let m = f.two_way_manifest(proxy.as_ref().map_or(f.endpoint.as_str(), |proxy| proxy.endpoint()), extra);

        // Objects another tool left (sizes no file has, so every pair differs): anywhere, and
        // under the names of local files, in NFC or NFD (twins in the bucket).
        let names: Vec<&String> = files.keys().collect();
        let mut seeds = seeds;
        for (index, nfd, len) in &twins {
            let name = index.get(&names);
            seeds.insert(if *nfd { name.nfd().collect() } else { name.nfc().collect() }, *len);
        }
        for (index, (key, len)) in seeds.iter().enumerate() {
            f.put(&format!("data/{key}"), &bytes(*len, 1000 + index as u64));
        }
        let mut local = Tree::new();
        for (index, (name, (len, ms))) in files.iter().enumerate() {
            let body = bytes(*len, index as u64);
            let mtime = write_file(&f, name, &body, std::time::Duration::from_millis(100_000 - ms));
            local.insert(name.clone(), (body, mtime));
        }

        // Upload onto the seeded bucket.
        let before = bucket(&f);
        check_accounting(&f, &m, "up", local.len())?;
        f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
        prop_assert_eq!(contents(&bucket(&f)), model(&local, &before, delete, true));
        check_quiet(&f, &m, "up")?;

        // Edit, then upload again.
        let names: Vec<String> = local.keys().cloned().collect();
        for (index, edit) in &edits {
            let name = index.get(&names);
            let Some((old, _)) = local.get(name).cloned() else { continue };
            match edit {
                Edit::Resize(len) => {
                    let body = bytes(*len, 7 + old.len() as u64);
                    let mtime = write_file(&f, name, &body, std::time::Duration::ZERO);
                    local.insert(name.clone(), (body, mtime));
                }
                Edit::SameSize => {
                    let body: Vec<u8> = old.iter().map(|b| b ^ 0x5a).collect();
                    let mtime = write_file(&f, name, &body, std::time::Duration::ZERO);
                    local.insert(name.clone(), (body, mtime));
                }
                Edit::Remove => {
                    std::fs::remove_file(f.path("local").join(name)).unwrap();
                    local.remove(name);
                }
            }
        }
        let before = bucket(&f);
        f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
        prop_assert_eq!(contents(&bucket(&f)), model(&local, &before, delete, true));
        check_quiet(&f, &m, "up")?;

        // Download the bucket into an empty folder.
        let remote = bucket(&f);
        check_accounting(&f, &m, "down", remote.len())?;
        f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
        prop_assert_eq!(tree(&f.path("back")), model(&remote, &Tree::new(), delete, false));
        check_quiet(&f, &m, "down")?;
    }
}
