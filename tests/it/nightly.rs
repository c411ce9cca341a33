//! What a nightly job needs: dates in paths (`{date-1d}`, `--at`), and a settle time and size
//! window (`older_than`, `newer_than`, `min_size`, `max_size`) that never deletes what it hides.

use std::time::{Duration, SystemTime};

use crate::common::{BUCKET, Fixture, decisions, haul, write};

/// The actions of a plan document's first transfer, as `action key` lines.
fn actions(plan: &serde_json::Value) -> Vec<String> {
    plan["transfers"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| format!("{} {}", action["action"].as_str().unwrap(), action["key"].as_str().unwrap()))
        .collect()
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn set_mtime(f: &Fixture, relative: &str, time: SystemTime) {
    let path = f.path("local").join(relative);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

/// A download of yesterday's partition: `--at` picks the day, two times give two prefixes,
/// and a saved plan is applied as of the time it was made for, not the day it runs.
#[test]
fn dated_prefixes_follow_at_and_a_saved_plan_keeps_its_moment() {
    let f = Fixture::s3s_fs();
    f.put("daily/2026-11-29/a.csv", b"the 29th");
    f.put("daily/2026-11-30/b.csv", b"the 30th");
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: download\n    bucket: {BUCKET}\n    prefix: daily/{{date-1d}}/\n    local: ./local/{{date-1d:%Y%m%d}}\n",
        f.endpoint
    );
    write(f.dir.path(), "m.yaml", &text);

    let first = f.json(&["m.yaml", "--at", "2026-11-30T02:00Z"]);
    assert_eq!(first["transfers"][0]["prefix"], "daily/2026-11-29/");
    assert_eq!(actions(&first), vec!["download a.csv"]);
    assert_eq!(first["at"], "2026-11-30T02:00:00Z");
    let second = f.json(&["m.yaml", "--at", "2026-12-01T02:00Z"]);
    assert_eq!(second["transfers"][0]["prefix"], "daily/2026-11-30/");
    assert_eq!(actions(&second), vec!["download b.csv"]);
    // A wall time without a zone is read in the transfer's (UTC here).
    let civil = f.json(&["m.yaml", "--at", "2026-11-30"]);
    assert_eq!(civil["transfers"][0]["prefix"], "daily/2026-11-29/");
    f.plan(&["m.yaml", "--at", "2026-11-30T02:00Z"])
        .expect_code(0)
        .expect_stdout(&["s3://plan-test/daily/2026-11-29/"]);

    f.plan(&["m.yaml", "--at", "2026-11-30T02:00Z", "-o", "p.json"]).expect_code(0);
    f.apply(&["p.json", "--at", "2026-12-01T02:00Z"])
        .expect_code(2)
        .expect_stderr(&["`--at` applies to manifests", "haul plan MANIFEST --at TIME -o FILE"]);
    // Today (2026-12 or later) would be another prefix, with nothing in it.
    f.apply(&["p.json", "--quiet"]).expect_code(0);
    assert_eq!(std::fs::read(f.path("local/20261129/a.csv")).unwrap(), b"the 29th");
    assert!(!f.path("local/20261130").exists());
}

/// Uploads with a settle time (`older_than: 10m`), `min_size: 1` and `delete: true`, on every
/// server: a file still being written and an empty file are held back and their bucket copies
/// kept; an object the source lacks is deleted only once it is outside the window itself.
#[test]
fn a_settle_time_holds_back_files_being_written_and_deletes_nothing_it_hides() {
    for (server, f) in Fixture::every_server() {
        let now = SystemTime::now();
        // Seeded by hand (written now, by the server's clock): what earlier runs left.
        f.put("data/writing.csv", b"yesterday's copy");
        f.put("data/empty.csv", b"an older copy");
        f.put("data/gone.csv", b"removed at the source");
        f.file("settled.csv", b"settled");
        f.file("writing.csv", b"half written");
        f.file("empty.csv", b"");
        set_mtime(&f, "settled.csv", now - Duration::from_secs(3600));
        set_mtime(&f, "empty.csv", now - Duration::from_secs(3600));
        set_mtime(&f, "writing.csv", now - Duration::from_secs(60));
        let m = f.manifest("upload", "    older_than: 10m\n    min_size: 1\n    delete: true\n    max_delete: 10\n");

        // Now: gone.csv was written seconds ago, inside the settle time too: kept.
        let plan = f.json(&[&m]);
        assert_eq!(actions(&plan), vec!["upload settled.csv"], "{server}: {plan:#}");
        let reasons = &plan["transfers"][0]["by_reason"];
        assert_eq!(reasons["too-recent"]["objects"], 1, "{server}: {reasons:#}");
        assert_eq!(reasons["too-small"]["objects"], 1, "{server}: {reasons:#}");

        // An hour on, the bucket's objects have settled too: gone.csv goes; writing.csv
        // (modified a minute before the files' "now", and an hour before `--at`) moves.
        let later = rfc3339(now + Duration::from_secs(3600));
        let plan = f.json(&[&m, "--at", &later]);
        assert_eq!(
            actions(&plan),
            vec!["delete-remote gone.csv", "upload settled.csv", "upload writing.csv"],
            "{server}: {plan:#}"
        );
        // A file modified after `--at` (clock skew, or a backfill) is still held back.
        set_mtime(&f, "writing.csv", now + Duration::from_secs(7200));
        f.apply(&[&m, "--at", &later, "--quiet"]).expect_code(0);
        assert_eq!(f.get("data/settled.csv"), b"settled", "{server}");
        assert_eq!(f.get("data/writing.csv"), b"yesterday's copy", "{server}: a held-back file's copy was touched");
        assert_eq!(f.get("data/empty.csv"), b"an older copy", "{server}: an empty file replaced its copy");
        assert!(!f.keys().contains(&"data/gone.csv".to_string()), "{server}: gone.csv is still there");
    }
}

/// `newer_than` looks back a day: older files are neither moved nor, at the destination,
/// deleted; `max_size` leaves large files alone the same way.
#[test]
fn newer_than_and_max_size_bound_a_download_and_its_deletes() {
    for (server, f) in Fixture::every_server() {
        f.put("data/today.csv", b"today");
        f.put("data/large.csv", &[7u8; 2048]);
        f.local("kept-old.csv", b"downloaded last week");
        let last_week = SystemTime::now() - Duration::from_secs(7 * 86400);
        set_mtime(&f, "kept-old.csv", last_week);
        f.local("kept-large.csv", &[1u8; 4096]);
        f.local("removed.csv", b"recent, gone from the bucket");
        let m =
            f.manifest("download", "    newer_than: 25h\n    max_size: 1KiB\n    delete: true\n    max_delete: 10\n");
        let plan = f.json(&[&m]);
        assert_eq!(actions(&plan), vec!["delete-local removed.csv", "download today.csv"], "{server}: {plan:#}");
        assert_eq!(plan["transfers"][0]["by_reason"]["too-large"]["objects"], 1, "{server}: {plan:#}");
        f.apply(&[&m, "--quiet"]).expect_code(0);
        assert!(f.path("local/kept-old.csv").exists() && f.path("local/kept-large.csv").exists(), "{server}");
        assert!(!f.path("local/removed.csv").exists() && !f.path("local/large.csv").exists(), "{server}");
    }
}

/// A download through a slow server with `max_duration: 2s`: it stops starting objects when
/// the time is up, says what is left (exit 6), runs no delete; a transfer whose deadline has
/// passed does not start, one without a deadline still runs; the next run moves exactly the
/// rest.
#[test]
fn a_deadline_stops_starting_objects_says_what_is_left_and_the_next_run_does_it() {
    use haul_testkit::{Fault, FaultRule, RecordingProxy};
    let f = Fixture::s3s_fs();
    const OBJECTS: u64 = 40;
    for n in 0..OBJECTS {
        f.put(&format!("data/{n:02}.csv"), format!("object {n}").as_bytes());
    }
    f.local_at("back", "extra.csv", b"not in the bucket: deleted only by a whole run");
    f.local_at("out", "new.csv", b"an upload");
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    let mut slow = FaultRule::new(Fault::Delay(Duration::from_millis(300)), 1, u64::MAX);
    slow.object_gets_only = true;
    proxy.set_faults(&[slow]);
    let manifest = |deadlines: bool| {
        let (first, second) = if deadlines { ("    max_duration: 2s\n", "    max_duration: 1s\n") } else { ("", "") };
        format!(
            "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\n  concurrency: 2\ntransfers:
  - name: slow
    direction: download
    bucket: {BUCKET}
    prefix: data/
    local: ./back
    delete: true
    max_delete: 10
{first}  - name: late
    direction: upload
    bucket: {BUCKET}
    prefix: late/
    local: ./out
{second}  - name: no-deadline
    direction: upload
    bucket: {BUCKET}
    prefix: up/
    local: ./out
",
            proxy.endpoint()
        )
    };
    write(f.dir.path(), "m.yaml", &manifest(true));
    let out = f.apply(&["m.yaml", "--output", "json", "--quiet"]);
    out.expect_code(6);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["stopped_at_deadline"], true, "{report:#}");
    assert_eq!(report["interrupted"], false, "{report:#}");
    let slow = &report["transfers"][0];
    let moved = slow["moved"]["objects"].as_u64().unwrap();
    let left = slow["left_at_deadline"]["objects"].as_u64().unwrap_or(0);
    assert!(left > 0, "nothing was left at the deadline: {slow:#}");
    assert_eq!(moved + left, OBJECTS, "{slow:#}");
    assert!(slow["deadline"].as_str().is_some_and(|at| at.ends_with('Z')), "{slow:#}");
    assert!(f.path("back/extra.csv").exists(), "a delete ran in a transfer stopped at its deadline");
    let late = &report["transfers"][1];
    assert!(late["error"].as_str().unwrap().contains("had passed"), "{late:#}");
    assert_eq!(late["stopped_at_deadline"], true, "{late:#}");
    assert_eq!(report["transfers"][2]["moved"]["objects"], 1, "{report:#}");
    // The table says it too.
    write(f.dir.path(), "m.yaml", &manifest(false));
    let out = f.apply(&["m.yaml", "--output", "json", "--quiet"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["transfers"][0]["moved"]["objects"], left, "{report:#}");
    assert_eq!(report["transfers"][0]["deleted"]["objects"], 1, "{report:#}");
}

/// Objects in GLACIER (moto keeps storage classes and refuses to read an archived object
/// until it is restored): `fail` (the default) reads the warm and the restored ones and fails
/// the others with what to do; `skip` leaves every archived one out; `restore` asks S3 to
/// restore them, and the next run moves them.
#[test]
fn archived_objects_fail_are_skipped_or_restored_as_the_manifest_says() {
    use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, StorageClass, Tier};
    let f = Fixture::moto();
    f.put("data/warm.csv", b"warm");
    for key in ["data/cold.csv", "data/restored.csv"] {
        let request = f
            .client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .storage_class(StorageClass::Glacier)
            .body(aws_sdk_s3::primitives::ByteStream::from(key.as_bytes().to_vec()));
        f.runtime.block_on(request.send()).unwrap();
    }
    let tier = GlacierJobParameters::builder().tier(Tier::Standard).build().unwrap();
    let restore = RestoreRequest::builder().days(1).glacier_job_parameters(tier).build();
    let request = f.client.restore_object().bucket(BUCKET).key("data/restored.csv").restore_request(restore);
    f.runtime.block_on(request.send()).unwrap();

    // `fail`, the default.
    let m = f.manifest("download", "");
    let plan = f.json(&[&m]);
    assert_eq!(plan["transfers"][0]["archived"]["objects"], 2, "{plan:#}");
    f.plan(&[&m]).expect_code(0).expect_stdout(&["2 of them archived"]);
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let transfer = &report["transfers"][0];
    assert_eq!(transfer["moved"]["objects"], 2, "{transfer:#}");
    assert_eq!(transfer["failures"][0]["key"], "cold.csv", "{transfer:#}");
    assert_eq!(transfer["failures"][0]["code"], "Archived", "{transfer:#}");
    assert!(transfer["failure_groups"][0]["hint"].as_str().unwrap().contains("archived: restore"), "{transfer:#}");
    assert_eq!(std::fs::read(f.path("local/restored.csv")).unwrap(), b"data/restored.csv");

    // `skip`: listed as archived, never read.
    let m = f.manifest("download", "    archived: skip\n");
    let plan = f.json(&[&m]);
    assert_eq!(plan["transfers"][0]["by_reason"]["archived"]["objects"], 1, "{plan:#}");
    assert!(plan["transfers"][0]["actions"].as_array().unwrap().is_empty(), "{plan:#}");

    // `restore`: asked, reported, not a failure; the next run moves it.
    let m = f.manifest("download", "    archived: restore\n    restore_days: 2\n    restore_tier: bulk\n");
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let transfer = &report["transfers"][0];
    assert_eq!(transfer["restores_requested"]["objects"], 1, "{transfer:#}");
    assert_eq!(transfer["moved"]["objects"], 0, "{transfer:#}");
    f.apply(&[&m, "--quiet"]).expect_code(0);
    assert_eq!(std::fs::read(f.path("local/cold.csv")).unwrap(), b"data/cold.csv");
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
}

/// `overwrite: never` keeps what the destination has, and `if_newer` replaces only with a
/// newer source, on every server; uploads and downloads alike.
#[test]
fn overwrite_never_and_if_newer_keep_what_the_destination_has() {
    for (server, f) in Fixture::every_server() {
        f.put("data/old-in-bucket.csv", b"the bucket's");
        f.put("data/newer-in-bucket.csv", b"the bucket's");
        f.file_written_earlier("old-in-bucket.csv", b"an older local file, longer");
        f.local("newer-in-bucket.csv", b"a local file modified later");
        set_mtime(&f, "newer-in-bucket.csv", SystemTime::now() - Duration::from_secs(7200));
        f.file_written_earlier("new.csv", b"new");
        // The local files are older than the objects except `old-in-bucket.csv`, whose mtime
        // is now (the objects were written a moment ago).
        set_mtime(&f, "old-in-bucket.csv", SystemTime::now() + Duration::from_secs(60));
        let m = f.manifest("upload", "    overwrite: never\n");
        let plan = f.json(&[&m]);
        assert_eq!(actions(&plan), vec!["upload new.csv"], "{server}: {plan:#}");
        assert_eq!(plan["transfers"][0]["by_reason"]["kept-existing"]["objects"], 2, "{server}: {plan:#}");
        let m = f.manifest("upload", "    overwrite: if_newer\n");
        let plan = f.json(&[&m]);
        assert_eq!(actions(&plan), vec!["upload new.csv", "upload old-in-bucket.csv"], "{server}: {plan:#}");
        assert_eq!(plan["transfers"][0]["by_reason"]["destination-newer"]["objects"], 1, "{server}: {plan:#}");
        let m = f.manifest("download", "    overwrite: never\n");
        f.apply(&[&m, "--quiet"]).expect_code(0);
        assert_eq!(
            std::fs::read(f.path("local/old-in-bucket.csv")).unwrap(),
            b"an older local file, longer",
            "{server}"
        );
    }
}

/// `overwrite: never` and a key another writer creates between the plan and the upload: the
/// upload asks `If-None-Match: *`, the server refuses it, and the other writer's object stays
/// (the report says so; it is not a failure). The proxy holds every request a second, and the
/// other writer puts the object as soon as haul's PUT has reached the proxy.
#[test]
fn overwrite_never_loses_a_race_to_another_writer_without_replacing_its_object() {
    use haul_testkit::{Fault, FaultRule, RecordingProxy};
    let f = Fixture::s3s_fs();
    f.file_written_earlier("race.csv", b"haul's");
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    proxy.set_faults(&[FaultRule::new(Fault::Delay(Duration::from_secs(1)), 1, u64::MAX)]);
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: upload\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./local\n    overwrite: never\n",
        proxy.endpoint()
    );
    write(f.dir.path(), "m.yaml", &text);
    let run = crate::common::haul_command(f.dir.path())
        .args(["apply", "m.yaml", "--output", "json", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let put_seen = || proxy.requests().iter().any(|r| r.method == "PUT" && r.uri.contains("data/race.csv"));
    while !put_seen() {
        assert!(started.elapsed() < Duration::from_secs(30), "haul never sent the upload");
        std::thread::sleep(Duration::from_millis(20));
    }
    f.put("data/race.csv", b"the other writer's");
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["transfers"][0]["created_meanwhile"]["objects"], 1, "{report:#}");
    assert_eq!(f.get("data/race.csv"), b"the other writer's");
    let put = proxy.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.header("if-none-match"), Some("*"));
}

/// Object properties from the manifest on uploads and on server-side copies (moto keeps ACLs,
/// metadata and tags): `acl`, `content_type`, `cache_control`, `content_disposition`,
/// `metadata`, `tags`; a copy replaces the source's metadata and tags only when told to.
#[test]
fn uploads_and_copies_carry_the_manifest_s_acl_metadata_and_tags() {
    let f = Fixture::moto();
    f.file_written_earlier("report.csv", b"a,b\n1,2\n");
    f.file_written_earlier("big/events.parquet", b"PAR1");
    let properties = "    acl: public-read\n    content_type: text/csv; charset=utf-8\n    cache_control: max-age=3600\n    content_disposition: attachment\n    metadata: {team: analytics}\n    tags: {classification: internal, owner: data team}\n    properties:\n      - match: \"*.parquet\"\n        content_type: application/vnd.apache.parquet\n        tags: {format: parquet}\n      - match: \"big/**\"\n        cache_control: no-store\n";
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:
  - name: up
    direction: upload
    bucket: {BUCKET}
    prefix: data/
    local: ./local
{properties}  - name: plain
    direction: copy
    bucket: {BUCKET}
    prefix: data/
    to:
      bucket: {BUCKET}
      prefix: plain/
  - name: relabelled
    direction: copy
    bucket: {BUCKET}
    prefix: data/
    to:
      bucket: {BUCKET}
      prefix: relabelled/
    content_type: application/octet-stream
    tags: {{stage: copied}}
",
        f.endpoint
    );
    write(f.dir.path(), "m.yaml", &text);
    haul(f.dir.path(), &["validate", "m.yaml"]).expect_code(0);
    f.apply(&["m.yaml", "--quiet"]).expect_code(0);
    let head = |key: &str| f.runtime.block_on(f.client.head_object().bucket(BUCKET).key(key).send()).unwrap();
    let tags = |key: &str| {
        let answer = f.runtime.block_on(f.client.get_object_tagging().bucket(BUCKET).key(key).send()).unwrap();
        let mut tags: Vec<String> =
            answer.tag_set().iter().map(|tag| format!("{}={}", tag.key(), tag.value())).collect();
        tags.sort();
        tags
    };
    let uploaded = head("data/report.csv");
    assert_eq!(uploaded.content_type(), Some("text/csv; charset=utf-8"));
    assert_eq!(uploaded.cache_control(), Some("max-age=3600"));
    assert_eq!(uploaded.content_disposition(), Some("attachment"));
    assert_eq!(uploaded.metadata().and_then(|m| m.get("team")).map(String::as_str), Some("analytics"));
    assert_eq!(tags("data/report.csv"), ["classification=internal", "owner=data team"]);
    let acl = f.runtime.block_on(f.client.get_object_acl().bucket(BUCKET).key("data/report.csv").send()).unwrap();
    let public = acl
        .grants()
        .iter()
        .any(|grant| grant.grantee().and_then(|grantee| grantee.uri()).is_some_and(|uri| uri.ends_with("/AllUsers")));
    assert!(public, "public-read was not applied: {:?}", acl.grants());
    // `properties` rules set theirs over the transfer's, later over earlier; the rest stays.
    let parquet = head("data/big/events.parquet");
    assert_eq!(parquet.content_type(), Some("application/vnd.apache.parquet"));
    assert_eq!(parquet.cache_control(), Some("no-store"));
    assert_eq!(parquet.metadata().and_then(|m| m.get("team")).map(String::as_str), Some("analytics"));
    assert_eq!(tags("data/big/events.parquet"), ["format=parquet"]);
    // A copy without properties keeps the source's; one with them replaces them.
    assert_eq!(head("plain/report.csv").content_type(), Some("text/csv; charset=utf-8"));
    assert_eq!(tags("plain/report.csv"), ["classification=internal", "owner=data team"]);
    let relabelled = head("relabelled/report.csv");
    assert_eq!(relabelled.content_type(), Some("application/octet-stream"));
    assert_eq!(tags("relabelled/report.csv"), ["stage=copied"]);
}

/// `update_properties: true`: objects the destination has unchanged, whose headers or metadata
/// are not the manifest's, are updated in place (a copy onto itself), their bytes not sent
/// again; a second plan finds nothing to do. On every server.
#[test]
fn update_properties_sets_new_headers_in_place_without_sending_bytes() {
    for (server, f) in Fixture::every_server() {
        f.file_written_earlier("a.csv", b"a,b\n1,2\n");
        f.file_written_earlier("b/c.parquet", b"PAR1");
        let first = "    content_type: text/plain\n    metadata: {team: ingest}\n";
        let manifest = f.manifest("upload", first);
        f.apply(&[&manifest, "--quiet"]).expect_code(0);
        let changed = "    content_type: text/csv\n    metadata: {team: analytics}\n    update_properties: true\n    properties:\n      - match: \"*.parquet\"\n        content_type: application/vnd.apache.parquet\n        cache_control: no-store\n";
        let manifest = f.manifest("upload", changed);
        let plan = f.json(&[&manifest]);
        let actions: Vec<(String, String, String)> = decisions(&plan);
        assert_eq!(
            actions,
            [
                ("update-properties".into(), "a.csv".into(), "properties-differ".into()),
                ("update-properties".into(), "b/c.parquet".into(), "properties-differ".into()),
            ],
            "{server}: {plan:#}"
        );
        let listed = &plan["transfers"][0]["actions"];
        assert_eq!(listed[0]["properties"], serde_json::json!(["content_type", "metadata"]), "{server}");
        assert_eq!(
            listed[1]["properties"],
            serde_json::json!(["content_type", "cache_control", "metadata"]),
            "{server}"
        );
        f.plan(&[&manifest]).expect_code(0).expect_stdout(&[
            "a.csv        properties differ: content_type, metadata",
            "b/c.parquet  properties differ: content_type, cache_control, metadata",
            "2 to update properties",
        ]);
        let out = f.apply(&[&manifest, "--output", "json", "--quiet"]);
        out.expect_code(0);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let transfer = &report["transfers"][0];
        assert_eq!(transfer["properties_updated"]["objects"], 2, "{server}: {report:#}");
        assert_eq!(transfer["moved"]["objects"], 0, "{server}: {report:#}");
        let head = |key: &str| f.runtime.block_on(f.client.head_object().bucket(BUCKET).key(key).send()).unwrap();
        let csv = head("data/a.csv");
        assert_eq!(csv.content_type(), Some("text/csv"), "{server}");
        assert_eq!(csv.metadata().and_then(|m| m.get("team")).map(String::as_str), Some("analytics"), "{server}");
        let parquet = head("data/b/c.parquet");
        assert_eq!(parquet.content_type(), Some("application/vnd.apache.parquet"), "{server}");
        assert_eq!(parquet.cache_control(), Some("no-store"), "{server}");
        assert_eq!(f.get("data/a.csv"), b"a,b\n1,2\n", "{server}");
        assert_eq!(f.get("data/b/c.parquet"), b"PAR1", "{server}");
        f.plan(&[&manifest, "--detailed-exitcode"]).expect_code(0);
    }
}

/// Tags and ACLs are compared too (moto keeps both): only what differs is put, by
/// PutObjectTagging and PutObjectAcl; a copy onto itself for new metadata keeps an ACL the
/// manifest does not set.
#[test]
fn update_properties_puts_tags_and_acls_and_a_copy_onto_itself_keeps_the_acl() {
    let f = Fixture::moto();
    f.file_written_earlier("a.csv", b"a,b\n");
    let manifest = f.manifest("upload", "    acl: public-read\n");
    f.apply(&[&manifest, "--quiet"]).expect_code(0);
    let public = || {
        let acl = f.runtime.block_on(f.client.get_object_acl().bucket(BUCKET).key("data/a.csv").send()).unwrap();
        acl.grants().iter().any(|grant| {
            grant.grantee().and_then(|grantee| grantee.uri()).is_some_and(|uri| uri.ends_with("/AllUsers"))
        })
    };
    let tags = || {
        let answer = f.runtime.block_on(f.client.get_object_tagging().bucket(BUCKET).key("data/a.csv").send()).unwrap();
        answer.tag_set().iter().map(|tag| format!("{}={}", tag.key(), tag.value())).collect::<Vec<_>>()
    };
    assert!(public());
    // The same ACL: nothing to do; new tags: only they differ.
    let manifest = f.manifest("upload", "    acl: public-read\n    tags: {stage: raw}\n    update_properties: true\n");
    let plan = f.json(&[&manifest]);
    assert_eq!(plan["transfers"][0]["actions"][0]["properties"], serde_json::json!(["tags"]), "{plan:#}");
    f.apply(&[&manifest, "--quiet"]).expect_code(0);
    assert_eq!(tags(), ["stage=raw"]);
    assert!(public());
    f.plan(&[&manifest, "--detailed-exitcode"]).expect_code(0);
    // Another ACL: only the ACL differs.
    let manifest = f.manifest("upload", "    acl: private\n    tags: {stage: raw}\n    update_properties: true\n");
    let plan = f.json(&[&manifest]);
    assert_eq!(plan["transfers"][0]["actions"][0]["properties"], serde_json::json!(["acl"]), "{plan:#}");
    f.apply(&[&manifest, "--quiet"]).expect_code(0);
    assert!(!public());
    // Back to public-read, then new metadata without an ACL in the manifest: the copy onto
    // itself keeps the public grant and the tags.
    let manifest = f.manifest("upload", "    acl: public-read\n    update_properties: true\n");
    f.apply(&[&manifest, "--quiet"]).expect_code(0);
    assert!(public());
    let manifest = f.manifest("upload", "    metadata: {team: analytics}\n    update_properties: true\n");
    let plan = f.json(&[&manifest]);
    assert_eq!(plan["transfers"][0]["actions"][0]["properties"], serde_json::json!(["metadata"]), "{plan:#}");
    f.apply(&[&manifest, "--quiet"]).expect_code(0);
    let head = f.runtime.block_on(f.client.head_object().bucket(BUCKET).key("data/a.csv").send()).unwrap();
    assert_eq!(head.metadata().and_then(|m| m.get("team")).map(String::as_str), Some("analytics"));
    assert!(public(), "the copy onto itself lost the ACL");
    assert_eq!(tags(), ["stage=raw"]);
    assert_eq!(f.get("data/a.csv"), b"a,b\n");
    // `bucket-owner-full-control`, written by the bucket's owner: its grants are the owner's
    // alone, read against GetBucketAcl's owner, so it is the same as `private` here.
    let manifest = f.manifest("upload", "    acl: bucket-owner-full-control\n    update_properties: true\n");
    f.apply(&[&manifest, "--quiet"]).expect_code(0);
    let plan = f.json(&[&manifest]);
    assert_eq!(plan["transfers"][0]["actions"].as_array().map(Vec::len), Some(0), "{plan:#}");
    assert_eq!(plan["transfers"][0]["by_reason"]["unchanged"]["objects"], 1, "compared, not unreadable: {plan:#}");
}

/// A `bandwidth` that cannot move the planned bytes before the deadline is said by `plan`,
/// in the table and in the JSON, before the run; with time enough nothing is said.
#[test]
fn plan_warns_when_the_bandwidth_cannot_meet_the_deadline() {
    let f = Fixture::s3s_fs();
    f.file_written_earlier("big.parquet", &vec![7u8; 3 << 20]);
    let manifest = f.manifest("upload", "    bandwidth: 1MiB/s\n    max_duration: 2s\n");
    f.plan(&[&manifest]).expect_code(0).expect_stdout(&[
        "warning: at `bandwidth: 1.0 MiB/s` the 3.0 MiB to move take 3s, but the deadline (",
        ") is 2s away: what has not started by then is left for the next run (exit 6)",
    ]);
    let plan = f.json(&[&manifest]);
    let shortfall = &plan["transfers"][0]["deadline_shortfall"];
    assert_eq!(shortfall["bytes"], 3 << 20, "{plan:#}");
    assert_eq!(shortfall["needed_seconds"], 3, "{plan:#}");
    assert_eq!(shortfall["available_seconds"], 2, "{plan:#}");
    let roomy = f.manifest("upload", "    bandwidth: 1MiB/s\n    max_duration: 1m\n");
    let out = f.plan(&[&roomy]);
    out.expect_code(0);
    assert!(!out.stdout.contains("warning"), "{}", out.stdout);
    assert!(f.json(&[&roomy])["transfers"][0].get("deadline_shortfall").is_none());
}
