//! Helpers shared by the integration tests: run the real `haul` binary, write manifests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a finished `haul` process said.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Everything the user saw, for assertions that do not care which stream.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Fails with the whole output when the exit code is not `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        assert!(!self.stderr.contains("panicked"), "haul panicked:\n{}", self.stderr);
        assert!(!self.stderr.contains("stack backtrace"), "backtrace shown:\n{}", self.stderr);
        self
    }

    /// Fails unless standard output contains every one of `parts` (the result: a plan, a
    /// report, a listing).
    #[track_caller]
    pub fn expect_stdout(&self, parts: &[&str]) -> &Self {
        for part in parts {
            assert!(self.stdout.contains(part), "missing {part:?} on stdout\n{}", self.both());
        }
        self
    }

    /// Fails unless standard error contains every one of `parts` (errors, warnings, notes,
    /// progress).
    #[track_caller]
    pub fn expect_stderr(&self, parts: &[&str]) -> &Self {
        for part in parts {
            assert!(self.stderr.contains(part), "missing {part:?} on stderr\n{}", self.both());
        }
        self
    }

    /// Both streams, labelled, for a failure message.
    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// The `haul` binary with test credentials and no color.
pub fn haul_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_haul"));
    command.current_dir(dir).env("NO_COLOR", "1").env("RUST_BACKTRACE", "1");
    for (key, value) in haul_testkit::client_env() {
        command.env(key, value);
    }
    // A developer's own CA bundle must not decide what the tests' TLS front is trusted by.
    command.env_remove("AWS_CA_BUNDLE");
    // A test run inside a batch engine must not turn into one shard of it.
    for variable in SHARD_VARIABLES {
        command.env_remove(variable);
    }
    command
}

/// Every variable `--shard auto` reads.
pub const SHARD_VARIABLES: [&str; 9] = [
    "JOB_COMPLETION_INDEX",
    "HAUL_SHARD_COUNT",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
];

/// Runs `haul ARGS` in `dir`.
pub fn haul(dir: &Path, args: &[&str]) -> Outcome {
    haul_with(dir, &[], args)
}

/// Runs `haul ARGS` in `dir` with `env` on top of the test credentials.
pub fn haul_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let mut command = haul_command(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    Outcome::from(command.args(args).output().expect("run haul"))
}

impl From<std::process::Output> for Outcome {
    fn from(output: std::process::Output) -> Self {
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `haul ARGS` in `dir` with its stdout closed before it writes (`haul ... | head -0`).
pub fn haul_into_closed_pipe(dir: &Path, args: &[&str]) -> Outcome {
    let mut child = haul_command(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run haul");
    drop(child.stdout.take());
    Outcome::from(child.wait_with_output().expect("wait for haul"))
}

/// Runs `haul ARGS` in `dir` with its stdout on `/dev/full`, where every write fails with
/// "no space left on device" (a full disk under `haul ... > out.json`).
pub fn haul_into_full_disk(dir: &Path, args: &[&str]) -> Outcome {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("open /dev/full");
    let output =
        haul_command(dir).args(args).stdout(full).stderr(std::process::Stdio::piped()).output().expect("run haul");
    Outcome::from(output)
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// The repository root (for examples/ and schemas/). Read when the test runs (cargo and
/// nextest set it): the path compiled in is the clone that built the binary, which with a
/// shared CARGO_TARGET_DIR may be another one.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// A server, a bucket, and a folder for the local side.
pub struct Fixture {
    pub runtime: tokio::runtime::Runtime,
    pub client: aws_sdk_s3::Client,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    _server: Option<Box<dyn std::any::Any>>,
}

pub const BUCKET: &str = "plan-test";

impl Fixture {
    pub fn s3s_fs() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = haul_testkit::S3sFs::start(&dir.path().join("server")).unwrap();
        Self::new(server.endpoint().to_string(), dir, Some(Box::new(server)))
    }

    pub fn moto() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = haul_testkit::Moto::start().expect("moto_server (installed by ./scripts/test)");
        Self::new(server.endpoint().to_string(), dir, Some(Box::new(server)))
    }

    /// A SeaweedFS server: it lists a prefix in folder-walk order, not key order.
    pub fn seaweedfs() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = haul_testkit::SeaweedFs::start().expect("SeaweedFS (installed by ./scripts/test)");
        Self::new(server.endpoint().to_string(), dir, Some(Box::new(server)))
    }

    /// The three test servers: s3s-fs keeps keys as files, moto in memory (both list in key
    /// order), SeaweedFS in a folder tree it lists as a walk (out of key order).
    pub fn every_server() -> [(&'static str, Fixture); 3] {
        [("s3s-fs", Fixture::s3s_fs()), ("moto", Fixture::moto()), ("SeaweedFS", Fixture::seaweedfs())]
    }

    pub fn new(endpoint: String, dir: tempfile::TempDir, server: Option<Box<dyn std::any::Any>>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let credentials = aws_sdk_s3::config::Credentials::new(
            haul_testkit::ACCESS_KEY,
            haul_testkit::SECRET_KEY,
            None,
            None,
            "test",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new(haul_testkit::REGION))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            // Objects seeded as other tools write them: no checksum unless a test sends one.
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        // SeaweedFS answers before its filer is ready: ask again for a while.
        let started = std::time::Instant::now();
        while let Err(err) = runtime.block_on(client.create_bucket().bucket(BUCKET).send()) {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "create bucket: {err:?}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::fs::create_dir_all(dir.path().join("local")).unwrap();
        Fixture { runtime, client, endpoint, dir, _server: server }
    }

    pub fn put(&self, key: &str, body: &[u8]) {
        let request = self
            .client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()));
        self.runtime.block_on(request.send()).unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Writes a local file with an mtime far in the future (so it is never "older").
    pub fn local(&self, relative: &str, body: &[u8]) {
        self.local_at("local", relative, body);
    }

    /// [`Fixture::local`] in another folder of the fixture's.
    pub fn local_at(&self, folder: &str, relative: &str, body: &[u8]) {
        let path = self.dir.path().join(folder).join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, body).unwrap();
        let future = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(future).unwrap();
    }

    pub fn manifest(&self, direction: &str, extra: &str) -> String {
        let text = format!(
            "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: {direction}\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./local\n{extra}",
            self.endpoint
        );
        write(self.dir.path(), "m.yaml", &text);
        "m.yaml".into()
    }

    /// Writes a local file last modified a minute ago: a server that lists whole seconds
    /// (moto, AWS) dates an upload in the second it happens, which may not be after a file
    /// written just before it (see `plan::diff::source_newer`).
    pub fn file_written_earlier(&self, relative: &str, body: &[u8]) {
        self.file(relative, body);
        let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let path = self.dir.path().join("local").join(relative);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(earlier).unwrap();
    }

    /// Writes a local file as a user would: mtime now.
    pub fn file(&self, relative: &str, body: &[u8]) {
        let path = self.dir.path().join("local").join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, body).unwrap();
    }

    pub fn plan(&self, args: &[&str]) -> Outcome {
        let mut all = vec!["plan"];
        all.extend_from_slice(args);
        haul(self.dir.path(), &all)
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.plan(&all);
        out.expect_code(0);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }
}

impl Fixture {
    /// `m.yaml` with an upload of `./local` to `data/` and a download of `data/` to `./back`
    /// through `endpoint`, 5 MiB multipart threshold and parts (so multipart paths run on
    /// small files); `extra` adds lines to `defaults`.
    pub fn two_way_manifest(&self, endpoint: &str, extra: &str) -> String {
        let text = format!(
            "version: 1
defaults:
  endpoint: {endpoint}
  path_style: true
  region: us-east-1
  multipart_threshold: 5MiB
  part_size: 5MiB
{extra}transfers:
  - name: up
    direction: upload
    bucket: {BUCKET}
    prefix: data/
    local: ./local
  - name: down
    direction: download
    bucket: {BUCKET}
    prefix: data/
    local: ./back
"
        );
        write(self.dir.path(), "m.yaml", &text);
        "m.yaml".into()
    }

    /// The object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let request = self.client.get_object().bucket(BUCKET).key(key);
        let answer = self.runtime.block_on(request.send()).unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        self.runtime.block_on(answer.body.collect()).unwrap().into_bytes().to_vec()
    }

    /// Every key in the bucket, in order.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(BUCKET).into_paginator().send();
        while let Some(page) = self.runtime.block_on(pages.next()) {
            keys.extend(page.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        keys
    }

    /// Runs `haul apply ARGS` in the fixture's folder.
    pub fn apply(&self, args: &[&str]) -> Outcome {
        let mut all = vec!["apply"];
        all.extend_from_slice(args);
        haul(self.dir.path(), &all)
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }
}

/// Every file under `root` (relative paths with `/`) with its bytes, for byte-for-byte checks.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, folder: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(folder) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Deterministic bytes (no two files alike): a simple xorshift stream seeded by `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Runs haul as a user that is not root (`nobody` through setpriv when the tests run as
/// root, where every file is readable), from a copy of the binary that user may run.
pub fn haul_as_nobody(f: &Fixture, args: &[&str]) -> Outcome {
    use std::os::unix::fs::PermissionsExt as _;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = if root {
        let binary = f.path("haul-bin");
        if !binary.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_haul"), &binary).unwrap();
        }
        let mut command = std::process::Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(binary);
        command
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_haul"))
    };
    command.current_dir(f.dir.path()).env("NO_COLOR", "1").env_remove("XDG_RUNTIME_DIR");
    for (key, value) in haul_testkit::client_env() {
        command.env(key, value);
    }
    for variable in SHARD_VARIABLES {
        command.env_remove(variable);
    }
    // The fixture's folders are the test's (0700): let the other user in.
    for folder in [f.dir.path().to_path_buf(), f.path("local")] {
        if let Ok(meta) = std::fs::metadata(&folder) {
            let mode = meta.permissions().mode() | 0o055;
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    Outcome::from(command.args(args).output().unwrap())
}

/// `(action, key, reason)` of each action of a plan document's first transfer, in order.
pub fn decisions(plan: &serde_json::Value) -> Vec<(String, String, String)> {
    plan["transfers"][0]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions in {plan:#}"))
        .iter()
        .map(|a| {
            let text = |field: &str| a[field].as_str().unwrap().to_string();
            (text("action"), text("key"), text("reason"))
        })
        .collect()
}
