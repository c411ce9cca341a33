//! haul: declarative S3 transfers.
//!
//! The pipeline is manifest → listing → plan → exec → report, one module per stage (see
//! docs/ARCHITECTURE.md). `run` is what the binary calls; integration tests call the same code.

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
