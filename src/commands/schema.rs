//! `haul schema`: the manifest's JSON schema, for editors.

use crate::error::{Exit, HaulError};

pub(super) fn run() -> Result<Exit, HaulError> {
    super::print_all(format!("{}\n", schema_json()).as_bytes())?;
    Ok(Exit::Success)
}

/// The schema exactly as checked in under `schemas/manifest.schema.json`.
fn schema_json() -> String {
    serde_json::to_string_pretty(&crate::manifest::manifest_schema()).expect("a schema serializes to JSON")
}
