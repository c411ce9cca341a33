//! Reading an object's properties and comparing them with what the manifest sets for its key
//! (`update_properties`): a HEAD for its headers and metadata, GetObjectTagging where the
//! manifest sets tags, GetObjectAcl where it sets an ACL. Planning asks through its
//! `PropertyCheck` trait; the executor reads them again just before it updates an object.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt as _;

use crate::listing::Entry;
use crate::manifest::{CannedAcl, Job, UploadOptions};
use crate::plan::{PropertyCheck, PropertyVerdict};
use crate::s3::{RequestFailure, request_failure};

/// Objects whose properties are read at once while planning.
const IN_FLIGHT: usize = 32;

/// What an object carries that the manifest may set. `tags` and `acl` are read only when the
/// manifest sets them (each costs a request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectProperties {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    /// User metadata, names lowercased (S3 keeps them so).
    pub metadata: BTreeMap<String, String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub acl: Option<Grants>,
}

/// An object's ACL as a set of grants, each grantee named as the canned ACLs name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    pub owner: Option<String>,
    pub grants: BTreeSet<(Grantee, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    /// A canonical user ID.
    User(String),
    /// A group, by its URI's last part (`AllUsers`, `AuthenticatedUsers`, `LogDelivery`).
    Group(String),
    Other(String),
}

/// The names (as the manifest spells them) of the properties `wanted` sets that `object` does
/// not have. `bucket_owner`: the destination bucket's owner, for the `bucket-owner-*` ACLs.
pub fn differences(wanted: &UploadOptions, object: &ObjectProperties, bucket_owner: Option<&str>) -> Vec<String> {
    let mut differ = Vec::new();
    let header =
        |want: &Option<String>, have: &Option<String>| want.as_ref().is_some_and(|want| Some(want) != have.as_ref());
    if header(&wanted.content_type, &object.content_type) {
        differ.push("content_type");
    }
    if header(&wanted.cache_control, &object.cache_control) {
        differ.push("cache_control");
    }
    if header(&wanted.content_disposition, &object.content_disposition) {
        differ.push("content_disposition");
    }
    if let Some(metadata) = &wanted.metadata {
        let wanted: BTreeMap<String, String> =
            metadata.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect();
        if wanted != object.metadata {
            differ.push("metadata");
        }
    }
    if let Some(tags) = &wanted.tags
        && object.tags.as_ref() != Some(tags)
    {
        differ.push("tags");
    }
    if let Some(acl) = wanted.acl
        && let Some(grants) = &object.acl
        && expected_grants(acl, grants.owner.as_deref(), bucket_owner).is_some_and(|expected| expected != grants.grants)
    {
        differ.push("acl");
    }
    differ.into_iter().map(str::to_string).collect()
}

/// The grants S3 gives an object written with `acl` (its owner `owner`), or `None` where that
/// cannot be told (`aws-exec-read` grants to an AWS account haul does not know; an unknown
/// owner).
fn expected_grants(
    acl: CannedAcl,
    owner: Option<&str>,
    bucket_owner: Option<&str>,
) -> Option<BTreeSet<(Grantee, String)>> {
    let owner = owner?;
    let mut grants = BTreeSet::from([(Grantee::User(owner.to_string()), "FULL_CONTROL".to_string())]);
    let mut add = |grantee: Grantee, permission: &str| grants.insert((grantee, permission.to_string()));
    match acl {
        CannedAcl::Private => {}
        CannedAcl::PublicRead => {
            add(Grantee::Group("AllUsers".into()), "READ");
        }
        CannedAcl::PublicReadWrite => {
            add(Grantee::Group("AllUsers".into()), "READ");
            add(Grantee::Group("AllUsers".into()), "WRITE");
        }
        CannedAcl::AuthenticatedRead => {
            add(Grantee::Group("AuthenticatedUsers".into()), "READ");
        }
        CannedAcl::AwsExecRead => return None,
        CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {
            let bucket_owner = bucket_owner?;
            if bucket_owner != owner {
                let permission = if acl == CannedAcl::BucketOwnerRead { "READ" } else { "FULL_CONTROL" };
                add(Grantee::User(bucket_owner.to_string()), permission);
            }
        }
    }
    Some(grants)
}

/// Reads what `wanted` needs of the object `key`: its HEAD (with `If-Match: etag` when given,
/// so an object replaced since the plan fails instead of being compared), its tags where
/// `wanted` sets tags, its ACL where it sets one. Returns the HEAD's answer too (the executor
/// keeps what the manifest does not set).
pub async fn read(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    wanted: &UploadOptions,
    etag: Option<&str>,
) -> Result<(ObjectProperties, aws_sdk_s3::operation::head_object::HeadObjectOutput), RequestFailure> {
    let head = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(etag.map(str::to_string))
        .send()
        .await
        .map_err(|err| request_failure(&err))?;
    let mut properties = ObjectProperties {
        content_type: head.content_type().map(str::to_string),
        cache_control: head.cache_control().map(str::to_string),
        content_disposition: head.content_disposition().map(str::to_string),
        metadata: head
            .metadata()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
        tags: None,
        acl: None,
    };
    if wanted.tags.is_some() {
        let tagging = client.get_object_tagging().bucket(bucket).key(key).send().await;
        let tagging = tagging.map_err(|err| request_failure(&err))?;
        properties.tags =
            Some(tagging.tag_set().iter().map(|tag| (tag.key().to_string(), tag.value().to_string())).collect());
    }
    if wanted.acl.is_some() {
        let acl = client.get_object_acl().bucket(bucket).key(key).send().await;
        properties.acl = Some(grants(&acl.map_err(|err| request_failure(&err))?));
    }
    Ok((properties, head))
}

/// The grants of a GetObjectAcl answer.
fn grants(answer: &aws_sdk_s3::operation::get_object_acl::GetObjectAclOutput) -> Grants {
    let grants = answer
        .grants()
        .iter()
        .filter_map(|grant| {
            let grantee = grant.grantee()?;
            let named = match (grantee.id(), grantee.uri()) {
                (Some(id), _) => Grantee::User(id.to_string()),
                (None, Some(uri)) => Grantee::Group(uri.rsplit('/').next().unwrap_or(uri).to_string()),
                (None, None) => Grantee::Other(grantee.email_address().unwrap_or_default().to_string()),
            };
            Some((named, grant.permission()?.as_str().to_string()))
        })
        .collect();
    Grants { owner: answer.owner().and_then(|owner| owner.id()).map(str::to_string), grants }
}

/// Compares the properties of the objects a transfer writes with the manifest's, for
/// planning: `IN_FLIGHT` objects at a time, each read only for what its key is set.
pub struct PropertyChecker<'a> {
    pub job: &'a Job,
    pub client: &'a aws_sdk_s3::Client,
    pub runtime: &'a tokio::runtime::Handle,
    /// Where the transfer writes: an upload's bucket, or a copy's `to`.
    pub bucket: &'a str,
    pub prefix: &'a str,
    /// The bucket's owner (for `bucket-owner-*` ACLs), asked once, when first needed (the
    /// objects read at once wait for that one answer).
    pub bucket_owner: tokio::sync::OnceCell<Result<Option<String>, String>>,
}

impl PropertyChecker<'_> {
    async fn bucket_owner(&self) -> Result<Option<String>, String> {
        let asked = self.bucket_owner.get_or_init(|| async {
            let answer = self.client.get_bucket_acl().bucket(self.bucket).send().await;
            answer.map(|answer| answer.owner().and_then(|owner| owner.id()).map(str::to_string)).map_err(|err| {
                format!("the bucket's owner could not be read (GetBucketAcl: {})", request_failure(&err).message)
            })
        });
        asked.await.clone()
    }

    async fn verdict(&self, entry: &Entry) -> PropertyVerdict {
        let wanted = self.job.upload_options_for(&entry.key);
        if !wanted.sets_properties() {
            return PropertyVerdict::Same;
        }
        let key = format!("{}{}", self.prefix, entry.stored());
        let etag = entry.etag.as_ref().map(crate::etag::ETag::quoted);
        let object = match read(self.client, self.bucket, &key, &wanted, etag.as_deref()).await {
            Ok((object, _)) => object,
            Err(failure) => return PropertyVerdict::Unreadable(failure.message),
        };
        let needs_owner = matches!(wanted.acl, Some(CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl));
        let bucket_owner = if needs_owner {
            match self.bucket_owner().await {
                Ok(owner) => owner,
                Err(why) => return PropertyVerdict::Unreadable(why),
            }
        } else {
            None
        };
        match differences(&wanted, &object, bucket_owner.as_deref()) {
            differ if differ.is_empty() => PropertyVerdict::Same,
            differ => PropertyVerdict::Differs(differ),
        }
    }
}

impl PropertyCheck for PropertyChecker<'_> {
    fn compare(&self, objects: &[&Entry]) -> Vec<PropertyVerdict> {
        self.runtime.block_on(
            futures_util::stream::iter(objects).map(|entry| self.verdict(entry)).buffered(IN_FLIGHT).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> ObjectProperties {
        ObjectProperties {
            content_type: Some("text/csv".into()),
            cache_control: None,
            content_disposition: None,
            metadata: BTreeMap::from([("team".into(), "data".into())]),
            tags: Some(BTreeMap::from([("class".into(), "internal".into())])),
            acl: Some(Grants {
                owner: Some("me".into()),
                grants: BTreeSet::from([(Grantee::User("me".into()), "FULL_CONTROL".into())]),
            }),
        }
    }

    #[test]
    fn only_what_the_manifest_sets_is_compared() {
        let nothing = UploadOptions::default();
        assert!(differences(&nothing, &object(), None).is_empty());
        let same = UploadOptions {
            content_type: Some("text/csv".into()),
            metadata: Some(BTreeMap::from([("Team".into(), "data".into())])),
            tags: Some(BTreeMap::from([("class".into(), "internal".into())])),
            acl: Some(CannedAcl::Private),
            ..UploadOptions::default()
        };
        assert!(differences(&same, &object(), None).is_empty(), "metadata names compare lowercased");
        let other = UploadOptions {
            content_type: Some("application/vnd.apache.parquet".into()),
            cache_control: Some("max-age=60".into()),
            metadata: Some(BTreeMap::from([("team".into(), "data".into()), ("more".into(), "x".into())])),
            tags: Some(BTreeMap::new()),
            acl: Some(CannedAcl::PublicRead),
            ..UploadOptions::default()
        };
        assert_eq!(differences(&other, &object(), None), ["content_type", "cache_control", "metadata", "tags", "acl"]);
    }

    #[test]
    fn canned_acls_are_compared_as_the_grants_they_give() {
        let mut object = object();
        let wanted = UploadOptions { acl: Some(CannedAcl::BucketOwnerFullControl), ..UploadOptions::default() };
        // Written by the bucket's owner: the owner's grant is all there is.
        assert!(differences(&wanted, &object, Some("me")).is_empty());
        // Written from another account: the bucket owner needs its own grant.
        assert_eq!(differences(&wanted, &object, Some("them")), ["acl"]);
        object.acl.as_mut().unwrap().grants.insert((Grantee::User("them".into()), "FULL_CONTROL".into()));
        assert!(differences(&wanted, &object, Some("them")).is_empty());
        let public = UploadOptions { acl: Some(CannedAcl::PublicRead), ..UploadOptions::default() };
        assert_eq!(differences(&public, &object, Some("them")), ["acl"]);
        // An ACL whose grants haul cannot tell is not compared (never updated every night).
        let exec = UploadOptions { acl: Some(CannedAcl::AwsExecRead), ..UploadOptions::default() };
        assert!(differences(&exec, &object, None).is_empty());
    }
}
