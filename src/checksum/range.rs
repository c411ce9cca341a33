//! Verifying a download made of parallel ranges against the object's checksum, without
//! reading the file back: each range is hashed as its chunks arrive, and the range CRCs are
//! combined (CRC combination: the CRC of a concatenation follows from the parts' CRCs and
//! lengths). A full-object CRC is the combination of all ranges; a composite (multipart) one
//! is the CRC of the parts' CRCs, so ranges are laid out never to straddle a part boundary,
//! and each part's CRC is the combination of its ranges.
//!
//! Only CRC checksums combine; an object with only a SHA or MD5 checksum is checked by length
//! and ETag (`If-Match`) alone, as before.

use base64::Engine as _;

use super::{Algorithm, RemoteChecksum};

/// How a ranged download is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeVerification {
    pub algorithm: crc_fast::CrcAlgorithm,
    /// Bytes of the checksum (4 for CRC32 and CRC32C, 8 for CRC64NVME).
    width: usize,
    /// Base64 of the expected checksum, without a `-N` suffix.
    expected: String,
    /// For a composite checksum: the upload's part size.
    pub part_size: Option<u64>,
}

impl RangeVerification {
    /// What can be checked of `checksum`, for an object of `size` bytes whose first part is
    /// `first_part` bytes (when the server answers a HEAD of part 1). `None`: nothing
    /// combinable (SHA, MD5, or a composite checksum whose parts do not add up).
    pub fn new(checksum: &RemoteChecksum, size: u64, first_part: Option<u64>) -> Option<Self> {
        let (algorithm, width) = match checksum.algorithm {
            Algorithm::Crc64Nvme => (crc_fast::CrcAlgorithm::Crc64Nvme, 8),
            Algorithm::Crc32c => (crc_fast::CrcAlgorithm::Crc32Iscsi, 4),
            Algorithm::Crc32 => (crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4),
            Algorithm::Sha256 | Algorithm::Sha1 | Algorithm::Md5 => return None,
        };
        let part_size = match checksum.parts {
            None => None,
            // A server that ignores `partNumber` answers with the whole object; then the part
            // layout is unknown.
            Some(parts) => match first_part {
                Some(part) if part > 0 && size.div_ceil(part) == parts => Some(part),
                _ => return None,
            },
        };
        Some(RangeVerification { algorithm, width, expected: checksum.value.clone(), part_size })
    }

    /// Checks the ranges' CRCs (`(start, length, crc)`, in any order, covering the object).
    pub fn matches(&self, ranges: &mut [(u64, u64, u64)]) -> bool {
        ranges.sort_unstable_by_key(|&(start, _, _)| start);
        let actual = match self.part_size {
            None => self.encode(self.combine(ranges)),
            Some(part_size) => {
                let mut outer = crc_fast::Digest::new(self.algorithm);
                for part in ranges.chunk_by(|a, b| a.0 / part_size == b.0 / part_size) {
                    outer.update(&self.bytes(self.combine(part)));
                }
                self.encode(outer.finalize())
            }
        };
        actual == self.expected
    }

    fn combine(&self, ranges: &[(u64, u64, u64)]) -> u64 {
        let mut ranges = ranges.iter();
        let first = ranges.next().map_or(crc_fast::checksum(self.algorithm, b""), |&(_, _, crc)| crc);
        ranges.fold(first, |acc, &(_, length, crc)| crc_fast::checksum_combine(self.algorithm, acc, crc, length))
    }

    fn bytes(&self, crc: u64) -> Vec<u8> {
        crc.to_be_bytes()[8 - self.width..].to_vec()
    }

    fn encode(&self, crc: u64) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.bytes(crc))
    }
}

/// The ranges (inclusive `(first, last)` byte offsets) of a download of `size` bytes in
/// pieces of at most `chunk`, none straddling a boundary of `part_size` parts.
pub fn layout(size: u64, chunk: u64, part_size: Option<u64>) -> Vec<(u64, u64)> {
    let chunk = chunk.max(1);
    let part_size = part_size.unwrap_or(size).max(1);
    let mut ranges = Vec::with_capacity(size.div_ceil(chunk) as usize);
    let mut part_start = 0;
    while part_start < size {
        let part_end = (part_start + part_size).min(size);
        let mut start = part_start;
        while start < part_end {
            let end = (start + chunk).min(part_end);
            ranges.push((start, end - 1));
            start = end;
        }
        part_start = part_end;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::checksum_of;

    fn crcs(data: &[u8], algorithm: crc_fast::CrcAlgorithm, ranges: &[(u64, u64)]) -> Vec<(u64, u64, u64)> {
        ranges
            .iter()
            .rev() // arrival order is not file order
            .map(|&(first, last)| {
                let slice = &data[first as usize..=last as usize];
                (first, slice.len() as u64, crc_fast::checksum(algorithm, slice))
            })
            .collect()
    }

    #[test]
    fn ranges_cover_the_object_and_respect_part_boundaries() {
        assert_eq!(layout(10, 4, None), vec![(0, 3), (4, 7), (8, 9)]);
        assert_eq!(layout(10, 4, Some(5)), vec![(0, 3), (4, 4), (5, 8), (9, 9)]);
        assert_eq!(layout(10, 100, Some(3)), vec![(0, 2), (3, 5), (6, 8), (9, 9)]);
        assert_eq!(layout(0, 4, None), vec![]);
    }

    #[test]
    fn full_object_checksums_are_combined_from_ranges() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (algorithm, crc) in [
            (Algorithm::Crc32c, crc_fast::CrcAlgorithm::Crc32Iscsi),
            (Algorithm::Crc32, crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            (Algorithm::Crc64Nvme, crc_fast::CrcAlgorithm::Crc64Nvme),
        ] {
            let expected = RemoteChecksum::parse(algorithm, &checksum_of(&mut &data[..], algorithm, None).unwrap());
            let check = RangeVerification::new(&expected, data.len() as u64, None).unwrap();
            assert!(check.matches(&mut crcs(&data, crc, &layout(10_000, 999, None))), "{algorithm:?}");
            let mut flipped = data.clone();
            flipped[5_000] ^= 1;
            assert!(!check.matches(&mut crcs(&flipped, crc, &layout(10_000, 999, None))), "{algorithm:?}");
        }
    }

    #[test]
    fn composite_checksums_are_rebuilt_part_by_part_from_smaller_ranges() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 241) as u8).collect();
        let composite = checksum_of(&mut &data[..], Algorithm::Crc32c, Some(3_000)).unwrap();
        let expected = RemoteChecksum::parse(Algorithm::Crc32c, &format!("{composite}-4"));
        let check = RangeVerification::new(&expected, 10_000, Some(3_000)).unwrap();
        assert_eq!(check.part_size, Some(3_000));
        let ranges = layout(10_000, 1_024, check.part_size);
        let alg = crc_fast::CrcAlgorithm::Crc32Iscsi;
        assert!(check.matches(&mut crcs(&data, alg, &ranges)));
        let mut flipped = data.clone();
        flipped[9_999] ^= 0x80;
        assert!(!check.matches(&mut crcs(&flipped, alg, &ranges)));
        // Parts that do not add up to the checksum's count, or no part size: not checkable.
        assert_eq!(RangeVerification::new(&expected, 10_000, Some(5_000)), None);
        assert_eq!(RangeVerification::new(&expected, 10_000, None), None);
        let sha = RemoteChecksum::parse(Algorithm::Sha256, "abc=");
        assert_eq!(RangeVerification::new(&sha, 10_000, None), None);
    }
}
