//! `haul ls`: buckets, or objects and common prefixes under s3://bucket/prefix, printed page
//! by page as they arrive (a million keys are never held at once), like `aws s3 ls`.

use std::io::Write;

use serde::Serialize;

use super::flag_target;
use crate::cli::{LsArgs, OutputFormat};
use crate::engine::runtime;
use crate::error::{Exit, HaulError};
use crate::s3::{RequestFailure, request_failure};
use crate::text::{human_bytes, printable};

pub(super) fn run(args: &LsArgs) -> Result<Exit, HaulError> {
    let options = LsOptions {
        recursive: args.recursive,
        human_readable: args.human_readable,
        summarize: args.summarize,
        owner: args.owner,
        json: args.output == OutputFormat::Json,
    };
    let url = args.url.as_deref();
    let runtime = runtime()?;
    let target = flag_target(&args.target, args.request_payer);
    let client = runtime.block_on(crate::s3::client(&target))?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let (listed, what) = match url {
        None => (runtime.block_on(list_buckets(&client, options, &mut stdout)), "cannot list buckets".to_string()),
        Some(text) => {
            let url = S3Url::parse(text).ok_or_else(|| HaulError::BadS3Url { url: text.to_string() })?;
            let listed = runtime.block_on(list_objects(&client, &url, options, &mut stdout));
            (listed, format!("cannot list s3://{}/{}", url.bucket, url.prefix))
        }
    };
    // What was printed before a failed request is still shown.
    let flushed = stdout.flush();
    match listed {
        Err(LsFailure::Request(failure)) => Err(HaulError::Request { what, failure }),
        Err(LsFailure::Output(err)) => Err(HaulError::output(err)),
        Ok(()) => flushed.map(|()| Exit::Success).map_err(HaulError::output),
    }
}

/// Why a listing stopped: the server's answer, or standard output (a full disk, a reader
/// that went away: the listing stops at once either way).
enum LsFailure {
    Request(RequestFailure),
    Output(std::io::Error),
}

impl From<RequestFailure> for LsFailure {
    fn from(failure: RequestFailure) -> Self {
        LsFailure::Request(failure)
    }
}

impl From<std::io::Error> for LsFailure {
    fn from(err: std::io::Error) -> Self {
        LsFailure::Output(err)
    }
}

/// `s3://bucket/prefix` split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    pub fn parse(text: &str) -> Option<S3Url> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| S3Url { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LsOptions {
    pub recursive: bool,
    pub human_readable: bool,
    pub summarize: bool,
    pub owner: bool,
    pub json: bool,
}

/// `2026-11-25 14:00:00` (UTC).
/// RFC 3339 in UTC to the second (`2026-11-26T05:09:36Z`), as every haul document writes
/// times for people; blank when the server gave none.
fn when(time: Option<&aws_smithy_types::DateTime>) -> String {
    time.and_then(|t| {
        aws_smithy_types::DateTime::from_secs(t.secs()).fmt(aws_smithy_types::date_time::Format::DateTime).ok()
    })
    .unwrap_or_else(|| " ".repeat(20))
}

/// RFC 3339 in UTC with the milliseconds the server gave (`2026-11-26T05:09:36.120Z`), for JSON.
fn when_exact(time: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    time.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
}

#[derive(Serialize)]
struct BucketJson<'a> {
    name: &'a str,
    created: Option<String>,
}

/// Lists the buckets the credentials see.
async fn list_buckets(client: &aws_sdk_s3::Client, options: LsOptions, out: &mut impl Write) -> Result<(), LsFailure> {
    let mut pages = client.list_buckets().into_paginator().send();
    let mut first = true;
    if options.json {
        write!(out, "{{\"buckets\":[")?;
    }
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| LsFailure::Request(request_failure(&err)))?;
        for bucket in page.buckets() {
            let name = bucket.name().unwrap_or_default();
            let created = when(bucket.creation_date());
            if options.json {
                let item = serde_json::to_string(&BucketJson { name, created: when_exact(bucket.creation_date()) })
                    .expect("json");
                write!(out, "{}\n{item}", if first { "" } else { "," })?;
            } else {
                writeln!(out, "{created} {}", printable(name))?;
            }
            first = false;
        }
    }
    if options.json {
        writeln!(out, "\n]}}")?;
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum EntryJson<'a> {
    Prefix {
        key: &'a str,
    },
    Object {
        key: &'a str,
        size: u64,
        last_modified: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        etag: Option<crate::etag::ETag>,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        storage_class: Option<&'a str>,
    },
}

/// Lists objects (and, without `recursive`, the common prefixes) under `url`.
async fn list_objects(
    client: &aws_sdk_s3::Client,
    url: &S3Url,
    options: LsOptions,
    out: &mut impl Write,
) -> Result<(), LsFailure> {
    let mut request = client.list_objects_v2().bucket(&url.bucket).prefix(&url.prefix).fetch_owner(options.owner);
    if !options.recursive {
        request = request.delimiter("/");
    }
    // Without --recursive, names are shown relative to the prefix's folder, as `aws s3 ls` does.
    let shown_from = if options.recursive { 0 } else { url.prefix.rfind('/').map_or(0, |i| i + 1) };
    let (mut objects, mut bytes) = (0u64, 0u64);
    let mut first = true;
    if options.json {
        let head = serde_json::json!({ "bucket": url.bucket, "prefix": url.prefix }).to_string();
        write!(out, "{},\"entries\":[", head.trim_end_matches('}'))?;
    }
    let mut emit = |out: &mut dyn Write, line: String, json: String| {
        let written = if options.json {
            write!(out, "{}\n{json}", if first { "" } else { "," })
        } else {
            writeln!(out, "{line}")
        };
        first = false;
        written
    };
    let mut token: Option<String> = None;
    let mut url_encoded = false;
    loop {
        let mut page_request = request.clone().set_continuation_token(token.clone());
        if url_encoded {
            page_request = page_request.encoding_type(aws_sdk_s3::types::EncodingType::Url);
        }
        let page = match page_request.send().await {
            // A key with a control character makes the page unreadable XML: ask for the page
            // again with keys URL-encoded (as the listing stage does).
            Err(err) if !url_encoded && crate::listing::remote::unreadable_page(&err) => {
                url_encoded = true;
                continue;
            }
            answer => answer.map_err(|err| LsFailure::Request(request_failure(&err)))?,
        };
        let encoded = url_encoded && page.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        let decode = |key: &str| -> String {
            if encoded {
                crate::listing::remote::url_decode(key).unwrap_or_else(|| key.to_string())
            } else {
                key.to_string()
            }
        };
        // One page holds prefixes and objects separately; print them merged in key order.
        let mut rows: Vec<(String, Option<&aws_sdk_s3::types::Object>)> = Vec::new();
        rows.extend(page.common_prefixes().iter().filter_map(|p| p.prefix()).map(|p| (decode(p), None)));
        rows.extend(page.contents().iter().filter_map(|o| o.key().map(|k| (decode(k), Some(o)))));
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, object) in rows {
            let key = key.as_str();
            let shown = key.get(shown_from..).unwrap_or(key);
            match object {
                None => emit(
                    out,
                    format!("{:>30} {}", "PRE", printable(shown)),
                    serde_json::to_string(&EntryJson::Prefix { key }).expect("json"),
                )?,
                Some(object) => {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    objects += 1;
                    bytes += size;
                    let size_text = if options.human_readable { human_bytes(size) } else { size.to_string() };
                    let owner = object.owner().and_then(|o| o.id().or(o.display_name()));
                    let owner_column = if options.owner { format!("{} ", owner.unwrap_or("-")) } else { String::new() };
                    let json = EntryJson::Object {
                        key,
                        size,
                        last_modified: when_exact(object.last_modified()),
                        etag: object.e_tag().map(crate::etag::ETag::new),
                        owner,
                        storage_class: object.storage_class().map(|c| c.as_str()),
                    };
                    emit(
                        out,
                        format!("{} {size_text:>10} {owner_column}{}", when(object.last_modified()), printable(shown)),
                        serde_json::to_string(&json).expect("json"),
                    )?;
                }
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            break;
        }
    }
    if options.json {
        let summary = serde_json::json!({ "objects": objects, "bytes": bytes });
        writeln!(out, "\n],\"summary\":{summary}}}")?;
    } else if options.summarize {
        let total = if options.human_readable { human_bytes(bytes) } else { format!("{bytes} Bytes") };
        writeln!(out, "\nTotal Objects: {objects}\n   Total Size: {total}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(S3Url::parse("s3://b/p/q/"), Some(S3Url { bucket: "b".into(), prefix: "p/q/".into() }));
        assert_eq!(S3Url::parse("s3://b"), Some(S3Url { bucket: "b".into(), prefix: String::new() }));
        assert_eq!(S3Url::parse("b/p"), None);
        assert_eq!(S3Url::parse("s3:///p"), None);
    }
}
