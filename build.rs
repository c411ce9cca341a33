//! Puts the commit a binary was built from into `haul --version` (`0.1.0 (3ef3009c1a2b
//! 2026-12-03)`, `+modified` when the tree had changes). A packaged crate (`cargo install`)
//! names the commit `cargo package` recorded; a source tarball says the version alone.

use std::process::Command;

fn main() {
    // Rebuilt when the code changes too, so `+modified` stays true to the binary.
    for path in ["build.rs", "src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let version = env!("CARGO_PKG_VERSION");
    // A build without .git (a container build's context) can be told: `HAUL_COMMIT`.
    println!("cargo:rerun-if-env-changed=HAUL_COMMIT");
    let given = std::env::var("HAUL_COMMIT").ok().filter(|commit| !commit.trim().is_empty());
    let text = match given.or_else(commit).or_else(packaged_commit) {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=HAUL_VERSION={text}");
}

/// `SHORT-HASH DATE` of HEAD, with `+modified` when tracked files differ from it; `None`
/// without git or outside a checkout.
fn commit() -> Option<String> {
    let git = |args: &[&str]| {
        let output = Command::new("git").args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    // Only this package's own checkout: a crate unpacked inside some other repository (a
    // home folder kept in git) must not take that repository's commit for its own.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(&here).ok()? {
        return None;
    }
    let described = git(&["log", "-1", "--format=%h %cs", "--abbrev=12"])?;
    // Rebuilt when HEAD moves (a commit moves the branch it names, a checkout HEAD itself) or
    // the index changes (`git add`).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let branch = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).unwrap_or_default();
        for file in ["HEAD", "index", "packed-refs", branch.as_str()] {
            let path = std::path::Path::new(&dir).join(file);
            if !file.is_empty() && path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let modified = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|status| !status.is_empty());
    Some(if modified { format!("{described} +modified") } else { described })
}

/// The commit `cargo package` recorded in `.cargo_vcs_info.json`, for a build from a packaged
/// crate (`cargo install haul`).
fn packaged_commit() -> Option<String> {
    println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
    let text = std::fs::read_to_string(".cargo_vcs_info.json").ok()?;
    let at = text.find("\"sha1\"")?;
    let sha: String = text[at + 6..].chars().skip_while(|c| !c.is_ascii_hexdigit()).take(12).collect();
    (sha.len() == 12 && sha.chars().all(|c| c.is_ascii_hexdigit())).then_some(sha)
}
