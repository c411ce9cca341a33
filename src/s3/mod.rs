//! Building SDK clients for a job's `S3Target`: profile, region, endpoint, path style,
//! request payer and retries, with credentials from the same places the AWS CLI reads.

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    ConfigBag, Intercept, Region, RequestChecksumCalculation, ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::BoxError;

use crate::manifest::S3Target;

pub mod pressure;
mod quick_ack;
mod tls;
pub mod trust;

pub use trust::{Trust, TrustError, trust};

/// Builds an S3 client for `target`. Loading the shared config reads the environment and
/// `~/.aws/*` files but makes no request; credentials are resolved on first use. Fails only
/// on a CA bundle that cannot be used.
pub async fn client(target: &S3Target) -> Result<aws_sdk_s3::Client, TrustError> {
    Ok(client_from(&shared_config(target).await?, target))
}

/// The AWS CLI's view of the world for `target`: credentials chain, region, retry policy,
/// the certificates HTTPS is checked against (for S3, STS and the credential providers).
pub async fn shared_config(target: &S3Target) -> Result<aws_config::SdkConfig, TrustError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(target.retries + 1));
    if let Some(https) = trust::https_client(&trust::trust(target).await)? {
        loader = loader.http_client(https);
    }
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    Ok(loader.load().await)
}

/// An S3 client for `target` from an already loaded shared config.
pub fn client_from(shared: &aws_config::SdkConfig, target: &S3Target) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(target.path_style)
        // Checksums are computed up front by haul where it wants them, not as a streaming
        // trailer: some S3-compatible servers (Garage) reject the SDK's aws-chunked trailer.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &target.endpoint {
        config = config.endpoint_url(endpoint);
        if quick_ack::serves(endpoint) {
            config = config.http_client(quick_ack::client());
        }
        if target.region.is_none() && shared.region().is_none() {
            // S3-compatible servers rarely care, but SigV4 needs some region to sign with.
            config = config.region(Region::new("us-east-1"));
        }
    }
    if target.request_payer {
        config = config.interceptor(RequesterPays);
    }
    if target.checksum == crate::manifest::UploadChecksum::Off {
        config = config.interceptor(NoChecksumHeaders);
    }
    config = config.interceptor(pressure::Watch).retry_classifier(tls::CertificateErrors);
    aws_sdk_s3::Client::from_conf(config.build())
}

/// The checksum algorithm and type a multipart upload is started with under `checksum` (the
/// transfer's, and `check`'s probe of it): CRC64NVME exists only as a full-object checksum, S3
/// refuses it as a composite one; `off` names none.
pub fn multipart_checksum(
    checksum: crate::manifest::UploadChecksum,
) -> (Option<aws_sdk_s3::types::ChecksumAlgorithm>, Option<aws_sdk_s3::types::ChecksumType>) {
    use crate::manifest::UploadChecksum;
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};
    match checksum {
        UploadChecksum::Crc32c => (Some(ChecksumAlgorithm::Crc32C), None),
        UploadChecksum::Crc64nvme => (Some(ChecksumAlgorithm::Crc64Nvme), Some(ChecksumType::FullObject)),
        UploadChecksum::Off => (None, None),
    }
}

/// An STS client for `target` (same credentials, region and endpoint as its S3 client).
pub fn sts_client(shared: &aws_config::SdkConfig, target: &S3Target) -> aws_sdk_sts::Client {
    let mut config = aws_sdk_sts::config::Builder::from(shared).retry_classifier(tls::CertificateErrors);
    if let Some(endpoint) = &target.endpoint {
        config = config.endpoint_url(endpoint);
        if shared.region().is_none() {
            config = config.region(aws_sdk_sts::config::Region::new("us-east-1"));
        }
    }
    aws_sdk_sts::Client::from_conf(config.build())
}

/// Adds `x-amz-request-payer: requester` to every request of a requester-pays job, so no
/// call site can forget it (a forgotten header is a 403 on a requester-pays bucket).
#[derive(Debug)]
struct RequesterPays;

impl Intercept for RequesterPays {
    fn name(&self) -> &'static str {
        "RequesterPays"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context.request_mut().headers_mut().insert("x-amz-request-payer", "requester");
        Ok(())
    }
}

/// `checksum: off`: no request carries a flexible-checksum header, for services that refuse
/// them. haul sends none of its own then (its bodies go with Content-MD5: `exec::integrity`);
/// this keeps the SDK from adding the ones it adds itself (DeleteObjects must carry a
/// checksum), and a body in memory goes with its Content-MD5 instead.
///
/// The SDK adds its checksum before signing, after this client-level interceptor's own hook
/// there, unless the request already has one ("set by the user": its documented way to take
/// the checksum over). So a placeholder is set at the start of the retry loop, and taken out,
/// with any other checksum header, before signing (the signature covers headers).
#[derive(Debug)]
struct NoChecksumHeaders;

/// The placeholder that tells the SDK a checksum is already set (never sent).
const PLACEHOLDER: &str = "x-amz-checksum-crc32";

/// Header names arrive lowercase (the `http` crate keeps them so).
fn is_checksum_header(name: &str) -> bool {
    name.starts_with("x-amz-checksum-") || name == "x-amz-sdk-checksum-algorithm"
}

impl Intercept for NoChecksumHeaders {
    fn name(&self) -> &'static str {
        "NoChecksumHeaders"
    }

    fn modify_before_retry_loop(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if !request.headers().iter().any(|(name, _)| is_checksum_header(name)) {
            request.headers_mut().insert(PLACEHOLDER, "-");
        }
        Ok(())
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let names: Vec<String> = request
            .headers()
            .iter()
            .map(|(name, _)| name.to_string())
            .filter(|name| is_checksum_header(name))
            .collect();
        for name in &names {
            request.headers_mut().remove(name.as_str());
        }
        if !request.headers().contains_key("content-md5")
            && let Some(body) = request.body().bytes().filter(|body| !body.is_empty())
        {
            use base64::Engine as _;
            use md5::Digest as _;
            let digest = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
            request.headers_mut().insert("content-md5", digest);
        }
        Ok(())
    }
}

/// One line for people from any SDK error: the S3 error code and message when the server
/// answered, otherwise what went wrong on the way (no credentials, connection refused, ...).
pub fn describe_error<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {}", crate::text::mask_access_keys(message)),
                (Some(code), None) => code.to_string(),
                _ => format!("HTTP {} with no error code", service.raw().status().as_u16()),
            }
        }
        SdkError::DispatchFailure(failure)
            if let Some(why) = failure.as_connector_error().and_then(|err| tls::certificate_problem(err)) =>
        {
            format!("the server's TLS certificate was refused: {why}")
        }
        // The chain of causes names the real one (e.g. "Connection refused"); each cause's
        // message only, without the Debug dump the SDK's own context display ends with.
        other => error_chain(other),
    }
}

/// Whether the credentials provider, not the request, failed (somewhere in the causes).
fn credentials_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    find_source::<aws_credential_types::provider::error::CredentialsError>(err).is_some()
}

/// The first error of type `E` in `err` and its causes.
fn find_source<'a, E: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}

/// An error and its causes, `: `-joined, each once (a cause often repeats its wrapper).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string().replace('\n', " ");
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    crate::text::mask_access_keys(&parts.join(": "))
}

/// A failed request as the executor records it: what the server said (or what went wrong on
/// the way) and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFailure {
    /// The S3 error code (`AccessDenied`, `NoSuchKey`, `SlowDown`, ...). HEAD answers carry no
    /// body, so their 403 / 404 are named from the status.
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
    /// 5xx, throttling, timeouts, dropped connections: worth another attempt.
    pub transient: bool,
    /// The bucket's real region, when the server said (`x-amz-bucket-region`).
    pub bucket_region: Option<String>,
}

impl RequestFailure {
    /// A failure haul found itself (a short body, a checksum mismatch, a local I/O error).
    pub fn local(code: FailureCode, message: impl Into<String>, transient: bool) -> Self {
        RequestFailure::coded(code.as_str(), message, transient)
    }

    /// A failure with a server's code (what a test stands in for a server with).
    pub fn coded(code: &str, message: impl Into<String>, transient: bool) -> Self {
        RequestFailure {
            code: Some(code.into()),
            status: None,
            message: message.into(),
            transient,
            bucket_region: None,
        }
    }

    /// Whether haul found this failure itself, as `code`.
    pub fn is(&self, code: FailureCode) -> bool {
        self.code.as_deref() == Some(code.as_str())
    }
}

/// The failures haul finds itself, beside the servers' own codes (`AccessDenied`,
/// `SlowDown`, ...). Their names are part of the report's JSON and the metrics (a public
/// contract): written here once, and compared as values, never as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// A body, or the ranges read, did not match the object's checksum.
    ChecksumMismatch,
    /// A body ended before its length.
    ShortBody,
    /// A local file changed while it was being sent.
    FileChanged,
    /// An object is no longer the version the plan listed.
    ObjectChanged,
    /// A key that would write outside the target folder, or cannot be a file name.
    UnsafeKey,
    /// A local file haul may not read.
    Unreadable,
    DiskFull,
    TooManyOpenFiles,
    /// A local file removed during the run.
    LocalFileGone,
    /// Any other local file system error.
    LocalIo,
    /// Stopped by SIGINT / SIGTERM.
    Interrupted,
    /// Not started, or stopped between parts, because the transfer's deadline came.
    DeadlineReached,
    /// Archived (GLACIER, DEEP_ARCHIVE), not restored, and `archived: fail`.
    Archived,
    /// Archived and not restored: `archived: restore` asked S3 to restore it.
    RestoreRequested,
    /// Archived, and a restore is under way.
    RestoreInProgress,
    /// `overwrite: never`: another writer created the key during the run; theirs is kept.
    ExistsNow,
    /// The server refused a request for its checksum header (some S3-compatible services
    /// refuse them all): `checksum: off` is the fix.
    ChecksumHeaderRefused,
    /// A bug, or a task that died: said rather than hidden.
    Internal,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::ChecksumMismatch => "ChecksumMismatch",
            FailureCode::ShortBody => "ShortBody",
            FailureCode::FileChanged => "FileChanged",
            FailureCode::ObjectChanged => "ObjectChanged",
            FailureCode::UnsafeKey => "UnsafeKey",
            FailureCode::Unreadable => "Unreadable",
            FailureCode::DiskFull => "DiskFull",
            FailureCode::TooManyOpenFiles => "TooManyOpenFiles",
            FailureCode::LocalFileGone => "LocalFileGone",
            FailureCode::LocalIo => "LocalIo",
            FailureCode::Interrupted => "Interrupted",
            FailureCode::DeadlineReached => "DeadlineReached",
            FailureCode::Archived => "Archived",
            FailureCode::RestoreRequested => "RestoreRequested",
            FailureCode::RestoreInProgress => "RestoreInProgress",
            FailureCode::ExistsNow => "ExistsNow",
            FailureCode::ChecksumHeaderRefused => "ChecksumHeaderRefused",
            FailureCode::Internal => "Internal",
        }
    }
}

/// Error codes that mean "the server is busy or hiccuped", not "this cannot work".
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeTooSkewed",
];

/// Whether an answer refuses a request for carrying a checksum header, as services that keep
/// no checksums answer (B2: `400 InvalidArgument: Unsupported header 'x-amz-checksum-crc32c'
/// received for this API call.`; others `501 NotImplemented`): the message names the header.
/// Not a checksum that did not match (`BadDigest`, ...), which is about the bytes.
fn refuses_checksum_header(status: u16, code: Option<&str>, message: Option<&str>) -> bool {
    let mismatch = matches!(code, Some("BadDigest" | "InvalidDigest" | "XAmzContentChecksumMismatch"));
    let names_header = message.is_some_and(|message| {
        let message = message.to_ascii_lowercase();
        message.contains("x-amz-checksum-") || message.contains("x-amz-sdk-checksum-algorithm")
    });
    matches!(status, 400 | 501) && !mismatch && names_header
}

/// Error codes that mean the credentials themselves are the problem (missing, wrong,
/// expired), whatever the request was.
pub fn is_credentials_problem(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "NoCredentials"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "TokenRefreshRequired"
                | "RequestExpired"
                | "InvalidToken"
        )
    )
}

pub fn request_failure<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> RequestFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let message = describe_error(err);
    match err {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let status = raw.status().as_u16();
            let code = service.err().code().map(str::to_string).or_else(|| match status {
                301 => Some("PermanentRedirect".into()),
                403 => Some("AccessDenied".into()),
                404 => Some("NotFound".into()),
                412 => Some("PreconditionFailed".into()),
                _ => None,
            });
            let bucket_region = raw.headers().get("x-amz-bucket-region").map(str::to_string);
            if refuses_checksum_header(status, code.as_deref(), service.err().message()) {
                let code = Some(FailureCode::ChecksumHeaderRefused.as_str().to_string());
                return RequestFailure { code, status: Some(status), message, transient: false, bucket_region };
            }
            // 501 Not Implemented: the server lacks the feature, and will next time too.
            let transient =
                (status >= 500 && status != 501) || code.as_deref().is_some_and(|code| TRANSIENT_CODES.contains(&code));
            RequestFailure { code, status: Some(status), message, transient, bucket_region }
        }
        // The credentials chain fails before any request is sent: not worth retrying.
        _ if credentials_failed(err)
            || (message.to_lowercase().contains("credentials") && message.to_lowercase().contains("no ")) =>
        {
            // The SDK's text lists every provider it tried, in its own terms; the help names
            // the places in haul's words (see `error::request_help`).
            tracing::debug!("the credentials chain failed: {message}");
            RequestFailure {
                code: Some("NoCredentials".into()),
                status: None,
                message: "no AWS credentials found".into(),
                transient: false,
                bucket_region: None,
            }
        }
        // The same on every attempt: not retried, and said with its reason and fix.
        SdkError::DispatchFailure(failure)
            if failure.as_connector_error().and_then(|err| tls::certificate_problem(err)).is_some() =>
        {
            RequestFailure {
                code: Some("CertificateNotTrusted".into()),
                status: None,
                message,
                transient: false,
                bucket_region: None,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            RequestFailure { code: None, status: None, message, transient: true, bucket_region: None }
        }
        _ => RequestFailure { code: None, status: None, message, transient: false, bucket_region: None },
    }
}
