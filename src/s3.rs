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

/// Builds an S3 client for `target`. Loading the shared config reads the environment and
/// `~/.aws/*` files but makes no request; credentials are resolved on first use.
pub async fn client(target: &S3Target) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(target.retries + 1));
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(target.path_style)
        // Checksums are computed up front by haul where it wants them, not as a streaming
        // trailer: some S3-compatible servers (Garage) reject the SDK's aws-chunked trailer.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &target.endpoint {
        config = config.endpoint_url(endpoint);
        if target.region.is_none() && shared.region().is_none() {
            // S3-compatible servers rarely care, but SigV4 needs some region to sign with.
            config = config.region(Region::new("us-east-1"));
        }
    }
    if target.request_payer {
        config = config.interceptor(RequesterPays);
    }
    aws_sdk_s3::Client::from_conf(config.build())
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

/// One line for people from any SDK error: the S3 error code and message when the server
/// answered, otherwise what went wrong on the way (no credentials, connection refused, ...).
pub fn describe_error<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => format!("HTTP {} with no error code", service.raw().status().as_u16()),
            }
        }
        other => {
            // The context chain names the real cause (e.g. "Connection refused").
            let text = DisplayErrorContext(other).to_string();
            text.replace('\n', " ")
        }
    }
}
