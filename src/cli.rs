//! Command-line definitions: every flag and its help text live here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::logging::{LogFormat, LogLevel};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  some actions failed, or a runtime error
  2  invalid manifest or usage
  3  changes pending (plan --detailed-exitcode)
  4  saved plan is stale
  5  another run holds the lock
  130 interrupted

Examples:
  haul init haul.yaml            write a commented starter manifest
  haul validate haul.yaml        check it; every problem with file:line:column
  haul plan haul.yaml            what would move, and why (changes nothing)
  haul apply haul.yaml           do it
  haul sync s3://bucket/reports/ ./data --ext csv,parquet --save-manifest nightly.yaml
                                 one transfer without a manifest (and the manifest for cron)
  haul whoami                    which credentials, account and owner ID are in use
  haul check haul.yaml           can these credentials do what the manifest asks?
  haul apply haul.yaml --shard auto   one copy of a Kubernetes / AWS Batch / Slurm array
  haul schema > manifest.schema.json";

/// Declarative S3 transfers: one YAML manifest, validated, planned and applied.
#[derive(Debug, Parser)]
#[command(name = "haul", version = env!("HAUL_VERSION"), about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// When to use colors in messages.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// How much to log: `info` says what each transfer does, `debug` each object with its
    /// attempts and timings, and the SDK's retries.
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,

    /// Log lines as text, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Append logs to this file instead of stderr.
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Where to send requests, for commands that take no manifest.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// A profile from ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE, or `default`).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The region (default: AWS_REGION, AWS_DEFAULT_REGION, or the profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// An S3-compatible endpoint, such as http://127.0.0.1:9000 (`--endpoint-url`, aws-cli's
    /// spelling, works too).
    #[arg(long, value_name = "URL", visible_alias = "endpoint-url")]
    pub endpoint: Option<String>,
    /// Address buckets as endpoint/bucket (most S3-compatible servers want this).
    #[arg(long)]
    pub path_style: bool,
    /// Check an https endpoint's certificate against this CA bundle (PEM) instead of the
    /// system's store (default: AWS_CA_BUNDLE, or the profile's `ca_bundle`).
    #[arg(long, value_name = "PEM", value_parser = parse_ca_bundle)]
    pub ca_bundle: Option<PathBuf>,
}

/// A CA bundle that can be used, as an absolute path (a saved manifest names it from cron's
/// folder too).
fn parse_ca_bundle(text: &str) -> Result<PathBuf, String> {
    let path = std::path::absolute(text).map_err(|err| err.to_string())?;
    crate::ca_bundle::read(&path).map_err(|problem| problem.to_string())?;
    Ok(path)
}

/// Which transfers of a manifest a command runs (`plan`, `apply`, `check`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OnlyArgs {
    /// Only the transfer with this name (repeatable; all of them without it). Not with a
    /// saved plan, which is applied whole.
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
}

/// The moment a manifest's dates (`{date}` in paths) and ages (`older_than`) are read at.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AtArgs {
    /// Run as of another time (backfill): `2026-11-30T02:00Z`, `2026-11-30T11:00+09:00`, or
    /// `2026-11-30` / `2026-11-30T02:00` (that wall time in each transfer's `timezone`).
    /// Default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_moment)]
    pub at: Option<crate::manifest::Moment>,
}

impl AtArgs {
    /// `--at`, or now.
    pub fn moment(&self) -> crate::manifest::Moment {
        self.at.clone().unwrap_or_else(crate::manifest::Moment::now)
    }
}

fn parse_moment(text: &str) -> Result<crate::manifest::Moment, String> {
    crate::manifest::Moment::parse(text)
}

/// How a command prints its result (`plan`, `apply`'s report, `check`).
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// A table for people, or JSON for programs, on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// A manifest, the transfers of it to run, and how to print the result (`plan`, `check`).
#[derive(Debug, Clone, clap::Args)]
pub struct ManifestArgs {
    /// The manifest file (YAML, version 1).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub only: OnlyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub at: AtArgs,
}

/// Splitting one manifest across several copies of haul.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShardArgs {
    /// Move only this copy's share of the keys: `INDEX/COUNT` (from 0, such as `2/8`), or
    /// `auto` to read it from a Kubernetes Indexed Job, an AWS Batch array job or a Slurm array.
    /// Each key belongs to exactly one shard (a stable hash of transfer name and key). On a
    /// saved plan made for every key (`apply PLAN.json --shard`), this copy's share of the
    /// plan's actions, checked object by object instead of listed.
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// The shard count for `--shard auto` where the engine gives only the index (Kubernetes:
    /// the Job's `completions`); also read from HAUL_SHARD_COUNT.
    #[arg(long, value_name = "N", requires = "shard")]
    pub shard_count: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests: YAML, keys, values, S3 naming rules, overlapping destinations.
    ///
    /// Prints one line per transfer, or every problem found with file:line:column and how to
    /// fix it. Exits 2 when any manifest is invalid. Touches no network.
    #[command(after_help = "Example:\n  haul validate examples/*.yaml")]
    Validate(ValidateArgs),

    /// Show what apply would do: list both sides, diff them, print every action and skip.
    ///
    /// A dry run: reads listings only, changes nothing. Memory stays flat however many objects
    /// there are (the listings are merged as sorted streams).
    #[command(
        after_help = "Examples:\n  haul plan nightly.yaml\n  haul plan nightly.yaml --only daily-reports --output json\n  haul plan nightly.yaml --detailed-exitcode   # 0: nothing to do, 3: changes pending"
    )]
    Plan(PlanArgs),

    /// Carry out a manifest (plan, then transfer) or a plan saved with `haul plan -o`.
    ///
    /// Objects move in parallel (`concurrency` per transfer, found as it runs unless fixed); a
    /// failed object is recorded and the run goes on. A saved plan is checked first: when any object it acts on changed since,
    /// nothing is written and haul exits 4. Exits 1 when any object failed.
    #[command(
        after_help = "Examples:\n  haul apply nightly.yaml\n  haul apply nightly.yaml --only daily-reports --report run.json\n  haul plan nightly.yaml -o plan.json && haul apply plan.json\n  haul apply nightly.yaml --quiet --metrics-file /var/lib/node_exporter/textfile/haul.prom\n  haul apply nightly.yaml --shard auto --report report-{shard}.json   # one copy of an array job"
    )]
    Apply(ApplyArgs),

    /// Sync one source into one destination without writing a manifest first, like `aws s3
    /// sync`: SRC and DST are each `s3://bucket/prefix` or a local folder.
    ///
    /// The same engine, report, exit codes and lock as `apply`, with haul's filter rules (an
    /// exclude wins over any include, whatever the order). `--save-manifest` writes the
    /// equivalent manifest, to run nightly with `haul apply`.
    #[command(
        after_help = "Examples:\n  haul sync s3://analytics-exports/reports/ ./data --ext csv,parquet --request-payer requester\n  haul sync ./out s3://analytics-results/out/ --delete --max-delete 100 --dry-run\n  haul sync s3://partner-exports/reports/ s3://our-archive/partner/\n  haul sync s3://b/reports/ ./data --ext csv --save-manifest nightly.yaml   # then: haul apply nightly.yaml"
    )]
    Sync(Box<SyncArgs>),

    /// Turn `aws s3 sync` / `aws s3 cp --recursive` command lines (a script, a crontab, shell
    /// history; `-` for stdin) into a manifest, one transfer per command.
    ///
    /// aws-cli's ordered filters become haul's include/exclude/extensions where the meaning
    /// is the same; what cannot be carried over is named on stderr and as a comment above its
    /// transfer. The manifest is checked before it is written.
    #[command(
        after_help = "Examples:\n  crontab -l | haul import - -o nightly.yaml\n  haul import sync-reports.sh > nightly.yaml"
    )]
    Import(ImportArgs),

    /// Who am I: where the credentials come from, the masked access key, the region, the
    /// caller identity (STS) and the canonical user ID (the owner ID in S3 ACLs).
    ///
    /// With `--manifest`, the same for every distinct profile / region / endpoint it uses.
    /// The secret key is never shown.
    #[command(
        after_help = "Examples:\n  haul whoami\n  haul whoami --profile analytics\n  haul whoami --manifest nightly.yaml --output json"
    )]
    Whoami(WhoamiArgs),

    /// List buckets, or the objects and folders under s3://bucket/prefix (like `aws s3 ls`).
    ///
    /// Streams page by page: a million keys are never held at once.
    #[command(
        after_help = "Examples:\n  haul ls\n  haul ls s3://analytics-exports/reports/\n  haul ls s3://analytics-exports/reports/ --recursive --human-readable --summarize\n  haul ls s3://shared-data/ --request-payer --owner"
    )]
    Ls(LsArgs),

    /// Check a manifest against the account without moving anything: buckets and regions,
    /// listing rights, read rights per extension, write rights, object owners.
    ///
    /// Exits 1 when any check fails. Creates no object: the write check starts a multipart
    /// upload (same permission as a PUT) and aborts it.
    #[command(
        after_help = "Examples:\n  haul check nightly.yaml\n  haul check nightly.yaml --only daily-reports --output json"
    )]
    Check(CheckArgs),

    /// Print the manifest's JSON schema (for editors: yaml-language-server, VS Code).
    #[command(after_help = "Example:\n  haul schema > schemas/manifest.schema.json")]
    Schema,

    /// Write a commented starter manifest. Never overwrites an existing file.
    #[command(after_help = "Example:\n  haul init nightly.yaml && $EDITOR nightly.yaml")]
    Init(InitArgs),

    /// Print shell completions for haul (from the same definitions as --help).
    #[command(after_help = "Examples:\n  haul completions bash > /etc/bash_completion.d/haul\n  \
                            haul completions zsh > \"${fpath[1]}/_haul\"\n  \
                            haul completions fish > ~/.config/fish/completions/haul.fish")]
    Completions(CompletionsArgs),

    /// Print haul's man page (roff), generated from the same definitions as --help.
    #[command(after_help = "Example:\n  haul man > /usr/local/share/man/man1/haul.1 && man haul")]
    Man,
}

/// The arguments of `haul validate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files to check.
    #[arg(required = true, value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
    #[command(flatten)]
    pub at: AtArgs,
}

/// The arguments of `haul plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: ManifestArgs,
    /// Exit 3 when anything would change, 0 when nothing would.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE, for `haul apply FILE` to carry out exactly. `{shard}` in
    /// the name becomes the shard (`2-of-4`).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// The arguments of `haul apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// A manifest, or a plan file written by `haul plan -o`.
    #[arg(value_name = "MANIFEST|PLAN")]
    pub target: PathBuf,
    #[command(flatten)]
    pub only: OnlyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub at: AtArgs,
    /// Also write the run report as JSON to FILE. `{shard}` in the name becomes the shard
    /// (`2-of-4`, or `all`).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write Prometheus metrics of the run to FILE (for node_exporter's textfile collector;
    /// written to a temp file and renamed). `{shard}` works as in `--report`.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// No progress; only the report (and errors).
    #[arg(short, long)]
    pub quiet: bool,
    /// Seconds between progress lines when stderr is not a terminal (cron, pipes).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub progress_interval: u64,
    /// The most bytes per second each transfer moves through haul (`50MiB/s`), shared by its
    /// workers; overrides the manifest's `bandwidth`.
    #[arg(long, value_name = "RATE", value_parser = parse_bandwidth)]
    pub bwlimit: Option<crate::manifest::Bandwidth>,
    /// The run lock (default: one per manifest in $XDG_RUNTIME_DIR or the temp folder).
    /// Shards also lock `PATH` shared and `PATH.shard-I-of-N.lock` exclusively.
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArgs,
}

fn parse_bandwidth(text: &str) -> Result<crate::manifest::Bandwidth, String> {
    text.parse()
}

fn parse_age(text: &str) -> Result<crate::manifest::Age, String> {
    text.parse()
}

fn parse_size(text: &str) -> Result<crate::manifest::ByteSize, String> {
    text.parse()
}

fn parse_concurrency(text: &str) -> Result<crate::manifest::Concurrency, String> {
    text.parse()
}

/// The arguments of `haul sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Where from: `s3://bucket/prefix/` or a local folder.
    #[arg(value_name = "SRC")]
    pub source: String,
    /// Where to: `s3://bucket/prefix/` or a local folder.
    #[arg(value_name = "DST")]
    pub destination: String,
    /// Only these file types, without the dot (`--ext csv,parquet`).
    #[arg(long, value_name = "EXT,...", value_delimiter = ',')]
    pub ext: Vec<String>,
    /// Only names matching this glob (repeatable); without `/` it matches the file name at any
    /// depth, with `/` the path from the root, `**` crosses folders.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out names matching this glob (repeatable); an exclude wins over any include.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Also remove from DST what SRC no longer has (needs `--max-delete`).
    #[arg(long, requires = "max_delete")]
    pub delete: bool,
    /// The most objects this run may delete; a plan deleting more stops before anything moves.
    #[arg(long, value_name = "N", requires = "delete")]
    pub max_delete: Option<u64>,
    /// How to decide that an object is unchanged (default: size-mtime).
    #[arg(long, value_name = "MODE", value_parser = ["size-mtime", "size", "checksum", "always"])]
    pub compare: Option<String>,
    /// `requester`: accept the request charges of a requester-pays source bucket.
    #[arg(long, value_name = "requester", num_args = 0..=1, default_missing_value = "requester", value_parser = ["requester"])]
    pub request_payer: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Objects in flight at once: `auto` (the default: from 64, more while it pays, fewer when
    /// the server asks to slow down) or a fixed number from 1 to 1024.
    #[arg(long, value_name = "N|auto", value_parser = parse_concurrency)]
    pub concurrency: Option<crate::manifest::Concurrency>,
    /// The most bytes per second to move through haul (`50MiB/s`), shared by all workers.
    #[arg(long, value_name = "RATE", value_parser = parse_bandwidth)]
    pub bwlimit: Option<crate::manifest::Bandwidth>,
    /// Only files modified at least this long ago (`10m`): files still being written wait.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<crate::manifest::Age>,
    /// Only files modified within this long (`25h`).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub newer_than: Option<crate::manifest::Age>,
    /// Only files of at least this size (`1` skips empty files).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub min_size: Option<crate::manifest::ByteSize>,
    /// Only files of at most this size (`10GiB`).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<crate::manifest::ByteSize>,
    /// When an object DST has may be replaced (default: always).
    #[arg(long, value_name = "MODE", value_parser = ["always", "never", "if_newer"])]
    pub overwrite: Option<String>,
    /// A canned ACL for what is written (`bucket-owner-full-control`).
    #[arg(long, value_name = "ACL", value_parser = ["private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control"])]
    pub acl: Option<String>,
    /// Content-Type of what is written (default: guessed from the extension for uploads, the
    /// source's for copies).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Cache-Control of what is written (`max-age=3600`).
    #[arg(long, value_name = "VALUE")]
    pub cache_control: Option<String>,
    /// Content-Disposition of what is written (`attachment`).
    #[arg(long, value_name = "VALUE")]
    pub content_disposition: Option<String>,
    /// User metadata of what is written, as aws-cli takes it: `team=analytics,source=nightly`
    /// (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_delimiter = ',', value_parser = metadata_pair)]
    pub metadata: Vec<(String, String)>,
    /// Also compare the properties these flags set on objects DST has unchanged, and update
    /// those that differ in place (a HEAD per such object; no bytes sent again).
    #[arg(long)]
    pub update_properties: bool,
    /// Look each source key up at DST (a HEAD per object, or a file's metadata) instead of
    /// listing DST, as rclone's `--no-traverse`: for a few files into a huge bucket. Not with
    /// `--delete`.
    #[arg(long)]
    pub no_traverse: bool,
    /// List the bucket side (for a bucket-to-bucket sync, SRC) from this S3 Inventory report
    /// instead of ListObjectsV2: the report's `manifest.json`, or its configuration's folder
    /// (the newest report is read); one older than 48 hours is refused.
    #[arg(long, value_name = "S3_URL")]
    pub inventory: Option<String>,
    /// The checksum header bodies written go with: `crc32c` (the default), `crc64nvme`, or
    /// `off` for services that refuse checksum headers (bodies then go with Content-MD5).
    #[arg(long, value_name = "MODE", value_parser = ["crc32c", "crc64nvme", "off"])]
    pub checksum: Option<String>,
    /// Print the plan, as `haul plan` does, and move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the equivalent manifest to FILE (never overwrites one), for `haul apply FILE`
    /// from cron.
    #[arg(long, value_name = "FILE")]
    pub save_manifest: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// No progress; only the report (and errors).
    #[arg(short, long)]
    pub quiet: bool,
    /// Also write the run report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// The arguments of `haul import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// A file with aws-cli command lines, or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
    /// Write the manifest to FILE (never over an existing one) instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The arguments of `haul whoami`.
#[derive(Debug, Clone, clap::Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Check the credentials of every transfer in this manifest.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["profile", "region", "endpoint", "ca_bundle"])]
    pub manifest: Option<PathBuf>,
    /// A table for people, or JSON for programs, on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The arguments of `haul ls`.
#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    /// `s3://bucket` or `s3://bucket/prefix`; without it, the buckets.
    #[arg(value_name = "S3_URL")]
    pub url: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Every object under the prefix, not just one level.
    #[arg(short, long)]
    pub recursive: bool,
    /// Sizes as `1.5 MiB`.
    #[arg(long)]
    pub human_readable: bool,
    /// Print the object count and total size at the end.
    #[arg(long)]
    pub summarize: bool,
    /// Show each object's owner ID.
    #[arg(long)]
    pub owner: bool,
    /// Accept the request charges of a requester-pays bucket.
    #[arg(long)]
    pub request_payer: bool,
    /// A table for people, or JSON lines for programs (`last_modified` in RFC 3339, UTC).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The arguments of `haul check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: ManifestArgs,
}

/// The arguments of `haul init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "haul.yaml", value_name = "FILE")]
    pub path: PathBuf,
}

/// The arguments of `haul completions`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// `key=value`, one `--metadata` pair.
fn metadata_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}
