//! A CA bundle: a PEM file of the certificates haul trusts for an HTTPS endpoint instead of
//! the system's store (a private CA in front of MinIO or Ceph). Read and checked here once for
//! every place that names one: the manifest's `ca_bundle:` (when it is validated),
//! `--ca-bundle` (when the arguments are parsed), and `AWS_CA_BUNDLE` or a profile's
//! `ca_bundle` (when a client is built).

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The certificates of a bundle that can be trust anchors.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The usable certificates, PEM again: the SDK's HTTPS client takes PEM, and panics on a
    /// certificate it cannot parse, so it is only ever given these.
    pub pem: Vec<u8>,
    pub certificates: usize,
    /// Certificates in the file that are not usable as a trust anchor (left out, said in the
    /// debug log).
    pub unusable: usize,
}

/// Why a file cannot be a CA bundle, for people (after "`ca_bundle` `PATH`: ").
#[derive(Debug, thiserror::Error)]
pub enum BundleProblem {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("it holds no usable PEM certificate (a `-----BEGIN CERTIFICATE-----` block)")]
    NoCertificates,
}

/// Reads the bundle at `path`.
pub fn read(path: &Path) -> Result<Bundle, BundleProblem> {
    let bytes = std::fs::read(path).map_err(BundleProblem::Read)?;
    parse(&bytes)
}

/// The usable certificates of a PEM text (other blocks, such as keys, are not certificates and
/// are passed over).
pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleProblem> {
    let mut bundle = Bundle { pem: Vec::new(), certificates: 0, unusable: 0 };
    for certificate in CertificateDer::pem_slice_iter(bytes) {
        let usable = certificate.ok().filter(|der| rustls::RootCertStore::empty().add(der.clone()).is_ok());
        match usable {
            Some(der) => {
                bundle.pem.extend_from_slice(pem_block(&der).as_bytes());
                bundle.certificates += 1;
            }
            None => bundle.unusable += 1,
        }
    }
    if bundle.certificates == 0 {
        return Err(BundleProblem::NoCertificates);
    }
    Ok(bundle)
}

fn pem_block(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut block = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        block.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        block.push('\n');
    }
    block.push_str("-----END CERTIFICATE-----\n");
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_and_broken_ones_are_left_out() {
        assert!(matches!(parse(b"not a bundle"), Err(BundleProblem::NoCertificates)));
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(parse(key_only), Err(BundleProblem::NoCertificates)));
        let broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(parse(broken), Err(BundleProblem::NoCertificates)));
        assert!(matches!(read(Path::new("/nonexistent/ca.pem")), Err(BundleProblem::Read(_))));
    }

    #[test]
    fn the_usable_certificates_are_kept_among_broken_ones_and_other_blocks() {
        let ca = haul_testkit::TestCa::new().unwrap().ca_pem;
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let bundle = parse(format!("{key}{broken}{ca}").as_bytes()).unwrap();
        assert_eq!((bundle.certificates, bundle.unusable), (1, 1));
        // What the SDK is given parses back to the same certificate.
        let again = parse(&bundle.pem).unwrap();
        assert_eq!((again.certificates, again.unusable, &again.pem), (1, 0, &bundle.pem));
        let original: Vec<_> = CertificateDer::pem_slice_iter(ca.as_bytes()).map(Result::unwrap).collect();
        let given: Vec<_> = CertificateDer::pem_slice_iter(&again.pem).map(Result::unwrap).collect();
        assert_eq!(original, given);
    }
}
