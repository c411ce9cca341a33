//! The local side: a depth-first walk that yields files in key order.
//!
//! Each folder's children are read and sorted when the walk reaches it, with folders sorted
//! as `name/` (see `sort_key`), so the whole walk comes out in key order while memory holds
//! only the folders on the current path, never the whole tree.

use std::collections::HashSet;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::{Entry, Item, SkipReason, Skipped, nfc, sort_key};

/// A streaming, key-ordered walk of a local folder.
pub struct LocalWalk {
    /// Children not yet visited, per open folder; the innermost folder is last.
    stack: Vec<std::vec::IntoIter<Child>>,
    follow_symlinks: bool,
    /// Folders on the current path (device, inode), to stop symlink loops.
    open_folders: Vec<(u64, u64)>,
    seen_folders: HashSet<(u64, u64)>,
    /// haul's own download temp files seen on the way (stored relative paths).
    temp_files: Vec<String>,
    /// Files this process may not read are skipped as `unreadable` (the walk of an upload's
    /// source: such a file would fail anyway, after being counted as work to do).
    skip_unreadable: bool,
}

struct Child {
    /// Relative key (NFC, `/`-separated); a folder's ends in `/` only for sorting.
    sort: String,
    key: String,
    stored: String,
    path: PathBuf,
    kind: ChildKind,
}

enum ChildKind {
    File { size: u64, mtime_ms: i64 },
    Folder { id: (u64, u64) },
    Skip(SkipReason),
}

impl LocalWalk {
    /// Starts a walk at `root`. A missing root is an empty tree (a first download creates it).
    pub fn new(root: &Path, follow_symlinks: bool) -> std::io::Result<Self> {
        Self::start(root, follow_symlinks, false)
    }

    /// A walk of files to read (an upload's source): files this process may not read are
    /// skipped as `unreadable`, with why.
    pub fn of_source(root: &Path, follow_symlinks: bool) -> std::io::Result<Self> {
        Self::start(root, follow_symlinks, true)
    }

    fn start(root: &Path, follow_symlinks: bool, skip_unreadable: bool) -> std::io::Result<Self> {
        let mut walk = LocalWalk {
            stack: Vec::new(),
            follow_symlinks,
            open_folders: Vec::new(),
            seen_folders: HashSet::new(),
            temp_files: Vec::new(),
            skip_unreadable,
        };
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {
                let id = folder_id(&meta);
                walk.open_folders.push(id);
                walk.seen_folders.insert(id);
                let children = walk.read_folder(root, "", "")?;
                walk.stack.push(children.into_iter());
            }
            Ok(_) => {
                return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        Ok(walk)
    }

    /// Reads one folder; `prefix` is its key (NFC) and `stored_prefix` its real relative path.
    /// haul's download temp files the walk passed over (never yielded as entries): a killed
    /// run's leftovers, or another run's downloads in progress. Relative, as stored.
    pub fn temp_files(&self) -> &[String] {
        &self.temp_files
    }

    fn read_folder(&mut self, folder: &Path, prefix: &str, stored_prefix: &str) -> std::io::Result<Vec<Child>> {
        let mut children = Vec::new();
        for dirent in std::fs::read_dir(folder)? {
            let dirent = match dirent {
                Ok(dirent) => dirent,
                Err(err) => {
                    children.push(skip_child(
                        prefix,
                        &folder.display().to_string(),
                        SkipReason::Unreadable(err.to_string()),
                    ));
                    continue;
                }
            };
            let path = dirent.path();
            let Some(name) = dirent.file_name().to_str().map(str::to_string) else {
                let shown = dirent.file_name().to_string_lossy().into_owned();
                children.push(skip_child(prefix, &shown, SkipReason::NotUtf8));
                continue;
            };
            if super::is_temp_name(&name) {
                // A download in progress (or one a killed run left): haul's own, never data.
                self.temp_files.push(format!("{stored_prefix}{name}"));
                continue;
            }
            let stored = format!("{stored_prefix}{name}");
            let key = format!("{prefix}{}", nfc(&name));
            let kind = match self.classify(&path) {
                Ok(kind) => kind,
                Err(err) => ChildKind::Skip(SkipReason::Unreadable(err.to_string())),
            };
            let sort = sort_key(&key, matches!(kind, ChildKind::Folder { .. }));
            children.push(Child { sort, key, stored, path, kind });
        }
        children.sort_unstable_by(|a, b| (&a.sort, &a.stored).cmp(&(&b.sort, &b.stored)));
        skip_twin_folders(&mut children);
        Ok(children)
    }

    fn classify(&self, path: &Path) -> std::io::Result<ChildKind> {
        let link_meta = std::fs::symlink_metadata(path)?;
        let meta = if link_meta.file_type().is_symlink() {
            if !self.follow_symlinks {
                return Ok(ChildKind::Skip(SkipReason::Symlink));
            }
            match std::fs::metadata(path) {
                Ok(meta) => meta,
                // A dangling link: nothing to transfer.
                Err(_) => return Ok(ChildKind::Skip(SkipReason::Symlink)),
            }
        } else {
            link_meta
        };
        Ok(if meta.is_file() {
            if self.skip_unreadable && !readable(path, &meta) {
                return Ok(ChildKind::Skip(SkipReason::Unreadable("permission denied".into())));
            }
            ChildKind::File { size: meta.len(), mtime_ms: mtime_millis(&meta) }
        } else if meta.is_dir() {
            ChildKind::Folder { id: folder_id(&meta) }
        } else {
            ChildKind::Skip(SkipReason::NotAFile)
        })
    }
}

impl Iterator for LocalWalk {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let top = self.stack.last_mut()?;
            let Some(child) = top.next() else {
                self.stack.pop();
                self.open_folders.pop();
                continue;
            };
            match child.kind {
                ChildKind::File { size, mtime_ms } => {
                    let stored_key = (child.key != child.stored).then_some(child.stored);
                    return Some(Item::Entry(Entry {
                        key: child.key,
                        stored_key,
                        size,
                        mtime_ms,
                        etag: None,
                        archived: false,
                    }));
                }
                ChildKind::Skip(reason) => return Some(Item::Skipped(Skipped { key: child.key, reason })),
                ChildKind::Folder { id } => {
                    // A followed link back into a folder already walked would loop or repeat.
                    if self.open_folders.contains(&id) || !self.seen_folders.insert(id) {
                        return Some(Item::Skipped(Skipped { key: child.key, reason: SkipReason::Symlink }));
                    }
                    match self.read_folder(&child.path, &format!("{}/", child.key), &format!("{}/", child.stored)) {
                        Ok(children) => {
                            self.open_folders.push(id);
                            self.stack.push(children.into_iter());
                        }
                        Err(err) => {
                            return Some(Item::Skipped(Skipped {
                                key: format!("{}/", child.key),
                                reason: SkipReason::Unreadable(err.to_string()),
                            }));
                        }
                    }
                }
            }
        }
    }
}

/// Two folders whose names have one NFC form (`한` written as NFC and as NFD, possible on
/// Linux) would both be walked as one key prefix, out of key order and with twin files in
/// each. One is walked: the one named in NFC, else the first in byte order; the others are
/// skipped as `same-normalized-name`, with everything in them. (Twin files are kept: the
/// diff decides between them.)
fn skip_twin_folders(children: &mut [Child]) {
    let mut start = 0;
    while start < children.len() {
        let end = start + children[start..].iter().take_while(|c| c.sort == children[start].sort).count();
        let twins = &mut children[start..end];
        if twins.len() > 1 && twins.iter().all(|c| matches!(c.kind, ChildKind::Folder { .. })) {
            let is_nfc = |c: &Child| c.stored.rsplit('/').next() == c.key.rsplit('/').next();
            let walked = twins.iter().position(is_nfc).unwrap_or(0);
            for (index, twin) in twins.iter_mut().enumerate() {
                if index != walked {
                    twin.kind = ChildKind::Skip(SkipReason::SameNormalizedName);
                }
            }
        }
        start = end;
    }
}

fn skip_child(prefix: &str, shown: &str, reason: SkipReason) -> Child {
    let key = format!("{prefix}{shown}");
    Child { sort: key.clone(), key: key.clone(), stored: key, path: PathBuf::new(), kind: ChildKind::Skip(reason) }
}

/// Whether this process may open the file for reading. The mode bits answer at no cost when
/// they allow it (the common case, checked without a system call per file); when they seem
/// not to, the kernel decides (`faccessat` with the effective ids), which knows about root,
/// capabilities and ACLs.
fn readable(path: &Path, meta: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    static IDS: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let &(uid, gid) = IDS.get_or_init(|| unsafe { (libc::geteuid(), libc::getegid()) });
    let mode = meta.mode();
    let allowed = if meta.uid() == uid {
        mode & 0o400 != 0
    } else if meta.gid() == gid {
        mode & 0o040 != 0
    } else {
        mode & 0o004 != 0
    };
    allowed || may_access(path, libc::R_OK)
}

/// Whether this process may access `path` in `mode` (`libc::R_OK`, `W_OK | X_OK`, ...), as the
/// kernel decides it with the effective ids: root, capabilities and ACLs included.
pub fn may_access(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c_path) = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

fn folder_id(meta: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// The file stored as `name` under `root` as the walk lists it; `None` when there is no
/// file there (nothing, a folder, a dangling link, or a link the walk does not follow).
pub fn file_entry(root: &Path, name: &str, follow_symlinks: bool) -> std::io::Result<Option<Entry>> {
    let Ok(path) = super::local_path(root, name) else { return Ok(None) };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() && !follow_symlinks => return Ok(None),
        Ok(meta) if meta.file_type().is_symlink() => std::fs::metadata(&path),
        found => found,
    };
    match meta {
        Ok(meta) if meta.is_file() => Ok(Some(Entry::new(name, meta.len(), mtime_millis(&meta), None))),
        Ok(_) => Ok(None),
        Err(err) if matches!(err.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Milliseconds since the epoch, rounded down: S3's LastModified has no finer precision,
/// so comparing finer would call every downloaded file changed.
pub fn mtime_millis(meta: &Metadata) -> i64 {
    meta.modified().map_or(0, millis_since_epoch)
}

/// A time as milliseconds since the epoch, rounded down (towards the past before 1970 too).
pub fn millis_since_epoch(time: std::time::SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
            // 1.5 ms before the epoch is -2 ms, not -1.
            if before.as_nanos() % 1_000_000 == 0 { -whole } else { -whole - 1 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(root: &Path, follow: bool) -> Vec<String> {
        LocalWalk::new(root, follow)
            .unwrap()
            .map(|item| match item {
                Item::Entry(e) => e.key,
                Item::Skipped(s) => format!("skip:{}:{:?}", s.key, s.reason),
            })
            .collect()
    }

    #[test]
    fn walk_yields_key_byte_order_not_directory_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for path in ["a/b", "a-b", "a0", "a/c/d", "b", "가/나.csv", "Z"] {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, path).unwrap();
        }
        let got = keys(root, false);
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
        assert_eq!(got, vec!["Z", "a-b", "a/b", "a/c/d", "a0", "b", "가/나.csv"]);
    }

    #[test]
    fn missing_root_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(keys(&dir.path().join("nope"), false).is_empty());
    }

    #[test]
    fn symlinks_are_skipped_unless_followed_and_loops_stop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/f.csv"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root, root.join("real/loop")).unwrap();
        assert_eq!(keys(root, false), vec!["skip:link:Symlink", "real/f.csv", "skip:real/loop:Symlink"]);
        let followed = keys(root, true);
        assert!(followed.contains(&"link/f.csv".to_string()), "{followed:?}");
        assert!(followed.iter().any(|k| k.contains("loop") && k.contains("Symlink")), "{followed:?}");
    }

    #[test]
    fn non_utf8_names_are_skipped_with_a_reason() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.csv")), "x").unwrap();
        std::fs::write(dir.path().join("ok.csv"), "x").unwrap();
        let got = keys(dir.path(), false);
        assert_eq!(got.len(), 2);
        assert!(got.iter().any(|k| k.starts_with("skip:caf") && k.ends_with("NotUtf8")), "{got:?}");
    }

    #[test]
    fn nfd_names_get_nfc_keys() {
        let dir = tempfile::tempdir().unwrap();
        let nfd = "\u{1112}\u{1161}\u{11AB}"; // 한, decomposed
        std::fs::create_dir(dir.path().join(nfd)).unwrap();
        std::fs::write(dir.path().join(nfd).join("x.csv"), "x").unwrap();
        let walk: Vec<Item> = LocalWalk::new(dir.path(), false).unwrap().collect();
        let Item::Entry(entry) = &walk[0] else { panic!("{walk:?}") };
        assert_eq!(entry.key, "한/x.csv");
        assert_eq!(entry.stored(), format!("{nfd}/x.csv"));
    }
}
