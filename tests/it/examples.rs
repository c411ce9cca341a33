//! The scheduling and scale-out examples under examples/ must keep working as haul changes:
//! each file parses as what it is, the haul command line in it is accepted by haul's own
//! parser, and where a checker exists on the machine (systemd-analyze, bash -n) it is run.

use crate::common;

use crate::common::repo_root;
use clap::Parser as _;
use haul::cli::{ApplyArgs, Cli, Command};

fn example(path: &str) -> String {
    let path = repo_root().join("examples").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses a haul command line (`haul ...` or `/usr/local/bin/haul ...`) with haul's parser;
/// it must be `haul apply`. Returns the target, the `--shard` value and all its arguments.
fn haul_apply(words: &[String]) -> (String, Option<String>, ApplyArgs) {
    let program = words.first().expect("a command");
    assert!(program == "haul" || program.ends_with("/haul"), "not a haul command: {words:?}");
    let cli = Cli::try_parse_from(words).unwrap_or_else(|e| panic!("haul rejects {words:?}:\n{e}"));
    match cli.command {
        Command::Apply(args) => (args.target.to_string_lossy().into_owned(), args.shard.shard.clone(), args),
        other => panic!("expected `haul apply`, got {other:?}"),
    }
}

/// A YAML document as JSON (scalars are strings: marked-yaml keeps them as written).
fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n")
        .map(|doc| marked_yaml::from_yaml(0, doc).unwrap_or_else(|e| panic!("YAML: {e}\n{doc}")))
        .collect()
}

/// The manifest's lines without comments and blank lines, for comparing copies of it.
fn manifest_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn kubernetes_indexed_job_runs_the_manifest_as_shards() {
    let docs = yaml_documents(&example("kubernetes/haul-indexed-job.yaml"));
    let config_map = docs.iter().find(|d| d["kind"] == "ConfigMap").expect("a ConfigMap");
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    assert_eq!(job["apiVersion"], "batch/v1");

    // The ConfigMap carries the example manifest, and it is valid.
    let manifest = config_map["data"]["nightly.yaml"].as_str().unwrap();
    assert_eq!(manifest_lines(manifest), manifest_lines(&example("nightly-sharded.yaml")));
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "nightly.yaml", manifest);
    common::haul(dir.path(), &["validate", "nightly.yaml"]).expect_code(0);

    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    let mut words: Vec<String> =
        container["command"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().into()).collect();
    words.extend(container["args"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()));
    let (target, shard, _) = haul_apply(&words);
    assert_eq!(shard.as_deref(), Some("auto"));
    // Kubernetes gives the index only: the count must be the Job's completions.
    let count = container["env"].as_array().unwrap().iter().find(|e| e["name"] == "HAUL_SHARD_COUNT").unwrap();
    assert_eq!(count["value"], spec["completions"]);
    // The manifest path is where the ConfigMap is mounted.
    let volume =
        pod["volumes"].as_array().unwrap().iter().find(|v| v["configMap"]["name"] == config_map["metadata"]["name"]);
    let mount =
        container["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume.unwrap()["name"]).unwrap();
    assert_eq!(target, format!("{}/nightly.yaml", mount["mountPath"].as_str().unwrap()));
}

#[test]
fn aws_batch_array_job_runs_the_manifest_as_shards() {
    let definition: serde_json::Value = serde_json::from_str(&example("aws-batch/job-definition.json")).unwrap();
    let submit: serde_json::Value = serde_json::from_str(&example("aws-batch/submit-array-job.json")).unwrap();
    assert_eq!(submit["jobDefinition"], definition["jobDefinitionName"]);
    assert!(submit["arrayProperties"]["size"].as_u64().unwrap() >= 2, "an array job has at least two children");
    let words: Vec<String> = definition["containerProperties"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().into())
        .collect();
    let (target, shard, _) = haul_apply(&words);
    assert_eq!(shard.as_deref(), Some("auto"));
    assert_eq!(target, "/etc/haul/nightly.yaml");
}

/// Parses a `haul plan ... -o FILE` command line: the manifest and the saved plan's path.
fn haul_plan(words: &[String]) -> (String, String) {
    let cli = Cli::try_parse_from(words).unwrap_or_else(|e| panic!("haul rejects {words:?}:\n{e}"));
    match cli.command {
        Command::Plan(args) => (
            args.run.manifest.to_string_lossy().into_owned(),
            args.out.expect("the plan is saved: -o FILE").to_string_lossy().into_owned(),
        ),
        other => panic!("expected `haul plan`, got {other:?}"),
    }
}

/// Plan once, apply in shards, on Kubernetes: the plan Job saves where the shards' Job reads,
/// the shards' Job waits (suspended) and splits the plan with `--shard auto`, and both see the
/// manifest at the path the plan names.
#[test]
fn kubernetes_plan_then_shards_splits_one_saved_plan() {
    let docs = yaml_documents(&example("kubernetes/haul-plan-then-shards.yaml"));
    let job = |name: &str| docs.iter().find(|d| d["kind"] == "Job" && d["metadata"]["name"] == name).unwrap();
    let words = |job: &serde_json::Value| -> Vec<String> {
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        let command = container["command"].as_array().unwrap().iter();
        command.chain(container["args"].as_array().unwrap()).map(|w| w.as_str().unwrap().to_string()).collect()
    };
    let (plan, shards) = (job("haul-nightly-plan"), job("haul-nightly-shards"));
    let (manifest, saved) = haul_plan(&words(plan));
    let (target, shard, _) = haul_apply(&words(shards));
    assert_eq!(target, saved, "the shards apply the plan the first Job saves");
    assert_eq!(shard.as_deref(), Some("auto"));
    assert_eq!(shards["spec"]["suspend"], "true", "started once the plan is saved");
    assert_eq!(shards["spec"]["completionMode"], "Indexed");
    let env = shards["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    let count = env.iter().find(|e| e["name"] == "HAUL_SHARD_COUNT").unwrap();
    assert_eq!(count["value"], shards["spec"]["completions"]);
    // The same manifest (the ConfigMap of haul-indexed-job.yaml) and volumes in both.
    let indexed = yaml_documents(&example("kubernetes/haul-indexed-job.yaml"));
    let config_map = indexed.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert_eq!(manifest, "/etc/haul/nightly.yaml");
    for job in [plan, shards] {
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"],
            indexed.iter().find(|d| d["kind"] == "Job").unwrap()["spec"]["template"]["spec"]["volumes"]
        );
        assert_eq!(pod["volumes"][0]["configMap"]["name"], config_map["metadata"]["name"]);
        assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/etc/haul");
    }
}

/// The same on AWS Batch: the script is valid shell, the plan job saves where the array job
/// (which depends on it) reads, and every haul command in it is one haul accepts.
#[test]
fn aws_batch_plan_then_shards_splits_one_saved_plan() {
    let path = repo_root().join("examples/aws-batch/plan-then-shards.sh");
    let status = std::process::Command::new("sh").args(["-n", path.to_str().unwrap()]).status().unwrap();
    assert!(status.success(), "sh -n rejects the script");
    let script = example("aws-batch/plan-then-shards.sh").replace("\\\n", " ");
    let commands: Vec<Vec<String>> = script
        .lines()
        .filter(|line| line.contains("--container-overrides"))
        .map(|line| {
            let json = line.split('\'').nth(1).expect("the overrides in single quotes");
            let overrides: serde_json::Value = serde_json::from_str(json).unwrap();
            overrides["command"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
        })
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let (manifest, saved) = haul_plan(&commands[0]);
    let (target, shard, _) = haul_apply(&commands[1]);
    assert_eq!(manifest, "/etc/haul/nightly.yaml");
    assert_eq!(target, saved);
    assert_eq!(shard.as_deref(), Some("auto"));
    assert!(script.contains("--depends-on jobId=\"$plan_job\""), "the array waits for the plan");
    assert!(script.contains("--array-properties size="), "an array job");
    let definition: serde_json::Value = serde_json::from_str(&example("aws-batch/job-definition.json")).unwrap();
    assert!(script.contains(&format!("--job-definition {}", definition["jobDefinitionName"].as_str().unwrap())));
}

#[test]
fn slurm_array_script_runs_the_manifest_as_shards() {
    let script = example("slurm/haul-array.sbatch");
    let status = std::process::Command::new("bash")
        .args(["-n", repo_root().join("examples/slurm/haul-array.sbatch").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success(), "bash -n rejects the script");
    assert!(script.lines().any(|l| l.starts_with("#SBATCH --array=")), "an array job");
    // The command, with its continuation lines joined, as the shell would read it.
    let joined = script.replace("\\\n", " ");
    let line = joined.lines().find(|l| l.contains("haul apply")).expect("a haul apply line");
    let mut words = shell_words::split(line).unwrap();
    if words[0] == "srun" {
        words.remove(0);
    }
    let (_, shard, command) = haul_apply(&words);
    assert_eq!(shard.as_deref(), Some("auto"));
    let ApplyArgs { report, metrics_file, .. } = command;
    // Every task writes its own files.
    assert!(report.unwrap().to_string_lossy().contains("{shard}"));
    assert!(metrics_file.unwrap().to_string_lossy().contains("{shard}"));
}

#[test]
fn crontab_line_is_one_valid_entry() {
    let text = example("cron/crontab");
    let entries: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let fields: Vec<&str> = entries[0].splitn(6, char::is_whitespace).collect();
    let time_field = |f: &str| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit() || "*,-/".contains(c));
    assert!(fields[..5].iter().all(|f| time_field(f)), "five time fields: {fields:?}");
    // cron turns `%` into a newline.
    assert!(!fields[5].contains('%'), "{}", fields[5]);
    let (_, shard, command) = haul_apply(&shell_words::split(fields[5]).unwrap());
    assert_eq!(shard, None, "one machine, no shards");
    let ApplyArgs { quiet, metrics_file, .. } = command;
    assert!(quiet && metrics_file.is_some());
}

#[test]
fn systemd_units_verify_and_run_haul() {
    let service = example("systemd/haul-nightly.service");
    let exec = service.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart=");
    let words = shell_words::split(exec).unwrap();
    let (_, shard, _) = haul_apply(&words);
    assert_eq!(shard, None);
    assert!(service.contains("SuccessExitStatus=5"), "a held lock is not a failure");
    assert!(example("systemd/haul-nightly.timer").contains("OnCalendar="));

    // systemd's own checker, with the binary path pointed at the haul under test.
    if std::process::Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let service = service.replace(&words[0], env!("CARGO_BIN_EXE_haul"));
        common::write(dir.path(), "haul-nightly.service", &service);
        common::write(dir.path(), "haul-nightly.timer", &example("systemd/haul-nightly.timer"));
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .args([dir.path().join("haul-nightly.service"), dir.path().join("haul-nightly.timer")])
            .output()
            .unwrap();
        assert!(out.status.success(), "systemd-analyze verify:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The Dockerfile builds in one stage and runs in another that only takes files (so it
/// builds on any base), as a user without privileges, with `haul` as the entrypoint and the
/// CA certificates; the Kubernetes and Batch examples run `haul` from an image. (The image
/// itself is built and checked by `./scripts/image`, which needs root and buildah.)
#[test]
fn the_dockerfile_runs_haul_unprivileged_with_ca_certificates() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let runtime = stages[1];
    assert!(!runtime.lines().any(|line| line.starts_with("RUN ")), "the runtime stage only takes files");
    let user = runtime.lines().find_map(|line| line.strip_prefix("USER ")).expect("a USER");
    assert!(!matches!(user.split(':').next(), Some("0" | "root")), "runs as {user}");
    assert!(runtime.contains("ENTRYPOINT [\"haul\"]"));
    assert!(runtime.contains("/etc/ssl/certs/ca-certificates.crt"));
    assert!(stages[0].contains("cargo build --release --locked"));
    let definition: serde_json::Value = serde_json::from_str(&example("aws-batch/job-definition.json")).unwrap();
    assert_eq!(definition["containerProperties"]["command"][0], "haul");
    assert!(example("kubernetes/haul-indexed-job.yaml").contains("command: [\"haul\"]"));
}
