//! Text for people from what haul did not write itself: file contents, keys, server messages.

/// Text from a file, a key or a server, fit for a terminal: control characters (an escape
/// sequence that would retitle the window or recolor it, a NUL, a tab) are shown escaped
/// (`\u{1b}`, `\t`), never sent raw.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// [`printable`] for text of several lines: line breaks are kept, every other control
/// character is escaped.
pub fn printable_lines(text: &str) -> String {
    text.split('\n').map(printable).collect::<Vec<_>>().join("\n")
}

/// `text` cut to `max` characters, with `…` where it was cut: a message that quotes a value
/// from a file stays one readable line however long the value is.
pub fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\0"), "a\\nb\\u{0}");
        assert_eq!(printable("\u{1b}]0;PWNED\u{7}"), "\\u{1b}]0;PWNED\\u{7}");
        assert_eq!(printable("매출.csv"), "매출.csv");
        assert_eq!(printable_lines("a\u{1b}[31m\nb"), "a\\u{1b}[31m\nb");
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(shortened("매출", 4), "매출");
    }
}
