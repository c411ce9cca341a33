//! `haul plan` against a real S3 server on 127.0.0.1: what it lists, how it decides, what it
//! prints, and its exit codes. Nothing is written by plan; the tests seed both sides themselves.

use crate::common;

use crate::common::{BUCKET, Fixture, write};

fn actions(plan: &serde_json::Value) -> Vec<(String, String, String)> {
    plan["transfers"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().into(),
                a["key"].as_str().unwrap().into(),
                a["reason"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn empty_destination_downloads_everything() {
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"1,2\n");
    f.put("data/sub/매출.parquet", b"PAR1");
    let m = f.manifest("download", "");
    let out = f.plan(&[&m]);
    out.expect_code(0).expect_stdout(&[
        "t  download  s3://plan-test/data/ -> ",
        "a.csv",
        "sub/매출.parquet",
        "new",
        "2 to download (8 B)",
    ]);
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(3);
    let plan = f.json(&[&m]);
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["changes"], true);
    assert_eq!(
        actions(&plan),
        vec![
            ("download".into(), "a.csv".into(), "new".into()),
            ("download".into(), "sub/매출.parquet".into(), "new".into())
        ]
    );
    assert_eq!(plan["transfers"][0]["actions"][0]["source"]["size"], 4);
    // Planning wrote nothing.
    assert_eq!(std::fs::read_dir(f.dir.path().join("local")).unwrap().count(), 0);
}

#[test]
fn identical_destination_plans_nothing_and_one_change_moves_alone() {
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"same");
    f.put("data/b.csv", b"same");
    f.local("a.csv", b"same");
    f.local("b.csv", b"same");
    let m = f.manifest("download", "");
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0).expect_stdout(&["nothing to do; 2 unchanged"]);
    f.local("b.csv", b"longer now");
    let plan = f.json(&[&m]);
    assert_eq!(actions(&plan), vec![("download".into(), "b.csv".into(), "size-differs".into())]);
    assert_eq!(plan["transfers"][0]["by_reason"]["unchanged"]["objects"], 1);
}

#[test]
fn upload_plan_compares_against_the_bucket() {
    let f = Fixture::s3s_fs();
    f.local("x.csv", b"local");
    f.local("deep/er/y.log", b"log");
    f.put("data/x.csv", b"local");
    f.put("data/stale.csv", b"old");
    let m = f.manifest("upload", "    delete: true\n    max_delete: 5\n");
    let plan = f.json(&[&m]);
    // The bucket copy of x.csv is older than the local file's (future) mtime.
    assert_eq!(
        actions(&plan),
        vec![
            ("upload".into(), "deep/er/y.log".into(), "new".into()),
            ("delete-remote".into(), "stale.csv".into(), "missing-at-source".into()),
            ("upload".into(), "x.csv".into(), "source-newer".into()),
        ]
    );
}

#[test]
fn extension_filters_apply_to_both_sides() {
    let f = Fixture::s3s_fs();
    for key in ["data/a.csv", "data/b.parquet", "data/c.json", "data/d.log"] {
        f.put(key, b"x");
    }
    f.local("old.json", b"keep me");
    let m = f.manifest("download", "    extensions: [csv, parquet]\n    delete: true\n    max_delete: 10\n");
    let plan = f.json(&[&m]);
    assert_eq!(
        actions(&plan),
        vec![("download".into(), "a.csv".into(), "new".into()), ("download".into(), "b.parquet".into(), "new".into())]
    );
    assert_eq!(plan["transfers"][0]["by_reason"]["filtered"]["objects"], 2);
}

#[test]
fn nfd_and_nfc_hangul_names_are_one_file() {
    let f = Fixture::s3s_fs();
    let nfd = "\u{1112}\u{1161}\u{11AB}\u{1100}\u{1173}\u{11AF}.csv"; // 한글.csv as macOS writes it
    f.put(&format!("data/{nfd}"), b"12345");
    f.local("한글.csv", b"12345");
    let m = f.manifest("download", "");
    let plan = f.json(&[&m]);
    assert_eq!(actions(&plan), Vec::<(String, String, String)>::new(), "{plan:#}");
    assert_eq!(plan["transfers"][0]["by_reason"]["unchanged"]["objects"], 1);
}

#[test]
fn directory_markers_are_skipped_with_a_reason() {
    // s3s-fs stores `folder/` as a folder and never lists it; moto keeps it as an object.
    let f = Fixture::moto();
    f.put("data/folder/", b"");
    f.put("data/folder/a.csv", b"a");
    let m = f.manifest("download", "");
    let out = f.plan(&[&m]);
    out.expect_code(0).expect_stdout(&["folder/a.csv", "directory marker"]);
}

#[test]
fn listing_pages_past_1000_keys() {
    let f = Fixture::s3s_fs();
    let keys: Vec<String> = (0..1050).map(|i| format!("data/p{:02}/obj-{i:05}.csv", i % 7)).collect();
    for key in &keys {
        f.put(key, b"x");
    }
    let m = f.manifest("download", "");
    let plan = f.json(&[&m]);
    let listed = actions(&plan);
    assert_eq!(listed.len(), 1050);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "actions come out in key order");
}

#[test]
fn hostile_keys_are_skipped_never_planned() {
    let f = Fixture::moto();
    for key in ["data/../evil.csv", "data/../../etc/x.csv", "data/a//b.csv", "data/ok.csv", "data/back\\slash.csv"] {
        f.put(key, b"x");
    }
    let m = f.manifest("download", "");
    let out = f.plan(&[&m]);
    out.expect_code(0).expect_stdout(&[
        "unsafe key: has a `..` segment",
        "unsafe key: has an empty segment",
        "unsafe key: has a backslash",
        "1 to download",
    ]);
    let plan = f.json(&[&m]);
    assert_eq!(actions(&plan), vec![("download".into(), "ok.csv".into(), "new".into())]);
    let etag = &plan["transfers"][0]["actions"][0]["source"]["etag"];
    assert!(etag.as_str().is_some_and(|e| !e.contains('"')), "fingerprint keeps the unquoted ETag: {etag}");
}

#[test]
fn max_delete_stops_a_plan_that_deletes_too_much() {
    let f = Fixture::s3s_fs();
    for name in ["a", "b", "c"] {
        f.local(&format!("{name}.csv"), b"x");
    }
    let m = f.manifest("download", "    delete: true\n    max_delete: 2\n");
    f.plan(&[&m])
        .expect_code(1)
        .expect_stderr(&["transfer `t` would delete 3 objects, more than its `max_delete: 2`", "raise `max_delete`"]);
}

#[test]
fn only_selects_transfers_and_rejects_unknown_names() {
    let f = Fixture::s3s_fs();
    let m = f.manifest("download", "");
    f.plan(&[&m, "--only", "t"]).expect_code(0).expect_stdout(&["nothing to do"]);
    f.plan(&[&m, "--only", "nope"])
        .expect_code(2)
        .expect_stderr(&["no transfer named `nope`", "transfers in this manifest: t"]);
}

#[test]
fn missing_bucket_and_unreachable_server_are_explained() {
    let f = Fixture::s3s_fs();
    let m = f.manifest("download", "");
    std::fs::write(
        f.dir.path().join(&m),
        std::fs::read_to_string(f.dir.path().join(&m)).unwrap().replace(BUCKET, "no-such-bucket-here"),
    )
    .unwrap();
    f.plan(&[&m]).expect_code(1).expect_stderr(&["NoSuchBucket", "check the bucket name"]);
    let dead = std::fs::read_to_string(f.dir.path().join(&m)).unwrap().replace(&f.endpoint, "http://127.0.0.1:9");
    std::fs::write(f.dir.path().join(&m), dead).unwrap();
    f.plan(&[&m])
        .expect_code(1)
        .expect_stderr(&["listing s3://no-such-bucket-here/data/ failed", "check the endpoint"]);
}

#[test]
fn checksum_compare_reads_content_where_sizes_match() {
    let f = Fixture::moto();
    // Objects as haul uploads them: a full-object CRC32C, and a composite one over 5 MiB parts.
    let big: Vec<u8> = (0..6 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    f.file("a.csv", b"1,2,3\n");
    f.file("big.bin", &big);
    f.file("sized.csv", b"short");
    let m = f.manifest("upload", "    compare: checksum\n    multipart_threshold: 5MiB\n    part_size: 5MiB\n");
    common::haul(f.dir.path(), &["apply", &m, "--quiet"]).expect_code(0);
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0).expect_stdout(&["nothing to do; 3 unchanged"]);

    // Same sizes, new content (and an mtime that would say "unchanged" under size-mtime).
    let mut changed = big.clone();
    changed[5 * 1024 * 1024 + 7] ^= 1;
    f.file("a.csv", b"1,2,4\n");
    f.file("big.bin", &changed);
    f.file("sized.csv", b"longer");
    let plan = f.json(&[&m]);
    assert_eq!(
        actions(&plan),
        vec![
            ("upload".into(), "a.csv".into(), "checksum-differs".into()),
            ("upload".into(), "big.bin".into(), "checksum-differs".into()),
            ("upload".into(), "sized.csv".into(), "size-differs".into()),
        ]
    );
}

#[test]
fn checksum_compare_falls_back_to_the_md5_etag() {
    // An object put without a checksum (by another tool): moto's ETag is the MD5.
    let f = Fixture::moto();
    f.put("data/same.csv", b"same content");
    f.put("data/other.csv", b"old content!");
    f.file("same.csv", b"same content");
    f.file("other.csv", b"new content!");
    let m = f.manifest("download", "    compare: checksum\n");
    let plan = f.json(&[&m]);
    assert_eq!(actions(&plan), vec![("download".into(), "other.csv".into(), "checksum-differs".into())]);
    assert_eq!(plan["transfers"][0]["by_reason"]["unchanged"]["objects"], 1);
}

#[test]
fn checksum_compare_says_so_when_the_server_kept_no_checksum() {
    // s3s-fs stores no checksum for a multipart upload, and its ETag is `md5-of-md5s-N`:
    // nothing to compare, so the object is copied, with that reason (never "unchanged").
    let f = Fixture::s3s_fs();
    f.file("big.bin", &vec![7u8; 6 * 1024 * 1024]);
    f.file("small.csv", b"1,2\n");
    let m = f.manifest("upload", "    compare: checksum\n    multipart_threshold: 5MiB\n    part_size: 5MiB\n");
    common::haul(f.dir.path(), &["apply", &m, "--quiet"]).expect_code(0);
    let plan = f.json(&[&m]);
    assert_eq!(actions(&plan), vec![("upload".into(), "big.bin".into(), "checksum-unavailable".into())]);
    f.plan(&[&m]).expect_stdout(&["big.bin  no checksum to compare", "1 unchanged"]);
}

/// The keys a download plan of `data/` lists (all new), after checking that the listing came
/// in key order without sorting in memory; and the debug log.
fn keys_listed_in_order(f: &Fixture) -> (Vec<String>, String) {
    let m = f.manifest("download", "");
    let out = common::haul(f.dir.path(), &["plan", &m, "--output", "json", "--log-level", "debug"]);
    out.expect_code(0);
    assert!(!out.stderr.contains("not in key order"), "fell back to sorting:\n{}", out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    (actions(&plan).into_iter().map(|(_, key, _)| key).collect(), out.stderr)
}

/// Keys around folder boundaries (`-` sorts before `/`, `0` after it), nested and empty
/// folders, many folders: listed in exact key order, with no fall back to sorting in memory.
/// On moto as one flat listing; on s3s-fs after 5,100 keys that sort first, so the flat pages
/// run out in them and every boundary key is listed folder by folder and spliced back.
#[test]
fn folder_by_folder_listing_keeps_key_order_at_folder_boundaries() {
    for (f, fillers) in [(Fixture::s3s_fs(), 5_100), (Fixture::moto(), 0)] {
        let mut keys: Vec<String> =
            ["a-b.csv", "a/x.csv", "a/b/c.csv", "a/b-c.csv", "a0.csv", "b.csv", "한/글.csv", "z"]
                .iter()
                .map(|k| k.to_string())
                .collect();
        keys.extend((0..30).map(|i| format!("f{i:02}/g{}/h.csv", i % 3)));
        for key in &keys {
            f.put(&format!("data/{key}"), key.as_bytes());
        }
        // Written as s3s-fs stores objects (a PUT each would take long).
        for n in 0..fillers {
            let key = format!("0-fill/{n:05}.csv");
            let path = f.path(&format!("server/{BUCKET}/data/{key}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
            keys.push(key);
        }
        // Outside the prefix, and a sibling of it: never listed.
        f.put("data-x/a.csv", b"no");
        f.put("datum.csv", b"no");
        let (listed, log) = keys_listed_in_order(&f);
        if fillers > 0 {
            assert!(log.contains("listing the rest folder by folder"), "never left the flat pages:\n{log}");
        }
        keys.sort();
        assert!(listed == keys, "keys missing, repeated or out of order");
    }
}

/// A prefix larger than the flat pages haul lists before going folder by folder, with the
/// hand-over inside a folder: every key is listed once, in order, without sorting in memory.
#[test]
fn a_large_prefix_hands_over_to_folder_listings_mid_folder() {
    let f = Fixture::s3s_fs();
    // 5,600 keys, 700 per folder: the fifth page of 1,000 ends inside the eighth folder.
    let mut keys = Vec::new();
    for folder in 0..8 {
        for n in 0..700 {
            keys.push(format!("part-{folder}/{n:04}.csv"));
        }
    }
    keys.push("top-level.csv".into());
    keys.push("zz-last.csv".into());
    for key in &keys {
        let path = f.path(&format!("server/{BUCKET}/data/{key}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"x").unwrap();
    }
    let (listed, log) = keys_listed_in_order(&f);
    assert!(log.contains("listing the rest folder by folder") && log.contains("part-7/"), "{log}");
    keys.sort();
    assert_eq!(listed.len(), keys.len());
    assert!(listed == keys, "keys missing, repeated or out of order");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // `haul plan m.yaml | head -1`: the reader goes away; haul neither panics nor complains.
    let f = Fixture::s3s_fs();
    for i in 0..50 {
        f.file(&format!("f{i:02}.csv"), b"x");
    }
    let m = f.manifest("upload", "");
    for args in [vec!["plan", m.as_str()], vec!["plan", m.as_str(), "--output", "json"], vec!["schema"]] {
        let out = common::haul_into_closed_pipe(f.dir.path(), &args);
        out.expect_code(0);
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_full_disk_under_stdout_is_an_error_of_every_command_that_prints() {
    // `haul plan m.yaml --output json > plan.json` on a full disk must not exit 0 with part
    // of a plan in the file.
    let f = Fixture::s3s_fs();
    for i in 0..50 {
        f.file(&format!("f{i:02}.csv"), b"x");
    }
    f.put("data/old.csv", b"1");
    let m = f.manifest("upload", "");
    let bucket = format!("s3://{BUCKET}/data/");
    let server = ["--endpoint", f.endpoint.as_str(), "--path-style", "--region", "us-east-1"];
    let ls_buckets = [&["ls"][..], &server[..]].concat();
    let ls_objects = [&["ls", bucket.as_str()][..], &server[..]].concat();
    let ls_json = [&ls_objects[..], &["--output", "json"][..]].concat();
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", &m],
        vec!["plan", &m, "--output", "json"],
        vec!["validate", &m],
        vec!["schema"],
        vec!["man"],
        vec!["completions", "bash"],
        ls_buckets,
        ls_objects,
        ls_json,
        vec!["check", &m, "--output", "json"],
    ];
    for args in &commands {
        let out = common::haul_into_full_disk(f.dir.path(), args);
        assert_eq!(out.code, 1, "{args:?} exit code; stderr:\n{}", out.stderr);
        assert!(
            out.stderr.contains("cannot write to standard output: No space left on device"),
            "{args:?}: {}",
            out.stderr
        );
        out.expect_code(1);
    }
    // apply moves the files, then fails on printing its report: exit 1 with the message.
    let out = common::haul_into_full_disk(f.dir.path(), &["apply", &m, "--output", "json", "--quiet"]);
    out.expect_code(1);
    assert!(out.stderr.contains("cannot write to standard output"), "{}", out.stderr);
    // A plan saved with `-o` is not saved when stdout fails with a full disk.
    let out = common::haul_into_full_disk(f.dir.path(), &["plan", &m, "-o", "saved.json"]);
    out.expect_code(1);
    assert!(!f.dir.path().join("saved.json").exists());
}

#[test]
fn a_plan_saved_while_its_reader_goes_away_is_saved_whole() {
    // `haul plan m.yaml -o plan.json | head -3`: the rows shown stop, the saved plan does not.
    let f = Fixture::s3s_fs();
    for i in 0..50 {
        f.file(&format!("f{i:02}.csv"), b"x");
    }
    let m = f.manifest("upload", "");
    let out = common::haul_into_closed_pipe(f.dir.path(), &["plan", &m, "-o", "saved.json"]);
    out.expect_code(0);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let saved = std::fs::read_to_string(f.dir.path().join("saved.json")).expect("the plan is saved");
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["transfers"][0]["actions"].as_array().unwrap().len(), 50);
}

#[test]
fn a_transfer_that_cannot_be_planned_is_in_the_json_with_its_error_and_nothing_is_saved() {
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"1,2\n");
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: down\n    direction: download\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./back\n  - name: up\n    direction: upload\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./missing\n",
        f.endpoint
    );
    common::write(f.dir.path(), "m.yaml", &text);
    let out = f.plan(&["m.yaml", "--output", "json", "-o", "saved.json"]);
    out.expect_code(1).expect_stderr(&["not saving saved.json"]);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(plan["transfers"][0]["name"], "down");
    assert_eq!(plan["transfers"][0]["actions"][0]["key"], "a.csv");
    assert!(plan["transfers"][0].get("error").is_none());
    assert_eq!(plan["transfers"][1]["name"], "up");
    assert!(plan["transfers"][1]["error"].as_str().unwrap().contains("missing"), "{}", plan["transfers"][1]);
    // Neither the plan nor its temp file is left behind.
    let names: Vec<String> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|name| name.contains("saved") || name.starts_with(".haul-output")), "{names:?}");
}

/// stderr on a full disk: what haul has to say there is lost, but it never panics (exit 101)
/// and its exit code still tells: a problem in the manifest is 2, a warning alone is 0.
#[test]
fn stderr_on_a_full_disk_loses_the_message_not_the_exit_code() {
    let f = Fixture::s3s_fs();
    let stderr_full = |args: &[&str]| {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let output = common::haul_command(f.dir.path()).args(args).stderr(full).output().unwrap();
        output.status.code()
    };
    write(f.dir.path(), "bad.yaml", "version: 1\ntransfers:\n  - name: a\n    direction: sideways\n");
    assert_eq!(stderr_full(&["validate", "bad.yaml"]), Some(2));
    assert_eq!(stderr_full(&["plan", "bad.yaml"]), Some(2));
    // A warning (a storage class on a download) is said on stderr, and lost there.
    let m = f.manifest("download", "    storage_class: GLACIER\n");
    let out = common::haul(f.dir.path(), &["validate", &m]);
    out.expect_code(0).expect_stderr(&["`storage_class` applies to uploads"]);
    assert_eq!(stderr_full(&["validate", &m]), Some(0));
}
