//! A bandwidth cap shared by all workers of a transfer (`bandwidth`, `--bwlimit`): a token
//! bucket kept as a clock. Each piece of data reserves the time it takes at the cap, after the
//! reservations before it; its mover waits for the start of its slot. Over any stretch the bytes
//! moved stay within the cap (plus the one piece in flight), however many workers share it.
//!
//! Written here rather than taken from `governor`: governor refuses a request larger than its
//! burst, and a piece here is up to a whole part (5 GiB); a reservation clock needs no burst.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    bytes_per_second: f64,
    /// When the reservations made so far are used up.
    next_free: Mutex<Instant>,
}

impl Throttle {
    pub fn new(bytes_per_second: u64) -> Throttle {
        Throttle { bytes_per_second: bytes_per_second.max(1) as f64, next_free: Mutex::new(Instant::now()) }
    }

    /// Reserves `bytes` and returns when their slot starts.
    fn reserve(&self, bytes: u64, now: Instant) -> Instant {
        let mut next_free = self.next_free.lock().expect("throttle lock");
        // An idle cap saves nothing up: a slot never starts before now.
        let start = (*next_free).max(now);
        *next_free = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        start
    }

    /// Waits until `bytes` may move.
    pub async fn take(&self, bytes: u64) {
        let start = self.reserve(bytes, Instant::now());
        tokio::time::sleep_until(start.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_queue_at_the_cap_and_an_idle_cap_saves_nothing() {
        let throttle = Throttle::new(1000);
        let t0 = Instant::now();
        // Four workers each reserve 500 bytes at once: slots at 0, 0.5, 1.0 and 1.5 s.
        let starts: Vec<Duration> = (0..4).map(|_| throttle.reserve(500, t0) - t0).collect();
        let expected = [0.0, 0.5, 1.0, 1.5];
        for (start, expected) in starts.iter().zip(expected) {
            assert!((start.as_secs_f64() - expected).abs() < 0.01, "{starts:?}");
        }
        // Ten seconds of nothing, then a reservation starts at once, not ten seconds early.
        let later = t0 + Duration::from_secs(12);
        assert_eq!(throttle.reserve(100, later), later);
        assert_eq!(throttle.reserve(100, later) - later, Duration::from_millis(100));
    }
}
