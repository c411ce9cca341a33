//! The plan document: what `plan --output json` prints and `plan -o FILE` saves, and the
//! staleness check `apply FILE` runs before it writes anything.
//!
//! A saved plan names its manifest (path and SHA-256 of its bytes) and carries, for every
//! action, the fingerprints of both sides it relied on. Applying it re-lists both sides and
//! compares: an object that changed since the plan was made is stale, and nothing is written.

use std::iter::Peekable;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Fingerprint, TransferPlan};
use crate::listing::{Entry, Item};
use crate::manifest::Moment;

/// Marks a JSON file as a haul plan (so `apply` can tell it from a manifest).
pub const PLAN_FORMAT: &str = "haul-plan";
/// Version of the document's shape; bumped only when a field changes meaning or goes away.
pub const PLAN_VERSION: u32 = 1;

/// The manifest a plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    /// Absolute path, so a plan applied from another folder finds it.
    pub path: PathBuf,
    /// SHA-256 of the manifest's bytes, lowercase hex.
    pub sha256: String,
}

impl ManifestRef {
    pub fn new(path: PathBuf, text: &str) -> Self {
        ManifestRef { path, sha256: sha256_hex(text.as_bytes()) }
    }
}

/// One plan for a whole manifest (or the `--only` transfers of it), held whole: how the tests
/// read back what [`PlanWriter`] writes, with the derived reader a version-1 document was
/// always read with. `haul` itself streams plans ([`PlanWriter`], [`PlanHeader`],
/// [`SavedTransfers`]).
#[cfg(test)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format: String,
    pub version: u32,
    pub manifest: ManifestRef,
    /// Seconds since the epoch when the plan was made.
    pub created: i64,
    /// The moment its manifest's dates and ages were read at (`--at`, else when it was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// True when any transfer has an action.
    pub changes: bool,
    /// The shard the plan covers (`plan --shard`); `apply` runs it as that shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    pub transfers: Vec<TransferPlan>,
}

#[cfg(test)]
impl PlanDocument {
    /// `created` is when planning started (seconds since the epoch, [`now_seconds`]).
    pub fn new(
        manifest: ManifestRef,
        created: i64,
        transfers: Vec<TransferPlan>,
        shard: Option<crate::shard::Shard>,
    ) -> Self {
        PlanDocument {
            format: PLAN_FORMAT.into(),
            version: PLAN_VERSION,
            manifest,
            created,
            at: Some(Moment::Instant(jiff::Timestamp::from_second(created).expect("a time")).to_string()),
            changes: transfers.iter().any(TransferPlan::has_changes),
            shard,
            transfers,
        }
    }

    /// The document as [`PlanWriter`] writes it (one way to write a plan, whole or streamed).
    pub fn to_json(&self) -> String {
        let at = self.at.as_deref().map(|at| Moment::parse(at).expect("written by haul")).unwrap_or_else(Moment::now);
        let mut writer =
            PlanWriter::begin(Vec::new(), &self.manifest, self.created, &at, self.shard).expect("in memory");
        for plan in &self.transfers {
            writer.begin_transfer(plan).expect("in memory");
            for action in &plan.actions {
                writer.action(action).expect("in memory");
            }
            writer.end_transfer(plan).expect("in memory");
        }
        let text = String::from_utf8(writer.finish().expect("in memory")).expect("JSON is text");
        text.trim_end().to_string()
    }

    /// Reads a plan document; `Ok(None)` when the text is not one (such as a YAML manifest).
    pub fn from_json(text: &str) -> Result<Option<PlanDocument>, PlanFileError> {
        if !is_plan(text.as_bytes())? {
            return Ok(None);
        }
        serde_json::from_str(text).map(Some).map_err(|err| PlanFileError::Malformed(err.to_string()))
    }
}

/// Whether `reader` holds a plan document of this version; `Ok(false)` when it is not a plan
/// at all (such as a YAML manifest). Reads it as a stream, keeping nothing.
fn is_plan(reader: impl std::io::Read) -> Result<bool, PlanFileError> {
    #[derive(Deserialize)]
    struct Format {
        format: Option<String>,
        version: Option<u32>,
    }
    let Ok(format) = serde_json::from_reader::<_, Format>(reader) else { return Ok(false) };
    if format.format.as_deref() != Some(PLAN_FORMAT) {
        return Ok(false);
    }
    match format.version {
        Some(PLAN_VERSION) => Ok(true),
        found => Err(PlanFileError::Version { found }),
    }
}

/// Writes a plan document as its transfers are planned: each action as it is decided, a
/// transfer's totals after its actions, and `changes` last, so a plan of a million actions is
/// written without being held. The document is version 1, as before plans were streamed (a
/// JSON object's keys may come in any order).
pub struct PlanWriter<W: std::io::Write> {
    out: W,
    transfers: usize,
    /// Actions written in the current transfer.
    actions: usize,
    changes: bool,
}

/// A transfer's keys written before its actions.
const TRANSFER_HEAD: [&str; 5] = ["name", "direction", "bucket", "prefix", "local"];

impl<W: std::io::Write> PlanWriter<W> {
    pub fn begin(
        mut out: W,
        manifest: &ManifestRef,
        created: i64,
        at: &Moment,
        shard: Option<crate::shard::Shard>,
    ) -> std::io::Result<Self> {
        write!(out, "{{\n  \"format\": {},\n  \"version\": {PLAN_VERSION},\n", json(&PLAN_FORMAT, 2))?;
        write!(out, "  \"manifest\": {},\n  \"created\": {created},\n", json(manifest, 2))?;
        writeln!(out, "  \"at\": {},", json(&at.to_string(), 2))?;
        if let Some(shard) = shard {
            writeln!(out, "  \"shard\": {},", json(&shard, 2))?;
        }
        write!(out, "  \"transfers\": [")?;
        Ok(PlanWriter { out, transfers: 0, actions: 0, changes: false })
    }

    /// Starts a transfer: `plan` says where it goes (its actions are to come).
    pub fn begin_transfer(&mut self, plan: &TransferPlan) -> std::io::Result<()> {
        let separator = if self.transfers > 0 { "," } else { "" };
        write!(self.out, "{separator}\n    {{")?;
        self.transfers += 1;
        self.actions = 0;
        let fields = transfer_fields(plan);
        for key in TRANSFER_HEAD {
            if let Some(value) = fields.get(key) {
                write!(self.out, "\n      {}: {},", json(&key, 6), json(value, 6))?;
            }
        }
        write!(self.out, "\n      \"actions\": [")
    }

    pub fn action(&mut self, action: &super::Action) -> std::io::Result<()> {
        let separator = if self.actions > 0 { "," } else { "" };
        self.actions += 1;
        write!(self.out, "{separator}\n        {}", json(action, 8))
    }

    /// Ends a transfer with its totals, skips and the rest (not its actions again).
    pub fn end_transfer(&mut self, plan: &TransferPlan) -> std::io::Result<()> {
        self.end_transfer_with(plan, None)
    }

    /// Ends a transfer that could not be planned to its end: its actions so far, and `error`.
    pub fn end_failed_transfer(&mut self, plan: &TransferPlan, error: &str) -> std::io::Result<()> {
        self.end_transfer_with(plan, Some(error))
    }

    fn end_transfer_with(&mut self, plan: &TransferPlan, error: Option<&str>) -> std::io::Result<()> {
        write!(self.out, "{}]", if self.actions > 0 { "\n      " } else { "" })?;
        for (key, value) in transfer_fields(plan) {
            if key != "actions" && !TRANSFER_HEAD.contains(&key.as_str()) {
                write!(self.out, ",\n      {}: {}", json(&key, 6), json(&value, 6))?;
            }
        }
        if let Some(error) = error {
            write!(self.out, ",\n      \"error\": {}", json(&error, 6))?;
        }
        write!(self.out, "\n    }}")?;
        self.changes |= plan.has_changes();
        Ok(())
    }

    /// The transfer's actions so far were taken back from the output (its listing is read
    /// again): the next action is its first.
    pub fn restart_transfer(&mut self) {
        self.actions = 0;
    }

    /// The writer, to mark or take back what is written.
    pub fn output(&mut self) -> &mut W {
        &mut self.out
    }

    /// Sends what is written so far on (before a message on another stream).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Ends the document; returns the writer (flushed).
    pub fn finish(mut self) -> std::io::Result<W> {
        let end = if self.transfers > 0 { "\n  " } else { "" };
        writeln!(self.out, "{end}],\n  \"changes\": {}\n}}", self.changes)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A transfer's fields as JSON, by key (its actions too, when it holds them).
fn transfer_fields(plan: &TransferPlan) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(plan).expect("plans serialize") {
        serde_json::Value::Object(fields) => fields,
        _ => unreachable!("a transfer is a JSON object"),
    }
}

/// `value` as pretty JSON, its later lines indented by `indent` spaces (where it sits).
fn json(value: &impl Serialize, indent: usize) -> String {
    let text = serde_json::to_string_pretty(value).expect("plans serialize");
    if text.contains('\n') { text.replace('\n', &format!("\n{}", " ".repeat(indent))) } else { text }
}

/// What a saved plan says before its transfers' contents: read first, in one pass that
/// keeps none of the actions.
#[derive(Debug, Clone)]
pub struct PlanHeader {
    pub manifest: ManifestRef,
    pub created: i64,
    /// The moment the manifest's dates and ages were read at (`created` in a plan written
    /// before `at` was: it had no dates).
    pub at: Moment,
    pub shard: Option<crate::shard::Shard>,
    /// The transfers' names, in order.
    pub transfers: Vec<String>,
}

impl PlanHeader {
    /// Reads the header of a plan document (`open` gives its bytes, once per pass); `Ok(None)`
    /// when the text is not one (such as a YAML manifest).
    pub fn read<R: std::io::Read>(open: impl Fn() -> std::io::Result<R>) -> Result<Option<PlanHeader>, PlanFileError> {
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        #[derive(Deserialize)]
        struct Header {
            manifest: ManifestRef,
            created: i64,
            at: Option<String>,
            shard: Option<crate::shard::Shard>,
            transfers: Vec<Named>,
        }
        let read = |what| {
            open().map(std::io::BufReader::new).map_err(|err| PlanFileError::Malformed(format!("{what}: {err}")))
        };
        if !is_plan(read("cannot read it")?)? {
            return Ok(None);
        }
        let header = serde_json::from_reader::<_, Header>(read("cannot read it again")?)
            .map_err(|err| PlanFileError::Malformed(err.to_string()))?;
        let at = match header.at {
            Some(at) => Moment::parse(&at).map_err(|why| PlanFileError::Malformed(format!("`at`: {why}")))?,
            None => Moment::Instant(
                jiff::Timestamp::from_second(header.created)
                    .map_err(|why| PlanFileError::Malformed(format!("`created`: {why}")))?,
            ),
        };
        Ok(Some(PlanHeader {
            manifest: header.manifest,
            created: header.created,
            at,
            shard: header.shard,
            transfers: header.transfers.into_iter().map(|named| named.name).collect(),
        }))
    }
}

/// One step of reading a saved plan's transfers in order.
#[derive(Debug)]
pub enum SavedEvent {
    /// A transfer starts (its name).
    Begin(String),
    /// One of its actions, in key order.
    Action(super::Action),
    /// Its totals, skips, temp files and unfinished uploads (without its actions).
    End(TransferPlan),
}

/// The transfers of a plan document, read from `reader` as a stream of [`SavedEvent`]s on a
/// thread of its own through a bounded queue, so a plan of a million actions is applied in
/// memory that does not depend on its size. A transfer's `name` must come before its
/// `actions`, as haul writes them.
pub struct SavedTransfers {
    events: std::sync::mpsc::Receiver<Result<SavedEvent, PlanFileError>>,
}

impl SavedTransfers {
    pub fn read(reader: impl std::io::Read + Send + 'static) -> SavedTransfers {
        let (sender, events) = std::sync::mpsc::sync_channel(1024);
        std::thread::spawn(move || {
            let mut deserializer = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
            let mut forward = Forward { sender: &sender, gone: false };
            let result = serde::de::DeserializeSeed::deserialize(DocumentSeed(&mut forward), &mut deserializer);
            if let Err(err) = result
                && !forward.gone
            {
                let _ = sender.send(Err(PlanFileError::Malformed(err.to_string())));
            }
        });
        SavedTransfers { events }
    }
}

impl Iterator for SavedTransfers {
    type Item = Result<SavedEvent, PlanFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.events.recv().ok()
    }
}

/// Hands events to the reader of [`SavedTransfers`]; stops the parse when it has gone.
struct Forward<'a> {
    sender: &'a std::sync::mpsc::SyncSender<Result<SavedEvent, PlanFileError>>,
    gone: bool,
}

impl Forward<'_> {
    fn send<E: serde::de::Error>(&mut self, event: SavedEvent) -> Result<(), E> {
        self.sender.send(Ok(event)).map_err(|_| {
            self.gone = true;
            E::custom("the reader stopped")
        })
    }
}

struct DocumentSeed<'f, 'a>(&'f mut Forward<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for DocumentSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DocumentSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a plan document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "transfers" {
                map.next_value_seed(TransfersSeed(&mut *self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct TransfersSeed<'f, 'a>(&'f mut Forward<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for TransfersSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TransfersSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of transfers")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(TransferSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

struct TransferSeed<'f, 'a>(&'f mut Forward<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for TransferSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TransferSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a transfer")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error as _;
        let mut fields = serde_json::Map::new();
        let mut begun = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "actions" {
                fields.insert(key, map.next_value()?);
                continue;
            }
            let name = fields.get("name").and_then(|name| name.as_str());
            let name = name.ok_or_else(|| A::Error::custom("a transfer's `actions` come before its `name`"))?;
            self.0.send(SavedEvent::Begin(name.to_string()))?;
            begun = true;
            map.next_value_seed(ActionsSeed(&mut *self.0))?;
        }
        if !begun {
            let name = fields.get("name").and_then(|name| name.as_str());
            let name = name.ok_or_else(|| A::Error::custom("a transfer without a `name`"))?;
            self.0.send(SavedEvent::Begin(name.to_string()))?;
        }
        fields.insert("actions".into(), serde_json::Value::Array(Vec::new()));
        let plan: TransferPlan = serde_json::from_value(serde_json::Value::Object(fields)).map_err(A::Error::custom)?;
        self.0.send(SavedEvent::End(plan))
    }
}

struct ActionsSeed<'f, 'a>(&'f mut Forward<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for ActionsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ActionsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of actions")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(action) = seq.next_element::<super::Action>()? {
            self.0.send(SavedEvent::Action(action))?;
        }
        Ok(())
    }
}

/// The next event must start transfer `name`.
pub fn expect_begin(events: &mut SavedTransfers, name: &str) -> Result<(), PlanFileError> {
    match events.next() {
        Some(Ok(SavedEvent::Begin(found))) if found == name => Ok(()),
        Some(Err(err)) => Err(err),
        _ => Err(PlanFileError::Malformed(format!("transfer `{name}` is not where its header says"))),
    }
}

/// One transfer's actions from a saved plan, up to its end (kept in `end`), and a copy of
/// them when a later transfer plans on what this one writes.
pub struct TransferActions<'a> {
    events: &'a mut SavedTransfers,
    /// An action read ahead (by `is_empty`).
    ahead: Option<super::Action>,
    end: Option<Result<TransferPlan, PlanFileError>>,
    kept: Option<Vec<super::Action>>,
}

impl<'a> TransferActions<'a> {
    pub fn new(events: &'a mut SavedTransfers, keep: bool) -> Self {
        TransferActions { events, ahead: None, end: None, kept: keep.then(Vec::new) }
    }

    fn read(&mut self) -> Option<super::Action> {
        if self.end.is_some() {
            return None;
        }
        let end = match self.events.next() {
            Some(Ok(SavedEvent::Action(action))) => return Some(action),
            Some(Ok(SavedEvent::End(plan))) => Ok(plan),
            Some(Ok(SavedEvent::Begin(name))) => {
                Err(PlanFileError::Malformed(format!("transfer `{name}` starts inside another")))
            }
            Some(Err(err)) => Err(err),
            None => Err(PlanFileError::Malformed("the plan ends inside a transfer".into())),
        };
        self.end = Some(end);
        None
    }

    /// Whether the transfer has no actions.
    pub fn is_empty(&mut self) -> bool {
        if self.ahead.is_none() {
            self.ahead = self.read();
        }
        self.ahead.is_none()
    }

    /// Reads to the transfer's end: its totals, and its actions when they were to be kept.
    pub fn finish(mut self) -> (Result<TransferPlan, PlanFileError>, Option<Vec<super::Action>>) {
        while self.next().is_some() {}
        let end = self.end.take().unwrap_or_else(|| Err(PlanFileError::Malformed("a transfer has no end".into())));
        (end, self.kept.take())
    }
}

impl Iterator for TransferActions<'_> {
    type Item = super::Action;

    fn next(&mut self) -> Option<super::Action> {
        let action = match self.ahead.take() {
            Some(action) => action,
            None => self.read()?,
        };
        if let Some(kept) = &mut self.kept {
            kept.push(action.clone());
        }
        Some(action)
    }
}

/// Why a file that says it is a plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("plan format version {} is not supported (this haul reads version {PLAN_VERSION})", found.map_or("(none)".to_string(), |v| v.to_string()))]
    Version { found: Option<u32> },
    #[error("the plan file is damaged: {0}")]
    Malformed(String),
}

/// Which side of an action changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// An object that is no longer as the plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleObject {
    pub transfer: String,
    pub key: String,
    pub side: Side,
    /// What the plan saw (`None`: it was absent).
    pub planned: Option<Fingerprint>,
    /// What is there now (`None`: it is gone).
    pub now: Option<Fingerprint>,
}

impl TransferPlan {
    /// The plan's objects whose source or destination differs from the current listings
    /// (see [`stale_objects`]).
    pub fn stale_objects(
        &self,
        source: impl IntoIterator<Item = Item>,
        destination: impl IntoIterator<Item = Item>,
    ) -> Vec<StaleObject> {
        stale_objects(&self.name, self.actions.iter().cloned(), source, destination)
    }
}

/// The objects of `actions` (transfer `transfer`'s, in key order) whose source or destination
/// differs from the current listings (each in key order, as the listing stage yields them).
/// A merge join: one action and one item of each listing in memory at a time.
pub fn stale_objects(
    transfer: &str,
    actions: impl IntoIterator<Item = super::Action>,
    source: impl IntoIterator<Item = Item>,
    destination: impl IntoIterator<Item = Item>,
) -> Vec<StaleObject> {
    let mut source = Cursor::new(source.into_iter());
    let mut destination = Cursor::new(destination.into_iter());
    let mut stale = Vec::new();
    for action in actions {
        let sides = [
            (Side::Source, source.find(&action.key, action.source_name())),
            (Side::Destination, destination.find(&action.key, action.destination_name())),
        ];
        for (side, current) in sides {
            stale.extend(stale_side(transfer, &action, side, current.as_ref().map(Fingerprint::from)));
        }
    }
    stale
}

/// `action`'s `side` as a stale object, when what is there `now` (`None`: nothing) is not
/// what the plan saw; else `None`. A `now` without milliseconds (from a HEAD request, whose
/// time has whole seconds) is compared by the second.
pub fn stale_side(transfer: &str, action: &super::Action, side: Side, now: Option<Fingerprint>) -> Option<StaleObject> {
    let planned = match side {
        Side::Source => &action.source,
        Side::Destination => &action.destination,
    };
    (!same_state(planned.as_ref(), now.as_ref())).then(|| StaleObject {
        transfer: transfer.to_string(),
        key: action.key.clone(),
        side,
        planned: planned.clone(),
        now,
    })
}

/// Equal size and mtime, and equal ETags where both sides have one (a local file has none).
fn same_state(planned: Option<&Fingerprint>, now: Option<&Fingerprint>) -> bool {
    match (planned, now) {
        (None, None) => true,
        (Some(planned), Some(now)) => {
            planned.size == now.size
                && match (planned.mtime_ms, now.mtime_ms) {
                    (Some(a), Some(b)) => a == b,
                    // A plan from before milliseconds were compared, or a time from a HEAD.
                    _ => planned.mtime == now.mtime,
                }
                && match (&planned.etag, &now.etag) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        }
        _ => false,
    }
}

/// Walks a key-ordered listing forward to a key.
/// A listing read forward to the keys the plan's actions name (in key order), holding the
/// entries of one key at a time: its twins, told apart by their stored names.
struct Cursor<I: Iterator<Item = Item>> {
    items: Peekable<I>,
    key: Option<String>,
    group: Vec<Entry>,
}

impl<I: Iterator<Item = Item>> Cursor<I> {
    fn new(items: I) -> Self {
        Cursor { items: items.peekable(), key: None, group: Vec::new() }
    }

    /// The entry stored as `stored` among those keyed `key`. Keys must not go backwards.
    fn find(&mut self, key: &str, stored: &str) -> Option<Entry> {
        if self.key.as_deref() != Some(key) {
            self.group.clear();
            while let Some(item) = self.items.peek() {
                match item {
                    Item::Skipped(_) => {}
                    Item::Entry(entry) if entry.key.as_str() < key => {}
                    Item::Entry(entry) if entry.key == key => {
                        let Some(Item::Entry(entry)) = self.items.next() else { unreachable!() };
                        self.group.push(entry);
                        continue;
                    }
                    Item::Entry(_) => break,
                }
                self.items.next();
            }
            self.key = Some(key.to_string());
        }
        self.group.iter().find(|entry| entry.stored() == stored).cloned()
    }
}

/// One shard's share of a saved plan that several machines carry out together (`apply
/// PLAN --shard I/N`): the actions of the keys it owns (the hash `--shard` uses on a
/// manifest), and, counted, the other shards'.
#[derive(Debug, Clone, Copy)]
pub struct ShardShare {
    pub shard: crate::shard::Shard,
}

/// What one shard's share of a transfer of a saved plan adds up to, as its actions go by.
#[derive(Debug, Default)]
pub struct ShareTally {
    by_action: std::collections::BTreeMap<super::ActionKind, super::Tally>,
    by_reason: std::collections::BTreeMap<String, super::Tally>,
    archived: super::Tally,
    others: super::Tally,
}

impl ShardShare {
    /// The one share of a plan applied whole.
    pub fn whole() -> Self {
        ShardShare { shard: crate::shard::Shard { index: 0, count: 1 } }
    }

    /// Whether `action` of transfer `transfer` is this shard's.
    pub fn owns(&self, transfer: &str, action: &super::Action) -> bool {
        self.shard.owns(transfer, &action.key)
    }

    /// Counts `action` (of this shard or another) into `tally`; whether it is this shard's.
    pub fn count(&self, tally: &mut ShareTally, transfer: &str, action: &super::Action) -> bool {
        // A delete is counted by the bytes it removes, as the plan counts it by reason.
        let bytes = match &action.destination {
            Some(destination) if !action.action.moves_bytes() => destination.size,
            _ => action.size,
        };
        if !self.owns(transfer, action) {
            tally.others.add(bytes);
            return false;
        }
        tally.by_action.entry(action.action).or_default().add(action.size);
        tally.by_reason.entry(action.reason.slug().to_string()).or_default().add(bytes);
        if action.source.as_ref().is_some_and(|source| source.archived) {
            tally.archived.add(action.size);
        }
        true
    }

    /// `plan` (a transfer's totals as saved, for every key) narrowed to this shard: its
    /// actions' totals, the other shards' actions counted as `other-shard`, and of what the
    /// plan skipped, the keys this shard owns. Skips the plan only counted (unchanged,
    /// filtered, ...) name no key: shard 0 reports them, so the shards' reports add up.
    pub fn narrow(&self, plan: &mut TransferPlan, tally: ShareTally) {
        let owned = |key: &str| self.shard.owns(&plan.name, &crate::listing::nfc(key));
        let skipped = std::mem::take(&mut plan.skipped);
        plan.skipped = skipped.into_iter().filter(|skip| owned(&skip.key)).collect();
        let uploads = std::mem::take(&mut plan.unfinished_uploads);
        plan.unfinished_uploads = uploads.into_iter().filter(|upload| owned(&upload.key)).collect();
        let mut by_reason = tally.by_reason;
        if self.shard.index == 0 {
            let skips = plan.by_reason.iter().filter(|(slug, _)| !super::is_move_reason(slug));
            by_reason.extend(skips.map(|(slug, tally)| (slug.clone(), *tally)));
        }
        if !tally.others.is_empty() {
            let other_shard = by_reason.entry(super::skip_slug(&super::SkipKind::OtherShard).to_string()).or_default();
            other_shard.objects += tally.others.objects;
            other_shard.bytes += tally.others.bytes;
        }
        plan.by_reason = by_reason;
        plan.by_action = tally.by_action;
        plan.archived = tally.archived;
        plan.shard = Some(self.shard);
    }
}

impl ShareTally {
    /// The copies (uploads, downloads, copies) of the shard's actions.
    pub fn copies(&self) -> super::Tally {
        super::copies_in(&self.by_action)
    }
}

/// Seconds since the epoch, now.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::text::hex(&sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, ActionKind, Reason};

    fn fp(size: u64, mtime_ms: i64, etag: Option<&str>) -> Fingerprint {
        Fingerprint {
            size,
            mtime: mtime_ms.div_euclid(1000),
            mtime_ms: Some(mtime_ms),
            etag: etag.map(crate::etag::ETag::new),
            stored_key: None,
            written_by: None,
            archived: false,
        }
    }

    fn action(key: &str, source: Option<Fingerprint>, destination: Option<Fingerprint>) -> Action {
        Action {
            resume: None,
            action: if source.is_some() { ActionKind::Download } else { ActionKind::DeleteLocal },
            key: key.into(),
            size: source.as_ref().map_or(0, |s| s.size),
            reason: if destination.is_none() { Reason::New } else { Reason::SizeDiffers },
            source,
            destination,
            exact_name: false,
            properties: Vec::new(),
        }
    }

    fn plan(actions: Vec<Action>) -> TransferPlan {
        TransferPlan {
            name: "t".into(),
            direction: crate::manifest::Direction::Download,
            bucket: "b".into(),
            prefix: "p/".into(),
            local: "/tmp/l".into(),
            actions,
            skipped: vec![],
            temp_files: vec![],
            by_action: Default::default(),
            by_reason: Default::default(),
            shard: None,
            unfinished_uploads: vec![],
            to: None,
            copy_method: None,
            resumed: Default::default(),
            archived: Default::default(),
            inventories: Vec::new(),
            deadline_shortfall: None,
        }
    }

    /// The shards of a saved plan split its actions: each action in exactly one share, the
    /// others counted as `other-shard`, the plan's keyless skips reported by shard 0 alone.
    #[test]
    fn shares_of_a_saved_plan_add_up_to_it() {
        let actions: Vec<Action> = (0..50)
            .map(|n| action(&format!("k{n:02}"), Some(fp(10 + n, 1_000, Some("e"))), None))
            .chain((0..10).map(|n| action(&format!("gone{n}"), None, Some(fp(7, 1_000, Some("e"))))))
            .collect();
        let mut whole = plan(vec![]);
        whole.by_reason.insert("unchanged".into(), crate::plan::Tally { objects: 5, bytes: 50 });
        whole.skipped.push(crate::plan::NotableSkip {
            key: "k07".into(),
            slug: "unsafe-key".into(),
            reason: "x".into(),
        });
        let (mut copies, mut deletes, mut unchanged, mut skips) = (crate::plan::Tally::default(), 0, 0, 0);
        for index in 0..3 {
            let share = ShardShare { shard: crate::shard::Shard::new(index, 3).unwrap() };
            let mut tally = ShareTally::default();
            let mut owned = 0;
            for action in &actions {
                owned += u64::from(share.count(&mut tally, "t", action));
            }
            let share_copies = tally.copies();
            copies.objects += share_copies.objects;
            copies.bytes += share_copies.bytes;
            let mut narrowed = whole.clone();
            share.narrow(&mut narrowed, tally);
            deletes += narrowed.deletes();
            assert_eq!(narrowed.by_reason["other-shard"].objects, 60 - owned);
            assert_eq!(narrowed.shard, Some(share.shard));
            unchanged += narrowed.by_reason.get("unchanged").map_or(0, |tally| tally.objects);
            skips += narrowed.skipped.len();
        }
        assert_eq!(copies.objects, 50);
        assert_eq!(copies.bytes, (0..50).map(|n| 10 + n).sum::<u64>());
        assert_eq!(deletes, 10);
        assert_eq!(unchanged, 5, "counted once, by shard 0");
        assert_eq!(skips, 1, "a notable skip goes with its key's shard");
    }

    /// A HEAD answers whole seconds: what the plan listed in milliseconds is unchanged when
    /// its second is the same (and the size and ETag), changed when any differs.
    #[test]
    fn a_side_looked_up_with_whole_seconds_compares_by_the_second() {
        let planned = action("a", Some(fp(3, 5_678, Some("e"))), None);
        let head = |size, secs: i64, etag: &str| Fingerprint { mtime_ms: None, ..fp(size, secs * 1000, Some(etag)) };
        assert_eq!(stale_side("t", &planned, Side::Source, Some(head(3, 5, "e"))), None);
        assert!(stale_side("t", &planned, Side::Source, Some(head(3, 6, "e"))).is_some());
        assert!(stale_side("t", &planned, Side::Source, Some(head(4, 5, "e"))).is_some());
        assert!(stale_side("t", &planned, Side::Source, Some(head(3, 5, "f"))).is_some());
        assert!(stale_side("t", &planned, Side::Source, None).is_some());
        assert_eq!(stale_side("t", &planned, Side::Destination, None), None);
        assert!(stale_side("t", &planned, Side::Destination, Some(head(3, 5, "e"))).is_some());
    }

    fn listing(entries: &[(&str, u64, i64, Option<&str>)]) -> Vec<Item> {
        entries
            .iter()
            .map(|(key, size, mtime, etag)| {
                Item::Entry(Entry::new(key, *size, *mtime, etag.map(crate::etag::ETag::new)))
            })
            .collect()
    }

    #[test]
    fn unchanged_sides_are_not_stale() {
        let plan = plan(vec![
            action("a", Some(fp(1, 10, Some("e1"))), None),
            action("b", Some(fp(2, 10, Some("e2"))), Some(fp(3, 5, None))),
            action("c", None, Some(fp(4, 5, None))),
        ]);
        let source = listing(&[("a", 1, 10, Some("e1")), ("a0", 9, 9, None), ("b", 2, 10, Some("e2"))]);
        let destination = listing(&[("b", 3, 5, None), ("c", 4, 5, None), ("d", 1, 1, None)]);
        assert_eq!(plan.stale_objects(source, destination), vec![]);
    }

    #[test]
    fn every_kind_of_change_is_stale() {
        // In key order, as a plan's actions are.
        let plan = plan(vec![
            action("appeared", Some(fp(1, 10, None)), None),
            action("etag", Some(fp(1, 10, Some("old"))), None),
            action("gone", Some(fp(1, 10, None)), None),
            action("mtime", Some(fp(1, 10, None)), Some(fp(2, 5, None))),
            action("removed", None, Some(fp(4, 5, None))),
        ]);
        let source = listing(&[("appeared", 1, 10, None), ("etag", 1, 10, Some("new")), ("mtime", 1, 10, None)]);
        let destination = listing(&[("appeared", 7, 7, None), ("mtime", 2, 6, None)]);
        let stale: Vec<(String, Side)> =
            plan.stale_objects(source, destination).into_iter().map(|s| (s.key, s.side)).collect();
        assert_eq!(
            stale,
            vec![
                ("appeared".to_string(), Side::Destination),
                ("etag".to_string(), Side::Source),
                ("gone".to_string(), Side::Source),
                ("mtime".to_string(), Side::Destination),
                ("removed".to_string(), Side::Destination),
            ]
        );
    }

    #[test]
    fn documents_round_trip_and_are_recognized() {
        let doc = PlanDocument::new(
            ManifestRef::new("/m.yaml".into(), "version: 1\n"),
            now_seconds(),
            vec![plan(vec![action("매출.csv", Some(fp(1, 10, Some("e"))), None)])],
            None,
        );
        assert_eq!(doc.manifest.sha256.len(), 64);
        let back = PlanDocument::from_json(&doc.to_json()).unwrap().expect("a plan");
        assert_eq!(back.transfers[0].actions, doc.transfers[0].actions);
        assert_eq!(back.manifest, doc.manifest);
        assert!(back.changes);
        assert!(PlanDocument::from_json("version: 1\ntransfers: []\n").unwrap().is_none());
        assert!(PlanDocument::from_json("{\"version\": 1}").unwrap().is_none());
        let future = doc.to_json().replace("\"version\": 1", "\"version\": 99");
        assert!(matches!(PlanDocument::from_json(&future), Err(PlanFileError::Version { found: Some(99) })));
    }

    #[test]
    fn a_saved_plan_is_read_back_as_a_stream_transfer_by_transfer() {
        let mut first =
            plan(vec![action("a", Some(fp(1, 10, Some("e1"))), None), action("한글/b", None, Some(fp(2, 5, None)))]);
        first.name = "first".into();
        let mut second = plan(vec![]);
        second.name = "second".into();
        second.temp_files = vec![".haul-1-x.tmp".into()];
        let doc = PlanDocument::new(ManifestRef::new("/m.yaml".into(), "version: 1\n"), 5, vec![first, second], None);
        let text = doc.to_json();
        let header = PlanHeader::read(|| Ok(text.as_bytes())).unwrap().expect("a plan");
        assert_eq!(
            (header.transfers, header.created, header.manifest),
            (vec!["first".into(), "second".into()], 5, doc.manifest.clone())
        );
        let events: Vec<SavedEvent> =
            SavedTransfers::read(std::io::Cursor::new(text.clone().into_bytes())).collect::<Result<_, _>>().unwrap();
        let [
            SavedEvent::Begin(one),
            SavedEvent::Action(a),
            SavedEvent::Action(b),
            SavedEvent::End(first),
            SavedEvent::Begin(two),
            SavedEvent::End(second),
        ] = &events[..]
        else {
            panic!("{events:?}")
        };
        assert_eq!((one.as_str(), two.as_str()), ("first", "second"));
        assert_eq!([a, b], [&doc.transfers[0].actions[0], &doc.transfers[0].actions[1]]);
        assert!(first.actions.is_empty() && first.name == "first");
        assert_eq!(second.temp_files, doc.transfers[1].temp_files);

        // Cut short: what was whole comes through, then the damage is said.
        let cut = text[..text.find("한글").unwrap()].to_string();
        let events: Vec<_> = SavedTransfers::read(std::io::Cursor::new(cut.into_bytes())).collect();
        assert!(matches!(events.first(), Some(Ok(SavedEvent::Begin(_)))), "{events:?}");
        assert!(matches!(events.last(), Some(Err(PlanFileError::Malformed(_)))), "{events:?}");
        // Not a plan: a manifest.
        assert!(PlanHeader::read(|| Ok("version: 1\ntransfers: []\n".as_bytes())).unwrap().is_none());
        let gone = text.replacen("\"transfers\"", "\"transfers_gone\"", 1);
        assert!(matches!(PlanHeader::read(|| Ok(gone.as_bytes())), Err(PlanFileError::Malformed(_))));
    }
}
