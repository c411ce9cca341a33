//! Which certificates an HTTPS endpoint's is checked against, as the AWS CLI decides it: the
//! target's own `ca_bundle` (the manifest's, or `--ca-bundle`), else `AWS_CA_BUNDLE`, else the
//! profile's `ca_bundle` in the AWS config file, else the system's store (which
//! `SSL_CERT_FILE` replaces). A bundle replaces the system's store, as it does for the AWS CLI.
//! Verification is never turned off.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use aws_sdk_s3::config::SharedHttpClient;

use crate::ca_bundle::BundleProblem;
use crate::manifest::S3Target;

/// Where the bundle in use was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedIn {
    /// The target's own setting: the manifest's `ca_bundle`, or `--ca-bundle`.
    Setting,
    /// The `AWS_CA_BUNDLE` environment variable.
    Environment,
    /// `ca_bundle` in this profile of the AWS config file.
    Profile(String),
}

impl std::fmt::Display for NamedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamedIn::Setting => f.write_str("`ca_bundle` / --ca-bundle"),
            NamedIn::Environment => f.write_str("AWS_CA_BUNDLE"),
            NamedIn::Profile(profile) => write!(f, "`ca_bundle` of profile `{profile}` in the AWS config file"),
        }
    }
}

/// The certificates a target's HTTPS connections are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// A CA bundle named in a setting: only its certificates.
    Bundle { path: PathBuf, named_in: NamedIn },
    /// The system's store (or the file `SSL_CERT_FILE` names instead).
    System,
}

impl Trust {
    /// For `whoami` and `check`: which certificates are trusted, and who said so.
    pub fn describe(&self, target: &S3Target) -> String {
        if target.plain_http() {
            return "none: the endpoint is plain http".into();
        }
        match self {
            Trust::Bundle { path, named_in } => format!("the CA bundle {} (from {named_in})", path.display()),
            Trust::System => match std::env::var_os("SSL_CERT_FILE").filter(|file| !file.is_empty()) {
                Some(file) => format!("the CA bundle {} (from SSL_CERT_FILE)", Path::new(&file).display()),
                None => "the system's certificate store".into(),
            },
        }
    }
}

/// A CA bundle that a setting names and that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the CA bundle `{}` (from {named_in}) cannot be used: {problem}", path.display())]
pub struct TrustError {
    pub path: PathBuf,
    pub named_in: NamedIn,
    pub problem: BundleProblem,
}

/// Which certificates `target`'s HTTPS connections are checked against. Reads the AWS config
/// file for the profile's `ca_bundle` (a missing or unreadable file names none; the SDK says
/// what is wrong with it when it reads the credentials).
pub async fn trust(target: &S3Target) -> Trust {
    if let Some(path) = &target.ca_bundle {
        return Trust::Bundle { path: path.clone(), named_in: NamedIn::Setting };
    }
    if let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|path| !path.is_empty()) {
        return Trust::Bundle { path: expand_home(&path.to_string_lossy()), named_in: NamedIn::Environment };
    }
    let profiles = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        target.profile.clone().map(Cow::Owned),
    )
    .await;
    if let Ok(profiles) = profiles
        && let Some(path) = profiles.get("ca_bundle").filter(|path| !path.trim().is_empty())
    {
        let profile = profiles.selected_profile().to_string();
        return Trust::Bundle { path: expand_home(path.trim()), named_in: NamedIn::Profile(profile) };
    }
    Trust::System
}

fn expand_home(path: &str) -> PathBuf {
    PathBuf::from(shellexpand::tilde(path).as_ref())
}

/// The HTTP client that checks certificates against `trust`'s bundle; `None` for the
/// system's store (the SDK's default client). One per bundle for the whole process, so
/// transfers through the same bundle share a connection pool.
pub fn https_client(trust: &Trust) -> Result<Option<SharedHttpClient>, TrustError> {
    static CLIENTS: LazyLock<Mutex<HashMap<PathBuf, SharedHttpClient>>> = LazyLock::new(Default::default);
    let Trust::Bundle { path, named_in } = trust else {
        return Ok(None);
    };
    let mut clients = CLIENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(client) = clients.get(path) {
        return Ok(Some(client.clone()));
    }
    let error = |problem| TrustError { path: path.clone(), named_in: named_in.clone(), problem };
    let bundle = crate::ca_bundle::read(path).map_err(error)?;
    if bundle.unusable > 0 {
        tracing::debug!("{}: {} certificate(s) could not be read and are not trusted", path.display(), bundle.unusable);
    }
    use aws_smithy_http_client::tls;
    let context = tls::TlsContext::builder()
        .with_trust_store(tls::TrustStore::empty().with_pem_certificate(bundle.pem))
        .build()
        .expect("a TLS context with a trust store builds");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    clients.insert(path.clone(), client.clone());
    Ok(Some(client))
}
