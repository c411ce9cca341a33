//! Where the values of a mapping's keys are in the file, kept after the YAML tree is gone:
//! validation points its problems at lines without holding every transfer's tree (a tree
//! costs kilobytes per transfer; this, a few hundred bytes).

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::model::schema_index;
use super::problem::Location;

/// Keys whose text is kept as written, to quote it (`part_size: 6GB`, not how it was read).
const QUOTED: [&str; 2] = ["multipart_threshold", "part_size"];

/// The places of one mapping's known keys (a transfer's, or `defaults`).
#[derive(Debug, Default)]
pub struct Places {
    /// Where the mapping starts.
    pub start: Option<Location>,
    keys: Vec<Place>,
    /// The places under a copy's `to:` mapping (its keys are transfer keys too).
    to: Option<Box<Places>>,
}

#[derive(Debug)]
struct Place {
    /// Index in the schema's transfer keys.
    key: u8,
    value: Spot,
    /// Each item's place, when the value is a list.
    items: Box<[Spot]>,
    /// The value as written, for the keys in [`QUOTED`].
    text: Option<Box<str>>,
}

/// A [`Location`] in 12 bytes (line 0: none).
#[derive(Debug, Clone, Copy)]
struct Spot {
    line: u32,
    column: u32,
    len: u32,
}

impl Spot {
    fn of(location: Option<Location>) -> Self {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match location {
            Some(l) => Spot { line: narrow(l.line), column: narrow(l.column), len: narrow(l.len) },
            None => Spot { line: 0, column: 0, len: 0 },
        }
    }

    fn location(self) -> Option<Location> {
        (self.line > 0).then(|| Location::new(self.line as usize, self.column as usize, self.len as usize))
    }
}

impl Places {
    /// The places in `map`, `shift` lines down (a map read from a piece of the file).
    pub fn of(map: &MarkedMappingNode, shift: usize) -> Self {
        let known = &schema_index().transfer_keys;
        let keys = map
            .iter()
            .filter_map(|(key, value)| {
                let index = known.iter().position(|known| known.as_str() == key.as_str())?;
                let items = match value {
                    Node::Sequence(list) => {
                        list.iter().map(|item| Spot::of(shifted(Location::of_value(item), shift))).collect()
                    }
                    _ => Box::default(),
                };
                let quoted = QUOTED.contains(&key.as_str());
                let text = quoted.then(|| value.as_scalar().map(|s| s.as_str().into())).flatten();
                let value = Spot::of(shifted(Location::of_value(value), shift));
                Some(Place { key: u8::try_from(index).ok()?, value, items, text })
            })
            .collect();
        let to = map.get_mapping("to").map(|to| Box::new(Places::of(to, shift)));
        Places { start: shifted(Location::of_span(map.span(), 1), shift), keys, to }
    }

    /// The places under the mapping's `to:`, when it has one.
    pub fn to(&self) -> Option<&Places> {
        self.to.as_deref()
    }

    fn find(&self, key: &str) -> Option<&Place> {
        let known = &schema_index().transfer_keys;
        self.keys.iter().find(|place| known.get(usize::from(place.key)).is_some_and(|k| k == key))
    }

    /// Whether the mapping sets `key`, and where its value is.
    pub fn own(&self, key: &str) -> Option<Option<Location>> {
        self.find(key).map(|place| place.value.location())
    }

    pub fn at(&self, key: &str) -> Option<Location> {
        self.find(key)?.value.location()
    }

    pub fn item_at(&self, key: &str, item: usize) -> Option<Location> {
        self.find(key)?.items.get(item)?.location()
    }

    pub fn written(&self, key: &str) -> Option<&str> {
        self.find(key)?.text.as_deref()
    }
}

/// `location`, `lines` further down the file.
pub fn shifted(location: Option<Location>, lines: usize) -> Option<Location> {
    location.map(|location| Location { line: location.line + lines, ..location })
}
