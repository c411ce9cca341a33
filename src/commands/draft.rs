//! Manifests written for people: `haul sync` turns its flags into one, `haul import` turns
//! `aws s3 sync` lines into one. Both fill in [`Draft`]s and write them here, so the two say
//! a transfer the same way, and what the manifest loader reads back is what was meant.

use std::path::{Path, PathBuf};

use crate::error::HaulError;

/// One side of a transfer, as written on a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    Bucket {
        bucket: String,
        prefix: String,
    },
    /// As written (`import` keeps relative folders relative) or made absolute (`sync`).
    Folder(PathBuf),
}

impl Side {
    /// `s3://bucket/prefix` or a folder; a folder is joined to `cwd` when one is given.
    pub fn parse(text: &str, cwd: Option<&Path>) -> Result<Side, HaulError> {
        let Some(rest) = text.strip_prefix("s3://").or_else(|| text.strip_prefix("S3://")) else {
            return Ok(Side::Folder(match cwd {
                Some(cwd) => {
                    let joined = cwd.join(text);
                    std::path::absolute(&joined).unwrap_or(joined)
                }
                None => PathBuf::from(text),
            }));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(HaulError::BadS3Url { url: text.to_string() });
        }
        Ok(Side::Bucket { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }
}

/// A transfer to write: where from and to, and the settings the line gave.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub name: String,
    pub source: Option<Side>,
    pub destination: Option<Side>,
    pub extensions: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub delete: bool,
    pub max_delete: Option<u64>,
    pub compare: Option<String>,
    pub request_payer: bool,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub concurrency: Option<crate::manifest::Concurrency>,
    pub storage_class: Option<String>,
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
    pub follow_symlinks: Option<bool>,
    /// `50MiB/s`.
    pub bandwidth: Option<String>,
    /// The time zone of the dates in its paths (`import` of `$(date ...)`).
    pub timezone: Option<String>,
    /// A canned ACL, `bucket-owner-full-control`.
    pub acl: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    /// User metadata, in order.
    pub metadata: Vec<(String, String)>,
    /// Other settings, as written in YAML (`older_than`, `overwrite`, ...).
    pub settings: Vec<(&'static str, String)>,
    /// Comment lines written above the transfer (what was not translated, and why).
    pub notes: Vec<String>,
    /// Comments at the end of a setting's line, by key.
    pub remarks: Vec<(&'static str, String)>,
}

/// A YAML string: JSON's quoting is YAML's double-quoted style, so any text stays one value.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|item| quoted(item)).collect::<Vec<_>>().join(", "))
}

impl Draft {
    /// The transfer's lines (under `transfers:`), or why the two sides cannot make one.
    pub fn yaml(&self) -> Result<String, HaulError> {
        let mut lines: Vec<String> =
            self.notes.iter().map(|note| format!("  # {}", crate::text::printable(note))).collect();
        lines.push(format!("  - name: {}", quoted(&self.name)));
        let mut line = |key: &str, value: String| {
            let remark = self.remarks.iter().find(|(k, _)| *k == key.trim()).map(|(_, r)| r.as_str());
            let written = if value.is_empty() { format!("    {key}:") } else { format!("    {key}: {value}") };
            match remark {
                Some(remark) => lines.push(format!("{written}  # {}", crate::text::printable(remark))),
                None => lines.push(written),
            }
        };
        match (&self.source, &self.destination) {
            (Some(Side::Bucket { bucket, prefix }), Some(Side::Folder(folder)))
            | (Some(Side::Folder(folder)), Some(Side::Bucket { bucket, prefix })) => {
                let download = matches!(self.source, Some(Side::Bucket { .. }));
                line("direction", if download { "download" } else { "upload" }.into());
                line("bucket", quoted(bucket));
                line("prefix", quoted(prefix));
                line("local", quoted(&folder.display().to_string()));
            }
            (Some(Side::Bucket { bucket, prefix }), Some(Side::Bucket { bucket: to_bucket, prefix: to_prefix })) => {
                line("direction", "copy".into());
                line("bucket", quoted(bucket));
                line("prefix", quoted(prefix));
                line("to", String::new());
                line("  bucket", quoted(to_bucket));
                line("  prefix", quoted(to_prefix));
            }
            (Some(Side::Folder(_)), Some(Side::Folder(_))) => {
                return Err(HaulError::SyncUsage {
                    message: "both sides are local folders; haul moves between S3 and folders, or between buckets"
                        .into(),
                    help: "write one side as `s3://bucket/prefix/`; for two folders use rsync or cp".into(),
                });
            }
            _ => {
                return Err(HaulError::SyncUsage {
                    message: "a transfer needs a source and a destination".into(),
                    help: "write both: `SRC DST`".into(),
                });
            }
        }
        if !self.extensions.is_empty() {
            line("extensions", list(&self.extensions));
        }
        if !self.include.is_empty() {
            line("include", list(&self.include));
        }
        if !self.exclude.is_empty() {
            line("exclude", list(&self.exclude));
        }
        if self.delete {
            line("delete", "true".into());
        }
        if let Some(max) = self.max_delete {
            line("max_delete", max.to_string());
        }
        if let Some(compare) = &self.compare {
            line("compare", compare.clone());
        }
        if self.request_payer {
            line("request_payer", "requester".into());
        }
        for (key, value) in [
            ("profile", &self.profile),
            ("region", &self.region),
            ("endpoint", &self.endpoint),
            ("storage_class", &self.storage_class),
            ("sse", &self.sse),
            ("sse_kms_key_id", &self.sse_kms_key_id),
        ] {
            if let Some(value) = value {
                line(key, quoted(value));
            }
        }
        if self.path_style {
            line("path_style", "true".into());
        }
        if let Some(concurrency) = self.concurrency {
            line("concurrency", concurrency.to_string());
        }
        if let Some(follow) = self.follow_symlinks {
            line("follow_symlinks", follow.to_string());
        }
        if let Some(rate) = &self.bandwidth {
            line("bandwidth", quoted(rate));
        }
        if let Some(zone) = &self.timezone {
            line("timezone", quoted(zone));
        }
        for (key, value) in [
            ("acl", &self.acl),
            ("content_type", &self.content_type),
            ("cache_control", &self.cache_control),
            ("content_disposition", &self.content_disposition),
        ] {
            if let Some(value) = value {
                line(key, quoted(value));
            }
        }
        for (key, value) in &self.settings {
            line(key, value.clone());
        }
        if !self.metadata.is_empty() {
            let pairs: Vec<String> =
                self.metadata.iter().map(|(key, value)| format!("{}: {}", quoted(key), quoted(value))).collect();
            line("metadata", format!("{{{}}}", pairs.join(", ")));
        }
        let mut text = lines.join("\n");
        text.push('\n');
        Ok(text)
    }
}

/// A whole manifest: `header` comment lines, then the transfers.
pub fn manifest(header: &[String], drafts: &[Draft]) -> Result<String, HaulError> {
    let mut text: String = header.iter().map(|line| format!("# {}\n", crate::text::printable(line))).collect();
    text.push_str("version: 1\ntransfers:\n");
    for (index, draft) in drafts.iter().enumerate() {
        if index > 0 {
            text.push('\n');
        }
        text.push_str(&draft.yaml()?);
    }
    Ok(text)
}
