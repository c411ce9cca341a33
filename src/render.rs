//! The one place that turns errors and problems into text for people.
//!
//! Manifest problems are drawn like compiler diagnostics (miette): the file and
//! `line:column`, the source line, a caret under the offending text, and a `help:` line.

use std::fmt::Write as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, SourceOffset};

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

/// Renders one manifest problem with its source line.
pub fn problem(source: &SourceFile, problem: &Problem, style: Style) -> String {
    let severity = match problem.severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    };
    // A problem with no line to point at still names the file in its message.
    let message = match problem.location {
        Some(_) => problem.message.clone(),
        None => format!("{}: {}", source.path.display(), problem.message),
    };
    let mut diagnostic = MietteDiagnostic::new(message).with_severity(severity);
    if let Some(help) = &problem.help {
        diagnostic = diagnostic.with_help(help.clone());
    }
    let mut out = String::new();
    match problem.location {
        Some(location) => {
            let offset = SourceOffset::from_location(source.text.as_ref(), location.line, location.column).offset();
            let len = byte_len_of_chars(&source.text[offset.min(source.text.len())..], location.len);
            diagnostic = diagnostic.with_label(LabeledSpan::new(problem.label.clone(), offset, len));
            let report = miette::Report::new(diagnostic)
                .with_source_code(NamedSource::new(source.path.display().to_string(), source.text.to_string()));
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
    for item in problems {
        out.push_str(&problem(source, item, style));
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
        other => {
            let mut out = format!("error: {other}\n");
            if let Some(help) = other.help() {
                let _ = writeln!(out, "  help: {help}");
            }
            out
        }
    }
}

fn byte_len_of_chars(text: &str, chars: usize) -> usize {
    let line_end = text.find('\n').unwrap_or(text.len());
    text[..line_end].char_indices().nth(chars).map_or(line_end, |(index, _)| index)
}
