//! The semantic checks (S3 naming rules, ranges, overlaps) and the `defaults` merge that turns
//! each `TransferSpec` into a `Job`. Every problem points at the value that caused it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::dated::{self, Moment};
use super::load::ParsedSpec;
use super::model::{ByteSize, Concurrency, CopyTo, Direction, ServerSideEncryption, Settings, TransferSpec};
use super::places::Places;
use super::problem::{Location, Problem, did_you_mean};
use super::{CopyDestination, FilterSummary, Job, S3Target, UploadOptions, builtin};
use crate::filter::{Filter, PatternList, Window};

/// S3's smallest part (except the last) and largest single part.
const MIN_PART: u64 = 5 * ByteSize::MIB;
const MAX_PART: u64 = 5 * ByteSize::GIB;
const MAX_CONCURRENCY: u32 = 1024;
const MAX_RETRIES: u32 = 20;

/// Checks every transfer and builds its `Job`. Returns the jobs of the transfers without errors
/// and every problem (errors and warnings) found.
pub(super) fn resolve(parsed: ParsedSpec, base: &Path, at: &Moment, problems: &mut Vec<Problem>) -> Vec<Job> {
    let ParsedSpec { transfers, places, defaults_places, unidentified } = parsed;
    let positions = Positions { transfers: &places, defaults: &defaults_places };
    // Each transfer is dropped once its job is built: a manifest of 100,000 transfers need
    // not hold both at once.
    let count = transfers.iter().map(Vec::len).sum();
    let mut jobs = Vec::with_capacity(count);
    let mut destinations = Vec::with_capacity(count);
    let mut first_seen_names: HashMap<String, usize> = HashMap::with_capacity(count);
    let mut caches = Caches::default();
    for (index, transfer) in transfers.into_iter().flatten() {
        if let Some(&first) = first_seen_names.get(transfer.name.as_str()) {
            problems.push(
                Problem::error(positions.at(index, "name"), format!("duplicate transfer name `{}`", transfer.name))
                    .label(format!("also the name of transfer #{}", first + 1))
                    .help("give every transfer its own name; names select transfers in `--only` and reports"),
            );
        } else {
            first_seen_names.insert(transfer.name.clone(), index);
        }
        let mut check = TransferCheck::new(index, &positions, problems, &mut caches, at, base);
        if let Some(job) = check.job(&transfer) {
            jobs.push((index, job));
        }
        // Where it writes is known even when another of its settings is wrong: the overlap
        // check runs on every transfer, so it is not left for a second round of fixes.
        if let Some(destination) = Destination::of(&transfer, base, at) {
            destinations.push((index, destination));
        }
    }
    drop(first_seen_names);
    // Transfers whose name, direction, bucket or local is wrong: their settings all the same.
    for (index, settings) in &unidentified {
        TransferCheck::new(*index, &positions, problems, &mut caches, at, base).settings_only(settings);
    }
    check_destinations(&destinations, &positions, problems);
    jobs.into_iter().map(|(_, job)| job).collect()
}

/// Finds where values are, so problems can name a line and column: a transfer's own key, or
/// the one in `defaults` it inherited.
struct Positions<'a> {
    transfers: &'a [Places],
    defaults: &'a Places,
}

impl Positions<'_> {
    fn transfer(&self, index: usize) -> Option<&Places> {
        self.transfers.get(index)
    }

    /// The places (the transfer's own, else `defaults`) that gave transfer `index` its `key`.
    fn setting(&self, index: usize, key: &str) -> &Places {
        match self.transfer(index) {
            Some(places) if places.own(key).is_some() => places,
            _ => self.defaults,
        }
    }

    fn at(&self, index: usize, key: &str) -> Option<Location> {
        self.setting(index, key).at(key)
    }

    /// Where `key` under transfer `index`'s `to:` is; a value `to` does not set came from the
    /// transfer's own settings (or `defaults`), and failing those, `to` itself.
    fn to_at(&self, index: usize, key: &str) -> Option<Location> {
        let under_to = self.transfer(index).and_then(Places::to).and_then(|to| to.at(key));
        under_to.or_else(|| self.at(index, key)).or_else(|| self.at(index, "to"))
    }

    fn item_at(&self, index: usize, key: &str, item: usize) -> Option<Location> {
        self.setting(index, key).item_at(key, item)
    }

    /// The text of transfer `index`'s `key` as written in the file.
    fn written(&self, index: usize, key: &str) -> Option<String> {
        self.setting(index, key).written(key).map(str::to_string)
    }

    fn transfer_at(&self, index: usize) -> Option<Location> {
        self.transfer(index)?.start
    }
}

struct TransferCheck<'p, 'a> {
    index: usize,
    positions: &'p Positions<'a>,
    problems: &'p mut Vec<Problem>,
    caches: &'p mut Caches,
    /// Checking the keys under `to`: problems point at `to`'s own keys.
    in_to: bool,
    /// The moment dates in paths are expanded at, and ages measured from.
    at: &'p Moment,
    /// The manifest's folder: relative paths are read from there.
    base: &'p Path,
}

/// A filter's include, exclude and extensions lists.
type FilterLists = (Vec<String>, Vec<String>, Vec<String>);

/// What one check of a manifest works out once for all its transfers: a generated manifest (a
/// transfer per customer or per day) repeats one filter, or one CA bundle, thousands of times.
#[derive(Default)]
struct Caches {
    /// Filters by their three lists (each copy would hold its own patterns).
    filters: HashMap<FilterLists, Filter>,
    /// Each CA bundle named, read once: its problem, if it has one.
    bundles: HashMap<PathBuf, Option<String>>,
}

impl<'p, 'a> TransferCheck<'p, 'a> {
    fn new(
        index: usize,
        positions: &'p Positions<'a>,
        problems: &'p mut Vec<Problem>,
        caches: &'p mut Caches,
        at: &'p Moment,
        base: &'p Path,
    ) -> Self {
        TransferCheck { index, positions, problems, caches, in_to: false, at, base }
    }
}

impl TransferCheck<'_, '_> {
    fn at(&self, key: &str) -> Option<Location> {
        if self.in_to { self.positions.to_at(self.index, key) } else { self.positions.at(self.index, key) }
    }

    fn error(&mut self, key: &str, message: impl Into<String>, help: impl Into<String>) {
        let location = self.at(key);
        self.problems.push(Problem::error(location, message).help(help));
    }

    fn warning(&mut self, location: Option<Location>, message: impl Into<String>, help: impl Into<String>) {
        self.problems.push(Problem::warning(location, message).help(help));
    }

    /// The checks of a transfer's settings alone (see `ParsedSpec::unidentified`).
    fn settings_only(&mut self, settings: &Settings) {
        let _ = self.target(settings);
        let _ = self.filter(settings);
        let _ = self.concurrency(settings.concurrency);
        let _ = self.ranged("retries", settings.retries, builtin::RETRIES, 0, MAX_RETRIES);
        let _ = self.part_bound("multipart_threshold", settings.multipart_threshold, builtin::MULTIPART_THRESHOLD);
        let _ = self.part_bound("part_size", settings.part_size, builtin::PART_SIZE);
        let _ = self.part_bound("copy_cutoff", settings.copy_cutoff, builtin::COPY_CUTOFF);
        let _ = self.deletes(settings);
        let _ = self.window(settings);
        let _ = self.deadline(settings);
        let _ = self.archived(settings);
        let _ = self.property_rules(settings);
    }

    fn job(&mut self, transfer: &TransferSpec) -> Option<Job> {
        let errors_before = self.error_count();
        let settings = &transfer.settings;
        if transfer.name.trim().is_empty() || transfer.name.chars().any(char::is_control) {
            self.error(
                "name",
                "the transfer name is empty or has control characters",
                "use a short name such as `daily-reports`",
            );
        }
        self.check_bucket(&transfer.bucket);
        let prefix = self.dated("prefix", transfer.prefix.as_deref().unwrap_or(""), settings);
        let prefix = self.prefix(&prefix);
        let local = match (&transfer.to, &transfer.local) {
            (Some(_), _) => Some(PathBuf::new()),
            (None, Some(local)) => {
                let local = self.dated("local", local, settings);
                self.local(&local)
            }
            (None, None) => None,
        };
        let window = self.window(settings);
        let deadline = self.deadline(settings);
        let archived = self.archived(settings);
        self.slow_cap(settings);
        let target = self.target(settings);
        let to = transfer.to.as_ref().map(|to| self.copy_destination(to, settings));
        if let Some(to) = &to
            && to.bucket == transfer.bucket
            && to.target.endpoint == target.endpoint
            && (to.prefix.starts_with(&prefix) || prefix.starts_with(&to.prefix))
        {
            let (outer, inner) =
                if to.prefix.starts_with(&prefix) { ("source", "destination") } else { ("destination", "source") };
            self.error(
                "to",
                format!(
                    "the copy's {inner} `s3://{}/{}` is inside its {outer} `s3://{}/{}`",
                    to.bucket,
                    if inner == "destination" { &to.prefix } else { &prefix },
                    transfer.bucket,
                    if outer == "source" { &prefix } else { &to.prefix }
                ),
                "give the copy a destination outside its source (and not around it): each run would copy its own copies",
            );
        }
        let (filter, mut filter_summary) = self.filter(settings);
        filter_summary.window = [
            ("older_than", settings.older_than.map(|age| age.to_string())),
            ("newer_than", settings.newer_than.map(|age| age.to_string())),
            ("min_size", settings.min_size.map(|size| size.to_string())),
            ("max_size", settings.max_size.map(|size| size.to_string())),
        ]
        .into_iter()
        .filter_map(|(key, value)| {
            // As written (`1h 30m`), else as read (`1h 30m` again, or `1B` for `1`).
            let shown = self.positions.written(self.index, key).or(value)?;
            Some(format!("{key}: {shown}"))
        })
        .collect();
        let concurrency = self.concurrency(settings.concurrency);
        let _ = self.ranged("retries", settings.retries, builtin::RETRIES, 0, MAX_RETRIES);
        let multipart_threshold =
            self.part_bound("multipart_threshold", settings.multipart_threshold, builtin::MULTIPART_THRESHOLD);
        let part_size = self.part_bound("part_size", settings.part_size, builtin::PART_SIZE);
        let copy_cutoff = self.part_bound("copy_cutoff", settings.copy_cutoff, builtin::COPY_CUTOFF);
        let (delete, max_delete) = self.deletes(settings);
        let property_rules = self.property_rules(settings);
        let mut upload = self.upload_options(settings, transfer.direction);
        if let Some(to) = &transfer.to {
            // What `to` sets wins over the transfer's own (or inherited) storage settings.
            let own = Settings {
                storage_class: to.storage_class.or(settings.storage_class),
                sse: to.sse.or(settings.sse),
                sse_kms_key_id: to.sse_kms_key_id.clone().or(settings.sse_kms_key_id.clone()),
                acl: settings.acl,
                content_type: settings.content_type.clone(),
                cache_control: settings.cache_control.clone(),
                content_disposition: settings.content_disposition.clone(),
                metadata: settings.metadata.clone(),
                tags: settings.tags.clone(),
                ..Settings::default()
            };
            self.in_to = true;
            upload = self.upload_options(&own, transfer.direction);
            self.in_to = false;
        }
        let update_properties = self.update_properties(settings, transfer.direction, &upload, &property_rules);
        if self.error_count() > errors_before {
            return None;
        }
        Some(Job {
            name: transfer.name.clone(),
            direction: transfer.direction,
            bucket: transfer.bucket.clone(),
            prefix,
            local: local?,
            to,
            filter: filter?,
            filter_summary,
            compare: settings.compare.unwrap_or_default(),
            delete,
            max_delete,
            target,
            concurrency,
            multipart_threshold,
            part_size,
            copy_cutoff,
            upload,
            follow_symlinks: settings.follow_symlinks.unwrap_or(false),
            bandwidth: settings.bandwidth.map(|rate| rate.0),
            window,
            deadline,
            archived,
            overwrite: settings.overwrite.unwrap_or_default(),
            destination: self.destination_check(settings, delete),
            inventory: self.inventory(settings.listing.as_ref()),
            update_properties,
            property_rules,
        })
    }

    /// `update_properties`, and a warning where it would compare nothing: no property is set.
    fn update_properties(
        &mut self,
        settings: &Settings,
        direction: Direction,
        upload: &UploadOptions,
        rules: &[super::PropertyRule],
    ) -> bool {
        let wanted = settings.update_properties.unwrap_or(false);
        let sets_any = upload.sets_properties() || rules.iter().any(|rule| rule.options.sets_properties());
        if wanted && direction != Direction::Download && !sets_any {
            self.warning(
                self.at("update_properties"),
                "`update_properties: true` compares nothing: this transfer sets no `acl`, `content_type`, \
                 `cache_control`, `content_disposition`, `metadata` or `tags`",
                "set the properties objects should have, or remove `update_properties`",
            );
        }
        wanted && direction != Direction::Download
    }

    /// `properties`: each rule's pattern parsed and its properties checked as the transfer's.
    fn property_rules(&mut self, settings: &Settings) -> Vec<super::PropertyRule> {
        let mut compiled = Vec::new();
        for rule in settings.properties.iter().flatten() {
            let filter = match Filter::new(std::slice::from_ref(&rule.pattern), &[], &[]) {
                Ok(filter) => filter,
                Err(err) => {
                    self.error(
                        "properties",
                        format!("invalid pattern `{}` in `properties`: {}", err.pattern, err.reason),
                        "`match` takes a pattern as `include` does: `*.csv`, `reports/**`",
                    );
                    continue;
                }
            };
            let own = Settings {
                acl: rule.acl,
                content_type: rule.content_type.clone(),
                cache_control: rule.cache_control.clone(),
                content_disposition: rule.content_disposition.clone(),
                metadata: rule.metadata.clone(),
                tags: rule.tags.clone(),
                ..Settings::default()
            };
            // As an upload: a download's warning about them is said once, for `properties`.
            let options = self.upload_options(&own, Direction::Upload);
            compiled.push(super::PropertyRule { filter, options });
        }
        compiled
    }

    /// `archived`, `restore_days` (1 to 365, 7 by default), `restore_tier`.
    fn archived(&mut self, settings: &Settings) -> super::Archived {
        let mode = settings.archived.unwrap_or_default();
        let restore_days = self.ranged("restore_days", settings.restore_days, 7, 1, 365);
        if mode != super::ArchivedObjects::Restore {
            for key in ["restore_days", "restore_tier"] {
                if let Some(location) = self.positions.transfer(self.index).and_then(|t| t.own(key)) {
                    self.warning(
                        location,
                        format!("`{key}` applies with `archived: restore`"),
                        "add `archived: restore`, or remove it",
                    );
                }
            }
        }
        super::Archived { mode, restore_days, restore_tier: settings.restore_tier.unwrap_or_default() }
    }

    /// A `bandwidth` so low it is more likely a slip (`1B/s`, `50KB/s` meant as MB/s) than a
    /// wish: a warning, with what it means in time.
    fn slow_cap(&mut self, settings: &Settings) {
        const SLOW: u64 = 64 * ByteSize::KIB;
        let Some(rate) = settings.bandwidth.filter(|rate| rate.0 < SLOW) else { return };
        let written = self.positions.written(self.index, "bandwidth").unwrap_or_else(|| rate.to_string());
        let hours = ByteSize::GIB as f64 / rate.0 as f64 / 3600.0;
        let location = self.at("bandwidth");
        self.warning(
            location,
            format!("`bandwidth: {written}` moves 1 GiB in {hours:.0} hours"),
            "if that is meant, leave it; caps are usually a few MiB/s or more, such as `50MiB/s`",
        );
    }

    /// `deadline` (in the transfer's time zone) and `max_duration`.
    fn deadline(&mut self, settings: &Settings) -> Option<dated::Deadline> {
        let wall = match settings.deadline.as_deref().map(dated::wall_time) {
            None => None,
            Some(Ok(time)) => Some((time, self.zone(settings))),
            Some(Err(message)) => {
                self.error("deadline", message, "a deadline is a time of day in `timezone` (UTC by default)");
                None
            }
        };
        let max_duration = settings.max_duration.map(|age| age.0);
        if max_duration.is_some_and(|duration| duration.is_zero()) {
            self.error("max_duration", "`max_duration` is zero: nothing would start", "give a length such as `4h`");
        }
        (wall.is_some() || max_duration.is_some()).then_some(dated::Deadline { wall, max_duration })
    }

    /// `text` (the value of `key`) with its dates expanded at the run's moment in the
    /// transfer's time zone; the text as written when it has none or one is wrong (said once).
    fn dated(&mut self, key: &str, text: &str, settings: &Settings) -> String {
        if !dated::has_placeholders(text) {
            return text.to_string();
        }
        let Some(at) = self.zoned(settings) else { return text.to_string() };
        match dated::expand(text, &at) {
            Ok(expanded) => expanded,
            Err(err) => {
                self.error(key, err.message, err.help);
                text.to_string()
            }
        }
    }

    /// The transfer's `timezone`: UTC when none is set, or when the one set is wrong (said).
    fn zone(&mut self, settings: &Settings) -> jiff::tz::TimeZone {
        match settings.timezone.as_deref().map(dated::time_zone) {
            None => jiff::tz::TimeZone::UTC,
            Some(Ok(zone)) => zone,
            Some(Err(message)) => {
                self.error("timezone", message, "`timezone` applies to the dates in `prefix`, `local` and `to.prefix`");
                jiff::tz::TimeZone::UTC
            }
        }
    }

    /// The run's moment in the transfer's time zone.
    fn zoned(&mut self, settings: &Settings) -> Option<jiff::Zoned> {
        let zone = self.zone(settings);
        match self.at.in_zone(&zone) {
            Ok(zoned) => Some(zoned),
            Err(why) => {
                let help = "give `--at` with `Z` or an offset, such as `2026-11-30T02:00Z`";
                self.error("timezone", format!("`--at {}` cannot be read in this time zone: {why}", self.at), help);
                None
            }
        }
    }

    /// `min_size`, `max_size`, `older_than` and `newer_than`, the ages measured back from the
    /// run's moment.
    fn window(&mut self, settings: &Settings) -> Window {
        let now_ms = self.zoned(settings).map_or(0, |zoned| zoned.timestamp().as_millisecond());
        let back = |age: Option<super::model::Age>| {
            age.map(|age| now_ms.saturating_sub(i64::try_from(age.0.as_millis()).unwrap_or(i64::MAX)))
        };
        let window = Window {
            min_size: settings.min_size.map(|size| size.0),
            max_size: settings.max_size.map(|size| size.0),
            modified_by_ms: back(settings.older_than),
            modified_since_ms: back(settings.newer_than),
        };
        if let (Some(min), Some(max)) = (settings.min_size, settings.max_size)
            && min > max
        {
            let written = |key| self.positions.written(self.index, key);
            let (min, max) =
                (written("min_size").unwrap_or(min.to_string()), written("max_size").unwrap_or(max.to_string()));
            self.error(
                "max_size",
                format!("`max_size: {max}` is below `min_size: {min}`: nothing would move"),
                "raise `max_size` or lower `min_size`",
            );
        }
        if let (Some(older), Some(newer)) = (settings.older_than, settings.newer_than)
            && older.0 >= newer.0
        {
            self.error(
                "newer_than",
                format!("`newer_than: {newer}` is not longer than `older_than: {older}`: nothing would move"),
                "`older_than` is the settle time (such as `10m`), `newer_than` how far back to look (such as `25h`)",
            );
        }
        window
    }

    /// A copy's destination: `to`'s bucket and prefix, reached with `to`'s connection settings
    /// where it has them and the transfer's otherwise (never its `request_payer`: that is the
    /// source bucket's).
    fn copy_destination(&mut self, to: &CopyTo, settings: &Settings) -> CopyDestination {
        self.in_to = true;
        self.check_bucket(&to.bucket);
        let prefix = self.dated("prefix", to.prefix.as_deref().unwrap_or(""), settings);
        let prefix = self.prefix(&prefix);
        let merged = Settings {
            profile: to.profile.clone().or(settings.profile.clone()),
            region: to.region.clone().or(settings.region.clone()),
            endpoint: to.endpoint.clone().or(settings.endpoint.clone()),
            path_style: to.path_style.or(settings.path_style),
            ca_bundle: to.ca_bundle.clone().or(settings.ca_bundle.clone()),
            checksum: to.checksum.or(settings.checksum),
            retries: settings.retries,
            ..Settings::default()
        };
        let target = self.target(&merged);
        let inventory = self.inventory(to.listing.as_ref());
        self.in_to = false;
        CopyDestination { bucket: to.bucket.clone(), prefix, target, inventory }
    }

    /// `listing: {inventory: s3://bucket/key, max_age}`.
    fn inventory(&mut self, listing: Option<&super::model::ListingSource>) -> Option<super::Inventory> {
        let listing = listing?;
        let url = listing.inventory.trim();
        let parts = url.strip_prefix("s3://").and_then(|rest| rest.split_once('/'));
        let Some((bucket, key)) = parts.filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty()) else {
            self.error(
                "listing",
                format!("`inventory: {url}` is not the S3 URL of an inventory report"),
                "write the URL of a report's manifest.json (`s3://inventory-bucket/path/BUCKET/CONFIG/2026-12-01T01-00Z/manifest.json`) or of a configuration's folder, ending in `/`",
            );
            return None;
        };
        if !(key.ends_with('/') || key.ends_with("manifest.json")) {
            self.error(
                "listing",
                format!("`inventory: {url}` names neither a report's manifest.json nor a folder"),
                "end it with `/manifest.json` (one report) or `/` (the newest report of a configuration)",
            );
        }
        let max_age = listing.max_age.map_or(super::Inventory::DEFAULT_MAX_AGE, |age| age.0);
        if max_age.is_zero() {
            self.error(
                "listing",
                "`max_age: 0` accepts no report",
                "set how old a report may be, such as `max_age: 30h`",
            );
        }
        Some(super::Inventory { bucket: bucket.to_string(), key: key.to_string(), max_age })
    }

    fn error_count(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    fn check_bucket(&mut self, bucket: &str) {
        if let Some((name, prefix)) = split_bucket_url(bucket) {
            let fix = if prefix.is_empty() {
                format!("write `bucket: {name}`")
            } else {
                format!("write `bucket: {name}` and `prefix: {prefix}` as two keys")
            };
            self.error("bucket", format!("`bucket` is a URL, not a bucket name: `{bucket}`"), fix);
            return;
        }
        if let Some((message, help)) = bucket_name_problem(bucket) {
            self.error("bucket", format!("invalid bucket name `{bucket}`: {message}"), help);
        }
    }

    fn prefix(&mut self, prefix: &str) -> String {
        if prefix.starts_with("s3://") {
            self.error("prefix", "`prefix` is a URL", "write only the folder part of the key, such as `reports/2026/`");
        } else if prefix.starts_with('/') {
            let trimmed = prefix.trim_start_matches('/');
            self.error(
                "prefix",
                format!("`prefix` starts with `/`: `{prefix}`"),
                format!("S3 keys do not start with `/`; write `prefix: {trimmed}`"),
            );
        }
        // A prefix names a folder: `reports/2026` must not also take `reports/2026-old/`.
        if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") }
    }

    fn local(&mut self, local: &str) -> Option<PathBuf> {
        if local.trim().is_empty() {
            self.error(
                "local",
                "`local` is empty",
                "write a folder such as `./data`; use `.` for the manifest's folder",
            );
            return None;
        }
        match shellexpand::full(local) {
            Ok(expanded) => Some(normalize(&self.base.join(expanded.as_ref()))),
            Err(err) => {
                self.error(
                    "local",
                    format!("`local` uses `${{{}}}`, which is not set", err.var_name),
                    format!("set {} in the environment before running haul, or write the path out", err.var_name),
                );
                None
            }
        }
    }

    fn target(&mut self, settings: &Settings) -> S3Target {
        if let Some(region) = &settings.region {
            self.check_region(region, settings.endpoint.is_some());
        }
        if let Some(endpoint) = &settings.endpoint {
            let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains(char::is_whitespace)) {
                self.error(
                    "endpoint",
                    format!("`endpoint` is not an http(s) URL: `{endpoint}`"),
                    "write the server's URL, such as `http://127.0.0.1:9000` or `https://s3.example.com`",
                );
            }
        }
        if settings.profile.as_deref().is_some_and(|p| p.trim().is_empty()) {
            self.error("profile", "`profile` is empty", "name a profile from ~/.aws/config, or remove the key");
        }
        let ca_bundle = settings.ca_bundle.as_deref().and_then(|text| self.ca_bundle(text, settings));
        S3Target {
            profile: settings.profile.clone(),
            region: settings.region.clone(),
            endpoint: settings.endpoint.clone(),
            path_style: settings.path_style.unwrap_or(false),
            request_payer: settings.request_payer.is_some(),
            retries: settings.retries.unwrap_or(builtin::RETRIES),
            ca_bundle,
            checksum: settings.checksum.unwrap_or_default(),
        }
    }

    /// The CA bundle `ca_bundle` names, read here so a file that cannot be used is a problem
    /// at its line, not a failure of the first request.
    fn ca_bundle(&mut self, text: &str, settings: &Settings) -> Option<PathBuf> {
        let path = match shellexpand::full(text) {
            Ok(expanded) if !expanded.trim().is_empty() => normalize(&self.base.join(expanded.as_ref())),
            Ok(_) => {
                self.error(
                    "ca_bundle",
                    "`ca_bundle` is empty",
                    "name a PEM file of CA certificates, or remove the key",
                );
                return None;
            }
            Err(err) => {
                self.error(
                    "ca_bundle",
                    format!("`ca_bundle` uses `${{{}}}`, which is not set", err.var_name),
                    format!("set {} in the environment before running haul, or write the path out", err.var_name),
                );
                return None;
            }
        };
        let problem = self
            .caches
            .bundles
            .entry(path.clone())
            .or_insert_with(|| crate::ca_bundle::read(&path).err().map(|problem| problem.to_string()))
            .clone();
        if let Some(problem) = problem {
            self.error(
                "ca_bundle",
                format!("the CA bundle `{}` cannot be used: {problem}", path.display()),
                "name a PEM file of the CA certificates that signed the endpoint's certificate; a relative path is \
                 read from the manifest's folder",
            );
            return None;
        }
        if settings.endpoint.as_deref().is_some_and(super::plain_http) {
            let location = self.at("ca_bundle");
            self.warning(
                location,
                "`ca_bundle` is set, but the endpoint is plain http: no certificate is checked",
                "use the server's `https://` URL, or remove `ca_bundle`",
            );
        }
        Some(path)
    }

    fn check_region(&mut self, region: &str, custom_endpoint: bool) {
        // A custom endpoint may use any region name its server expects (`garage`, `us-east-1`, ...).
        let shape_ok = if custom_endpoint {
            !region.is_empty() && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        } else {
            is_aws_region_shape(region)
        };
        let closest = || did_you_mean(region, KNOWN_REGIONS).filter(|known| *known != region);
        if !shape_ok {
            let help = match closest() {
                Some(known) => {
                    format!("did you mean `{known}`? AWS regions look like `ap-northeast-2`")
                }
                None => "AWS regions look like `us-east-1` or `ap-northeast-2`".to_string(),
            };
            self.error("region", format!("`{region}` is not a region name"), help);
        } else if !custom_endpoint && !KNOWN_REGIONS.contains(&region) {
            // Well formed, but not a region haul knows: new regions appear, so a warning.
            let location = self.at("region");
            let help = match closest() {
                Some(known) => format!("did you mean `{known}`? (if `{region}` is a new region, ignore this)"),
                None => "check the name in the AWS console (if it is a new region, ignore this)".into(),
            };
            self.warning(location, format!("`{region}` is not an AWS region haul knows"), help);
        }
    }

    fn filter(&mut self, settings: &Settings) -> (Option<Filter>, FilterSummary) {
        let mut extensions = Vec::new();
        for (item, raw) in settings.extensions.iter().flatten().enumerate() {
            let location = self.positions.item_at(self.index, "extensions", item);
            let trimmed = raw.trim();
            let bare = trimmed.strip_prefix("*.").or_else(|| trimmed.strip_prefix('.')).unwrap_or(trimmed);
            if bare.is_empty()
                || bare.contains(['/', '\\', '*', '?', '[', ']', '{', '}'])
                || bare.contains(char::is_whitespace)
            {
                self.problems.push(
                    Problem::error(location, format!("`{raw}` is not a file extension"))
                        .help("write extensions bare, like `csv`; put patterns such as `data/*.csv` in `include:`"),
                );
                continue;
            }
            if bare != trimmed {
                self.warning(
                    location,
                    format!("extension `{raw}` is read as `{bare}`"),
                    format!("write `{bare}` (extensions are written without `*.` or `.`)"),
                );
            }
            extensions.push(bare.to_string());
        }
        let include = settings.include.clone().unwrap_or_default();
        let exclude = settings.exclude.clone().unwrap_or_default();
        let compiled = match self.caches.filters.entry((include.clone(), exclude.clone(), extensions.clone())) {
            std::collections::hash_map::Entry::Occupied(known) => Ok(known.get().clone()),
            std::collections::hash_map::Entry::Vacant(new) => {
                Filter::new(&include, &exclude, &extensions).map(|filter| new.insert(filter).clone())
            }
        };
        let filter = match compiled {
            Ok(filter) => Some(filter),
            Err(err) => {
                let key = match err.list {
                    PatternList::Include => "include",
                    PatternList::Exclude => "exclude",
                    PatternList::Extensions => "extensions",
                };
                let location =
                    self.positions.item_at(self.index, key, err.index).or(self.positions.at(self.index, key));
                self.problems.push(
                    Problem::error(location, format!("invalid pattern `{}` in `{key}`: {}", err.pattern, err.reason))
                        .help("patterns use `*`, `?`, `**`, `[abc]` and `{a,b}`; close every `[` and `{`"),
                );
                None
            }
        };
        (filter, FilterSummary { extensions, include, exclude, window: Vec::new() })
    }

    fn ranged(&mut self, key: &str, value: Option<u32>, default: u32, min: u32, max: u32) -> u32 {
        let Some(value) = value else { return default };
        if !(min..=max).contains(&value) {
            self.error(
                key,
                format!("`{key}: {value}` is out of range"),
                format!("use {min} to {max}; the default is {default}"),
            );
        }
        value
    }

    fn concurrency(&mut self, value: Option<Concurrency>) -> Concurrency {
        let value = value.unwrap_or(builtin::CONCURRENCY);
        if let Concurrency::Fixed(count) = value
            && !(1..=MAX_CONCURRENCY).contains(&count)
        {
            self.error(
                "concurrency",
                format!("`concurrency: {count}` is out of range"),
                format!("use 1 to {MAX_CONCURRENCY}, or `auto` (the default: it finds the level that pays)"),
            );
        }
        value
    }

    fn part_bound(&mut self, key: &str, value: Option<ByteSize>, default: ByteSize) -> ByteSize {
        let Some(value) = value else { return default };
        if !(MIN_PART..=MAX_PART).contains(&value.0) {
            // Quote what the user wrote (`6GB`), not how haul reads it (`5859375KiB`).
            let written = self.positions.written(self.index, key).unwrap_or_else(|| value.to_string());
            self.error(
                key,
                format!("`{key}: {written}` is out of range"),
                format!("S3 parts are 5MiB to 5GiB; use for example `{default}` (the default)"),
            );
        }
        value
    }

    /// `destination`: `head` finds only the keys the source has, so it cannot delete.
    fn destination_check(&mut self, settings: &Settings, delete: bool) -> super::DestinationCheck {
        let check = settings.destination.unwrap_or_default();
        if check == super::DestinationCheck::Head && delete {
            self.error(
                "destination",
                "`destination: head` cannot go with `delete: true`: it looks up only the keys the source has, so it never sees what the source no longer has",
                "remove `delete: true`, or let the destination be listed (`destination: list`, the default)",
            );
        }
        check
    }

    fn deletes(&mut self, settings: &Settings) -> (bool, Option<u64>) {
        let delete = settings.delete.unwrap_or(false);
        match (delete, settings.max_delete) {
            (true, None) => self.error(
                "delete",
                "`delete: true` needs `max_delete`",
                "add `max_delete: N`: the most objects one run may delete (a plan deleting more stops); \
                 this guards against a wrong prefix or an empty source wiping the destination",
            ),
            (true, Some(0)) => self.error(
                "max_delete",
                "`max_delete: 0` forbids every deletion while `delete: true` asks for them",
                "set `max_delete` to the most objects one run may delete, or set `delete: false`",
            ),
            (false, Some(_)) => {
                let location = self.positions.at(self.index, "max_delete");
                self.warning(
                    location,
                    "`max_delete` has no effect without `delete: true`",
                    "remove it, or add `delete: true`",
                );
            }
            _ => {}
        }
        (delete, settings.max_delete)
    }

    fn upload_options(&mut self, settings: &Settings, direction: Direction) -> UploadOptions {
        if settings.sse_kms_key_id.is_some() && settings.sse != Some(ServerSideEncryption::AwsKms) {
            self.error(
                "sse_kms_key_id",
                "`sse_kms_key_id` needs `sse: aws:kms`",
                "add `sse: aws:kms`, or remove the key id",
            );
        }
        if direction == Direction::Download {
            // Only the transfer's own keys: a `defaults` meant for the uploads is not a mistake.
            let keys = ["storage_class", "sse", "sse_kms_key_id", "acl", "content_type", "cache_control"];
            for key in
                keys.into_iter().chain(["content_disposition", "metadata", "tags", "properties", "update_properties"])
            {
                if let Some(location) = self.positions.transfer(self.index).and_then(|t| t.own(key)) {
                    self.warning(
                        location,
                        format!("`{key}` applies to uploads; this transfer downloads"),
                        "remove it from this transfer",
                    );
                }
            }
        }
        for (key, text) in [
            ("content_type", &settings.content_type),
            ("cache_control", &settings.cache_control),
            ("content_disposition", &settings.content_disposition),
        ] {
            if let Some(text) = text.as_deref().filter(|text| !header_value(text)) {
                self.error(
                    key,
                    format!("`{key}` has characters an HTTP header cannot carry: `{text}`"),
                    "use printable ASCII",
                );
            }
        }
        for (name, value) in settings.metadata.iter().flatten() {
            let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !token || !header_value(value) {
                self.error(
                    "metadata",
                    format!("metadata `{name}: {value}` cannot be sent as a header"),
                    "names are letters, digits, `-` and `_`; values printable ASCII",
                );
            }
        }
        if let Some(tags) = &settings.tags {
            if tags.len() > 10 {
                self.error("tags", format!("{} tags: S3 takes at most 10 per object", tags.len()), "keep 10 or fewer");
            }
            for (key, value) in tags {
                if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                    self.error(
                        "tags",
                        format!("tag `{key}`: keys are 1 to 128 characters, values up to 256"),
                        "shorten it",
                    );
                }
            }
        }
        UploadOptions {
            storage_class: settings.storage_class,
            sse: settings.sse,
            sse_kms_key_id: settings.sse_kms_key_id.clone(),
            acl: settings.acl,
            content_type: settings.content_type.clone(),
            cache_control: settings.cache_control.clone(),
            content_disposition: settings.content_disposition.clone(),
            metadata: settings.metadata.clone(),
            tags: settings.tags.clone(),
        }
    }
}

/// Printable ASCII (and spaces): what an HTTP header value carries as it is.
fn header_value(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Where a transfer writes: a local folder (downloads) or a bucket prefix (uploads, and
/// copies: the prefix in `to`).
struct Destination {
    name: String,
    direction: Direction,
    local: PathBuf,
    bucket: String,
    endpoint: Option<String>,
    prefix: String,
}

impl Destination {
    /// From a transfer as read, its dates expanded at `at` (a wrong one is left as written:
    /// it is reported elsewhere); `None` when its folder cannot be resolved.
    fn of(transfer: &TransferSpec, base: &Path, at: &Moment) -> Option<Self> {
        let zone = match transfer.settings.timezone.as_deref() {
            None => Some(jiff::tz::TimeZone::UTC),
            Some(name) => dated::time_zone(name).ok(),
        };
        let zoned = zone.and_then(|zone| at.in_zone(&zone).ok());
        let dated = |text: &str| match &zoned {
            Some(zoned) => dated::expand(text, zoned).unwrap_or_else(|_| text.to_string()),
            None => text.to_string(),
        };
        let folder = |prefix: Option<&str>| {
            let prefix = dated(prefix.unwrap_or_default());
            if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") }
        };
        let (local, bucket, endpoint, prefix) = match (&transfer.to, &transfer.local) {
            (Some(to), _) => (
                PathBuf::new(),
                to.bucket.clone(),
                to.endpoint.clone().or(transfer.settings.endpoint.clone()),
                folder(to.prefix.as_deref()),
            ),
            (None, Some(local)) => {
                let local = dated(local);
                let local = shellexpand::full(&local).ok().map(|expanded| normalize(&base.join(expanded.as_ref())))?;
                (local, transfer.bucket.clone(), transfer.settings.endpoint.clone(), folder(transfer.prefix.as_deref()))
            }
            (None, None) => return None,
        };
        Some(Destination {
            name: transfer.name.clone(),
            direction: transfer.direction,
            local,
            bucket,
            endpoint,
            prefix,
        })
    }

    fn remote_url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Where it writes as a path of parts, so places inside it start with its parts: the
    /// local folder's components, or the server, bucket and prefix segments (a prefix ends in
    /// `/`, so its segments nest like a folder's).
    fn place(&self) -> impl Iterator<Item = &str> + '_ {
        let (kind, local, remote) = match self.direction {
            Direction::Download => {
                ("local", Some(self.local.components().map(|c| c.as_os_str().to_str().unwrap_or("?"))), None)
            }
            Direction::Upload | Direction::Copy => {
                let segments = self.prefix.split('/').filter(|s| !s.is_empty());
                let head = [self.endpoint.as_deref().unwrap_or(""), self.bucket.as_str()];
                ("s3", None, Some(head.into_iter().chain(segments)))
            }
        };
        std::iter::once(kind).chain(local.into_iter().flatten()).chain(remote.into_iter().flatten())
    }
}

/// Two transfers may not write the same place, nor one inside the other: one would overwrite
/// (or with `delete`, remove) what the other wrote. Sorted, so a manifest of 100,000
/// transfers is checked in n log n (comparing every pair took minutes): in path order,
/// everything between a place and a place inside it is inside it too, so a stack of the
/// places still "open" holds every place the next one can be inside.
fn check_destinations(jobs: &[(usize, Destination)], positions: &Positions, problems: &mut Vec<Problem>) {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| jobs[a].1.place().cmp(jobs[b].1.place()));
    let mut open: Vec<usize> = Vec::new();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for &this in &order {
        let inside = |outer: usize| {
            let mut place = jobs[this].1.place();
            jobs[outer].1.place().all(|part| place.next() == Some(part))
        };
        while let Some(&top) = open.last() {
            if inside(top) {
                break;
            }
            open.pop();
        }
        if let Some(&top) = open.last() {
            pairs.push((top.min(this), top.max(this)));
        }
        open.push(this);
    }
    pairs.sort();
    for (first, later) in pairs {
        let ((_, a), (index_b, b)) = (&jobs[first], &jobs[later]);
        let (key, shown_a, shown_b) = match b.direction {
            Direction::Download => ("local", a.local.display().to_string(), b.local.display().to_string()),
            Direction::Upload => ("prefix", a.remote_url(), b.remote_url()),
            Direction::Copy => ("to", a.remote_url(), b.remote_url()),
        };
        let location = positions.at(*index_b, key).or(positions.transfer_at(*index_b));
        let what = if shown_a == shown_b { "the same destination as" } else { "a destination overlapping" };
        problems.push(
            Problem::error(location, format!("transfer `{}` writes {what} transfer `{}`", b.name, a.name))
                .label(format!("`{}` writes {shown_a}", a.name))
                .help(format!(
                    "give each transfer its own destination ({shown_b} is inside or equal to {shown_a}); \
                             to combine sources, use one transfer with `include:` patterns"
                )),
        );
    }
}

/// The bucket and key prefix of a URL written where a bucket name goes: `s3://bucket/prefix`,
/// or an HTTPS URL of AWS's virtual-hosted (`https://bucket.s3.region.amazonaws.com/prefix`)
/// or path style (`https://s3.region.amazonaws.com/bucket/prefix`).
fn split_bucket_url(text: &str) -> Option<(String, String)> {
    let split = |rest: &str| {
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (name.to_string(), prefix.to_string())
    };
    if let Some(rest) = text.strip_prefix("s3://").or_else(|| text.strip_prefix("S3://")) {
        return Some(split(rest));
    }
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    match host.split_once(".s3") {
        // bucket.s3.amazonaws.com, bucket.s3.region.amazonaws.com, bucket.s3-region...
        Some((bucket, _)) if aws && !bucket.is_empty() => Some((bucket.to_string(), path.to_string())),
        // s3.amazonaws.com/bucket/..., or any other server's URL: the path starts with the bucket.
        _ => Some(split(path)),
    }
}

/// Checks S3's bucket naming rules; returns what is wrong and how to fix it.
pub fn bucket_name_problem(name: &str) -> Option<(String, String)> {
    let suggestion = || {
        let fixed: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' { c } else { '-' })
            .collect();
        fixed.trim_matches(|c| c == '-' || c == '.').to_string()
    };
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        return Some((format!("it has {len} characters"), "bucket names have 3 to 63 characters".into()));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) || name.contains('_') {
        return Some((
            "bucket names use only lowercase letters, digits, `-` and `.`".into(),
            format!("did you mean `{}`? Check the exact name with `haul ls`", suggestion()),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Some((
            format!("`{bad}` is not allowed"),
            if bad == '/' {
                "the bucket is only the first part; put the rest in `prefix:`".into()
            } else {
                "bucket names use only lowercase letters, digits, `-` and `.`".into()
            },
        ));
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_last_ok(name.chars().next()) || !first_last_ok(name.chars().last()) {
        return Some((
            "it must start and end with a letter or digit".into(),
            format!("did you mean `{}`?", suggestion()),
        ));
    }
    if name.contains("..") {
        return Some(("it has two dots in a row".into(), format!("did you mean `{}`?", name.replace("..", "."))));
    }
    if name.split('.').count() == 4 && name.split('.').all(|part| part.parse::<u8>().is_ok()) {
        return Some(("it looks like an IP address".into(), "bucket names may not be IP addresses".into()));
    }
    for reserved in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(reserved) {
            return Some((format!("names starting with `{reserved}` are reserved"), "choose another name".into()));
        }
    }
    for reserved in ["-s3alias", "--ol-s3", ".mrap", "--x-s3"] {
        if name.ends_with(reserved) {
            return Some((format!("names ending with `{reserved}` are reserved"), "choose another name".into()));
        }
    }
    None
}

/// `us-east-1`, `ap-northeast-2`, `us-gov-west-1`: letters, dash-separated words, a number.
/// `ap-northeast-2`: a two-letter area, a direction (with `gov`, `iso` or `isob` before it in
/// the special partitions), a number. A misspelt direction (`norhteast`) is not a region name.
fn is_aws_region_shape(region: &str) -> bool {
    const DIRECTIONS: [&str; 9] =
        ["north", "south", "east", "west", "central", "northeast", "northwest", "southeast", "southwest"];
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else { return false };
    words.len() >= 2
        && words.len() <= 3
        && words[0].len() == 2
        && words[0].chars().all(|c| c.is_ascii_lowercase())
        && words[1..words.len() - 1].iter().all(|w| matches!(*w, "gov" | "iso" | "isob"))
        && DIRECTIONS.contains(&words[words.len() - 1])
        && !number.is_empty()
        && number.len() <= 2
        && number.chars().all(|c| c.is_ascii_digit())
}

/// AWS regions (checked against the SDK's list of bucket location constraints by a test).
const KNOWN_REGIONS: [&str; 39] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
    "us-iso-east-1",
];

/// Removes `.` and resolves `..` lexically (the folder may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_match_the_sdk() {
        // The SDK's bucket location constraints name every region a bucket can be created
        // in (but us-east-1, which has none); each must be known here.
        for value in aws_sdk_s3::types::BucketLocationConstraint::values() {
            if is_aws_region_shape(value) {
                assert!(KNOWN_REGIONS.contains(value), "{value} is missing from KNOWN_REGIONS");
            }
        }
        for region in KNOWN_REGIONS {
            assert!(is_aws_region_shape(region), "{region}");
        }
    }

    #[test]
    fn misspelt_and_unknown_region_shapes() {
        for bad in ["ap-norhteast-2", "ap-northeast2", "Seoul", "eu-west", "us-east-123", "apac-east-1"] {
            assert!(!is_aws_region_shape(bad), "{bad}");
        }
        for fine in ["eu-west-9", "ap-northeast-22", "us-gov-west-1", "us-isob-east-1"] {
            assert!(is_aws_region_shape(fine), "{fine}");
        }
    }

    #[test]
    fn urls_in_bucket_are_split() {
        let split = |text: &str| split_bucket_url(text).map(|(b, p)| format!("{b}|{p}"));
        assert_eq!(split("s3://b/x/y").as_deref(), Some("b|x/y"));
        assert_eq!(split("https://my-bucket.s3.amazonaws.com/x").as_deref(), Some("my-bucket|x"));
        assert_eq!(split("https://my-bucket.s3.ap-northeast-2.amazonaws.com/").as_deref(), Some("my-bucket|"));
        assert_eq!(split("https://s3.us-west-2.amazonaws.com/my-bucket/r/").as_deref(), Some("my-bucket|r/"));
        assert_eq!(split("my-bucket"), None);
    }

    #[test]
    fn bucket_rules() {
        for good in ["abc", "analytics-exports", "my.bucket.name", "a1b2c3", &"a".repeat(63)] {
            assert_eq!(bucket_name_problem(good), None, "{good}");
        }
        let cases = [
            ("ab", "2 characters"),
            (&"a".repeat(64), "64 characters"),
            ("My-Bucket", "lowercase"),
            ("my_bucket", "lowercase"),
            ("-bucket", "start and end"),
            ("bucket-", "start and end"),
            (".bucket", "start and end"),
            ("bucket.", "start and end"),
            ("my..bucket", "two dots"),
            ("192.168.5.4", "IP address"),
            ("xn--bucket", "reserved"),
            ("bucket-s3alias", "reserved"),
            ("bucket/x", "`/` is not allowed"),
        ];
        for (bad, expected) in cases {
            let (message, _) = bucket_name_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(message.contains(expected), "{bad}: {message}");
        }
        let (_, help) = bucket_name_problem("My_Bucket").unwrap();
        assert!(help.contains("my-bucket"), "{help}");
    }

    #[test]
    fn region_shapes() {
        for good in ["us-east-1", "ap-northeast-2", "us-gov-west-1", "eu-central-2", "cn-northwest-1"] {
            assert!(is_aws_region_shape(good), "{good}");
        }
        for bad in ["ap-northeast2", "Seoul", "us-east", "useast1", "us-east-123", "US-EAST-1", ""] {
            assert!(!is_aws_region_shape(bad), "{bad}");
        }
        assert_eq!(did_you_mean("ap-northeast2", KNOWN_REGIONS), Some("ap-northeast-2"));
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(normalize(Path::new("/a/./")), PathBuf::from("/a"));
    }
}
