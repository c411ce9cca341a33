//! Where the values of a mapping's keys are in the file, kept after the YAML tree is gone:
//! validation points its problems at lines without holding every transfer's tree (a tree
//! costs kilobytes per transfer; this, a few hundred bytes).

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::load::value_location;
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
}

#[derive(Debug)]
struct Place {
    key: &'static str,
    value: Option<Location>,
    /// Each item's place, when the value is a list.
    items: Vec<Option<Location>>,
    /// The value as written, for the keys in [`QUOTED`].
    text: Option<Box<str>>,
}

impl Places {
    /// The places in `map`, `shift` lines down (a map read from a piece of the file).
    pub fn of(map: &MarkedMappingNode, shift: usize) -> Self {
        let index = schema_index();
        let known = |key: &str| index.transfer_keys.iter().find(|known| known.as_str() == key);
        let keys = map
            .iter()
            .filter_map(|(key, value)| {
                let key: &'static str = known(key.as_str())?.as_str();
                let items = match value {
                    Node::Sequence(list) => list.iter().map(|item| shifted(value_location(item), shift)).collect(),
                    _ => Vec::new(),
                };
                let text = QUOTED.contains(&key).then(|| value.as_scalar().map(|s| s.as_str().into())).flatten();
                Some(Place { key, value: shifted(value_location(value), shift), items, text })
            })
            .collect();
        Places { start: shifted(Location::of_span(map.span(), 1), shift), keys }
    }

    fn find(&self, key: &str) -> Option<&Place> {
        self.keys.iter().find(|place| place.key == key)
    }

    /// Whether the mapping sets `key`, and where its value is.
    pub fn own(&self, key: &str) -> Option<Option<Location>> {
        self.find(key).map(|place| place.value)
    }

    pub fn at(&self, key: &str) -> Option<Location> {
        self.find(key)?.value
    }

    pub fn item_at(&self, key: &str, item: usize) -> Option<Location> {
        *self.find(key)?.items.get(item)?
    }

    pub fn written(&self, key: &str) -> Option<&str> {
        self.find(key)?.text.as_deref()
    }
}

/// `location`, `lines` further down the file.
pub fn shifted(location: Option<Location>, lines: usize) -> Option<Location> {
    location.map(|location| Location { line: location.line + lines, ..location })
}
