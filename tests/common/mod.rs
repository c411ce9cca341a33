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

    /// Fails unless the combined output contains every one of `parts`.
    pub fn expect_output(&self, parts: &[&str]) -> &Self {
        let all = self.all();
        for part in parts {
            assert!(all.contains(part), "missing {part:?} in output:\n{all}");
        }
        self
    }
}

/// The `haul` binary with test credentials and no color.
pub fn haul_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_haul"));
    command.current_dir(dir).env("NO_COLOR", "1").env("RUST_BACKTRACE", "1");
    for (key, value) in haul_testkit::client_env() {
        command.env(key, value);
    }
    command
}

/// Runs `haul ARGS` in `dir`.
pub fn haul(dir: &Path, args: &[&str]) -> Outcome {
    let output = haul_command(dir).args(args).output().expect("run haul");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// The repository root (for examples/ and schemas/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
