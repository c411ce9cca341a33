//! What an unfinished ranged download has, kept in its own temp file: after the object's
//! bytes (the file is `size` long once done) comes a record of the ranges already written,
//! each with its CRC, then a footer (`record length`, the record's CRC32C, a magic tag). The
//! record is rewritten after every range, so even a `kill -9` leaves the next run what it
//! needs, and it goes away with the `set_len(size)` that ends a download.
//!
//! A record is never trusted over the data or the server: the next run uses it only for the
//! same key, size and ETag (a replaced object starts over), reads every recorded range back and
//! checks its CRC (a range lost with the page cache is fetched again), and checks the whole
//! object's checksum at the end as any download does.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"HAULRSM1";
const FOOTER: u64 = 8 + 4 + 8;

/// The record of an unfinished ranged download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// The key relative to the transfer's prefix.
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// The range layout: ranges of this size (the object's own parts where its checksum is
    /// composite), so a resumed download cuts the object the same way.
    pub chunk: u64,
    pub part_size: Option<u64>,
    /// The CRC the ranges are hashed with (`crc32c`, ...; the object's checksum algorithm, or
    /// CRC32C where the object has none haul can rebuild).
    pub algorithm: String,
    /// `(start, length, crc)` of each range written.
    pub ranges: Vec<(u64, u64, u64)>,
}

impl Record {
    pub const VERSION: u32 = 1;

    /// Writes the record after the object's `size` bytes of `file`, replacing any before it.
    pub fn write(&self, file: &File) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut footer = Vec::with_capacity(FOOTER as usize);
        footer.extend_from_slice(&(json.len() as u64).to_be_bytes());
        footer.extend_from_slice(&crc32c(&json).to_be_bytes());
        footer.extend_from_slice(MAGIC);
        file.write_all_at(&json, self.size)?;
        file.write_all_at(&footer, self.size + json.len() as u64)?;
        file.set_len(self.size + json.len() as u64 + FOOTER)
    }

    /// The record at the end of `file`, when there is a whole one.
    pub fn read(file: &File) -> Option<Record> {
        let length = file.metadata().ok()?.len();
        let mut footer = [0u8; FOOTER as usize];
        file.read_exact_at(&mut footer, length.checked_sub(FOOTER)?).ok()?;
        if &footer[12..] != MAGIC {
            return None;
        }
        let json_length = u64::from_be_bytes(footer[..8].try_into().ok()?);
        let crc = u32::from_be_bytes(footer[8..12].try_into().ok()?);
        let start = length.checked_sub(FOOTER)?.checked_sub(json_length)?;
        if json_length > 64 * 1024 * 1024 {
            return None;
        }
        let mut json = vec![0u8; json_length as usize];
        file.read_exact_at(&mut json, start).ok()?;
        if crc32c(&json) != crc {
            return None;
        }
        let record: Record = serde_json::from_slice(&json).ok()?;
        (record.version == Record::VERSION && record.size == start).then_some(record)
    }
}

fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(size: u64, ranges: Vec<(u64, u64, u64)>) -> Record {
        Record {
            version: Record::VERSION,
            key: "a/매출.parquet".into(),
            size,
            etag: "abc-3".into(),
            chunk: 4,
            part_size: None,
            algorithm: "crc32c".into(),
            ranges,
        }
    }

    #[test]
    fn a_record_is_read_back_replaced_and_refused_when_torn() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(b"0123456789", 0).unwrap();
        assert_eq!(Record::read(&file), None, "no record");
        let long = record(10, vec![(0, 4, 1), (4, 4, 2)]);
        long.write(&file).unwrap();
        assert_eq!(Record::read(&file), Some(long));
        // A shorter record replaces a longer one whole.
        let short = record(10, vec![(0, 4, 1)]);
        short.write(&file).unwrap();
        assert_eq!(Record::read(&file), Some(short.clone()));
        // The object's bytes are untouched.
        let mut data = [0u8; 10];
        file.read_exact_at(&mut data, 0).unwrap();
        assert_eq!(&data, b"0123456789");
        // A flipped byte in the record: refused.
        let length = file.metadata().unwrap().len();
        file.write_all_at(b"X", length - FOOTER - 3).unwrap();
        assert_eq!(Record::read(&file), None);
        // A finished download is cut to its size: no record.
        short.write(&file).unwrap();
        file.set_len(10).unwrap();
        assert_eq!(Record::read(&file), None);
    }
}
