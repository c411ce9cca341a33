//! ETags as haul keeps them. S3 sends an ETag quoted (`"9b2c…"`, `"9b2c…-3"` for a multipart
//! upload); haul holds it bare in listings, plans and resume records, trims the quotes once
//! where it comes in, and quotes it again only where a request asks for it (`If-Match`).

use serde::{Deserialize, Serialize};

/// An ETag without its quotes. Serialized as the bare string (plans and resume records
/// written before this type read the same).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ETag(String);

impl ETag {
    /// An ETag as a server or a file wrote it, quoted or not.
    pub fn new(text: &str) -> ETag {
        ETag(text.trim_matches('"').to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value of an `If-Match` header (and of a completed part's ETag): quoted.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// Whether an answer's ETag (quoted or not) is this one.
    pub fn is(&self, answered: &str) -> bool {
        self.0 == answered.trim_matches('"')
    }

    /// The part count of a multipart upload's ETag (`…-3`).
    pub fn parts(&self) -> Option<u32> {
        self.0.rsplit_once('-')?.1.parse().ok()
    }

    /// The MD5 of the bytes, where the ETag is one (a single-part upload without KMS):
    /// 32 hex digits.
    pub fn md5_hex(&self) -> Option<&str> {
        (self.0.len() == 32 && self.0.bytes().all(|b| b.is_ascii_hexdigit())).then_some(self.0.as_str())
    }
}

impl From<String> for ETag {
    fn from(text: String) -> ETag {
        match text.starts_with('"') || text.ends_with('"') {
            true => ETag::new(&text),
            false => ETag(text),
        }
    }
}

impl From<&str> for ETag {
    fn from(text: &str) -> ETag {
        ETag::new(text)
    }
}

impl From<ETag> for String {
    fn from(etag: ETag) -> String {
        etag.0
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ETag;

    #[test]
    fn quotes_are_trimmed_once_and_put_back_for_requests() {
        let etag = ETag::new("\"9b2cf535f27731c974343645a3985328-3\"");
        assert_eq!(etag.as_str(), "9b2cf535f27731c974343645a3985328-3");
        assert_eq!(etag.quoted(), "\"9b2cf535f27731c974343645a3985328-3\"");
        assert_eq!(etag.parts(), Some(3));
        assert_eq!(etag.md5_hex(), None);
        assert!(etag.is("\"9b2cf535f27731c974343645a3985328-3\"") && etag.is(etag.as_str()));
        let single = ETag::new("9b2cf535f27731c974343645a3985328");
        assert_eq!(single.md5_hex(), Some("9b2cf535f27731c974343645a3985328"));
        assert_eq!(single.parts(), None);
        // Written bare; a quoted one in an older file reads the same.
        assert_eq!(serde_json::to_string(&single).unwrap(), "\"9b2cf535f27731c974343645a3985328\"");
        assert_eq!(serde_json::from_str::<ETag>("\"\\\"abc\\\"\"").unwrap(), ETag::new("abc"));
    }
}
