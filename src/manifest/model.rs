//! The manifest as written: serde types that are also the JSON schema (via schemars).
//!
//! These types say what a manifest may contain. Loading them with positions and collecting
//! every error is `load`'s job; checking the values against S3's rules is `validate`'s.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The only manifest format version this build reads.
pub const MANIFEST_VERSION: u32 = 1;

/// A haul manifest: declarative S3 transfers.
// Only the schema is derived: `load` reads manifests key by key to report every problem.
#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "haul manifest, version 1")]
pub struct ManifestSpec {
    /// Manifest format version. Must be `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Settings every transfer inherits; any of them may be overridden per transfer.
    #[serde(default)]
    pub defaults: Settings,
    /// The transfers to run, in order.
    pub transfers: Vec<TransferSpec>,
}

/// One transfer: what moves where, plus any setting that overrides `defaults`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct TransferSpec {
    /// Unique name, used in output, reports and `--only`.
    pub name: String,
    /// `download` copies from S3 to `local`; `upload` copies from `local` to S3; `copy` copies
    /// from one bucket to another (`to`).
    pub direction: Direction,
    /// Bucket name only (no `s3://`, no slash); put the folder part in `prefix`. The source of
    /// a download or a copy, the destination of an upload.
    pub bucket: String,
    /// Local folder, relative to the manifest's folder; `~` and `${ENV}` expand, and dates
    /// (`{date}`, `{date-1d:%Y/%m/%d}`, `{hour-1h:%H}`). Required for `upload` and `download`;
    /// a `copy` has `to` instead.
    #[serde(default)]
    pub local: Option<String>,
    /// Key prefix inside the bucket (a folder: `reports/2026/`). Empty: the whole bucket.
    /// Dates expand: `daily/{date}/`, `logs/{date-1d:%Y/%m/%d}/`, `hourly/{hour-1h:%Y%m%d-%H}/`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The destination of a `copy`: another bucket (and prefix), with its own connection
    /// settings where they differ from the source's. Only in a `copy`.
    #[serde(default)]
    pub to: Option<CopyTo>,
    #[serde(flatten)]
    pub settings: Settings,
}

/// Where a `copy` writes. Connection settings not given here are the transfer's (its own or
/// from `defaults`), except `request_payer`, which is the source's alone.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyTo {
    /// Destination bucket name only (no `s3://`, no slash).
    pub bucket: String,
    /// Key prefix in the destination bucket (a folder: `partner/reports/`). Empty: the bucket's
    /// root. Dates expand as in the transfer's `prefix`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// AWS profile for the destination.
    pub profile: Option<String>,
    /// Region of the destination bucket.
    pub region: Option<String>,
    /// Endpoint URL of the destination's S3-compatible server.
    pub endpoint: Option<String>,
    /// Path-style addressing for the destination.
    pub path_style: Option<bool>,
    /// CA bundle (PEM) the destination's HTTPS certificate is checked against.
    pub ca_bundle: Option<String>,
    /// The checksum header of the copies written (`crc32c`, `crc64nvme` or `off`).
    pub checksum: Option<UploadChecksum>,
    /// The destination bucket's listing from an S3 Inventory report: `{inventory: s3://...}`.
    pub listing: Option<ListingSource>,
    /// Storage class of the copies.
    pub storage_class: Option<StorageClass>,
    /// Server-side encryption of the copies.
    pub sse: Option<ServerSideEncryption>,
    /// KMS key ID or ARN, with `sse: aws:kms`.
    pub sse_kms_key_id: Option<String>,
}

/// Settings that may sit in `defaults` or in a transfer (the transfer wins).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// File extensions to include, without the dot: `[csv, parquet]`. Case-insensitive.
    /// Shorthand for `include: ["*.csv", "*.parquet"]`.
    pub extensions: Option<Vec<String>>,
    /// Glob patterns to include. No `/`: matches the file name at any depth; with `/`: anchored
    /// at the transfer's root; `**` crosses folders. Empty: everything.
    pub include: Option<Vec<String>>,
    /// Glob patterns to exclude, same rules as `include`. Exclude wins over include.
    pub exclude: Option<Vec<String>>,
    /// Remove from the destination what the source no longer has. Requires `max_delete`.
    pub delete: Option<bool>,
    /// The most objects one run of this transfer may delete; a plan that would delete more stops
    /// with an error. Required when `delete: true`.
    pub max_delete: Option<u64>,
    /// How to decide that an object is unchanged.
    pub compare: Option<CompareMode>,
    /// AWS profile from `~/.aws/config` / `~/.aws/credentials`. Omitted: the standard chain.
    pub profile: Option<String>,
    /// Region of the bucket, such as `ap-northeast-2`.
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible server, such as `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (most local servers).
    pub path_style: Option<bool>,
    /// A PEM file of the CA certificates an `https://` endpoint's certificate is checked
    /// against, instead of the system's store (a private CA). A relative path is read from the
    /// manifest's folder. Omitted: `AWS_CA_BUNDLE`, else the profile's `ca_bundle`, else the
    /// system's store.
    pub ca_bundle: Option<String>,
    /// The checksum header every body written goes with: `crc32c` (the default), `crc64nvme`
    /// (full-object checksums for multipart uploads too), or `off` for services that refuse
    /// checksum headers (then `Content-MD5`, which they check).
    /// `haul check` says which one the endpoint takes.
    pub checksum: Option<UploadChecksum>,
    /// `requester`: you pay for requests and transfer on a requester-pays bucket.
    pub request_payer: Option<RequestPayer>,
    /// Objects in flight at once: `auto` (the default: from 64, or more for a far server, more
    /// while it pays, fewer when the server asks to slow down) or a fixed number from 1 to 1024.
    pub concurrency: Option<Concurrency>,
    /// Objects at least this large move in parts (`8MiB`; 5MiB to 5GiB).
    pub multipart_threshold: Option<ByteSize>,
    /// Size of one part of a multipart transfer (`8MiB`; 5MiB to 5GiB).
    pub part_size: Option<ByteSize>,
    /// Server-side copies of objects at least this large go in parallel parts (UploadPartCopy);
    /// smaller ones in one CopyObject (`5GiB`, the most one CopyObject takes; 5MiB to 5GiB).
    pub copy_cutoff: Option<ByteSize>,
    /// Extra attempts for a failed request or object (0 to 20).
    #[schemars(range(max = 20))]
    pub retries: Option<u32>,
    /// Storage class for uploads and copies.
    pub storage_class: Option<StorageClass>,
    /// Server-side encryption for uploads and copies.
    pub sse: Option<ServerSideEncryption>,
    /// KMS key ID or ARN, with `sse: aws:kms`.
    pub sse_kms_key_id: Option<String>,
    /// Follow symbolic links when walking the local side (loops are detected).
    pub follow_symlinks: Option<bool>,
    /// The most bytes per second the transfer moves through haul, shared by all its workers
    /// (`50MiB/s`). Omitted: no cap. Server-side copies move no bytes through haul.
    pub bandwidth: Option<Bandwidth>,
    /// The time zone dates in `prefix`, `local` and `to.prefix` are read in: an IANA name
    /// (`Asia/Seoul`), `UTC` (the default) or `local` (the machine's).
    pub timezone: Option<String>,
    /// Move only files modified at least this long before the run (`10m`, `2h`): files still
    /// being written wait for the next run. Their destination copies are never deleted.
    pub older_than: Option<Age>,
    /// Move only files modified within this long before the run (`25h`, `7d`). Destination
    /// keys outside the window are never deleted.
    pub newer_than: Option<Age>,
    /// Move only files of at least this size (`1B` skips empty files).
    pub min_size: Option<ByteSize>,
    /// Move only files of at most this size (`10GiB`).
    pub max_size: Option<ByteSize>,
    /// Start no object after this wall time (`06:00`, in `timezone`; the next one after the
    /// run starts): what is left waits for the next run, which continues it (exit 6).
    pub deadline: Option<String>,
    /// Start no object after the run has gone on this long (`4h`); with `deadline`, whichever
    /// comes first.
    pub max_duration: Option<Age>,
    /// What to do with source objects in an archive storage class (GLACIER, DEEP_ARCHIVE),
    /// which cannot be read until restored: `fail` (the default: each is a failure that says
    /// so), `skip` (counted, never read), or `restore` (haul asks S3 to restore them; a later
    /// run moves what has been restored).
    pub archived: Option<ArchivedObjects>,
    /// With `archived: restore`: how many days a restored copy stays readable (1 to 365; 7).
    #[schemars(range(min = 1, max = 365))]
    pub restore_days: Option<u32>,
    /// With `archived: restore`: how fast (and at what price) S3 restores.
    pub restore_tier: Option<RestoreTier>,
    /// When an object the destination has may be replaced: `always` (the default: when
    /// `compare` says it changed), `never` (what the destination has is kept; new objects are
    /// written only if still absent: `If-None-Match: *`, a local file by a rename that never
    /// replaces), or `if_newer` (only by a source modified after it).
    pub overwrite: Option<Overwrite>,
    /// Where the bucket's listing comes from instead of ListObjectsV2: `{inventory:
    /// s3://inventory-bucket/path/manifest.json}`, an S3 Inventory report of the transfer's
    /// `bucket` (in `to:`, of the copy's destination bucket).
    pub listing: Option<ListingSource>,
    /// How the destination's objects are found: `list` (the default: the destination is
    /// listed whole, and can be deleted from), or `head` (each key the source has is looked
    /// up on its own, a HEAD per object, or a file's metadata: for a small source into a
    /// huge destination; no `delete`).
    pub destination: Option<DestinationCheck>,
    /// A canned ACL for uploads and copies: `bucket-owner-full-control` (objects written into
    /// another account's bucket, so its owner can read them), `private`, `public-read`, ...
    pub acl: Option<CannedAcl>,
    /// `Content-Type` of uploads and copies (default: guessed from the extension for uploads,
    /// the source's for copies).
    pub content_type: Option<String>,
    /// `Cache-Control` of uploads and copies (`max-age=3600`).
    pub cache_control: Option<String>,
    /// `Content-Disposition` of uploads and copies (`attachment`).
    pub content_disposition: Option<String>,
    /// User metadata of uploads and copies (`x-amz-meta-*`): `{team: analytics}`.
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    /// Tags of uploads and copies (at most 10): `{classification: internal}`.
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    /// Properties by name: each rule whose `match` pattern (the filters' rules) takes a key
    /// sets its properties over the transfer's, later rules over earlier ones:
    /// `[{match: "*.csv", content_type: text/csv}]`.
    pub properties: Option<Vec<PropertyRule>>,
    /// Also compare the properties this manifest sets (`acl`, `content_type`, `cache_control`,
    /// `content_disposition`, `metadata`, `tags`) on objects the destination already has and
    /// `compare` finds unchanged, and update those that differ in place (a server-side copy
    /// onto itself, or a new tag set or ACL), without sending their bytes again. Costs a HEAD
    /// per such object, and a GetObjectTagging or GetObjectAcl where tags or an ACL are set.
    /// Default false.
    pub update_properties: Option<bool>,
}

/// Object properties for the keys one pattern matches.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertyRule {
    /// A pattern, as in `include` (`*.csv`, `reports/**`).
    #[serde(rename = "match")]
    pub pattern: String,
    pub acl: Option<CannedAcl>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

/// S3's canned ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

impl CannedAcl {
    pub fn as_str(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::PublicReadWrite => "public-read-write",
            CannedAcl::AuthenticatedRead => "authenticated-read",
            CannedAcl::AwsExecRead => "aws-exec-read",
            CannedAcl::BucketOwnerRead => "bucket-owner-read",
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
        }
    }
}

/// When an existing destination object may be replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overwrite {
    /// Whenever `compare` says the source changed.
    #[default]
    Always,
    /// Never: the destination's object or file is kept, and a new one is written only if
    /// nothing took its name meanwhile.
    Never,
    /// Only by a source modified after the destination.
    IfNewer,
}

/// Where a bucket's listing comes from, when not from ListObjectsV2.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingSource {
    /// An S3 Inventory report of the bucket (CSV or Parquet): the `manifest.json` of one
    /// report (`s3://inventory-bucket/path/BUCKET/CONFIG/2026-12-01T01-00Z/manifest.json`), or
    /// the folder of a configuration's reports (`s3://inventory-bucket/path/BUCKET/CONFIG/`),
    /// whose newest report is read.
    pub inventory: String,
    /// The oldest report a plan may use (`48h` unless set): objects changed since the report
    /// are not seen, so an older one stops the transfer.
    pub max_age: Option<Age>,
}

/// How a transfer finds what its destination has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationCheck {
    /// The destination is listed whole (one request per 1,000 objects).
    #[default]
    List,
    /// Each key the source has is looked up at the destination (one request per key):
    /// cheaper when the source holds far fewer keys than the destination.
    Head,
}

/// The integrity header every body written goes with, which the server checks before it
/// stores anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadChecksum {
    /// `x-amz-checksum-crc32c` on every body and part, stored with the object.
    #[default]
    Crc32c,
    /// `x-amz-checksum-crc64nvme` on every body and part; a multipart upload gets a
    /// full-object CRC64NVME (S3's own default since 2025), not a composite one.
    Crc64nvme,
    /// No `x-amz-checksum-*` header at all, for services that refuse them (Backblaze B2 and
    /// others since the SDKs began sending them): each body and part goes with `Content-MD5`
    /// instead, which the server checks, and its answer's ETag is compared with the MD5.
    Off,
}

/// What to do with source objects that must be restored before they can be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArchivedObjects {
    /// Each is a failure saying it is archived (a restored one is moved).
    #[default]
    Fail,
    /// Counted in the plan and report, never read (its destination copy is kept).
    Skip,
    /// Ask S3 to restore it (RestoreObject) and move it once a later run finds it restored.
    Restore,
}

/// The retrieval tier of a restore (S3's `Tier`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestoreTier {
    /// Hours (3-5 from GLACIER, up to 12 from DEEP_ARCHIVE).
    #[default]
    Standard,
    /// The cheapest: 5-12 hours from GLACIER, up to 48 from DEEP_ARCHIVE.
    Bulk,
    /// Minutes, from GLACIER only, at the highest price.
    Expedited,
}

/// Which way a transfer copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// S3 to the local folder.
    Download,
    /// The local folder to S3.
    Upload,
    /// One bucket to another (`to`): server-side where one endpoint and one set of
    /// credentials reach both, streamed through haul otherwise.
    Copy,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
            Direction::Copy => "copy",
        })
    }
}

/// How a plan decides that the destination already has an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CompareMode {
    /// Same size and the destination is not older than the source (what `aws s3 sync` does).
    #[default]
    SizeMtime,
    /// Same size.
    Size,
    /// Same size and the same content checksum.
    Checksum,
    /// Never unchanged: copy everything.
    Always,
}

/// Who pays for requests on the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestPayer {
    /// The requester pays (requester-pays buckets).
    Requester,
}

/// S3 storage classes for uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum StorageClass {
    Standard,
    ReducedRedundancy,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    Glacier,
    GlacierIr,
    DeepArchive,
    ExpressOnezone,
}

impl StorageClass {
    /// The name S3 uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::Glacier => "GLACIER",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::ExpressOnezone => "EXPRESS_ONEZONE",
        }
    }
}

/// Server-side encryption for uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ServerSideEncryption {
    /// S3-managed keys (SSE-S3).
    #[serde(rename = "AES256")]
    Aes256,
    /// AWS KMS keys (SSE-KMS); set `sse_kms_key_id` for a key other than the default.
    #[serde(rename = "aws:kms")]
    AwsKms,
}

/// A size in bytes, written as a number of bytes or with a unit: `8MiB`, `512KiB`, `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const KIB: u64 = 1024;
    pub const MIB: u64 = 1024 * 1024;
    pub const GIB: u64 = 1024 * 1024 * 1024;
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Exact binary units as people write them in manifests (`8MiB`), bytes otherwise.
        for (unit, size) in [("GiB", ByteSize::GIB), ("MiB", ByteSize::MIB), ("KiB", ByteSize::KIB)] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if let Ok(bytes) = trimmed.parse::<u64>() {
            return Ok(ByteSize(bytes));
        }
        trimmed
            .parse::<bytesize::ByteSize>()
            .map(|size| ByteSize(size.as_u64()))
            .map_err(|_| format!("`{text}` is not a size; write it like `8MiB`, `512KiB` or `1GiB`"))
    }
}

/// A setting read by its `FromStr`: YAML scalars arrive as text (a bare number too), and the
/// parse error is the message `validate` shows.
fn from_text<'de, D: Deserializer<'de>, T: FromStr<Err = String>>(deserializer: D) -> Result<T, D::Error> {
    String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A bare number is a count of bytes.
        from_text(deserializer)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: a number of bytes, or a number with a unit such as `8MiB`, `512KiB`, `1GiB`.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KMGT]i?B|[KMGT]|B)?\\s*$" }
            ]
        })
    }
}

/// How many objects a transfer keeps in flight: found as it runs, or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// From [`Concurrency::AUTO_START`], raised while throughput grows (up to
    /// [`Concurrency::AUTO_MOST`]) and lowered when the server asks to slow down.
    Auto,
    /// Exactly this many, whatever happens.
    Fixed(u32),
}

impl Concurrency {
    /// Where `auto` starts: the fixed default of earlier versions, which small files at a
    /// round trip under a millisecond need no more than.
    pub const AUTO_START: u32 = 64;
    /// The most `auto` goes to: at 100 ms of round trip, 512 objects in flight allow 5,120
    /// small objects a second; memory for whole small objects in flight stays under 128 MiB.
    pub const AUTO_MOST: u32 = 512;

    /// The objects in flight when a transfer starts.
    pub fn starting(self) -> u32 {
        match self {
            Concurrency::Auto => Concurrency::AUTO_START,
            Concurrency::Fixed(count) => count,
        }
    }

    /// The most objects in flight the transfer may ever have.
    pub fn most(self) -> u32 {
        match self {
            Concurrency::Auto => Concurrency::AUTO_MOST,
            Concurrency::Fixed(count) => count,
        }
    }
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Concurrency::Auto => f.write_str("auto"),
            Concurrency::Fixed(count) => write!(f, "{count}"),
        }
    }
}

impl FromStr for Concurrency {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed == "auto" {
            return Ok(Concurrency::Auto);
        }
        // The range is checked with the other settings, to quote it with its place.
        trimmed
            .parse::<u32>()
            .map(Concurrency::Fixed)
            .map_err(|_| format!("expected `auto` or a whole number of objects in flight (1 to 1024), found `{text}`"))
    }
}

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer)
    }
}

impl JsonSchema for Concurrency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Concurrency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`auto`, or a fixed number of objects in flight from 1 to 1024.",
            "anyOf": [
                { "const": "auto" },
                { "type": "integer", "minimum": 1, "maximum": 1024 }
            ]
        })
    }
}

/// A length of time back from the run's moment: `10m`, `2h`, `25h`, `7d`, `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub std::time::Duration);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for Age {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(Age)
            .map_err(|_| format!("`{text}` is not a length of time; write it like `10m`, `2h`, `25h` or `7d`"))
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer)
    }
}

impl JsonSchema for Age {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Age".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A length of time: a number and a unit, such as `10m`, `2h`, `25h` or `7d`.",
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*[a-z]+(\\s*[0-9]+\\s*[a-z]+)*\\s*$"
        })
    }
}

/// A rate in bytes per second, written `50MiB/s` (or `512KiB/s`, `1GiB/s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth(pub u64);

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", ByteSize(self.0))
    }
}

impl FromStr for Bandwidth {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fix = || format!("`{text}` is not a rate; write it like `50MiB/s` or `512KiB/s`");
        let size = text.trim().strip_suffix("/s").ok_or_else(fix)?;
        let bytes = size.parse::<ByteSize>().map_err(|_| fix())?.0;
        if bytes == 0 {
            return Err(format!("`{text}` would move nothing; remove the cap, or give a rate such as `50MiB/s`"));
        }
        Ok(Bandwidth(bytes))
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer)
    }
}

impl JsonSchema for Bandwidth {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bandwidth".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A rate: a size per second, such as `50MiB/s` or `512KiB/s`.",
            "type": "string",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KMGT]i?B|[KMGT]|B)?/s\\s*$"
        })
    }
}

/// The JSON schema of a manifest, as checked in under `schemas/`.
pub fn manifest_schema() -> schemars::Schema {
    schemars::schema_for!(ManifestSpec)
}

/// The manifest's schema with the keys each mapping accepts, read from it once, so loading
/// holds no second key list that could drift from the types.
pub struct SchemaIndex {
    pub schema: schemars::Schema,
    /// Top-level keys (`version`, `defaults`, `transfers`).
    pub root_keys: Vec<String>,
    /// Keys of one transfer: the transfer-only ones plus every setting.
    pub transfer_keys: Vec<String>,
    /// Keys of `defaults` (the settings).
    pub settings_keys: Vec<String>,
    /// Keys of a copy's `to:`.
    pub copy_to_keys: Vec<String>,
}

impl SchemaIndex {
    /// The doc comment of a transfer or settings key, on one line.
    pub fn description(&self, key: &str) -> Option<String> {
        ["/$defs/Settings/properties/", "/$defs/TransferSpec/properties/"]
            .iter()
            .find_map(|base| self.schema.pointer(&format!("{base}{key}/description")))
            .and_then(|d| d.as_str())
            .map(|d| d.replace('\n', " "))
    }
}

/// The schema index, built on first use.
pub fn schema_index() -> &'static SchemaIndex {
    static INDEX: std::sync::LazyLock<SchemaIndex> = std::sync::LazyLock::new(|| {
        let schema = manifest_schema();
        let keys = |pointer: &str| -> Vec<String> {
            schema
                .pointer(pointer)
                .and_then(|properties| properties.as_object())
                .map(|properties| properties.keys().cloned().collect())
                .unwrap_or_default()
        };
        SchemaIndex {
            root_keys: keys("/properties"),
            transfer_keys: keys("/$defs/TransferSpec/properties"),
            settings_keys: keys("/$defs/Settings/properties"),
            copy_to_keys: keys("/$defs/CopyTo/properties"),
            schema,
        }
    });
    &INDEX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_sizes_per_second() {
        assert_eq!("50MiB/s".parse::<Bandwidth>().unwrap(), Bandwidth(50 * ByteSize::MIB));
        assert_eq!(" 512KiB/s ".parse::<Bandwidth>().unwrap(), Bandwidth(512 * 1024));
        assert!("50MiB".parse::<Bandwidth>().unwrap_err().contains("`50MiB/s`"));
        assert!("0MiB/s".parse::<Bandwidth>().unwrap_err().contains("would move nothing"));
        assert_eq!(Bandwidth(50 * ByteSize::MIB).to_string(), "50MiB/s");
    }

    #[test]
    fn byte_sizes_parse_with_binary_units() {
        assert_eq!("8MiB".parse::<ByteSize>().unwrap(), ByteSize(8 * ByteSize::MIB));
        assert_eq!("512KiB".parse::<ByteSize>().unwrap(), ByteSize(512 * 1024));
        assert_eq!("1048576".parse::<ByteSize>().unwrap(), ByteSize(ByteSize::MIB));
        assert_eq!("1 GiB".parse::<ByteSize>().unwrap(), ByteSize(ByteSize::GIB));
        assert!("eight megs".parse::<ByteSize>().is_err());
    }

    #[test]
    fn transfer_keys_include_settings_keys() {
        let index = schema_index();
        let keys = &index.transfer_keys;
        for key in ["name", "direction", "bucket", "local", "prefix", "extensions", "retries"] {
            assert!(keys.contains(&key.to_string()), "missing {key} in {keys:?}");
        }
        let settings = &index.settings_keys;
        assert!(!settings.contains(&"bucket".to_string()));
        assert_eq!(settings.len(), 44, "{settings:?}");
    }
}
