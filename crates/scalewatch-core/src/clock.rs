//! The hot-path clock: nanoseconds since a process-wide origin, read from the TSC where
//! the CPU offers a stable one (through `quanta`), else the OS monotonic clock.

use std::sync::OnceLock;
use std::time::Duration;

/// One calibrated clock and its first raw reading. Reading the clock's raw source and
/// scaling the difference skips what `quanta::Instant::now` does on top (the global clock
/// lookup with its mock check, and `Duration` arithmetic in 128 bits).
struct Origin {
    clock: quanta::Clock,
    raw: u64,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();

/// Nanoseconds since the process-wide origin: monotonic as the clock source is (an
/// invariant TSC, else the OS monotonic clock), never below 0, and cheap (a TSC read and a
/// multiply-shift where the CPU has a stable TSC).
#[inline]
pub fn now_nanos() -> u64 {
    let origin = ORIGIN.get_or_init(|| {
        let clock = quanta::Clock::new();
        let raw = clock.raw();
        Origin { clock, raw }
    });
    origin.clock.delta_as_nanos(origin.raw, origin.clock.raw())
}

/// Seconds between two readings of [`now_nanos`], as a histogram value.
#[inline]
pub fn seconds_between(start: u64, end: u64) -> f64 {
    end.saturating_sub(start) as f64 / 1e9
}

/// Converts a reading delta to a [`Duration`].
#[inline]
pub fn duration_between(start: u64, end: u64) -> Duration {
    Duration::from_nanos(end.saturating_sub(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_monotonic_and_tracks_wall_time() {
        let a = now_nanos();
        std::thread::sleep(Duration::from_millis(20));
        let b = now_nanos();
        assert!(b > a);
        let slept = duration_between(a, b);
        assert!(slept >= Duration::from_millis(19), "slept {slept:?}");
        assert!((seconds_between(a, b) - slept.as_secs_f64()).abs() < 1e-9);
        assert_eq!(seconds_between(b, a), 0.0);
    }
}
