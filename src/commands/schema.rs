//! `haul schema`: the manifest's JSON schema, for editors.

use std::io::Write as _;

use crate::error::{Exit, HaulError};

pub(super) fn run() -> Result<Exit, HaulError> {
    // A closed pipe (`haul schema | head`) is not an error worth a message.
    let _ = writeln!(std::io::stdout(), "{}", schema_json());
    Ok(Exit::Success)
}

/// The schema exactly as checked in under `schemas/manifest.schema.json`.
fn schema_json() -> String {
    serde_json::to_string_pretty(&crate::manifest::manifest_schema()).expect("a schema serializes to JSON")
}
