//! Checksums in one place: the algorithms S3 reports, an object's checksum as a HEAD gives
//! it, hashing a local file the same way (whole-object or composite), and, in `range`,
//! combining the CRCs of a download's ranges. Used by the content check of `compare:
//! checksum` (`content_check`), by uploads (the CRC32C header of each body) and by downloads
//! (`exec`).
//!
//! What is compared, in order of preference: the object's full-object CRC64NVME, CRC32C,
//! CRC32, SHA-256 or SHA-1; a composite (multipart) one of those, recomputed with the upload's
//! part size (from a HEAD of part 1); else a plain ETag, which is the MD5 of a single-part
//! object not encrypted with KMS. An object with none of these cannot be compared and is
//! copied (`checksum-unavailable`).

pub mod range;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use base64::Engine as _;
use sha2::Digest as _;

/// A checksum algorithm S3 reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc64Nvme,
    Crc32c,
    Crc32,
    Sha256,
    Sha1,
    /// The ETag of a single-part object (hex, not base64).
    Md5,
}

/// The checksum an object carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteChecksum {
    pub algorithm: Algorithm,
    /// Base64 (hex for MD5), without a `-N` suffix.
    pub value: String,
    /// For a composite (multipart) checksum: the number of parts.
    pub parts: Option<u64>,
}

impl RemoteChecksum {
    pub fn from_head(head: &HeadObjectOutput) -> Option<Self> {
        let candidates = [
            (Algorithm::Crc64Nvme, head.checksum_crc64_nvme()),
            (Algorithm::Crc32c, head.checksum_crc32_c()),
            (Algorithm::Crc32, head.checksum_crc32()),
            (Algorithm::Sha256, head.checksum_sha256()),
            (Algorithm::Sha1, head.checksum_sha1()),
        ];
        let etag = head.e_tag().map(crate::etag::ETag::new);
        let etag_parts = etag.as_ref().and_then(crate::etag::ETag::parts).map(u64::from);
        if let Some((algorithm, value)) = candidates.into_iter().find_map(|(a, v)| Some((a, v?))) {
            let mut checksum = Self::parse(algorithm, value);
            // A checksum of a multipart object is composite unless it says it is full-object
            // (CRC64NVME always is). Some servers (moto) leave out the `-N` suffix.
            let full_object = algorithm == Algorithm::Crc64Nvme
                || head.checksum_type() == Some(&aws_sdk_s3::types::ChecksumType::FullObject);
            if checksum.parts.is_none() && !full_object {
                checksum.parts = etag_parts;
            }
            return Some(checksum);
        }
        let kms = matches!(
            head.server_side_encryption(),
            Some(aws_sdk_s3::types::ServerSideEncryption::AwsKms | aws_sdk_s3::types::ServerSideEncryption::AwsKmsDsse)
        );
        let md5 = etag.as_ref()?.md5_hex().filter(|_| !kms)?;
        Some(RemoteChecksum { algorithm: Algorithm::Md5, value: md5.to_lowercase(), parts: None })
    }

    /// `BASE64` or `BASE64-N` (composite over N parts).
    pub fn parse(algorithm: Algorithm, text: &str) -> Self {
        match text.rsplit_once('-').and_then(|(value, parts)| Some((value, parts.parse().ok()?))) {
            Some((value, parts)) => RemoteChecksum { algorithm, value: value.to_string(), parts: Some(parts) },
            None => RemoteChecksum { algorithm, value: text.to_string(), parts: None },
        }
    }
}

/// One running hash of any supported algorithm.
enum Hasher {
    Crc { digest: crc_fast::Digest, bytes: usize },
    Sha256(sha2::Sha256),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        use crc_fast::CrcAlgorithm;
        match algorithm {
            Algorithm::Crc64Nvme => Hasher::Crc { digest: crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme), bytes: 8 },
            Algorithm::Crc32c => Hasher::Crc { digest: crc_fast::Digest::new(CrcAlgorithm::Crc32Iscsi), bytes: 4 },
            Algorithm::Crc32 => Hasher::Crc { digest: crc_fast::Digest::new(CrcAlgorithm::Crc32IsoHdlc), bytes: 4 },
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc { digest, .. } => digest.update(data),
            Hasher::Sha256(hasher) => hasher.update(data),
            Hasher::Sha1(hasher) => hasher.update(data),
            Hasher::Md5(hasher) => hasher.update(data),
        }
    }

    /// The raw checksum bytes (big-endian for CRCs, as S3 encodes them).
    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc { digest, bytes } => digest.finalize().to_be_bytes()[8 - bytes..].to_vec(),
            Hasher::Sha256(hasher) => hasher.finalize().to_vec(),
            Hasher::Sha1(hasher) => hasher.finalize().to_vec(),
            Hasher::Md5(hasher) => hasher.finalize().to_vec(),
        }
    }
}

/// A checksum's bytes as S3 writes them: base64, hex for an MD5 ETag.
fn encode(algorithm: Algorithm, bytes: &[u8]) -> String {
    match algorithm {
        Algorithm::Md5 => crate::text::hex(bytes),
        _ => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

/// The checksum of `bytes` as S3 would report it (whole-object).
pub fn checksum_of_bytes(bytes: &[u8], algorithm: Algorithm) -> String {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(bytes);
    encode(algorithm, &hasher.finish())
}

/// The checksum of `length` bytes of `file` from `offset`, read `chunk` bytes at a time (the
/// caller's memory bound). A file that ends sooner is an `UnexpectedEof` error.
pub fn checksum_of_range(
    file: &std::fs::File,
    offset: u64,
    length: u64,
    algorithm: Algorithm,
    chunk: usize,
) -> std::io::Result<String> {
    Ok(checksums_of_range(file, offset, length, &[algorithm], chunk)?.remove(0))
}

/// [`checksum_of_range`] in several algorithms at once, in one read of the range.
pub fn checksums_of_range(
    file: &std::fs::File,
    offset: u64,
    length: u64,
    algorithms: &[Algorithm],
    chunk: usize,
) -> std::io::Result<Vec<String>> {
    let mut hashers: Vec<Hasher> = algorithms.iter().map(|algorithm| Hasher::new(*algorithm)).collect();
    read_range(file, offset, length, chunk, |piece| {
        for hasher in &mut hashers {
            hasher.update(piece);
        }
    })?;
    Ok(hashers.into_iter().zip(algorithms).map(|(hasher, algorithm)| encode(*algorithm, &hasher.finish())).collect())
}

/// Reads `length` bytes of `file` from `offset` in pieces of at most `chunk` bytes (one
/// buffer), handing each piece to `each` in order.
pub fn read_range(
    file: &std::fs::File,
    offset: u64,
    length: u64,
    chunk: usize,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let mut buffer = vec![0; chunk.min(length as usize)];
    let mut done = 0;
    while done < length {
        let piece = &mut buffer[..chunk.min((length - done) as usize)];
        file.read_exact_at(piece, offset + done)?;
        each(piece);
        done += piece.len() as u64;
    }
    Ok(())
}

/// The checksum of `reader` as S3 would report it: whole, or composite over `part_size`
/// parts (the checksum of the concatenated part checksums, then `-N`).
pub fn checksum_of(
    reader: &mut impl std::io::Read,
    algorithm: Algorithm,
    part_size: Option<u64>,
) -> std::io::Result<String> {
    let mut buffer = vec![0u8; 1024 * 1024];
    let encode = |bytes: &[u8]| encode(algorithm, bytes);
    let Some(part_size) = part_size else {
        let mut hasher = Hasher::new(algorithm);
        loop {
            let read = reader.read(&mut buffer)?;
            if read == 0 {
                return Ok(encode(&hasher.finish()));
            }
            hasher.update(&buffer[..read]);
        }
    };
    let mut outer = Hasher::new(algorithm);
    let mut parts = 0u64;
    loop {
        let mut part = Hasher::new(algorithm);
        let mut in_part = 0u64;
        while in_part < part_size {
            let want = buffer.len().min((part_size - in_part) as usize);
            let read = reader.read(&mut buffer[..want])?;
            if read == 0 {
                break;
            }
            part.update(&buffer[..read]);
            in_part += read as u64;
        }
        if in_part == 0 {
            break;
        }
        outer.update(&part.finish());
        parts += 1;
        if in_part < part_size {
            break;
        }
    }
    // An empty file has no parts; S3 never stores one as multipart, so this only says "differs".
    let _ = parts;
    Ok(encode(&outer.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn whole_object_checksums_match_the_standard_check_values() {
        let data = b"123456789";
        assert_eq!(checksum_of(&mut &data[..], Algorithm::Crc32c, None).unwrap(), b64(&[0xE3, 0x06, 0x92, 0x83]));
        assert_eq!(checksum_of(&mut &data[..], Algorithm::Crc32, None).unwrap(), b64(&[0xCB, 0xF4, 0x39, 0x26]));
        assert_eq!(
            checksum_of(&mut &data[..], Algorithm::Crc64Nvme, None).unwrap(),
            b64(&0xAE8B_1486_0A79_9888u64.to_be_bytes())
        );
        assert_eq!(checksum_of(&mut &b""[..], Algorithm::Md5, None).unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn checksums_of_bytes_and_of_a_range_read_in_chunks_are_those_of_the_reader() {
        assert_eq!(checksum_of_bytes(b"123456789", Algorithm::Crc32c), b64(&[0xE3, 0x06, 0x92, 0x83]));
        let chunk = 64 * 1024;
        let bytes: Vec<u8> = (0..chunk * 2 + 1234).map(|i| (i * 7 % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        for (offset, length) in [(0, bytes.len()), (10, chunk), (chunk - 1, chunk + 2), (5, 0)] {
            let slice = &bytes[offset..offset + length];
            let expected = checksum_of(&mut &slice[..], Algorithm::Crc32c, None).unwrap();
            assert_eq!(checksum_of_bytes(slice, Algorithm::Crc32c), expected);
            let read = checksum_of_range(&file, offset as u64, length as u64, Algorithm::Crc32c, chunk).unwrap();
            assert_eq!(read, expected, "{offset} {length}");
        }
        let short = checksum_of_range(&file, 0, bytes.len() as u64 + 1, Algorithm::Crc32c, chunk).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn composite_checksums_hash_the_part_checksums() {
        let data: Vec<u8> = (0..10u8).collect();
        let part = |range: std::ops::Range<usize>| {
            crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &data[range]).to_be_bytes()[4..].to_vec()
        };
        let joined = [part(0..4), part(4..8), part(8..10)].concat();
        let expected = b64(&crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &joined).to_be_bytes()[4..]);
        assert_eq!(checksum_of(&mut &data[..], Algorithm::Crc32c, Some(4)).unwrap(), expected);
    }

    #[test]
    fn composite_values_are_parsed_with_their_part_count() {
        let parsed = RemoteChecksum::parse(Algorithm::Crc32c, "abc=-3");
        assert_eq!((parsed.value.as_str(), parsed.parts), ("abc=", Some(3)));
        assert_eq!(RemoteChecksum::parse(Algorithm::Crc32c, "abc=").parts, None);
    }
}
