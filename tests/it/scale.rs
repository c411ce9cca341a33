//! Running at scale: shards (`--shard`) and the metrics file (`--metrics-file`), against a
//! real S3 server on 127.0.0.1.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{Fixture, bytes, haul_command, haul_with};
use haul_testkit::{Fault, FaultRule, RecordingProxy};

fn actions(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["actions"].as_array().unwrap().iter())
        .map(|a| (a["key"].as_str().unwrap().to_string(), a["action"].as_str().unwrap().to_string()))
        .collect()
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn four_concurrent_shards_move_the_whole_tree_exactly_once() {
    let f = Fixture::s3s_fs();
    const FILES: usize = 10_000;
    for n in 0..FILES {
        f.file(&format!("d{:02}/f{n:05}.csv", n % 20), n.to_string().as_bytes());
    }
    let m = f.manifest("upload", "");

    // The plans: disjoint, complete, and even (within 10% of a quarter each).
    let mut owner: BTreeMap<String, u32> = BTreeMap::new();
    let mut planned = [0u64; 4];
    for index in 0..4u32 {
        let plan = f.json(&[&m, "--shard", &format!("{index}/4")]);
        assert_eq!(plan["shard"], serde_json::json!({"index": index, "count": 4}));
        for (key, action) in actions(&plan) {
            assert_eq!(action, "upload");
            if let Some(other) = owner.insert(key.clone(), index) {
                panic!("{key} is planned by shards {other} and {index}");
            }
            planned[index as usize] += 1;
        }
        assert_eq!(plan["transfers"][0]["by_reason"]["other-shard"]["objects"], FILES as u64 - planned[index as usize]);
    }
    assert_eq!(owner.len(), FILES, "every file is some shard's");
    for count in planned {
        assert!((2_250..=2_750).contains(&count), "shares {planned:?} are not within 10% of 2,500");
    }

    // The four copies side by side, each with its own lock and report.
    let children: Vec<_> = (0..4)
        .map(|index| {
            haul_command(f.dir.path())
                .args(["apply", &m, "--shard", &format!("{index}/4"), "--quiet", "--report", "report-{shard}.json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        common::Outcome::from(child.wait_with_output().unwrap()).expect_code(0);
    }
    let mut moved = 0;
    for (index, planned) in planned.iter().enumerate() {
        let report = read_json(&f.path(&format!("report-{index}-of-4.json")));
        assert_eq!(report["shard"], serde_json::json!({"index": index, "count": 4}));
        assert_eq!(report["moved"]["objects"], *planned);
        assert_eq!(report["failed"]["objects"], 0);
        moved += report["moved"]["objects"].as_u64().unwrap();
    }
    assert_eq!(moved, FILES as u64, "each file moved once");
    let expected: Vec<String> = owner.keys().map(|k| format!("data/{k}")).collect();
    assert_eq!(f.keys(), expected);
    // And the whole manifest, unsharded, has nothing left to do.
    f.plan(&[&m, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_shard_deletes_only_its_own_keys() {
    let f = Fixture::s3s_fs();
    for n in 0..30 {
        f.file(&format!("keep/{n:02}.csv"), b"kept");
    }
    let gone: Vec<String> = (0..90).map(|n| format!("gone/{n:02}.csv")).collect();
    for key in &gone {
        f.put(&format!("data/{key}"), b"old");
    }
    let m = f.manifest("upload", "    delete: true\n    max_delete: 100\n");
    let out = f.apply(&[&m, "--shard", "0/3", "--quiet"]);
    out.expect_code(0).expect_stdout(&["(shard 0/3)"]);
    // The shard of a key is the documented hash of (transfer name, key under the prefix).
    let mine = |key: &str| haul::shard::shard_of("t", key, 3) == 0;
    let keys: BTreeSet<String> = f.keys().into_iter().collect();
    for key in &gone {
        assert_eq!(keys.contains(&format!("data/{key}")), !mine(key), "{key}");
    }
    for n in 0..30 {
        let key = format!("keep/{n:02}.csv");
        assert_eq!(keys.contains(&format!("data/{key}")), mine(&key), "{key}");
    }
    assert!(gone.iter().any(|k| mine(k)) && gone.iter().any(|k| !mine(k)), "the test needs both kinds");

    f.apply(&[&m, "--shard", "1/3", "--quiet"]).expect_code(0);
    f.apply(&[&m, "--shard", "2/3", "--quiet"]).expect_code(0);
    let expected: Vec<String> = (0..30).map(|n| format!("data/keep/{n:02}.csv")).collect();
    assert_eq!(f.keys(), expected);
}

#[test]
fn shard_auto_reads_the_batch_engines_and_says_what_is_missing() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.manifest("upload", "");
    let plan = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["plan", m.as_str(), "--output", "json", "--shard", "auto"];
        args.extend_from_slice(extra);
        haul_with(f.dir.path(), env, &args)
    };
    let shard_of = |out: &common::Outcome| {
        out.expect_code(0);
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["shard"].clone()
    };
    let batch = plan(&[("AWS_BATCH_JOB_ARRAY_INDEX", "1"), ("AWS_BATCH_JOB_ARRAY_SIZE", "4")], &[]);
    assert_eq!(shard_of(&batch), serde_json::json!({"index": 1, "count": 4}));
    let slurm =
        plan(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")], &[]);
    assert_eq!(shard_of(&slurm), serde_json::json!({"index": 2, "count": 3}));
    let k8s = [("JOB_COMPLETION_INDEX", "2")];
    assert_eq!(shard_of(&plan(&k8s, &["--shard-count", "5"])), serde_json::json!({"index": 2, "count": 5}));
    let k8s_env = [("JOB_COMPLETION_INDEX", "2"), ("HAUL_SHARD_COUNT", "6")];
    assert_eq!(shard_of(&plan(&k8s_env, &[])), serde_json::json!({"index": 2, "count": 6}));

    plan(&k8s, &[]).expect_code(2).expect_stderr(&["JOB_COMPLETION_INDEX=2", "--shard-count N", "HAUL_SHARD_COUNT"]);
    plan(&[], &[]).expect_code(2).expect_stderr(&["found no shard", "--shard INDEX/COUNT"]);
    f.plan(&[&m, "--shard", "4/4"]).expect_code(2).expect_stderr(&["the index must be below the count (0 to 3)"]);
    f.plan(&[&m, "--shard", "two"]).expect_code(2).expect_stderr(&["INDEX/COUNT"]);
    f.plan(&[&m, "--shard", "1/4", "--shard-count", "8"]).expect_code(2).expect_stderr(&["goes with `--shard auto`"]);
    // A saved plan carries its shard; applying it names it, and --shard on it is refused.
    f.plan(&[&m, "--shard", "0/1", "-o", "plan-{shard}.json"]).expect_code(0);
    assert_eq!(read_json(&f.path("plan-0-of-1.json"))["shard"], serde_json::json!({"index": 0, "count": 1}));
    f.apply(&["plan-0-of-1.json", "--shard", "0/1"])
        .expect_code(2)
        .expect_stderr(&["this plan was made for shard 0/1 alone", "make one plan of every key"]);
    f.apply(&["plan-0-of-1.json", "--quiet"]).expect_code(0).expect_stdout(&["moved 1 object ", "(shard 0/1)"]);
}

/// The requests of each kind a proxy saw: `LIST` (ListObjectsV2), `HEAD`, or the method.
fn request_kinds(proxy: &RecordingProxy) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for request in proxy.requests() {
        let kind =
            if request.method == "GET" && request.uri.contains("list-type=2") { "LIST" } else { &request.method };
        *kinds.entry(kind.to_string()).or_default() += 1;
    }
    kinds
}

/// `plan -o PLAN` once, `apply PLAN --shard I/N` on each of N machines: every object of the
/// plan is moved (or deleted) by exactly one shard, no shard lists either side (each looks up
/// its own objects), a shard whose object changed since the plan refuses, and the others
/// are not held up by it. On every server: the lookups must not depend on how one lists.
#[test]
fn a_saved_plan_applied_in_shards_moves_each_object_once_without_listing() {
    for (server, f) in Fixture::every_server() {
        for n in 0..60 {
            f.file_written_earlier(&format!("d{}/f{n:02}.csv", n % 3), format!("file {n}").as_bytes());
        }
        let gone: Vec<String> = (0..30).map(|n| format!("gone/{n:02}.csv")).collect();
        for key in &gone {
            f.put(&format!("data/{key}"), b"old");
        }
        let proxy = RecordingProxy::start(&f.endpoint).unwrap();
        f.manifest("upload", "    delete: true\n    max_delete: 100\n");
        let text = std::fs::read_to_string(f.path("m.yaml")).unwrap().replace(&f.endpoint, proxy.endpoint());
        std::fs::write(f.path("m.yaml"), text).unwrap();
        f.plan(&["m.yaml", "-o", "plan.json"]).expect_code(0);
        let planned = read_json(&f.path("plan.json"));
        assert_eq!(actions(&planned).len(), 90, "{server}");
        let mine = |key: &str, index: u32| haul::shard::shard_of("t", key, 3) == index;

        // Shard 1's file changes after the plan: shard 1 refuses, naming it; 0 and 2 go on.
        let changed = (0..60).map(|n| format!("d{}/f{n:02}.csv", n % 3)).find(|key| mine(key, 1)).unwrap();
        // Dated a minute back: on a server that dates objects in whole seconds (SeaweedFS), an
        // upload in the second the file was written would look older than it, and the last
        // plan would upload it again (`plan::diff::source_newer`). The size still changes.
        f.file_written_earlier(&changed, b"changed since the plan");
        let mut moved = 0;
        let mut deleted = 0;
        let planning = request_kinds(&proxy);
        assert!(planning.get("LIST").is_some_and(|&lists| lists > 0), "{server}: {planning:?}");
        for index in [0u32, 2, 1] {
            let out =
                f.apply(&["plan.json", "--shard", &format!("{index}/3"), "--quiet", "--report", "r-{shard}.json"]);
            let owned = actions(&planned).into_iter().filter(|(key, _)| mine(key, index)).count();
            if index == 1 {
                out.expect_code(4).expect_stderr(&["the saved plan is stale", &changed, "source"]);
                continue;
            }
            out.expect_code(0);
            let report = read_json(&f.path(&format!("r-{index}-of-3.json")));
            assert_eq!(report["shard"], serde_json::json!({"index": index, "count": 3}), "{server}");
            let transfer = &report["transfers"][0];
            let (m, d) =
                (transfer["moved"]["objects"].as_u64().unwrap(), transfer["deleted"]["objects"].as_u64().unwrap());
            assert_eq!((m + d) as usize, owned, "{server}: shard {index}: {report:#}");
            assert_eq!(transfer["skipped"]["other-shard"]["objects"], (90 - owned) as u64, "{server}: {report:#}");
            moved += m;
            deleted += d;
        }
        let kinds = request_kinds(&proxy);
        assert_eq!(kinds.get("LIST"), planning.get("LIST"), "{server}: only `plan` lists: {kinds:?}");
        // One HEAD per action at the destination (the sources are local files).
        let heads = kinds.get("HEAD").copied().unwrap_or(0) - planning.get("HEAD").copied().unwrap_or(0);
        assert!(heads >= 90, "{server}: each shard looks up its objects: {kinds:?}");

        // Shard 1 again, once its plan is made anew: a plan of every key, split the same way.
        f.plan(&["m.yaml", "-o", "plan.json"]).expect_code(0);
        let out = f.apply(&["plan.json", "--shard", "1/3", "--quiet", "--output", "json"]);
        out.expect_code(0);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        moved += report["transfers"][0]["moved"]["objects"].as_u64().unwrap();
        deleted += report["transfers"][0]["deleted"]["objects"].as_u64().unwrap();
        assert_eq!((moved, deleted), (60, 30), "{server}: each object moved or deleted once");
        let mut expected: Vec<String> = (0..60).map(|n| format!("data/d{}/f{n:02}.csv", n % 3)).collect();
        expected.sort();
        let mut keys = f.keys();
        keys.sort();
        assert_eq!(keys, expected, "{server}");
        assert_eq!(f.get(&format!("data/{changed}")), b"changed since the plan", "{server}");
        f.plan(&["m.yaml", "--detailed-exitcode"]).expect_code(0);
    }
}

/// A saved plan whose later transfer reads what an earlier one writes cannot be split: one
/// machine's download would read what another machine has not uploaded yet. Refused before
/// anything moves, with the way out; the same plan applied whole works.
#[test]
fn a_saved_plan_whose_transfers_chain_is_not_split_into_shards() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.two_way_manifest(&f.endpoint, "");
    f.plan(&[&m, "-o", "plan.json"]).expect_code(0);
    f.apply(&["plan.json", "--shard", "0/2"])
        .expect_code(2)
        .expect_stderr(&["transfer `down` reads what transfer `up` writes", "--only up"]);
    assert!(f.keys().is_empty(), "nothing moved");
    f.apply(&["plan.json", "--quiet"]).expect_code(0);
    assert_eq!(std::fs::read(f.path("back/a.csv")).unwrap(), b"a");
}

/// The same for a manifest run with `--shard`: each shard writes only its own keys, so a
/// later transfer's shards would read (and under `delete`, delete by) a source other
/// machines have not written yet. `plan` and `apply` refuse it alike, before anything is
/// listed; each transfer on its own (`--only`) may be sharded.
#[test]
fn a_manifest_whose_transfers_chain_is_not_run_in_shards() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.two_way_manifest(&f.endpoint, "");
    let refused = ["transfer `down` reads what transfer `up` writes", "run `--only up` in shards, and `--only down`"];
    f.plan(&[&m, "--shard", "0/2"]).expect_code(2).expect_stderr(&refused);
    f.apply(&[&m, "--shard", "1/2", "--quiet"]).expect_code(2).expect_stderr(&refused);
    assert!(f.keys().is_empty(), "nothing moved");
    for shard in ["0/2", "1/2"] {
        f.apply(&[&m, "--only", "up", "--shard", shard, "--quiet"]).expect_code(0);
    }
    for shard in ["0/2", "1/2"] {
        f.apply(&[&m, "--only", "down", "--shard", shard, "--quiet"]).expect_code(0);
    }
    assert_eq!(std::fs::read(f.path("back/a.csv")).unwrap(), b"a");
}

/// `destination: head`, a few files into a prefix that holds many more: the plan is the plan a
/// listing makes (the same actions, keys and reasons), the destination is not listed (no LIST
/// reaches the server), each source key the filter takes is looked up once, and what it
/// applies leaves nothing for a listed plan to do. Both ways: HEADs into a bucket, a file's
/// metadata into a folder. On every server.
#[test]
fn destination_head_plans_what_a_listing_plans_without_listing_the_destination() {
    for (server, f) in Fixture::every_server() {
        for n in 0..250 {
            f.put(&format!("data/bulk/{n:03}.csv"), b"bulk");
        }
        for n in 0..10 {
            f.file_written_earlier(&format!("same/{n}.csv"), b"same");
        }
        for n in 0..5 {
            f.file_written_earlier(&format!("changed/{n}.csv"), b"before");
        }
        let proxy = RecordingProxy::start(&f.endpoint).unwrap();
        let manifest = |name: &str, direction: &str, local: &str, destination: &str| {
            let text = format!(
                "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: {direction}\n    bucket: {}\n    prefix: data/\n    local: {local}\n    extensions: [csv]\n    destination: {destination}\n",
                proxy.endpoint(),
                common::BUCKET
            );
            common::write(f.dir.path(), name, &text);
        };
        manifest("list.yaml", "upload", "./local", "list");
        manifest("head.yaml", "upload", "./local", "head");
        f.apply(&["list.yaml", "--quiet"]).expect_code(0);
        for n in 0..5 {
            f.file_written_earlier(&format!("changed/{n}.csv"), b"after, longer");
            f.file_written_earlier(&format!("new/{n}.csv"), b"new");
        }
        f.file_written_earlier("notes.txt", b"not a csv");

        let listed = f.json(&["list.yaml"]);
        let before = request_kinds(&proxy);
        let looked_up = f.json(&["head.yaml"]);
        let after = request_kinds(&proxy);
        let counted = |kind: &str| after.get(kind).copied().unwrap_or(0) - before.get(kind).copied().unwrap_or(0);
        assert_eq!(common::decisions(&looked_up), common::decisions(&listed), "{server}");
        assert_eq!(common::decisions(&looked_up).len(), 10, "{server}: {looked_up:#}");
        assert_eq!(counted("LIST"), 0, "{server}: the destination was listed: {after:?}");
        assert_eq!(counted("HEAD"), 20, "{server}: one HEAD per csv file: {after:?}");
        assert_eq!(looked_up["transfers"][0]["by_reason"]["unchanged"]["objects"], 10, "{server}: {looked_up:#}");

        f.apply(&["head.yaml", "--quiet"]).expect_code(0);
        f.plan(&["list.yaml", "--detailed-exitcode"]).expect_code(0);
        assert_eq!(f.get("data/changed/3.csv"), b"after, longer", "{server}");

        // Down into a folder that has part of it: looked up by the files' metadata.
        manifest("down-list.yaml", "download", "./back", "list");
        manifest("down-head.yaml", "download", "./back", "head");
        std::fs::create_dir_all(f.path("back/same")).unwrap();
        std::fs::copy(f.path("local/same/1.csv"), f.path("back/same/1.csv")).unwrap();
        let listed = f.json(&["down-list.yaml"]);
        let looked_up = f.json(&["down-head.yaml"]);
        assert_eq!(common::decisions(&looked_up), common::decisions(&listed), "{server}");
        f.apply(&["down-head.yaml", "--quiet"]).expect_code(0);
        f.plan(&["down-list.yaml", "--detailed-exitcode"]).expect_code(0);
        f.plan(&["down-head.yaml", "--detailed-exitcode"]).expect_code(0);
        assert_eq!(std::fs::read(f.path("back/bulk/007.csv")).unwrap(), b"bulk", "{server}");
    }
}

/// The samples of a metrics file, parsed by a Prometheus text-format parser, keyed by metric
/// name and the labels that vary (transfer, outcome).
fn metrics(path: &std::path::Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut samples = BTreeMap::new();
    for sample in scrape.samples {
        assert_eq!(sample.labels.get("manifest"), Some("m.yaml"), "{sample:?}");
        let value = match sample.value {
            prometheus_parse::Value::Gauge(value) => value,
            other => panic!("{} should be a gauge: {other:?}", sample.metric),
        };
        let mut name = sample.metric.clone();
        for label in ["transfer", "outcome"] {
            if let Some(value) = sample.labels.get(label) {
                name.push_str(&format!("/{value}"));
            }
        }
        samples.insert(name, value);
    }
    samples
}

#[test]
fn the_metrics_file_tells_what_the_report_tells() {
    let f = Fixture::s3s_fs();
    let proxy = RecordingProxy::start(&f.endpoint).unwrap();
    for n in 0..5u64 {
        f.file(&format!("{n}.csv"), &bytes(1_000 + n as usize, n));
    }
    f.file("skip.tmp", b"filtered out");
    let m = f.two_way_manifest(proxy.endpoint(), "  retries: 1\n  exclude: [\"*.tmp\"]\n");
    std::fs::create_dir(f.path("textfile")).unwrap();
    let prom = f.path("textfile/haul.prom");
    let args = [m.as_str(), "--quiet", "--report", "run.json", "--metrics-file", "textfile/haul.prom"];

    // A good run: every number is the report's.
    f.apply(&[&args[..], &["--only", "up"]].concat()).expect_code(0);
    let report = read_json(&f.path("run.json"));
    let good = metrics(&prom);
    let number = |v: &serde_json::Value| v.as_f64().unwrap();
    assert_eq!(good["haul_last_run_success"], 1.0);
    assert_eq!(good["haul_last_run_exit_code"], 0.0);
    let up = &report["transfers"][0];
    assert_eq!(good["haul_last_run_objects/up/moved"], number(&up["moved"]["objects"]));
    assert_eq!(good["haul_last_run_objects/up/moved"], 5.0);
    assert_eq!(good["haul_last_run_bytes/up/moved"], number(&up["moved"]["bytes"]));
    assert_eq!(good["haul_last_run_objects/up/skipped"], number(&up["skipped"]["filtered"]["objects"]));
    assert_eq!(good["haul_last_run_objects/up/failed"], 0.0);
    assert_eq!(good["haul_last_run_objects_in_flight/up"], number(&up["concurrency"]["settled"]));
    assert_eq!(good["haul_last_run_slow_down_answers/up"], 0.0);
    let started = number(&report["started"]);
    assert!((good["haul_last_run_start_timestamp_seconds"] - started).abs() < 1.0);
    let end = good["haul_last_run_end_timestamp_seconds"];
    assert!(end >= good["haul_last_run_start_timestamp_seconds"]);
    assert!(good["haul_last_run_duration_seconds"] >= number(&report["duration_seconds"]));
    assert_eq!(good["haul_last_success_timestamp_seconds"], end);

    // A run whose downloads all fail: failures counted, success 0, last success kept.
    let mut always_500 = FaultRule::new(Fault::InternalError, 1, 10_000);
    always_500.object_gets_only = true;
    proxy.set_faults(&[always_500]);
    f.apply(&[&args[..], &["--only", "down"]].concat()).expect_code(1);
    let report = read_json(&f.path("run.json"));
    let failed = metrics(&prom);
    assert_eq!(failed["haul_last_run_success"], 0.0);
    assert_eq!(failed["haul_last_run_exit_code"], 1.0);
    assert_eq!(failed["haul_last_run_objects/down/failed"], 5.0);
    assert_eq!(failed["haul_last_run_bytes/down/failed"], number(&report["failed"]["bytes"]));
    assert_eq!(failed["haul_last_run_objects/down/moved"], 0.0);
    assert_eq!(failed["haul_last_success_timestamp_seconds"], end);

    // A run that cannot start (the manifest broke) still says it failed.
    common::write(f.dir.path(), &m, "version: 1\ntransfers: nope\n");
    f.apply(&args).expect_code(2);
    let broken = metrics(&prom);
    assert_eq!(broken["haul_last_run_success"], 0.0);
    assert_eq!(broken["haul_last_run_exit_code"], 2.0);
    assert_eq!(broken["haul_last_success_timestamp_seconds"], end);
    assert!(!broken.keys().any(|k| k.starts_with("haul_last_run_objects")), "no transfer ran: {broken:?}");
}

#[test]
fn an_unwritable_metrics_file_is_a_warning_not_a_failed_run() {
    let f = Fixture::s3s_fs();
    f.file("a.csv", b"a");
    let m = f.manifest("upload", "");
    // A file where the metrics folder should be.
    common::write(f.dir.path(), "blocked", "not a folder");
    f.apply(&[&m, "--quiet", "--metrics-file", "blocked/haul.prom"])
        .expect_code(0)
        .expect_stderr(&["warning: cannot write the metrics file `blocked/haul.prom`"])
        .expect_stdout(&["moved 1 object "]);
    assert_eq!(f.keys(), vec!["data/a.csv"]);
}

#[test]
fn a_low_open_file_limit_lowers_concurrency_instead_of_failing_objects() {
    use std::os::unix::process::CommandExt as _;
    let f = Fixture::s3s_fs();
    for i in 0..1000 {
        f.file(&format!("d{:02}/f{i:04}.csv", i % 20), &bytes(64, i));
    }
    let m = f.two_way_manifest(&f.endpoint, "  concurrency: 1024\n");
    for transfer in ["up", "down"] {
        let mut command = haul_command(f.dir.path());
        command.args(["apply", &m, "--only", transfer, "--quiet", "--output", "json"]);
        // A hard limit of 256, so raising the soft one cannot help.
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child before exec.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let out = common::Outcome::from(command.output().unwrap());
        out.expect_code(0).expect_stderr(&["concurrency 1024 lowered to 96", "the open-file limit is 256"]);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["moved"]["objects"], 1000, "{transfer}: {}", out.stderr);
    }
}
