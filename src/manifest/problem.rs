//! Problems found in a manifest: what is wrong, where, and how to fix it.

use std::path::PathBuf;
use std::sync::Arc;

use marked_yaml::Span;

/// How bad a problem is: errors stop the run (exit 2), warnings are printed and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A 1-based line and column in the manifest, plus how many characters to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

impl Location {
    pub fn new(line: usize, column: usize, len: usize) -> Self {
        Location { line, column, len: len.max(1) }
    }

    /// Where a YAML node starts; `len` is how much of it to underline.
    pub fn of_span(span: &Span, len: usize) -> Option<Self> {
        span.start().map(|mark| Location::new(mark.line(), mark.column(), len))
    }

    /// Where a mapping's key is, underlining it.
    pub fn of_key(key: &marked_yaml::types::MarkedScalarNode) -> Option<Self> {
        Location::of_span(key.span(), key.as_str().chars().count())
    }

    /// Where a value is, underlining the whole of a one-line scalar.
    pub fn of_value(node: &marked_yaml::Node) -> Option<Self> {
        let len = node.as_scalar().map_or(1, |s| s.as_str().chars().count());
        Location::of_span(node.span(), len)
    }
}

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// Where it is; `None` for problems of the whole file (such as an empty file).
    pub location: Option<Location>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// A short note under the caret.
    pub label: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Problem {
    pub fn error(location: Option<Location>, message: impl Into<String>) -> Self {
        Problem { severity: Severity::Error, location, message: message.into(), label: None, help: None }
    }

    pub fn warning(location: Option<Location>, message: impl Into<String>) -> Self {
        Problem { severity: Severity::Warning, ..Problem::error(location, message) }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A manifest's text, kept so problems can be shown with the offending line.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user wrote it (shown in messages).
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// The byte offset where each line starts, lines ending as YAML ends them (LF, CRLF, CR).
pub fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\r' if bytes.get(at + 1) == Some(&b'\n') => {
                at += 2;
                starts.push(at);
            }
            b'\r' | b'\n' => {
                at += 1;
                starts.push(at);
            }
            _ => at += 1,
        }
    }
    starts
}

/// The closest candidate to a misspelled word, when one is close enough to suggest.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(&word.to_lowercase(), candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["bucket", "prefix", "local", "direction"];
        assert_eq!(did_you_mean("bukcet", keys), Some("bucket"));
        assert_eq!(did_you_mean("Bucket", keys), Some("bucket"));
        assert_eq!(did_you_mean("directon", keys), Some("direction"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
