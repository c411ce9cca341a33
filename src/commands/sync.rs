//! `haul sync SRC DST`: one transfer from the command line, as people type `aws s3 sync`.
//!
//! The flags become a manifest (the text `--save-manifest` writes), which is loaded and
//! checked like any other and run by the same code as `plan` (`--dry-run`) or `apply`: one
//! engine, one set of rules, and a saved manifest that does exactly what the line did.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::apply::{ApplyOptions, apply_manifest, progress_mode};
use super::draft::{self, Draft, Side};
use super::plan::{PlanRequest, plan_manifest};
use super::print_warnings;
use crate::cli::SyncArgs;
use crate::error::{Exit, HaulError};
use crate::manifest::{self, SourceFile};
use crate::render::Style;

pub(super) fn run(args: &SyncArgs, style: Style) -> Result<Exit, HaulError> {
    let text = manifest_text(args, &std::env::current_dir().map_err(HaulError::Runtime)?)?;
    if let Some(path) = &args.save_manifest {
        save(path, &text)?;
    }
    // Problems are shown against the saved file when there is one, else against the text.
    let shown = args.save_manifest.clone().unwrap_or_else(|| PathBuf::from("(haul sync)"));
    let loaded = manifest::load_source(
        SourceFile { path: shown.clone(), text: text.into() },
        Path::new("."),
        &manifest::Moment::now(),
    )?;
    print_warnings(&loaded, style);
    if args.dry_run {
        let request =
            PlanRequest { only: &[], shard: None, output: args.output.output, detailed_exitcode: false, out: None };
        return plan_manifest(&loaded, &shown, &request, style);
    }
    let options = ApplyOptions {
        only: Vec::new(),
        output: args.output.output,
        report: args.report.clone(),
        metrics_file: None,
        lock_file: None,
        progress: progress_mode(args.quiet, 10),
        shard: None,
        manifest: shown,
        // In the manifest already (`bandwidth`).
        bwlimit: None,
        // Loaded already, now.
        at: None,
    };
    // Two syncs of the same source and destination never overlap; others may.
    let route = loaded.jobs.first().map(manifest::Job::route).unwrap_or_default();
    let lock_base = PathBuf::from(format!("/haul-sync/{route}"));
    apply_manifest(&loaded, &lock_base, &options)
}

/// Writes the manifest to `path`, never over an existing file, and says how to run it.
fn save(path: &Path, text: &str) -> Result<(), HaulError> {
    let written = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()));
    match written {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(HaulError::SyncUsage {
                message: format!("`{}` already exists; --save-manifest does not overwrite files", path.display()),
                help: "choose another file name, or remove the file first".into(),
            });
        }
        Err(source) => return Err(HaulError::Write { path: path.to_path_buf(), source }),
    }
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    say!(
        "saved the manifest to {}\n  run it nightly: haul apply {} --quiet   (cron: 0 2 * * * haul apply {} --quiet --report /var/log/haul/report.json)",
        path.display(),
        shown.display(),
        shown.display()
    );
    Ok(())
}

/// The manifest the arguments stand for. Local folders are written absolute, so the saved
/// manifest means the same from cron (which starts elsewhere).
fn manifest_text(args: &SyncArgs, cwd: &Path) -> Result<String, HaulError> {
    if !args.include.is_empty() && args.exclude.iter().any(|pattern| pattern == "*" || pattern == "**") {
        return Err(HaulError::SyncUsage {
            message: "`--exclude '*'` with `--include` would move nothing: in haul an exclude wins over any include, \
                      whatever the order"
                .into(),
            help: "drop `--exclude '*'`: `--include` alone already limits the sync to what it names (aws-cli applies \
                   filters in order; haul does not)"
                .into(),
        });
    }
    if args.no_traverse && args.delete {
        return Err(HaulError::SyncUsage {
            message: "`--no-traverse` with `--delete`: what DST has that SRC does not is found only by listing DST"
                .into(),
            help: "drop `--no-traverse` to delete, or `--delete` to look keys up one by one".into(),
        });
    }
    let draft = Draft {
        name: "sync".into(),
        source: Some(Side::parse(&args.source, Some(cwd))?),
        destination: Some(Side::parse(&args.destination, Some(cwd))?),
        extensions: args.ext.clone(),
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        delete: args.delete,
        max_delete: args.max_delete,
        compare: args.compare.clone(),
        request_payer: args.request_payer.is_some(),
        profile: args.target.profile.clone(),
        region: args.target.region.clone(),
        endpoint: args.target.endpoint.clone(),
        path_style: args.target.path_style,
        concurrency: args.concurrency,
        bandwidth: args.bwlimit.map(|rate| rate.to_string()),
        acl: args.acl.clone(),
        content_type: args.content_type.clone(),
        cache_control: args.cache_control.clone(),
        content_disposition: args.content_disposition.clone(),
        metadata: args.metadata.clone(),
        settings: [
            ("older_than", args.older_than.map(|age| draft::quoted(&age.to_string()))),
            ("newer_than", args.newer_than.map(|age| draft::quoted(&age.to_string()))),
            ("min_size", args.min_size.map(|size| draft::quoted(&size.to_string()))),
            ("max_size", args.max_size.map(|size| draft::quoted(&size.to_string()))),
            ("overwrite", args.overwrite.clone()),
            ("update_properties", args.update_properties.then(|| "true".to_string())),
            ("destination", args.no_traverse.then(|| "head".to_string())),
            ("listing", args.inventory.as_ref().map(|url| format!("{{inventory: {}}}", draft::quoted(url)))),
            ("checksum", args.checksum.clone()),
            ("ca_bundle", args.target.ca_bundle.as_ref().map(|path| draft::quoted(&path.to_string_lossy()))),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect(),
        ..Draft::default()
    };
    let command: Vec<String> = std::env::args().collect();
    let header = [
        "Written by `haul sync` from:".to_string(),
        format!("  {}", command.join(" ")),
        "Check it: haul validate FILE   preview: haul plan FILE   run it: haul apply FILE".to_string(),
    ];
    draft::manifest(&header, &[draft])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(line: &[&str]) -> SyncArgs {
        let mut all = vec!["haul", "sync"];
        all.extend_from_slice(line);
        match crate::cli::Cli::try_parse_from(all).unwrap().command {
            crate::cli::Command::Sync(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    fn loaded(line: &[&str]) -> manifest::Manifest {
        let text = manifest_text(&args(line), Path::new("/work")).unwrap();
        manifest::load_source(
            SourceFile { path: "m.yaml".into(), text: text.into() },
            Path::new("/"),
            &manifest::Moment::now(),
        )
        .unwrap_or_else(|err| panic!("{err:?}"))
    }

    #[test]
    fn the_nightly_flags_become_settings() {
        let manifest = loaded(&[
            "./out",
            "s3://partner-inbox/from-us/",
            "--older-than",
            "10m",
            "--newer-than",
            "1d",
            "--min-size",
            "1",
            "--max-size",
            "10GiB",
            "--overwrite",
            "never",
            "--acl",
            "bucket-owner-full-control",
            "--content-type",
            "text/csv",
            "--cache-control",
            "max-age=60",
            "--content-disposition",
            "attachment",
            "--metadata",
            "team=analytics,source=nightly",
            "--metadata",
            "owner=data",
            "--update-properties",
        ]);
        let job = &manifest.jobs[0];
        assert_eq!((job.window.min_size, job.window.max_size), (Some(1), Some(10 * manifest::ByteSize::GIB)));
        let (by, since) = (job.window.modified_by_ms.unwrap(), job.window.modified_since_ms.unwrap());
        assert_eq!(by - since, 86_400_000 - 600_000);
        assert_eq!(job.overwrite, manifest::Overwrite::Never);
        assert_eq!(job.upload.acl, Some(manifest::CannedAcl::BucketOwnerFullControl));
        assert_eq!(job.upload.content_type.as_deref(), Some("text/csv"));
        assert_eq!(job.upload.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(job.upload.content_disposition.as_deref(), Some("attachment"));
        let metadata = job.upload.metadata.clone().unwrap();
        let pairs: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("owner", "data"), ("source", "nightly"), ("team", "analytics")]);
        assert!(job.update_properties);
        let bad = crate::cli::Cli::try_parse_from(["haul", "sync", "a", "s3://b/", "--metadata", "novalue"]);
        assert!(bad.unwrap_err().to_string().contains("`novalue` is not KEY=VALUE"));
    }

    #[test]
    fn the_seed_command_line_becomes_a_download_with_its_filters() {
        let manifest = loaded(&[
            "s3://analytics-exports/reports/",
            "./data",
            "--request-payer",
            "requester",
            "--ext",
            "csv,parquet",
            "--delete",
            "--max-delete",
            "10",
            "--bwlimit",
            "20MiB/s",
        ]);
        let job = &manifest.jobs[0];
        assert_eq!(job.direction, manifest::Direction::Download);
        assert_eq!((job.bucket.as_str(), job.prefix.as_str()), ("analytics-exports", "reports/"));
        assert_eq!(job.local, Path::new("/work/data"));
        assert_eq!(job.filter_summary.extensions, ["csv", "parquet"]);
        assert!(job.target.request_payer && job.delete && job.max_delete == Some(10));
        assert_eq!(job.bandwidth, Some(20 * 1024 * 1024));
    }

    #[test]
    fn every_pair_of_sides_has_its_direction() {
        assert_eq!(loaded(&["./out", "s3://bkt/p/"]).jobs[0].direction, manifest::Direction::Upload);
        let copy =
            loaded(&["s3://src-b/x/", "s3://dst-b/y/", "--endpoint-url", "http://127.0.0.1:9000", "--path-style"]);
        let job = &copy.jobs[0];
        assert_eq!(job.direction, manifest::Direction::Copy);
        assert_eq!(job.to.as_ref().map(|to| (to.bucket.as_str(), to.prefix.as_str())), Some(("dst-b", "y/")));
        assert_eq!(job.target.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let both_local = manifest_text(&args(&["./a", "./b"]), Path::new("/w")).unwrap_err();
        assert!(both_local.to_string().contains("both sides are local folders"));
    }

    #[test]
    fn no_traverse_and_inventory_become_the_huge_bucket_settings() {
        let manifest =
            loaded(&["./out", "s3://lake/events/", "--no-traverse", "--inventory", "s3://inventories/lake/daily/"]);
        let job = &manifest.jobs[0];
        assert_eq!(job.destination, manifest::DestinationCheck::Head);
        let inventory = job.inventory.as_ref().expect("an inventory");
        assert_eq!((inventory.bucket.as_str(), inventory.key.as_str()), ("inventories", "lake/daily/"));
        let err = manifest_text(
            &args(&["./o", "s3://l/e/", "--no-traverse", "--delete", "--max-delete", "5"]),
            Path::new("/w"),
        );
        assert!(err.unwrap_err().to_string().contains("`--no-traverse` with `--delete`"));
        let plain = loaded(&["./out", "s3://lake/events/"]);
        assert_eq!(plain.jobs[0].destination, manifest::DestinationCheck::List);
        assert!(plain.jobs[0].inventory.is_none());
    }

    #[test]
    fn aws_style_exclude_everything_then_include_is_explained_not_run() {
        let err =
            manifest_text(&args(&["s3://bkt/p/", "./d", "--exclude", "*", "--include", "*.csv"]), Path::new("/w"))
                .unwrap_err();
        assert!(err.to_string().contains("would move nothing"), "{err}");
        assert!(err.help().unwrap().contains("drop `--exclude '*'`"));
    }

    #[test]
    fn odd_text_stays_one_value() {
        let manifest = loaded(&["s3://bkt/a: b #c/", "./매출 \"2026\"", "--include", "x: [y]"]);
        let job = &manifest.jobs[0];
        assert_eq!(job.prefix, "a: b #c/");
        assert_eq!(job.local, Path::new("/work/매출 \"2026\""));
        assert_eq!(job.filter_summary.include, ["x: [y]"]);
    }
}
