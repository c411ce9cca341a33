//! `haul import`: a corpus of real-looking aws-cli lines (scripts, crontabs, chained commands)
//! becomes the manifest in `tests/import/expected.yaml`, with every untranslated option named.

use crate::common;

use std::io::Write as _;

use crate::common::{haul, repo_root, write};

fn import_stdin(dir: &std::path::Path, input: &str) -> (i32, String, String) {
    let mut child = common::haul_command(dir)
        .args(["import", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn the_corpus_becomes_the_expected_manifest_and_names_what_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = std::fs::read_to_string(repo_root().join("tests/import/corpus.sh")).unwrap();
    let (code, stdout, stderr) = import_stdin(dir.path(), &corpus);
    assert_eq!(code, 0, "{stderr}");
    let expected = std::fs::read_to_string(repo_root().join("tests/import/expected.yaml")).unwrap();
    assert!(
        stdout == expected,
        "the manifest differs from tests/import/expected.yaml (regenerate it with \
         `haul import - < tests/import/corpus.sh > tests/import/expected.yaml` after checking the change):\n{stdout}"
    );
    // The seed case: requester pays, and aws-cli's `--exclude "*" --include ...` as extensions.
    assert!(stdout.contains("extensions: [\"csv\", \"parquet\"]\n    request_payer: requester"), "{stdout}");
    // Dated paths as templates, in the zone `date` read; the environment before a command
    // (and an `export` before the lines after it); a line continued with `\`.
    assert!(stdout.contains("prefix: \"daily/{date}/\"\n    local: \"/data/{date}/\""), "{stdout}");
    assert!(stdout.contains("profile: \"prod\"\n    timezone: \"local\""), "{stdout}");
    assert!(
        stdout.contains(
            "prefix: \"{date-1d:%Y/%m/%d}/\"\n    local: \"/srv/exports/{date-1d:%Y%m%d}\"\n    region: \"eu-west-1\""
        ),
        "{stdout}"
    );
    assert!(stdout.contains("profile: \"archive\"\n    storage_class: \"GLACIER_IR\""), "{stdout}");
    // Object properties: the seed workflow's owner-ID problem is what `--acl
    // bucket-owner-full-control` solves.
    assert!(
        stdout.contains("acl: \"bucket-owner-full-control\"\n    content_type: \"text/csv\"\n    cache_control: \"max-age=3600\"\n    metadata: {\"team\": \"analytics\", \"source\": \"nightly\"}"),
        "{stdout}"
    );
    // `--exact-timestamps` on a download: a same-size local file that differs is replaced,
    // which haul says as `compare: checksum`; on an upload aws-cli ignores it, and so is it said.
    assert!(stdout.contains("local: \"/srv/landing\"\n    compare: checksum  # from --exact-timestamps"), "{stdout}");
    assert!(stderr.contains("`bucket-outbox`: `--exact-timestamps` applies to S3-to-local syncs only"), "{stderr}");
    for left_out in ["--exact-timestamps", "--acl", "keep.gz", "single object", "is relative", "`FOO=…`"] {
        assert!(stderr.contains(left_out), "{left_out} not named: {stderr}");
    }
    // It is a valid manifest (import checks it before writing; validate says so again).
    write(dir.path(), "nightly.yaml", &stdout);
    haul(dir.path(), &["validate", "nightly.yaml"]).expect_code(0).expect_stdout(&["valid, 12 transfers"]);
}

#[test]
fn nothing_to_import_and_an_existing_output_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = import_stdin(dir.path(), "aws s3 ls s3://bucket/\necho hello\n");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no `aws s3 sync` or `aws s3 cp --recursive` command found"), "{stderr}");
    write(dir.path(), "lines.sh", "aws s3 sync s3://bucket/p/ /data\n");
    write(dir.path(), "taken.yaml", "keep me");
    haul(dir.path(), &["import", "lines.sh", "-o", "taken.yaml"]).expect_code(2).expect_stderr(&["does not overwrite"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("taken.yaml")).unwrap(), "keep me");
}
