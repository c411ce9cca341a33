//! Source objects the listing showed in an archive storage class (GLACIER, DEEP_ARCHIVE):
//! readable only once restored. One HEAD each (of these objects only) says whether a restored
//! copy is there; without one, `archived: fail` makes the object a failure that says so, and
//! `archived: restore` asks S3 to restore it (RestoreObject) for a later run to move.

use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};

use super::Context;
use crate::manifest::{ArchivedObjects, RestoreTier};
use crate::plan::Action;
use crate::s3::{FailureCode, RequestFailure, request_failure};

/// `Ok` when the object can be read now (restored, or no longer archived); else why not.
pub(super) async fn readable(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let key = context.remote_key(action.source_name());
    let head = context.client.head_object().bucket(&context.job.bucket).key(&key).send().await;
    let head = head.map_err(|err| request_failure(&err))?;
    match restore_state(head.restore()) {
        Restore::Done => return Ok(()),
        Restore::Ongoing => return Err(restore_in_progress()),
        Restore::None => {}
    }
    // Moved out of the archive since it was listed (a lifecycle rule, a copy in place).
    let still_archived = head.storage_class().is_some_and(|class| crate::listing::remote::is_archived(class.as_str()));
    if !still_archived {
        return Ok(());
    }
    let archived = context.job.archived;
    match archived.mode {
        ArchivedObjects::Fail | ArchivedObjects::Skip => Err(RequestFailure::local(
            FailureCode::Archived,
            "archived (GLACIER or DEEP_ARCHIVE) and not restored: it cannot be read",
            false,
        )),
        ArchivedObjects::Restore => {
            let tier = match archived.restore_tier {
                RestoreTier::Standard => Tier::Standard,
                RestoreTier::Bulk => Tier::Bulk,
                RestoreTier::Expedited => Tier::Expedited,
            };
            let parameters = GlacierJobParameters::builder().tier(tier).build().expect("the tier is set");
            let request =
                RestoreRequest::builder().days(archived.restore_days as i32).glacier_job_parameters(parameters);
            let asked = context
                .client
                .restore_object()
                .bucket(&context.job.bucket)
                .key(&key)
                .restore_request(request.build())
                .send()
                .await;
            match asked {
                Ok(_) => Err(RequestFailure::local(FailureCode::RestoreRequested, "restore requested", false)),
                Err(err) => {
                    let failure = request_failure(&err);
                    if failure.code.as_deref() == Some("RestoreAlreadyInProgress") {
                        Err(restore_in_progress())
                    } else {
                        Err(failure)
                    }
                }
            }
        }
    }
}

fn restore_in_progress() -> RequestFailure {
    RequestFailure::local(FailureCode::RestoreInProgress, "a restore is in progress", false)
}

#[derive(Debug, PartialEq, Eq)]
enum Restore {
    /// No restore asked (or it expired).
    None,
    Ongoing,
    /// A restored copy can be read.
    Done,
}

/// The `x-amz-restore` header: `ongoing-request="true"`, or `ongoing-request="false",
/// expiry-date="..."` once restored.
fn restore_state(header: Option<&str>) -> Restore {
    match header {
        None => Restore::None,
        Some(text) if text.replace(' ', "").contains("ongoing-request=\"true\"") => Restore::Ongoing,
        Some(text) if text.replace(' ', "").contains("ongoing-request=\"false\"") => Restore::Done,
        Some(_) => Restore::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_header_says_where_a_restore_is() {
        assert_eq!(restore_state(None), Restore::None);
        assert_eq!(restore_state(Some("ongoing-request=\"true\"")), Restore::Ongoing);
        let done = "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"";
        assert_eq!(restore_state(Some(done)), Restore::Done);
    }
}
