//! haul: declarative S3 transfers.
//!
//! The pipeline is manifest → listing → plan → exec → report, one module per stage (see
//! docs/ARCHITECTURE.md). `run` is what the binary calls; integration tests call the same code.

// haul relies on Unix file semantics: a rename that replaces a file atomically, fsync of a
// folder, `kill(pid, 0)` to tell a dead run's temp files, SIGTERM, `faccessat`, `mallopt`.
// Said here, once, rather than deep in a libc call.
#[cfg(not(unix))]
compile_error!(
    "haul builds on Unix-like systems only (Linux, where it is tested; macOS builds from source). \
     Windows is not supported: haul relies on atomic renames over existing files, fsync of folders, \
     process ids and Unix signals. On Windows, run it in WSL 2."
);

pub mod advice;
pub mod ca_bundle;
pub mod checksum;
pub mod cli;
pub mod content_check;
pub mod engine;
pub mod error;
pub mod etag;
pub mod exec;
pub mod filter;
pub mod interrupt;
pub mod limits;
pub mod listing;
pub mod lock;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod object_properties;
pub mod output_file;
pub mod plan;
pub mod progress;
pub mod render;
pub mod report;
pub mod s3;
pub mod shard;
pub mod text;

mod commands;

pub use error::{Exit, HaulError};

/// Runs one parsed command line. Output goes to stdout; the caller renders the error.
pub fn run(cli: cli::Cli, style: render::Style) -> Result<Exit, HaulError> {
    logging::init(cli.log_level, cli.log_format, cli.log_file.as_deref())
        .map_err(|source| HaulError::Write { path: cli.log_file.clone().unwrap_or_default(), source })?;
    limits::raise_open_files();
    commands::run(cli, style)
}
