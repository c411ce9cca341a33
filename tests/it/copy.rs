//! `direction: copy`, bucket to bucket, on real servers: server-side within one server (moto,
//! through a recording proxy that shows no object bytes pass through haul), streamed between
//! two servers (s3s-fs and s3s-fs), deletes in the destination only and within `max_delete`.

use crate::common;

use crate::common::{BUCKET, Fixture, bytes, haul, write};

const MIB: usize = 1024 * 1024;
const DESTINATION: &str = "copy-destination";

/// A copy of `BUCKET/data/` to what `to` says, 5 MiB multipart threshold, copy cutoff and
/// parts (so the part paths run on small objects); `extra` adds lines to the transfer.
fn copy_manifest(f: &Fixture, source_endpoint: &str, to: &str, extra: &str) -> String {
    let text = format!(
        "version: 1
defaults:
  endpoint: {source_endpoint}
  path_style: true
  region: us-east-1
  multipart_threshold: 5MiB
  part_size: 5MiB
  copy_cutoff: 5MiB
transfers:
  - name: mirror
    direction: copy
    bucket: {BUCKET}
    prefix: data/
    to:
{to}{extra}"
    );
    write(f.dir.path(), "m.yaml", &text);
    "m.yaml".into()
}

fn put_with_type(f: &Fixture, client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8], content_type: &str) {
    let request = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .metadata("origin", "partner")
        .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()));
    f.runtime.block_on(request.send()).unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

fn object(
    f: &Fixture,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, Option<String>, Option<String>) {
    let answer = f
        .runtime
        .block_on(client.get_object().bucket(bucket).key(key).send())
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    let content_type = answer.content_type().map(str::to_string);
    let origin = answer.metadata().and_then(|m| m.get("origin").cloned());
    let body = f.runtime.block_on(answer.body.collect()).unwrap().into_bytes().to_vec();
    (body, content_type, origin)
}

fn keys(f: &Fixture, client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let page = f.runtime.block_on(client.list_objects_v2().bucket(bucket).send()).unwrap();
    page.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
}

#[test]
fn a_copy_on_one_server_is_server_side_keeps_properties_and_deletes_only_in_the_destination() {
    let f = Fixture::moto();
    f.runtime.block_on(f.client.create_bucket().bucket(DESTINATION).send()).unwrap();
    let big = bytes(12 * MIB, 7);
    put_with_type(&f, &f.client, BUCKET, "data/a.csv", b"a,b\n1,2\n", "text/csv");
    put_with_type(&f, &f.client, BUCKET, "data/매출/2026.parquet", &bytes(3000, 1), "application/vnd.apache.parquet");
    put_with_type(&f, &f.client, BUCKET, "data/big.bin", &big, "application/octet-stream");
    // Already in the destination, and no longer in the source.
    f.runtime
        .block_on(f.client.put_object().bucket(DESTINATION).key("mirror/gone.csv").body(b"x".to_vec().into()).send())
        .unwrap();
    let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    let to = format!("      bucket: {DESTINATION}\n      prefix: mirror/\n");
    let m = copy_manifest(&f, proxy.endpoint(), &to, "    delete: true\n    max_delete: 1\n");

    let plan = f.json(&[&m]);
    let transfer = &plan["transfers"][0];
    assert_eq!(transfer["direction"], "copy");
    assert_eq!(transfer["copy_method"], "server-side");
    assert_eq!(transfer["to"]["bucket"], DESTINATION);
    f.plan(&[&m]).expect_code(0).expect_stdout(&["server-side copy", "s3://copy-destination/mirror/"]);

    let before = proxy.requests().len();
    f.apply(&[&m, "--quiet"]).expect_code(0);
    let run = &proxy.requests()[before..];
    // No object was read through haul: the server copied (CopyObject, UploadPartCopy).
    let object_gets =
        run.iter().filter(|r| r.method == "GET" && !r.uri.contains("list-type") && !r.uri.contains("uploads"));
    assert_eq!(object_gets.count(), 0, "{run:#?}");
    assert!(
        run.iter()
            .any(|r| r.method == "PUT" && r.header("x-amz-copy-source").is_some() && r.uri.contains("partNumber="))
    );
    assert!(
        run.iter()
            .any(|r| r.method == "PUT" && r.header("x-amz-copy-source").is_some() && !r.uri.contains("partNumber="))
    );

    let (body, content_type, origin) = object(&f, &f.client, DESTINATION, "mirror/a.csv");
    assert_eq!(
        (body.as_slice(), content_type.as_deref(), origin.as_deref()),
        (&b"a,b\n1,2\n"[..], Some("text/csv"), Some("partner"))
    );
    let (body, content_type, origin) = object(&f, &f.client, DESTINATION, "mirror/big.bin");
    assert_eq!(body, big);
    // A multipart copy starts its upload with the source's properties (UploadPartCopy has none).
    assert_eq!((content_type.as_deref(), origin.as_deref()), (Some("application/octet-stream"), Some("partner")));
    assert_eq!(object(&f, &f.client, DESTINATION, "mirror/매출/2026.parquet").0, bytes(3000, 1));
    // The delete went to the destination; the source is untouched.
    assert_eq!(keys(&f, &f.client, DESTINATION), ["mirror/a.csv", "mirror/big.bin", "mirror/매출/2026.parquet"]);
    assert_eq!(keys(&f, &f.client, BUCKET).len(), 3);

    // The next run finds nothing to do (the copies are newer than their sources).
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0).expect_stdout(&["nothing to do; 3 unchanged"]);
}

#[test]
fn a_copy_over_max_delete_is_refused_before_anything_moves() {
    let f = Fixture::s3s_fs();
    f.runtime.block_on(f.client.create_bucket().bucket(DESTINATION).send()).unwrap();
    f.put("data/new.csv", b"1\n");
    for name in ["mirror/old1.csv", "mirror/old2.csv"] {
        f.runtime
            .block_on(f.client.put_object().bucket(DESTINATION).key(name).body(b"x".to_vec().into()).send())
            .unwrap();
    }
    let to = format!("      bucket: {DESTINATION}\n      prefix: mirror/\n");
    let m = copy_manifest(&f, &f.endpoint, &to, "    delete: true\n    max_delete: 1\n");
    f.apply(&[&m, "--quiet"]).expect_code(1).expect_stdout(&["max_delete"]);
    assert_eq!(keys(&f, &f.client, DESTINATION), ["mirror/old1.csv", "mirror/old2.csv"]);
}

#[test]
fn a_copy_between_two_servers_is_streamed_verified_and_not_repeated() {
    let f = Fixture::s3s_fs();
    let other = Fixture::s3s_fs();
    let big = bytes(12 * MIB, 3);
    put_with_type(&f, &f.client, BUCKET, "data/a.csv", b"a,b\n", "text/csv");
    put_with_type(&f, &f.client, BUCKET, "data/한글/b.parquet", &bytes(70_000, 2), "application/vnd.apache.parquet");
    put_with_type(&f, &f.client, BUCKET, "data/big.bin", &big, "application/octet-stream");
    let to = format!("      bucket: {BUCKET}\n      prefix: copied/\n      endpoint: {}\n", other.endpoint);
    let m = copy_manifest(&f, &f.endpoint, &to, "");
    let plan = f.json(&[&m]);
    assert_eq!(plan["transfers"][0]["copy_method"], "streamed");
    f.plan(&[&m]).expect_code(0).expect_stdout(&["streamed through haul", "3 to copy"]);

    f.apply(&[&m, "--quiet"]).expect_code(0);
    let (body, content_type, origin) = object(&other, &other.client, BUCKET, "copied/a.csv");
    assert_eq!(
        (body.as_slice(), content_type.as_deref(), origin.as_deref()),
        (&b"a,b\n"[..], Some("text/csv"), Some("partner"))
    );
    assert_eq!(object(&other, &other.client, BUCKET, "copied/한글/b.parquet").0, bytes(70_000, 2));
    assert_eq!(object(&other, &other.client, BUCKET, "copied/big.bin").0, big);
    // Nothing was written to the source server.
    assert_eq!(keys(&f, &f.client, BUCKET).len(), 3);

    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0).expect_stdout(&["nothing to do; 3 unchanged"]);
}

#[test]
fn requester_pays_goes_to_the_source_only() {
    let f = Fixture::s3s_fs();
    let other = Fixture::s3s_fs();
    put_with_type(&f, &f.client, BUCKET, "data/a.csv", b"a\n", "text/csv");
    put_with_type(&f, &f.client, BUCKET, "data/big.bin", &bytes(6 * MIB, 5), "application/octet-stream");
    let source = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    let destination = haul_testkit::RecordingProxy::start(&other.endpoint).unwrap();
    let to = format!("      bucket: {BUCKET}\n      prefix: copied/\n      endpoint: {}\n", destination.endpoint());
    let m = copy_manifest(&f, source.endpoint(), &to, "    request_payer: requester\n");
    f.apply(&[&m, "--quiet"]).expect_code(0);
    assert_eq!(object(&other, &other.client, BUCKET, "copied/big.bin").0, bytes(6 * MIB, 5));
    let (read, written) = (source.requests(), destination.requests());
    assert!(read.iter().any(|r| r.method == "GET" && r.header("range").is_some()), "{read:#?}");
    assert!(written.iter().any(|r| r.method == "PUT" && r.uri.contains("partNumber=")), "{written:#?}");
    for request in &read {
        assert_eq!(request.header("x-amz-request-payer"), Some("requester"), "{} {}", request.method, request.uri);
    }
    for request in &written {
        assert_eq!(request.header("x-amz-request-payer"), None, "{} {}", request.method, request.uri);
    }
}

#[test]
fn a_source_replaced_during_its_copy_fails_and_leaves_nothing_in_the_destination() {
    // moto as the destination: it lists multipart uploads, so an upload left behind shows.
    let f = Fixture::s3s_fs();
    let other = Fixture::moto();
    put_with_type(&f, &f.client, BUCKET, "data/big.bin", &bytes(12 * MIB, 8), "application/octet-stream");
    // Every object read waits, so the object can be replaced between the plan and the reads
    // (a second each: the replacing PUT of 12 MiB must land within it on a loaded machine;
    // 500 ms was once too short beside a benchmark).
    let source = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    let mut slow =
        haul_testkit::FaultRule::new(haul_testkit::Fault::Delay(std::time::Duration::from_millis(1000)), 1, 1_000);
    slow.object_gets_only = true;
    source.set_faults(&[slow]);
    let to = format!("      bucket: {BUCKET}\n      prefix: copied/\n      endpoint: {}\n", other.endpoint);
    let m = copy_manifest(&f, source.endpoint(), &to, "    concurrency: 1\n");
    let mut child = common::haul_command(f.dir.path())
        .args(["apply", &m])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The copy is under way once the source's HEAD went out (the plan is made).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !source.requests().iter().any(|r| r.method == "HEAD" && r.uri.contains("big.bin")) {
        assert!(std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(), "the copy never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    put_with_type(&f, &f.client, BUCKET, "data/big.bin", &bytes(12 * MIB, 9), "application/octet-stream");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("the object changed since the plan"), "{stdout}");
    assert!(keys(&other, &other.client, BUCKET).is_empty(), "nothing may be stored from two versions");
    let uploads = other.runtime.block_on(other.client.list_multipart_uploads().bucket(BUCKET).send()).unwrap();
    assert!(uploads.uploads().is_empty(), "the failed multipart upload is aborted");
}

#[test]
fn a_copy_killed_mid_object_is_finished_by_the_next_run_with_no_upload_left_behind() {
    let f = Fixture::moto();
    f.runtime.block_on(f.client.create_bucket().bucket(DESTINATION).send()).unwrap();
    let big = bytes(16 * MIB, 11);
    put_with_type(&f, &f.client, BUCKET, "data/big.bin", &big, "application/octet-stream");
    let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
    proxy.set_faults(&[haul_testkit::FaultRule::new(
        haul_testkit::Fault::Delay(std::time::Duration::from_millis(300)),
        1,
        1_000,
    )]);
    let to = format!("      bucket: {DESTINATION}\n      prefix: mirror/\n");
    let m = copy_manifest(&f, proxy.endpoint(), &to, "    concurrency: 1\n");
    let mut child = common::haul_command(f.dir.path()).args(["apply", &m, "--quiet"]).spawn().unwrap();
    let uploads = || {
        let request = f.client.list_multipart_uploads().bucket(DESTINATION);
        f.runtime.block_on(request.send()).unwrap().uploads().len()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while uploads() == 0 {
        assert!(std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(), "the copy never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(uploads(), 1, "kill -9 leaves the multipart upload behind");
    assert!(keys(&f, &f.client, DESTINATION).is_empty());

    proxy.set_faults(&[]);
    f.plan(&[&m]).expect_code(0).expect_stdout(&["1 unfinished multipart upload"]);
    f.apply(&[&m, "--quiet"]).expect_code(0);
    assert_eq!(object(&f, &f.client, DESTINATION, "mirror/big.bin").0, big);
    assert_eq!(uploads(), 0, "the next run aborts what the killed one left");
}

#[test]
fn compare_checksum_between_two_buckets_uses_both_objects_checksums() {
    let f = Fixture::moto();
    f.runtime.block_on(f.client.create_bucket().bucket(DESTINATION).send()).unwrap();
    let put_crc = |bucket: &str, key: &str, body: &[u8]| {
        let request = f
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()));
        f.runtime.block_on(request.send()).unwrap();
    };
    put_crc(BUCKET, "data/a.csv", b"1,2,3\n");
    put_crc(BUCKET, "data/b.csv", b"4,5,6\n");
    let to = format!("      bucket: {DESTINATION}\n      prefix: mirror/\n");
    let m = copy_manifest(&f, &f.endpoint, &to, "    compare: checksum\n");
    f.apply(&[&m, "--quiet"]).expect_code(0);
    // The copies carry CRC32Cs equal to their sources': nothing to do.
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0).expect_stdout(&["nothing to do; 2 unchanged"]);
    // Same size, other bytes in the destination (newer, so size-mtime would keep it).
    put_crc(DESTINATION, "mirror/b.csv", b"9,9,9\n");
    let plan = f.json(&[&m]);
    let actions = plan["transfers"][0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!((actions[0]["key"].as_str(), actions[0]["reason"].as_str()), (Some("b.csv"), Some("checksum-differs")));
}

#[test]
fn shards_split_a_copy_and_check_reads_the_source_and_probes_the_destination() {
    let f = Fixture::moto();
    f.runtime.block_on(f.client.create_bucket().bucket(DESTINATION).send()).unwrap();
    for i in 0..12 {
        put_with_type(&f, &f.client, BUCKET, &format!("data/{i:02}.csv"), b"x,y\n", "text/csv");
    }
    let to = format!("      bucket: {DESTINATION}\n      prefix: mirror/\n");
    let m = copy_manifest(&f, &f.endpoint, &to, "");
    // `check`: the source is read per extension, the destination is written to (and nothing
    // is left behind there).
    haul(f.dir.path(), &["check", &m]).expect_code(0).expect_stdout(&[
        "read *.csv",
        "write *.csv to `copy-destination`",
        "nothing was stored",
    ]);
    assert!(keys(&f, &f.client, DESTINATION).is_empty());
    // Two shards: each copies its own keys, together all of them, none twice.
    let mut moved = 0;
    for index in 0..2 {
        let out = f.apply(&[&m, "--shard", &format!("{index}/2"), "--output", "json"]);
        out.expect_code(0);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        moved += report["moved"]["objects"].as_u64().unwrap();
    }
    assert_eq!(moved, 12);
    assert_eq!(keys(&f, &f.client, DESTINATION).len(), 12);
}
