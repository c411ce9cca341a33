//! One level of a large prefix (`delimiter=/`) listed in key ranges at once.
//!
//! A listing is a chain of pages, each naming the next, so one chain lists one page per round
//! trip: 200 round trips for 200,000 names in one folder, 20 s at 100 ms. Here the level is cut
//! into key ranges at StartAfter names, each range its own chain, several in flight, read back
//! in key order. Where to cut comes from the pages themselves: a page reaches from its first
//! name to its last, and the rest of a range is cut so that each piece holds about two pages.
//! A range with no end is cut in pieces that double in size, each cut again once its first
//! page shows how dense it is.
//!
//! Nothing here trusts the server to list in key order or to honour StartAfter. Each range's
//! pages must follow each other in key order, and its first page must start after its start.
//! The names its last page lists past its end must be the next names the ranges after it pass
//! on, and every name passed on must come after the one before. A server that breaks any of
//! these (SeaweedFS lists a folder where its name sorts, `a/` before `a b.csv`) ends the
//! listing with `OutOfOrder` before a name is misplaced, and the caller sorts instead.

use std::collections::VecDeque;

use super::remote::{ListError, PageEntry, RemoteListing};

/// Key ranges at most, started or not.
const MAX_RANGES: usize = 64;
/// Ranges with a page request out at once.
const MAX_IN_FLIGHT: usize = 16;
/// Entries fetched ahead of the reader, across ranges, past which no new range starts.
const MAX_BUFFERED: usize = 16_000;
/// Entries one range holds before it waits for the reader.
const RANGE_ROOM: usize = 2_000;
/// Pages a new range is cut to hold.
const PAGES_PER_RANGE: u128 = 2;
/// New ranges one cut makes at most.
const CUT_AT_MOST: usize = 16;
/// Entries read between looks at the ranges ahead.
const LOOK_EVERY: usize = 64;

/// One level of a prefix in key ranges, read in key order.
pub(super) struct LevelRanges {
    /// What new ranges and folder listings are made from: the level from its start.
    template: RemoteListing,
    /// Ranges in key order; the first is the one being read.
    ranges: VecDeque<RemoteListing>,
    /// Names a finished range listed past its end: the next names passed on, in this order.
    expected: VecDeque<String>,
    /// The last name passed on.
    last: Option<String>,
    /// Where the level's names start: cut points keep the prefix.
    prefix_len: usize,
    /// Entries read since the last look at the ranges ahead.
    since_look: usize,
    failed: bool,
}

impl LevelRanges {
    /// `whole`: the delimited listing of the level from its start, not started.
    pub(super) fn new(whole: RemoteListing) -> Self {
        let template = whole.range(None, None);
        let prefix_len = whole.prefix_len();
        let mut whole = whole;
        whole.start();
        LevelRanges {
            template,
            ranges: VecDeque::from([whole]),
            expected: VecDeque::new(),
            last: None,
            prefix_len,
            since_look: 0,
            failed: false,
        }
    }

    /// The listing of `folder` (a full prefix this level listed), its first page requested.
    pub(super) fn folder_listing(&self, folder: &str) -> RemoteListing {
        self.template.folder_listing(folder)
    }

    fn fail(&mut self, err: ListError) -> Option<Result<(String, PageEntry), ListError>> {
        self.failed = true;
        Some(Err(err))
    }

    /// The level's next entry (with its full name as stored), in key order.
    pub(super) fn next_streamed(&mut self) -> Option<Result<(String, PageEntry), ListError>> {
        loop {
            if self.failed {
                return None;
            }
            self.since_look += 1;
            if self.since_look >= LOOK_EVERY || self.ranges.front().is_none_or(|front| front.buffered() == 0) {
                self.since_look = 0;
                self.look_ahead();
            }
            let Some(front) = self.ranges.front_mut() else {
                // A range listed names past its end that no range after it listed.
                let missing = self.expected.pop_front()?;
                return self.fail(ListError::OutOfOrder { previous: missing, key: "(the end)".to_string() });
            };
            match front.next_streamed() {
                Some(Ok((name, entry))) => {
                    if let Some(expected) = self.expected.pop_front()
                        && expected != name
                    {
                        return self.fail(ListError::OutOfOrder { previous: expected, key: name });
                    }
                    if let Some(last) = &self.last
                        && name <= *last
                    {
                        let previous = last.clone();
                        return self.fail(ListError::OutOfOrder { previous, key: name });
                    }
                    self.last = Some(name.clone());
                    return Some(Ok((name, entry)));
                }
                Some(Err(err)) => return self.fail(err),
                None => {
                    let mut done = self.ranges.pop_front().expect("the front range");
                    // What it listed past its end comes next, and agrees with what the range
                    // before it listed past its own end, if that reached this far.
                    for (at, name) in done.take_overrun().into_iter().enumerate() {
                        match self.expected.get(at) {
                            Some(expected) if *expected != name => {
                                let previous = expected.clone();
                                return self.fail(ListError::OutOfOrder { previous, key: name });
                            }
                            Some(_) => {}
                            None => self.expected.push_back(name),
                        }
                    }
                }
            }
        }
    }

    /// Takes in the pages already come for the ranges ahead, cuts ranges whose pages show
    /// them long, and starts ranges while few requests are out and little waits to be read.
    fn look_ahead(&mut self) {
        let (mut in_flight, mut buffered) = (0, 0);
        let mut at = 0;
        while at < self.ranges.len() {
            let range = &mut self.ranges[at];
            range.take_ready_page(RANGE_ROOM);
            if let Some(span) = range.span.take() {
                self.cut(at, span);
            }
            let range = &mut self.ranges[at];
            if !range.started() && in_flight < MAX_IN_FLIGHT && buffered < MAX_BUFFERED {
                range.start();
            }
            in_flight += usize::from(range.in_flight());
            buffered += range.buffered();
            at += 1;
        }
    }

    /// Cuts the rest of the range at `at`, whose last page reached from `first` to `last`,
    /// into new ranges after it.
    fn cut(&mut self, at: usize, (first, last): (String, String)) {
        let most = CUT_AT_MOST.min(MAX_RANGES.saturating_sub(self.ranges.len()));
        let range = &self.ranges[at];
        if most == 0 || range.is_finished() {
            return;
        }
        let until = range.until().map(str::to_string);
        let points = cut_points(&first, &last, until.as_deref(), self.prefix_len, most);
        let Some(first_point) = points.first() else { return };
        tracing::debug!(
            after = %last,
            ranges = points.len(),
            from = %first_point,
            "listing a large folder in key ranges at once"
        );
        let ends = points.iter().skip(1).cloned().map(Some).chain([until]);
        let new: Vec<RemoteListing> =
            points.iter().cloned().zip(ends).map(|(after, end)| self.template.range(Some(after), end)).collect();
        self.ranges[at].end_at(first_point.clone());
        for (offset, range) in new.into_iter().enumerate() {
            self.ranges.insert(at + 1 + offset, range);
        }
    }
}

/// Digits of a name a cut is computed in.
const DIGITS: usize = 15;
/// Bytes before the first one two names differ in that a cut point may change.
const LOOKBACK: usize = 3;
/// A byte of a word: a letter, a digit, or part of a non-ASCII character.
fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte >= 0x80
}

/// Names to start new key ranges after, in increasing order, between `last` and `until` (or
/// past `last`, when the range has no end): a page reached from `first` to `last`, and each
/// new range is cut to hold about [`PAGES_PER_RANGE`] such pages. A range whose end lies
/// beyond what can be measured gets pieces doubling in size. At most `most`; none when the
/// rest looks short or the page's names cannot be told apart. Every point keeps the first
/// `floor` bytes (the level's prefix) and never names a deeper folder (it has no `/` after
/// them), so each range is a run of the level's own names.
pub(super) fn cut_points(first: &str, last: &str, until: Option<&str>, floor: usize, most: usize) -> Vec<String> {
    let (first_bytes, last_bytes) = (first.as_bytes(), last.as_bytes());
    if most == 0 || last_bytes <= first_bytes || floor > first_bytes.len() {
        return Vec::new();
    }
    let differ =
        first_bytes.iter().zip(last_bytes).position(|(a, b)| a != b).unwrap_or(first_bytes.len().min(last_bytes.len()));
    let from = differ.saturating_sub(LOOKBACK).max(floor).min(differ);
    let stem = &last_bytes[..from];
    let until_tail = until.map(str::as_bytes).filter(|until| until.starts_with(stem)).map(|until| &until[from..]);
    // The alphabet of the bytes where the names change, not of a suffix they share (`.csv`
    // would bring every letter into a series of digits, and make it look four times longer).
    // The alphabet of the word where the names change (a run of letters, digits or non-ASCII
    // text), not of a suffix they share: `.csv` would bring every letter into a series of
    // digits, and make it look several times longer than it is.
    let word = |name: &[u8]| -> Vec<u8> {
        let end = (differ..name.len()).find(|at| !is_word(name[*at])).unwrap_or(name.len()).max(differ + 1);
        name[differ.min(name.len())..end.min(name.len())].to_vec()
    };
    let until_word = until.filter(|_| until_tail.is_some()).map(|until| word(until.as_bytes())).unwrap_or_default();
    // The bytes before, which both names share, as they are (`n` of `n00628` brings no
    // letters).
    let alphabet = Alphabet::of(&[&word(first_bytes), &word(last_bytes), &until_word], &last_bytes[from..differ]);
    let (x_first, x_last) = (alphabet.number(&first_bytes[from..]), alphabet.number(&last_bytes[from..]));
    let end = until_tail.map_or(alphabet.end(), |tail| alphabet.number(tail));
    let width = x_last.saturating_sub(x_first);
    if width == 0 || end <= x_last {
        return Vec::new();
    }
    let step = width.saturating_mul(PAGES_PER_RANGE);
    let room = end - x_last;
    let numbers: Vec<u128> = if until_tail.is_some() {
        // An end in sight: even pieces.
        let pieces = room.div_ceil(step).min(most as u128 + 1);
        (1..pieces).map(|piece| x_last + room / pieces * piece).collect()
    } else {
        // No end in sight: pieces of 2, 4, 8, ... pages, until the measurable names run out.
        (1..=most as u32)
            .map_while(|i| step.checked_mul(1u128.checked_shl(i)? - 1).and_then(|reach| x_last.checked_add(reach)))
            .take_while(|x| *x < end)
            .collect()
    };
    let mut points: Vec<String> = Vec::with_capacity(numbers.len());
    for x in numbers {
        let mut name = stem.to_vec();
        name.extend(alphabet.tail(x));
        if let Some(slash) = name[floor..].iter().position(|b| *b == b'/') {
            name.truncate(floor + slash);
        }
        let valid = match std::str::from_utf8(&name) {
            Ok(valid) => valid,
            Err(err) => std::str::from_utf8(&name[..err.valid_up_to()]).expect("valid up to there"),
        };
        let after_previous = points.last().map_or(valid > last, |previous| valid > previous.as_str());
        if after_previous && until.is_none_or(|until| valid < until) {
            points.push(valid.to_string());
        }
    }
    points
}

/// The bytes names are written in, for reading a name as a number: each byte its place in
/// the alphabet (from 1), 0 past the name's end, so numbers keep the names' order.
struct Alphabet {
    bytes: Vec<u8>,
}

impl Alphabet {
    /// The bytes of `words`, where a digit, lower-case or upper-case letter brings its whole
    /// class (the names between two names use the ones between), and the bytes `also`.
    fn of(words: &[&[u8]], also: &[u8]) -> Self {
        let mut seen = [false; 256];
        for byte in words.iter().flat_map(|word| word.iter()) {
            seen[usize::from(*byte)] = true;
        }
        for class in [b'0'..=b'9', b'a'..=b'z', b'A'..=b'Z'] {
            if class.clone().any(|byte| seen[usize::from(byte)]) {
                class.for_each(|byte| seen[usize::from(byte)] = true);
            }
        }
        for byte in also {
            seen[usize::from(*byte)] = true;
        }
        Alphabet { bytes: (0..=255u8).filter(|byte| seen[usize::from(*byte)]).collect() }
    }

    fn base(&self) -> u128 {
        self.bytes.len() as u128 + 1
    }

    /// One past the largest number.
    fn end(&self) -> u128 {
        self.base().pow(DIGITS as u32)
    }

    /// A byte's digit: its place, or the place of the largest byte below it.
    fn digit(&self, byte: u8) -> u128 {
        match self.bytes.binary_search(&byte) {
            Ok(at) => at as u128 + 1,
            Err(below) => below as u128,
        }
    }

    /// The first [`DIGITS`] bytes of `tail` as a number.
    fn number(&self, tail: &[u8]) -> u128 {
        (0..DIGITS).fold(0, |x, at| x * self.base() + tail.get(at).map_or(0, |byte| self.digit(*byte)))
    }

    /// The bytes a number stands for, up to its first 0 digit.
    fn tail(&self, mut x: u128) -> Vec<u8> {
        let mut digits = [0u128; DIGITS];
        for digit in digits.iter_mut().rev() {
            *digit = x % self.base();
            x /= self.base();
        }
        digits.iter().take_while(|digit| **digit != 0).map(|digit| self.bytes[*digit as usize - 1]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: u32) -> String {
        format!("p/part-{n:06}.csv")
    }

    /// Cut points for a page from `first` to `last`, as relative names.
    fn cut(first: &str, last: &str, until: Option<&str>, most: usize) -> Vec<String> {
        cut_points(first, last, until, 2, most)
    }

    #[test]
    fn a_numbered_series_is_cut_near_page_boundaries() {
        // A page of 1,000 numbered names; the rest, up to 10,000, in ranges of about two pages.
        let points = cut(&numbered(0), &numbered(999), Some(&numbered(9_999)), 16);
        assert!(!points.is_empty());
        let mut previous = numbered(999);
        for point in &points {
            assert!(*point > previous && point.as_str() < numbered(9_999).as_str(), "{points:?}");
            previous = point.clone();
        }
        // About 4.5 pieces of two pages in the 9,000 names left: not hundreds of empty ones.
        assert!((3..=8).contains(&points.len()), "{points:?}");
    }

    #[test]
    fn a_range_with_no_end_is_cut_in_growing_pieces() {
        let points = cut(&numbered(0), &numbered(999), None, 8);
        assert_eq!(points.len(), 8, "{points:?}");
        assert!(points.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(points[0] > numbered(999) && points[0] < numbered(4_000), "{points:?}");
    }

    #[test]
    fn points_keep_the_prefix_and_never_go_into_a_folder() {
        // A folder's name (`a/`, `ab/`) beside the level's names brings `/` into the alphabet.
        let pages = [("p/a/", "p/m9"), ("p/a", "p/b/"), ("p/a/", "p/a0"), ("p/ab/", "p/ab9"), ("p/0/", "p/9/")];
        let points: Vec<String> = pages.iter().flat_map(|(first, last)| cut(first, last, None, 16)).collect();
        assert!(!points.is_empty());
        for point in &points {
            assert!(point.starts_with("p/"), "{point}");
            assert!(!point[2..].contains('/'), "{point}");
        }
    }

    #[test]
    fn points_are_valid_names_between_their_bounds_for_any_bytes() {
        let names = ["p/\u{D55C}\u{AE00}1", "p/\u{D55C}\u{AE00}9", "p/\u{D55C}\u{FFFF}", "p/a\u{1}b", "p/a\u{7f}"];
        for first in names {
            for last in names {
                for until in [None, Some("p/\u{10FFFF}")] {
                    let points = cut(first, last, until, 16);
                    let mut previous = last.to_string();
                    for point in points {
                        assert!(point > previous, "{first:?} {last:?}: {point:?}");
                        assert!(until.is_none_or(|until| point.as_str() < until));
                        previous = point;
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_is_cut_when_the_rest_is_short_or_the_names_are_one() {
        assert!(cut(&numbered(0), &numbered(999), Some(&numbered(2_500)), 16).is_empty());
        assert!(cut("p/x", "p/x", None, 16).is_empty());
        assert!(cut(&numbered(0), &numbered(999), None, 0).is_empty());
    }
}
