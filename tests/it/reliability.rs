//! Cron-grade reliability against real servers: the run lock, SIGINT / SIGTERM, kill -9 at
//! several points and the run after it, injected faults (5xx, throttling, resets, delays,
//! truncated and corrupted bodies), and hostile keys that must never write outside the target.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{BUCKET, Fixture, bytes, tree, write};
use haul_testkit::{Fault, FaultRule, RecordingProxy};

const MIB: usize = 1024 * 1024;

fn temp_files(root: &std::path::Path) -> Vec<String> {
    tree(root).into_keys().filter(|k| k.rsplit('/').next().unwrap().starts_with(".haul-")).collect()
}

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Waits until a `.haul-*.tmp` file shows up under `folder` (the download is under way).
fn wait_for_temp(folder: &std::path::Path, child: &mut std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if folder.exists() && !temp_files(folder).is_empty() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn a_second_run_waits_for_no_one_and_exits_5_naming_the_holder() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"1");
    let m = f.two_way_manifest(&f.endpoint, "");
    let lock = f.path("run.lock");
    let held = std::fs::File::create(&lock).unwrap();
    held.try_lock().unwrap();
    std::fs::write(&lock, "PID 4242, started 2026-11-25T02:00:00Z\n").unwrap();
    f.apply(&[&m, "--lock-file", "run.lock"]).expect_code(5).expect_stderr(&[
        "another haul run holds the lock",
        "(PID 4242, started 2026-11-25T02:00:00Z)",
        "runs of one manifest never overlap",
    ]);
    assert!(f.keys().is_empty(), "nothing may happen while another run holds the lock");
    // What a killed holder leaves: the file and its record, but no lock. It does not block.
    drop(held);
    f.apply(&[&m, "--lock-file", "run.lock", "--quiet"]).expect_code(0);
    assert_eq!(f.keys(), vec!["data/a.csv"]);
    // The default lock (one per manifest) is taken and released the same way.
    f.apply(&[&m, "--quiet"]).expect_code(0);
}

/// `haul apply m.yaml --only down --quiet` through a proxy that holds every object GET back
/// `delay`, one range at a time (5 MiB ranges), started and returned with its manifest.
fn slow_download(f: &Fixture, delay: Duration) -> (RecordingProxy, String, std::process::Child) {
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    let mut held_back = FaultRule::new(Fault::Delay(delay), 1, 1_000);
    held_back.object_gets_only = true;
    proxy.set_faults(&[held_back]);
    let m = f.two_way_manifest(proxy.endpoint(), "  concurrency: 1\n");
    let child = common::haul_command(f.dir.path())
        .args(["apply", &m, "--only", "down", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (proxy, m, child)
}

#[test]
fn sigint_mid_download_stops_cleanly_with_130_and_the_next_run_finishes() {
    let f = Fixture::s3s_fs();
    let body = bytes(24 * MIB, 3);
    f.put("data/big.bin", &body);
    // Every range held back 2 s on its way: the signal lands while the download runs.
    let (proxy, m, mut child) = slow_download(&f, Duration::from_secs(2));
    let back = f.path("back");
    assert!(wait_for_temp(&back, &mut child), "the download should be caught under way");
    signal(&child, libc::SIGINT);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("INTERRUPTED: the next run does the rest"), "{stdout}");
    assert!(!back.join("big.bin").exists(), "a partial file under the real name");
    assert_eq!(temp_files(&back), Vec::<String>::new(), "the stopped download's temp file was removed");
    proxy.set_faults(&[]);
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert!(std::fs::read(back.join("big.bin")).unwrap() == body);
}

/// Ranged GETs the proxy saw.
fn ranged_gets(proxy: &RecordingProxy) -> usize {
    proxy.requests().iter().filter(|r| r.method == "GET" && r.header("range").is_some()).count()
}

/// A large download stopped part way keeps its temp file with a record of the ranges it has;
/// the next run checks them and fetches only the rest. An object replaced in between is
/// fetched whole again, never stitched.
#[test]
fn a_stopped_download_is_finished_by_fetching_only_the_missing_ranges() {
    for (stop, replace) in [("SIGINT", false), ("kill -9", false), ("kill -9", true)] {
        let f = Fixture::s3s_fs();
        let body = bytes(40 * MIB, 21);
        f.put("data/big.bin", &body);
        // Eight 5 MiB ranges, one at a time, each held back 300 ms.
        let (proxy, m, mut child) = slow_download(&f, Duration::from_millis(300));
        let back = f.path("back");
        let deadline = Instant::now() + Duration::from_secs(60);
        while ranged_gets(&proxy) < 4 && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let asked_before = ranged_gets(&proxy);
        match stop {
            "SIGINT" => signal(&child, libc::SIGINT),
            _ => signal(&child, libc::SIGKILL),
        }
        let output = child.wait_with_output().unwrap();
        if stop == "SIGINT" {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(output.status.code(), Some(130), "{stdout}");
            assert!(stdout.contains("kept 1 partial download(s)"), "{stdout}");
        }
        assert!(!back.join("big.bin").exists(), "{stop}: a partial file under the real name");
        assert_eq!(temp_files(&back).len(), 1, "{stop}: the partial download is kept");
        let body = if replace {
            let other = bytes(40 * MIB, 22);
            f.put("data/big.bin", &other);
            other
        } else {
            body
        };
        proxy.set_faults(&[]);
        let before = ranged_gets(&proxy);
        let out = f.apply(&[&m, "--only", "down"]);
        out.expect_code(0);
        let asked_again = ranged_gets(&proxy) - before;
        if replace {
            assert_eq!(asked_again, 8, "a replaced object is fetched whole");
        } else {
            out.expect_stdout(&["resumed:"]);
            // At most the range in flight at the stop, and the one whose record it had not
            // written yet, are asked for again.
            let done_before = asked_before.saturating_sub(2);
            assert!(asked_again <= 8 - done_before, "{stop}: asked {asked_again} of 8 again after {asked_before}");
            assert!(asked_again < 8, "{stop}: something was kept");
        }
        assert!(std::fs::read(back.join("big.bin")).unwrap() == body, "{stop}: byte for byte");
        assert_eq!(temp_files(&back), Vec::<String>::new(), "{stop}: no temp file left");
    }
}

/// `haul apply m.yaml --only up ARGS` of `local/big.bin` (40 MiB: eight 5 MiB parts, sent one
/// at a time, each request held back 300 ms, so the upload takes seconds), returned once its
/// multipart upload exists on the server. `extra` adds lines to the manifest's defaults.
fn slow_multipart_upload(f: &Fixture, extra: &str, args: &[&str]) -> (RecordingProxy, std::process::Child) {
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    proxy.set_faults(&[FaultRule::new(Fault::Delay(Duration::from_millis(300)), 1, 1_000)]);
    let m = f.two_way_manifest(proxy.endpoint(), &format!("  concurrency: 1\n{extra}"));
    let mut child = common::haul_command(f.dir.path())
        .args(["apply", &m, "--only", "up"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while unfinished_uploads(f) == 0 && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(unfinished_uploads(f) > 0, "the multipart upload should be caught under way");
    (proxy, child)
}

/// The multipart uploads the server holds unfinished (moto: s3s-fs does not list them).
fn unfinished_uploads(f: &Fixture) -> usize {
    let request = f.client.list_multipart_uploads().bucket(BUCKET);
    f.runtime.block_on(request.send()).unwrap().uploads().len()
}

/// Part uploads the proxy saw (`PUT ...?partNumber=N&uploadId=...`).
fn part_puts(proxy: &RecordingProxy) -> usize {
    proxy.requests().iter().filter(|r| r.method == "PUT" && r.uri.contains("partNumber=")).count()
}

/// A stopped multipart upload is left on the server; the next run checks what it has against
/// the file and sends only the missing parts (aws-cli starts from part 1 again).
#[test]
fn sigterm_mid_multipart_upload_leaves_it_and_the_next_run_sends_only_the_missing_parts() {
    for stop in ["SIGTERM", "kill -9"] {
        let f = Fixture::moto();
        let body = bytes(40 * MIB, 4);
        f.file("big.bin", &body);
        // The stop lands among the eight parts, once at least two are on the server.
        let (proxy, child) = slow_multipart_upload(&f, "", &["--quiet"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while part_puts(&proxy) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        match stop {
            "SIGTERM" => signal(&child, libc::SIGTERM),
            _ => signal(&child, libc::SIGKILL),
        }
        let output = child.wait_with_output().unwrap();
        if stop == "SIGTERM" {
            assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stdout));
            assert!(String::from_utf8_lossy(&output.stdout).contains("left 1 multipart upload(s) for the next run"));
        }
        assert!(f.keys().is_empty(), "{stop}: an interrupted upload must not complete");
        assert_eq!(unfinished_uploads(&f), 1, "{stop}: the upload is left for the next run");
        proxy.set_faults(&[]);
        // What the server has, as the plan reads it (ListParts).
        let plan = f.json(&["m.yaml", "--only", "up"]);
        let resume = &plan["transfers"][0]["actions"][0]["resume"];
        assert_eq!(resume["upload_id"].as_str(), Some(upload_id(&f).as_str()), "{plan}");
        let sent_before = resume["parts"].as_u64().unwrap() as usize;
        assert!(sent_before >= 2, "{stop}: {sent_before} parts on the server");
        f.plan(&["m.yaml", "--only", "up"])
            .expect_code(0)
            .expect_stdout(&["continues an unfinished upload", "1 to resume"]);
        let before = part_puts(&proxy);
        let out = f.apply(&["m.yaml", "--only", "up"]);
        out.expect_code(0).expect_stdout(&["resumed:"]);
        let sent_again = part_puts(&proxy) - before;
        assert_eq!(sent_again, 8 - sent_before, "{stop}: only the missing parts are sent");
        assert!(f.get("data/big.bin") == body, "{stop}: the object is the file, byte for byte");
        assert_eq!(unfinished_uploads(&f), 0, "{stop}: nothing left behind");
    }
}

/// A file changed between the runs is never stitched onto the parts sent of its old version:
/// the next run sees a part differ, starts over and says so.
#[test]
fn a_file_changed_between_runs_is_uploaded_again_from_the_start() {
    let f = Fixture::moto();
    f.file("big.bin", &bytes(40 * MIB, 7));
    let (proxy, child) = slow_multipart_upload(&f, "", &["--quiet"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while part_puts(&proxy) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, libc::SIGKILL);
    child.wait_with_output().unwrap();
    assert_eq!(unfinished_uploads(&f), 1);
    // Same size, other bytes at the start (in a part already sent).
    let mut changed = bytes(40 * MIB, 7);
    changed[100] ^= 0xff;
    std::fs::write(f.path("local/big.bin"), &changed).unwrap();
    proxy.set_faults(&[]);
    let before = part_puts(&proxy);
    f.apply(&["m.yaml", "--only", "up"]).expect_code(0).expect_stdout(&["started 1 unfinished upload(s) over"]);
    assert_eq!(part_puts(&proxy) - before, 8, "every part is sent again");
    assert!(f.get("data/big.bin") == changed, "the new version, whole");
    assert_eq!(unfinished_uploads(&f), 0, "the old upload is aborted");
}

fn upload_id(f: &Fixture) -> String {
    let request = f.client.list_multipart_uploads().bucket(BUCKET);
    let uploads = f.runtime.block_on(request.send()).unwrap();
    uploads.uploads()[0].upload_id().unwrap().to_string()
}

/// A file written to while its multipart upload is under way (in place, or appended to) fails
/// as changed, and leaves no object and no unfinished upload: never parts of two versions.
#[test]
fn a_file_changed_during_its_upload_is_reported_and_never_stored_mixed() {
    for change in ["in place", "appended"] {
        // moto: s3s-fs does not list multipart uploads.
        let f = Fixture::moto();
        let original = bytes(40 * MIB, 5);
        f.file("big.bin", &original);
        let (_proxy, child) = slow_multipart_upload(&f, "  retries: 0\n", &["--output", "json"]);
        let uploads = || unfinished_uploads(&f);
        {
            use std::io::{Seek as _, Write as _};
            let mut file = std::fs::OpenOptions::new().write(true).open(f.path("local/big.bin")).unwrap();
            match change {
                // The last part, which has not been read yet.
                "in place" => file.seek(std::io::SeekFrom::Start(38 * MIB as u64)).unwrap(),
                _ => file.seek(std::io::SeekFrom::End(0)).unwrap(),
            };
            file.write_all(&bytes(MIB, 6)).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        assert_eq!(output.status.code(), Some(1), "{change}: {report}");
        let text = report.to_string();
        assert!(text.contains("FileChanged") && text.contains("changed while it was being sent"), "{change}: {report}");
        assert!(f.keys().is_empty(), "{change}: no object, neither version nor a mix");
        assert_eq!(uploads(), 0, "{change}: the multipart upload was aborted");
        // The next run sends the file as it is now.
        f.apply(&["m.yaml", "--only", "up", "--quiet"]).expect_code(0);
        assert_eq!(f.get("data/big.bin"), std::fs::read(f.path("local/big.bin")).unwrap(), "{change}");
    }
}

/// Files under `root` that are not haul temp files, counted while a run writes there (a file
/// renamed or removed under the walk is passed over).
fn files_in(root: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => files_in(&entry.path()),
            Ok(_) => usize::from(!entry.file_name().to_string_lossy().starts_with(".haul-")),
            Err(_) => 0,
        })
        .sum()
}

/// When a test kills a run.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    Millis(u64),
    /// Once the destination holds this many objects.
    Objects(usize),
}

#[test]
fn kill_9_at_any_point_then_one_run_finishes_exactly() {
    let f = Fixture::s3s_fs();
    for i in 0..40u64 {
        f.file(&format!("small/{i:02}.csv"), &bytes(3000 + i as usize, i));
    }
    f.file("large/a.bin", &bytes(12 * MIB, 100));
    f.file("large/b.bin", &bytes(7 * MIB, 101));
    // Every request held back 50 ms, so a run spans well over the kill points.
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    proxy.set_faults(&[FaultRule::new(Fault::Delay(Duration::from_millis(50)), 1, u64::MAX)]);
    let m = f.two_way_manifest(proxy.endpoint(), "  concurrency: 4\n");
    // Kill points: right after the start (before any object, by time), then once 1, 10 and 25
    // of the 42 objects are in place (by what the destination holds, so a slow machine moves
    // the kill, not whether it lands mid-transfer).
    let kill_points = [KillAt::Millis(10), KillAt::Objects(1), KillAt::Objects(10), KillAt::Objects(25)];
    // Per direction, the kills that left the destination partly written: a kill must land
    // mid-transfer, not only before the first object or after the last.
    let mut partial = std::collections::BTreeMap::new();
    let count = |direction: &str| match direction {
        "up" => f.keys().len(),
        _ => files_in(&f.path("back")),
    };
    for direction in ["up", "down"] {
        for kill_at in kill_points {
            // Start each round from an empty destination.
            if direction == "up" {
                for key in f.keys() {
                    f.runtime.block_on(f.client.delete_object().bucket(BUCKET).key(&key).send()).unwrap();
                }
            } else {
                let _ = std::fs::remove_dir_all(f.path("back"));
            }
            let mut child = common::haul_command(f.dir.path())
                .args(["apply", &m, "--only", direction, "--quiet"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            match kill_at {
                KillAt::Millis(delay) => std::thread::sleep(Duration::from_millis(delay)),
                KillAt::Objects(objects) => {
                    while count(direction) < objects && child.try_wait().unwrap().is_none() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            assert!(child.try_wait().unwrap().is_none(), "the run ended before the kill at {kill_at:?}");
            child.kill().unwrap(); // SIGKILL: no handler runs, nothing is cleaned up
            child.wait().unwrap();
            let done = count(direction);
            if done > 0 && done < 42 {
                *partial.entry(direction).or_insert(0) += 1;
            }
            f.apply(&[&m, "--only", direction, "--quiet"]).expect_code(0);
            if direction == "down" {
                assert_eq!(tree(&f.path("back")), tree(&f.path("local")), "after a kill at {kill_at:?}");
            } else {
                // Then download to compare the bucket byte for byte.
                let _ = std::fs::remove_dir_all(f.path("back"));
                f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
                assert_eq!(tree(&f.path("back")), tree(&f.path("local")), "after a kill at {kill_at:?}");
            }
            f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
        }
    }
    assert!(partial.contains_key("up") && partial.contains_key("down"), "no kill landed mid-transfer: {partial:?}");
}

#[test]
fn a_few_percent_of_faults_still_end_byte_identical() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    for i in 0..60u64 {
        f.file(&format!("f/{i:02}.csv"), &bytes(10_000, i));
    }
    f.file("large.bin", &bytes(11 * MIB, 99));
    let rules = [
        FaultRule::new(Fault::InternalError, 13, 4),
        FaultRule::new(Fault::SlowDown, 17, 4),
        FaultRule::new(Fault::Reset, 19, 4),
        FaultRule::new(Fault::Delay(Duration::from_millis(300)), 23, 3),
        FaultRule::new(Fault::TruncateBody, 7, 4),
        FaultRule::new(Fault::FlipByte, 11, 3),
    ];
    proxy.set_faults(&rules);
    let m = f.two_way_manifest(proxy.endpoint(), "  concurrency: 4\n  retries: 4\n");
    let out = f.apply(&[&m, "--quiet", "--output", "json"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["failed"]["objects"], 0);
    assert_eq!(tree(&f.path("back")), tree(&f.path("local")));
    let injected = proxy.injected();
    for (rule, count) in rules.iter().zip(&injected) {
        assert!(*count > 0, "{:?} was never injected: {injected:?}", rule.fault);
    }
}

#[test]
fn a_corrupted_body_is_never_written_under_the_real_name() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    f.file("a.csv", &bytes(5000, 1));
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 2\n");
    // Uploaded by haul, so the object carries a CRC32C the download can check.
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    proxy.set_faults(&[FaultRule::new(Fault::FlipByte, 1, 1000)]);
    let out = f.apply(&[&m, "--only", "down", "--quiet", "--output", "json"]);
    out.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let failure = &report["transfers"][0]["failures"][0];
    assert_eq!(failure["key"], "a.csv");
    assert_eq!(failure["code"], "ChecksumMismatch", "{failure}");
    assert_eq!(failure["attempts"], 3);
    assert!(!f.path("back/a.csv").exists());
    assert_eq!(temp_files(&f.path("back")), Vec::<String>::new());
    // Once the path is clean, the next run downloads it.
    proxy.set_faults(&[]);
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert_eq!(tree(&f.path("back")), tree(&f.path("local")));
}

#[test]
fn out_of_retries_is_reported_as_failed_never_as_done() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    for i in 0..5u64 {
        f.file(&format!("{i}.csv"), &bytes(100, i));
    }
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 1\n");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    let mut always_500 = FaultRule::new(Fault::InternalError, 1, 10_000);
    always_500.object_gets_only = true;
    proxy.set_faults(&[always_500]);
    let out = f.apply(&[&m, "--only", "down", "--report", "run.json"]);
    out.expect_code(1).expect_stdout(&["FAILED 5", "failed: InternalError on *.csv: 5 objects"]);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path("run.json")).unwrap()).unwrap();
    assert_eq!(report["moved"]["objects"], 0);
    assert_eq!(report["failed"]["objects"], 5);
    assert!(!f.path("back").exists() || tree(&f.path("back")).is_empty());
}

/// A server that does not implement a request (501 Not Implemented) fails the object at once,
/// with the server's words: 501 is not a passing trouble to retry.
#[test]
fn a_request_the_server_does_not_implement_is_not_retried() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    f.file("a.csv", b"a,b\n");
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 3\n");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    let mut always_501 = FaultRule::new(Fault::NotImplemented, 1, 10_000);
    always_501.object_gets_only = true;
    proxy.set_faults(&[always_501]);
    let out = f.apply(&[&m, "--only", "down", "--report", "run.json"]);
    out.expect_code(1).expect_stdout(&["FAILED 1", "NotImplemented"]);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path("run.json")).unwrap()).unwrap();
    let failure = &report["transfers"][0]["failures"][0];
    assert_eq!((failure["status"].as_u64(), failure["attempts"].as_u64()), (Some(501), Some(1)), "{report:#}");
}

#[test]
fn hostile_keys_never_write_outside_the_target() {
    let f = Fixture::moto();
    let hostile = [
        "data/../x.csv",
        "data/../../etc/x.csv",
        "data//abs.csv",
        "data/a/../../b.csv",
        "data/a\\..\\b.csv",
        "data/a//b.csv",
        "data/./a.csv",
        "data/dir/",
        "data/ctl\u{1}.csv",
        "data/nul\u{7f}x.csv",
    ];
    for key in hostile {
        f.put(key, b"evil");
    }
    let long = format!("data/{}.csv", "x".repeat(300));
    f.put(&long, b"evil");
    f.put("data/good/fine.csv", b"fine");
    // The target sits two folders down; everything around it is watched.
    let outside = f.path("outer");
    std::fs::create_dir_all(outside.join("inner")).unwrap();
    std::fs::write(outside.join("keep.csv"), b"keep").unwrap();
    let text = format!(
        "version: 1\ntransfers:\n  - name: down\n    direction: download\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./outer/inner/target\n    endpoint: {}\n    path_style: true\n    region: us-east-1\n",
        f.endpoint
    );
    write(f.dir.path(), "m.yaml", &text);
    let before_dir = tree(f.dir.path());
    let out = f.apply(&["m.yaml", "--quiet", "--output", "json"]);
    out.expect_code(0);
    let mut after = tree(f.dir.path());
    // The one file that may appear is the good one, inside the target.
    assert_eq!(after.remove("outer/inner/target/good/fine.csv").as_deref(), Some(&b"fine"[..]));
    assert_eq!(after, before_dir, "something outside the target changed");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["transfers"][0]["moved"]["objects"], 1);
    let skipped = &report["transfers"][0]["skipped"];
    assert!(skipped["unsafe-key"]["objects"].as_u64().unwrap() >= 8, "{skipped}");
    assert!(!std::path::Path::new("/etc/x.csv").exists());
}

#[test]
fn logs_are_json_lines_with_retries_and_timings_and_no_secrets() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    for i in 0..4u64 {
        f.file(&format!("{i}.csv"), &bytes(500, i));
    }
    let m = f.two_way_manifest(proxy.endpoint(), "");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    let mut every_get = FaultRule::new(Fault::InternalError, 2, 2);
    every_get.object_gets_only = true;
    proxy.set_faults(&[every_get]);
    let args = [
        m.as_str(),
        "--only",
        "down",
        "--quiet",
        "--log-level",
        "debug",
        "--log-format",
        "json",
        "--log-file",
        "log.jsonl",
    ];
    f.apply(&args).expect_code(0);
    let log = std::fs::read_to_string(f.path("log.jsonl")).unwrap();
    let events: Vec<serde_json::Value> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect();
    let message = |e: &serde_json::Value| e["fields"]["message"].as_str().unwrap_or_default().to_string();
    assert!(events.iter().any(|e| message(e) == "download done" && e["fields"]["ms"].is_u64()), "{log}");
    assert!(events.iter().any(|e| message(e).starts_with("planned: 4 to download")), "{log}");
    assert!(events.iter().any(|e| message(e) == "run finished"), "{log}");
    // The SDK's own retry of the injected 500s shows at debug level.
    assert!(log.to_lowercase().contains("retry"), "{log}");
    assert!(!log.contains(haul_testkit::SECRET_KEY) && !log.contains(haul_testkit::ACCESS_KEY));

    // Even at trace level nothing names the secret or the whole access key.
    let out = f.apply(&[&m, "--only", "down", "--quiet", "--log-level", "trace"]);
    out.expect_code(0);
    assert!(!out.all().contains(haul_testkit::SECRET_KEY) && !out.all().contains(haul_testkit::ACCESS_KEY));
    let who = common::haul(f.dir.path(), &["whoami", "--endpoint", &f.endpoint, "--log-level", "trace"]);
    assert!(!who.all().contains(haul_testkit::SECRET_KEY) && !who.all().contains(haul_testkit::ACCESS_KEY));
}

#[test]
fn an_object_replaced_during_a_ranged_download_fails_instead_of_being_stitched() {
    // moto answers If-Match on GET (s3s-fs ignores it).
    let f = Fixture::moto();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    let old = bytes(12 * MIB, 1);
    let new = bytes(12 * MIB, 2);
    f.put("data/big.bin", &old);
    // 5 MiB parts: three ranges, each held back 2 s on its way to the server.
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 0\n");
    let mut held_back = FaultRule::new(Fault::Delay(Duration::from_secs(2)), 1, 1_000);
    held_back.object_gets_only = true;
    proxy.set_faults(&[held_back]);
    let child = common::haul_command(f.dir.path())
        .args(["apply", &m, "--only", "down", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first range is on its way, the object is replaced (same size, other bytes).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.requests().iter().any(|r| r.method == "GET" && r.header("range").is_some()) {
        assert!(Instant::now() < deadline, "no ranged GET seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    f.put("data/big.bin", &new);
    let out = common::Outcome::from(child.wait_with_output().unwrap());
    out.expect_code(1).expect_stdout(&["PreconditionFailed"]);
    assert!(!f.path("back/big.bin").exists(), "a mix of two versions must never land");
    assert!(temp_files(&f.path("back")).is_empty());
    // Every range asked for the version the listing saw.
    let ranged: Vec<_> = proxy.requests().into_iter().filter(|r| r.header("range").is_some()).collect();
    assert!(ranged.len() >= 3 && ranged.iter().all(|r| r.header("if-match").is_some()), "{ranged:?}");

    proxy.set_faults(&[]);
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert!(std::fs::read(f.path("back/big.bin")).unwrap() == new);
}

#[test]
fn a_corrupted_range_fails_the_objects_checksum_and_is_downloaded_again() {
    let f = Fixture::moto();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    // haul uploads this in 5 MiB parts with CRC32C: a composite checksum over 3 parts.
    let multipart = bytes(12 * MIB, 3);
    f.file("multipart.bin", &multipart);
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 3\n");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    // Another tool's single PUT with a full-object CRC32C.
    let whole = bytes(11 * MIB, 4);
    let put = f
        .client
        .put_object()
        .bucket(BUCKET)
        .key("data/whole.bin")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
        .body(aws_sdk_s3::primitives::ByteStream::from(whole.clone()));
    f.runtime.block_on(put.send()).unwrap();

    // Two ranges come back with a flipped byte: their downloads fail the checksum and are
    // tried again; the files land intact.
    proxy.set_faults(&[FaultRule::new(Fault::FlipByteInRange, 3, 2)]);
    f.apply(&[&m, "--only", "down", "--quiet"]).expect_code(0);
    assert_eq!(proxy.injected(), vec![2]);
    assert!(std::fs::read(f.path("back/multipart.bin")).unwrap() == multipart);
    assert!(std::fs::read(f.path("back/whole.bin")).unwrap() == whole);

    // Every range corrupted: reported as a checksum failure, and nothing lands.
    std::fs::remove_dir_all(f.path("back")).unwrap();
    proxy.set_faults(&[FaultRule::new(Fault::FlipByteInRange, 1, 10_000)]);
    f.apply(&[&m, "--only", "down"]).expect_code(1).expect_stdout(&["ChecksumMismatch", "FAILED 2"]);
    assert!(!f.path("back/multipart.bin").exists() && !f.path("back/whole.bin").exists());
    assert!(temp_files(&f.path("back")).is_empty());
}

#[test]
fn a_multipart_object_below_the_threshold_is_still_checked_against_its_composite_checksum() {
    let f = Fixture::moto();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    let data = bytes(6 * MIB, 5);
    f.file("six.bin", &data);
    // Uploaded in two 5 MiB parts: its checksum is composite (the SDK checks only full ones).
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 1\n");
    f.apply(&[&m, "--only", "up", "--quiet"]).expect_code(0);
    // Downloaded with a threshold above its size, every object GET corrupted.
    let down = std::fs::read_to_string(f.path(&m))
        .unwrap()
        .replace("multipart_threshold: 5MiB", "multipart_threshold: 16MiB")
        .replace("part_size: 5MiB", "part_size: 16MiB");
    write(f.dir.path(), "down.yaml", &down);
    proxy.set_faults(&[FaultRule::new(Fault::FlipByte, 1, 10_000), FaultRule::new(Fault::FlipByteInRange, 1, 10_000)]);
    f.apply(&["down.yaml", "--only", "down"]).expect_code(1).expect_stdout(&["ChecksumMismatch"]);
    assert!(!f.path("back/six.bin").exists(), "a corrupted copy must never land");
    proxy.set_faults(&[]);
    f.apply(&["down.yaml", "--only", "down", "--quiet"]).expect_code(0);
    assert!(std::fs::read(f.path("back/six.bin")).unwrap() == data);
}

/// A server that answers `503 SlowDown` above 40 requests a second, as S3 does above a
/// prefix's rate: the default (`concurrency: auto`) lowers its objects in flight, every object
/// arrives, and the report says the run was throttled and how far the level went down.
#[test]
fn a_rate_limited_server_is_met_by_fewer_objects_in_flight_and_nothing_fails() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    for i in 0..240u64 {
        f.file(&format!("f/{i:03}.csv"), &bytes(2_000, i));
    }
    proxy.limit_rate(Some(40));
    let m = f.two_way_manifest(proxy.endpoint(), "");
    let out = f.apply(&[&m, "--only", "up", "--output", "json"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let transfer = &report["transfers"][0];
    assert_eq!(transfer["failed"]["objects"], 0, "{transfer}");
    assert_eq!(transfer["moved"]["objects"], 240);
    let level = &transfer["concurrency"];
    assert!(proxy.refused() > 0, "the limit never refused a request");
    assert!(level["slow_down_answers"].as_u64().unwrap() > 0, "{level}");
    assert!(level["lowered"].as_u64().unwrap() > 0, "{level}");
    assert!(level["settled"].as_u64().unwrap() < 64, "{level}");
    assert_eq!(level["adaptive"], true);
    assert_eq!(f.keys().len(), 240);
    // The table says so too. And the next transfer to the same server (the download) starts
    // where the upload's level ended, not at 64 again.
    proxy.limit_rate(Some(40));
    for i in 0..120u64 {
        std::fs::write(f.path(&format!("local/f/{i:03}.csv")), bytes(2_001, 1000 + i)).unwrap();
    }
    f.apply(&[&m, "--report", "run.json"]).expect_code(0).expect_stdout(&[
        "throttled:",
        "answer(s) asking to slow down (503/429)",
        "haul lowered the objects in flight",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.path("run.json")).unwrap()).unwrap();
    let (up, down) = (&report["transfers"][0]["concurrency"], &report["transfers"][1]["concurrency"]);
    assert_eq!(report["transfers"][1]["moved"]["objects"], 240);
    let started = down["start"].as_u64().unwrap();
    assert!(started < 64 && started <= up["settled"].as_u64().unwrap(), "up {up}, down {down}");
}

/// A far server (a 120 ms round trip through the test kit's delay line): `auto` starts its
/// objects in flight from how long the server's quickest answer took, not at 64 and a climb of
/// seconds; a near one starts at 64. In one run, near first: the far transfer goes by its own
/// server's answers, not the near one's. On every test server.
#[test]
fn a_far_server_starts_with_more_objects_in_flight_and_a_near_one_at_64() {
    for (server, f) in Fixture::every_server() {
        for i in 0..100u64 {
            f.file(&format!("f/{i:03}.csv"), &bytes(1_000, i));
        }
        let upstream: std::net::SocketAddr = f.endpoint.trim_start_matches("http://").parse().unwrap();
        let settings = haul_testkit::DelaySettings { round_trip: Duration::from_millis(120), rate: None };
        let far = haul_testkit::DelayProxy::start("127.0.0.1:0".parse().unwrap(), upstream, settings).unwrap();
        let m = f.two_way_manifest(&f.endpoint, "").replace("m.yaml", "near-far.yaml");
        let text = std::fs::read_to_string(f.path("m.yaml"))
            .unwrap()
            .replace("    local: ./back\n", &format!("    local: ./back\n    endpoint: {}\n", far.endpoint()));
        write(f.dir.path(), &m, &text);
        let out = f.apply(&[&m, "--output", "json"]);
        out.expect_code(0);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let (near, far) = (&report["transfers"][0], &report["transfers"][1]);
        let moved = (near["moved"]["objects"].as_u64(), far["moved"]["objects"].as_u64());
        assert_eq!(moved, (Some(100), Some(100)), "{server}");
        assert_eq!(near["concurrency"]["start"], 64, "{server}: {near}");
        // 120 ms answers: 256 (or 512 where each answer also waited for its connection).
        let start = far["concurrency"]["start"].as_u64().unwrap();
        assert!(start >= 256, "{server}: {far}");
        assert!(far["concurrency"]["highest"].as_u64().unwrap() >= start, "{server}: {far}");
    }
}
