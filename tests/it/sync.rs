//! `haul sync SRC DST`: one transfer from the command line, on a real server, in both
//! directions, with filters, a dry run, the delete cap and the manifest it saves.

use crate::common;

use crate::common::{BUCKET, Fixture, haul, tree};

fn sync(f: &Fixture, args: &[&str]) -> common::Outcome {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    all.extend(["--endpoint-url", f.endpoint.as_str(), "--path-style", "--region", "us-east-1"]);
    haul(f.dir.path(), &all)
}

#[test]
fn a_one_line_download_takes_only_the_extensions_asked_for_and_saves_its_manifest() {
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"1,2\n");
    f.put("data/2026/매출.parquet", b"PAR1");
    f.put("data/notes.log", b"no");
    let source = format!("s3://{BUCKET}/data/");
    let out = sync(&f, &[&source, "./dl", "--ext", "csv,parquet", "--quiet", "--save-manifest", "nightly.yaml"]);
    out.expect_code(0)
        .expect_stdout(&["downloaded 2"])
        .expect_stderr(&["saved the manifest to nightly.yaml", "haul apply"]);
    let got: Vec<String> = tree(&f.path("dl")).into_keys().collect();
    assert_eq!(got, ["2026/매출.parquet", "a.csv"]);

    // The saved manifest is the same transfer: valid, and nothing left to do.
    haul(f.dir.path(), &["validate", "nightly.yaml"]).expect_code(0).expect_stdout(&["extensions: csv, parquet"]);
    haul(f.dir.path(), &["plan", "nightly.yaml", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stdout(&["nothing to do; 1 filtered; 2 unchanged"]);
    // It is never overwritten.
    sync(&f, &[&source, "./dl", "--save-manifest", "nightly.yaml"])
        .expect_code(2)
        .expect_stderr(&["already exists", "does not overwrite"]);
}

#[test]
fn a_one_line_upload_dry_runs_deletes_within_the_cap_and_says_so_otherwise() {
    let f = Fixture::s3s_fs();
    f.file("keep.csv", b"k");
    f.put("data/old1.csv", b"o");
    f.put("data/old2.csv", b"o");
    let destination = format!("s3://{BUCKET}/data/");
    // The dry run prints the plan, as `haul plan` does, and moves nothing.
    sync(&f, &["./local", &destination, "--delete", "--max-delete", "5", "--dry-run"]).expect_code(0).expect_stdout(&[
        "upload",
        "keep.csv",
        "delete (remote)",
        "old1.csv",
    ]);
    assert_eq!(f.keys(), ["data/old1.csv", "data/old2.csv"]);
    // Over the cap: refused before anything moves.
    sync(&f, &["./local", &destination, "--delete", "--max-delete", "1"]).expect_code(1).expect_stdout(&["max_delete"]);
    assert_eq!(f.keys(), ["data/old1.csv", "data/old2.csv"]);
    // aws-cli's `--exclude '*' --include ...` would move nothing under haul's rules: refused.
    sync(&f, &["./local", &destination, "--exclude", "*", "--include", "*.csv"])
        .expect_code(2)
        .expect_stderr(&["would move nothing", "drop `--exclude '*'`"]);
    sync(&f, &["./local", "./elsewhere"]).expect_code(2).expect_stderr(&["both sides are local folders", "rsync"]);
    // `--delete` alone is a usage error.
    sync(&f, &["./local", &destination, "--delete"]).expect_code(2).expect_stderr(&["--max-delete"]);
    sync(&f, &["./local", &destination, "--delete", "--max-delete", "2", "--quiet"]).expect_code(0);
    assert_eq!(f.keys(), ["data/keep.csv"]);
}

#[test]
fn a_one_line_bucket_to_bucket_sync_copies_and_saves_a_copy_manifest() {
    let f = Fixture::moto();
    f.put("data/a.csv", b"1,2\n");
    f.put("data/b.log", b"no");
    let (from, to) = (format!("s3://{BUCKET}/data/"), format!("s3://{BUCKET}/copy/"));
    sync(&f, &[&from, &to, "--ext", "csv", "--quiet", "--save-manifest", "copy.yaml", "--bwlimit", "50MiB/s"])
        .expect_code(0)
        .expect_stdout(&["copied 1"]);
    assert_eq!(f.keys(), ["copy/a.csv", "data/a.csv", "data/b.log"]);
    assert_eq!(f.get("copy/a.csv"), b"1,2\n");
    let saved = std::fs::read_to_string(f.path("copy.yaml")).unwrap();
    assert!(saved.contains("direction: copy") && saved.contains("bandwidth: \"50MiB/s\""), "{saved}");
    haul(f.dir.path(), &["plan", "copy.yaml", "--detailed-exitcode"]).expect_code(0).expect_stdout(&["1 unchanged"]);
}
