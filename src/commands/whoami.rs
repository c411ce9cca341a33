//! `haul whoami`: which credentials are in use and whose they are — what `aws configure list`,
//! `aws sts get-caller-identity` and `aws s3api list-buckets --query Owner` told by hand.

use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::ProvideCredentials as _;
use serde::Serialize;

use super::{flag_target, load_with_warnings};
use crate::cli::{OutputFormat, WhoamiArgs};
use crate::engine::runtime;
use crate::error::{Exit, HaulError};
use crate::manifest::S3Target;
use crate::render::Style;

pub(super) fn run(args: &WhoamiArgs, style: Style) -> Result<Exit, HaulError> {
    let (manifest, output) = (args.manifest.as_deref(), args.output);
    let runtime = runtime()?;
    let targets: Vec<(S3Target, &str)> = match manifest {
        None => vec![(flag_target(&args.target, false), "--region")],
        Some(path) => {
            let loaded = load_with_warnings(path, &crate::manifest::Moment::now(), style)?;
            let mut distinct: Vec<S3Target> = Vec::new();
            for job in &loaded.jobs {
                // Request payer, retries and the checksum header do not change who one is.
                let target = S3Target {
                    request_payer: false,
                    retries: 3,
                    checksum: crate::manifest::UploadChecksum::default(),
                    ..job.target.clone()
                };
                if !distinct.contains(&target) {
                    distinct.push(target);
                }
            }
            distinct.into_iter().map(|t| (t, "the manifest")).collect()
        }
    };
    let identities = targets
        .iter()
        .map(|(target, explicit)| runtime.block_on(whoami(target, explicit)))
        .collect::<Result<Vec<_>, _>>()?;
    let text = match output {
        OutputFormat::Json => {
            let value = if manifest.is_some() {
                serde_json::to_string_pretty(&identities)
            } else {
                serde_json::to_string_pretty(&identities[0])
            };
            value.expect("identities serialize") + "\n"
        }
        OutputFormat::Table => identities.iter().map(table).collect::<Vec<_>>().join("\n"),
    };
    super::print_all(text.as_bytes())?;
    Ok(if identities.iter().all(|i| i.ok()) { Exit::Success } else { Exit::Failure })
}

/// Everything `whoami` found out for one target. Never holds the secret key.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Where the credentials came from, in words.
    pub credential_source: Option<String>,
    /// `AKIA…WXYZ`: enough to tell keys apart, not enough to use one.
    pub access_key: Option<String>,
    pub session_token: bool,
    pub region: Option<String>,
    pub region_source: String,
    pub account: Option<String>,
    pub arn: Option<String>,
    pub user_id: Option<String>,
    /// The canonical user ID: the owner ID in bucket and object ACLs.
    pub canonical_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_display_name: Option<String>,
    /// Whether S3 accepted the credentials (ListBuckets answered), owner ID or not.
    pub s3_answered: bool,
    /// The certificates HTTPS connections are checked against, and where that was set.
    pub trust: String,
    /// What could not be found out, and why.
    pub problems: Vec<String>,
}

impl Identity {
    /// Whether the credentials work at all: STS or S3 accepted them.
    pub fn ok(&self) -> bool {
        self.access_key.is_some() && (self.account.is_some() || self.canonical_user_id.is_some() || self.s3_answered)
    }
}

use crate::text::mask;

/// Where the default chain found the credentials, from the features the SDK tags them with.
fn credential_source(features: &[AwsCredentialFeature], profile: &str) -> String {
    use AwsCredentialFeature as F;
    let has = |feature: F| features.contains(&feature);
    if has(F::CredentialsEnvVars) {
        "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".into()
    } else if has(F::CredentialsEnvVarsStsWebIdToken) || has(F::CredentialsProfileStsWebIdToken) {
        "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN)".into()
    } else if has(F::CredentialsSso) || has(F::CredentialsProfileSso) {
        format!("SSO (profile `{profile}`; renew with `aws sso login --profile {profile}`)")
    } else if has(F::CredentialsStsAssumeRole) {
        format!("assumed role (profile `{profile}` in ~/.aws/config)")
    } else if has(F::CredentialsProfileProcess) || has(F::CredentialsProcess) {
        format!("credential_process (profile `{profile}`)")
    } else if has(F::CredentialsProfile) {
        format!("shared credentials file (profile `{profile}` in ~/.aws/credentials or ~/.aws/config)")
    } else if has(F::CredentialsHttp) {
        "container credentials endpoint (ECS / EKS pod identity)".into()
    } else if has(F::CredentialsImds) {
        "EC2 instance metadata (IMDS)".into()
    } else {
        "the default credential chain".into()
    }
}

/// Where the region setting came from.
fn region_source(target: &S3Target, explicit: &str, resolved: Option<&str>, profile: &str) -> String {
    if target.region.is_some() {
        return explicit.to_string();
    }
    for variable in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if std::env::var_os(variable).is_some_and(|v| !v.is_empty()) {
            return format!("environment ({variable})");
        }
    }
    match resolved {
        Some(_) => format!("profile `{profile}` in ~/.aws/config"),
        None if target.endpoint.is_some() => "not set (us-east-1 is used to sign for the endpoint)".into(),
        None => "not set: use --region, AWS_REGION, or `region =` in ~/.aws/config".into(),
    }
}

/// Finds out who `target`'s credentials belong to. `explicit` names where an explicit region
/// came from (`--region`, `the manifest`).
pub async fn whoami(target: &S3Target, explicit: &str) -> Result<Identity, HaulError> {
    let trust = crate::s3::trust(target).await.describe(target);
    let shared = crate::s3::shared_config(target).await?;
    let profile = target
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "default".into());
    let mut identity = Identity {
        profile: target.profile.clone(),
        endpoint: target.endpoint.clone(),
        credential_source: None,
        access_key: None,
        session_token: false,
        region: shared.region().map(|r| r.to_string()),
        region_source: region_source(target, explicit, shared.region().map(|r| r.as_ref()), &profile),
        account: None,
        arn: None,
        user_id: None,
        canonical_user_id: None,
        owner_display_name: None,
        s3_answered: false,
        trust,
        problems: Vec::new(),
    };
    let Some(provider) = shared.credentials_provider() else {
        identity.problems.push(crate::advice::no_credentials_found());
        return Ok(identity);
    };
    match provider.provide_credentials().await {
        Ok(credentials) => {
            let features = credentials.get_property::<Vec<AwsCredentialFeature>>().cloned().unwrap_or_default();
            identity.credential_source = Some(credential_source(&features, &profile));
            identity.access_key = Some(mask(credentials.access_key_id()));
            identity.session_token = credentials.session_token().is_some();
        }
        Err(err) => {
            tracing::debug!("the credentials chain failed: {}", crate::s3::error_chain(&err));
            identity.problems.push(crate::advice::no_credentials_found());
            return Ok(identity);
        }
    }
    match crate::s3::sts_client(&shared, target).get_caller_identity().send().await {
        Ok(caller) => {
            identity.account = caller.account().map(str::to_string);
            identity.arn = caller.arn().map(str::to_string);
            identity.user_id = caller.user_id().map(str::to_string);
        }
        // Many S3-compatible servers (and haul's test server) have no STS: they answer 501,
        // 404 or 405, or a code saying so. Not a credentials problem.
        Err(err) if target.endpoint.is_some() && no_sts(&err) => identity
            .problems
            .push("this endpoint has no STS (caller identity): account and ARN are not known here".into()),
        Err(err) => identity.problems.push(format!("caller identity (STS): {}", crate::s3::describe_error(&err))),
    }
    match crate::s3::client_from(&shared, target).list_buckets().send().await {
        Ok(buckets) => {
            identity.s3_answered = true;
            identity.canonical_user_id = buckets.owner().and_then(|o| o.id()).map(str::to_string);
            identity.owner_display_name = buckets.owner().and_then(|o| o.display_name()).map(str::to_string);
        }
        Err(err) => identity.problems.push(format!("owner ID (ListBuckets): {}", crate::s3::describe_error(&err))),
    }
    Ok(identity)
}

/// Whether an STS answer says the endpoint has no STS at all.
fn no_sts<E: aws_sdk_sts::error::ProvideErrorMetadata>(
    err: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
) -> bool {
    match err {
        aws_sdk_sts::error::SdkError::ServiceError(service) => {
            matches!(service.raw().status().as_u16(), 404 | 405 | 501)
                || matches!(service.err().code(), Some("NotImplemented" | "InvalidAction" | "UnknownOperation"))
        }
        _ => false,
    }
}

/// `whoami` for people: one aligned `name  value` line each.
pub fn table(identity: &Identity) -> String {
    let none = || "-".to_string();
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(profile) = &identity.profile {
        rows.push(("profile", profile.clone()));
    }
    if let Some(endpoint) = &identity.endpoint {
        rows.push(("endpoint", endpoint.clone()));
    }
    rows.push(("credentials", identity.credential_source.clone().unwrap_or_else(|| "none found".into())));
    let mut key = identity.access_key.clone().unwrap_or_else(none);
    if identity.session_token {
        key.push_str(" (with a session token)");
    }
    rows.push(("access key", key));
    rows.push((
        "region",
        match &identity.region {
            Some(region) => format!("{region} (from {})", identity.region_source),
            None => identity.region_source.clone(),
        },
    ));
    rows.push(("account", identity.account.clone().unwrap_or_else(none)));
    rows.push(("arn", identity.arn.clone().unwrap_or_else(none)));
    rows.push(("user id", identity.user_id.clone().unwrap_or_else(none)));
    let mut canonical = identity.canonical_user_id.clone().unwrap_or_else(none);
    if let Some(name) = &identity.owner_display_name {
        canonical.push_str(&format!(" ({name})"));
    }
    rows.push(("canonical id", canonical));
    rows.push(("tls trust", identity.trust.clone()));
    let mut out = String::new();
    for (name, value) in rows {
        out.push_str(&format!("{name:<13} {value}\n"));
    }
    for problem in &identity.problems {
        out.push_str(&format!("note: {problem}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_from_the_sdk_features() {
        use AwsCredentialFeature as F;
        assert!(credential_source(&[F::CredentialsEnvVars], "default").starts_with("environment"));
        assert!(credential_source(&[F::CredentialsProfile], "analytics").contains("profile `analytics`"));
        assert!(credential_source(&[F::CredentialsSso, F::CredentialsProfile], "sso").starts_with("SSO"));
        assert!(credential_source(&[F::CredentialsImds], "default").contains("IMDS"));
    }
}
