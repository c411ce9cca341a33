//! Sync decisions at the edges, end to end on real servers: names that differ only in
//! Unicode form (twins), edits within one second, and plans of manifests whose later
//! transfers read what earlier ones write.

use crate::common;

use crate::common::{Fixture, bytes, tree};

const NFC: &str = "\u{D55C}.csv"; // 한.csv
const NFD: &str = "\u{1112}\u{1161}\u{11AB}.csv"; // 한.csv as macOS writes it

/// Every test server: s3s-fs keeps keys as files, moto in memory, SeaweedFS in a folder tree
/// it lists as a walk (out of key order); their listings differ.
fn servers() -> [Fixture; 3] {
    Fixture::every_server().map(|(_, fixture)| fixture)
}

fn transfer(plan: &serde_json::Value) -> &serde_json::Value {
    &plan["transfers"][0]
}

/// The keys listed as skipped with the twin reason.
fn twins_skipped(plan: &serde_json::Value) -> Vec<String> {
    transfer(plan)["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reason"].as_str().unwrap().starts_with("same name as another key"))
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect()
}

/// Two local names that differ only in Unicode form are two objects in a bucket, which keeps
/// names apart: each is uploaded to its own name (as `aws s3 sync` does), not one skipped
/// every night.
#[test]
fn local_twins_upload_each_to_its_own_name_and_the_next_plan_is_empty() {
    for f in servers() {
        f.file_written_earlier(NFC, b"written as NFC");
        f.file_written_earlier(NFD, b"NFD, other bytes");
        let m = f.manifest("upload", "");
        let plan = f.json(&[&m]);
        let uploads = vec![("upload".to_string(), NFC.to_string(), "new".to_string()); 2];
        assert_eq!(common::decisions(&plan), uploads, "{plan:#}");
        assert!(twins_skipped(&plan).is_empty(), "{plan:#}");

        f.apply(&[&m, "--quiet"]).expect_code(0);
        let mut keys = vec![format!("data/{NFC}"), format!("data/{NFD}")];
        keys.sort();
        let mut listed = f.keys();
        listed.sort();
        assert_eq!(listed, keys);
        assert_eq!(f.get(&format!("data/{NFC}")), b"written as NFC");
        assert_eq!(f.get(&format!("data/{NFD}")), b"NFD, other bytes");
        // Stable: nothing left to do, so --detailed-exitcode says 0, not 3 forever.
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
        // And a download of both into an empty folder writes one of them (on macOS the two
        // names are one file), saying which it left.
        let down = f.manifest("download", "");
        std::fs::remove_dir_all(f.path("local")).unwrap();
        f.apply(&[&down, "--quiet"]).expect_code(0);
        assert_eq!(
            tree(&f.path("local")).into_iter().collect::<Vec<_>>(),
            vec![(NFC.to_string(), b"written as NFC".to_vec())]
        );
    }
}

#[test]
fn remote_twins_download_the_key_whose_name_is_the_file_name() {
    for f in servers() {
        f.put(&format!("data/{NFC}"), b"the NFC key");
        f.put(&format!("data/{NFD}"), b"the NFD key, longer");
        let m = f.manifest("download", "");
        let plan = f.json(&[&m]);
        assert_eq!(common::decisions(&plan), vec![("download".into(), NFC.into(), "new".into())], "{plan:#}");
        assert_eq!(twins_skipped(&plan), vec![NFD.to_string()]);
        f.apply(&[&m, "--quiet"]).expect_code(0);
        let local = tree(&f.path("local"));
        assert_eq!(local.keys().collect::<Vec<_>>(), vec![NFC]);
        assert_eq!(local[NFC], b"the NFC key");
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
    }
}

#[test]
fn an_upload_updates_the_key_of_its_exact_name_not_a_twin() {
    for f in servers() {
        f.put(&format!("data/{NFC}"), b"old");
        f.put(&format!("data/{NFD}"), b"the NFD twin");
        f.file_written_earlier(NFC, b"new content");
        let m = f.manifest("upload", "");
        let plan = f.json(&[&m]);
        assert_eq!(common::decisions(&plan), vec![("upload".into(), NFC.into(), "size-differs".into())], "{plan:#}");
        // The twin is left, and said so: not silently stale.
        assert_eq!(twins_skipped(&plan), vec![NFD.to_string()]);
        f.apply(&[&m, "--quiet"]).expect_code(0);
        assert_eq!(f.get(&format!("data/{NFC}")), b"new content");
        assert_eq!(f.get(&format!("data/{NFD}")), b"the NFD twin");
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);

        // With `delete: true` the twin the source does not have goes.
        let m = f.manifest("upload", "    delete: true\n    max_delete: 1\n");
        let plan = f.json(&[&m]);
        assert_eq!(common::decisions(&plan), vec![("delete-remote".into(), NFC.into(), "missing-at-source".into())]);
        assert_eq!(plan["transfers"][0]["actions"][0]["destination"]["stored_key"], NFD);
        f.apply(&[&m, "--quiet"]).expect_code(0);
        assert_eq!(f.keys(), vec![format!("data/{NFC}")]);
    }
}

#[test]
fn an_nfd_twin_listed_before_other_keys_waits_for_its_place_and_is_never_overwritten() {
    // By stored bytes the NFD twin (1112...) lists before `b.csv`'s folder `x/` would not, but
    // before every Hangul NFC key: `e\u{301}/` (65 cc 81) before `x/` (78) before `é/` (c3 a9).
    let (nfc, nfd) = ("\u{e9}/a.csv", "e\u{301}/a.csv");
    for f in servers() {
        f.put(&format!("data/{nfc}"), b"old");
        f.put(&format!("data/{nfd}"), b"the NFD twin");
        f.put("data/x/b.csv", b"b");
        f.file_written_earlier(nfc, b"new content");
        f.file_written_earlier("x/b.csv", b"b");
        let m = f.manifest("upload", "");
        for _run in 0..2 {
            let out = f.apply(&[&m, "--quiet", "--log-level", "info"]);
            out.expect_code(0);
            assert_eq!(f.get(&format!("data/{nfc}")), b"new content");
            assert_eq!(f.get(&format!("data/{nfd}")), b"the NFD twin", "{}", out.stderr);
            // Merged in place as the listing comes, not listed again and sorted.
            assert!(!out.stderr.contains("not in key order"), "{}", out.stderr);
        }
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
    }
}

/// LastModified of `key`, in milliseconds, as the listing gives it.
fn listed_millis(f: &Fixture, key: &str) -> i64 {
    let page = f.runtime.block_on(f.client.list_objects_v2().bucket(common::BUCKET).prefix(key).send()).unwrap();
    let time = page.contents()[0].last_modified().unwrap();
    time.secs() * 1000 + i64::from(time.subsec_nanos() / 1_000_000)
}

#[test]
fn a_file_edited_in_the_same_second_as_its_object_is_uploaded() {
    for f in servers() {
        let mut object_ms = 0;
        // A LastModified at .999 leaves no later millisecond in its second: write again.
        for _ in 0..5 {
            f.put("data/a.csv", b"old");
            object_ms = listed_millis(&f, "data/a.csv");
            if object_ms.rem_euclid(1000) < 999 {
                break;
            }
        }
        // Same size, edited later within the same second (.999).
        let edited_ms = object_ms.div_euclid(1000) * 1000 + 999;
        f.file("a.csv", b"new");
        let edited = std::time::UNIX_EPOCH + std::time::Duration::from_millis(edited_ms as u64);
        std::fs::File::options().write(true).open(f.path("local/a.csv")).unwrap().set_modified(edited).unwrap();
        // The upload must land in a later second than the edit, or a server that lists whole
        // seconds would date it before the edit (and rightly upload it again next time).
        let next_second = std::time::UNIX_EPOCH + std::time::Duration::from_secs(edited_ms as u64 / 1000 + 1);
        if let Ok(wait) = next_second.duration_since(std::time::SystemTime::now()) {
            std::thread::sleep(wait);
        }
        let m = f.manifest("upload", "");
        let plan = f.json(&[&m]);
        assert_eq!(
            common::decisions(&plan),
            vec![("upload".into(), "a.csv".into(), "source-newer".into())],
            "{plan:#}"
        );
        assert_eq!(transfer(&plan)["actions"][0]["source"]["mtime_ms"], edited_ms);
        f.apply(&[&m, "--quiet"]).expect_code(0);
        assert_eq!(f.get("data/a.csv"), b"new");
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);

        // Downloaded files carry the listed time to the millisecond: a re-plan is empty
        // however far into its second the object was written.
        let m = f.manifest("download", "");
        std::fs::remove_file(f.path("local/a.csv")).unwrap();
        f.apply(&[&m, "--quiet"]).expect_code(0);
        let local_ms = haul::listing::local::mtime_millis(&std::fs::metadata(f.path("local/a.csv")).unwrap());
        assert_eq!(local_ms, listed_millis(&f, "data/a.csv"));
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
    }
}

/// The demo's shape: upload a folder, then download the same prefix elsewhere.
fn demo(f: &Fixture) -> String {
    for (seed, name) in ["a.csv", "b/c.parquet", "보고서/매출.csv"].iter().enumerate() {
        f.file_written_earlier(name, &bytes(100 + seed, seed as u64));
    }
    f.two_way_manifest(&f.endpoint, "")
}

#[test]
fn a_plan_counts_what_earlier_transfers_write_and_a_saved_plan_does_it() {
    for f in servers() {
        let m = demo(&f);
        let plan = f.json(&[&m]);
        let down = &plan["transfers"][1];
        assert_eq!(down["by_action"]["download"]["objects"], 3, "{plan:#}");
        assert_eq!(down["actions"][0]["source"]["written_by"], "up");
        f.plan(&[&m]).expect_stdout(&["new (written by `up` first)"]).expect_code(0);

        f.plan(&[&m, "-o", "plan.json"]).expect_code(0);
        let out = f.apply(&["plan.json", "--output", "json", "--quiet"]);
        out.expect_code(0);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["transfers"][1]["moved"]["objects"], 3, "{report:#}");
        assert_eq!(tree(&f.path("back")), tree(&f.path("local")));
        // The downloads got the objects' real times, not the plan's estimate: all quiet.
        f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
    }
}

#[test]
fn plan_and_apply_of_a_manifest_agree_on_what_moves() {
    let f = Fixture::s3s_fs();
    let m = demo(&f);
    let plan = f.json(&[&m]);
    let out = f.apply(&[&m, "--output", "json", "--quiet"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for index in 0..2 {
        let planned: u64 = plan["transfers"][index]["by_action"]
            .as_object()
            .unwrap()
            .values()
            .map(|t| t["objects"].as_u64().unwrap())
            .sum();
        assert_eq!(report["transfers"][index]["moved"]["objects"].as_u64().unwrap(), planned, "transfer {index}");
    }
}
