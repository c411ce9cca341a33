//! How many objects a transfer keeps in flight: `concurrency: N` exactly, or with `auto` (the
//! default) a level found as the transfer runs.
//!
//! Objects a second are bounded by objects in flight / time per object (Little's law): at a
//! 100 ms round trip, 64 small objects in flight move at most 640 a second, however fast the
//! server. No fixed number suits every link: on 127.0.0.1 more than 64 gains nothing and
//! costs the server CPU; across regions it takes several hundred. So `auto` climbs, as TCP's
//! slow start and the .NET thread pool's hill climbing do: it starts at 64 (or, for a far
//! server, from the round trip: `start_for`), and while every worker is busy it doubles the
//! level each window and keeps the step only if objects or bytes a second grew by a tenth;
//! otherwise it goes back to the level before, holds there for a while, and later tries a
//! smaller step. A server's answer asking to slow down (503 SlowDown, 429) or a failed
//! connection halves the level at once (at most once a window), and a `Retry-After` pauses
//! new starts until then (see `s3::pressure`).
//!
//! The decisions (`Climb`) are pure and unit-tested; `steer` feeds them what it samples.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::manifest::Concurrency;
use crate::progress::Counters;

/// Permits that can be taken away while they are held: a lower level takes effect as passes
/// come back.
pub(super) struct Gate {
    permits: Arc<tokio::sync::Semaphore>,
    /// Permits to forget as they come back (a lower level not yet in effect).
    debt: AtomicUsize,
}

/// One permit of a gate, returned when dropped (or forgotten, while the gate owes some).
pub(super) struct Pass {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    gate: Arc<Gate>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        if self.gate.take_debt()
            && let Some(permit) = self.permit.take()
        {
            permit.forget();
        }
    }
}

impl Gate {
    pub(super) fn new(permits: u32) -> Arc<Gate> {
        Arc::new(Gate { permits: Arc::new(tokio::sync::Semaphore::new(permits as usize)), debt: AtomicUsize::new(0) })
    }

    /// Waits for a permit (in turn: the semaphore is fair).
    pub(super) async fn enter(self: &Arc<Self>) -> Pass {
        let permit = self.permits.clone().acquire_owned().await.expect("a gate is never closed");
        Pass { permit: Some(permit), gate: self.clone() }
    }

    /// From `from` permits to `to`.
    fn resize(&self, from: u32, to: u32) {
        if to > from {
            let mut grow = (to - from) as usize;
            // Paying back the debt first: those permits were never forgotten.
            let _ = self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                let paid = debt.min(grow);
                grow = (to - from) as usize - paid;
                Some(debt - paid)
            });
            self.permits.add_permits(grow);
        } else if to < from {
            let shrink = (from - to) as usize;
            let forgotten = self.permits.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    fn take_debt(&self) -> bool {
        self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| debt.checked_sub(1)).is_ok()
    }
}

/// A transfer's level: the gates for objects and for parts of large objects, both sized to
/// it, and what the report says of it.
pub(super) struct Level {
    pub(super) objects: Arc<Gate>,
    pub(super) parts: Arc<Gate>,
    now: AtomicU32,
    adaptive: bool,
    /// Where the level started: raised once from the round trip when objects begin to move
    /// (`start_for`), unless an earlier transfer between the same servers found it.
    start: AtomicU32,
    start_from_round_trip: bool,
    most: u32,
    highest: AtomicU32,
    /// Objects being worked on (a pass held, not waiting for one).
    busy: AtomicU32,
    /// Times the level was lowered because the server asked to slow down or connections failed.
    lowered: AtomicU32,
    /// `s3::pressure::counts` when the transfer started.
    pressure_before: (u64, u64),
    /// The level that proved to pay: `now` unless a step up is still being judged.
    proven: AtomicU32,
}

impl Level {
    /// The level of a transfer set to `concurrency`, within the open-file limit
    /// (`limits::objects_in_flight`). With `auto` it starts at `found`, where an earlier
    /// transfer between the same servers ended, if one did.
    pub(super) fn new(concurrency: Concurrency, found: Option<u32>) -> Arc<Level> {
        let adaptive = concurrency == Concurrency::Auto;
        let most = crate::limits::objects_in_flight(concurrency.most()).max(1);
        let start = found.filter(|_| adaptive).unwrap_or(concurrency.starting()).clamp(1, most);
        let start_from_round_trip = adaptive && found.is_none();
        if start_from_round_trip {
            crate::s3::pressure::forget_quickest_answer();
        }
        Arc::new(Level {
            objects: Gate::new(start),
            parts: Gate::new(start),
            now: AtomicU32::new(start),
            adaptive,
            start: AtomicU32::new(start),
            start_from_round_trip,
            most,
            highest: AtomicU32::new(start),
            busy: AtomicU32::new(0),
            lowered: AtomicU32::new(0),
            pressure_before: crate::s3::pressure::counts(),
            proven: AtomicU32::new(start),
        })
    }

    /// The most workers it may ever need (a fixed level's own).
    pub(super) fn most(&self) -> u32 {
        self.most
    }

    pub(super) fn adaptive(&self) -> bool {
        self.adaptive
    }

    pub(super) fn now(&self) -> u32 {
        self.now.load(Ordering::Acquire)
    }

    fn set(&self, level: u32) {
        let before = self.now.swap(level, Ordering::AcqRel);
        self.objects.resize(before, level);
        self.parts.resize(before, level);
        self.highest.fetch_max(level, Ordering::AcqRel);
    }

    /// Marks one object as being worked on until the guard drops.
    pub(super) fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(&self.busy)
    }

    pub(super) fn summary(&self) -> crate::report::LevelReport {
        let (answers, connections) = crate::s3::pressure::counts();
        crate::report::LevelReport {
            adaptive: self.adaptive,
            start: self.start.load(Ordering::Acquire),
            settled: self.now(),
            highest: self.highest.load(Ordering::Acquire),
            lowered: self.lowered.load(Ordering::Acquire),
            slow_down_answers: answers - self.pressure_before.0,
            failed_connections: connections - self.pressure_before.1,
            proven: self.proven.load(Ordering::Acquire),
        }
    }
}

pub(super) struct Busy<'a>(&'a AtomicU32);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How often `steer` samples.
const TICK: Duration = Duration::from_millis(25);
/// The shortest window a rate is judged over.
const SHORTEST_WINDOW: Duration = Duration::from_millis(400);
const LONGEST_WINDOW: Duration = Duration::from_secs(5);
/// Windows as long as this many objects take each: enough rounds that the ramp-up after a
/// step is a small part of the window.
const ROUNDS_PER_WINDOW: u32 = 6;

/// Follows the transfer while it runs and moves its level (`auto` only; a fixed level has
/// nothing to steer); ends when `stop` is notified.
/// `raised` is told each new level (to have a worker for each object it allows).
pub(super) async fn steer(
    level: Arc<Level>,
    counters: Arc<Counters>,
    stop: Arc<tokio::sync::Notify>,
    raised: impl Fn(u32),
) {
    let mut climb = Climb::new(level.now(), level.most);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pressure_now = || {
        let (answers, connections) = crate::s3::pressure::counts();
        answers + connections
    };
    let mut pressure = pressure_now();
    // The level, the display's copy of it, and a worker for each object it allows.
    let move_to = |next: u32| {
        level.set(next);
        counters.set_level(next);
        raised(next);
    };
    let mut window = WindowStart::now(&counters);
    let mut window_length = SHORTEST_WINDOW;
    let mut last_cut: Option<Instant> = None;
    let mut start_from_round_trip = level.start_from_round_trip;
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let busy = level.busy.load(Ordering::Acquire);
        // Once objects move and a server has answered (the listing, or the first objects),
        // how long the quickest answer took says how far the server is; until the first
        // window ends, after which the climb has it in hand.
        if let Some(answer) = crate::s3::pressure::quickest_answer().filter(|_| start_from_round_trip && busy > 0) {
            start_from_round_trip = false;
            let start = start_for(answer, level.now(), level.most);
            if start > level.now() {
                tracing::debug!(level = start, "a far server: objects in flight start higher");
                climb = Climb::new(start, level.most);
                level.start.store(start, Ordering::Release);
                level.proven.store(start, Ordering::Release);
                move_to(start);
                window = WindowStart::now(&counters);
                continue;
            }
        }
        window.sample(busy);
        let seen = pressure_now();
        let new_pressure = seen.saturating_sub(pressure);
        pressure = seen;
        if new_pressure > 0 {
            // Once a window at most: the answers of requests sent before the cut are still
            // coming in.
            if last_cut.is_none_or(|at| at.elapsed() >= window_length) {
                let lowered = climb.slow_down();
                tracing::debug!(level = lowered, "the server asked to slow down: objects in flight lowered");
                move_to(lowered);
                level.proven.store(climb.proven(), Ordering::Release);
                level.lowered.fetch_add(1, Ordering::AcqRel);
                last_cut = Some(Instant::now());
                window = WindowStart::now(&counters);
            }
            continue;
        }
        if window.started.elapsed() < window_length {
            continue;
        }
        start_from_round_trip = false;
        let seen = window.end(&counters, level.now());
        if let Some(per_object) = seen.time_per_object() {
            window_length = (per_object * ROUNDS_PER_WINDOW).clamp(SHORTEST_WINDOW, LONGEST_WINDOW);
        }
        let next = climb.observe(&seen);
        level.proven.store(climb.proven(), Ordering::Release);
        if next != level.now() {
            tracing::debug!(
                from = level.now(),
                to = next,
                objects_per_s = seen.objects_per_second() as u64,
                "objects in flight changed"
            );
            move_to(next);
        }
        window = WindowStart::now(&counters);
    }
}

/// What one object takes at `auto`'s first level when the server is near: 64 in flight keep
/// the cores of this project's test machine busy with objects of about this long (W1 at 0 ms:
/// about 2,000 objects a second).
const NEAR_OBJECT_TIME: Duration = Duration::from_millis(25);

/// Where `auto` starts when the quickest answer took `answer`: doubled from `start` for each
/// doubling of the time an object takes (Little's law: the same objects a second take as many
/// more in flight), so a far server does not wait out the climb's first windows (at 100 ms
/// they took about 0.9 s of a 4-second W1 download). A near one (under twice
/// `NEAR_OBJECT_TIME`) keeps `start`.
fn start_for(answer: Duration, start: u32, most: u32) -> u32 {
    let mut level = start;
    let mut covered = NEAR_OBJECT_TIME * 2;
    while answer >= covered && level < most {
        level = level.saturating_mul(2);
        covered *= 2;
    }
    level.min(most)
}

/// The counters when a window began, and the busy workers sampled since.
struct WindowStart {
    started: Instant,
    objects: u64,
    bytes: u64,
    busy_sum: u64,
    samples: u64,
}

impl WindowStart {
    fn now(counters: &Counters) -> WindowStart {
        WindowStart {
            started: Instant::now(),
            objects: counters.objects_done.load(Ordering::Relaxed),
            bytes: counters.bytes_done.load(Ordering::Relaxed),
            busy_sum: 0,
            samples: 0,
        }
    }

    fn sample(&mut self, busy: u32) {
        self.busy_sum += u64::from(busy);
        self.samples += 1;
    }

    fn end(&self, counters: &Counters, level: u32) -> Window {
        Window {
            level,
            elapsed: self.started.elapsed(),
            objects: counters.objects_done.load(Ordering::Relaxed).saturating_sub(self.objects),
            bytes: counters.bytes_done.load(Ordering::Relaxed).saturating_sub(self.bytes),
            busy: if self.samples == 0 { 0.0 } else { self.busy_sum as f64 / self.samples as f64 },
        }
    }
}

/// What one window of the transfer showed.
#[derive(Debug, Clone, Copy)]
struct Window {
    level: u32,
    elapsed: Duration,
    objects: u64,
    bytes: u64,
    /// Objects being worked on, on average.
    busy: f64,
}

impl Window {
    fn objects_per_second(&self) -> f64 {
        self.objects as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// How long one object took, on average (Little's law: busy workers / objects a second).
    fn time_per_object(&self) -> Option<Duration> {
        (self.objects > 0).then(|| Duration::from_secs_f64(self.busy / self.objects_per_second()))
    }

    /// Every worker had an object nearly all the time: more might move more.
    fn saturated(&self) -> bool {
        self.busy >= f64::from(self.level) * SATURATED
    }
}

/// Busy workers, as a share of the level, from which a window counts as saturated.
const SATURATED: f64 = 0.8;
/// How much better a step up must do to be kept.
const GAIN: f64 = 1.10;
/// Windows to stay at a level after a step that did not pay, or after a slow-down.
const HOLD_WINDOWS: u32 = 8;

/// The level's decisions, from what each window showed.
#[derive(Debug)]
struct Climb {
    level: u32,
    most: u32,
    /// The level before the step up being judged, and what it moved.
    before: Option<(u32, Rate)>,
    /// Windows left before trying higher again.
    hold: u32,
    /// A step did not pay once: later steps are smaller.
    found_top: bool,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    objects: f64,
    bytes: f64,
}

impl Climb {
    fn new(level: u32, most: u32) -> Climb {
        Climb { level, most, before: None, hold: 0, found_top: false }
    }

    /// The level for the next window.
    fn observe(&mut self, window: &Window) -> u32 {
        let rate = Rate { objects: window.objects_per_second(), bytes: window.bytes_per_second() };
        if self.hold > 0 {
            self.hold -= 1;
            return self.level;
        }
        if let Some((lower, lower_rate)) = self.before.take() {
            let paid = rate.objects >= lower_rate.objects * GAIN || rate.bytes >= lower_rate.bytes * GAIN;
            if !paid {
                self.level = lower;
                self.hold = HOLD_WINDOWS;
                self.found_top = true;
                return self.level;
            }
        }
        if window.saturated() && self.level < self.most {
            self.before = Some((self.level, rate));
            self.level = self.step_up();
        }
        self.level
    }

    /// The level known to pay: the one before a step up still being judged.
    fn proven(&self) -> u32 {
        self.before.map_or(self.level, |(lower, _)| lower)
    }

    fn step_up(&self) -> u32 {
        let next = if self.found_top { self.level + (self.level / 4).max(1) } else { self.level * 2 };
        next.min(self.most)
    }

    /// The server asked to slow down, or connections failed: half as many.
    fn slow_down(&mut self) -> u32 {
        self.level = (self.level / 2).max(1);
        self.before = None;
        self.hold = HOLD_WINDOWS;
        self.found_top = true;
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_server_starts_higher_in_doublings() {
        let ms = Duration::from_millis;
        assert_eq!(start_for(ms(1), 64, 512), 64, "a near server");
        assert_eq!(start_for(ms(49), 64, 512), 64);
        assert_eq!(start_for(ms(50), 64, 512), 128);
        assert_eq!(start_for(ms(104), 64, 512), 256, "a 100 ms round trip");
        assert_eq!(start_for(ms(210), 64, 512), 512, "200 ms");
        assert_eq!(start_for(ms(5_000), 64, 512), 512, "never above the most");
        assert_eq!(start_for(ms(5_000), 64, 100), 100);
    }

    /// A window at `level` moving `objects` a second with every worker busy.
    fn busy_window(level: u32, objects: u64) -> Window {
        Window { level, elapsed: Duration::from_secs(1), objects, bytes: objects * 8192, busy: f64::from(level) }
    }

    /// A link where each object takes `per_object`, with a server that moves at most
    /// `ceiling` objects a second: what a window at `level` moves.
    fn link(level: u32, per_object: f64, ceiling: f64) -> Window {
        busy_window(level, (f64::from(level) / per_object).min(ceiling) as u64)
    }

    fn run(climb: &mut Climb, windows: usize, per_object: f64, ceiling: f64) -> Vec<u32> {
        (0..windows)
            .map(|_| {
                let level = climb.level;
                climb.observe(&link(level, per_object, ceiling))
            })
            .collect()
    }

    #[test]
    fn a_far_server_gets_more_in_flight_until_it_stops_paying() {
        // 100 ms per object, a server that does 2,700 objects a second: 256 in flight move
        // 2,560, 512 only 5% more.
        let mut climb = Climb::new(64, 512);
        assert_eq!(climb.observe(&link(64, 0.1, 2700.0)), 128);
        assert_eq!(climb.proven(), 64, "128 is not judged yet");
        assert_eq!(climb.observe(&link(128, 0.1, 2700.0)), 256);
        assert_eq!(climb.proven(), 128);
        let mut climb = Climb::new(64, 512);
        let levels = run(&mut climb, 4, 0.1, 2700.0);
        assert_eq!(levels, [128, 256, 512, 256], "doubled while it paid, back when 512 did not");
        // Held there, then a smaller step, which does not pay either.
        let later = run(&mut climb, HOLD_WINDOWS as usize + 2, 0.1, 2700.0);
        assert!(later[..HOLD_WINDOWS as usize].iter().all(|&level| level == 256), "{later:?}");
        assert_eq!(later[HOLD_WINDOWS as usize..], [320, 256]);
    }

    #[test]
    fn a_near_server_stays_where_it_started() {
        // 1 ms per object, a server that does 5,000 a second: 64 in flight are plenty.
        let mut climb = Climb::new(64, 512);
        let levels = run(&mut climb, 3, 0.001, 5000.0);
        assert_eq!(levels, [128, 64, 64], "one probe, then back and held");
    }

    #[test]
    fn no_step_while_workers_wait_for_work() {
        let mut climb = Climb::new(64, 512);
        let idle = Window { busy: 20.0, ..busy_window(64, 200) };
        assert_eq!(climb.observe(&idle), 64);
        assert_eq!(climb.observe(&idle), 64);
    }

    #[test]
    fn slow_down_halves_and_holds() {
        let mut climb = Climb::new(64, 512);
        assert_eq!(climb.slow_down(), 32);
        assert_eq!(climb.slow_down(), 16);
        for _ in 0..HOLD_WINDOWS {
            assert_eq!(climb.observe(&busy_window(16, 100_000)), 16);
        }
        // Then it tries again, in the smaller steps.
        assert_eq!(climb.observe(&busy_window(16, 160)), 20);
        let mut floor = Climb::new(1, 512);
        assert_eq!(floor.slow_down(), 1, "never below one");
    }

    #[test]
    fn never_above_the_most() {
        let mut climb = Climb::new(64, 100);
        assert_eq!(run(&mut climb, 3, 1.0, f64::MAX), [100, 100, 100]);
    }

    #[test]
    fn time_per_object_is_busy_workers_over_the_rate() {
        let window = busy_window(64, 640);
        assert_eq!(window.time_per_object(), Some(Duration::from_millis(100)));
        assert_eq!(Window { objects: 0, ..window }.time_per_object(), None);
    }

    #[tokio::test]
    async fn a_gate_lowered_while_its_passes_are_held_takes_effect_as_they_return() {
        let gate = Gate::new(4);
        let held: Vec<Pass> = futures_util::future::join_all((0..4).map(|_| gate.enter())).await;
        gate.resize(4, 2);
        drop(held);
        assert_eq!(gate.permits.available_permits(), 2);
        // Raised again before the debt was paid: the debt goes first.
        let held: Vec<Pass> = futures_util::future::join_all((0..2).map(|_| gate.enter())).await;
        gate.resize(2, 1);
        gate.resize(1, 3);
        drop(held);
        assert_eq!(gate.permits.available_permits(), 3);
    }
}
