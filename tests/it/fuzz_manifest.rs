//! Property-based fuzzing of manifest loading, validation and error rendering: whatever the
//! bytes, haul answers with a manifest or with problems it can point at, never a panic.
//!
//! `./scripts/test --extended` runs many more cases (PROPTEST_CASES); the default run is quick.

use std::path::Path;
use std::sync::Arc;

use haul::manifest::{ManifestError, SourceFile, load_source};
use haul::render::{Style, problems};
use proptest::prelude::*;

const SEEDS: [&str; 3] = [
    include_str!("../../examples/requester-pays-download.yaml"),
    include_str!("../../examples/upload-with-excludes.yaml"),
    include_str!("../../examples/local-demo.yaml"),
];

/// Loads `text` and renders whatever it says; checks that every problem points into the text.
fn load_and_render(text: &str) -> Result<(), TestCaseError> {
    let source = SourceFile { path: "fuzz.yaml".into(), text: Arc::from(text) };
    match load_source(source, Path::new("/tmp"), &haul::manifest::Moment::now()) {
        Ok(manifest) => {
            check_printable(&problems(&manifest.source, &manifest.warnings, Style { color: false }))?;
        }
        Err(ManifestError::Invalid { file, problems: found }) => {
            prop_assert!(!found.is_empty(), "invalid with no problem");
            // YAML ends a line at LF, CRLF or a lone CR.
            let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count() + 1;
            for problem in &found {
                if let Some(location) = problem.location {
                    prop_assert!(location.line >= 1 && location.line <= lines, "{problem:?} outside the text");
                }
            }
            let shown = problems(&file, &found, Style { color: false });
            prop_assert!(!shown.is_empty());
            check_printable(&shown)?;
        }
        Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

/// What haul shows a terminal: no control character but line breaks (an escape sequence
/// from the file would retitle or recolor it), and no line echoed whole however long.
fn check_printable(shown: &str) -> Result<(), TestCaseError> {
    let raw = shown.chars().find(|c| c.is_control() && *c != '\n');
    prop_assert!(raw.is_none(), "raw control character {raw:?} in:\n{shown}");
    let longest = shown.lines().map(|line| line.chars().count()).max().unwrap_or(0);
    prop_assert!(longest <= 400, "a line of {longest} characters shown");
    Ok(())
}

/// Hostile pieces: deep nesting, terminal escape sequences, a huge line.
fn hostile_pieces() -> Vec<&'static str> {
    let deep_list: &'static str = "- ".repeat(5_000).leak();
    let deep_flow: &'static str = "[".repeat(5_000).leak();
    let deep_map: &'static str = (0..200).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect::<String>().leak();
    let huge: &'static str = "x".repeat(100_000).leak();
    vec![deep_list, deep_flow, deep_map, huge, "\u{1b}]0;PWNED\u{7}\u{1b}[31m", "\u{8}\u{7f}\r"]
}

/// One edit of a seed manifest: replace, insert or delete a run of characters.
fn mutated() -> impl Strategy<Value = String> {
    let mut all = hostile_pieces();
    all.extend([
        "",
        " ",
        "\n",
        "\t",
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "'",
        "\"",
        "#",
        "&a",
        "*a",
        "!!str ",
        "~",
        "0",
        "-1",
        "99999999999999999999",
        "5GiB",
        "s3://x/y",
        "../..",
        "매출",
        "\u{0}",
        "\u{feff}",
        "---\n",
        "version: 2",
        "bucket:",
        "transfers:",
        "defaults:",
        "\n  - name: t\n",
        "extensions: [csv]",
        "  ",
    ]);
    let pieces = prop::sample::select(all);
    (prop::sample::select(SEEDS.to_vec()), any::<prop::sample::Index>(), 0usize..12, pieces, any::<bool>()).prop_map(
        |(seed, at, delete, piece, insert)| {
            let chars: Vec<char> = seed.chars().collect();
            let start = at.index(chars.len() + 1);
            let end = (start + if insert { 0 } else { delete }).min(chars.len());
            let mut out: String = chars[..start].iter().collect();
            out.push_str(piece);
            out.extend(&chars[end..]);
            out
        },
    )
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load_and_render(&text)?;
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-z_]{1,12}: ?[a-z0-9./\\[\\]{}\"' -]{0,20}\n( {2,4}- ?)?){0,20}") {
        load_and_render(&text)?;
    }

    #[test]
    fn edited_examples_never_panic(text in mutated()) {
        load_and_render(&text)?;
    }
}

#[test]
fn the_seeds_are_valid() {
    for seed in SEEDS {
        let source = SourceFile { path: "seed.yaml".into(), text: Arc::from(seed) };
        assert!(load_source(source, Path::new("/tmp"), &haul::manifest::Moment::now()).is_ok());
    }
}

/// A generated manifest of `count` transfers (one per customer), with `piece` spliced in at
/// one of its lines: large manifests are read in pieces, and a mistake in any piece is found
/// at its own line.
fn many_transfers(count: usize, at: prop::sample::Index, piece: &str) -> String {
    let mut lines = vec!["version: 1".to_string(), "transfers:".to_string()];
    for i in 0..count {
        lines.push(format!("  - name: customer-{i:05}"));
        lines.push("    direction: download".into());
        lines.push("    bucket: exports-bucket".into());
        lines.push(format!("    local: ./data/{i:05}"));
    }
    let line = at.index(lines.len());
    lines.insert(line, piece.to_string());
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn large_manifests_with_a_mistake_never_panic(
        count in 1usize..2_000,
        at: prop::sample::Index,
        piece in prop::sample::select(vec![
            "    bukcet: x", "    concurrency: many", "  - name: customer-00000", "    - stray", "- [", "\t",
            "    extensions: csv", "  - {name: flow, direction: upload, bucket: b, local: x}", "defaults: {}",
        ]),
    ) {
        load_and_render(&many_transfers(count, at, piece))?;
    }
}
