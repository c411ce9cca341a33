//! Deletes: only what the plan lists. Remote keys go in DeleteObjects batches of up to 1,000;
//! local files are unlinked one by one (never folders, never anything outside the root).

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures_util::StreamExt as _;
use rayon::prelude::*;

use super::{Context, io_failure};
use crate::plan::{Action, ActionKind};
use crate::s3::{RequestFailure, request_failure};

/// The most keys one DeleteObjects request takes.
const BATCH: usize = 1000;

/// One outcome per action, in the same order. Remote batches go `concurrency` at a time;
/// local files are unlinked on rayon's pool (a network file system answers each in turn).
pub(super) fn delete_all(
    context: &Context,
    actions: &[&Action],
    runtime: &tokio::runtime::Handle,
) -> Vec<Result<(), RequestFailure>> {
    let (remote, local): (Vec<&Action>, Vec<&Action>) =
        actions.iter().partition(|action| action.action == ActionKind::DeleteRemote);
    let mut remote_outcomes = runtime
        .block_on(
            futures_util::stream::iter(remote.chunks(BATCH))
                .map(|batch| delete_remote(context, batch))
                .buffered(context.level.now() as usize)
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .flatten();
    let mut local_outcomes =
        local.par_iter().map(|action| delete_local(context, action)).collect::<Vec<_>>().into_iter();
    actions
        .iter()
        .map(|action| match action.action {
            ActionKind::DeleteRemote => remote_outcomes.next(),
            _ => local_outcomes.next(),
        })
        .map(|outcome| outcome.expect("one outcome per delete"))
        .collect()
}

async fn delete_remote(context: &Context, batch: &[&Action]) -> Vec<Result<(), RequestFailure>> {
    let (client, bucket, prefix) = context.written_bucket();
    let keys: Vec<String> = batch.iter().map(|action| format!("{prefix}{}", action.destination_name())).collect();
    let objects: Result<Vec<ObjectIdentifier>, _> =
        keys.iter().map(|key| ObjectIdentifier::builder().key(key).build()).collect();
    let delete = objects.and_then(|objects| Delete::builder().set_objects(Some(objects)).quiet(true).build());
    let delete = match delete {
        Ok(delete) => delete,
        Err(err) => {
            let failure = RequestFailure::coded("InvalidRequest", err.to_string(), false);
            return vec![Err(failure); batch.len()];
        }
    };
    let answer = client.delete_objects().bucket(bucket).delete(delete).send().await;
    match answer {
        // Quiet mode: the answer lists only the keys that failed.
        Ok(answer) => keys
            .iter()
            .map(|key| match answer.errors().iter().find(|error| error.key() == Some(key.as_str())) {
                None => Ok(()),
                Some(error) => Err(RequestFailure {
                    code: error.code().map(str::to_string),
                    status: None,
                    message: error.message().unwrap_or("not deleted").to_string(),
                    transient: false,
                    bucket_region: None,
                }),
            })
            .collect(),
        Err(err) => vec![Err(request_failure(&err)); batch.len()],
    }
}

fn delete_local(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let path = crate::listing::local_path(&context.job.local, action.destination_name())
        .map_err(|why| RequestFailure::local(crate::s3::FailureCode::UnsafeKey, format!("the name {why}"), false))?;
    match std::fs::symlink_metadata(&path) {
        // Already gone: what the plan wanted.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_failure(&format!("cannot read {}", path.display()), err)),
        Ok(meta) if meta.is_dir() => Err(RequestFailure::local(
            crate::s3::FailureCode::LocalIo,
            format!("{} is a folder now; not removed", path.display()),
            false,
        )),
        Ok(_) => {
            std::fs::remove_file(&path).map_err(|err| io_failure(&format!("cannot remove {}", path.display()), err))
        }
    }
}
