//! The manifest stage: load the YAML with positions, check it, and merge `defaults` into one
//! resolved `Job` per transfer. No network here.

mod dated;
mod load;
mod model;
mod places;
mod problem;
mod validate;

use std::path::{Path, PathBuf};

pub use dated::{Deadline, Moment};
pub use model::{
    Age, ArchivedObjects, Bandwidth, ByteSize, CannedAcl, CompareMode, Concurrency, CopyTo, DestinationCheck,
    Direction, MANIFEST_VERSION, ManifestSpec, Overwrite, RequestPayer, RestoreTier, ServerSideEncryption, Settings,
    StorageClass, TransferSpec, UploadChecksum, manifest_schema,
};
pub use problem::{Location, Problem, Severity, SourceFile, line_starts};

use crate::filter::{Filter, Window};

/// Keys that only make sense for one transfer and so may not sit in `defaults`.
pub const TRANSFER_ONLY_KEYS: [&str; 6] = ["name", "direction", "bucket", "local", "prefix", "to"];

/// Built-in defaults for settings neither `defaults` nor the transfer sets.
pub mod builtin {
    use super::ByteSize;
    pub const CONCURRENCY: super::Concurrency = super::Concurrency::Auto;
    pub const MULTIPART_THRESHOLD: ByteSize = ByteSize(8 * ByteSize::MIB);
    pub const PART_SIZE: ByteSize = ByteSize(8 * ByteSize::MIB);
    /// The most one CopyObject may copy: a server copies the whole object in one request
    /// (many, such as Garage, without moving its bytes), where parts would each be copied.
    pub const COPY_CUTOFF: ByteSize = ByteSize(5 * ByteSize::GIB);
    pub const RETRIES: u32 = 3;
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("`{}` is a directory, not a manifest file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{} has {} problem(s)", file.path.display(), problems.len())]
    Invalid { file: SourceFile, problems: Vec<Problem> },
}

/// Where and as whom to reach S3 for one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Target {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub request_payer: bool,
    /// Extra attempts after the first, for the SDK's retry policy.
    pub retries: u32,
    /// The CA bundle HTTPS is checked against instead of the system's store (absolute).
    pub ca_bundle: Option<PathBuf>,
    /// The checksum header bodies written go with (`off`: Content-MD5, and no
    /// `x-amz-checksum-*` header on any request).
    pub checksum: UploadChecksum,
}

impl S3Target {
    /// Whether the endpoint is plain http: no TLS, so no certificate to check.
    pub fn plain_http(&self) -> bool {
        self.endpoint.as_deref().is_some_and(plain_http)
    }
}

/// Whether `endpoint` is a plain-http URL (the scheme in any case).
pub fn plain_http(endpoint: &str) -> bool {
    endpoint.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// The bucket a copy writes to, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyDestination {
    pub bucket: String,
    /// Empty (the bucket's root) or ending in `/`.
    pub prefix: String,
    pub target: S3Target,
    /// `to.listing`: the destination bucket's listing from an S3 Inventory report.
    pub inventory: Option<Inventory>,
}

/// An S3 Inventory report that stands for a bucket's listing (`listing: {inventory: ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Where the report is: the bucket the reports are delivered to, and the key of one
    /// report's `manifest.json`, or a configuration's folder (ending in `/`).
    pub bucket: String,
    pub key: String,
    /// The oldest report a plan may use.
    pub max_age: std::time::Duration,
}

impl Inventory {
    /// A report older than this stops the plan, unless `max_age` says otherwise.
    pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// How uploads (and copies) are stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadOptions {
    pub storage_class: Option<StorageClass>,
    pub sse: Option<ServerSideEncryption>,
    pub sse_kms_key_id: Option<String>,
    pub acl: Option<CannedAcl>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    /// Tags, by key.
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

impl UploadOptions {
    /// Whether it sets any of the object's own properties (not only where it is stored): a
    /// server-side copy then replaces the source's (S3's `REPLACE` directive).
    pub fn replaces_metadata(&self) -> bool {
        self.content_type.is_some()
            || self.cache_control.is_some()
            || self.content_disposition.is_some()
            || self.metadata.is_some()
    }

    /// Whether it sets anything an object carries once written (its ACL, headers, metadata or
    /// tags), which `update_properties` compares.
    pub fn sets_properties(&self) -> bool {
        self.acl.is_some() || self.replaces_metadata() || self.tags.is_some()
    }

    /// The tags as the `x-amz-tagging` header takes them: `key=value&...`, URL-encoded.
    pub fn tagging(&self) -> Option<String> {
        let encode =
            |text: &str| percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string();
        self.tags.as_ref().map(|tags| {
            tags.iter().map(|(key, value)| format!("{}={}", encode(key), encode(value))).collect::<Vec<_>>().join("&")
        })
    }
}

/// One transfer with `defaults` merged in, paths resolved and filters compiled.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub direction: Direction,
    pub bucket: String,
    /// Empty (the whole bucket) or ending in `/`.
    pub prefix: String,
    /// Absolute, with `~` and `${ENV}` expanded. Empty in a copy.
    pub local: PathBuf,
    /// A copy's destination; `None` in uploads and downloads.
    pub to: Option<CopyDestination>,
    pub filter: Filter,
    /// The filter's source text, for display.
    pub filter_summary: FilterSummary,
    pub compare: CompareMode,
    pub delete: bool,
    pub max_delete: Option<u64>,
    pub target: S3Target,
    pub concurrency: Concurrency,
    pub multipart_threshold: ByteSize,
    pub part_size: ByteSize,
    /// Server-side copies at least this large go in parts.
    pub copy_cutoff: ByteSize,
    pub upload: UploadOptions,
    pub follow_symlinks: bool,
    /// The most bytes per second through haul, shared by the transfer's workers.
    pub bandwidth: Option<u64>,
    /// `min_size`, `max_size`, `older_than`, `newer_than`: what the transfer considers.
    pub window: Window,
    /// `deadline`, `max_duration`: when the transfer stops starting objects.
    pub deadline: Option<Deadline>,
    /// `archived`, `restore_days`, `restore_tier`: source objects that must be restored first.
    pub archived: Archived,
    /// When an existing destination object may be replaced.
    pub overwrite: Overwrite,
    /// `destination`: listed whole, or looked up key by key.
    pub destination: DestinationCheck,
    /// `listing`: the listing of `bucket` from an S3 Inventory report.
    pub inventory: Option<Inventory>,
    /// `properties`: what keys matching each pattern are written with, over `upload`.
    pub property_rules: Vec<PropertyRule>,
    /// `update_properties`: objects the destination has unchanged are also compared on the
    /// properties the manifest sets, and updated in place where they differ.
    pub update_properties: bool,
}

/// One `properties` rule, its pattern parsed: the properties it sets (`None`: left as is).
#[derive(Debug, Clone)]
pub struct PropertyRule {
    pub filter: Filter,
    pub options: UploadOptions,
}

impl Job {
    /// What the object at `key` (relative to where the transfer writes) is written with: the
    /// transfer's options, and over them every `properties` rule that matches, in order.
    pub fn upload_options_for(&self, key: &str) -> std::borrow::Cow<'_, UploadOptions> {
        let mut matching = self.property_rules.iter().filter(|rule| rule.filter.is_included(key)).peekable();
        if matching.peek().is_none() {
            return std::borrow::Cow::Borrowed(&self.upload);
        }
        let mut options = self.upload.clone();
        for rule in matching {
            let set = &rule.options;
            options.acl = set.acl.or(options.acl);
            options.content_type = set.content_type.clone().or(options.content_type);
            options.cache_control = set.cache_control.clone().or(options.cache_control);
            options.content_disposition = set.content_disposition.clone().or(options.content_disposition);
            options.metadata = set.metadata.clone().or(options.metadata);
            options.tags = set.tags.clone().or(options.tags);
        }
        std::borrow::Cow::Owned(options)
    }
}

/// What a transfer does with archived source objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Archived {
    pub mode: ArchivedObjects,
    pub restore_days: u32,
    pub restore_tier: RestoreTier,
}

/// The filter rules as written (after normalization), for `validate` and `plan` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSummary {
    pub extensions: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// The size and age window as written: `older_than: 10m`, `min_size: 1`.
    pub window: Vec<String>,
}

impl Job {
    /// `s3://bucket/prefix`, as people write it.
    pub fn remote_url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// `source -> destination`, as output shows it.
    pub fn route(&self) -> String {
        let to = self.to.as_ref().map(|to| (to.bucket.as_str(), to.prefix.as_str()));
        route(self.direction, &self.bucket, &self.prefix, &self.local, to)
    }
}

/// `source -> destination` for output: `s3://b/p/ -> /local`, `/local -> s3://b/p/`, or
/// `s3://b/p/ -> s3://c/q/` (a copy: `to` is its destination bucket and prefix).
pub fn route(direction: Direction, bucket: &str, prefix: &str, local: &Path, to: Option<(&str, &str)>) -> String {
    let remote = format!("s3://{bucket}/{prefix}");
    match direction {
        Direction::Download => format!("{remote} -> {}", local.display()),
        Direction::Upload => format!("{} -> {remote}", local.display()),
        Direction::Copy => {
            let (to_bucket, to_prefix) = to.unwrap_or_default();
            format!("{remote} -> s3://{to_bucket}/{to_prefix}")
        }
    }
}

/// A loaded, valid manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: SourceFile,
    pub jobs: Vec<Job>,
    /// Problems that do not stop a run (printed by every command).
    pub warnings: Vec<Problem>,
    /// The moment its dates were expanded and ages measured at (a saved plan keeps it).
    pub at: Moment,
}

/// Reads, checks and resolves a manifest, its dates expanded and ages measured at `at` (now,
/// or `--at`). Every problem found is returned at once.
pub fn load_manifest(path: &Path, at: &Moment) -> Result<Manifest, ManifestError> {
    let source = load::read_source(path)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_source(source, &base, at)
}

/// Checks and resolves manifest text already read (`base`: the folder relative `local`
/// paths start from).
pub fn load_source(source: SourceFile, base: &Path, at: &Moment) -> Result<Manifest, ManifestError> {
    let (parsed, mut problems) = match load::parse_spec(&source) {
        Ok(parsed) => parsed,
        Err(problems) => {
            return Err(ManifestError::Invalid { file: source, problems });
        }
    };
    let jobs = validate::resolve(parsed, base, at, &mut problems);
    // A bad value in `defaults` is found once per transfer that inherits it: report it once.
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert((p.location, p.message.clone())));
    problems.sort_by_key(|p| p.location.map(|l| (l.line, l.column)));
    if problems.iter().any(Problem::is_error) {
        return Err(ManifestError::Invalid { file: source, problems });
    }
    Ok(Manifest { source, jobs, warnings: problems, at: at.clone() })
}
