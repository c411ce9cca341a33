//! The run lock: one `apply` per manifest at a time. An advisory lock (flock) on a small file;
//! the kernel drops it when the holder dies, so a killed run never blocks the next one. The
//! file holds the holder's PID and start time, for the message the second run prints.
//!
//! Shards (`--shard I/N`) of one manifest run side by side: each holds the manifest's lock
//! shared and its own shard lock exclusively, so two copies of one shard exclude each other,
//! and a whole (unsharded) run excludes, and is excluded by, any shard.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another haul run holds the lock `{}`{}", path.display(), holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Held { path: PathBuf, holder: Option<String> },
    #[error("cannot open the lock file `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The default lock file of a manifest: in `$XDG_RUNTIME_DIR` (or the temp folder), named
/// after the user and the manifest's absolute path, so runs of one manifest exclude each
/// other wherever they are started from.
pub fn default_path(manifest: &Path) -> PathBuf {
    use sha2::Digest as _;
    let absolute = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    let digest = sha2::Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    let short = crate::text::hex(&digest[..8]);
    let folder = runtime_dir(std::env::var_os("XDG_RUNTIME_DIR")).unwrap_or_else(std::env::temp_dir);
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    folder.join(format!("haul-{uid}-{short}.lock"))
}

/// `$XDG_RUNTIME_DIR` when it names a folder: set but empty (`XDG_RUNTIME_DIR=`) or relative
/// counts as unset, as the XDG spec says, not as the current folder.
fn runtime_dir(value: Option<std::ffi::OsString>) -> Option<PathBuf> {
    value.map(PathBuf::from).filter(|path| path.is_absolute())
}

/// The locks of one run: the manifest's `base` lock alone, or with a shard its shared lock
/// and the shard's own (`<base>.shard-2-of-4.lock`). Released when dropped.
pub fn acquire_for(base: &Path, shard: Option<crate::shard::Shard>) -> Result<Vec<RunLock>, LockError> {
    let Some(shard) = shard else { return Ok(vec![acquire(base)?]) };
    let shared = lock(base, Mode::Shared, &format!("shards of this manifest are running, such as shard {shard}"))?;
    let own = base.with_extension(format!("shard-{}.lock", shard.file_label()));
    Ok(vec![shared, acquire(&own)?])
}

/// Takes the lock at `path` without waiting.
pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
    lock(path, Mode::Exclusive, "")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exclusive,
    Shared,
}

/// Takes the lock at `path` without waiting, and writes who holds it (`what`, then the PID and
/// start time) for the message a run that finds it held prints.
fn lock(path: &Path, mode: Mode, what: &str) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io { path: path.to_path_buf(), source };
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
    let taken = match mode {
        Mode::Exclusive => file.try_lock(),
        Mode::Shared => file.try_lock_shared(),
    };
    match taken {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.lines().next().map(str::to_string).filter(|h| !h.is_empty());
            return Err(LockError::Held { path: path.to_path_buf(), holder });
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
    }
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let record =
        format!("{what}{}PID {}, started {started}\n", if what.is_empty() { "" } else { ": " }, std::process::id());
    file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(record.as_bytes())).map_err(io)?;
    Ok(RunLock { _file: file, path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_relative_runtime_dir_is_unset() {
        assert_eq!(runtime_dir(None), None);
        assert_eq!(runtime_dir(Some("".into())), None);
        assert_eq!(runtime_dir(Some("run/user".into())), None);
        assert_eq!(runtime_dir(Some("/run/user/1000".into())), Some(PathBuf::from("/run/user/1000")));
    }

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let held = acquire(&path).unwrap();
        match acquire(&path) {
            Err(LockError::Held { holder: Some(holder), .. }) => {
                assert!(holder.starts_with(&format!("PID {}, started ", std::process::id())), "{holder}")
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        // What a killed run leaves: the file with its old record, but no lock.
        assert!(acquire(&path).is_ok());
    }

    #[test]
    fn shards_run_side_by_side_but_not_beside_a_whole_run_or_a_twin() {
        use crate::shard::Shard;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("run.lock");
        let zero = acquire_for(&base, Shard::new(0, 2).ok()).unwrap();
        let one = acquire_for(&base, Shard::new(1, 2).ok()).unwrap();
        assert!(dir.path().join("run.shard-1-of-2.lock").exists());
        match acquire_for(&base, Shard::new(1, 2).ok()) {
            Err(LockError::Held { path, holder: Some(holder) }) => {
                assert_eq!(path, dir.path().join("run.shard-1-of-2.lock"));
                assert!(holder.starts_with("PID "), "{holder}");
            }
            other => panic!("a second copy of shard 1 must be refused, got {other:?}"),
        }
        match acquire_for(&base, None) {
            Err(LockError::Held { path, holder: Some(holder) }) => {
                assert_eq!(path, base);
                assert!(holder.contains("shards of this manifest are running"), "{holder}");
            }
            other => panic!("a whole run beside shards must be refused, got {other:?}"),
        }
        drop((zero, one));
        let whole = acquire_for(&base, None).unwrap();
        assert!(matches!(acquire_for(&base, Shard::new(0, 2).ok()), Err(LockError::Held { .. })));
        drop(whole);
    }

    #[test]
    fn default_paths_differ_per_manifest() {
        assert_ne!(default_path(Path::new("/a/m.yaml")), default_path(Path::new("/b/m.yaml")));
        assert_eq!(default_path(Path::new("/a/m.yaml")), default_path(Path::new("/a/m.yaml")));
    }
}
