//! Diagnostics through `tracing`: `--log-level`, `--log-format text|json`, `--log-file PATH`.
//! Logs go to stderr (plain, no colors unless a terminal) or to the file, never to stdout,
//! which belongs to reports and JSON.
//!
//! Of the SDK's own events only the retry decisions come through at `debug`: its orchestrator
//! dumps the request's whole config at `debug`, the resolved identity with the full access
//! key id included, and `trace` prints signed headers. Timings come from haul's own events.

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// The filter for a level: haul at `level`, the SDK's retry decisions at most at `debug`,
/// everything else (SDK orchestration, HTTP internals, signing) at most at `warn`.
pub fn filter(level: LogLevel) -> String {
    let haul = level.as_str();
    let sdk = match level {
        LogLevel::Trace | LogLevel::Debug => "debug",
        other => other.as_str(),
    };
    // Other crates' warnings (a missing ~/.aws/config named by AWS_CONFIG_FILE, say) show
    // from `info` up; by default only their errors do.
    let others = match level {
        LogLevel::Error | LogLevel::Warn => "error",
        _ => "warn",
    };
    format!("{others},haul={haul},aws_smithy_runtime::client::retries={sdk},aws_sigv4=off")
}

/// Installs the global subscriber. With `file`, logs are appended there.
pub fn init(level: LogLevel, format: LogFormat, file: Option<&Path>) -> std::io::Result<()> {
    let (writer, ansi) = match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
        }
        None => {
            use std::io::IsTerminal as _;
            (BoxMakeWriter::new(std::io::stderr), std::io::stderr().is_terminal())
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(filter(level))).with_writer(writer);
    let result = match format {
        LogFormat::Text => builder.with_ansi(ansi).with_target(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    // Already installed (a test calling `run` twice): keep the first.
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_keep_other_crates_quiet_by_default() {
        for level in [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace] {
            let parsed = EnvFilter::try_new(filter(level));
            assert!(parsed.is_ok(), "{}: {parsed:?}", filter(level));
        }
        assert_eq!(filter(LogLevel::Warn), "error,haul=warn,aws_smithy_runtime::client::retries=warn,aws_sigv4=off");
    }
}
