//! `haul init`: a commented starter manifest, never over an existing file.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Exit, HaulError};

/// The starter manifest `haul init` writes (also checked by the tests to be valid).
const STARTER_MANIFEST: &str = include_str!("starter.yaml");

pub(super) fn run(path: &Path) -> Result<Exit, HaulError> {
    // create_new: never overwrite, even if the file appears between a check and the write.
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(HaulError::InitTargetExists { path: path.to_path_buf() });
        }
        Err(source) => {
            return Err(HaulError::Write { path: path.to_path_buf(), source });
        }
    };
    file.write_all(STARTER_MANIFEST.as_bytes())
        .map_err(|source| HaulError::Write { path: path.to_path_buf(), source })?;
    super::print_all(
        format!("wrote {}; edit it, then run `haul validate {}`\n", path.display(), path.display()).as_bytes(),
    )?;
    Ok(Exit::Success)
}
