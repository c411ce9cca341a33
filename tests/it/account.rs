//! `haul whoami`, `haul ls` and `haul check` against moto_server (STS, owner IDs, IAM-enforced
//! access) and s3s-fs.

use crate::common;

use crate::common::{Fixture, Outcome, haul_with, write};

#[test]
fn whoami_names_the_source_masks_the_key_and_never_shows_the_secret() {
    let f = Fixture::moto();
    let out = haul_with(
        f.dir.path(),
        &[("RUST_LOG", "trace")],
        &["whoami", "--endpoint", &f.endpoint, "--region", "us-east-1", "--output", "json"],
    );
    out.expect_code(0);
    assert!(!out.all().contains(haul_testkit::SECRET_KEY), "the secret key was printed");
    assert!(!out.all().contains(haul_testkit::ACCESS_KEY), "the whole access key was printed");
    let who: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(who["access_key"], "AKIA…0001");
    assert_eq!(who["credential_source"], "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
    assert_eq!(who["region"], "us-east-1");
    assert_eq!(who["region_source"], "--region");
    assert_eq!(who["account"], "123456789012");
    assert!(who["arn"].as_str().unwrap().starts_with("arn:aws:"));
    assert!(who["user_id"].as_str().is_some());
    let canonical = who["canonical_user_id"].as_str().unwrap();
    assert!(canonical.len() >= 32 && canonical.bytes().all(|b| b.is_ascii_hexdigit()), "{canonical}");

    let table = haul_with(f.dir.path(), &[], &["whoami", "--endpoint", &f.endpoint]);
    table.expect_code(0).expect_stdout(&[
        "credentials   environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
        "access key    AKIA…0001",
        "account       123456789012",
        "canonical id  ",
    ]);
    assert!(!table.all().contains(haul_testkit::SECRET_KEY));
}

#[test]
fn whoami_reads_every_target_of_a_manifest() {
    let f = Fixture::moto();
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: eu-west-1\ntransfers:\n  - name: a\n    direction: download\n    bucket: plan-test\n    local: ./a\n  - name: b\n    direction: download\n    bucket: plan-test\n    local: ./b\n    request_payer: requester\n    checksum: off\n",
        f.endpoint
    );
    write(f.dir.path(), "m.yaml", &text);
    let out = haul_with(f.dir.path(), &[], &["whoami", "--manifest", "m.yaml", "--output", "json"]);
    out.expect_code(0);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // Request payer and the checksum header do not change who one is: one distinct target.
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["region"], "eu-west-1");
    assert_eq!(all[0]["region_source"], "the manifest");
}

#[test]
fn whoami_without_credentials_lists_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing from this machine's environment: no keys, no profile files, no IMDS.
    let bare = |command: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_haul"))
            .args([command, "--endpoint", "http://127.0.0.1:1", "--region", "us-east-1"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", dir.path())
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        Outcome::from(output)
    };
    bare("whoami").expect_code(1).expect_stdout(&[
        "credentials   none found",
        "no AWS credentials found; haul looked in: environment",
        "~/.aws/credentials",
    ]);
    bare("ls").expect_code(1).expect_stderr(&["no AWS credentials found", "haul looked in: environment"]);
}

/// Runs haul in `f`'s folder with nothing from the machine's environment but `env`.
fn bare(f: &Fixture, env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_haul"));
    command
        .args(args)
        .current_dir(f.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", f.dir.path())
        .env("NO_COLOR", "1")
        .env("AWS_CONFIG_FILE", f.path("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", f.path("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (key, value) in env {
        command.env(key, value);
    }
    Outcome::from(command.output().unwrap())
}

#[test]
fn every_command_names_a_credentials_problem_once_in_the_same_words() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.manifest("upload", "");
    let ls = ["ls", "s3://plan-test/", "--endpoint", f.endpoint.as_str(), "--path-style"];
    let commands: [&[&str]; 4] = [&["plan", &m], &["apply", &m], &["check", &m], &ls];
    let wrong = [("AWS_ACCESS_KEY_ID", haul_testkit::ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", "wrong")];
    for args in commands {
        // None at all.
        let out = bare(&f, &[], args);
        out.expect_code(1);
        let all = out.all();
        assert_eq!(all.matches("no AWS credentials found").count(), 1, "{args:?}:\n{all}");
        assert!(all.contains("haul looked in: environment"), "{args:?}:\n{all}");
        assert!(!all.contains("dispatch failure") && !all.contains("IMDS"), "SDK words in {args:?}:\n{all}");
        // A wrong secret.
        let out = bare(&f, &wrong, args);
        out.expect_code(1);
        let all = out.all();
        assert_eq!(all.matches("the access key or secret is wrong").count(), 1, "{args:?}:\n{all}");
        assert!(!all.contains("HeadBucket denied"), "{args:?}:\n{all}");
    }
}

fn ls(f: &Fixture, args: &[&str]) -> Outcome {
    let mut all = vec!["ls", "--endpoint", &f.endpoint, "--path-style", "--region", "us-east-1"];
    all.extend_from_slice(args);
    common::haul(f.dir.path(), &all)
}

#[test]
fn ls_lists_buckets_prefixes_and_objects_with_hangul_names() {
    let f = Fixture::moto();
    f.put("data/a.csv", b"12345");
    f.put("data/보고서/매출.csv", b"1234567890");
    f.put("data/sub/x.parquet", b"PAR1");
    ls(&f, &[]).expect_code(0).expect_stdout(&[" plan-test\n"]);

    let out = ls(&f, &["s3://plan-test/data/"]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].ends_with("         5 a.csv"), "{}", lines[0]);
    assert_eq!(lines[1].trim(), "PRE sub/");
    assert_eq!(lines[2].trim(), "PRE 보고서/");

    let out = ls(&f, &["s3://plan-test/data/", "--recursive", "--human-readable", "--summarize", "--owner"]);
    out.expect_code(0).expect_stdout(&["data/보고서/매출.csv", "10 B", "Total Objects: 3\n   Total Size: 19 B"]);
    // The owner column: moto's object owner, a 64-hex canonical ID.
    let first = out.stdout.lines().next().unwrap();
    let hex64 = |word: &str| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(first.split_whitespace().any(hex64), "{first}");

    let out = ls(&f, &["s3://plan-test/data/", "--recursive", "--output", "json"]);
    out.expect_code(0);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(listed["summary"]["objects"], 3);
    assert_eq!(listed["entries"][1]["key"], "data/sub/x.parquet");
    assert_eq!(listed["entries"][2]["key"], "data/보고서/매출.csv");
    assert_eq!(listed["entries"][2]["size"], 10);
    // Times are RFC 3339 in UTC, in JSON and in the table alike.
    let time = listed["entries"][0]["last_modified"].as_str().unwrap();
    assert!(time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'), "{time}");
    let table = ls(&f, &["s3://plan-test/data/", "--recursive"]);
    let first = table.stdout.lines().next().unwrap();
    assert!(first.as_bytes()[10] == b'T' && first.as_bytes()[19] == b'Z', "{first}");
}

#[test]
fn ls_streams_past_one_page() {
    let f = Fixture::s3s_fs();
    for i in 0..1100 {
        std::fs::create_dir_all(f.path("server/plan-test/many")).unwrap();
        std::fs::write(f.path(&format!("server/plan-test/many/{i:05}.csv")), b"x").unwrap();
    }
    let out = ls(&f, &["s3://plan-test/many/", "--summarize"]);
    out.expect_code(0).expect_stdout(&["Total Objects: 1100", "01099.csv"]);
}

#[test]
fn ls_lists_keys_with_control_characters() {
    // XML 1.0 cannot carry U+0001: the plain listing is unreadable; haul asks again URL-encoded.
    let f = Fixture::moto();
    f.put("data/ctl\u{1}.csv", b"x");
    f.put("data/plain + sign.csv", b"yy");
    let out = ls(&f, &["s3://plan-test/data/", "--recursive", "--output", "json"]);
    out.expect_code(0);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let keys: Vec<&str> = listed["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["data/ctl\u{1}.csv", "data/plain + sign.csv"]);
    // For people, the control character is shown escaped, never sent to the terminal.
    let out = ls(&f, &["s3://plan-test/data/", "--recursive"]);
    out.expect_code(0);
    assert!(!out.stdout.contains('\u{1}') && out.stdout.contains("ctl"), "{}", out.stdout);
}

#[test]
fn ls_errors_say_what_to_do() {
    let f = Fixture::moto();
    ls(&f, &["s3://no-such-bucket-here/"])
        .expect_code(1)
        .expect_stderr(&["cannot list s3://no-such-bucket-here/: NoSuchBucket", "`haul ls` lists the buckets"]);
    ls(&f, &["bucket/prefix"]).expect_code(2).expect_stderr(&["`bucket/prefix` is not an S3 URL", "s3://bucket"]);
    common::haul(f.dir.path(), &["ls", "--endpoint", "http://127.0.0.1:1", "--region", "us-east-1"])
        .expect_code(1)
        .expect_stderr(&["cannot list buckets", "check the endpoint URL, that the server runs"]);
}

const CSV_PARQUET_ONLY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::iam-test"},
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
   "Resource": ["arn:aws:s3:::iam-test/*.csv", "arn:aws:s3:::iam-test/*.parquet"]}]}"#;

#[test]
fn check_reports_allowed_and_denied_extensions_and_leaves_nothing_behind() {
    let keys = ["data/a.csv", "data/b.parquet", "data/c.json", "up/old.csv"];
    let (moto, key_id, secret) =
        haul_testkit::Moto::with_iam_user("iam-test", CSV_PARQUET_ONLY, &keys).expect("moto_server with IAM");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("local")).unwrap();
    for name in ["x.csv", "y.json"] {
        std::fs::write(dir.path().join("local").join(name), name).unwrap();
    }
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: down\n    direction: download\n    bucket: iam-test\n    prefix: data/\n    local: ./back\n  - name: up\n    direction: upload\n    bucket: iam-test\n    prefix: up/\n    local: ./local\n  - name: missing\n    direction: download\n    bucket: no-such-bucket-here\n    local: ./m\n",
        moto.endpoint()
    );
    write(dir.path(), "m.yaml", &text);
    let env = [("AWS_ACCESS_KEY_ID", key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", secret.as_str())];
    let out = haul_with(dir.path(), &env, &["check", "m.yaml"]);
    out.expect_code(1);
    let expect_row = |transfer: &str, check: &str, status: &str| {
        let found = out.stdout.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() >= 3
                && words[0] == transfer
                && line.contains(&format!(" {check} "))
                && line.contains(&format!(" {status} "))
        });
        assert!(found, "no row {transfer} {check} {status} in:\n{}", out.stdout);
    };
    // moto maps HeadBucket to an action the policy does not name; AWS maps it to s3:ListBucket.
    expect_row("down", "bucket", "warn");
    expect_row("down", "list", "ok");
    expect_row("down", "read *.csv", "ok");
    expect_row("down", "read *.parquet", "ok");
    expect_row("down", "read *.json", "FAIL");
    expect_row("up", "write *.csv", "ok");
    expect_row("up", "write *.json", "FAIL");
    // Without rights on a bucket, whether it exists cannot be told: listing fails.
    expect_row("missing", "list", "FAIL");

    let out = haul_with(dir.path(), &env, &["check", "m.yaml", "--only", "up", "--output", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let write_csv = rows.as_array().unwrap().iter().find(|r| r["check"] == "write *.csv").unwrap();
    assert_eq!(write_csv["status"], "ok");
    assert!(write_csv["detail"].as_str().unwrap().contains("nothing was stored"), "{write_csv}");

    // No probe object was left behind (listed with the setup credentials, which moto lets by).
    let listed = haul_with(
        dir.path(),
        &env,
        &["ls", "s3://iam-test/", "--recursive", "--endpoint", moto.endpoint(), "--path-style"],
    );
    listed.expect_code(0);
    assert!(!listed.stdout.contains("haul-write-check"), "{}", listed.stdout);
    assert_eq!(listed.stdout.lines().count(), 4, "{}", listed.stdout);
}

#[test]
fn whoami_on_an_endpoint_without_sts_says_so_and_succeeds_when_s3_answers() {
    // s3s-fs, like many S3-compatible servers, has no STS.
    let f = Fixture::s3s_fs();
    let out = haul_with(f.dir.path(), &[], &["whoami", "--endpoint", &f.endpoint]);
    out.expect_code(0).expect_stdout(&[
        "access key    AKIA…0001",
        "this endpoint has no STS (caller identity): account and ARN are not known here",
    ]);
    assert!(!out.all().contains("HTTP 501"), "{}", out.all());
}

#[test]
fn check_looks_at_the_local_side_too() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"a");
    // A download into a folder this user may not write (as `nobody`: root writes anywhere).
    std::fs::set_permissions(f.path("local"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let m = f.manifest("download", "");
    std::fs::set_permissions(f.path(&m), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = common::haul_as_nobody(&f, &["check", &m]);
    out.expect_code(1).expect_stdout(&["local", "FAIL", "cannot write in `", "check its owner and permissions"]);
    // Writable: said so, with the free space.
    std::fs::set_permissions(f.path("local"), std::fs::Permissions::from_mode(0o777)).unwrap();
    common::haul_as_nobody(&f, &["check", &m]).expect_stdout(&["can write in `", " free"]);

    // An upload from a folder that is not there.
    let m = f.manifest("upload", "");
    std::fs::remove_dir_all(f.path("local")).unwrap();
    common::haul(f.dir.path(), &["check", &m]).expect_code(1).expect_stdout(&["does not exist: check `local`"]);
}

#[test]
fn endpoint_url_is_accepted_as_aws_cli_spells_it() {
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"a");
    let out =
        haul_with(f.dir.path(), &[], &["ls", "s3://plan-test/data/", "--endpoint-url", &f.endpoint, "--path-style"]);
    out.expect_code(0).expect_stdout(&["a.csv"]);
}
