//! The one place that turns errors and problems into text for people.
//!
//! Manifest problems are drawn like compiler diagnostics (miette): the file and
//! `line:column`, the source line, a caret under the offending text, and a `help:` line.

use std::fmt::Write as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic};

use crate::error::HaulError;
use crate::manifest::{ManifestError, Problem, Severity, SourceFile};

/// How to draw: colors and Unicode box lines only on a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn handler(self) -> GraphicalReportHandler {
        let theme = if self.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(1000).with_wrap_lines(false)
    }
}

/// Renders one manifest problem with its source lines (`starts`: where each line of the
/// file starts, worked out once for all its problems).
fn problem(source: &SourceFile, starts: &[usize], problem: &Problem, style: Style) -> String {
    let severity = match problem.severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    };
    // A problem with no line to point at still names the file in its message.
    // Messages quote the file (a name, a value): made printable like the source lines.
    let message = match problem.location {
        Some(_) => fit(&problem.message),
        None => fit(&format!("{}: {}", source.path.display(), problem.message)),
    };
    let mut diagnostic = MietteDiagnostic::new(message).with_severity(severity);
    if let Some(help) = &problem.help {
        diagnostic = diagnostic.with_help(fit(help));
    }
    let mut out = String::new();
    match problem.location {
        Some(location) => {
            let snippet = Snippet::around(source, starts, location);
            let label = problem.label.as_deref().map(fit);
            diagnostic = diagnostic.with_label(LabeledSpan::new(label, snippet.offset, snippet.len));
            let report = miette::Report::new(diagnostic).with_source_code(snippet);
            let _ = style.handler().render_report(&mut out, report.as_ref());
        }
        None => {
            let report = miette::Report::new(diagnostic);
            let _ = style.handler().render_report(&mut out, report.as_ref());
        }
    }
    out
}

/// Renders every problem of a file, warnings and errors in file order.
pub fn problems(source: &SourceFile, problems: &[Problem], style: Style) -> String {
    let mut out = String::new();
    let starts = crate::manifest::line_starts(&source.text);
    for item in problems {
        out.push_str(&problem(source, &starts, item, style));
        out.push('\n');
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    if errors > 0 {
        let _ = writeln!(
            out,
            "error: {} is not a valid manifest ({errors} error{})",
            source.path.display(),
            if errors == 1 { "" } else { "s" }
        );
    }
    out
}

/// Renders any error for stderr, with what to do about it.
pub fn error(err: &HaulError, style: Style) -> String {
    match err {
        HaulError::Manifest(ManifestError::Invalid { file, problems: list }) => problems(file, list, style),
        // Errors quote paths, keys and servers' messages: made printable, line breaks kept.
        other => {
            let mut out = format!("error: {}\n", printable_lines(&other.to_string()));
            if let Some(help) = other.help() {
                let _ = writeln!(out, "  help: {}", printable_lines(&help));
            }
            out
        }
    }
}

pub use crate::text::{printable, printable_lines};

/// Characters of a message, label or help line at most: they may quote a value from the file.
const MESSAGE_WIDTH: usize = 300;

/// A message's lines made printable and cut to [`MESSAGE_WIDTH`].
fn fit(text: &str) -> String {
    printable_lines(text)
        .split('\n')
        .map(|line| crate::text::shortened(line, MESSAGE_WIDTH))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Characters of a source line shown on each side of the point of a problem: a long line (a
/// minified or binary file) is cut around it, never echoed whole.
const LINE_WINDOW: usize = 80;

/// The lines around a problem, as shown: each made printable and cut around the problem's
/// column, numbered as in the file. (miette shows a source as it is given; this is what it
/// is given.)
struct Snippet {
    name: String,
    text: String,
    /// The 0-based line number of the snippet's first line in the file.
    first_line: usize,
    /// Where the label goes in `text`.
    offset: usize,
    len: usize,
}

impl Snippet {
    fn around(source: &SourceFile, starts: &[usize], location: crate::manifest::Location) -> Snippet {
        let line_index = location.line.saturating_sub(1);
        let first_line = line_index.saturating_sub(1);
        // Lines as YAML counts them (a lone CR ends one too), without their line break.
        let line = |index: usize| {
            let start = *starts.get(index)?;
            let end = starts.get(index + 1).copied().unwrap_or(source.text.len());
            Some(source.text[start..end].trim_end_matches(['\r', '\n']))
        };
        let lines: Vec<&str> = (first_line..=line_index + 1).map_while(line).collect();
        let column = location.column.saturating_sub(1);
        // The window is the same for the lines around, so columns still line up.
        let start = column.saturating_sub(LINE_WINDOW);
        let mut text = String::new();
        let (mut offset, mut len) = (0, 1);
        for (index, line) in lines.iter().enumerate() {
            if first_line + index == line_index {
                let before = shown(line, start, column, start > 0, false);
                let marked = shown(line, column, column + location.len, false, false);
                offset = text.len() + before.len();
                len = marked.len().max(1);
            }
            let total = line.chars().count();
            let end = start + 2 * LINE_WINDOW;
            text.push_str(&shown(line, start, end, start > 0, end < total));
            if index + 1 < lines.len() {
                text.push('\n');
            }
        }
        let offset = offset.min(text.len());
        let len = len.min(text.len() - offset).max(usize::from(offset < text.len()));
        Snippet { name: source.path.display().to_string(), text, first_line, offset, len }
    }
}

/// Characters `from..to` of `line`, printable, with `…` where it was cut.
fn shown(line: &str, from: usize, to: usize, cut_before: bool, cut_after: bool) -> String {
    let part: String = line.chars().skip(from).take(to.saturating_sub(from)).collect();
    let mut out = if cut_before { "…".to_string() } else { String::new() };
    out.push_str(&printable(&part));
    if cut_after {
        out.push('…');
    }
    out
}

impl miette::SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            inner.column(),
            inner.line_count(),
        )))
    }
}
