//! What to do about a failed request, per class of error: written once, and said in the same
//! words by every command (`plan`, `apply`'s report, `check`, `ls`, `whoami`).

/// Where the user sets what the advice names: command-line flags (`ls`, `whoami`) or the
/// manifest (`plan`, `apply`, `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetIn {
    Flags,
    Manifest,
}

/// The places the default credentials chain looks, for the "no credentials" advice.
pub const CREDENTIAL_PLACES: &str = "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), \
    ~/.aws/credentials and ~/.aws/config (the profile), SSO, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), \
    the container credentials endpoint, EC2 instance metadata";

/// Where haul looked for credentials, and how to set some up.
pub fn no_credentials() -> String {
    format!(
        "haul looked in: {CREDENTIAL_PLACES}. Set AWS_PROFILE to a profile in ~/.aws/credentials, or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `haul whoami` shows what haul finds"
    )
}

/// "No credentials" with where haul looked, as one line (`whoami`).
pub fn no_credentials_found() -> String {
    format!("no AWS credentials found; {}", no_credentials())
}

/// The advice for the classes of error every command shares: credentials (missing, wrong,
/// expired), the bucket's region, a missing bucket, no answer (`code` `None`). `None` for
/// the rest, which the caller words with what it knows (the objects, the extensions).
pub fn shared(code: Option<&str>, bucket_region: Option<&str>, set_in: SetIn) -> Option<String> {
    Some(match code {
        Some("NoCredentials") => no_credentials(),
        Some("ExpiredToken" | "TokenRefreshRequired" | "RequestExpired" | "ExpiredTokenException") => {
            "the credentials expired: renew them (`aws sso login`, or new session credentials) and run again".into()
        }
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidClientTokenId") => {
            "the access key or secret is wrong for this endpoint: check the profile and the environment (`haul whoami`)"
                .into()
        }
        Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException") => {
            match (bucket_region, set_in) {
                (Some(region), SetIn::Flags) => format!("the bucket is in {region}: add `--region {region}`"),
                (Some(region), SetIn::Manifest) => {
                    format!("the bucket is in `{region}`: set `region: {region}` for this transfer")
                }
                (None, SetIn::Flags) => {
                    "the bucket is in another region: add `--region` with the bucket's region".into()
                }
                (None, SetIn::Manifest) => {
                    "the bucket is in another region: set `region:` to the bucket's region".into()
                }
            }
        }
        Some("CertificateNotTrusted") => {
            let bundle = match set_in {
                SetIn::Manifest => "set `ca_bundle:` (this transfer, or `defaults`)",
                SetIn::Flags => "add `--ca-bundle`",
            };
            format!(
                "the endpoint's TLS certificate is not trusted here: for a private CA, {bundle} to its certificate \
                 bundle (PEM), or set AWS_CA_BUNDLE (`haul whoami` shows which certificates are trusted); check that \
                 `endpoint` uses the name the certificate was issued for, and that the certificate has not expired"
            )
        }
        Some("ChecksumHeaderRefused") => {
            let setting = match set_in {
                SetIn::Manifest => "set `checksum: off` for this transfer (or in `defaults`)",
                SetIn::Flags => "add `--checksum off`",
            };
            format!(
                "the server refuses checksum headers (as some S3-compatible services do): {setting}; each body then \
                 goes with Content-MD5, which the server checks (`haul check` tells which setting an endpoint takes)"
            )
        }
        Some("NoSuchBucket") => "check the bucket name; `haul ls` lists the buckets these credentials see".into(),
        None => {
            "no answer from the server: check the endpoint URL, that the server runs, the network and any proxy".into()
        }
        Some(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_advice_names_the_place_of_the_setting() {
        let region = |set_in| shared(Some("PermanentRedirect"), Some("eu-west-1"), set_in).unwrap();
        assert!(region(SetIn::Flags).contains("--region eu-west-1"));
        assert!(region(SetIn::Manifest).contains("region: eu-west-1"));
        assert!(shared(Some("NoCredentials"), None, SetIn::Flags).unwrap().contains("~/.aws/credentials"));
        assert_eq!(shared(Some("SlowDown"), None, SetIn::Manifest), None);
    }
}
