//! `haul validate`, `haul init` and `haul schema` as a user runs them: every bad input gets
//! file:line:column, what is wrong, how to fix it, and exit code 2, never a panic.

use crate::common;

use crate::common::{haul, repo_root, write};

/// A valid one-transfer manifest; tests replace one line to break it.
const VALID: &str = "\
version: 1
defaults:
  region: ap-northeast-2
transfers:
  - name: daily
    direction: download
    bucket: analytics-exports
    prefix: reports/
    local: ./data
    extensions: [csv, parquet]
";

fn check(manifest: &str) -> common::Outcome {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.yaml", manifest);
    haul(dir.path(), &["validate", "m.yaml"])
}

/// `VALID` with `from` replaced by `to`.
fn variant(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from} not in VALID");
    VALID.replacen(from, to, 1)
}

#[test]
fn a_valid_manifest_prints_one_line_per_transfer() {
    let out = check(VALID);
    out.expect_code(0).expect_stdout(&[
        "m.yaml: valid, 1 transfer",
        "daily  download  s3://analytics-exports/reports/ -> ",
        "extensions: csv, parquet",
    ]);
    assert!(out.stderr.is_empty(), "no warnings expected: {}", out.stderr);
}

#[test]
fn yaml_syntax_error_names_line_and_column() {
    check(&variant("    local: ./data", "    local: [./data")).expect_code(2).expect_stderr(&[
        "invalid YAML",
        "m.yaml:",
        "help:",
        "not a valid manifest",
    ]);
    check("version: 1\ntransfers:\n\t- name: x\n").expect_code(2).expect_stderr(&[
        "invalid YAML: tabs disallowed",
        "[m.yaml:3:",
        "spaces, not tabs",
    ]);
}

#[test]
fn empty_file_is_explained() {
    for empty in ["", "\n\n", "# only a comment\n"] {
        check(empty).expect_code(2).expect_stderr(&["m.yaml: the manifest is empty", "haul init"]);
    }
}

#[test]
fn missing_file_and_directory_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    haul(dir.path(), &["validate", "nope.yaml"]).expect_code(2).expect_stderr(&[
        "cannot read manifest `nope.yaml`",
        "help: check the path",
        "haul init nope.yaml",
    ]);
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    haul(dir.path(), &["validate", "conf"]).expect_code(2).expect_stderr(&["`conf` is a directory", "conf/haul.yaml"]);
}

#[test]
fn non_utf8_bytes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"version: 1\ntransfers:\n  - name: caf".to_vec();
    bytes.extend_from_slice(&[0xE9, b'\n']); // Latin-1 é
    std::fs::write(dir.path().join("m.yaml"), bytes).unwrap();
    haul(dir.path(), &["validate", "m.yaml"]).expect_code(2).expect_stderr(&[
        "not valid UTF-8",
        "[m.yaml:3:14]",
        "save the file as UTF-8",
    ]);
}

#[test]
fn unknown_key_suggests_the_close_one() {
    check(&variant("    bucket: analytics-exports", "    bukcet: analytics-exports")).expect_code(2).expect_stderr(&[
        "unknown key `bukcet` in transfer #1",
        "[m.yaml:7:5]",
        "did you mean `bucket`?",
    ]);
    check(&variant("  region: ap-northeast-2", "  regoin: ap-northeast-2")).expect_code(2).expect_stderr(&[
        "unknown key `regoin` in `defaults`",
        "[m.yaml:3:3]",
        "rename `regoin` to `region`",
    ]);
    check(&format!("{VALID}concurency: 4\n"))
        .expect_code(2)
        .expect_stderr(&["unknown key `concurency` at the top level", "did you mean `concurrency`"]);
    check(&variant("version: 1", "version: 1\nbucket: x"))
        .expect_code(2)
        .expect_stderr(&["unknown key `bucket` at the top level", "belongs inside a transfer"]);
}

#[test]
fn wrong_types_are_named() {
    check(&variant("  region: ap-northeast-2", "  region: ap-northeast-2\n  concurrency: [1, 2]"))
        .expect_code(2)
        .expect_stderr(&[
            "invalid value for `concurrency`",
            "[m.yaml:4:16]",
            "found a list or mapping",
            "Objects in flight",
        ]);
    check(&variant("    local: ./data", "    local: ./data\n    delete: yes-please"))
        .expect_code(2)
        .expect_stderr(&["invalid value for `delete`", "found `yes-please`"]);
    check(&variant("    local: ./data", "    local:\n      path: ./data"))
        .expect_code(2)
        .expect_stderr(&["invalid value for `local`", "expected text"]);
    check("version: 1\ntransfers: daily\n")
        .expect_code(2)
        .expect_stderr(&["`transfers` must be a list", "[m.yaml:2:12]"]);
}

#[test]
fn missing_required_keys_are_named() {
    check(&variant("    local: ./data\n", "")).expect_code(2).expect_stderr(&[
        "transfer #1 `daily` is missing `local`",
        "[m.yaml:5:5]",
        "relative paths start at the manifest",
    ]);
    check(&variant("    direction: download\n", ""))
        .expect_code(2)
        .expect_stderr(&["is missing `direction`", "direction: upload"]);
    check("version: 1\n").expect_code(2).expect_stderr(&["missing `transfers:`"]);
}

#[test]
fn missing_or_unsupported_version() {
    check(&variant("version: 1\n", "")).expect_code(2).expect_stderr(&["missing `version:`", "add `version: 1`"]);
    check(&variant("version: 1", "version: 2")).expect_code(2).expect_stderr(&[
        "unsupported manifest version `2`",
        "[m.yaml:1:10]",
        "a newer manifest needs a newer haul",
    ]);
}

#[test]
fn bucket_names_follow_s3_rules() {
    let cases = [
        ("Analytics", "lowercase letters", "did you mean `analytics`"),
        ("my_bucket", "lowercase letters", "did you mean `my-bucket`"),
        ("ab", "it has 2 characters", "3 to 63"),
        (&"x".repeat(64), "it has 64 characters", "3 to 63"),
        ("192.168.1.20", "IP address", "may not be IP addresses"),
        ("-bucket", "start and end with a letter or digit", "did you mean `bucket`"),
        ("bucket-", "start and end with a letter or digit", "did you mean `bucket`"),
        (".bucket", "start and end with a letter or digit", "did you mean `bucket`"),
        ("bucket.", "start and end with a letter or digit", "did you mean `bucket`"),
        ("my..bucket", "two dots in a row", "did you mean `my.bucket`"),
    ];
    for (bucket, what, help) in cases {
        check(&variant("bucket: analytics-exports", &format!("bucket: \"{bucket}\""))).expect_code(2).expect_stderr(&[
            &format!("invalid bucket name `{bucket}`"),
            what,
            help,
            "[m.yaml:7:13]",
        ]);
    }
}

#[test]
fn s3_url_in_bucket_says_how_to_split_it() {
    let manifest = variant(
        "    bucket: analytics-exports\n    prefix: reports/\n",
        "    bucket: s3://analytics-exports/reports/2026/\n",
    );
    check(&manifest).expect_code(2).expect_stderr(&[
        "`bucket` is a URL, not a bucket name",
        "write `bucket: analytics-exports` and `prefix: reports/2026/` as two keys",
    ]);
}

#[test]
fn bad_region_shape_suggests_the_real_one() {
    check(&variant("region: ap-northeast-2", "region: ap-northeast2")).expect_code(2).expect_stderr(&[
        "`ap-northeast2` is not a region name",
        "[m.yaml:3:11]",
        "did you mean `ap-northeast-2`?",
    ]);
    check(&variant("region: ap-northeast-2", "region: Seoul"))
        .expect_code(2)
        .expect_stderr(&["`Seoul` is not a region name", "like `us-east-1`"]);
    // A custom endpoint may use its server's own region name.
    check(&variant("region: ap-northeast-2", "region: garage\n  endpoint: http://127.0.0.1:3900")).expect_code(0);
    // A misspelt direction is an error with the closest region.
    check(&variant("region: ap-northeast-2", "region: ap-norhteast-2"))
        .expect_code(2)
        .expect_stderr(&["`ap-norhteast-2` is not a region name", "did you mean `ap-northeast-2`?"]);
    // Well formed but unknown: a warning (new regions appear), with the closest.
    for (unknown, closest) in [("ap-northeast-22", "ap-northeast-2"), ("eu-west-9", "eu-west-")] {
        check(&variant("region: ap-northeast-2", &format!("region: {unknown}"))).expect_code(0).expect_stderr(&[
            &format!("`{unknown}` is not an AWS region haul knows"),
            &format!("did you mean `{closest}"),
            "is a new region, ignore this",
        ]);
    }
}

#[test]
fn an_https_url_in_bucket_is_split_like_s3() {
    check(&variant("bucket: analytics-exports", "bucket: https://my-bucket.s3.amazonaws.com/x"))
        .expect_code(2)
        .expect_stderr(&["`bucket` is a URL", "write `bucket: my-bucket` and `prefix: x` as two keys"]);
}

#[test]
fn bad_direction() {
    check(&variant("direction: download", "direction: sideways")).expect_code(2).expect_stderr(&[
        "invalid value for `direction`",
        "expected one of `download`, `upload`, `copy`",
        "[m.yaml:6:16]",
    ]);
}

#[test]
fn invalid_glob_points_at_the_pattern() {
    check(&variant("    extensions: [csv, parquet]", "    include: [\"*.csv\", \"data/[2026\"]"))
        .expect_code(2)
        .expect_stderr(&["invalid pattern `data/[2026` in `include`", "[m.yaml:10:24]", "close every `[`"]);
    check(&variant("    extensions: [csv, parquet]", "    exclude: [\"{a,b\"]"))
        .expect_code(2)
        .expect_stderr(&["invalid pattern `{a,b` in `exclude`"]);
}

#[test]
fn extensions_with_dots_are_normalized_with_a_warning() {
    let out = check(&variant("extensions: [csv, parquet]", "extensions: [.csv, \"*.parquet\"]"));
    out.expect_code(0)
        .expect_stdout(&["extensions: csv, parquet"])
        .expect_stderr(&["extension `.csv` is read as `csv`", "extension `*.parquet` is read as `parquet`"]);
    check(&variant("extensions: [csv, parquet]", "extensions: [\"data/*.csv\"]"))
        .expect_code(2)
        .expect_stderr(&["`data/*.csv` is not a file extension", "put patterns such as `data/*.csv` in `include:`"]);
}

#[test]
fn duplicate_names_and_shared_destinations() {
    let two =
        format!("{VALID}  - name: daily\n    direction: download\n    bucket: other-bucket\n    local: ./data/sub\n");
    check(&two).expect_code(2).expect_stderr(&[
        "duplicate transfer name `daily`",
        "also the name of transfer #1",
        "writes a destination overlapping transfer `daily`",
    ]);
    let same =
        format!("{VALID}  - name: second\n    direction: download\n    bucket: other-bucket\n    local: data/\n");
    check(&same)
        .expect_code(2)
        .expect_stderr(&["transfer `second` writes the same destination as transfer `daily`", "[m.yaml:14:12]"]);
    let uploads = "version: 1\ntransfers:\n  - {name: a, direction: upload, bucket: b-1, prefix: x/, local: ./a}\n  - {name: b, direction: upload, bucket: b-1, prefix: x/y/, local: ./b}\n";
    check(uploads).expect_code(2).expect_stderr(&["transfer `b` writes a destination overlapping transfer `a`"]);
    // Different buckets, or prefixes side by side, are fine.
    let fine = "version: 1\ntransfers:\n  - {name: a, direction: upload, bucket: b-1, prefix: x/, local: ./a}\n  - {name: b, direction: upload, bucket: b-1, prefix: xy/, local: ./a}\n";
    check(fine).expect_code(0);
}

#[test]
fn concurrency_and_sizes_are_range_checked() {
    for bad in ["0", "5000"] {
        check(&variant("region: ap-northeast-2", &format!("region: ap-northeast-2\n  concurrency: {bad}")))
            .expect_code(2)
            .expect_stderr(&[&format!("`concurrency: {bad}` is out of range"), "use 1 to 1024, or `auto`"]);
    }
    check(&variant("local: ./data", "local: ./data\n    concurrency: -3"))
        .expect_code(2)
        .expect_stderr(&["invalid value for `concurrency`", "found `-3`"]);
    check(&variant("local: ./data", "local: ./data\n    concurrency: many"))
        .expect_code(2)
        .expect_stderr(&["invalid value for `concurrency`: expected `auto` or a whole number", "found `many`"]);
    check(&variant("local: ./data", "local: ./data\n    concurrency: auto")).expect_code(0);
    check(&variant("local: ./data", "local: ./data\n    part_size: 1MiB"))
        .expect_code(2)
        .expect_stderr(&["`part_size: 1MiB` is out of range", "5MiB to 5GiB"]);
    check(&variant("local: ./data", "local: ./data\n    multipart_threshold: lots"))
        .expect_code(2)
        .expect_stderr(&["invalid value for `multipart_threshold`", "`8MiB`"]);
    check(&variant("local: ./data", "local: ./data\n    retries: 99"))
        .expect_code(2)
        .expect_stderr(&["`retries: 99` is out of range"]);
}

/// `destination: head` looks up only the source's keys, so it cannot find what to delete.
#[test]
fn destination_head_cannot_delete() {
    check(&variant("local: ./data", "local: ./data\n    destination: head\n    delete: true\n    max_delete: 5"))
        .expect_code(2)
        .expect_stderr(&[
            "`destination: head` cannot go with `delete: true`",
            "[m.yaml:10:18]",
            "remove `delete: true`",
        ]);
    check(&variant("local: ./data", "local: ./data\n    destination: head")).expect_code(0);
    check(&variant("local: ./data", "local: ./data\n    destination: heads")).expect_code(2).expect_stderr(&[
        "`destination`",
        "list",
        "head",
    ]);
}

/// `listing: {inventory}` wants the S3 URL of a report's manifest.json or of a folder, and a
/// `max_age` that accepts some report.
#[test]
fn an_inventory_listing_names_a_report() {
    let with = |listing: &str| check(&variant("local: ./data", &format!("local: ./data\n    listing:\n{listing}")));
    with("      inventory: inventory-bucket/report/manifest.json\n")
        .expect_code(2)
        .expect_stderr(&["is not the S3 URL of an inventory report", "[m.yaml:"]);
    with("      inventory: s3://inventory-bucket/report/data.csv.gz\n")
        .expect_code(2)
        .expect_stderr(&["names neither a report's manifest.json nor a folder", "end it with `/manifest.json`"]);
    with("      inventory: s3://inventory-bucket/cfg/\n      max_age: 0s\n")
        .expect_code(2)
        .expect_stderr(&["`max_age: 0` accepts no report"]);
    with("      inventory: s3://inventory-bucket/cfg/\n      max_age: 30h\n").expect_code(0);
    with("      inventoy: s3://inventory-bucket/cfg/\n").expect_code(2).expect_stderr(&["inventoy"]);
}

#[test]
fn delete_needs_a_cap() {
    check(&variant("local: ./data", "local: ./data\n    delete: true")).expect_code(2).expect_stderr(&[
        "`delete: true` needs `max_delete`",
        "[m.yaml:10:13]",
        "add `max_delete: N`",
    ]);
    check(&variant("local: ./data", "local: ./data\n    delete: true\n    max_delete: 0"))
        .expect_code(2)
        .expect_stderr(&["`max_delete: 0` forbids every deletion"]);
    check(&variant("local: ./data", "local: ./data\n    delete: true\n    max_delete: 500"))
        .expect_code(0)
        .expect_stdout(&["delete up to 500"]);
    check(&variant("local: ./data", "local: ./data\n    max_delete: 5"))
        .expect_code(0)
        .expect_stderr(&["`max_delete` has no effect without `delete: true`"]);
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let manifest = "\
version: 1
defaults:
  concurrency: 0
transfers:
  - name: one
    direction: download
    bucket: Bad_Bucket
    local: ./one
    compare: fast
  - name: two
    direction: upload
    bucket: good-bucket
    local: ./two
    region: nowhere
";
    let out = check(manifest);
    out.expect_code(2).expect_stderr(&[
        "[m.yaml:3:16]",
        "[m.yaml:7:13]",
        "[m.yaml:9:14]",
        "[m.yaml:14:13]",
        "not a valid manifest (4 errors)",
    ]);
}

#[test]
fn hangul_names_and_locations() {
    let manifest =
        "version: 1\ntransfers:\n  - name: 보고서\n    direction: download\n    bucket: 버킷이름\n    local: ./매출\n";
    check(manifest).expect_code(2).expect_stderr(&[
        "invalid bucket name `버킷이름`",
        "[m.yaml:5:13]",
        "`버` is not allowed",
    ]);
}

#[test]
fn several_files_are_all_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.yaml", VALID);
    write(dir.path(), "bad.yaml", &variant("version: 1", "version: 7"));
    haul(dir.path(), &["validate", "bad.yaml", "good.yaml"])
        .expect_code(2)
        .expect_stderr(&["unsupported manifest version `7`"])
        .expect_stdout(&["good.yaml: valid, 1 transfer"]);
}

#[test]
fn local_paths_expand_env_and_report_unset_variables() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.yaml", &variant("local: ./data", "local: ${HAUL_TEST_ROOT}/data"));
    let out = common::haul_command(dir.path())
        .env("HAUL_TEST_ROOT", "/srv/haul")
        .args(["validate", "m.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-> /srv/haul/data"));
    check(&variant("local: ./data", "local: ${HAUL_SURELY_UNSET_VAR}/data"))
        .expect_code(2)
        .expect_stderr(&["`local` uses `${HAUL_SURELY_UNSET_VAR}`, which is not set"]);
}

#[test]
fn examples_are_valid() {
    let examples = repo_root().join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| path.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "examples/ should hold at least three manifests: {files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = haul(&examples, &args);
    out.expect_code(0);
    assert!(out.stderr.is_empty(), "examples should validate without warnings:\n{}", out.stderr);
}

#[test]
fn init_writes_a_valid_manifest_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    haul(dir.path(), &["init", "nightly.yaml"]).expect_code(0).expect_stdout(&["wrote nightly.yaml"]);
    haul(dir.path(), &["validate", "nightly.yaml"]).expect_code(0).expect_stdout(&["daily-reports  download"]);
    let before = std::fs::read_to_string(dir.path().join("nightly.yaml")).unwrap();
    haul(dir.path(), &["init", "nightly.yaml"])
        .expect_code(2)
        .expect_stderr(&["`nightly.yaml` already exists", "does not overwrite"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("nightly.yaml")).unwrap(), before);
}

#[test]
fn checked_in_schema_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = haul(dir.path(), &["schema"]);
    out.expect_code(0);
    let checked_in = std::fs::read_to_string(repo_root().join("schemas/manifest.schema.json")).unwrap();
    assert!(
        out.stdout.trim() == checked_in.trim(),
        "schemas/manifest.schema.json is stale: run `cargo run -- schema > schemas/manifest.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    let transfer = &schema["$defs"]["TransferSpec"];
    assert_eq!(transfer["additionalProperties"], false);
    let required: Vec<&str> = transfer["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for key in ["name", "direction", "bucket"] {
        assert!(required.contains(&key), "{key} should be required: {required:?}");
    }
    // `local` for uploads and downloads, `to` for copies: validation asks for the right one.
    assert!(transfer["properties"]["local"].is_object() && transfer["properties"]["to"].is_object());
    assert_eq!(schema["$defs"]["CopyTo"]["required"], serde_json::json!(["bucket"]));
    assert!(transfer["properties"]["max_delete"].is_object(), "settings are flattened into transfers");
}

const COPY: &str = "\
version: 1
transfers:
  - name: mirror
    direction: copy
    bucket: partner-exports
    prefix: reports/
    request_payer: requester
    to:
      bucket: our-archive
      prefix: partner/reports/
      region: ap-northeast-2
      storage_class: STANDARD_IA
";

#[test]
fn a_copy_names_both_buckets_and_its_mistakes_are_explained() {
    check(COPY)
        .expect_code(0)
        .expect_stdout(&["mirror  copy  s3://partner-exports/reports/ -> s3://our-archive/partner/reports/"]);
    // Half-specified: no `to`, a `local` too, `to` in a download, a bad destination bucket.
    check(&COPY.replace("    to:\n      bucket: our-archive\n      prefix: partner/reports/\n      region: ap-northeast-2\n      storage_class: STANDARD_IA\n", ""))
        .expect_code(2)
        .expect_stderr(&["transfer #1 `mirror` is missing `to`", "destination's `bucket:`"]);
    check(&COPY.replace("    prefix: reports/\n", "    prefix: reports/\n    local: ./data\n"))
        .expect_code(2)
        .expect_stderr(&["a copy has no `local`", "[m.yaml:7:5]", "direction: download"]);
    check(
        &COPY
            .replace("direction: copy", "direction: download")
            .replace("    prefix: reports/\n", "    prefix: reports/\n    local: ./data\n"),
    )
    .expect_code(2)
    .expect_stderr(&["`to` is only for `direction: copy`", "write `direction: copy`"]);
    // Mistakes under `to` point at the key under `to`, not at `to`.
    check(&COPY.replace("bucket: our-archive", "bucket: s3://our-archive/x"))
        .expect_code(2)
        .expect_stderr(&["`bucket` is a URL", "[m.yaml:9:15]"]);
    check(&COPY.replace("storage_class: STANDARD_IA", "storage_class: FAST")).expect_code(2).expect_stderr(&[
        "invalid value for `storage_class`",
        "[m.yaml:12:22]",
        "STANDARD_IA",
    ]);
    check(
        &COPY
            .replace("bucket: our-archive", "bucket: partner-exports")
            .replace("prefix: partner/reports/", "prefix: reports/copy/"),
    )
    .expect_code(2)
    .expect_stderr(&["the copy's destination `s3://partner-exports/reports/copy/` is inside its source", "[m.yaml:9:"]);
    check(&COPY.replace("      region: ap-northeast-2\n", "      regoin: ap-northeast-2\n"))
        .expect_code(2)
        .expect_stderr(&["unknown key `regoin` in `to`", "[m.yaml:11:7]", "did you mean `region`?"]);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    haul(dir.path(), &["validate"]).expect_code(2).expect_stderr(&["MANIFEST"]);
    haul(dir.path(), &["frobnicate"]).expect_code(2);
    haul(dir.path(), &["--help"]).expect_code(0).expect_stdout(&["Exit codes:", "validate"]);
}

/// `haul --version` names the commit the binary was built from (these tests run from a
/// checkout), and its date: what a bug report needs.
#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let out = haul(dir.path(), &["--version"]);
    out.expect_code(0);
    let line = out.stdout.trim();
    let rest = line.strip_prefix(&format!("haul {} (", env!("CARGO_PKG_VERSION"))).unwrap_or_else(|| panic!("{line}"));
    let (hash, rest) = rest.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    assert!(hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    let date = rest.trim_end_matches(')').trim_end_matches(" +modified");
    assert!(date.parse::<jiff::civil::Date>().is_ok(), "{line}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(common::repo_root())
        .output();
    if let Some(head) = head.ok().filter(|head| head.status.success()) {
        assert_eq!(hash, String::from_utf8_lossy(&head.stdout).trim(), "{line}");
    }
}

#[test]
fn a_local_folder_through_a_symlink_is_resolved_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("real/data")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let path = write(
        dir.path(),
        "m.yaml",
        "version: 1\ntransfers:\n  - name: t\n    direction: download\n    bucket: some-bucket\n    local: ./link/data\n",
    );
    let real = std::fs::canonicalize(dir.path().join("real/data")).unwrap();
    haul(dir.path(), &["validate", path.to_str().unwrap()])
        .expect_code(0)
        .expect_stdout(&["is reached through a symbolic link: it is", &real.display().to_string()]);
}

#[test]
fn deep_nesting_is_an_error_with_its_place_not_a_crash() {
    let deep = format!("version: 1\nfoo:\n  {}1\n", "- ".repeat(40_000));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.yaml", &deep);
    for command in ["validate", "plan"] {
        haul(dir.path(), &[command, "m.yaml"]).expect_code(2).expect_stderr(&[
            "nested more than 32 levels deep",
            "m.yaml:3:",
            "check for stray `- ` or `[`",
        ]);
    }
}

#[test]
fn text_from_the_file_is_shown_escaped_and_cut() {
    // A terminal escape sequence in a value (it would retitle the window and turn it red).
    let hostile = variant("name: daily", "name: a\u{1b}]0;PWNED\u{7}\u{1b}[31m\n    bukcet: x");
    let out = check(&hostile);
    out.expect_code(2).expect_stderr(&["\\u{1b}]0;PWNED\\u{7}\\u{1b}[31m"]);
    assert!(!out.all().contains('\u{1b}') && !out.all().contains('\u{7}'), "raw control characters:\n{}", out.all());

    // A 200 KB line is shown around the error, not whole.
    let long = variant("prefix: reports/", &format!("prefix: {} bad: [", "p".repeat(200_000)));
    let out = check(&long);
    out.expect_code(2).expect_stderr(&["m.yaml:8:", "…"]);
    let longest = out.all().lines().map(|line| line.chars().count()).max().unwrap();
    assert!(longest < 400, "a line of {longest} characters");
}

#[test]
fn extensions_are_literal_text() {
    // `!` opens a negated class inside `[...]` in a glob: as an extension it is just a `!`.
    check(&variant("extensions: [csv, parquet]", "extensions: [\"a!b\", \"c++\"]")).expect_code(0);
}

#[test]
fn every_problem_is_reported_in_one_run_in_haul_words() {
    let manifest = "\
version: 1
defaults:
  region: ap-northeast-2
transfers:
  - name: a
    direction: sideways
    bucket: analytics-exports
    local: ./a
    multipart_threshold: 1MiB
  - name: b
    direction: download
    bucket: analytics-exports
    local: ./data
    delete: maybe
    extensions: csv
    part_size: 6GB
  - name: c
    direction: download
    bucket: analytics-exports
    local: ./data
";
    let out = check(manifest);
    out.expect_code(2).expect_stderr(&[
        // A bad direction does not hide that transfer's settings...
        "`multipart_threshold: 1MiB` is out of range",
        // ...nor do type errors hide ranges, or per-transfer errors the overlap check.
        "invalid value for `delete`: expected `true` or `false`",
        "write `delete: true` or `delete: false`",
        "invalid value for `extensions`: expected a list",
        "write `extensions: [csv]`",
        // What the user wrote, not how haul reads it.
        "`part_size: 6GB` is out of range",
        "transfer `c` writes the same destination as transfer `b`",
        "(6 errors)",
    ]);
    for serde in ["Value was not true or false", "expected a sequence", "string \"csv\"", "5859375KiB"] {
        assert!(!out.all().contains(serde), "{serde:?} in:\n{}", out.all());
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_cli_definitions() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = haul(dir.path(), &["completions", shell]);
        out.expect_code(0);
        for word in ["apply", "validate", "shard", "detailed-exitcode"] {
            assert!(out.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = haul(dir.path(), &["man"]);
    man.expect_code(0).expect_stdout(&[".TH haul 1", "apply", "validate", "whoami"]);
    // A closed pipe is not an error here either.
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let out = common::haul_into_closed_pipe(dir.path(), args);
        out.expect_code(0);
        assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn bandwidth_is_a_rate() {
    check(&variant("    extensions: [csv, parquet]", "    bandwidth: 50MiB/s")).expect_code(0);
    check(&variant("    extensions: [csv, parquet]", "    bandwidth: 50MiB")).expect_code(2).expect_stderr(&[
        "invalid value for `bandwidth`",
        "`50MiB/s`",
        "[m.yaml:10:",
    ]);
    let dir = tempfile::tempdir().unwrap();
    haul(dir.path(), &["apply", "m.yaml", "--bwlimit", "fast"]).expect_code(2).expect_stderr(&["`fast` is not a rate"]);
}

/// `update_properties` without a property to compare is a warning at its line; on a download
/// it is said to apply to uploads.
#[test]
fn update_properties_that_compares_nothing_is_a_warning() {
    let upload = variant("direction: download", "direction: upload");
    let idle = upload
        .replace("    extensions: [csv, parquet]\n", "    extensions: [csv, parquet]\n    update_properties: true\n");
    check(&idle).expect_code(0).expect_stderr(&[
        "m.yaml:11:24",
        "`update_properties: true` compares nothing",
        "set the properties objects should have",
    ]);
    let useful =
        idle.replace("    update_properties: true\n", "    update_properties: true\n    content_type: text/csv\n");
    let out = check(&useful);
    out.expect_code(0);
    assert!(!out.stderr.contains("compares nothing"), "{}", out.stderr);
    let download = VALID
        .replace("    extensions: [csv, parquet]\n", "    extensions: [csv, parquet]\n    update_properties: true\n");
    check(&download).expect_code(0).expect_stderr(&["`update_properties` applies to uploads"]);
}
