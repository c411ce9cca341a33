//! Decisions never depend on the order a server lists in. SeaweedFS lists a prefix as a walk
//! of its folder tree (`a/b/c.csv`, `a/b.csv`, `a b.csv`, `a!`, `a-b.csv`, ...: a folder's
//! contents where its name sorts), where S3 lists `a b.csv`, `a!`, `a-b.csv`, `a.csv`,
//! `a/b.csv`, ... A plan that trusted the first order proposed deleting live files. Each
//! scenario runs on every test server, and on s3s-fs behind a proxy that answers listings in
//! folder-walk order and shuffled: upload, download (whole and filtered) and copy, each with
//! `delete: true`, whose plans must hold each key once and never delete a key the source has,
//! whose applies must leave both sides identical, and whose next plan must be empty.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{BUCKET, Fixture, tree, write};
use haul_testkit::{Fault, FaultRule, RecordingProxy};

/// Names that sort around `/` (space, `!`, `-`, `.` sort before it; `0` and letters after),
/// deep nesting, and Hangul.
const TREE: [&str; 12] = [
    "a b.csv",
    "a!",
    "a-b.csv",
    "a.csv",
    "a/b.csv",
    "a/b/c.csv",
    "a/b/c/d/e/f.csv",
    "a0.csv",
    "aa/x",
    "\u{D55C}.csv",
    "\u{BCF4}\u{ACE0}\u{C11C}/2026/\u{B9E4}\u{CD9C}.csv",
    "z.parquet",
];

/// An upload of `./local` to `data/`, a download of `data/` to `./back` and a copy of `data/`
/// to `mirror/`, each with `delete: true`, through `endpoint`.
fn manifest(f: &Fixture, endpoint: &str) -> String {
    let text = format!(
        "version: 1
defaults:
  endpoint: {endpoint}
  path_style: true
  region: us-east-1
  delete: true
  max_delete: 100
transfers:
  - name: up
    direction: upload
    bucket: {BUCKET}
    prefix: data/
    local: ./local
  - name: down
    direction: download
    bucket: {BUCKET}
    prefix: data/
    local: ./back
  - name: csv
    direction: download
    bucket: {BUCKET}
    prefix: data/
    local: ./csv
    extensions: [csv]
  - name: mirror
    direction: copy
    bucket: {BUCKET}
    prefix: data/
    to:
      bucket: {BUCKET}
      prefix: mirror/
"
    );
    write(f.dir.path(), "m.yaml", &text);
    "m.yaml".into()
}

/// The plan of one transfer as `(action, key)` pairs, checked to name each key once.
fn plan_of(f: &Fixture, m: &str, transfer: &str, server: &str) -> BTreeSet<(String, String)> {
    let plan = f.json(&[m, "--only", transfer]);
    let mut seen = BTreeMap::new();
    for action in plan["transfers"][0]["actions"].as_array().unwrap() {
        let key = action["key"].as_str().unwrap().to_string();
        let kind = action["action"].as_str().unwrap().to_string();
        if let Some(earlier) = seen.insert(key.clone(), kind.clone()) {
            panic!("{server}: `{transfer}` plans `{key}` twice ({earlier}, then {kind}):\n{plan:#}");
        }
    }
    seen.into_iter().map(|(key, kind)| (kind, key)).collect()
}

fn pairs(kind: &str, keys: &[&str]) -> BTreeSet<(String, String)> {
    keys.iter().map(|key| (kind.to_string(), key.to_string())).collect()
}

/// The objects under `prefix` as relative keys with their bytes.
fn objects(f: &Fixture, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    f.keys()
        .into_iter()
        .filter_map(|key| key.strip_prefix(prefix).map(str::to_string))
        .map(|relative| {
            let body = f.get(&format!("{prefix}{relative}"));
            (relative, body)
        })
        .collect()
}

fn settled(f: &Fixture, m: &str, transfer: &str, server: &str) {
    let out = f.plan(&[m, "--only", transfer, "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{server}: the plan after `{transfer}` is not empty:\n{}{}", out.stdout, out.stderr);
}

/// Upload, download and copy with `delete: true` through `endpoint` (the fixture's server,
/// or a proxy in front of it).
fn scenario(f: &Fixture, endpoint: &str, server: &str) {
    let m = manifest(f, endpoint);
    for name in TREE {
        f.file_written_earlier(name, name.as_bytes());
    }
    f.file_written_earlier("new/one.csv", b"new");
    // The bucket holds the tree already, one object with other bytes, and two the source lost.
    for name in TREE {
        let body: &[u8] = if name == "a-b.csv" { b"old" } else { name.as_bytes() };
        f.put(&format!("data/{name}"), body);
    }
    f.put("data/a/b/gone.csv", b"gone");
    f.put("data/gone", b"gone");
    f.file_written_earlier("a-b.csv", b"changed at the source");

    // Upload: the new file and the changed one, and deletes of exactly the two lost keys.
    let planned = plan_of(f, &m, "up", server);
    let mut expected = pairs("upload", &["new/one.csv", "a-b.csv"]);
    expected.extend(pairs("delete-remote", &["a/b/gone.csv", "gone"]));
    assert_eq!(planned, expected, "{server}: upload plan");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    assert_eq!(objects(f, "data/"), tree(&f.path("local")), "{server}: bucket after upload");
    settled(f, &m, "up", server);

    // Download into a folder that holds the tree already (newer than the objects), and two
    // files the bucket does not have.
    for name in TREE.iter().copied().chain(["new/one.csv"]) {
        f.local_at("back", name, &f.get(&format!("data/{name}")));
    }
    f.local_at("back", "a-b.csv", b"changed at the source");
    f.local_at("back", "a/b/stale.csv", b"stale");
    f.local_at("back", "zz", b"stale");
    let planned = plan_of(f, &m, "down", server);
    assert_eq!(planned, pairs("delete-local", &["a/b/stale.csv", "zz"]), "{server}: download plan");
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert_eq!(tree(&f.path("back")), objects(f, "data/"), "{server}: folder after download");
    settled(f, &m, "down", server);

    // A filtered download: only `.csv` moves, and only `.csv` is ever deleted.
    f.local_at("csv", "a/b/old.parquet", b"not mine");
    f.local_at("csv", "a/b/gone.csv", b"stale");
    let csv: Vec<&str> = TREE.iter().copied().chain(["new/one.csv"]).filter(|name| name.ends_with(".csv")).collect();
    let mut expected = pairs("download", &csv);
    expected.extend(pairs("delete-local", &["a/b/gone.csv"]));
    assert_eq!(plan_of(f, &m, "csv", server), expected, "{server}: filtered download plan");
    f.apply(&[&m, "--only", "csv", "--quiet"]).expect_code(0);
    let mut wanted: BTreeMap<String, Vec<u8>> =
        objects(f, "data/").into_iter().filter(|(key, _)| key.ends_with(".csv")).collect();
    wanted.insert("a/b/old.parquet".into(), b"not mine".to_vec());
    assert_eq!(tree(&f.path("csv")), wanted, "{server}: folder after the filtered download");
    settled(f, &m, "csv", server);

    // Copy into a prefix that holds part of it, and a key the source does not have.
    for name in &TREE[..6] {
        f.put(&format!("mirror/{name}"), name.as_bytes());
    }
    f.put("mirror/a/b/extra", b"extra");
    let planned = plan_of(f, &m, "mirror", server);
    let present: BTreeSet<&str> = TREE[..6].iter().copied().collect();
    let mut expected: BTreeSet<(String, String)> = objects(f, "data/")
        .into_keys()
        .filter(|key| !present.contains(key.as_str()) || key == "a-b.csv")
        .map(|key| ("copy".to_string(), key))
        .collect();
    expected.extend(pairs("delete-remote", &["a/b/extra"]));
    assert_eq!(planned, expected, "{server}: copy plan");
    f.apply(&[&m, "--only", "mirror", "--quiet"]).expect_code(0);
    assert_eq!(objects(f, "mirror/"), objects(f, "data/"), "{server}: destination after copy");
    settled(f, &m, "mirror", server);
}

#[test]
fn decisions_are_the_same_on_every_server() {
    for (server, f) in Fixture::every_server() {
        scenario(&f, &f.endpoint.clone(), server);
    }
}

#[test]
fn decisions_are_the_same_whatever_order_a_proxy_lists_in() {
    // Sorted runs of two keys, so the sorted readings merge many runs from disk.
    // SAFETY: set before this test starts any thread; the haul processes inherit it.
    unsafe { std::env::set_var("HAUL_SORT_RUN_ITEMS", "2") };
    for (label, fault) in [
        ("folder-walk order", Fault::FolderWalkListing),
        ("shuffled", Fault::ShuffleListing(7)),
        ("reversed", Fault::ReverseListing),
    ] {
        let f = Fixture::s3s_fs();
        let proxy = RecordingProxy::start(&f.endpoint).unwrap();
        proxy.set_faults(&[FaultRule::new(fault, 1, u64::MAX).on_listings()]);
        scenario(&f, proxy.endpoint(), label);
        assert!(proxy.injected()[0] > 0, "{label}: no listing was reordered");
    }
}

/// SeaweedFS lists a folder of 1,100 keys before `a-b.csv`: the first page (1,000 keys) is in
/// order and used, the second is found out of order before any of its keys is. The download
/// (without `delete`, so nothing waits for the listing's end) moves the first page's objects
/// at once (decided against the local folder, which is whole: right whatever else the listing
/// holds), then lists again sorted, finds them in place, and moves the rest; its report counts
/// each object once and says it listed again.
#[test]
fn out_of_order_found_pages_into_a_listing_drops_nothing_and_counts_each_object_once() {
    let f = Fixture::seaweedfs();
    let m = f.two_way_manifest(&f.endpoint.clone(), "");
    let mut names: Vec<String> = (0..1100).map(|n| format!("a/f{n:04}.csv")).collect();
    names.extend(["a-b.csv".to_string(), "a.csv".to_string()]);
    for name in &names {
        f.file_written_earlier(name, name.as_bytes());
    }
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);

    let out = f.apply(&[&m, "--only", "down", "--output", "json", "--quiet", "--log-level", "info"]);
    out.expect_code(0);
    assert!(out.stderr.contains("not in key order"), "the listing was not found out of order:\n{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let transfer = &report["transfers"][0];
    assert_eq!(transfer["moved"]["objects"], 1102, "{transfer:#}");
    let before = transfer["listed_again"]["objects"].as_u64().unwrap();
    assert!(before >= 1000, "the first page's objects moved before the second reading: {transfer:#}");
    assert!(transfer["skipped"].get("unchanged").is_none_or(|tally| tally["objects"] == 0), "{transfer:#}");
    let expected: BTreeMap<String, Vec<u8>> =
        names.iter().map(|name| (name.clone(), name.clone().into_bytes())).collect();
    assert_eq!(tree(&f.path("back")), expected);
    settled(&f, &m, "down", "SeaweedFS");

    // An upload onto that prefix: two new files. While the first page is merged, `a-b.csv`
    // and `a.csv` look missing from the bucket (it lists them last): their uploads wait for
    // the whole listing, and are dropped when it is read again. Only the new files move.
    f.file_written_earlier("a/new.csv", b"new");
    f.file_written_earlier("0.csv", b"new");
    let out = f.apply(&[&m, "--only", "up", "--output", "json", "--quiet"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["transfers"][0]["moved"]["objects"], 2, "{report:#}");
    assert_eq!(objects(&f, "data/"), tree(&f.path("local")));
    settled(&f, &m, "up", "SeaweedFS");
}

/// A listing that must be sorted on disk where the temp folder cannot take it: the plan fails
/// with what, where and how to fix it, and exits 1.
#[test]
fn a_sort_without_room_in_the_temp_folder_says_so() {
    let f = Fixture::s3s_fs();
    for name in ["a.csv", "b.csv", "c.csv"] {
        f.put(&format!("data/{name}"), name.as_bytes());
    }
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    proxy.set_faults(&[FaultRule::new(Fault::ReverseListing, 1, u64::MAX).on_listings()]);
    let m = manifest(&f, proxy.endpoint());
    let missing = f.path("no-such-folder");
    let tmpdir = missing.to_str().unwrap();
    let out = common::haul_with(
        f.dir.path(),
        &[("TMPDIR", tmpdir), ("HAUL_SORT_RUN_ITEMS", "1")],
        &["plan", &m, "--only", "down"],
    );
    out.expect_code(1).expect_stderr(&[
        &format!("sorting the listing of s3://{BUCKET}/data/ in {tmpdir} failed"),
        "free space in the temp folder, or point TMPDIR at a folder with room",
    ]);
}

/// Listed in pages of 100 keys, so that a folder of 1,500 names is wide.
const SMALL_PAGES: [(&str, &str); 1] = [("HAUL_LIST_PAGE_KEYS", "100")];

/// The upload `up`'s plan in small pages, as `(action, key)` pairs, and its debug log.
fn wide_plan(f: &Fixture, m: &str) -> (BTreeSet<(String, String)>, String) {
    let args = ["plan", m, "--only", "up", "--output", "json", "--log-level", "debug"];
    let out = common::haul_with(f.dir.path(), &SMALL_PAGES, &args);
    out.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let planned = plan["transfers"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| (action["action"].as_str().unwrap().to_string(), action["key"].as_str().unwrap().to_string()))
        .collect();
    (planned, out.stderr)
}

/// Applies the upload `up` in small pages; the plan after it is empty.
fn wide_apply(f: &Fixture, m: &str, server: &str) {
    common::haul_with(f.dir.path(), &SMALL_PAGES, &["apply", m, "--only", "up", "--quiet"]).expect_code(0);
    let settled = common::haul_with(f.dir.path(), &SMALL_PAGES, &["plan", m, "--only", "up", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{server}: the plan after the upload is not empty:\n{}", settled.all());
}

/// A folder wider than the flat pages haul lists before going folder by folder (1,500 names
/// in `wide/`, listed in pages of 100, beside names that sort around `/` and a few folders) is
/// listed in key ranges at once. On every server, an upload with `delete: true` onto a bucket
/// that holds the folder already plans exactly the ten new files and the one stale object,
/// spread over the ranges; on the servers that list in key order it is listed in ranges, not
/// sorted.
#[test]
fn a_wide_folder_in_key_ranges_plans_exactly_what_differs_on_every_server() {
    for (server, f) in Fixture::every_server() {
        let m = f.two_way_manifest(&f.endpoint.clone(), "  delete: true\n  max_delete: 10\n");
        let mut names: Vec<String> = (0..1_500).map(|n| format!("wide/n{n:05}.csv")).collect();
        names.extend(TREE.iter().map(|name| name.to_string()));
        for name in &names {
            f.file_written_earlier(name, b"x");
        }
        f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
        let new: Vec<String> = (0..1_500).step_by(150).map(|n| format!("wide/n{n:05}b.csv")).collect();
        for name in &new {
            f.file_written_earlier(name, b"new");
        }
        f.put("data/wide/n01499a.csv", b"stale");

        let (planned, log) = wide_plan(&f, &m);
        let mut expected = pairs("upload", &new.iter().map(String::as_str).collect::<Vec<_>>());
        expected.extend(pairs("delete-remote", &["wide/n01499a.csv"]));
        assert_eq!(planned, expected, "{server}");
        if server != "SeaweedFS" {
            assert!(log.contains("listing a large folder in key ranges at once"), "{server}: no ranges");
            assert!(!log.contains("not in key order"), "{server}: fell back to sorting");
        }
        wide_apply(&f, &m, server);
    }
}

/// SeaweedFS reads StartAfter as S3 does when a folder's names sort alike in both orders, so a
/// wide folder there is listed in key ranges too, and the plan is exact. Then two names that
/// sort differently as a folder walk (`n00500/` before `n00500 x.csv`) come in past the flat
/// pages, inside the ranges: the plan is still exact, whether the ranges put them in order or
/// find them out of order and sort.
#[test]
fn a_wide_folder_on_seaweedfs_is_listed_in_key_ranges_and_its_walk_order_found() {
    let f = Fixture::seaweedfs();
    let m = f.two_way_manifest(&f.endpoint.clone(), "  delete: true\n  max_delete: 10\n");
    for n in 0..1_500 {
        f.file_written_earlier(&format!("wide/n{n:05}.csv"), b"x");
    }
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);

    f.file_written_earlier("wide/n01200b.csv", b"new");
    f.put("data/wide/n00700a.csv", b"stale");
    let (planned, log) = wide_plan(&f, &m);
    assert!(log.contains("listing a large folder in key ranges at once"), "no ranges:\n{log}");
    assert!(!log.contains("not in key order"), "fell back to sorting:\n{log}");
    let mut expected = pairs("upload", &["wide/n01200b.csv"]);
    expected.extend(pairs("delete-remote", &["wide/n00700a.csv"]));
    assert_eq!(planned, expected);
    wide_apply(&f, &m, "SeaweedFS");

    let walk = ["wide/n00500 x.csv", "wide/n00500/x.csv"];
    for name in walk {
        f.file_written_earlier(name, b"walk");
    }
    f.put("data/wide/n00600a.csv", b"stale");
    let (planned, _) = wide_plan(&f, &m);
    let mut expected = pairs("upload", &walk);
    expected.extend(pairs("delete-remote", &["wide/n00600a.csv"]));
    assert_eq!(planned, expected);
    wide_apply(&f, &m, "SeaweedFS");
}
