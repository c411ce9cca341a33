//! Certificate errors: a server whose TLS certificate this machine does not trust (a private
//! CA, an expired or misnamed certificate) fails the same way on every attempt, so it is its
//! own class: never retried (by the SDK or by haul), reported once with the reason and the fix.

use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;

/// Why the server's certificate was refused, for people; `None` when `err` is not a
/// certificate error. Read from the error's type (rustls's), through every error it wraps.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(reason)) = err.downcast_ref::<rustls::Error>() {
            return Some(reason_text(reason));
        }
        // An `io::Error`'s `source` is its payload's source, past the payload itself (where
        // hyper-rustls puts the rustls error, two `io::Error`s deep): step into the payload.
        next = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(payload) => Some(payload as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn reason_text(reason: &rustls::CertificateError) -> String {
    use rustls::CertificateError;
    match reason {
        CertificateError::UnknownIssuer => {
            "it is signed by an authority this machine does not trust (unknown issuer)".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "it is not valid yet".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it was issued for another name than the endpoint's".into()
        }
        CertificateError::Revoked => "it has been revoked".into(),
        CertificateError::BadSignature => "its signature does not verify".into(),
        other => format!("{other:?}"),
    }
}

/// Tells the SDK's retry strategy that a certificate error is final. It runs after the
/// SDK's transient-error classifier, which takes any failed connection for transient.
#[derive(Debug)]
pub struct CertificateErrors;

impl ClassifyRetry for CertificateErrors {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let failed = ctx.output_or_error().and_then(Result::err).and_then(|err| err.as_connector_error());
        match failed {
            Some(err) if certificate_problem(err).is_some() => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "haul certificate errors"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}
