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

/// `1.5 MiB`, `10 B`.
pub fn human_bytes(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

/// `text` followed by spaces up to `width` columns as a terminal shows them (a Hangul
/// syllable takes two).
pub fn pad(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr as _;
    format!("{text}{}", " ".repeat(width.saturating_sub(text.width())))
}

/// `text` after spaces up to `width` columns: numbers aligned to the right.
pub fn pad_left(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr as _;
    format!("{}{text}", " ".repeat(width.saturating_sub(text.width())))
}

/// Bytes as lowercase hex (digests in file names, plan files and MD5 ETags).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
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

/// An access key id as haul shows it: `AKIA…WXYZ` (the secret is never shown at all).
pub fn mask(access_key: &str) -> String {
    let chars: Vec<char> = access_key.chars().collect();
    if chars.len() <= 8 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// `text` with every access key id in it masked: AWS's (`AKIA` and the other prefixes, 20
/// characters), Garage's (`GK` and 24 hex digits), and the one in `AWS_ACCESS_KEY_ID`. A
/// server names an unknown key in its message ("No such key: GK…"), and messages are printed
/// and written to reports and logs.
pub fn mask_access_keys(text: &str) -> String {
    let configured = std::env::var("AWS_ACCESS_KEY_ID").ok().filter(|key| key.len() >= 8);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        let token = &rest[..end];
        if looks_like_access_key(token) || configured.as_deref() == Some(token) {
            out.push_str(&mask(token));
        } else {
            out.push_str(token);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn looks_like_access_key(token: &str) -> bool {
    const AWS_PREFIXES: [&str; 12] =
        ["AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA", "APKA", "ABIA", "ACCA", "ASCA"];
    let aws = token.len() == 20
        && AWS_PREFIXES.iter().any(|prefix| token.starts_with(prefix))
        && token.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let garage = token.len() == 26
        && token.starts_with("GK")
        && token[2..].chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    aws || garage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangul_is_padded_by_display_width() {
        assert_eq!(pad("매출", 6), "매출  ");
        assert_eq!(pad("ab", 6), "ab    ");
        assert_eq!(pad_left("가", 3), " 가");
    }

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\0"), "a\\nb\\u{0}");
        assert_eq!(printable("\u{1b}]0;PWNED\u{7}"), "\\u{1b}]0;PWNED\\u{7}");
        assert_eq!(printable("매출.csv"), "매출.csv");
        assert_eq!(printable_lines("a\u{1b}[31m\nb"), "a\\u{1b}[31m\nb");
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(shortened("매출", 4), "매출");
    }

    #[test]
    fn access_key_ids_are_masked_wherever_they_appear() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask("short"), "…");
        assert_eq!(
            mask_access_keys("No such key: GK31c2f218a2e44f485b94239e, or AKIAIOSFODNN7EXAMPLE."),
            "No such key: GK31…239e, or AKIA…MPLE."
        );
        // Not every long word is a key.
        let plain = "AccessDenied: AKIAIOSFODNN7EXAMPL is 19, GKnothex0000000000000000000 is not hex";
        assert_eq!(mask_access_keys(plain), plain);
    }
}
