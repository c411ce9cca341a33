//! haul's top-level error and its exit codes: a public contract that cron scripts rely on.

use std::path::PathBuf;

use crate::advice::SetIn;

use crate::manifest::ManifestError;

/// What the process exits with. Documented in the README; extend, never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Success = 0,
    /// Some actions failed, or a runtime error.
    Failure = 1,
    /// Invalid manifest or usage.
    Invalid = 2,
    /// Changes pending (`plan --detailed-exitcode` only).
    ChangesPending = 3,
    /// A saved plan is stale.
    StalePlan = 4,
    /// Another run holds the lock.
    Locked = 5,
    /// A transfer's deadline came before it was done (nothing failed): the report says what
    /// is left, and the next run continues it.
    Deadline = 6,
    /// Interrupted by SIGINT / SIGTERM.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Everything that can stop a haul command.
#[derive(Debug, thiserror::Error)]
pub enum HaulError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("`{}` already exists; haul init does not overwrite files", path.display())]
    InitTargetExists { path: PathBuf },
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// Standard output could not be written. A reader that went away (`haul ls | head`) is
    /// this error too, but ends the command quietly and successfully (see `is_closed_output`),
    /// as in ripgrep: only other failures (a full disk) are shown.
    #[error("cannot write to standard output: {source}")]
    Output { source: std::io::Error },
    #[error("no transfer named `{name}` in the manifest")]
    UnknownTransfer { name: String, known: Vec<String> },
    #[error("transfer `{transfer}`: cannot read local folder `{}`: {source}", path.display())]
    LocalFolder { transfer: String, path: PathBuf, source: std::io::Error },
    #[error("transfer `{transfer}`: {source}")]
    Listing { transfer: String, source: crate::listing::remote::ListError },
    #[error("transfer `{transfer}`: {source}")]
    Inventory { transfer: String, source: crate::listing::inventory::InventoryError },
    #[error("transfer `{transfer}`: its filter cannot be compiled: {source}")]
    Filter { transfer: String, source: crate::filter::PatternError },
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("`{}` is not a usable plan: {source}", path.display())]
    PlanFile { path: PathBuf, source: crate::plan::PlanFileError },
    #[error("`--only` applies to manifests; a saved plan is applied whole")]
    OnlyWithSavedPlan,
    #[error("`--shard`: this plan was made for shard {planned} alone; only a plan of every key can be split")]
    ShardWithSavedPlan { planned: crate::shard::Shard },
    /// `--shard` (on a manifest, or `apply PLAN --shard`) where a later transfer reads what an
    /// earlier one writes: each shard writes only its own keys, so the reader's shards would
    /// read (and, under `delete`, delete by) a source other machines have not written yet.
    #[error(
        "`--shard`: transfer `{reader}` reads what transfer `{writer}` writes, and shards run on their own, so `{reader}` could read objects another machine has not written yet; nothing was done"
    )]
    ShardedChain { writer: String, reader: String, saved_plan: bool },
    #[error("`--at` applies to manifests; a saved plan keeps the time it was made for")]
    AtWithSavedPlan,
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    #[error("the manifest `{}` changed since the plan was saved; nothing was done", path.display())]
    ManifestChanged { path: PathBuf },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("{what}: {}", failure.message)]
    Request { what: String, failure: crate::s3::RequestFailure },
    #[error("`{url}` is not an S3 URL")]
    BadS3Url { url: String },
    #[error(transparent)]
    Trust(#[from] crate::s3::TrustError),
    /// `haul sync` arguments that cannot make a transfer.
    #[error("{message}")]
    SyncUsage { message: String, help: String },
    #[error("the saved plan is stale: {} changed since it was made; nothing was done\n{}", count_objects(objects.len()), stale_list(objects))]
    StalePlan { objects: Vec<crate::plan::StaleObject> },
    /// The server listed out of key order even when its listing was read again sorted (the
    /// check of a saved plan starts over once a server is known to list out of order), so the
    /// plan's actions cannot be checked against it.
    #[error(
        "the server of transfer `{transfer}` listed out of key order even when read again sorted, so the saved plan cannot be checked against it; nothing was done"
    )]
    UncheckablePlan { transfer: String },
}

fn count_objects(count: usize) -> String {
    if count == 1 { "1 object".into() } else { format!("{count} objects") }
}

/// One line per stale object: transfer, key, side, what the plan saw and what is there now.
fn stale_list(objects: &[crate::plan::StaleObject]) -> String {
    fn state(fingerprint: &Option<crate::plan::Fingerprint>) -> String {
        match fingerprint {
            None => "absent".into(),
            Some(f) => {
                let millis = f.mtime_ms.unwrap_or(f.mtime.saturating_mul(1000));
                let time = u64::try_from(millis).map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
                match time {
                    Ok(time) => format!("{} bytes, modified {}", f.size, humantime::format_rfc3339_millis(time)),
                    Err(_) => format!("{} bytes", f.size),
                }
            }
        }
    }
    const SHOWN: usize = 20;
    let mut lines: Vec<String> = objects
        .iter()
        .take(SHOWN)
        .map(|o| {
            format!(
                "  {}: {} ({}: planned {}, now {})",
                o.transfer,
                crate::text::printable(&o.key),
                o.side.label(),
                state(&o.planned),
                state(&o.now)
            )
        })
        .collect();
    if objects.len() > SHOWN {
        lines.push(format!("  ... and {} more", objects.len() - SHOWN));
    }
    lines.join("\n")
}

impl HaulError {
    /// A failed write to standard output.
    pub fn output(source: std::io::Error) -> HaulError {
        HaulError::Output { source }
    }

    /// Standard output's reader went away (`| head`): the command ends there, with success
    /// and no message. Any other write error is an error.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, HaulError::Output { source } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// A transfer's listings failing, said with the transfer and its folder.
    pub fn sides(job: &crate::manifest::Job, error: crate::listing::sides::SidesError) -> HaulError {
        use crate::listing::sides::SidesError;
        match error {
            SidesError::LocalFolder(source) => {
                HaulError::LocalFolder { transfer: job.name.clone(), path: job.local.clone(), source }
            }
            SidesError::Remote(source) => HaulError::Listing { transfer: job.name.clone(), source },
            SidesError::Inventory(source) => HaulError::Inventory { transfer: job.name.clone(), source },
        }
    }

    /// How to fix it, when there is something to say.
    pub fn help(&self) -> Option<String> {
        match self {
            HaulError::Manifest(ManifestError::Read { path, source })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some(format!("check the path, or create a starter manifest with `haul init {}`", path.display()))
            }
            HaulError::Manifest(ManifestError::Read { .. }) => Some("check the file's permissions".into()),
            HaulError::Manifest(ManifestError::IsDirectory { path }) => {
                Some(format!("name the YAML file inside it, such as `{}`", path.join("haul.yaml").display()))
            }
            HaulError::Manifest(ManifestError::Invalid { .. }) => None,
            HaulError::InitTargetExists { .. } => Some("choose another file name, or remove the file first".into()),
            HaulError::Write { .. } => Some("check that the folder exists and is writable".into()),
            HaulError::Output { .. } => {
                Some("check that where the output goes (a file, a disk) has room and is writable".into())
            }
            HaulError::UnknownTransfer { known, .. } => Some(format!("transfers in this manifest: {}", known.join(", "))),
            HaulError::LocalFolder { .. } => Some("check that `local` names a readable folder".into()),
            HaulError::Listing { source, .. } => Some(listing_help(source)),
            HaulError::Inventory { source, .. } => Some(inventory_help(source)),
            HaulError::Filter { .. } => {
                Some("use fewer or simpler patterns (each `{a,b,...}` alternative counts), or split the transfer".into())
            }
            HaulError::Plan(crate::plan::PlanError::TooManyDeletes { .. }) => Some(
                "check the prefix and the source first; if the deletions are right, raise `max_delete` for this transfer"
                    .into(),
            ),
            HaulError::Runtime(_) => None,
            HaulError::PlanFile { .. } => {
                Some("make a new plan with `haul plan MANIFEST -o FILE` using this version of haul".into())
            }
            HaulError::OnlyWithSavedPlan => {
                Some("make a plan of only those transfers: `haul plan MANIFEST --only NAME -o FILE`".into())
            }
            HaulError::ShardWithSavedPlan { planned } => Some(format!(
                "apply it as it is (`haul apply PLAN`, as shard {planned}), or make one plan of every key (`haul plan MANIFEST -o PLAN`) and apply it with `--shard I/N` on each machine"
            )),
            HaulError::ShardedChain { writer, saved_plan: true, .. } => Some(format!(
                "apply the plan whole on one machine, or make one plan of `{writer}` (`--only {writer}`), apply it in shards, then the rest"
            )),
            HaulError::ShardedChain { writer, reader, saved_plan: false } => Some(format!(
                "run `--only {writer}` in shards, and `--only {reader}` (and what follows) once every shard is done; or run the manifest whole without `--shard`"
            )),
            HaulError::AtWithSavedPlan => {
                Some("make a plan as of that time: `haul plan MANIFEST --at TIME -o FILE`".into())
            }
            HaulError::Shard(_) => None,
            HaulError::SyncUsage { help, .. } => Some(help.clone()),
            HaulError::ManifestChanged { path } => {
                Some(format!("review and save a new plan: `haul plan {} -o FILE`", path.display()))
            }
            HaulError::Request { failure, .. } => Some(request_help(failure, SetIn::Flags)),
            HaulError::Lock(crate::lock::LockError::Held { .. }) => Some(
                "wait for it to finish (runs of one manifest never overlap); a killed run's lock is released by the system".into(),
            ),
            HaulError::Lock(crate::lock::LockError::Io { .. }) => {
                Some("choose a writable place with `--lock-file PATH`".into())
            }
            HaulError::BadS3Url { .. } => Some("write it as `s3://bucket` or `s3://bucket/prefix/`".into()),
            HaulError::Trust(error) => Some(match &error.named_in {
                crate::s3::trust::NamedIn::Setting => {
                    "name a PEM file of the CA certificates that signed the endpoint's certificate".into()
                }
                crate::s3::trust::NamedIn::Environment => {
                    "point AWS_CA_BUNDLE at a readable PEM file of CA certificates, or unset it".into()
                }
                crate::s3::trust::NamedIn::Profile(profile) => format!(
                    "fix or remove `ca_bundle` in profile `{profile}` of the AWS config file (~/.aws/config, or the file \
                     AWS_CONFIG_FILE names)"
                ),
            }),
            HaulError::StalePlan { .. } => {
                Some("review and save a new plan: `haul plan MANIFEST -o FILE`, then apply that".into())
            }
            HaulError::UncheckablePlan { .. } => {
                Some("apply the manifest itself (`haul apply MANIFEST`), and report this server".into())
            }
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            HaulError::Manifest(_) => Exit::Invalid,
            HaulError::InitTargetExists { .. } => Exit::Invalid,
            HaulError::UnknownTransfer { .. } => Exit::Invalid,
            HaulError::PlanFile { .. } | HaulError::OnlyWithSavedPlan | HaulError::BadS3Url { .. } => Exit::Invalid,
            HaulError::Trust(_) => Exit::Invalid,
            HaulError::SyncUsage { .. } => Exit::Invalid,
            HaulError::ShardWithSavedPlan { .. } | HaulError::AtWithSavedPlan | HaulError::Shard(_) => Exit::Invalid,
            HaulError::ShardedChain { .. } => Exit::Invalid,
            HaulError::Request { .. } => Exit::Failure,
            HaulError::Lock(crate::lock::LockError::Held { .. }) => Exit::Locked,
            HaulError::Lock(crate::lock::LockError::Io { .. }) => Exit::Failure,
            HaulError::ManifestChanged { .. } | HaulError::StalePlan { .. } | HaulError::UncheckablePlan { .. } => {
                Exit::StalePlan
            }
            HaulError::Write { .. }
            | HaulError::Output { .. }
            | HaulError::LocalFolder { .. }
            | HaulError::Listing { .. }
            | HaulError::Inventory { .. }
            | HaulError::Filter { .. }
            | HaulError::Plan(_)
            | HaulError::Runtime(_) => Exit::Failure,
        }
    }
}

/// One sentence on what to do about a failed request of the account commands.
pub fn request_help(failure: &crate::s3::RequestFailure, set_in: SetIn) -> String {
    // A bodiless 404 (HeadBucket) says no more than NoSuchBucket does.
    let code = failure.code.as_deref().map(|code| if code == "NotFound" { "NoSuchBucket" } else { code });
    crate::advice::shared(code, failure.bucket_region.as_deref(), set_in).unwrap_or_else(|| match code {
        Some("AccessDenied") => {
            "these credentials may not do this: check which identity is in use (`haul whoami`) and its policy".into()
        }
        _ => "see the message above".into(),
    })
}

fn listing_help(err: &crate::listing::remote::ListError) -> String {
    use crate::listing::remote::ListError;
    match err {
        ListError::Request { failure, .. } if failure.code.as_deref() == Some("AccessDenied") => {
            "these credentials may not list this prefix: check the profile and the bucket policy".into()
        }
        ListError::Request { failure, .. } => request_help(failure, SetIn::Manifest),
        ListError::Lookup { failure, .. } if failure.code.as_deref() == Some("AccessDenied") => {
            "`destination: head` reads each object with a HEAD request: these credentials need s3:GetObject on the destination (and s3:ListBucket, without which S3 answers 403 for a key that is not there)".into()
        }
        ListError::Lookup { failure, .. } => request_help(failure, SetIn::Manifest),
        ListError::OutOfOrder { .. } => "the server's listing is not in key order; report this server".into(),
        ListError::Sort { .. } => {
            "free space in the temp folder, or point TMPDIR at a folder with room (about 100 bytes per key)".into()
        }
    }
}

fn inventory_help(err: &crate::listing::inventory::InventoryError) -> String {
    use crate::listing::inventory::InventoryError;
    match err {
        InventoryError::Request { failure, .. } => request_help(failure, SetIn::Manifest),
        InventoryError::Unreadable { .. } => {
            "point `listing.inventory` at a report S3 Inventory wrote, or remove `listing` to list the bucket".into()
        }
        InventoryError::NoReport { .. } => {
            "check the folder (it holds one folder per report, named by its date), or name a report's manifest.json".into()
        }
        InventoryError::OtherBucket { .. } => {
            "name a report of this transfer's bucket (an inventory configuration is per bucket)".into()
        }
        InventoryError::Format { .. } => {
            "set the inventory configuration's output format to CSV or Parquet, or remove `listing` to list the bucket".into()
        }
        InventoryError::Stale { .. } => {
            "wait for the next report, raise `max_age` if the objects do not change in between, or remove `listing` to list the bucket".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::RequestFailure;

    fn help(code: Option<&str>, region: Option<&str>) -> String {
        let mut failure = RequestFailure::coded("x", "m", false);
        failure.code = code.map(str::to_string);
        failure.bucket_region = region.map(str::to_string);
        request_help(&failure, SetIn::Flags)
    }

    #[test]
    fn each_common_failure_gets_its_own_fix() {
        assert!(help(Some("NoCredentials"), None).contains("~/.aws/credentials"));
        assert!(help(Some("ExpiredToken"), None).contains("aws sso login"));
        assert_eq!(
            help(Some("PermanentRedirect"), Some("ap-northeast-2")),
            "the bucket is in ap-northeast-2: add `--region ap-northeast-2`"
        );
        assert!(help(Some("NoSuchBucket"), None).contains("`haul ls` lists the buckets"));
        assert!(help(Some("AccessDenied"), None).contains("haul whoami"));
        assert!(help(None, None).contains("check the endpoint URL"));
    }
}
