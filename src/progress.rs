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
    in_flight: Mutex<BTreeMap<u64, InFlight>>,
    next_id: AtomicU64,
}

struct InFlight {
    name: String,
    size: u64,
    done: Arc<AtomicU64>,
}

/// Files at least this big get their own line on a terminal.
const SHOWN_IN_FLIGHT: u64 = 8 * 1024 * 1024;

impl Counters {
    pub fn add_planned(&self, objects: u64, bytes: u64) {
        self.objects_total.fetch_add(objects, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
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
    let bytes = multi.add(ProgressBar::new(0));
    bytes.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}  {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let file_style = ProgressStyle::with_template("  {bar:20} {binary_bytes}/{binary_total_bytes}  {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    // Up to three of the largest files in flight, each on its own line while it moves.
    let mut files: Vec<Option<ProgressBar>> = vec![None, None, None];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        bytes.set_length(counters.bytes_total.load(Ordering::Relaxed));
        bytes.set_position(counters.bytes_done.load(Ordering::Relaxed));
        bytes.set_message(objects_line(counters));
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
    let done = counters.bytes_done.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let line = format!(
        "{} haul: {}, {} of {} ({}/s)",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        objects_line(counters),
        human_bytes(done),
        human_bytes(counters.bytes_total.load(Ordering::Relaxed)),
        human_bytes(rate as u64),
    );
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn objects_line(counters: &Counters) -> String {
    let failed = counters.failed.load(Ordering::Relaxed);
    let mut line = format!(
        "{}/{} objects",
        counters.objects_done.load(Ordering::Relaxed),
        counters.objects_total.load(Ordering::Relaxed)
    );
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    line
}
