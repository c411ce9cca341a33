//! `--metrics-file`: the run in the Prometheus text format, for node_exporter's textfile
//! collector (or anything else that reads it). Written to a temp file beside the target and
//! renamed, so the collector never reads half a file.
//!
//! Every series carries the manifest's file name (and the shard, when sharded), so several
//! manifests can write files into one collector folder without clashing.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{Encoder as _, GaugeVec, Opts, Registry, TextEncoder};

use crate::report::RunReport;
use crate::shard::Shard;

/// What one run of `apply` tells the metrics file.
pub struct RunMetrics<'a> {
    /// The manifest (its file name becomes the `manifest` label).
    pub manifest: &'a Path,
    pub shard: Option<Shard>,
    pub started: SystemTime,
    pub finished: SystemTime,
    /// The process's exit code.
    pub exit_code: u8,
    /// The report, when the run got as far as transferring (not for an invalid manifest, say).
    pub report: Option<&'a RunReport>,
}

/// The metric that survives failed runs: read back from the previous file.
const LAST_SUCCESS: &str = "haul_last_success_timestamp_seconds";

/// Writes the metrics of `run` to `path` (whole, by rename: see [`crate::output_file`]).
pub fn write(path: &Path, run: &RunMetrics) -> std::io::Result<()> {
    let previous_success = std::fs::read_to_string(path).ok().and_then(|text| last_success(&text));
    let text = render(run, previous_success).map_err(std::io::Error::other)?;
    crate::output_file::write(path, text.as_bytes())
}

/// The text of the metrics file.
pub fn render(run: &RunMetrics, previous_success: Option<f64>) -> prometheus::Result<String> {
    let manifest =
        run.manifest.file_name().map_or_else(|| run.manifest.to_string_lossy(), |name| name.to_string_lossy());
    // Plain labels, not the registry's constant ones (kept in a hash map): the encoder sorts
    // plain labels by name, so the file reads the same from run to run.
    let shard = run.shard.map(|shard| shard.to_string());
    let mut names = vec!["manifest"];
    let mut values = vec![manifest.as_ref()];
    if let Some(shard) = &shard {
        names.push("shard");
        values.push(shard.as_str());
    }
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, value: f64| -> prometheus::Result<()> {
        let gauge = GaugeVec::new(Opts::new(name, help), &names)?;
        gauge.with_label_values(&values).set(value);
        registry.register(Box::new(gauge))
    };
    let seconds = |time: SystemTime| time.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let succeeded = run.exit_code == 0;
    gauge("haul_last_run_start_timestamp_seconds", "When the last run started.", seconds(run.started))?;
    gauge("haul_last_run_end_timestamp_seconds", "When the last run ended.", seconds(run.finished))?;
    let duration = run.finished.duration_since(run.started).map_or(0.0, |d| d.as_secs_f64());
    gauge("haul_last_run_duration_seconds", "How long the last run took.", duration)?;
    gauge(
        "haul_last_run_success",
        "1 when the last run moved everything it planned, else 0.",
        f64::from(u8::from(succeeded)),
    )?;
    gauge("haul_last_run_exit_code", "The exit code of the last run (see haul --help).", f64::from(run.exit_code))?;
    let last_success = if succeeded { Some(seconds(run.finished)) } else { previous_success };
    if let Some(time) = last_success {
        gauge(LAST_SUCCESS, "When a run last succeeded (kept across failed runs).", time)?;
    }
    if let Some(report) = run.report {
        let objects = GaugeVec::new(
            Opts::new("haul_last_run_objects", "Objects per transfer and outcome in the last run."),
            &[&names[..], &["transfer", "outcome"]].concat(),
        )?;
        let bytes = GaugeVec::new(
            Opts::new("haul_last_run_bytes", "Bytes per transfer and outcome in the last run."),
            &[&names[..], &["transfer", "outcome"]].concat(),
        )?;
        let in_flight = GaugeVec::new(
            Opts::new(
                "haul_last_run_objects_in_flight",
                "Objects in flight per transfer when it ended (with `concurrency: auto`, the level it found).",
            ),
            &[&names[..], &["transfer"]].concat(),
        )?;
        let slowed = GaugeVec::new(
            Opts::new(
                "haul_last_run_slow_down_answers",
                "Answers asking to slow down (503, 429) per transfer in the last run, retries included.",
            ),
            &[&names[..], &["transfer"]].concat(),
        )?;
        for transfer in &report.transfers {
            if let Some(level) = &transfer.concurrency {
                let labels = [&values[..], &[transfer.name.as_str()]].concat();
                in_flight.with_label_values(&labels).set(f64::from(level.settled));
                slowed.with_label_values(&labels).set(level.slow_down_answers as f64);
            }
            // Another shard's keys are that shard's to count.
            let skipped = transfer.skipped.iter().filter(|(slug, _)| *slug != "other-shard").fold(
                crate::plan::Tally::default(),
                |sum, (_, tally)| crate::plan::Tally {
                    objects: sum.objects + tally.objects,
                    bytes: sum.bytes + tally.bytes,
                },
            );
            for (outcome, tally) in [
                ("moved", transfer.moved),
                ("properties_updated", transfer.properties_updated),
                ("skipped", skipped),
                ("failed", transfer.failed),
                ("deleted", transfer.deleted),
                ("interrupted", transfer.interrupted),
                ("left_at_deadline", transfer.left_at_deadline),
            ] {
                let labels = [&values[..], &[transfer.name.as_str(), outcome]].concat();
                objects.with_label_values(&labels).set(tally.objects as f64);
                bytes.with_label_values(&labels).set(tally.bytes as f64);
            }
            // Of the moved bytes, those an earlier attempt or run had moved (not moved again).
            let labels = [&values[..], &[transfer.name.as_str(), "resumed"]].concat();
            bytes.with_label_values(&labels).set(transfer.bytes_resumed as f64);
        }
        registry.register(Box::new(objects))?;
        registry.register(Box::new(bytes))?;
        registry.register(Box::new(in_flight))?;
        registry.register(Box::new(slowed))?;
    }
    let mut out = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    String::from_utf8(out).map_err(|err| prometheus::Error::Msg(err.to_string()))
}

/// The last-success time in an earlier metrics file.
fn last_success(text: &str) -> Option<f64> {
    text.lines().filter(|line| line.starts_with(LAST_SUCCESS)).find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exit_code: u8) -> RunMetrics<'static> {
        RunMetrics {
            manifest: Path::new("/etc/haul/nightly.yaml"),
            shard: Shard::new(1, 4).ok(),
            started: UNIX_EPOCH + std::time::Duration::from_secs(1_000),
            finished: UNIX_EPOCH + std::time::Duration::from_secs(1_090),
            exit_code,
            report: None,
        }
    }

    #[test]
    fn the_last_success_is_kept_across_failures_and_moved_by_a_success() {
        let failed = render(&run(1), None).unwrap();
        assert_eq!(value(&failed, "haul_last_run_success"), Some("0"), "{failed}");
        // Labels sorted by name, the same every run (the file diffs cleanly).
        assert!(failed.contains("haul_last_run_success{manifest=\"nightly.yaml\",shard=\"1/4\"} 0"), "{failed}");
        assert!(!failed.contains(LAST_SUCCESS), "no success yet: {failed}");
        let succeeded = render(&run(0), None).unwrap();
        assert_eq!(last_success(&succeeded), Some(1_090.0));
        let failed_later = render(&run(1), last_success(&succeeded)).unwrap();
        assert_eq!(last_success(&failed_later), Some(1_090.0));
        assert_eq!(value(&failed_later, "haul_last_run_duration_seconds"), Some("90"));
    }

    /// The value of a metric, after checking that it carries the manifest and shard labels.
    fn value<'a>(text: &'a str, metric: &str) -> Option<&'a str> {
        let line = text.lines().find(|line| line.starts_with(&format!("{metric}{{")))?;
        assert!(line.contains("manifest=\"nightly.yaml\"") && line.contains("shard=\"1/4\""), "{line}");
        line.rsplit(' ').next()
    }
}
