//! What every body written goes with, so the server refuses one that arrives damaged: its
//! CRC32C (`x-amz-checksum-crc32c`, stored with the object; or CRC64NVME with `checksum:
//! crc64nvme`), or with `checksum: off`, for
//! services that refuse checksum headers, its MD5 (`Content-MD5`, the older header every
//! S3-compatible service checks), which is also compared with the ETag the answer carries.

use base64::Engine as _;

use crate::checksum::Algorithm;
use crate::manifest::UploadChecksum;
use crate::s3::{FailureCode, RequestFailure};

/// The checksum of one body (a whole object or a part), in the form its header takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCheck {
    algorithm: Algorithm,
    /// Base64 for CRC32C, hex for MD5 (as `checksum` computes them).
    value: String,
}

impl BodyCheck {
    /// The algorithm bodies are hashed with under `mode`.
    pub fn algorithm(mode: UploadChecksum) -> Algorithm {
        match mode {
            UploadChecksum::Crc32c => Algorithm::Crc32c,
            UploadChecksum::Crc64nvme => Algorithm::Crc64Nvme,
            UploadChecksum::Off => Algorithm::Md5,
        }
    }

    /// A checksum computed with `BodyCheck::algorithm(mode)`.
    pub fn new(mode: UploadChecksum, value: String) -> BodyCheck {
        BodyCheck { algorithm: BodyCheck::algorithm(mode), value }
    }

    pub fn of_bytes(bytes: &[u8], mode: UploadChecksum) -> BodyCheck {
        BodyCheck::new(mode, crate::checksum::checksum_of_bytes(bytes, BodyCheck::algorithm(mode)))
    }

    /// The `x-amz-checksum-crc32c` header's value, if this body goes with one.
    pub fn crc32c(&self) -> Option<String> {
        (self.algorithm == Algorithm::Crc32c).then(|| self.value.clone())
    }

    /// The `x-amz-checksum-crc64nvme` header's value, if this body goes with one.
    pub fn crc64nvme(&self) -> Option<String> {
        (self.algorithm == Algorithm::Crc64Nvme).then(|| self.value.clone())
    }

    /// The `Content-MD5` header's value (base64 of the digest), if this body goes with one.
    pub fn content_md5(&self) -> Option<String> {
        if self.algorithm != Algorithm::Md5 {
            return None;
        }
        let digest = (0..self.value.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&self.value[at..at + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .expect("an MD5 is hex");
        Some(base64::engine::general_purpose::STANDARD.encode(digest))
    }

    /// Whether the ETag a write was answered with agrees with the body sent: for an MD5 body,
    /// an ETag that is an MD5 must be it, unless the object is stored encrypted (`encrypted`:
    /// the answer names any server-side encryption), whose ETag AWS makes no MD5 with KMS and
    /// other servers (MinIO) make none at all. A server that ignored `Content-MD5` and stored
    /// other bytes is caught here.
    pub fn agrees_with(&self, etag: Option<&str>, encrypted: bool) -> Result<(), RequestFailure> {
        let Some(md5) = etag.map(crate::etag::ETag::new).and_then(|etag| etag.md5_hex().map(str::to_string)) else {
            return Ok(());
        };
        if self.algorithm != Algorithm::Md5 || encrypted || md5.eq_ignore_ascii_case(&self.value) {
            return Ok(());
        }
        Err(RequestFailure::local(
            FailureCode::ChecksumMismatch,
            format!("the server answered ETag {md5} for a body whose MD5 is {}: it stored other bytes", self.value),
            true,
        ))
    }
}

/// Whether an answer says the object is stored with server-side encryption (any kind): its
/// ETag is then not to be taken for the MD5 of its bytes.
pub fn encrypted(encryption: Option<&aws_sdk_s3::types::ServerSideEncryption>) -> bool {
    encryption.is_some()
}

/// Sets a body's check on a write request (PutObject, UploadPart) or a completed part. A macro because the
/// SDK's request builders share no trait.
macro_rules! with_body_check {
    ($request:expr, $check:expr) => {{
        let check: &super::integrity::BodyCheck = $check;
        $request
            .set_checksum_crc32_c(check.crc32c())
            .set_checksum_crc64_nvme(check.crc64nvme())
            .set_content_md5(check.content_md5())
    }};
}
pub(super) use with_body_check;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_sends_the_md5_as_content_md5_and_checks_the_etag_against_it() {
        let check = BodyCheck::of_bytes(b"hello", UploadChecksum::Off);
        assert_eq!(check.crc32c(), None);
        // RFC 1864's form: base64 of the 16 digest bytes (md5("hello") = 5d41402a...).
        assert_eq!(check.content_md5().as_deref(), Some("XUFAKrxLKna5cZ2REBfFkg=="));
        assert!(check.agrees_with(Some("\"5d41402abc4b2a76b9719d911017c592\""), false).is_ok());
        let wrong = check.agrees_with(Some("\"00000000000000000000000000000000\""), false).unwrap_err();
        assert!(wrong.is(FailureCode::ChecksumMismatch) && wrong.transient, "{wrong:?}");
        // Not an MD5: a multipart ETag, or an encrypted object's.
        assert!(check.agrees_with(Some("\"00000000000000000000000000000000-2\""), false).is_ok());
        assert!(check.agrees_with(Some("\"00000000000000000000000000000000\""), true).is_ok());

        let check = BodyCheck::of_bytes(b"hello", UploadChecksum::Crc32c);
        assert_eq!((check.crc32c().is_some(), check.crc64nvme(), check.content_md5()), (true, None, None));
        let check = BodyCheck::of_bytes(b"hello", UploadChecksum::Crc64nvme);
        assert_eq!((check.crc32c(), check.crc64nvme().is_some(), check.content_md5()), (None, true, None));
        assert!(check.agrees_with(Some("\"00000000000000000000000000000000\""), false).is_ok());
    }
}
