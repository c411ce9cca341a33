//! The run report: what moved, what was skipped, what failed and what to do about it.
//! Failures are grouped by S3 error code and file extension, each group with a hint.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::manifest::Direction;
use crate::plan::{ActionKind, Tally, TransferPlan};
use crate::s3::RequestFailure;
use crate::text::{human_bytes, printable};

/// Version of the report's JSON shape.
pub const REPORT_VERSION: u32 = 1;

/// One run of `haul apply`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub version: u32,
    /// Seconds since the epoch.
    pub started: i64,
    pub duration_seconds: f64,
    pub moved: Tally,
    pub deleted: Tally,
    pub failed: Tally,
    /// Bytes moved per second of the whole run.
    pub bytes_per_second: f64,
    /// Stopped by SIGINT / SIGTERM before everything was done.
    pub interrupted: bool,
    /// A transfer's deadline (`deadline`, `max_duration`) came before it was done: what is
    /// left is in its `left_at_deadline`, and the next run continues it (exit 6).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_at_deadline: bool,
    /// The shard this run moved (`--shard`); all keys when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    pub transfers: Vec<TransferReport>,
}

impl RunReport {
    pub fn new(started: std::time::SystemTime, duration: Duration, transfers: Vec<TransferReport>) -> Self {
        let mut moved = Tally::default();
        let mut deleted = Tally::default();
        let mut failed = Tally::default();
        for transfer in &transfers {
            moved.objects += transfer.moved.objects;
            moved.bytes += transfer.moved.bytes;
            deleted.objects += transfer.deleted.objects;
            failed.objects += transfer.failed.objects;
            failed.bytes += transfer.failed.bytes;
        }
        let seconds = duration.as_secs_f64();
        RunReport {
            version: REPORT_VERSION,
            started: started.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
            duration_seconds: seconds,
            moved,
            deleted,
            failed,
            bytes_per_second: if seconds > 0.0 { moved.bytes as f64 / seconds } else { 0.0 },
            interrupted: transfers.iter().any(|t| t.interrupted.objects > 0 || t.stopped_before_start),
            stopped_at_deadline: transfers.iter().any(|t| t.left_at_deadline.objects > 0 || t.stopped_at_deadline),
            shard: None,
            transfers,
        }
    }

    pub fn succeeded(&self) -> bool {
        // A transfer its deadline stopped has an `error` saying so; it did not fail.
        self.transfers.iter().all(|t| t.failed.objects == 0 && (t.error.is_none() || t.stopped_at_deadline))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }

    /// The report for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for transfer in &self.transfers {
            out.push_str(&transfer.table());
        }
        let _ = write!(
            out,
            "moved {} {} ({}) in {:.1} s, {}/s",
            self.moved.objects,
            crate::progress::plural(self.moved.objects, "object"),
            human_bytes(self.moved.bytes),
            self.duration_seconds,
            human_bytes(self.bytes_per_second as u64)
        );
        if self.deleted.objects > 0 {
            let _ = write!(out, "; deleted {}", self.deleted.objects);
        }
        if self.failed.objects > 0 {
            let _ = write!(out, "; {} FAILED", self.failed.objects);
        }
        if self.interrupted {
            out.push_str("; INTERRUPTED: the next run does the rest");
        } else if self.stopped_at_deadline {
            out.push_str("; STOPPED AT THE DEADLINE: the next run does the rest");
        }
        if let Some(shard) = self.shard {
            let _ = write!(out, " (shard {shard})");
        }
        out.push('\n');
        out
    }
}

impl LevelReport {
    /// Its lines in the table: the level an adaptive transfer found, and any slowing down.
    fn describe(&self, out: &mut String) {
        if self.adaptive && (self.settled != self.start || self.highest != self.start) {
            let _ = writeln!(
                out,
                "  objects in flight: {} at the end (auto: started at {}, highest {})",
                self.settled, self.start, self.highest
            );
        }
        if self.slow_down_answers + self.failed_connections == 0 {
            return;
        }
        let mut causes = Vec::new();
        if self.slow_down_answers > 0 {
            causes.push(format!("{} answer(s) asking to slow down (503/429)", self.slow_down_answers));
        }
        if self.failed_connections > 0 {
            causes.push(format!("{} failed or timed-out connection(s)", self.failed_connections));
        }
        let effect = if self.lowered > 0 {
            format!("haul lowered the objects in flight {} time(s), to {}", self.lowered, self.settled)
        } else if self.adaptive {
            "haul retried them".to_string()
        } else {
            format!("haul retried them; `concurrency: {}` is fixed (`auto` would have lowered it)", self.start)
        };
        let _ = writeln!(out, "  throttled: {}; {effect}", causes.join(", "));
    }
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// The slug of an unreadable file or folder.
const UNREADABLE: &str = "unreadable";

/// One transfer's part of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TransferReport {
    pub name: String,
    pub direction: Direction,
    pub moved: Tally,
    pub deleted: Tally,
    pub failed: Tally,
    /// Not done because the run was interrupted (not started, or stopped and rolled back).
    pub interrupted: Tally,
    /// The transfer's deadline, when it has one (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Not started (or stopped between parts, left to continue) because the deadline came.
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub left_at_deadline: Tally,
    /// Archived objects this run asked S3 to restore (`archived: restore`): a later run moves
    /// them once restored.
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub restores_requested: Tally,
    /// Archived objects whose restore is still under way.
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub restores_in_progress: Tally,
    /// `overwrite: never`: keys another writer created while this run was writing them; the
    /// other writer's object or file is kept.
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub created_meanwhile: Tally,
    /// `update_properties`: objects whose properties were set to the manifest's in place (no
    /// bytes sent; `bytes` is 0).
    #[serde(skip_serializing_if = "Tally::is_empty")]
    pub properties_updated: Tally,
    /// Skips the plan decided, per reason slug (`unchanged`, `filtered`, ...).
    pub skipped: BTreeMap<String, Tally>,
    /// The skips worth a look, each with its key and why (unsafe keys, Unicode twins,
    /// unreadable files, ...): the plan's `skipped` list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_objects: Vec<crate::plan::NotableSkip>,
    /// Temp files of an earlier, killed run that were removed.
    pub temp_files_removed: u64,
    /// Multipart uploads an interrupted run left under the prefix, aborted (none of this
    /// run's uploads continued them).
    #[serde(skip_serializing_if = "is_zero")]
    pub uploads_aborted: u64,
    /// Bytes of large uploads an earlier attempt or run had sent, checked and not sent again.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_resumed: u64,
    /// Uploads that could not be continued (a part differed from the file, ...) and started over.
    #[serde(skip_serializing_if = "is_zero")]
    pub uploads_restarted: u64,
    /// Multipart uploads this run left for the next one to continue (a failure or a stop
    /// mid-upload).
    #[serde(skip_serializing_if = "is_zero")]
    pub uploads_left: u64,
    /// Partial large downloads this run kept (temp file and record) for the next one.
    #[serde(skip_serializing_if = "is_zero")]
    pub downloads_left: u64,
    /// Deletions held back because copies failed (a partial copy must not drive deletes).
    pub deletes_held_back: u64,
    /// Objects moved before the server's listing was found out of key order; the listing was
    /// then read again, sorted on disk, and planned from its start (it found these in place,
    /// and they are counted once, as moved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_again: Option<Tally>,
    /// Objects in flight: where the level started and ended, and what lowered it. Absent
    /// when the transfer started no copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<LevelReport>,
    /// Why the transfer did not run at all (its listing failed, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Stopped by SIGINT / SIGTERM before its turn, or before its listing ended (`error`
    /// says so too).
    #[serde(skip)]
    pub stopped_before_start: bool,
    /// Its deadline came before its turn, or before its listing ended (`error` says so too).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_at_deadline: bool,
    pub failure_groups: Vec<FailureGroup>,
    pub failures: Vec<Failure>,
}

/// A transfer's objects in flight (`concurrency`), as the executor ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LevelReport {
    /// `concurrency: auto`: the level moved with what the transfer could do.
    pub adaptive: bool,
    pub start: u32,
    /// The level when the transfer ended.
    pub settled: u32,
    pub highest: u32,
    /// Times the level was halved because the server asked to slow down or connections failed.
    pub lowered: u32,
    /// Answers asking to slow down (503, 429) while the transfer ran, the SDK's retries included.
    pub slow_down_answers: u64,
    /// Connections that failed or timed out while the transfer ran.
    pub failed_connections: u64,
    /// The highest level that proved to pay (below `settled` when the transfer ended before
    /// its last step up was judged): where the next transfer between the same servers starts.
    #[serde(skip)]
    pub proven: u32,
}

/// One object that did not make it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub key: String,
    pub action: ActionKind,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub message: String,
    pub attempts: u32,
    #[serde(skip)]
    pub bucket_region: Option<String>,
}

/// Failures sharing an error code and a file extension.
#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    /// The S3 error code, or `network` when no server answered.
    pub code: String,
    /// The extension, lowercase, without the dot (empty for names without one).
    pub extension: String,
    pub objects: u64,
    pub bytes: u64,
    /// A few keys, for a first look.
    pub examples: Vec<String>,
    pub hint: String,
}

impl TransferReport {
    pub fn new(plan: &TransferPlan) -> Self {
        let mut report = Self::empty(&plan.name, plan.direction);
        report.add_plan(plan);
        report
    }

    /// Counts what the plan skipped. A source file haul may not read is not done, and a
    /// nightly job should notice: a failure (exit 1), like a file that fails to upload, not a
    /// quiet skip.
    pub fn add_plan(&mut self, plan: &TransferPlan) {
        self.skipped = plan
            .by_reason
            .iter()
            .filter(|(slug, _)| !crate::plan::is_move_reason(slug))
            .map(|(slug, tally)| (slug.clone(), *tally))
            .collect();
        self.skipped_objects = plan.skipped.clone();
        // What the first reading of an out-of-order listing moved, the second found unchanged.
        let unchanged = crate::plan::skip_slug(&crate::plan::SkipKind::Unchanged);
        if let (Some(before), Some(unchanged)) = (self.listed_again, self.skipped.get_mut(unchanged)) {
            unchanged.objects = unchanged.objects.saturating_sub(before.objects);
            unchanged.bytes = unchanged.bytes.saturating_sub(before.bytes);
        }
        if plan.direction == Direction::Upload {
            for skip in plan.skipped.iter().filter(|skip| skip.slug == UNREADABLE) {
                let failure = RequestFailure::local(crate::s3::FailureCode::Unreadable, skip.reason.clone(), false);
                self.record_failure(&skip.key, crate::plan::ActionKind::Upload, 0, failure, 0);
            }
            self.skipped.remove(UNREADABLE);
        }
    }

    /// A transfer with nothing done yet (and nothing gone wrong).
    pub fn empty(name: &str, direction: Direction) -> Self {
        TransferReport {
            name: name.to_string(),
            direction,
            moved: Tally::default(),
            deleted: Tally::default(),
            failed: Tally::default(),
            interrupted: Tally::default(),
            deadline: None,
            left_at_deadline: Tally::default(),
            restores_requested: Tally::default(),
            restores_in_progress: Tally::default(),
            created_meanwhile: Tally::default(),
            properties_updated: Tally::default(),
            skipped: BTreeMap::new(),
            skipped_objects: Vec::new(),
            temp_files_removed: 0,
            uploads_aborted: 0,
            bytes_resumed: 0,
            uploads_restarted: 0,
            uploads_left: 0,
            downloads_left: 0,
            deletes_held_back: 0,
            listed_again: None,
            concurrency: None,
            error: None,
            hint: None,
            stopped_before_start: false,
            stopped_at_deadline: false,
            failure_groups: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// A transfer that could not start (listing or planning failed).
    pub fn not_run(name: &str, direction: Direction, error: String) -> Self {
        TransferReport { error: Some(error), ..Self::empty(name, direction) }
    }

    /// A transfer whose turn never came: the run was interrupted first.
    pub fn interrupted_before_start(name: &str, direction: Direction) -> Self {
        let mut report = Self::not_run(name, direction, "interrupted before it started".into());
        report.stopped_before_start = true;
        report
    }

    /// A transfer whose deadline (`deadline`) had passed when its turn came.
    pub fn past_deadline_before_start(name: &str, direction: Direction, deadline: String) -> Self {
        let error = format!("not started: its deadline ({deadline}) had passed; the next run does it");
        let mut report = Self::not_run(name, direction, error);
        report.deadline = Some(deadline);
        report.stopped_at_deadline = true;
        report
    }

    pub fn record_failure(&mut self, key: &str, action: ActionKind, size: u64, failure: RequestFailure, attempts: u32) {
        self.failed.add(size);
        self.failures.push(Failure {
            key: key.to_string(),
            action,
            size,
            code: failure.code,
            status: failure.status,
            message: failure.message,
            attempts,
            bucket_region: failure.bucket_region,
        });
    }

    /// Groups the failures and attaches hints; `moved_extensions` are the extensions of the
    /// objects that did move (the evidence for "only some extensions are allowed").
    pub fn group_failures(&mut self, moved_extensions: &BTreeSet<String>) {
        self.failures.sort_by(|a, b| a.key.cmp(&b.key));
        let mut groups: BTreeMap<(String, String), FailureGroup> = BTreeMap::new();
        for failure in &self.failures {
            let code = failure.code.clone().unwrap_or_else(|| "network".into());
            let extension = extension(&failure.key);
            let group = groups.entry((code.clone(), extension.clone())).or_insert_with(|| FailureGroup {
                code,
                extension,
                objects: 0,
                bytes: 0,
                examples: Vec::new(),
                hint: String::new(),
            });
            group.objects += 1;
            group.bytes += failure.size;
            if group.examples.len() < 3 {
                group.examples.push(failure.key.clone());
            }
        }
        let denied: BTreeSet<String> =
            groups.values().filter(|g| g.code == "AccessDenied").map(|g| g.extension.clone()).collect();
        let region = self.failures.iter().find_map(|f| f.bucket_region.clone());
        for group in groups.values_mut() {
            group.hint = hint(&group.code, self.direction, moved_extensions, &denied, region.as_deref());
        }
        self.failure_groups = groups.into_values().collect();
    }

    fn table(&self) -> String {
        let mut out = format!("{}  {}\n", printable(&self.name), self.direction);
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  not run: {}", crate::text::printable_lines(error));
            if let Some(hint) = &self.hint {
                let _ = writeln!(out, "    hint: {}", crate::text::printable_lines(hint));
            }
            return out;
        }
        let verb = match self.direction {
            Direction::Download => "downloaded",
            Direction::Upload => "uploaded",
            Direction::Copy => "copied",
        };
        let mut parts = vec![format!("{verb} {} ({})", self.moved.objects, human_bytes(self.moved.bytes))];
        if self.deleted.objects > 0 {
            parts.push(format!("deleted {}", self.deleted.objects));
        }
        if self.properties_updated.objects > 0 {
            parts.push(format!("updated the properties of {} in place", self.properties_updated.objects));
        }
        for (slug, tally) in &self.skipped {
            parts.push(format!("{} {}", tally.objects, crate::plan::reason_label(slug)));
        }
        if self.failed.objects > 0 {
            parts.push(format!("FAILED {} ({})", self.failed.objects, human_bytes(self.failed.bytes)));
        }
        if self.left_at_deadline.objects > 0 {
            parts.push(format!(
                "{} ({}) left at the deadline{}",
                self.left_at_deadline.objects,
                human_bytes(self.left_at_deadline.bytes),
                self.deadline.as_deref().map(|at| format!(" ({at})")).unwrap_or_default()
            ));
        }
        if self.restores_requested.objects + self.restores_in_progress.objects > 0 {
            parts.push(format!(
                "{} archived: {} restore(s) requested, {} under way; a later run moves them once restored",
                self.restores_requested.objects + self.restores_in_progress.objects,
                self.restores_requested.objects,
                self.restores_in_progress.objects
            ));
        }
        if self.created_meanwhile.objects > 0 {
            parts.push(format!(
                "{} created by another writer during the run, kept (overwrite: never)",
                self.created_meanwhile.objects
            ));
        }
        if self.interrupted.objects > 0 {
            parts.push(format!("{} not done (interrupted)", self.interrupted.objects));
        }
        let _ = writeln!(out, "  {}", parts.join("; "));
        const SKIPS_SHOWN: usize = 5;
        for skip in self.skipped_objects.iter().take(SKIPS_SHOWN) {
            let _ = writeln!(out, "  skipped {}: {}", printable(&skip.key), printable(&skip.reason));
        }
        if self.skipped_objects.len() > SKIPS_SHOWN {
            let more = self.skipped_objects.len() - SKIPS_SHOWN;
            let _ = writeln!(out, "  ... and {more} more skipped (listed in `--output json` and `haul plan`)");
        }
        if self.uploads_aborted > 0 {
            let _ =
                writeln!(out, "  aborted {} unfinished multipart uploads of an interrupted run", self.uploads_aborted);
        }
        if self.bytes_resumed > 0 {
            let _ = writeln!(
                out,
                "  resumed: {} already moved by an earlier attempt or run, checked and not moved again",
                human_bytes(self.bytes_resumed)
            );
        }
        if let Some(before) = self.listed_again {
            let _ = writeln!(
                out,
                "  the server does not list in key order: its listing was read again and sorted on disk ({} moved before that)",
                crate::progress::plural(before.objects, "object")
            );
        }
        if let Some(level) = &self.concurrency {
            level.describe(&mut out);
        }
        if self.uploads_restarted > 0 {
            let _ = writeln!(
                out,
                "  started {} unfinished upload(s) over: they no longer matched their files (details with --log-level info)",
                self.uploads_restarted
            );
        }
        if self.downloads_left > 0 {
            let _ = writeln!(
                out,
                "  kept {} partial download(s) for the next run to finish (it fetches only the missing ranges)",
                self.downloads_left
            );
        }
        if self.uploads_left > 0 {
            let _ = writeln!(
                out,
                "  left {} multipart upload(s) for the next run to continue (it sends only the missing parts)",
                self.uploads_left
            );
        }
        if self.temp_files_removed > 0 {
            let _ = writeln!(out, "  removed {} temp files left by an interrupted run", self.temp_files_removed);
        }
        if self.deletes_held_back > 0 {
            let _ = writeln!(
                out,
                "  {} deletions held back: copies failed, and a partial copy must not drive deletes",
                self.deletes_held_back
            );
        }
        for group in &self.failure_groups {
            let extension =
                if group.extension.is_empty() { "(no extension)".into() } else { format!("*.{}", group.extension) };
            let examples: Vec<String> = group.examples.iter().map(|k| printable(k)).collect();
            let _ = writeln!(
                out,
                "  failed: {} on {extension}: {} object{}, e.g. {}",
                group.code,
                group.objects,
                if group.objects == 1 { "" } else { "s" },
                examples.join(", ")
            );
            let _ = writeln!(out, "    hint: {}", group.hint);
        }
        if let Some(failure) = self.failures.first() {
            let _ = writeln!(out, "  first error: {}: {}", printable(&failure.key), printable(&failure.message));
        }
        out
    }
}

/// The lowercase extension of a key's file name, without the dot.
pub fn extension(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    match name.rfind('.') {
        Some(dot) if dot > 0 => name[dot + 1..].to_lowercase(),
        _ => String::new(),
    }
}

/// What to do about one group of failures.
/// The hint for failures with `code` alone (no other evidence).
pub fn hint_for(code: &str, direction: Direction) -> String {
    hint(code, direction, &BTreeSet::new(), &BTreeSet::new(), None)
}

fn hint(
    code: &str,
    direction: Direction,
    moved_extensions: &BTreeSet<String>,
    denied: &BTreeSet<String>,
    region: Option<&str>,
) -> String {
    let verb = match direction {
        Direction::Download | Direction::Copy => "read",
        Direction::Upload => "write",
    };
    let class = if code == "network" { None } else { Some(code) };
    if let Some(advice) = crate::advice::shared(class, region, crate::advice::SetIn::Manifest) {
        return advice;
    }
    match code {
        "AccessDenied" if !moved_extensions.is_empty() && moved_extensions.is_disjoint(denied) => {
            let allowed: Vec<String> = moved_extensions.iter().filter(|e| !e.is_empty()).cloned().collect();
            let globs: Vec<String> = allowed.iter().map(|e| format!("*.{e}")).collect();
            format!(
                "your credentials may only allow {}: add `extensions: [{}]` to this transfer",
                globs.join(", "),
                allowed.join(", ")
            )
        }
        "AccessDenied" => format!(
            "these credentials may not {verb} these objects: check the profile, the bucket policy, the object owner \
             and, for a requester-pays bucket, `request_payer: requester`"
        ),
        "NoSuchKey" | "NotFound" => "the object went away after it was listed; the next run sees the change".into(),
        "FileChanged" => "the file changed while it was being sent (written to, grown, replaced): nothing mixed was \
                          stored, and the next run sends it as it is then; exclude files that are still being written"
            .into(),
        "PreconditionFailed" | "ObjectChanged" => {
            "the object changed while it was being copied; the next run copies the new version".into()
        }
        "SlowDown" | "Throttling" | "ThrottlingException" => {
            "the server asked to slow down: lower `concurrency` for this transfer, or raise `retries`".into()
        }
        "ChecksumMismatch" | "ShortBody" => {
            "the data arrived damaged or cut short on every attempt: check the network or proxy, then run again".into()
        }
        "DiskFull" => "the local disk is full (or over quota): free space where the files go, then run again".into(),
        "TooManyOpenFiles" => "too many open files: raise the limit (`ulimit -n`; `LimitNOFILE=` in a systemd unit) \
                               or lower `concurrency`"
            .into(),
        "LocalFileGone" => {
            "the local file or folder was removed or renamed while haul ran; the next run takes the folder as it is then"
                .into()
        }
        // What S3 answers to a GET of an archived object; haul's own code when it knew first.
        "Archived" | "InvalidObjectState" => "archived in GLACIER or DEEP_ARCHIVE and not restored: set \
                                              `archived: restore` to have haul ask S3 to restore them (a later run \
                                              moves them), or `archived: skip` to leave them out"
            .into(),
        "LocalIo" => "check the permissions of the local folder and the message above".into(),
        "Unreadable" => "haul may not read these files: check their owner and permissions (`ls -l`), \
                          or leave them out with `exclude:`"
            .into(),
        _ => "see the message; the next run retries what failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: &str) -> RequestFailure {
        RequestFailure::coded(code, "denied", false)
    }

    #[test]
    fn extensions_are_lowercase_and_dotless() {
        assert_eq!(extension("a/b/매출.CSV"), "csv");
        assert_eq!(extension("a/.hidden"), "");
        assert_eq!(extension("dir.d/noext"), "");
        assert_eq!(extension("x.tar.gz"), "gz");
    }

    #[test]
    fn access_denied_on_some_extensions_suggests_the_filter() {
        let plan = TransferPlan {
            name: "t".into(),
            direction: Direction::Download,
            bucket: "b".into(),
            prefix: String::new(),
            local: "/l".into(),
            actions: vec![],
            skipped: vec![],
            temp_files: vec![],
            by_action: BTreeMap::new(),
            by_reason: BTreeMap::new(),
            shard: None,
            unfinished_uploads: vec![],
            to: None,
            copy_method: None,
            resumed: Default::default(),
            archived: Default::default(),
            inventories: Vec::new(),
            deadline_shortfall: None,
        };
        let mut report = TransferReport::new(&plan);
        report.record_failure("a.json", ActionKind::Download, 5, failure("AccessDenied"), 1);
        report.record_failure("b.json", ActionKind::Download, 5, failure("AccessDenied"), 1);
        report.record_failure("c.log", ActionKind::Download, 1, failure("AccessDenied"), 1);
        let moved: BTreeSet<String> = ["csv".to_string(), "parquet".to_string()].into();
        report.group_failures(&moved);
        assert_eq!(report.failure_groups.len(), 2);
        let json = &report.failure_groups[0];
        assert_eq!(
            (json.code.as_str(), json.extension.as_str(), json.objects, json.bytes),
            ("AccessDenied", "json", 2, 10)
        );
        assert_eq!(
            json.hint,
            "your credentials may only allow *.csv, *.parquet: add `extensions: [csv, parquet]` to this transfer"
        );
        assert_eq!(report.failed, Tally { objects: 3, bytes: 11 });
        // With nothing moved there is no evidence of an extension rule.
        report.group_failures(&BTreeSet::new());
        assert!(report.failure_groups[0].hint.starts_with("these credentials may not read"));
    }

    #[test]
    fn wrong_region_names_the_real_one() {
        let mut with_region = failure("PermanentRedirect");
        with_region.bucket_region = Some("ap-northeast-2".into());
        let plan_name = "t";
        let mut report = TransferReport::not_run(plan_name, Direction::Download, String::new());
        report.error = None;
        report.record_failure("a.csv", ActionKind::Download, 1, with_region, 1);
        report.group_failures(&BTreeSet::new());
        assert_eq!(
            report.failure_groups[0].hint,
            "the bucket is in `ap-northeast-2`: set `region: ap-northeast-2` for this transfer"
        );
    }
}
