//! Plans for people (an aligned table per transfer) and for programs (JSON).

use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr;

use super::{Tally, TransferPlan};
// Keys may hold control characters (a hostile key): they are shown escaped, never raw.
use crate::text::{human_bytes, pad, pad_left, printable};

/// The table for one transfer: every action and notable skip, then the totals.
pub fn table(plan: &TransferPlan) -> String {
    let mut out = Vec::new();
    let mut table = Table::begin(plan);
    for action in &plan.actions {
        table.action(action, &mut out).expect("a table writes into memory");
    }
    table.finish(plan, &mut out).expect("a table writes into memory");
    String::from_utf8(out).expect("the table is text")
}

/// A transfer's table written as its plan is made: the heading first, then the actions in
/// blocks of [`Table::BLOCK`] rows (each block aligned on its own, so a plan of a million
/// actions is printed without being held), then the notable skips and the totals.
pub struct Table {
    /// Written with the first rows or the totals, so a transfer that fails to plan prints
    /// nothing here (its error says it all) unless it had a block of rows already.
    heading: Option<String>,
    rows: Vec<[String; 4]>,
}

impl Table {
    /// Rows aligned together; a later block may align differently.
    pub const BLOCK: usize = 10_000;

    /// The table of `plan` (its name, direction and route), whose actions are to come.
    pub fn begin(plan: &TransferPlan) -> Table {
        let route = crate::manifest::route(
            plan.direction,
            &plan.bucket,
            &plan.prefix,
            &plan.local,
            plan.to.as_ref().map(|to| (to.bucket.as_str(), to.prefix.as_str())),
        );
        let mut heading = printable(&format!("{}  {}  {route}", plan.name, plan.direction));
        if let Some(shard) = plan.shard {
            let _ = write!(heading, "  (shard {shard})");
        }
        heading.push('\n');
        if let Some(method) = plan.copy_method {
            let _ = writeln!(heading, "  by {}", method.explain());
        }
        Table { heading: Some(heading), rows: Vec::new() }
    }

    pub fn action(&mut self, action: &super::Action, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let size = if !action.action.moves_bytes() { "-".into() } else { human_bytes(action.size) };
        let mut reason = action.reason.label().to_string();
        if let Some(writer) = action.source.as_ref().and_then(|source| source.written_by.as_deref()) {
            let _ = write!(reason, " (written by `{}` first)", printable(writer));
        }
        if !action.properties.is_empty() {
            let _ = write!(reason, ": {}", action.properties.join(", "));
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
        self.rows.push([action.action.label().into(), size, printable(&action.key), reason]);
        if self.rows.len() >= Self::BLOCK {
            self.flush(out)?;
        }
        Ok(())
    }

    /// The notable skips and the totals of the finished plan.
    pub fn finish(mut self, plan: &TransferPlan, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for skip in &plan.skipped {
            self.rows.push(["skip".into(), "-".into(), printable(&skip.key), skip.reason.clone()]);
        }
        self.flush(out)?;
        for used in &plan.inventories {
            let age = humantime::format_duration(std::time::Duration::from_secs(used.age_seconds / 60 * 60));
            writeln!(
                out,
                "  {} listed from the S3 Inventory report {} made {} ({age} before this plan): objects changed since are not in it",
                used.side,
                printable(&used.report),
                used.created
            )?;
        }
        writeln!(out, "  {}", summary_line(plan))?;
        if let Some(shortfall) = &plan.deadline_shortfall {
            writeln!(out, "  warning: {}", shortfall.describe())?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        if let Some(heading) = self.heading.take() {
            out.write_all(heading.as_bytes())?;
        }
        if self.rows.is_empty() {
            return Ok(());
        }
        let heading = ["ACTION".to_string(), "SIZE".into(), "KEY".into(), "REASON".into()];
        let rows: Vec<&[String; 4]> = std::iter::once(&heading).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..4).map(|col| rows.iter().map(|row| row[col].width()).max().unwrap_or(0)).collect();
        let mut text = String::new();
        for row in rows {
            let _ = writeln!(
                text,
                "  {}  {}  {}  {}",
                pad(&row[0], widths[0]),
                pad_left(&row[1], widths[1]),
                pad(&row[2], widths[2]),
                row[3]
            );
        }
        self.rows.clear();
        out.write_all(text.as_bytes())
    }
}

/// `3 to download (3.6 KiB); 1 unchanged (10 B); 2 filtered`.
pub fn summary_line(plan: &TransferPlan) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (action, tally) in &plan.by_action {
        if !action.moves_bytes() {
            parts.push(format!("{} to {}", tally.objects, action.label()));
        } else {
            parts.push(format!("{} to {} ({})", tally.objects, action.label(), human_bytes(tally.bytes)));
        }
    }
    if parts.is_empty() {
        parts.push("nothing to do".into());
    }
    if plan.archived.objects > 0 {
        parts.push(format!(
            "{} of them archived (GLACIER, DEEP_ARCHIVE: read only once restored)",
            plan.archived.objects
        ));
    }
    if plan.resumed.objects > 0 {
        parts.push(format!("{} to resume ({} already sent)", plan.resumed.objects, human_bytes(plan.resumed.bytes)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, ActionKind, Reason};

    #[test]
    fn a_long_table_is_written_in_aligned_blocks_with_one_summary() {
        let job = crate::plan::tests::job(crate::manifest::Direction::Download, false, None);
        let mut plan = TransferPlan::empty(&job, None);
        let count = Table::BLOCK + 1;
        plan.by_action.insert(ActionKind::Download, Tally { objects: count as u64, bytes: count as u64 });
        let mut out = Vec::new();
        let mut table = Table::begin(&plan);
        for n in 0..count {
            let key = if n == 0 { "a-much-longer-first-key.csv".to_string() } else { format!("k{n:05}") };
            let action = Action {
                action: ActionKind::Download,
                key,
                size: 1,
                reason: Reason::New,
                source: None,
                destination: None,
                resume: None,
                exact_name: false,
                properties: Vec::new(),
            };
            table.action(&action, &mut out).unwrap();
        }
        table.finish(&plan, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("t  download"), "{}", lines[0]);
        // Two blocks, each with its heading row; the keys of the first are padded to its
        // longest, the second's single row is not.
        assert_eq!(lines.iter().filter(|line| line.trim_start().starts_with("ACTION")).count(), 2);
        assert_eq!(lines.len(), 1 + (1 + Table::BLOCK) + (1 + 1) + 1);
        assert!(lines[2].contains("a-much-longer-first-key.csv  new"), "{}", lines[2]);
        assert!(lines[3].contains("k00001                       new"), "{}", lines[3]);
        assert!(lines[lines.len() - 2].ends_with("k10000  new"), "{}", lines[lines.len() - 2]);
        assert_eq!(lines.last().unwrap().trim(), format!("{count} to download (9.8 KiB)"));
    }
}
