//! Include / exclude / extension filters, compiled once per transfer into `globset` matchers,
//! and the size and age window (`Window`).
//!
//! Patterns follow gitignore habits, applied to keys relative to the transfer's root
//! (`prefix` remotely, `local` on disk), with `/` as the separator:
//! - a pattern with no `/` matches the file name at any depth (`*.csv`, `_SUCCESS`);
//! - a pattern with a `/` is anchored at the root (`logs/*.gz`, `/top.csv`);
//! - a trailing `/` means a folder and everything in it (`_tmp/` = `**/_tmp/**`);
//! - `*` and `?` stay inside one folder, `**` crosses folders;
//! - exclude wins over include; no include and no extensions means everything is included.
//!
//! `extensions: [csv]` is shorthand for an include of `*.csv`, matched case-insensitively
//! (`DATA.CSV` counts), because people mean the file type, not the spelling.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Which list a bad pattern came from, so validation can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternList {
    Include,
    Exclude,
    Extensions,
}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub list: PatternList,
    pub index: usize,
    pub pattern: String,
    pub reason: String,
}

/// Why a key is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Included,
    /// Matches an `exclude` pattern.
    Excluded,
    /// Matches no `include` pattern or extension.
    NotIncluded,
}

/// A transfer's filter: its patterns parsed (checked) at once, compiled into matchers the
/// first time a key is decided. Compiling is most of the cost (a regex per set); a manifest of
/// 100,000 transfers is validated without compiling any, and a run compiles only the filters
/// of the transfers it runs.
#[derive(Debug, Clone)]
pub struct Filter {
    /// `None`: everything is included. Shared by the clones of a filter.
    include: Option<std::sync::Arc<[Glob]>>,
    exclude: std::sync::Arc<[Glob]>,
    compiled: std::sync::Arc<std::sync::OnceLock<Result<Compiled, PatternError>>>,
}

#[derive(Debug)]
struct Compiled {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    /// A filter that lets everything through.
    pub fn everything() -> Self {
        Filter { include: None, exclude: Vec::new().into(), compiled: Default::default() }
    }

    /// Parses the three lists. `extensions` are bare names (`csv`), already normalized.
    pub fn new(include: &[String], exclude: &[String], extensions: &[String]) -> Result<Self, PatternError> {
        let include_globs = if include.is_empty() && extensions.is_empty() {
            None
        } else {
            let mut globs = Vec::with_capacity(include.len() + extensions.len());
            for (index, pattern) in include.iter().enumerate() {
                globs.push(compile(pattern, PatternList::Include, index)?);
            }
            for (index, extension) in extensions.iter().enumerate() {
                let glob = GlobBuilder::new(&format!("**/*.{}", escape(extension)))
                    .literal_separator(true)
                    .case_insensitive(true)
                    .build()
                    .map_err(|err| pattern_error(extension, PatternList::Extensions, index, &err))?;
                globs.push(glob);
            }
            Some(globs.into())
        };
        let exclude_globs = exclude
            .iter()
            .enumerate()
            .map(|(index, pattern)| compile(pattern, PatternList::Exclude, index))
            .collect::<Result<Vec<_>, _>>()?
            .into();
        Ok(Filter { include: include_globs, exclude: exclude_globs, compiled: Default::default() })
    }

    /// Compiles the matchers (once). Every pattern parsed; what can still fail is a globset
    /// limit on a set (thousands of alternatives): `plan` asks first, so it is an error there.
    pub fn compiled(&self) -> Result<(), PatternError> {
        self.sets().as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn sets(&self) -> &Result<Compiled, PatternError> {
        self.compiled.get_or_init(|| {
            let include = match &self.include {
                None => None,
                Some(globs) => Some(build(globs)?),
            };
            Ok(Compiled { include, exclude: build(&self.exclude)? })
        })
    }

    /// Decides one key (relative to the transfer's root, `/`-separated).
    pub fn verdict(&self, key: &str) -> Verdict {
        let Ok(sets) = self.sets() else {
            // Never reached by a run (`compiled` is checked first); move nothing.
            return Verdict::Excluded;
        };
        if sets.exclude.is_match(key) {
            Verdict::Excluded
        } else if sets.include.as_ref().is_some_and(|include| !include.is_match(key)) {
            Verdict::NotIncluded
        } else {
            Verdict::Included
        }
    }

    pub fn is_included(&self, key: &str) -> bool {
        self.verdict(key) == Verdict::Included
    }
}

/// Turns a gitignore-style pattern into the glob that implements it.
fn to_glob(pattern: &str) -> String {
    let (body, folder) = match pattern.strip_suffix('/') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let anchored = body.contains('/');
    let body = body.trim_start_matches('/');
    let mut glob = if anchored || body.starts_with("**") { body.to_string() } else { format!("**/{body}") };
    if folder {
        glob.push_str("/**");
    }
    glob
}

fn compile(pattern: &str, list: PatternList, index: usize) -> Result<Glob, PatternError> {
    if pattern.trim().is_empty() {
        return Err(PatternError { list, index, pattern: pattern.to_string(), reason: "the pattern is empty".into() });
    }
    GlobBuilder::new(&to_glob(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|err| pattern_error(pattern, list, index, &err))
}

fn pattern_error(pattern: &str, list: PatternList, index: usize, err: &globset::Error) -> PatternError {
    PatternError { list, index, pattern: pattern.to_string(), reason: err.kind().to_string() }
}

fn build(globs: &[Glob]) -> Result<GlobSet, PatternError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(glob.clone());
    }
    // Every glob parsed on its own already; a set that fails here is a globset limit.
    builder.build().map_err(|err| PatternError {
        list: PatternList::Include,
        index: 0,
        pattern: String::new(),
        reason: err.to_string(),
    })
}

/// Extensions are literal text: `c++` or `a!b` must not become a pattern. globset's own
/// escaping, plus the backslash, which it leaves alone (an escape character in globs here).
fn escape(extension: &str) -> String {
    globset::escape(extension).replace('\\', "\\\\")
}

/// Size and age bounds on what a transfer moves (`min_size`, `max_size`, `older_than`,
/// `newer_than`), the times already measured from the run's moment. Unlike the patterns, a
/// window is decided on the source's entry: a source file outside it is held back (neither
/// copied nor its destination copy deleted), and a destination key the source lacks is
/// deleted only when it is inside the window itself, so a window never deletes what it hides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    /// Modified at or before this (milliseconds since the epoch): `older_than`.
    pub modified_by_ms: Option<i64>,
    /// Modified at or after this: `newer_than`.
    pub modified_since_ms: Option<i64>,
}

/// Why an entry is outside a [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    TooSmall,
    TooLarge,
    /// Modified after `older_than`'s bound: perhaps still being written.
    TooNew,
    /// Modified before `newer_than`'s bound.
    TooOld,
}

impl Window {
    /// Whether every entry is inside (no bound set).
    pub fn is_open(&self) -> bool {
        *self == Window::default()
    }

    /// `None` when an entry of `size` bytes modified at `mtime_ms` is inside.
    pub fn outside(&self, size: u64, mtime_ms: i64) -> Option<Outside> {
        if self.min_size.is_some_and(|min| size < min) {
            Some(Outside::TooSmall)
        } else if self.max_size.is_some_and(|max| size > max) {
            Some(Outside::TooLarge)
        } else if self.modified_by_ms.is_some_and(|by| mtime_ms > by) {
            Some(Outside::TooNew)
        } else if self.modified_since_ms.is_some_and(|since| mtime_ms < since) {
            Some(Outside::TooOld)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn filter(include: &[&str], exclude: &[&str], extensions: &[&str]) -> Filter {
        Filter::new(&strings(include), &strings(exclude), &strings(extensions)).unwrap()
    }

    #[test]
    fn no_rules_include_everything() {
        let f = Filter::everything();
        assert!(f.is_included("a/b/c.txt"));
        assert!(filter(&[], &[], &[]).is_included("x"));
    }

    #[test]
    fn extensions_match_at_any_depth_case_insensitively() {
        let f = filter(&[], &[], &["csv", "parquet"]);
        assert!(f.is_included("top.csv"));
        assert!(f.is_included("2026/01/02/part-0001.parquet"));
        assert!(f.is_included("DATA.CSV"));
        assert_eq!(f.verdict("notes.txt"), Verdict::NotIncluded);
        assert_eq!(f.verdict("csv"), Verdict::NotIncluded);
        assert_eq!(f.verdict("archive.csv.gz"), Verdict::NotIncluded);
    }

    #[test]
    fn pattern_without_slash_matches_file_name_at_any_depth() {
        let f = filter(&["*.csv"], &[], &[]);
        assert!(f.is_included("a.csv"));
        assert!(f.is_included("deep/er/a.csv"));
        assert!(!f.is_included("a.csv/b.txt"));
    }

    #[test]
    fn pattern_with_slash_is_anchored_and_star_stays_in_one_folder() {
        let f = filter(&["logs/*.gz"], &[], &[]);
        assert!(f.is_included("logs/a.gz"));
        assert!(!f.is_included("logs/2026/a.gz"));
        assert!(!f.is_included("old/logs/a.gz"));
        let deep = filter(&["logs/**/*.gz"], &[], &[]);
        assert!(deep.is_included("logs/2026/01/a.gz"));
        assert!(deep.is_included("logs/a.gz"));
        let rooted = filter(&["/top.csv"], &[], &[]);
        assert!(rooted.is_included("top.csv"));
        assert!(!rooted.is_included("sub/top.csv"));
    }

    #[test]
    fn exclude_wins_over_include() {
        let f = filter(&["*.csv"], &["_tmp/**", "*.partial.csv"], &[]);
        assert!(f.is_included("reports/a.csv"));
        assert_eq!(f.verdict("_tmp/a.csv"), Verdict::Excluded);
        assert_eq!(f.verdict("x/y.partial.csv"), Verdict::Excluded);
        // `_tmp/**` has a slash, so it is anchored: a nested _tmp is not excluded.
        assert!(f.is_included("reports/_tmp/a.csv"));
    }

    #[test]
    fn trailing_slash_means_a_folder_at_any_depth() {
        let f = filter(&[], &["_tmp/"], &[]);
        assert_eq!(f.verdict("_tmp/a.csv"), Verdict::Excluded);
        assert_eq!(f.verdict("reports/_tmp/deep/a.csv"), Verdict::Excluded);
        assert!(f.is_included("reports/_tmpfile.csv"));
    }

    #[test]
    fn hangul_names_match() {
        let f = filter(&["보고서/**"], &["*임시*"], &["csv"]);
        assert!(f.is_included("보고서/2026/매출.csv"));
        assert_eq!(f.verdict("보고서/임시파일.csv"), Verdict::Excluded);
        assert!(f.is_included("기타/매출.csv"), "extensions add to include");
        assert_eq!(f.verdict("기타/매출.txt"), Verdict::NotIncluded);
        let by_name = filter(&["매출*.csv"], &[], &[]);
        assert!(by_name.is_included("지역/서울/매출_1월.csv"));
    }

    #[test]
    fn extension_text_is_literal() {
        let f = filter(&[], &[], &["c++", "a!b", "x[1]", "q\\z"]);
        assert!(f.is_included("src/main.c++"));
        assert!(!f.is_included("src/main.c"));
        assert!(f.is_included("d/file.a!b") && !f.is_included("d/file.acb"));
        assert!(f.is_included("file.x[1]") && !f.is_included("file.x1"));
        assert!(f.is_included("file.q\\z") && !f.is_included("file.qz"));
    }

    #[test]
    fn invalid_patterns_name_their_list_and_index() {
        let err = Filter::new(&strings(&["*.csv", "a[b"]), &[], &[]).unwrap_err();
        assert_eq!((err.list, err.index, err.pattern.as_str()), (PatternList::Include, 1, "a[b"));
        let err = Filter::new(&[], &strings(&[""]), &[]).unwrap_err();
        assert_eq!((err.list, err.index), (PatternList::Exclude, 0));
        assert!(err.reason.contains("empty"));
    }

    #[test]
    fn a_window_bounds_size_and_age_inclusively() {
        let window = Window {
            min_size: Some(1),
            max_size: Some(100),
            modified_by_ms: Some(5_000),
            modified_since_ms: Some(1_000),
        };
        assert_eq!(window.outside(1, 1_000), None);
        assert_eq!(window.outside(100, 5_000), None);
        assert_eq!(window.outside(0, 2_000), Some(Outside::TooSmall));
        assert_eq!(window.outside(101, 2_000), Some(Outside::TooLarge));
        assert_eq!(window.outside(50, 5_001), Some(Outside::TooNew));
        assert_eq!(window.outside(50, 999), Some(Outside::TooOld));
        assert!(Window::default().is_open());
        assert_eq!(Window::default().outside(0, i64::MIN), None);
    }
}
