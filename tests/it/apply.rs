//! `haul apply` against a real S3 server on 127.0.0.1: round trips byte for byte, re-plans
//! that find nothing to do, deletes within and beyond their cap, saved plans and staleness,
//! and an interrupted download that leaves nothing under the real name.

use crate::common;

use crate::common::{Fixture, bytes, tree, write};

const MIB: usize = 1024 * 1024;

/// An upload of `./local` to `data/` and a download of `data/` to `./back`, with 5 MiB
/// multipart threshold and parts so that multipart paths run on small files.
fn round_trip_manifest(f: &Fixture, extra: &str) -> String {
    round_trip_manifest_at(f, &f.endpoint, extra)
}

fn round_trip_manifest_at(f: &Fixture, endpoint: &str, extra: &str) -> String {
    f.two_way_manifest(endpoint, &format!("  concurrency: 4\n{extra}"))
}

fn report(out: &common::Outcome) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr))
}

fn moved(report: &serde_json::Value, transfer: usize) -> (u64, u64) {
    let moved = &report["transfers"][transfer]["moved"];
    (moved["objects"].as_u64().unwrap(), moved["bytes"].as_u64().unwrap())
}

#[test]
fn round_trip_is_byte_identical_and_a_second_run_does_nothing() {
    let f = Fixture::s3s_fs();
    let files: Vec<(&str, usize)> = vec![
        ("zero.csv", 0),
        ("one.csv", 1),
        ("edge/below-threshold.bin", 5 * MIB - 1),
        ("edge/at-threshold.bin", 5 * MIB),
        ("edge/above-threshold.bin", 5 * MIB + 1),
        ("edge/three-parts.bin", 12 * MIB),
        ("보고서/2026/매출 요약.csv", 100),
        ("odd/a b+c%d#e?f=g.csv", 10),
        ("deep/1/2/3/4/5/6/7/8/9/leaf.parquet", 20),
    ];
    for (seed, (name, len)) in files.iter().enumerate() {
        f.file(name, &bytes(*len, seed as u64));
    }
    let m = round_trip_manifest(&f, "");
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(0);
    let run = report(&out);
    let total: u64 = files.iter().map(|(_, len)| *len as u64).sum();
    assert_eq!(moved(&run, 0), (files.len() as u64, total));
    assert_eq!(moved(&run, 1), (files.len() as u64, total));
    assert_eq!(run["failed"]["objects"], 0);

    // Every name arrived as the same key, and came back as the same bytes.
    let mut expected_keys: Vec<String> = files.iter().map(|(name, _)| format!("data/{name}")).collect();
    expected_keys.sort();
    assert_eq!(f.keys(), expected_keys);
    assert_eq!(f.get("data/edge/three-parts.bin"), bytes(12 * MIB, 5));
    assert_eq!(tree(&f.path("back")), tree(&f.path("local")));

    // Downloads carry the object's LastModified, so nothing looks changed afterwards.
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0).expect_stdout(&["nothing to do; 9 unchanged"]);
    let again = f.apply(&[&m, "--output", "json", "--quiet"]);
    again.expect_code(0);
    assert_eq!(moved(&report(&again), 0), (0, 0));
    assert_eq!(moved(&report(&again), 1), (0, 0));
}

#[test]
fn one_changed_file_moves_alone() {
    let f = Fixture::s3s_fs();
    for (seed, name) in ["a.csv", "b.csv", "c/d.csv"].iter().enumerate() {
        f.file(name, &bytes(1000, seed as u64));
    }
    let m = round_trip_manifest(&f, "");
    f.apply(&[&m, "--quiet"]).expect_code(0);
    f.file("c/d.csv", b"changed");
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(0);
    let run = report(&out);
    assert_eq!(moved(&run, 0), (1, 7));
    assert_eq!(moved(&run, 1), (1, 7));
    assert_eq!(run["transfers"][0]["skipped"]["unchanged"]["objects"], 2);
    assert_eq!(std::fs::read(f.path("back/c/d.csv")).unwrap(), b"changed");
}

#[test]
fn the_table_report_says_what_moved() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"1,2\n");
    f.file("skip.log", b"x");
    let m = round_trip_manifest(&f, "  exclude: ['*.log']\n");
    f.apply(&[&m]).expect_code(0).expect_stdout(&[
        "up  upload\n  uploaded 1 (4 B); 1 filtered",
        "down  download\n  downloaded 1 (4 B)",
        "moved 2 objects (8 B)",
    ]);
}

#[test]
fn deletes_stay_within_max_delete() {
    let f = Fixture::s3s_fs();
    for name in ["keep.csv", "a.csv", "b.csv", "c.csv", "d.csv", "e.csv"] {
        f.file(name, name.as_bytes());
    }
    let m = round_trip_manifest(&f, "  delete: true\n  max_delete: 2\n");
    f.apply(&[&m, "--quiet"]).expect_code(0);

    // Two gone locally: the upload deletes them remotely, then the download deletes them from ./back.
    for name in ["a.csv", "b.csv"] {
        std::fs::remove_file(f.path("local").join(name)).unwrap();
    }
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(0);
    let run = report(&out);
    assert_eq!(run["transfers"][0]["deleted"]["objects"], 2);
    assert_eq!(run["transfers"][1]["deleted"]["objects"], 2);
    assert_eq!(f.keys(), vec!["data/c.csv", "data/d.csv", "data/e.csv", "data/keep.csv"]);
    assert_eq!(tree(&f.path("back")), tree(&f.path("local")));

    // Three more would exceed the cap: that transfer stops, nothing is deleted, exit 1.
    for name in ["c.csv", "d.csv", "e.csv"] {
        std::fs::remove_file(f.path("local").join(name)).unwrap();
    }
    f.apply(&[&m, "--quiet"])
        .expect_code(1)
        .expect_stdout(&["transfer `up` would delete 3 objects, more than its `max_delete: 2`", "raise `max_delete`"]);
    assert_eq!(f.keys(), vec!["data/c.csv", "data/d.csv", "data/e.csv", "data/keep.csv"]);
}

/// A server whose listing pages are not in key order (the proxy reverses each page): applying
/// the manifest lists it again, sorted on disk, and moves everything exactly; so does a saved
/// plan, whose check starts over once the server is known to list out of order.
#[test]
fn a_server_listing_out_of_key_order_is_sorted_for_apply_and_for_a_saved_plan() {
    let f = Fixture::s3s_fs();
    for name in ["a.csv", "b.csv", "c.csv", "d.csv"] {
        f.file(name, name.as_bytes());
    }
    let direct = round_trip_manifest(&f, "");
    f.apply(&[&direct, "--only", "up", "--quiet"]).expect_code(0);
    let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    let m = round_trip_manifest_at(&f, proxy.endpoint(), "");
    f.plan(&[&m, "--only", "down", "-o", "plan.json"]).expect_code(0);

    proxy.set_faults(&[haul_testkit::FaultRule::new(haul_testkit::Fault::ReverseListing, 1, u64::MAX)]);
    f.apply(&["plan.json", "--quiet"]).expect_code(0);
    assert!(proxy.injected()[0] > 0, "no listing page was reversed");
    for name in ["a.csv", "b.csv", "c.csv", "d.csv"] {
        assert_eq!(std::fs::read(f.path("back").join(name)).unwrap(), name.as_bytes());
    }
    std::fs::remove_dir_all(f.path("back")).unwrap();

    let out = f.apply(&[&m, "--only", "down", "--output", "json", "--quiet"]);
    out.expect_code(0);
    for name in ["a.csv", "b.csv", "c.csv", "d.csv"] {
        assert_eq!(std::fs::read(f.path("back").join(name)).unwrap(), name.as_bytes());
    }
    // Each object counted once: moved before the listing was found out of order, or after.
    let run = report(&out);
    assert_eq!(run["transfers"][0]["moved"]["objects"], 4, "{run}");
    assert!(run["transfers"][0]["listed_again"].is_object(), "{run}");
    assert!(run["transfers"][0]["skipped"].get("unchanged").is_none_or(|tally| tally["objects"] == 0), "{run}");
    // And the next run finds nothing to do, through the same server.
    f.plan(&[&m, "--only", "down"]).expect_code(0).expect_stdout(&["nothing to do"]);
}

#[test]
fn saved_plan_applies_exactly_and_refuses_when_stale() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"first");
    f.file("b.csv", b"second");
    let m = round_trip_manifest(&f, "");
    f.plan(&[&m, "--only", "up", "-o", "plan.json"]).expect_code(0).expect_stdout(&["saved to plan.json"]);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path("plan.json")).unwrap()).unwrap();
    assert_eq!(saved["format"], "haul-plan");
    assert_eq!(saved["manifest"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(saved["transfers"][0]["actions"][0]["source"]["size"], 5);

    // A file that appears after the plan is not in it: apply does what the plan says, only.
    f.file("c.csv", b"late");
    f.apply(&["plan.json", "--quiet"]).expect_code(0);
    assert_eq!(f.keys(), vec!["data/a.csv", "data/b.csv"]);

    // A plan whose source changed since is stale: exit 4, and nothing is written.
    f.plan(&[&m, "--only", "up", "-o", "plan2.json"]).expect_code(0);
    f.file("c.csv", b"changed after planning");
    f.apply(&["plan2.json"]).expect_code(4).expect_stderr(&[
        "the saved plan is stale: 1 object changed since it was made; nothing was done",
        "up: c.csv (source: planned 4 bytes",
        "now 22 bytes",
        "review and save a new plan",
    ]);
    assert_eq!(f.keys(), vec!["data/a.csv", "data/b.csv"]);

    // An edited manifest makes every plan made from it stale.
    f.plan(&[&m, "--only", "up", "-o", "plan3.json"]).expect_code(0);
    let text = std::fs::read_to_string(f.path(&m)).unwrap();
    write(f.dir.path(), &m, &text.replace("concurrency: 4", "concurrency: 3"));
    f.apply(&["plan3.json"]).expect_code(4).expect_stderr(&["changed since the plan was saved"]);
    assert_eq!(f.keys(), vec!["data/a.csv", "data/b.csv"]);

    f.apply(&["plan3.json", "--only", "up"]).expect_code(2).expect_stderr(&["a saved plan is applied whole"]);
}

#[test]
fn an_interrupted_download_leaves_no_file_under_its_real_name_and_the_rerun_finishes() {
    let f = Fixture::s3s_fs();
    let size = 64 * MIB;
    let body = bytes(size, 7);
    f.put("data/big.bin", &body);
    let m = round_trip_manifest(&f, "");
    let back = f.path("back");
    std::fs::create_dir_all(&back).unwrap();

    let mut child = common::haul_command(f.dir.path())
        .args(["apply", &m, "--only", "down", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL: no cleanup) as soon as the download is under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut saw_temp = false;
    while std::time::Instant::now() < deadline {
        let names: Vec<String> =
            std::fs::read_dir(&back).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        if names.iter().any(|n| n.starts_with(".haul-") && n.ends_with(".tmp")) {
            saw_temp = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saw_temp, "the download should have been caught in progress");
    // Under its real name there is nothing, or (if it finished just before the kill) all of it.
    if let Ok(found) = std::fs::read(back.join("big.bin")) {
        assert!(found == body, "a partial file sits under the real name");
    }

    // The rerun finishes the job; the killed run's temp file is never taken for data.
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert!(std::fs::read(back.join("big.bin")).unwrap() == body);
    f.plan(&[&m, "--only", "down", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn requester_pays_sends_the_header_on_every_request_and_only_then() {
    let f = Fixture::s3s_fs();
    let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    f.file("small.csv", b"1,2\n");
    f.file("big.bin", &bytes(6 * MIB, 1)); // multipart up, ranged down
    let m = round_trip_manifest_at(&f, proxy.endpoint(), "  request_payer: requester\n");
    f.plan(&[&m]).expect_code(0);
    f.apply(&[&m, "--quiet"]).expect_code(0);
    assert_eq!(tree(&f.path("back")), tree(&f.path("local")));
    let requests = proxy.requests();
    // Listing, PUT, multipart create / part / complete, GET and ranged GET all went through.
    let seen = |test: &dyn Fn(&haul_testkit::RecordedRequest) -> bool| requests.iter().any(test);
    assert!(seen(&|r| r.method == "GET" && r.uri.contains("list-type=2")));
    assert!(seen(&|r| r.method == "POST" && r.uri.contains("uploads")));
    assert!(seen(&|r| r.method == "PUT" && r.uri.contains("partNumber=2")));
    assert!(seen(&|r| r.method == "POST" && r.uri.contains("uploadId=")));
    assert!(seen(&|r| r.method == "PUT" && !r.uri.contains("uploadId")));
    assert!(seen(&|r| r.method == "GET" && r.header("range").is_some()));
    assert!(seen(&|r| r.method == "GET" && r.header("range").is_none() && !r.uri.contains("list-type")));
    for request in &requests {
        assert_eq!(request.header("x-amz-request-payer"), Some("requester"), "{} {}", request.method, request.uri);
        // Part of what is signed, so a server that checks requester pays sees it as sent.
        assert!(request.header("authorization").unwrap().contains("x-amz-request-payer"));
    }

    let quiet = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    let m = round_trip_manifest_at(&f, quiet.endpoint(), "");
    f.plan(&[&m]).expect_code(0);
    assert!(!quiet.requests().is_empty());
    assert!(quiet.requests().iter().all(|r| r.header("x-amz-request-payer").is_none()));
}

/// Read and write only `*.csv` and `*.parquet` under the bucket; list everything.
const CSV_PARQUET_ONLY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::iam-test"},
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
   "Resource": ["arn:aws:s3:::iam-test/*.csv", "arn:aws:s3:::iam-test/*.parquet"]}]}"#;

#[test]
fn access_denied_on_some_extensions_is_reported_with_the_filter_to_add() {
    let keys = ["data/a.csv", "data/매출.csv", "data/b.parquet", "data/c.json", "data/d.json", "data/e.log"];
    let (moto, key_id, secret) =
        haul_testkit::Moto::with_iam_user("iam-test", CSV_PARQUET_ONLY, &keys).expect("moto_server with IAM");
    let dir = tempfile::tempdir().unwrap();
    let manifest = |extra: &str| {
        let text = format!(
            "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\n{extra}transfers:\n  - name: down\n    direction: download\n    bucket: iam-test\n    prefix: data/\n    local: ./back\n  - name: up\n    direction: upload\n    bucket: iam-test\n    prefix: up/\n    local: ./local\n",
            moto.endpoint()
        );
        write(dir.path(), "m.yaml", &text);
    };
    for name in ["x.csv", "y.parquet", "z.json"] {
        std::fs::create_dir_all(dir.path().join("local")).unwrap();
        std::fs::write(dir.path().join("local").join(name), name).unwrap();
    }
    let env = [("AWS_ACCESS_KEY_ID", key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", secret.as_str())];
    let run = |args: &[&str]| common::haul_with(dir.path(), &env, args);

    manifest("");
    let out = run(&["apply", "m.yaml", "--quiet", "--report", "run.json"]);
    out.expect_code(1).expect_stdout(&[
        "down  download\n  downloaded 3",
        "FAILED 3",
        "failed: AccessDenied on *.json: 2 objects, e.g. c.json, d.json",
        "failed: AccessDenied on *.log: 1 object, e.g. e.log",
        "hint: your credentials may only allow *.csv, *.parquet: add `extensions: [csv, parquet]` to this transfer",
        "up  upload\n  uploaded 2",
        "failed: AccessDenied on *.json: 1 object, e.g. z.json",
    ]);
    // The allowed ones arrived whole; the denied ones left nothing behind.
    assert_eq!(std::fs::read(dir.path().join("back/매출.csv")).unwrap(), "data/매출.csv".as_bytes());
    let mut arrived: Vec<String> = tree(&dir.path().join("back")).into_keys().collect();
    arrived.sort();
    assert_eq!(arrived, vec!["a.csv", "b.parquet", "매출.csv"]);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    let groups = &report["transfers"][0]["failure_groups"];
    assert_eq!(groups[0]["code"], "AccessDenied");
    assert_eq!(groups[0]["extension"], "json");
    assert_eq!(groups[0]["objects"], 2);
    assert_eq!(report["failed"]["objects"], 4);
    assert_eq!(report["transfers"][0]["failures"][0]["status"], 403);

    // Following the hint makes the run clean.
    manifest("  extensions: [csv, parquet]\n");
    run(&["apply", "m.yaml", "--quiet"]).expect_code(0);
}

#[test]
fn under_a_pipe_progress_is_plain_timestamped_lines() {
    let f = Fixture::s3s_fs();
    for i in 0..20 {
        f.file(&format!("f{i}.csv"), &bytes(1000, i));
    }
    let m = round_trip_manifest(&f, "");
    // stderr is a pipe here, as under cron.
    let out = f.apply(&[&m, "--only", "up", "--progress-interval", "1"]);
    out.expect_code(0);
    let line = out.stderr.lines().find(|l| l.contains(" haul: ")).expect("a progress line");
    // `2026-11-25T14:32:59Z haul: up: 20/20 objects, 19.5 KiB of 19.5 KiB (...)`: the
    // transfer named, its own totals.
    assert!(
        line.starts_with("20") && line.as_bytes()[10] == b'T' && line.contains("Z haul: up: 20/20 objects"),
        "{line}"
    );
    assert!(!out.stderr.contains('\x1b') && !out.stderr.contains('\r'), "control characters under a pipe");
    let quiet = f.apply(&[&m, "--only", "up", "--quiet"]);
    quiet.expect_code(0);
    assert_eq!(quiet.stderr, "");
    // Nothing to move: no `0/0 objects` line, only the report.
    let idle = f.apply(&[&m, "--only", "up"]);
    idle.expect_code(0);
    assert!(!idle.stderr.contains("0/0 objects"), "{}", idle.stderr);
}

#[test]
fn unusable_plan_files_and_lock_paths_are_explained() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"1");
    let m = round_trip_manifest(&f, "");
    f.plan(&[&m, "-o", "plan.json"]).expect_code(0);
    let text = std::fs::read_to_string(f.path("plan.json")).unwrap();
    write(f.dir.path(), "future.json", &text.replacen("\"version\": 1", "\"version\": 99", 1));
    f.apply(&["future.json"]).expect_code(2).expect_stderr(&[
        "`future.json` is not a usable plan: plan format version 99 is not supported (this haul reads version 1)",
        "make a new plan with `haul plan MANIFEST -o FILE`",
    ]);
    write(f.dir.path(), "broken.json", &text.replacen("\"transfers\"", "\"transfers_gone\"", 1));
    f.apply(&["broken.json"])
        .expect_code(2)
        .expect_stderr(&["`broken.json` is not a usable plan: the plan file is damaged"]);
    f.apply(&[&m, "--lock-file", "no/such/folder/run.lock"]).expect_code(1).expect_stderr(&[
        "cannot open the lock file `no/such/folder/run.lock`",
        "choose a writable place with `--lock-file PATH`",
    ]);
    assert!(f.keys().is_empty(), "nothing may run without its lock");
}

#[test]
fn an_empty_xdg_runtime_dir_does_not_put_the_lock_in_the_current_folder() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.manifest("upload", "");
    common::haul_with(f.dir.path(), &[("XDG_RUNTIME_DIR", "")], &["apply", &m, "--quiet"]).expect_code(0);
    let locks: Vec<String> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lock"))
        .collect();
    assert!(locks.is_empty(), "lock files in the current folder: {locks:?}");
}

#[test]
fn unreadable_source_files_are_skipped_reported_as_failed_and_their_copies_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = Fixture::s3s_fs();
    f.file_written_earlier("open.csv", b"anyone may read this");
    f.file_written_earlier("secret.csv", b"not for nobody");
    f.file_written_earlier("private/inside.csv", b"nor this");
    for (path, mode) in [("open.csv", 0o644), ("secret.csv", 0o600), ("private/inside.csv", 0o600), ("private", 0o700)]
    {
        std::fs::set_permissions(f.path("local").join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Copies from an earlier run: the source still has them, only unreadable now.
    f.put("data/secret.csv", b"old copy");
    f.put("data/private/inside.csv", b"old copy");
    let m = f.manifest("upload", "    delete: true\n    max_delete: 10\n");
    std::fs::set_permissions(f.path(&m), std::fs::Permissions::from_mode(0o644)).unwrap();

    let plan = common::haul_as_nobody(&f, &["plan", &m, "--output", "json"]);
    plan.expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let transfer = &plan["transfers"][0];
    let actions: Vec<&str> =
        transfer["actions"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["open.csv"], "nothing unreadable is planned, nothing it shadows deleted: {plan:#}");
    let skipped: Vec<(&str, &str)> = transfer["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s["slug"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, vec![("private/", "unreadable"), ("secret.csv", "unreadable")]);

    let out = common::haul_as_nobody(&f, &["apply", &m]);
    out.expect_code(1).expect_stdout(&["failed: Unreadable", "secret.csv", "check their owner and permissions"]);
    assert_eq!(f.get("data/open.csv"), b"anyone may read this");
    assert_eq!(f.get("data/secret.csv"), b"old copy");
    assert_eq!(f.get("data/private/inside.csv"), b"old copy");
}

#[test]
fn an_unknown_access_key_is_never_printed_or_written_in_full() {
    // The server names the key it does not know ("No such key: GK…", as Garage does).
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.manifest("upload", "");
    let key = "GK31c2f218a2e44f485b94239e";
    let env = [("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", "not-the-secret")];
    let report = f.path("report.json");
    let log = f.path("haul.log");
    let runs = [
        common::haul_with(f.dir.path(), &env, &["plan", &m]),
        common::haul_with(
            f.dir.path(),
            &env,
            &[
                "apply",
                &m,
                "--report",
                report.to_str().unwrap(),
                "--log-level",
                "debug",
                "--log-file",
                log.to_str().unwrap(),
            ],
        ),
        common::haul_with(f.dir.path(), &env, &["ls", "s3://plan-test/", "--endpoint", &f.endpoint, "--path-style"]),
    ];
    let written = [std::fs::read_to_string(&report).unwrap_or_default(), std::fs::read_to_string(&log).unwrap()];
    let everything = runs.iter().map(common::Outcome::all).chain(written).collect::<Vec<_>>().join("\n");
    assert!(everything.contains("GK31…239e"), "the masked key names it:\n{everything}");
    assert!(!everything.contains(key), "the key in full:\n{everything}");
}

#[test]
fn multipart_uploads_an_interrupted_run_left_are_aborted() {
    // What `kill -9` during three large uploads leaves on a server that keeps open uploads
    // (moto, AWS): parts billed until someone aborts them.
    let f = Fixture::moto();
    let start = |key: &str| {
        let request = f.client.create_multipart_upload().bucket(common::BUCKET).key(key);
        f.runtime.block_on(request.send()).unwrap().upload_id().unwrap().to_string()
    };
    for key in ["data/big-1.bin", "data/big-2.bin", "data/sub/big-3.bin", "elsewhere/not-ours.bin"] {
        start(key);
    }
    let open = |prefix: &str| {
        let request = f.client.list_multipart_uploads().bucket(common::BUCKET).prefix(prefix);
        f.runtime.block_on(request.send()).unwrap().uploads().len()
    };
    assert_eq!(open("data/"), 3);
    // Uploads started before the run: a second later on a server that keeps whole seconds.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    f.file_written_earlier("a.csv", b"a");
    let m = f.manifest("upload", "");
    f.plan(&[&m, "--detailed-exitcode"])
        .expect_code(3)
        .expect_stdout(&["3 unfinished multipart uploads of an interrupted run to abort"]);
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["transfers"][0]["uploads_aborted"], 3, "{report:#}");
    assert_eq!((open("data/"), open("elsewhere/")), (0, 1), "only the transfer's prefix is cleaned");
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
}

/// `storage_class` and `sse` go on every request that writes an object: a PUT, and the
/// CreateMultipartUpload of a large file.
#[test]
fn storage_class_and_encryption_are_sent_with_every_write() {
    let f = Fixture::moto();
    let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    f.file("small.csv", b"1,2\n");
    f.file("big.bin", &bytes(6 * MIB, 2));
    let m = f.two_way_manifest(proxy.endpoint(), "  storage_class: STANDARD_IA\n  sse: AES256\n");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    let requests = proxy.requests();
    let writes: Vec<_> = requests
        .iter()
        .filter(|r| {
            (r.method == "PUT" && !r.uri.contains("partNumber=")) || (r.method == "POST" && r.uri.contains("uploads"))
        })
        .collect();
    assert_eq!(writes.len(), 2, "{requests:#?}");
    for request in writes {
        assert_eq!(request.header("x-amz-storage-class"), Some("STANDARD_IA"), "{} {}", request.method, request.uri);
        assert_eq!(
            request.header("x-amz-server-side-encryption"),
            Some("AES256"),
            "{} {}",
            request.method,
            request.uri
        );
    }
}

#[test]
fn objects_move_while_the_listing_goes_on() {
    let f = Fixture::s3s_fs();
    // Three listing pages (1,000 keys each), the proxy holding each listing request 400 ms.
    for n in 0..2_100 {
        f.file(&format!("f{n:04}.csv"), b"1\n");
    }
    f.apply(&[&f.two_way_manifest(&f.endpoint, ""), "--only", "up", "--quiet"]).expect_code(0);
    let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    let delay = haul_testkit::FaultRule::new(haul_testkit::Fault::Delay(std::time::Duration::from_millis(400)), 1, 10);
    proxy.set_faults(&[delay.on_listings()]);
    let m = f.two_way_manifest(proxy.endpoint(), "");
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert_eq!(tree(&f.path("back")), tree(&f.path("local")));

    let requests = proxy.requests();
    let listings: Vec<usize> = (0..requests.len()).filter(|&i| requests[i].uri.contains("list-type=2")).collect();
    let first_get = requests.iter().position(|r| r.method == "GET" && !r.uri.contains("list-type")).unwrap();
    assert_eq!(listings.len(), 3, "three pages");
    // Downloads start after the first page is planned, not after the last.
    assert!(first_get < listings[2], "the first GET ({first_get}) waited for the last listing page ({})", listings[2]);
}
