//! Updating an object's properties in place (`update_properties`): the plan found that an
//! object the destination has, unchanged, carries other properties than the manifest sets for
//! its key. The object is read again first (a HEAD with `If-Match` on the ETag the plan
//! listed, so one replaced since is left alone and reported), then:
//! - headers or metadata differ: a CopyObject onto itself with `REPLACE`, which carries over
//!   everything the manifest does not set (the other headers and metadata, the storage class,
//!   the encryption, the tags; the ACL, which a copy does not keep, is read before and sent
//!   with the copy as grant headers, so there is no moment without it), and `If-Match` again
//!   on the copy source;
//! - only tags or the ACL differ: PutObjectTagging, PutObjectAcl.
//!
//! No bytes pass through haul.

use aws_sdk_s3::types::{MetadataDirective, ObjectCannedAcl, StorageClass, Tag, TaggingDirective};

use super::Context;
use crate::etag::ETag;
use crate::object_properties::differences;
use crate::plan::Action;
use crate::s3::{RequestFailure, request_failure};

pub(super) async fn update(context: &Context, action: &Action) -> Result<(), RequestFailure> {
    let (client, bucket, prefix) = context.written_bucket();
    let key = format!("{prefix}{}", action.destination_name());
    let wanted = context.options_for(&key);
    let etag = action.destination.as_ref().and_then(|destination| destination.etag.as_ref()).map(ETag::quoted);
    let progress = context.counters.start(&action.key, 0);
    let (object, head) = crate::object_properties::read(client, bucket, &key, &wanted, etag.as_deref())
        .await
        .map_err(changed_since_plan)?;
    let mut differ = differences(&wanted, &object, None);
    // A `bucket-owner-*` ACL is compared with the bucket's owner, which the plan read.
    if wanted.acl.is_some() && action.properties.iter().any(|name| name == "acl") && !differ.iter().any(|n| n == "acl")
    {
        differ.push("acl".into());
    }
    let headers = ["content_type", "cache_control", "content_disposition", "metadata"];
    if differ.iter().any(|name| headers.contains(&name.as_str())) {
        let size = head.content_length().unwrap_or_default().max(0) as u64;
        // The most one CopyObject copies: a larger object would need a multipart copy.
        if size > crate::manifest::builtin::COPY_CUTOFF.0 {
            return Err(RequestFailure::coded(
                "TooLargeToUpdateInPlace",
                format!(
                    "its {} differ, and S3 updates those in place only by copying the object onto \
                     itself, which CopyObject does up to 5 GiB; this one is {}",
                    differ.join(", "),
                    crate::text::human_bytes(size)
                ),
                false,
            ));
        }
        copy_onto_itself(context, &key, &wanted, &head, etag).await?;
    } else {
        if differ.iter().any(|name| name == "tags") {
            put_tags(client, bucket, &key, wanted.tags.as_ref().expect("tags differ only where set")).await?;
        }
        if let Some(acl) = wanted.acl.filter(|_| differ.iter().any(|name| name == "acl")) {
            let request = client.put_object_acl().bucket(bucket).key(&key).acl(ObjectCannedAcl::from(acl.as_str()));
            request.send().await.map_err(|err| request_failure(&err))?;
        }
    }
    progress.finish();
    Ok(())
}

/// CopyObject of `key` onto itself with the manifest's properties over the object's own.
async fn copy_onto_itself(
    context: &Context,
    key: &str,
    wanted: &crate::manifest::UploadOptions,
    head: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
    etag: Option<String>,
) -> Result<(), RequestFailure> {
    let (client, bucket, _) = context.written_bucket();
    // A copy gets the bucket's default ACL: an ACL the manifest does not set is kept.
    let kept = match wanted.acl {
        Some(_) => KeptGrants::default(),
        None => acl_to_keep(client, bucket, key).await?,
    };
    let metadata = match &wanted.metadata {
        Some(metadata) => Some(metadata.clone().into_iter().collect()),
        None => head.metadata().cloned(),
    };
    let (encryption, kms_key) = match super::sse(wanted) {
        Some(encryption) => (Some(encryption), wanted.sse_kms_key_id.clone()),
        None => (head.server_side_encryption().cloned(), head.ssekms_key_id().map(str::to_string)),
    };
    let storage_class = match wanted.storage_class {
        Some(class) => StorageClass::from(class.as_str()),
        None => head.storage_class().cloned().unwrap_or(StorageClass::Standard),
    };
    let mut request = client
        .copy_object()
        .bucket(bucket)
        .key(key)
        .copy_source(super::copy::copy_source(bucket, key))
        .set_copy_source_if_match(etag)
        .metadata_directive(MetadataDirective::Replace)
        .set_content_type(wanted.content_type.clone().or(head.content_type().map(str::to_string)))
        .set_cache_control(wanted.cache_control.clone().or(head.cache_control().map(str::to_string)))
        .set_content_disposition(wanted.content_disposition.clone().or(head.content_disposition().map(str::to_string)))
        .set_content_encoding(head.content_encoding().map(str::to_string))
        .set_content_language(head.content_language().map(str::to_string))
        .set_expires(head.expires_string().and_then(|text| {
            aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::HttpDate).ok()
        }))
        .set_metadata(metadata)
        .storage_class(storage_class)
        .set_server_side_encryption(encryption)
        .set_ssekms_key_id(kms_key)
        .set_acl(wanted.acl.map(|acl| ObjectCannedAcl::from(acl.as_str())))
        .set_grant_full_control(kept.header("FULL_CONTROL"))
        .set_grant_read(kept.header("READ"))
        .set_grant_read_acp(kept.header("READ_ACP"))
        .set_grant_write_acp(kept.header("WRITE_ACP"));
    if let Some(tagging) = wanted.tagging() {
        request = request.tagging_directive(TaggingDirective::Replace).tagging(tagging);
    }
    request.send().await.map_err(|err| changed_since_plan(request_failure(&err)))?;
    Ok(())
}

/// An object's grants beyond its owner's full control, as CopyObject's `x-amz-grant-*`
/// headers take them: `(permission, grantee)` with grantees written `id="..."`,
/// `uri="..."` or `emailAddress="..."`.
#[derive(Default)]
struct KeptGrants(Vec<(String, String)>);

impl KeptGrants {
    fn header(&self, permission: &str) -> Option<String> {
        let grantees: Vec<&str> =
            self.0.iter().filter(|(p, _)| p == permission).map(|(_, grantee)| grantee.as_str()).collect();
        (!grantees.is_empty()).then(|| grantees.join(", "))
    }
}

/// The object's grants when it has more than its owner's full control (what a copy would
/// lose); none where the server has no ACLs (disabled by the bucket's ownership setting, or
/// not implemented) or there is nothing more.
async fn acl_to_keep(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<KeptGrants, RequestFailure> {
    let answer = match client.get_object_acl().bucket(bucket).key(key).send().await {
        Ok(answer) => answer,
        Err(err) => {
            let failure = request_failure(&err);
            let no_acls = failure
                .code
                .as_deref()
                .is_some_and(|code| matches!(code, "AccessControlListNotSupported" | "NotImplemented"))
                || failure.status == Some(501);
            if no_acls {
                return Ok(KeptGrants::default());
            }
            return Err(RequestFailure {
                message: format!("its ACL could not be read, so a copy onto itself could lose it: {}", failure.message),
                ..failure
            });
        }
    };
    let owner = answer.owner().and_then(|owner| owner.id());
    let only_owner = answer.grants().iter().all(|grant| {
        grant.grantee().and_then(|grantee| grantee.id()).is_some_and(|id| Some(id) == owner)
            && grant.permission().is_some_and(|permission| permission.as_str() == "FULL_CONTROL")
    });
    if only_owner {
        return Ok(KeptGrants::default());
    }
    let grants = answer
        .grants()
        .iter()
        .filter_map(|grant| {
            let grantee = grant.grantee()?;
            let named = match (grantee.id(), grantee.uri(), grantee.email_address()) {
                (Some(id), _, _) => format!("id=\"{id}\""),
                (None, Some(uri), _) => format!("uri=\"{uri}\""),
                (None, None, Some(email)) => format!("emailAddress=\"{email}\""),
                (None, None, None) => return None,
            };
            Some((grant.permission()?.as_str().to_string(), named))
        })
        .collect();
    Ok(KeptGrants(grants))
}

async fn put_tags(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), RequestFailure> {
    let tag_set: Result<Vec<Tag>, _> =
        tags.iter().map(|(name, value)| Tag::builder().key(name).value(value).build()).collect();
    let tagging = tag_set.and_then(|tag_set| aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(tag_set)).build());
    let tagging = tagging.map_err(|err| RequestFailure::coded("InvalidTag", err.to_string(), false))?;
    let put = client.put_object_tagging().bucket(bucket).key(key).tagging(tagging).send().await;
    put.map_err(|err| request_failure(&err))?;
    Ok(())
}

/// A HEAD or copy refused because the object is no longer the one the plan listed.
fn changed_since_plan(failure: RequestFailure) -> RequestFailure {
    if failure.code.as_deref() == Some("PreconditionFailed") || failure.status == Some(412) {
        super::object_changed()
    } else {
        failure
    }
}
