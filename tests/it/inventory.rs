//! `listing: {inventory: ...}`: an S3 Inventory report, written by the test in AWS's format
//! (CSV gzipped with URL-encoded keys, and Parquet), stands for the bucket's listing. The plan
//! it gives equals the plan from a listing, the listed prefix is never listed, and a saved
//! plan's check still finds what changed since. On every server.

use std::io::Write as _;

use crate::common::{self, BUCKET, Fixture};
use haul_testkit::RecordingProxy;

/// The objects under `prefix` as the bucket lists them: key, size, LastModified (RFC 3339 with
/// milliseconds, as a report writes it), ETag.
fn objects(f: &Fixture, prefix: &str) -> Vec<(String, i64, String, String)> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let request = f.client.list_objects_v2().bucket(BUCKET).prefix(prefix).set_continuation_token(token.take());
        let page = f.runtime.block_on(request.send()).unwrap();
        for object in page.contents() {
            let time = object.last_modified().unwrap();
            let millis = time.secs() * 1000 + i64::from(time.subsec_nanos() / 1_000_000);
            let time =
                jiff::Timestamp::from_millisecond(millis).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            found.push((
                object.key().unwrap().to_string(),
                object.size().unwrap(),
                time,
                object.e_tag().unwrap_or_default().trim_matches('"').to_string(),
            ));
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    found
}

/// A row of a report: bucket, key, version, is_latest, is_delete_marker, size, time, ETag, class.
type Row = (String, String, String, bool, bool, Option<i64>, String, String, String);

/// The report's rows for `objects`, out of key order (reversed, then interleaved), with rows a
/// listing would not show: an older version, a delete marker, and keys of another prefix.
fn rows(objects: &[(String, i64, String, String)]) -> Vec<Row> {
    let mut rows: Vec<Row> = objects
        .iter()
        .map(|(key, size, time, etag)| {
            (
                BUCKET.into(),
                key.clone(),
                "v2".into(),
                true,
                false,
                Some(*size),
                time.clone(),
                etag.clone(),
                "STANDARD".into(),
            )
        })
        .collect();
    rows.reverse();
    let time = "2026-01-01T00:00:00.000Z".to_string();
    rows.insert(
        1,
        (
            BUCKET.into(),
            "data/old version.csv".into(),
            "v1".into(),
            false,
            false,
            Some(9),
            time.clone(),
            "e".into(),
            "STANDARD".into(),
        ),
    );
    rows.insert(
        2,
        (
            BUCKET.into(),
            "data/deleted.csv".into(),
            "v3".into(),
            true,
            true,
            Some(0),
            time.clone(),
            String::new(),
            String::new(),
        ),
    );
    rows.insert(
        3,
        (
            BUCKET.into(),
            "data/marker without size.csv".into(),
            "v4".into(),
            true,
            true,
            None,
            time.clone(),
            String::new(),
            String::new(),
        ),
    );
    rows.push((
        BUCKET.into(),
        "other/x.csv".into(),
        "v1".into(),
        true,
        false,
        Some(3),
        time,
        "e".into(),
        "STANDARD".into(),
    ));
    rows
}

fn form_encode(key: &str) -> String {
    key.bytes()
        .map(|byte| match byte {
            b' ' => "+".to_string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn csv_gz(rows: &[Row]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for (bucket, key, version, latest, marker, size, time, etag, class) in rows {
        let size = size.map(|size| size.to_string()).unwrap_or_default();
        writeln!(
            gz,
            "\"{bucket}\",\"{}\",\"{version}\",\"{latest}\",\"{marker}\",\"{size}\",\"{time}\",\"{etag}\",\"{class}\"",
            form_encode(key)
        )
        .unwrap();
    }
    gz.finish().unwrap()
}

fn parquet(rows: &[Row]) -> Vec<u8> {
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    let schema = "message s3.inventory {
        required binary bucket (STRING);
        required binary key (STRING);
        optional binary version_id (STRING);
        optional boolean is_latest;
        optional boolean is_delete_marker;
        optional int64 size;
        optional int64 last_modified_date (TIMESTAMP(MILLIS,true));
        optional binary e_tag (STRING);
        optional binary storage_class (STRING);
    }";
    let schema = std::sync::Arc::new(parquet::schema::parser::parse_message_type(schema).unwrap());
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, Default::default()).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let text = |value: &str| ByteArray::from(value.as_bytes().to_vec());
    let strings = |pick: &dyn Fn(&Row) -> String| rows.iter().map(|row| text(&pick(row))).collect::<Vec<_>>();
    let all = vec![1i16; rows.len()];
    for column in 0..9 {
        let mut writer = group.next_column().unwrap().unwrap();
        match column {
            0 => writer.typed::<ByteArrayType>().write_batch(&strings(&|r| r.0.clone()), None, None),
            1 => writer.typed::<ByteArrayType>().write_batch(&strings(&|r| r.1.clone()), None, None),
            2 => writer.typed::<ByteArrayType>().write_batch(&strings(&|r| r.2.clone()), Some(&all), None),
            3 => {
                writer.typed::<BoolType>().write_batch(&rows.iter().map(|r| r.3).collect::<Vec<_>>(), Some(&all), None)
            }
            4 => {
                writer.typed::<BoolType>().write_batch(&rows.iter().map(|r| r.4).collect::<Vec<_>>(), Some(&all), None)
            }
            5 => {
                let levels: Vec<i16> = rows.iter().map(|r| i16::from(r.5.is_some())).collect();
                let values: Vec<i64> = rows.iter().filter_map(|r| r.5).collect();
                writer.typed::<Int64Type>().write_batch(&values, Some(&levels), None)
            }
            6 => {
                let millis: Vec<i64> =
                    rows.iter().map(|r| r.6.parse::<jiff::Timestamp>().unwrap().as_millisecond()).collect();
                writer.typed::<Int64Type>().write_batch(&millis, Some(&all), None)
            }
            7 => writer.typed::<ByteArrayType>().write_batch(&strings(&|r| r.7.clone()), Some(&all), None),
            _ => writer.typed::<ByteArrayType>().write_batch(&strings(&|r| r.8.clone()), Some(&all), None),
        }
        .unwrap();
        writer.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
    out
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes a report of `rows` in `format` (`CSV` or `Parquet`), split over two data files, in
/// `folder` (`inventory/BUCKET/CONFIG/DATE/`), made `age` ago; returns its manifest's key.
fn write_report(
    f: &Fixture,
    folder: &str,
    format: &str,
    rows: &[Row],
    age: std::time::Duration,
    bucket: &str,
) -> String {
    let (first, second) = rows.split_at(rows.len() / 2);
    let mut files = Vec::new();
    for (index, part) in [first, second].into_iter().enumerate() {
        let (body, ext) = match format {
            "CSV" => (csv_gz(part), "csv.gz"),
            _ => (parquet(part), "parquet"),
        };
        let key = format!("{}data/part-{index}.{ext}", folder.replace("T01-00Z", "T01-00Z-files"));
        f.put(&key, &body);
        files.push(serde_json::json!({"key": key, "size": body.len(), "MD5checksum": md5_hex(&body)}));
    }
    let created = std::time::SystemTime::now() - age;
    let created = created.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
    let schema = match format {
        "CSV" => {
            "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass".to_string()
        }
        _ => "message s3.inventory { required binary bucket; required binary key; ... }".to_string(),
    };
    let manifest = serde_json::json!({
        "sourceBucket": bucket,
        "destinationBucket": format!("arn:aws:s3:::{BUCKET}"),
        "version": "2016-11-30",
        "creationTimestamp": created,
        "fileFormat": format,
        "fileSchema": schema,
        "files": files,
    });
    let key = format!("{folder}manifest.json");
    f.put(&key, manifest.to_string().as_bytes());
    key
}

fn manifest(f: &Fixture, endpoint: &str, name: &str, listing: &str) {
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: {endpoint}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: download\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./back\n    delete: true\n    max_delete: 100\n{listing}"
    );
    common::write(f.dir.path(), name, &text);
}

/// ListObjectsV2 requests of the transfer's prefix the proxy saw.
fn prefix_listings(proxy: &RecordingProxy) -> usize {
    proxy.requests().iter().filter(|r| r.uri.contains("list-type=2") && r.uri.contains("prefix=data")).count()
}

/// A download planned from a report equals the one planned from a listing (new, changed,
/// unchanged and deleted files alike), without one ListObjectsV2 of the prefix; the newest
/// report of a folder is the one read; a stale one is refused; a saved plan made from a report
/// is checked against the bucket, not the report; applied, nothing is left to do.
#[test]
fn an_inventory_report_plans_as_a_listing_does_without_listing() {
    for (server, f) in Fixture::every_server() {
        let keys = ["a.csv", "with space.csv", "plus+sign.csv", "\u{D55C}.csv", "d1/x.csv", "d1/y.csv", "d2/z/w.csv"];
        for (n, key) in keys.iter().enumerate() {
            f.put(&format!("data/{key}"), format!("object {n}").as_bytes());
        }
        for n in 0..30 {
            f.put(&format!("data/many/{n:02}.csv"), b"many");
        }
        let proxy = RecordingProxy::start(&f.endpoint).unwrap();
        manifest(&f, proxy.endpoint(), "list.yaml", "");
        // What the folder already has: one file as the bucket has it, one changed, one gone
        // from the bucket.
        f.apply(&["list.yaml", "--only", "t", "--quiet"]).expect_code(0);
        std::fs::remove_dir_all(f.path("back/many")).unwrap();
        std::fs::write(f.path("back/d1/x.csv"), b"changed locally, longer").unwrap();
        std::fs::write(f.path("back/only-here.csv"), b"gone from the bucket").unwrap();

        for format in ["CSV", "Parquet"] {
            let rows = rows(&objects(&f, "data/"));
            let day = std::time::Duration::from_secs(24 * 3600);
            let old =
                write_report(&f, &format!("inventory/{BUCKET}/cfg/2026-01-01T01-00Z/"), format, &rows, day * 3, BUCKET);
            let newest =
                write_report(&f, &format!("inventory/{BUCKET}/cfg/2026-01-02T01-00Z/"), format, &rows, day / 2, BUCKET);
            let by_folder = format!("    listing:\n      inventory: s3://{BUCKET}/inventory/{BUCKET}/cfg/\n");
            manifest(&f, proxy.endpoint(), "inventory.yaml", &by_folder);

            let listed = f.json(&["list.yaml"]);
            let before = prefix_listings(&proxy);
            let planned = f.json(&["inventory.yaml"]);
            assert_eq!(prefix_listings(&proxy), before, "{server} {format}: the prefix was listed");
            assert_eq!(common::decisions(&planned), common::decisions(&listed), "{server} {format}: {planned:#}");
            assert_eq!(common::decisions(&planned).len(), 32, "{server} {format}: {planned:#}");
            let used = &planned["transfers"][0]["inventories"][0];
            assert_eq!(used["report"], format!("s3://{BUCKET}/{newest}"), "{server} {format}: {planned:#}");
            assert_eq!(used["side"], "source");
            let table = f.plan(&["inventory.yaml"]);
            table.expect_code(0).expect_stdout(&["source listed from the S3 Inventory report", "12h"]);

            // The older report, named: refused, saying how old it is.
            let named = format!("    listing:\n      inventory: s3://{BUCKET}/{old}\n");
            manifest(&f, proxy.endpoint(), "old.yaml", &named);
            f.plan(&["old.yaml"]).expect_code(1).expect_stderr(&[
                "3days",
                "longer ago than `max_age: 2days`",
                "wait for the next report",
            ]);
            // Another bucket's report: refused.
            let other = write_report(
                &f,
                "inventory/someone-else/cfg/2026-01-03T01-00Z/",
                format,
                &rows,
                day / 2,
                "someone-else",
            );
            manifest(
                &f,
                proxy.endpoint(),
                "other.yaml",
                &format!("    listing:\n      inventory: s3://{BUCKET}/{other}\n"),
            );
            f.plan(&["other.yaml"]).expect_code(1).expect_stderr(&["lists bucket `someone-else`"]);
        }

        // A saved plan from the report, and an object changed since: the report does not show
        // it, the check does.
        f.plan(&["inventory.yaml", "-o", "plan.json"]).expect_code(0);
        f.put("data/many/05.csv", b"rewritten after the report");
        f.apply(&["plan.json"]).expect_code(4).expect_stderr(&["the saved plan is stale: 1 object", "many/05.csv"]);
        f.apply(&["list.yaml", "--quiet"]).expect_code(0);
        f.plan(&["list.yaml", "--detailed-exitcode"]).expect_code(0);
        assert_eq!(std::fs::read(f.path("back/many/05.csv")).unwrap(), b"rewritten after the report", "{server}");
        assert!(!f.path("back/only-here.csv").exists(), "{server}");
    }
}

/// The rows of a report come in no order and the sort spills to disk in runs: with runs of 7
/// rows, a report of 40 keys plans as a listing does.
#[test]
fn an_inventory_report_is_sorted_in_runs_on_disk() {
    let f = Fixture::s3s_fs();
    for n in 0..40 {
        f.put(&format!("data/k{:02}.csv", (n * 17) % 40), b"x");
    }
    manifest(&f, &f.endpoint, "list.yaml", "");
    let rows = rows(&objects(&f, "data/"));
    let report = write_report(
        &f,
        &format!("inventory/{BUCKET}/cfg/2026-01-02T01-00Z/"),
        "CSV",
        &rows,
        std::time::Duration::ZERO,
        BUCKET,
    );
    manifest(&f, &f.endpoint, "inventory.yaml", &format!("    listing:\n      inventory: s3://{BUCKET}/{report}\n"));
    let listed = f.json(&["list.yaml"]);
    let out = common::haul_with(
        f.dir.path(),
        &[("HAUL_SORT_RUN_ITEMS", "7")],
        &["plan", "inventory.yaml", "--output", "json"],
    );
    out.expect_code(0);
    let planned: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(common::decisions(&planned), common::decisions(&listed));
    assert_eq!(common::decisions(&planned).len(), 40);
}

/// A copy's destination listed from its own report (`to.listing`): the plan is the listing's,
/// and the plan says which side the report stood for.
#[test]
fn a_copy_destination_is_listed_from_its_report() {
    let f = Fixture::s3s_fs();
    for n in 0..12 {
        f.put(&format!("data/f{n:02}.csv"), format!("object {n}").as_bytes());
    }
    let copy = |name: &str, listing: &str| {
        let text = format!(
            "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: copy\n    bucket: {BUCKET}\n    prefix: data/\n    to:\n      bucket: {BUCKET}\n      prefix: copy/\n{listing}",
            f.endpoint
        );
        common::write(f.dir.path(), name, &text);
    };
    copy("list.yaml", "");
    f.apply(&["list.yaml", "--quiet"]).expect_code(0);
    // Some copies gone or changed since: the report is made after that, as S3 would.
    f.put("copy/f03.csv", b"changed at the destination");
    f.runtime.block_on(f.client.delete_object().bucket(BUCKET).key("copy/f07.csv").send()).unwrap();
    let report = write_report(
        &f,
        &format!("inventory/{BUCKET}/cfg/2026-01-02T01-00Z/"),
        "CSV",
        &rows(&objects(&f, "copy/")),
        std::time::Duration::ZERO,
        BUCKET,
    );
    copy("inventory.yaml", &format!("      listing:\n        inventory: s3://{BUCKET}/{report}\n"));
    let listed = f.json(&["list.yaml"]);
    let planned = f.json(&["inventory.yaml"]);
    assert_eq!(common::decisions(&planned), common::decisions(&listed));
    assert_eq!(common::decisions(&planned).len(), 2, "{planned:#}");
    assert_eq!(planned["transfers"][0]["inventories"][0]["side"], "destination");
}
