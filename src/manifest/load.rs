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

use super::model::{CopyTo, Direction, MANIFEST_VERSION, Settings, TransferSpec, schema_index};
use super::places::{Places, shifted};
use super::problem::{Location, Problem, SourceFile, did_you_mean, line_starts};
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
    /// In pieces, so each piece's memory goes as soon as validation has used it.
    pub transfers: Vec<Vec<(usize, TransferSpec)>>,
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
pub fn parse_spec(source: &SourceFile) -> Parsed {
    if is_blank(&source.text) {
        return Err(vec![
            Problem::error(None, "the manifest is empty")
                .help("a manifest needs `version: 1` and a `transfers:` list; `haul init` writes a starter one"),
        ]);
    }
    if let Some(parsed) = scan(&source.text)?.and_then(|layout| parse_in_pieces(&source.text, &layout)) {
        return parsed;
    }
    parse_whole(&source.text)
}

/// Parses the whole file at once (any layout of `transfers:`).
fn parse_whole(text: &str) -> Parsed {
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|err| vec![yaml_problem(&err)])?;
    let mut problems = Vec::new();
    let (transfers, unidentified) = read_root(&root, &mut problems);
    let map = root.as_mapping();
    let places = map
        .and_then(|map| map.get_sequence("transfers"))
        .map(|list| list.iter().map(|item| item.as_mapping().map(|m| Places::of(m, 0)).unwrap_or_default()).collect())
        .unwrap_or_default();
    let defaults_places = map.and_then(|map| map.get_mapping("defaults")).map(|m| Places::of(m, 0)).unwrap_or_default();
    Ok((ParsedSpec { transfers: vec![transfers], places, defaults_places, unidentified }, problems))
}

/// Lists and mappings nested deeper than this are refused before the tree is built. A
/// manifest needs four levels (`transfers:`, a transfer, `include:`, a pattern); building or
/// walking a tree thousands of levels deep would overflow the stack.
const MAX_NESTING: usize = 32;

/// What one streaming pass over the events says about the file: nesting is refused past
/// [`MAX_NESTING`] (the event parser is a state machine with its own stack on the heap, so
/// this pass is safe at any depth), and where the items of a block `transfers:` list start,
/// so a large list can be read in pieces. Syntax errors are left to the real parse, which
/// words them (`None`: read the file whole).
fn scan(text: &str) -> Result<Option<TransferLines>, Vec<Problem>> {
    use yaml_rust2::Event;
    enum Frame {
        /// `key` is the last key read; `value` whether the next node is its value.
        Map {
            key: Option<String>,
            value: bool,
        },
        Seq,
    }
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let (mut documents, mut items, mut end, mut in_transfers) = (0, Vec::new(), None, false);
    // The line of the first root key after `transfers:` (its list ends before it).
    let mut after = None;
    let mut readable = true;
    loop {
        let Ok((event, mark)) = parser.next_token() else {
            readable = false;
            break;
        };
        let opens = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        if opens || matches!(event, Event::Scalar(..) | Event::Alias(..)) {
            if in_transfers && stack.len() == 2 {
                items.push(mark.line());
            }
            if end.is_some() && after.is_none() && stack.len() == 1 {
                after = Some(mark.line());
            }
            let transfers_value = stack.len() == 1
                && matches!(&stack[0], Frame::Map { key: Some(key), value: true } if key == "transfers");
            // In a mapping, nodes alternate: a key, then its value.
            if let Some(Frame::Map { key, value }) = stack.last_mut() {
                if *value {
                    *value = false;
                } else {
                    *key = match &event {
                        Event::Scalar(text, ..) => Some(text.clone()),
                        _ => None,
                    };
                    *value = true;
                }
            }
            in_transfers |= transfers_value && matches!(event, Event::SequenceStart(..));
        }
        match event {
            Event::DocumentStart => documents += 1,
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_NESTING {
                    let at = Location::new(mark.line(), mark.col() + 1, 1);
                    return Err(vec![
                        Problem::error(Some(at), format!("the YAML is nested more than {MAX_NESTING} levels deep"))
                            .label("too deep")
                            .help("a manifest nests four levels (`transfers:`, a transfer, `include:`, a pattern); check for stray `- ` or `[`"),
                    ]);
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map { key: None, value: false }
                } else {
                    Frame::Seq
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if in_transfers && stack.len() == 2 {
                    in_transfers = false;
                    end = Some(mark.line());
                }
                stack.pop();
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    if !readable || documents != 1 || items.is_empty() || end.is_none() {
        return Ok(None);
    }
    Ok(Some(TransferLines { items, after }))
}

/// Where the items of a block `transfers:` list start (1-based lines), and the line of the
/// root key after the list (`None`: the list runs to the end of the file).
struct TransferLines {
    items: Vec<usize>,
    after: Option<usize>,
}

/// Transfers read in pieces of this many items: only one piece's YAML tree exists at a time.
const PIECE: usize = 256;

/// Reads a manifest whose `transfers:` is a block list in pieces of [`PIECE`] items, each
/// parsed on its own (its problems and places moved down to the lines they came from), so
/// the YAML tree of the whole list never exists at once: a generated manifest of 100,000
/// transfers would hold hundreds of megabytes of it. The rest of the file is parsed with
/// the list's lines left blank. `None` when the list is not laid out one item per `- ` line
/// (flow style, say): then the file is read whole.
fn parse_in_pieces(text: &str, layout: &TransferLines) -> Option<Parsed> {
    let starts = line_starts(text);
    let start_of = |line: usize| starts.get(line - 1).copied().unwrap_or(text.len());
    // Every item starts on its own line, after a `-` that begins the line.
    let block = layout.items.windows(2).all(|pair| pair[0] < pair[1])
        && layout.items.iter().all(|&line| {
            let start = start_of(line);
            let end = starts.get(line).copied().unwrap_or(text.len());
            text[start..end].trim_start_matches([' ', '\t']).starts_with('-')
        });
    let (first, last) = (*layout.items.first()?, *layout.items.last()?);
    let list_end = layout.after.map_or(text.len(), start_of);
    if !block || layout.after.is_some_and(|after| after <= last) {
        return None;
    }
    // The rest of the file, the list's lines blank (so every line keeps its number).
    let (before, rest) = (&text[..start_of(first)], &text[list_end..]);
    let blank_lines = layout.after.map_or(starts.len() + 1, |after| after) - first;
    let outline = format!("{before}{}{rest}", "\n".repeat(blank_lines));
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = marked_yaml::parse_yaml_with_options(0, outline.as_str(), options).ok()?;
    let map = root.as_mapping()?;
    let mut problems = Vec::new();
    let defaults = read_root_keys(map, &mut problems);
    let defaults_places = map.get_mapping("defaults").map(|m| Places::of(m, 0)).unwrap_or_default();
    let count = layout.items.len();
    let (mut transfers, mut unidentified, mut places): (Vec<Vec<_>>, _, _) =
        (Vec::new(), Vec::new(), Vec::with_capacity(count));
    for (piece, lines) in layout.items.chunks(PIECE).enumerate() {
        let from = start_of(lines[0]);
        let to = layout.items.get((piece + 1) * PIECE).map_or(list_end, |&next| start_of(next));
        let shift = lines[0] - 1;
        let options = LoaderOptions::default().error_on_duplicate_keys(true).toplevel_sequence();
        let list = match marked_yaml::parse_yaml_with_options(0, &text[from..to], options) {
            Ok(list) => list,
            // A YAML error inside a piece (a duplicate key, an anchor): said at its line.
            Err(err) => {
                let mut problem = yaml_problem(&err);
                problem.location = shifted(problem.location, shift);
                return Some(Err(vec![problem]));
            }
        };
        let items = list.as_sequence()?;
        if items.len() != lines.len() {
            return None;
        }
        let mut read = Vec::with_capacity(items.len());
        for (offset, item) in items.iter().enumerate() {
            let index = piece * PIECE + offset;
            let mut found = Vec::new();
            match read_transfer(index, item, &defaults, &mut found) {
                Ok(transfer) => read.push((index, transfer)),
                Err(Some(settings)) => unidentified.push((index, *settings)),
                Err(None) => {}
            }
            problems.extend(found.into_iter().map(|mut problem| {
                problem.location = shifted(problem.location, shift);
                problem
            }));
            places.push(item.as_mapping().map(|m| Places::of(m, shift)).unwrap_or_default());
        }
        transfers.push(read);
    }
    Some(Ok((ParsedSpec { transfers, places, defaults_places, unidentified }, problems)))
}

/// What parsing gives: the spec and its problems, or the problems that stop it (not YAML).
type Parsed = Result<(ParsedSpec, Vec<Problem>), Vec<Problem>>;

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

/// Checks the root's keys and `version`, and reads `defaults` (the valid entries).
fn read_root_keys(map: &MarkedMappingNode, problems: &mut Vec<Problem>) -> MarkedMappingNode {
    let root_keys = &schema_index().root_keys;
    for (key, _) in map.iter() {
        if !root_keys.iter().any(|known| known == key.as_str()) {
            problems.push(unknown_key(key, root_keys, "at the top level", top_level_hint(key.as_str())));
        }
    }
    check_version(map, problems);
    match map.get_node("defaults") {
        Some(node) => read_defaults(node, problems),
        None => MarkedMappingNode::new_empty(*map.span()),
    }
}

/// Transfers read whole, and the settings of those that could not be (see [`ParsedSpec`]).
type ReadTransfers = (Vec<(usize, TransferSpec)>, Vec<(usize, Settings)>);

fn read_root(root: &Node, problems: &mut Vec<Problem>) -> ReadTransfers {
    let Some(map) = root.as_mapping() else {
        problems.push(Problem::error(Location::of_span(root.span(), 1), "the manifest must be a mapping of keys"));
        return (Vec::new(), Vec::new());
    };
    let defaults = read_root_keys(map, problems);
    match map.get_node("transfers") {
        None => {
            let at = map.iter().next().and_then(|(key, _)| Location::of_key(key));
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
            Problem::error(Location::of_value(version), format!("unsupported manifest version `{shown}`"))
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
                Problem::error(Location::of_key(key), format!("`{}` cannot be set in `defaults`", key.as_str()))
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
            Problem::error(Location::of_value(transfers), "`transfers` must be a list")
                .help("write each transfer as a list item starting with `- name: ...`"),
        );
        return (Vec::new(), Vec::new());
    };
    if list.is_empty() {
        problems.push(
            Problem::error(Location::of_value(transfers), "`transfers` is empty")
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
        } else if key.as_str() == "to" {
            copy_to_valid(key, value, problems)
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
    let direction: Option<Direction> = map.get_node("direction").and_then(|node| marked_yaml::from_node(node).ok());
    let copy = direction == Some(Direction::Copy);
    let mut missing = false;
    let name = map.get_scalar("name").map(|n| format!(" `{}`", n.as_str())).unwrap_or_default();
    let at = map.iter().next().and_then(|(key, _)| Location::of_key(key)).or(Location::of_value(item));
    // `local` is where an upload or download works, `to` where a copy writes; with no valid
    // direction, neither is asked for (the direction's own problem says what to write).
    let place = match direction {
        Some(Direction::Copy) => Some("to"),
        Some(_) => Some("local"),
        None => None,
    };
    for required in ["name", "direction", "bucket"].into_iter().chain(place) {
        if map.get_node(required).is_none() {
            missing = true;
            problems.push(
                Problem::error(at, format!("{what}{name} is missing `{required}`"))
                    .label(format!("add `{required}:` to this transfer"))
                    .help(required_help(required)),
            );
        }
    }
    for (key, needs) in [("local", false), ("to", true)] {
        if let Some(node) = map.get_node(key)
            && direction.is_some()
            && copy != needs
        {
            missing = true;
            let (message, help) = if copy {
                (
                    format!("a copy has no `local`: it goes from bucket to bucket ({what}{name})"),
                    "remove `local`, or write `direction: download` to copy the bucket to a folder".to_string(),
                )
            } else {
                (
                    format!("`to` is only for `direction: copy` ({what}{name})"),
                    "remove `to`, or write `direction: copy` to copy this bucket into the one in `to`".to_string(),
                )
            };
            let location = map
                .iter()
                .find(|(k, _)| k.as_str() == key)
                .and_then(|(k, _)| Location::of_key(k))
                .or(Location::of_value(node));
            problems.push(Problem::error(location, message).label(format!("`{key}` here")).help(help));
        }
    }
    let settings = settings_of(settings, problems);
    if !identity_valid || missing {
        return Err(Some(Box::new(settings)));
    }
    let text = |key: &str| map.get_scalar(key).map(|s| s.as_str().to_string());
    let to = map.get_node("to").and_then(|node| marked_yaml::from_node::<CopyTo>(node).ok());
    match (text("name"), direction, text("bucket")) {
        (Some(name), Some(direction), Some(bucket)) => {
            Ok(TransferSpec { name, direction, bucket, local: text("local"), prefix: text("prefix"), to, settings })
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
        "direction" => {
            "add `direction: download` (S3 to local), `direction: upload` (local to S3) or `direction: copy` \
             (bucket to bucket)"
        }
        "bucket" => "add `bucket: <bucket-name>`; put any folder part in `prefix:`",
        "to" => "add `to:` with the destination's `bucket:` (and `prefix:`) under it",
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

/// A copy's `to:`, key by key first, so a mistake points at its own line and reads as the
/// same mistake under a transfer does; then whole (`bucket` missing).
fn copy_to_valid(key: &MarkedScalarNode, value: &Node, problems: &mut Vec<Problem>) -> bool {
    let Some(map) = value.as_mapping() else {
        return parse_value::<CopyTo>(key, value, problems).is_some();
    };
    let known = &schema_index().copy_to_keys;
    let before = problems.len();
    for (inner, value) in map.iter() {
        match inner.as_str() {
            name if !known.iter().any(|known| known == name) => {
                problems.push(unknown_key(inner, known, "in `to`", None));
            }
            "bucket" | "prefix" => {
                text_value(inner, value, problems);
            }
            _ => {
                check_setting(inner, value, problems);
            }
        }
    }
    problems.len() == before && parse_value::<CopyTo>(key, value, problems).is_some()
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
    let problem = Problem::error(Location::of_value(value), format!("invalid value for `{key}`: {what}"))
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
        None => format!("see the manifest reference (docs/manifest.md) for `{key}`"),
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
    let problem = Problem::error(Location::of_key(key), format!("unknown key `{name}` {place}"));
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
            Problem::error(Location::of_value(node), format!("{what} must be a mapping of `key: value` lines"))
                .help("indent its keys under it, one `key: value` per line"),
        );
    }
    map
}

fn scalar_text(node: &Node) -> Option<String> {
    node.as_scalar().map(|s| s.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a parse says, to compare two ways of parsing: every problem with its place, and
    /// every transfer read.
    fn outcome(parsed: Parsed) -> Vec<String> {
        match parsed {
            Err(problems) => problems.iter().map(|p| format!("fatal {:?} {}", p.location, p.message)).collect(),
            Ok((spec, problems)) => {
                let mut out: Vec<String> =
                    problems.iter().map(|p| format!("{:?} {} {:?}", p.location, p.message, p.label)).collect();
                let transfers = spec.transfers.iter().flatten();
                out.extend(transfers.map(|(i, t)| format!("transfer {i} {} {:?}", t.name, t.settings)));
                out.extend(spec.unidentified.iter().map(|(i, s)| format!("unidentified {i} {s:?}")));
                out.push(format!("{} places", spec.places.len()));
                out
            }
        }
    }

    /// A manifest of `count` transfers, some with mistakes, across several pieces.
    fn manifest(count: usize, mistakes: &[(usize, &str)], defaults_last: bool) -> String {
        let defaults = "defaults:\n  region: ap-northeast-2\n  part_size: 1MiB\n";
        let mut text = String::from("version: 1\n");
        if !defaults_last {
            text.push_str(defaults);
        }
        text.push_str("transfers:\n");
        for i in 0..count {
            text.push_str(&format!("  - name: t{i}\n    direction: download\n    bucket: b\n    local: ./d{i}\n"));
            for (at, line) in mistakes {
                if *at == i {
                    text.push_str(&format!("    {line}\n"));
                }
            }
            text.push_str("    # a comment\n\n");
        }
        if defaults_last {
            text.push_str(defaults);
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        /// Read in pieces or whole, a manifest says the same, at the same lines.
        #[test]
        fn pieces_read_like_the_whole(
            count in 1usize..700,
            mistakes in prop::collection::vec((0usize..700, prop::sample::select(vec![
                "concurrency: many", "delete: maybe", "extensions: csv", "bukcet: x", "part_size: 6GB",
                "direction: sideways", "name: t0", "prefix: /abs", "include: [\"a[b\"]", "region: eu-west-9",
            ])), 0..6),
            defaults_last: bool,
        ) {
            let text = manifest(count, &mistakes, defaults_last);
            let layout = scan(&text).unwrap().expect("a block list");
            let pieces = parse_in_pieces(&text, &layout).expect("read in pieces");
            prop_assert_eq!(outcome(pieces), outcome(parse_whole(&text)));
        }
    }

    #[test]
    fn flow_lists_and_duplicate_keys_in_a_piece() {
        // A flow list is read whole.
        let flow = "version: 1\ntransfers: [{name: a, direction: upload, bucket: b, local: x}]\n";
        assert!(scan(flow).unwrap().and_then(|layout| parse_in_pieces(flow, &layout)).is_none());
        // A duplicate key in the 300th transfer is said at its line, as a whole parse says it.
        let text = manifest(400, &[(300, "bucket: again")], false);
        let layout = scan(&text).unwrap().unwrap();
        assert_eq!(outcome(parse_in_pieces(&text, &layout).unwrap()), outcome(parse_whole(&text)));
    }
}
