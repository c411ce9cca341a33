//! The listing stage: the local tree and the remote prefix as streams of entries in the same
//! key order (UTF-8 byte order of the NFC-normalized key), so `plan` can merge them in one
//! pass without holding either listing in memory.

pub mod folders;
pub mod inventory;
pub mod local;
#[cfg(test)]
mod model;
mod ranges;
pub mod remote;
pub mod sides;
pub mod sorted;

use crate::etag::ETag;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

/// One object or file, keyed relative to the transfer's root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The join key: NFC-normalized, relative, `/`-separated.
    pub key: String,
    /// The name as stored, when it differs from `key` (an NFD name written on macOS): the
    /// remote key to request, or the local name to open.
    pub stored_key: Option<String>,
    pub size: u64,
    /// Modification time (local) or LastModified (remote), in milliseconds since the epoch:
    /// the precision both sides have (S3 lists milliseconds; a file system keeps finer, which
    /// is cut to milliseconds so a file haul downloaded compares equal to its object).
    pub mtime_ms: i64,
    /// The remote ETag.
    pub etag: Option<ETag>,
    /// A remote object in an archive storage class (GLACIER, DEEP_ARCHIVE), as listed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

impl Entry {
    pub fn new(stored: &str, size: u64, mtime_ms: i64, etag: Option<ETag>) -> Self {
        let key = nfc(stored);
        let stored_key = (key != stored).then(|| stored.to_string());
        Entry { key, stored_key, size, mtime_ms, etag, archived: false }
    }

    /// The name as stored on its side.
    pub fn stored(&self) -> &str {
        self.stored_key.as_deref().unwrap_or(&self.key)
    }
}

/// Something a listing saw but will not offer for transfer, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The key or path as far as it could be shown.
    pub key: String,
    pub reason: SkipReason,
}

/// Why a listing leaves an item out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SkipReason {
    /// A remote key ending in `/` with no content: a folder placeholder, not a file.
    DirectoryMarker,
    /// A remote key that cannot be written safely under the target folder.
    UnsafeKey(UnsafeKey),
    /// A local symbolic link, not followed (`follow_symlinks: false`), or a loop.
    Symlink,
    /// A local name that is not valid UTF-8 and so cannot be an S3 key.
    NotUtf8,
    /// A local folder or file that could not be read.
    Unreadable(String),
    /// Neither a file, a folder nor a followed link (a socket, a device, a FIFO).
    NotAFile,
    /// A name whose NFC form equals another name's on the same side (NFC and NFD twins, or a
    /// folder of such a name): only one of a group of twins is synced (see `plan::diff`).
    SameNormalizedName,
    /// Looked up by name at the destination (`destination: head`) and not there, or not
    /// looked up (the source's key is not the transfer's to copy): holds the key's place in
    /// a destination read in step with the source. Never reported.
    NotLookedUpOrAbsent,
}

/// A listing's item: an entry to compare, or a skip to report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Item {
    Entry(Entry),
    Skipped(Skipped),
}

/// The order listings come in: by key (NFC), then by stored name, so the twins of a key
/// (names with one NFC form) follow each other. A skipped item sorts by the key it shows.
pub fn item_order(item: &Item) -> (&str, &str) {
    match item {
        Item::Entry(entry) => (&entry.key, entry.stored()),
        Item::Skipped(skipped) => (&skipped.key, &skipped.key),
    }
}

/// Why a remote key may not be written locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum UnsafeKey {
    #[error("has a `..` segment")]
    ParentSegment,
    #[error("has a `.` segment")]
    CurrentSegment,
    #[error("is an absolute path")]
    Absolute,
    #[error("has a backslash")]
    Backslash,
    #[error("has an empty segment (`//`)")]
    EmptySegment,
    #[error("has a NUL or control character")]
    ControlCharacter,
    #[error("has a name longer than 255 bytes")]
    NameTooLong,
    #[error("is empty")]
    Empty,
}

/// NFC form of a name: what macOS writes as NFD Hangul and Linux as NFC compare equal.
pub fn nfc(text: &str) -> String {
    if unicode_normalization::is_nfc_quick(text.chars()) == unicode_normalization::IsNormalized::Yes {
        text.to_string()
    } else {
        text.nfc().collect()
    }
}

/// Checks a remote key (relative to the prefix) before it becomes a local path: it must stay
/// under the target folder on every platform haul runs on.
pub fn check_key(key: &str) -> Result<(), UnsafeKey> {
    if key.is_empty() {
        return Err(UnsafeKey::Empty);
    }
    if key.starts_with('/') {
        return Err(UnsafeKey::Absolute);
    }
    if key.contains('\\') {
        return Err(UnsafeKey::Backslash);
    }
    if key.chars().any(char::is_control) {
        return Err(UnsafeKey::ControlCharacter);
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err(UnsafeKey::EmptySegment),
            "." => return Err(UnsafeKey::CurrentSegment),
            ".." => return Err(UnsafeKey::ParentSegment),
            // Windows drive letters (`C:`) would make an absolute path there.
            s if s.len() == 2 && s.ends_with(':') => return Err(UnsafeKey::Absolute),
            s if s.len() > 255 => return Err(UnsafeKey::NameTooLong),
            _ => {}
        }
    }
    Ok(())
}

/// The local path for a checked key under `root`.
pub fn local_path(root: &Path, key: &str) -> Result<PathBuf, UnsafeKey> {
    check_key(key)?;
    let mut path = root.to_path_buf();
    path.extend(key.split('/'));
    Ok(path)
}

/// How the executor names a download in progress, next to its target:
/// `.haul-PID@HOST-XXXXXX.tmp` (`.haul-PID-XXXXXX.tmp` before hosts were named).
pub const TEMP_PREFIX: &str = ".haul-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// A file name the executor uses for a download in progress (never listed, never uploaded).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// The run that wrote a temp file, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempOwner {
    pub pid: u32,
    /// `None` for names from before hosts were named (taken as this host).
    pub host: Option<String>,
}

/// The writer named in a temp file's name.
pub fn temp_owner(name: &str) -> Option<TempOwner> {
    let middle = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX)?;
    // The random part is last, after the last `-` (host names may hold `-` themselves).
    let (writer, _random) = middle.rsplit_once('-')?;
    let (pid, host) = match writer.split_once('@') {
        Some((pid, host)) => (pid, Some(host.to_string())),
        None => (writer, None),
    };
    Some(TempOwner { pid: pid.parse().ok()?, host })
}

/// The start of this process's temp file names: `.haul-PID@HOST-`. The host tells the copies
/// of a sharded run that share one folder (a Kubernetes volume) apart: a PID means nothing in
/// another machine's or container's process table.
pub fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}@{}-", std::process::id(), this_host())
}

/// This machine's host name (a pod's name under Kubernetes), cut to what is safe in a file name.
pub fn this_host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buffer = [0u8; 256];
        // SAFETY: the buffer is writable for its whole length; gethostname NUL-terminates
        // within it on success.
        let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
        let raw = if ok {
            String::from_utf8_lossy(buffer.split(|b| *b == 0).next().unwrap_or(&[])).into_owned()
        } else {
            String::new()
        };
        let host: String =
            raw.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')).take(64).collect();
        if host.is_empty() { "localhost".into() } else { host }
    })
}

/// Orders names the way their keys sort: a folder `a` holds keys `a/...`, which sort after
/// `a-b` (`-` < `/`) and before `a0` (`/` < `0`).
pub fn sort_key(name: &str, is_dir: bool) -> String {
    if is_dir { format!("{name}/") } else { name.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_tell_their_writer() {
        let name = format!("{}Ab12Cd{TEMP_SUFFIX}", temp_prefix());
        assert!(is_temp_name(&name));
        assert_eq!(temp_owner(&name), Some(TempOwner { pid: std::process::id(), host: Some(this_host().into()) }));
        assert_eq!(
            temp_owner(".haul-42@haul-nightly-3-x7k2p-Zz9yX1.tmp"),
            Some(TempOwner { pid: 42, host: Some("haul-nightly-3-x7k2p".into()) })
        );
        assert_eq!(temp_owner(".haul-42-Zz9yX1.tmp"), Some(TempOwner { pid: 42, host: None }));
        assert_eq!(temp_owner(".haul-x@h-Zz9yX1.tmp"), None);
        assert_eq!(temp_owner(".haul-write-check.csv"), None);
    }

    #[test]
    fn hostile_keys_are_refused() {
        let cases = [
            ("../x", UnsafeKey::ParentSegment),
            ("../../etc/passwd", UnsafeKey::ParentSegment),
            ("a/../../b", UnsafeKey::ParentSegment),
            ("/abs", UnsafeKey::Absolute),
            ("C:/windows", UnsafeKey::Absolute),
            ("a\\..\\b", UnsafeKey::Backslash),
            ("a//b", UnsafeKey::EmptySegment),
            ("./a", UnsafeKey::CurrentSegment),
            ("a\0b", UnsafeKey::ControlCharacter),
            ("a\nb", UnsafeKey::ControlCharacter),
            ("", UnsafeKey::Empty),
        ];
        for (key, expected) in cases {
            assert_eq!(check_key(key), Err(expected), "{key:?}");
        }
        assert_eq!(check_key(&"x".repeat(256)), Err(UnsafeKey::NameTooLong));
        for fine in ["a", "a/b/c.csv", "보고서/매출.csv", "a..b", "...", "a b+c%d#e?f=g"] {
            assert_eq!(check_key(fine), Ok(()), "{fine:?}");
        }
    }

    #[test]
    fn local_paths_stay_under_root() {
        let root = Path::new("/data/target");
        assert_eq!(local_path(root, "a/b.csv").unwrap(), PathBuf::from("/data/target/a/b.csv"));
        assert!(local_path(root, "../x").is_err());
    }

    #[test]
    fn nfd_and_nfc_hangul_share_a_key() {
        let nfd = "\u{1100}\u{1161}\u{11A8}.csv"; // 각 decomposed, as macOS writes it
        let entry = Entry::new(nfd, 1, 0, None);
        assert_eq!(entry.key, "각.csv");
        assert_eq!(entry.stored(), nfd);
        let plain = Entry::new("각.csv", 1, 0, None);
        assert_eq!(plain.stored_key, None);
    }

    #[test]
    fn folder_names_sort_like_their_keys() {
        let mut names = vec![sort_key("a", true), sort_key("a-b", false), sort_key("a0", false)];
        names.sort();
        assert_eq!(names, vec!["a-b", "a/", "a0"]);
    }
}
