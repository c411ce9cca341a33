//! Plans for people (an aligned table per transfer) and for programs (JSON).

use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr;

use super::{Tally, TransferPlan};
// Keys may hold control characters (a hostile key): they are shown escaped, never raw.
use crate::text::{human_bytes, pad, pad_left, printable};

/// The table for one transfer: every action and notable skip, then the totals.
pub fn table(plan: &TransferPlan) -> String {
    let route = crate::manifest::route(
        plan.direction,
        &plan.bucket,
        &plan.prefix,
        &plan.local,
        plan.to.as_ref().map(|to| (to.bucket.as_str(), to.prefix.as_str())),
    );
    let mut out = printable(&format!("{}  {}  {route}", plan.name, plan.direction));
    if let Some(shard) = plan.shard {
        let _ = write!(out, "  (shard {shard})");
    }
    out.push('\n');
    if let Some(method) = plan.copy_method {
        let _ = writeln!(out, "  by {}", method.explain());
    }
    let mut rows: Vec<[String; 4]> = vec![["ACTION".into(), "SIZE".into(), "KEY".into(), "REASON".into()]];
    for action in &plan.actions {
        let size = if action.size == 0 && action.source.is_none() { "-".into() } else { human_bytes(action.size) };
        let mut reason = action.reason.label().to_string();
        if let Some(writer) = action.source.as_ref().and_then(|source| source.written_by.as_deref()) {
            let _ = write!(reason, " (written by `{}` first)", printable(writer));
        }
        if let Some(resume) = &action.resume {
            let _ = write!(
                reason,
                " (continues an unfinished upload: {} part{}, {} sent)",
                resume.parts,
                if resume.parts == 1 { "" } else { "s" },
                human_bytes(resume.bytes)
            );
        }
        rows.push([action.action.label().into(), size, printable(&action.key), reason]);
    }
    for skip in &plan.skipped {
        rows.push(["skip".into(), "-".into(), printable(&skip.key), skip.reason.clone()]);
    }
    if rows.len() > 1 {
        let widths: Vec<usize> = (0..4).map(|col| rows.iter().map(|row| row[col].width()).max().unwrap_or(0)).collect();
        for row in &rows {
            let _ = writeln!(
                out,
                "  {}  {}  {}  {}",
                pad(&row[0], widths[0]),
                pad_left(&row[1], widths[1]),
                pad(&row[2], widths[2]),
                row[3]
            );
        }
    }
    let _ = writeln!(out, "  {}", summary_line(plan));
    out
}

/// `3 to download (3.6 KiB); 1 unchanged (10 B); 2 filtered`.
pub fn summary_line(plan: &TransferPlan) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (action, tally) in &plan.by_action {
        if action.is_delete() {
            parts.push(format!("{} to {}", tally.objects, action.label()));
        } else {
            parts.push(format!("{} to {} ({})", tally.objects, action.label(), human_bytes(tally.bytes)));
        }
    }
    if parts.is_empty() {
        parts.push("nothing to do".into());
    }
    let resumed: Vec<&super::Resume> = plan.actions.iter().filter_map(|action| action.resume.as_ref()).collect();
    if !resumed.is_empty() {
        let bytes: u64 = resumed.iter().map(|resume| resume.bytes).sum();
        parts.push(format!("{} to resume ({} already sent)", resumed.len(), human_bytes(bytes)));
    }
    if !plan.unfinished_uploads.is_empty() {
        let count = plan.unfinished_uploads.len();
        parts.push(format!(
            "{count} unfinished multipart upload{} of an interrupted run to abort",
            if count == 1 { "" } else { "s" }
        ));
    }
    if !plan.temp_files.is_empty() {
        parts.push(format!("{} haul temp files (removed by apply when their run is gone)", plan.temp_files.len()));
    }
    // `by_reason` counts moves and skips; the moves are already in the `to ...` parts.
    for (slug, Tally { objects, .. }) in &plan.by_reason {
        if !super::is_move_reason(slug) {
            parts.push(format!("{objects} {}", super::reason_label(slug)));
        }
    }
    parts.join("; ")
}
