//! Progress of a run. Workers only bump counters; one ticker thread turns them into indicatif
//! bars on a terminal, or into plain timestamped lines under cron and pipes (no control
//! characters), or into nothing with `--quiet`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::text::human_bytes;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bars,
    /// A line every this often, and one at the end.
    Lines(Duration),
    Quiet,
}

/// Shared counters of one run.
#[derive(Default)]
pub struct Counters {
    pub objects_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub objects_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub failed: AtomicU64,
    /// Objects the current transfer may have in flight (its level), for the display.
    level: std::sync::atomic::AtomicU32,
    in_flight: Mutex<BTreeMap<u64, InFlight>>,
    next_id: AtomicU64,
    /// The transfer being run: the display shows its share, so a bar never shrinks or jumps
    /// when the next transfer adds its work.
    stage: Mutex<Option<Stage>>,
}

/// One transfer of the run, as the display names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stage {
    /// From 1.
    index: usize,
    count: usize,
    name: String,
    /// The counters when it began.
    base: Totals,
    /// Its listing is planned whole (its totals are known).
    planned: bool,
    /// How the transfer before it ended, for its bar's last state.
    previous: Option<Box<View>>,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    objects_total: u64,
    bytes_total: u64,
    objects_done: u64,
    bytes_done: u64,
    failed: u64,
}

/// What the display shows: the current transfer's share of the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `2/5 daily-reports` (or the name alone in a run of one transfer); `None` before any.
    pub label: Option<String>,
    /// Which transfer (from 1); a new one gets a new bar.
    pub stage: usize,
    /// Still listing and planning: the totals are what was found so far.
    pub planning: bool,
    pub objects_done: u64,
    pub objects_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub failed: u64,
    /// Objects the transfer may have in flight now (0: not known yet).
    pub level: u32,
}

impl View {
    fn of(now: Totals, stage: Option<&Stage>) -> View {
        let base = stage.map(|stage| stage.base).unwrap_or_default();
        View {
            label: stage.map(|stage| {
                if stage.count > 1 {
                    format!("{}/{} {}", stage.index, stage.count, stage.name)
                } else {
                    stage.name.clone()
                }
            }),
            stage: stage.map_or(0, |stage| stage.index),
            planning: stage.is_some_and(|stage| !stage.planned),
            objects_done: now.objects_done.saturating_sub(base.objects_done),
            objects_total: now.objects_total.saturating_sub(base.objects_total),
            bytes_done: now.bytes_done.saturating_sub(base.bytes_done),
            bytes_total: now.bytes_total.saturating_sub(base.bytes_total),
            failed: now.failed.saturating_sub(base.failed),
            level: 0,
        }
    }

    /// `3/10 objects, 1 failed`.
    fn objects(&self) -> String {
        let mut line = format!("{}/{} {}", self.objects_done, self.objects_total, plural(self.objects_total, "object"));
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        if self.level > 0 && self.objects_done < self.objects_total {
            line.push_str(&format!(", {} in flight", self.level));
        }
        line
    }

    /// The message beside the bar or in a progress line.
    fn message(&self) -> String {
        let what = match (self.planning, self.objects_total) {
            (true, 0) => "listing and planning".to_string(),
            (true, _) => format!("{}, still listing", self.objects()),
            (false, _) => self.objects(),
        };
        match &self.label {
            Some(label) => format!("{}: {what}", crate::text::printable(label)),
            None => what,
        }
    }
}

/// `1 object`, `2 objects`.
pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 { noun.to_string() } else { format!("{noun}s") }
}

/// Keeps what a bar shows from going backwards within one transfer: a failed attempt takes
/// its bytes back from the counters (a retry counts them again), which would make the bar
/// shrink and grow; the bar waits instead.
#[derive(Debug, Default)]
pub struct Monotonic {
    stage: usize,
    bytes_done: u64,
    bytes_total: u64,
}

impl Monotonic {
    /// `view` with its byte counts never below what this stage showed before.
    pub fn shown(&mut self, mut view: View) -> View {
        if view.stage != self.stage {
            *self = Monotonic { stage: view.stage, ..Monotonic::default() };
        }
        self.bytes_total = self.bytes_total.max(view.bytes_total);
        self.bytes_done = self.bytes_done.max(view.bytes_done).min(self.bytes_total);
        view.bytes_total = self.bytes_total;
        view.bytes_done = self.bytes_done;
        view
    }
}

struct InFlight {
    name: String,
    size: u64,
    done: Arc<AtomicU64>,
}

/// Files at least this big get their own line on a terminal.
const SHOWN_IN_FLIGHT: u64 = 8 * 1024 * 1024;

impl Counters {
    /// Transfer `index` (from 1) of `count`, named `name`, starts (its plan is being made).
    pub fn begin_transfer(&self, index: usize, count: usize, name: &str) {
        let mut current = self.stage.lock().expect("progress lock");
        let totals = self.totals();
        let previous = current.as_ref().map(|stage| Box::new(View::of(totals, Some(stage))));
        *current = Some(Stage { index, count, name: name.to_string(), base: totals, planned: false, previous });
    }

    /// How the transfer before the current one ended.
    fn previous_view(&self) -> Option<View> {
        self.stage.lock().expect("progress lock").as_ref().and_then(|stage| stage.previous.as_deref().cloned())
    }

    /// Work the current transfer's plan found, as it finds it (copies start while the
    /// listing goes on).
    pub fn add_planned(&self, objects: u64, bytes: u64) {
        self.objects_total.fetch_add(objects, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Planned objects that will not be made after all (a listing read again drops them).
    pub fn remove_planned(&self, objects: u64, bytes: u64) {
        self.objects_total.fetch_sub(objects, Ordering::Relaxed);
        self.bytes_total.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The current transfer is listed and planned: its totals are whole.
    pub fn listed(&self) {
        if let Some(stage) = self.stage.lock().expect("progress lock").as_mut() {
            stage.planned = true;
        }
    }

    fn totals(&self) -> Totals {
        Totals {
            objects_total: self.objects_total.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            objects_done: self.objects_done.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// What the display shows now: the current transfer's share.
    pub fn view(&self) -> View {
        let stage = self.stage.lock().expect("progress lock");
        View { level: self.level.load(Ordering::Relaxed), ..View::of(self.totals(), stage.as_ref()) }
    }

    /// Starts tracking one object's bytes. Bytes count toward the total as they move; if the
    /// attempt fails, dropping the tracker takes them back (a retry counts them again).
    pub fn start(&self, name: &str, size: u64) -> ObjectProgress<'_> {
        let done = Arc::new(AtomicU64::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if size >= SHOWN_IN_FLIGHT {
            let entry = InFlight { name: name.to_string(), size, done: done.clone() };
            self.in_flight.lock().expect("progress lock").insert(id, entry);
        }
        ObjectProgress { counters: self, id, done, finished: false }
    }

    /// The objects the current transfer may have in flight now.
    pub fn set_level(&self, level: u32) {
        self.level.store(level, Ordering::Relaxed);
    }

    pub fn fail(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn largest_in_flight(&self, count: usize) -> Vec<(String, u64, u64)> {
        let in_flight = self.in_flight.lock().expect("progress lock");
        let mut all: Vec<_> =
            in_flight.values().map(|f| (f.name.clone(), f.size, f.done.load(Ordering::Relaxed))).collect();
        all.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        all.truncate(count);
        all
    }
}

/// One object's share of the counters.
pub struct ObjectProgress<'a> {
    counters: &'a Counters,
    id: u64,
    done: Arc<AtomicU64>,
    finished: bool,
}

impl ObjectProgress<'_> {
    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        self.counters.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The object is in place.
    pub fn finish(mut self) {
        self.finished = true;
        self.counters.objects_done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ObjectProgress<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.lock().expect("progress lock").remove(&self.id);
        if !self.finished {
            self.counters.bytes_done.fetch_sub(self.done.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// The thread that shows the counters; `finish` stops it after a last update.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    bars: Option<indicatif::MultiProgress>,
}

impl Ticker {
    pub fn start(counters: Arc<Counters>, mode: ProgressMode) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let mut multi = None;
        let thread = match mode {
            ProgressMode::Quiet => None,
            ProgressMode::Bars => {
                let stop = stop.clone();
                let shown =
                    indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(10));
                multi = Some(shown.clone());
                Some(std::thread::spawn(move || bars(&counters, &stop, &shown)))
            }
            ProgressMode::Lines(every) => {
                let stop = stop.clone();
                Some(std::thread::spawn(move || lines(&counters, &stop, every)))
            }
        };
        Ticker { stop, thread, bars: multi }
    }

    /// Runs `print` (a message to stderr) with the bars out of the way.
    pub fn suspend(&self, print: impl FnOnce()) {
        match &self.bars {
            Some(bars) => bars.suspend(print),
            None => print(),
        }
    }

    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn bars(counters: &Counters, stop: &AtomicBool, multi: &indicatif::MultiProgress) {
    use indicatif::{ProgressBar, ProgressStyle};
    let style = ProgressStyle::with_template(
        "{bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}  {msg}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    let file_style = ProgressStyle::with_template("  {bar:20} {binary_bytes}/{binary_total_bytes}  {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    // One bar per transfer: a finished transfer's bar stays as a line, the next gets its own.
    let mut bytes = multi.add(ProgressBar::new(0).with_style(style.clone()));
    // What the current bar showed last (its stage, its bytes), so it never goes backwards.
    let mut monotonic = Monotonic::default();
    // Up to three of the largest files in flight, each on its own line while it moves.
    let mut files: Vec<Option<ProgressBar>> = vec![None, None, None];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let now = counters.view();
        if now.stage != monotonic.stage && monotonic.stage != 0 {
            // The finished transfer's bar keeps its last state, as a line above.
            if let Some(last) = counters.previous_view() {
                let last = monotonic.shown(last);
                bytes.set_length(last.bytes_total);
                bytes.set_position(last.bytes_done);
                bytes.set_message(last.message());
            }
            bytes.finish();
            bytes = multi.add(ProgressBar::new(0).with_style(style.clone()));
        }
        let view = monotonic.shown(now);
        bytes.set_length(view.bytes_total);
        bytes.set_position(view.bytes_done);
        bytes.set_message(view.message());
        let largest = if stopping { Vec::new() } else { counters.largest_in_flight(files.len()) };
        for (slot, shown) in files.iter_mut().enumerate() {
            match (largest.get(slot), shown.as_ref()) {
                (Some((name, size, done)), bar) => {
                    let bar = match bar {
                        Some(bar) => bar.clone(),
                        None => {
                            let bar = multi.add(ProgressBar::new(*size).with_style(file_style.clone()));
                            *shown = Some(bar.clone());
                            bar
                        }
                    };
                    bar.set_length(*size);
                    bar.set_position(*done);
                    bar.set_message(crate::text::printable(name));
                }
                (None, Some(bar)) => {
                    bar.finish_and_clear();
                    multi.remove(bar);
                    *shown = None;
                }
                (None, None) => {}
            }
        }
        if stopping {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bytes.finish_and_clear();
    let _ = multi.clear();
}

fn lines(counters: &Counters, stop: &AtomicBool, every: Duration) {
    let started = Instant::now();
    let mut last = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if last.elapsed() >= every {
            last = Instant::now();
            print_line(counters, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100).min(every));
    }
    // The closing line, when there was something to move (else the report says it all, and
    // `0/0 objects, 0 B of 0 B` is only noise in a cron mail).
    if counters.objects_total.load(Ordering::Relaxed) > 0 {
        print_line(counters, started.elapsed());
    }
}

fn print_line(counters: &Counters, elapsed: Duration) {
    let view = counters.view();
    let done = counters.bytes_done.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let line = format!(
        "{} haul: {}, {} of {} ({}/s)",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        view.message(),
        human_bytes(view.bytes_done),
        human_bytes(view.bytes_total),
        human_bytes(rate as u64),
    );
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(index: usize, count: usize, name: &str, base: Totals) -> Stage {
        Stage { index, count, name: name.into(), base, planned: true, previous: None }
    }

    #[test]
    fn each_transfer_shows_its_own_totals_named_and_numbered() {
        // Transfer 1 of 2 planned 10 objects, 100 bytes; 4 done.
        let first = stage(1, 2, "daily", Totals::default());
        let now = Totals { objects_total: 10, bytes_total: 100, objects_done: 4, bytes_done: 40, failed: 0 };
        let view = View::of(now, Some(&first));
        assert_eq!((view.objects_done, view.objects_total, view.bytes_total), (4, 10, 100));
        assert_eq!(view.message(), "1/2 daily: 4/10 objects");
        // Transfer 2 begins after all of the first: its bar starts from nothing, not from the
        // run's total (which would make a full bar drop to half).
        let base = Totals { objects_total: 10, bytes_total: 100, objects_done: 10, bytes_done: 100, failed: 1 };
        let second = Stage { planned: false, ..stage(2, 2, "weekly", base) };
        assert!(second.previous.is_none());
        let view = View::of(base, Some(&second));
        assert_eq!(view.message(), "2/2 weekly: listing and planning");
        // Its first objects move while the listing goes on.
        let early = Totals { objects_total: 13, objects_done: 11, ..base };
        assert_eq!(View::of(early, Some(&second)).message(), "2/2 weekly: 1/3 objects, still listing");
        let now = Totals { objects_total: 11, bytes_total: 160, objects_done: 11, bytes_done: 160, failed: 1 };
        let view = View::of(now, Some(&stage(2, 2, "weekly", base)));
        assert_eq!(
            (view.objects_done, view.objects_total, view.bytes_done, view.bytes_total, view.failed),
            (1, 1, 60, 60, 0)
        );
        assert_eq!(view.message(), "2/2 weekly: 1/1 object");
        // A run of one transfer is not numbered.
        assert_eq!(View::of(now, Some(&stage(1, 1, "only", Totals::default()))).label.as_deref(), Some("only"));
    }

    #[test]
    fn the_message_says_how_many_objects_are_in_flight_while_some_are_left() {
        let view = View { objects_done: 3, objects_total: 10, level: 128, ..View::of(Totals::default(), None) };
        assert_eq!(view.message(), "3/10 objects, 128 in flight");
        assert_eq!(View { objects_done: 10, ..view.clone() }.message(), "10/10 objects");
    }

    #[test]
    fn a_bar_never_goes_backwards_within_a_transfer() {
        let mut monotonic = Monotonic::default();
        let mut shown = Vec::new();
        // A failed attempt takes 30 bytes back; the retry counts them again.
        for (done, total) in [(0, 0), (0, 100), (50, 100), (20, 100), (60, 100), (100, 100)] {
            let view = View {
                label: None,
                stage: 1,
                planning: false,
                objects_done: 0,
                objects_total: 1,
                bytes_done: done,
                bytes_total: total,
                failed: 0,
                level: 0,
            };
            let view = monotonic.shown(view);
            shown.push((view.bytes_done, view.bytes_total));
        }
        assert!(shown.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1), "{shown:?}");
        assert_eq!(shown.last(), Some(&(100, 100)));
        // The next transfer starts its own bar from zero.
        let next = View { stage: 2, bytes_done: 5, bytes_total: 10, ..View::of(Totals::default(), None) };
        assert_eq!(monotonic.shown(next).bytes_done, 5);
    }
}
