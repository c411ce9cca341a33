//! Reading a manifest file into `ManifestSpec`, collecting every structural problem with its
//! line and column (not only the first, as a plain serde deserialize would).
//!
//! The trick: every key is deserialized on its own (a one-entry mapping into the same serde
//! types), so one bad value does not hide the next. Key names come from the schema of the
//! types, so this file holds no second list of keys that could drift.

use std::path::Path;
use std::sync::Arc;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node};
use serde::de::DeserializeOwned;

use super::model::{Direction, MANIFEST_VERSION, Settings, TransferSpec, schema_index};
use super::places::Places;
use super::problem::{Location, Problem, SourceFile, did_you_mean};
use super::{ManifestError, TRANSFER_ONLY_KEYS};

/// Reads `path` and parses it as YAML. Problems of the file itself (missing, a directory, not
/// UTF-8) come back as `ManifestError`s.
pub fn read_source(path: &Path) -> Result<SourceFile, ManifestError> {
    if path.is_dir() {
        return Err(ManifestError::IsDirectory { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|source| ManifestError::Read { path: path.to_path_buf(), source })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile { path: path.to_path_buf(), text: Arc::from(text) }),
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..valid]);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
            let source = SourceFile { path: path.to_path_buf(), text: Arc::from(String::from_utf8_lossy(&bytes)) };
            let problem = Problem::error(
                Some(Location::new(line, column, 1)),
                format!("the manifest is not valid UTF-8 (byte {valid} is not part of a UTF-8 character)"),
            )
            .label("not UTF-8")
            .help("save the file as UTF-8; Hangul and other non-ASCII names are fine in UTF-8");
            Err(ManifestError::Invalid { file: source, problems: vec![problem] })
        }
    }
}

/// A manifest's transfers and defaults as far as they could be read. A transfer with a
/// structural problem is left out, so the semantic checks still run on the others.
pub struct ParsedSpec {
    /// Each transfer with its index in the file's `transfers:` list. Its `settings` already
    /// have `defaults` merged in.
    pub transfers: Vec<(usize, TransferSpec)>,
    /// Where each transfer's keys are (by index in `transfers:`), and `defaults`' keys: the
    /// YAML tree itself is not kept.
    pub places: Vec<Places>,
    pub defaults_places: Places,
    /// The settings of transfers that could not be read whole (a missing or bad name,
    /// direction, bucket or local), so their settings are still checked in the same run.
    pub unidentified: Vec<(usize, Settings)>,
}

/// Parses the text. A file that is not YAML (or empty) is `Err`; otherwise every structural
/// problem is returned beside what could be read.
pub fn parse_spec(source: &SourceFile) -> Result<(ParsedSpec, Vec<Problem>), Vec<Problem>> {
    if is_blank(&source.text) {
        return Err(vec![
            Problem::error(None, "the manifest is empty")
                .help("a manifest needs `version: 1` and a `transfers:` list; `haul init` writes a starter one"),
        ]);
    }
    check_nesting(&source.text)?;
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = marked_yaml::parse_yaml_with_options(0, source.text.as_ref(), options)
        .map_err(|err| vec![yaml_problem(&err)])?;
    let mut problems = Vec::new();
    let (transfers, unidentified) = read_root(&root, &mut problems);
    let map = root.as_mapping();
    let places = map
        .and_then(|map| map.get_sequence("transfers"))
        .map(|list| list.iter().map(|item| item.as_mapping().map(|m| Places::of(m, 0)).unwrap_or_default()).collect())
        .unwrap_or_default();
    let defaults_places = map.and_then(|map| map.get_mapping("defaults")).map(|m| Places::of(m, 0)).unwrap_or_default();
    Ok((ParsedSpec { transfers, places, defaults_places, unidentified }, problems))
}

/// Lists and mappings nested deeper than this are refused before the tree is built. A
/// manifest needs four levels (`transfers:`, a transfer, `include:`, a pattern); building or
/// walking a tree thousands of levels deep would overflow the stack.
const MAX_NESTING: usize = 32;

/// Refuses YAML nested deeper than [`MAX_NESTING`], with the place where it goes too deep.
/// The event parser is a state machine with its own stack on the heap, so this pass is safe
/// at any depth. (Syntax errors are left to the real parse, which words them.)
fn check_nesting(text: &str) -> Result<(), Vec<Problem>> {
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    let mut depth = 0usize;
    while let Ok((event, mark)) = parser.next_token() {
        match event {
            yaml_rust2::Event::SequenceStart(..) | yaml_rust2::Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_NESTING {
                    let at = Location::new(mark.line(), mark.col() + 1, 1);
                    return Err(vec![
                        Problem::error(Some(at), format!("the YAML is nested more than {MAX_NESTING} levels deep"))
                            .label("too deep")
                            .help("a manifest nests four levels (`transfers:`, a transfer, `include:`, a pattern); check for stray `- ` or `[`"),
                    ]);
                }
            }
            yaml_rust2::Event::SequenceEnd | yaml_rust2::Event::MappingEnd => depth = depth.saturating_sub(1),
            yaml_rust2::Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(())
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

fn yaml_problem(err: &LoadError) -> Problem {
    let at = |mark: &marked_yaml::Marker| Some(Location::new(mark.line(), mark.column(), 1));
    match err {
        LoadError::TopLevelMustBeMapping(mark) => Problem::error(at(mark), "the manifest must be a mapping of keys")
            .help("start with `version: 1` on its own line, then `transfers:`"),
        LoadError::TopLevelMustBeSequence(mark) => Problem::error(at(mark), "unexpected YAML layout"),
        LoadError::UnexpectedAnchor(mark) => Problem::error(at(mark), "YAML anchors and aliases are not supported")
            .help("put shared settings under `defaults:`; every transfer inherits them"),
        LoadError::MappingKeyMustBeScalar(mark) => Problem::error(at(mark), "a key must be a plain word")
            .help("write keys like `bucket:`; lists and mappings cannot be keys"),
        LoadError::UnexpectedTag(mark) => Problem::error(at(mark), "YAML tags (`!tag`) are not supported")
            .help("remove the tag; write the plain value"),
        LoadError::ScanError(mark, scan) => {
            let detail = scan.info().to_string();
            Problem::error(at(mark), format!("invalid YAML: {detail}"))
                .label(detail)
                .help("check the indentation (spaces, not tabs), the colons after keys, and that quotes are closed")
        }
        LoadError::DuplicateKey(inner) => {
            let first = inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0);
            let key = inner.key.as_str();
            Problem::error(
                Location::of_span(inner.key.span(), key.chars().count()),
                format!("`{key}` is set twice in the same mapping"),
            )
            .label(format!("first set on line {first}"))
            .help(format!("keep one `{key}:`"))
        }
    }
}

/// Transfers read whole, and the settings of those that could not be (see [`ParsedSpec`]).
type ReadTransfers = (Vec<(usize, TransferSpec)>, Vec<(usize, Settings)>);

fn read_root(root: &Node, problems: &mut Vec<Problem>) -> ReadTransfers {
    let Some(map) = root.as_mapping() else {
        problems.push(Problem::error(Location::of_span(root.span(), 1), "the manifest must be a mapping of keys"));
        return (Vec::new(), Vec::new());
    };
    let root_keys = &schema_index().root_keys;
    for (key, _) in map.iter() {
        if !root_keys.iter().any(|known| known == key.as_str()) {
            problems.push(unknown_key(key, root_keys, "at the top level", top_level_hint(key.as_str())));
        }
    }
    check_version(map, problems);
    let defaults = match map.get_node("defaults") {
        Some(node) => read_defaults(node, problems),
        None => MarkedMappingNode::new_empty(*map.span()),
    };
    match map.get_node("transfers") {
        None => {
            let at = map.iter().next().and_then(|(key, _)| key_location(key));
            problems.push(
                Problem::error(at, "missing `transfers:`")
                    .help("add a `transfers:` list with at least one transfer (name, direction, bucket, local)"),
            );
            (Vec::new(), Vec::new())
        }
        Some(transfers) => read_transfers(transfers, &defaults, problems),
    }
}

fn check_version(map: &MarkedMappingNode, problems: &mut Vec<Problem>) {
    let Some(version) = map.get_node("version") else {
        problems.push(
            Problem::error(Some(Location::new(1, 1, 1)), "missing `version:`")
                .help(format!("add `version: {MANIFEST_VERSION}` as the first line")),
        );
        return;
    };
    let text = scalar_text(version);
    if text.as_deref() != Some(&MANIFEST_VERSION.to_string()) {
        let shown = text.unwrap_or_else(|| "a list or mapping".into());
        problems.push(
            Problem::error(value_location(version), format!("unsupported manifest version `{shown}`"))
                .label(format!("this haul reads version {MANIFEST_VERSION}"))
                .help(format!("write `version: {MANIFEST_VERSION}`; a newer manifest needs a newer haul")),
        );
    }
}

/// Reads `defaults`, keeping the entries that are valid.
fn read_defaults(defaults: &Node, problems: &mut Vec<Problem>) -> MarkedMappingNode {
    let mut valid = MarkedMappingNode::new_empty(*defaults.span());
    let Some(map) = mapping_or_problem(defaults, "`defaults`", problems) else {
        return valid;
    };
    let settings_keys = &schema_index().settings_keys;
    for (key, value) in map.iter() {
        if TRANSFER_ONLY_KEYS.contains(&key.as_str()) {
            problems.push(
                Problem::error(key_location(key), format!("`{}` cannot be set in `defaults`", key.as_str()))
                    .label("only per transfer")
                    .help(format!("move `{}:` into each transfer under `transfers:`", key.as_str())),
            );
        } else if !settings_keys.iter().any(|known| known == key.as_str()) {
            problems.push(unknown_key(key, settings_keys, "in `defaults`", None));
        } else if check_setting(key, value, problems) {
            valid.insert(key.clone(), value.clone());
        }
    }
    valid
}

fn read_transfers(transfers: &Node, defaults: &MarkedMappingNode, problems: &mut Vec<Problem>) -> ReadTransfers {
    let Some(list) = transfers.as_sequence() else {
        problems.push(
            Problem::error(value_location(transfers), "`transfers` must be a list")
                .help("write each transfer as a list item starting with `- name: ...`"),
        );
        return (Vec::new(), Vec::new());
    };
    if list.is_empty() {
        problems.push(
            Problem::error(value_location(transfers), "`transfers` is empty")
                .help("add at least one transfer with name, direction, bucket and local"),
        );
    }
    let (mut read, mut unidentified) = (Vec::new(), Vec::new());
    for (index, item) in list.iter().enumerate() {
        match read_transfer(index, item, defaults, problems) {
            Ok(transfer) => read.push((index, transfer)),
            Err(Some(settings)) => unidentified.push((index, *settings)),
            Err(None) => {}
        }
    }
    (read, unidentified)
}

/// Reads one transfer, with `defaults` merged into its settings. When a required key is
/// missing or invalid, `Err` with its settings (to be checked all the same), or with nothing
/// when it is not even a mapping.
fn read_transfer(
    index: usize,
    item: &Node,
    defaults: &MarkedMappingNode,
    problems: &mut Vec<Problem>,
) -> Result<TransferSpec, Option<Box<Settings>>> {
    let what = format!("transfer #{}", index + 1);
    let map = mapping_or_problem(item, &what, problems).ok_or(None)?;
    let transfer_keys = &schema_index().transfer_keys;
    // The merge happens on the YAML entries: the transfer's own valid entries win, and a key
    // the transfer sets badly is dropped rather than silently taken from `defaults`.
    let mut settings = defaults.clone();
    // Only what the transfer is (name, direction, where) decides whether it can be checked
    // further; a bad setting is reported and left out, so the other checks still run.
    let mut identity_valid = true;
    for (key, value) in map.iter() {
        let valid = if !transfer_keys.iter().any(|known| known == key.as_str()) {
            problems.push(unknown_key(key, transfer_keys, &format!("in {what}"), None));
            false
        } else if key.as_str() == "direction" {
            parse_value::<Direction>(key, value, problems).is_some()
        } else if TRANSFER_ONLY_KEYS.contains(&key.as_str()) {
            text_value(key, value, problems).is_some()
        } else {
            if check_setting(key, value, problems) {
                settings.insert(key.clone(), value.clone());
            } else {
                settings.remove(key.as_str());
            }
            true
        };
        identity_valid &= valid;
    }
    let mut missing = false;
    for required in ["name", "direction", "bucket", "local"] {
        if map.get_node(required).is_none() {
            missing = true;
            let name = map.get_scalar("name").map(|n| format!(" `{}`", n.as_str())).unwrap_or_default();
            let at = map.iter().next().and_then(|(key, _)| key_location(key)).or(value_location(item));
            problems.push(
                Problem::error(at, format!("{what}{name} is missing `{required}`"))
                    .label(format!("add `{required}:` to this transfer"))
                    .help(required_help(required)),
            );
        }
    }
    let settings = settings_of(settings, problems);
    if !identity_valid || missing {
        return Err(Some(Box::new(settings)));
    }
    let text = |key: &str| map.get_scalar(key).map(|s| s.as_str().to_string());
    let direction = map.get_node("direction").and_then(|node| marked_yaml::from_node(node).ok());
    match (text("name"), direction, text("bucket"), text("local")) {
        (Some(name), Some(direction), Some(bucket), Some(local)) => {
            Ok(TransferSpec { name, direction, bucket, local, prefix: text("prefix"), settings })
        }
        _ => Err(Some(Box::new(settings))),
    }
}

/// Deserializes a mapping of keys that each passed `check_setting`.
fn settings_of(valid: MarkedMappingNode, problems: &mut Vec<Problem>) -> Settings {
    marked_yaml::from_node::<Settings>(&Node::Mapping(valid)).unwrap_or_else(|err| {
        // Each key deserialized on its own above; this is a combination they cannot see.
        problems.push(Problem::error(
            err.start_mark().map(|mark| Location::new(mark.line(), mark.column(), 1)),
            format!("the settings do not match manifest version 1: {err}"),
        ));
        Settings::default()
    })
}

fn required_help(key: &str) -> &'static str {
    match key {
        "name" => "give the transfer a unique `name:`; it is used in output, reports and `--only`",
        "direction" => "add `direction: download` (S3 to local) or `direction: upload` (local to S3)",
        "bucket" => "add `bucket: <bucket-name>`; put any folder part in `prefix:`",
        _ => "add `local: <folder>`; relative paths start at the manifest's folder",
    }
}

/// Checks one setting by deserializing a one-entry mapping into `Settings`.
fn check_setting(key: &MarkedScalarNode, value: &Node, problems: &mut Vec<Problem>) -> bool {
    let mut single = MarkedMappingNode::new_empty(*key.span());
    single.insert(key.clone(), value.clone());
    match marked_yaml::from_node::<Settings>(&Node::Mapping(single)) {
        Ok(_) => true,
        Err(err) => {
            problems.push(value_problem(key, value, &err.to_string()));
            false
        }
    }
}

fn parse_value<T: DeserializeOwned>(key: &MarkedScalarNode, value: &Node, problems: &mut Vec<Problem>) -> Option<T> {
    marked_yaml::from_node::<T>(value).map_err(|err| problems.push(value_problem(key, value, &err.to_string()))).ok()
}

fn text_value<'a>(key: &MarkedScalarNode, value: &'a Node, problems: &mut Vec<Problem>) -> Option<&'a str> {
    let text = value.as_scalar().map(|s| s.as_str());
    if text.is_none() {
        problems.push(value_problem(key, value, "expected text, found a list or mapping"));
    }
    text
}

fn value_problem(key: &MarkedScalarNode, value: &Node, detail: &str) -> Problem {
    let key = key.as_str();
    let text = scalar_text(value);
    let found = text.as_ref().map_or_else(|| "a list or mapping".to_string(), |text| format!("`{text}`"));
    let (what, fix) = expected(key, text.as_deref(), detail);
    let problem = Problem::error(value_location(value), format!("invalid value for `{key}`: {what}"))
        .label(format!("found {found}"));
    match fix {
        Some(fix) => problem.help(format!("{fix}; {}", key_help(key))),
        None => problem.help(key_help(key)),
    }
}

/// What the key wants, in haul's words, and the fix when one can be spelled out. serde says
/// "Value was not true or false" or `string "csv", expected a list`; people read YAML.
fn expected(key: &str, found: Option<&str>, detail: &str) -> (String, Option<String>) {
    let lower = detail.to_lowercase();
    if lower.contains("true or false") || lower.contains("boolean") || lower.contains("bool") {
        return ("expected `true` or `false`".into(), Some(format!("write `{key}: true` or `{key}: false`")));
    }
    if lower.contains("expected a list") || lower.contains("sequence") {
        let fix = found.map(|text| format!("write `{key}: [{text}]`"));
        return ("expected a list".into(), fix);
    }
    if lower.contains("invalid digit") || lower.contains("u32") || lower.contains("u64") || lower.contains("integer") {
        return ("expected a whole number".into(), None);
    }
    (tidy_serde_message(detail), None)
}

/// Serde's wording, made readable for people who write YAML, not Rust.
fn tidy_serde_message(detail: &str) -> String {
    detail
        .replace("invalid type: ", "")
        .replace("u32", "a whole number")
        .replace("u64", "a whole number")
        .replace("a boolean", "true or false")
        .replace("invalid digit found in string", "expected a whole number")
        .replace("a sequence", "a list")
        .replace("sequence", "a list")
        .replace("map,", "a mapping,")
}

/// The `help:` line for a key: its description from the schema (the doc comment on the field).
fn key_help(key: &str) -> String {
    match schema_index().description(key) {
        Some(description) => format!("`{key}`: {description}"),
        None => format!("see the manifest reference in the README for `{key}`"),
    }
}

/// Why a key that exists elsewhere in a manifest is not valid at the top level.
fn top_level_hint(key: &str) -> Option<String> {
    let settings = &schema_index().settings_keys;
    if settings.iter().any(|k| k == key) {
        Some(format!("`{key}` belongs under `defaults:` or inside a transfer"))
    } else if TRANSFER_ONLY_KEYS.contains(&key) {
        Some(format!("`{key}` belongs inside a transfer, under `transfers:`"))
    } else {
        did_you_mean(key, settings.iter().map(String::as_str))
            .map(|setting| format!("did you mean `{setting}`? It belongs under `defaults:` or inside a transfer"))
    }
}

fn unknown_key(key: &MarkedScalarNode, known: &[String], place: &str, hint: Option<String>) -> Problem {
    let name = key.as_str();
    let problem = Problem::error(key_location(key), format!("unknown key `{name}` {place}"));
    if let Some(hint) = hint {
        return problem.label("not valid here").help(hint);
    }
    match did_you_mean(name, known.iter().map(String::as_str)) {
        Some(suggestion) => {
            problem.label(format!("did you mean `{suggestion}`?")).help(format!("rename `{name}` to `{suggestion}`"))
        }
        None => problem.label("unknown key").help(format!("valid keys here: {}", known.join(", "))),
    }
}

fn mapping_or_problem<'a>(node: &'a Node, what: &str, problems: &mut Vec<Problem>) -> Option<&'a MarkedMappingNode> {
    let map = node.as_mapping();
    if map.is_none() {
        problems.push(
            Problem::error(value_location(node), format!("{what} must be a mapping of `key: value` lines"))
                .help("indent its keys under it, one `key: value` per line"),
        );
    }
    map
}

fn scalar_text(node: &Node) -> Option<String> {
    node.as_scalar().map(|s| s.as_str().to_string())
}

fn key_location(key: &MarkedScalarNode) -> Option<Location> {
    Location::of_span(key.span(), key.as_str().chars().count())
}

/// Where a value is, underlining the whole of a one-line scalar.
pub(super) fn value_location(node: &Node) -> Option<Location> {
    let len = node.as_scalar().map_or(1, |s| s.as_str().chars().count());
    Location::of_span(node.span(), len)
}
