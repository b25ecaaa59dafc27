//! When to try again: jittered exponential backoff, and a pause built on it, as pure arithmetic.

use std::time::{Duration, Instant};

/// The delay before the first retry.
pub const BACKOFF_INITIAL_DELAY: Duration = Duration::from_millis(500);
/// The delay never grows beyond this.
pub const BACKOFF_MAX_DELAY: Duration = Duration::from_secs(30);
/// A connection that lasted this long was a good one: the next failure starts over.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// Consecutive failures so far, and the delays they earn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// Records one more failure and returns how long to wait before the next attempt.
    ///
    /// `connected_for` is how long the attempt that just ended stayed connected (zero if it
    /// never did); `jitter` is a random number in `[0, 1]`. The delay is between half and all of
    /// `BACKOFF_INITIAL_DELAY * 2^(failures - 1)`, capped at `BACKOFF_MAX_DELAY`, so that many
    /// runners that lost the same server do not come back in step.
    pub fn next_delay(&mut self, connected_for: Duration, jitter: f64) -> Duration {
        if connected_for >= BACKOFF_RESET_AFTER {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let base = self.base_delay();
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 1.0 };
        base / 2 + base.mul_f64(jitter) / 2
    }

    /// Consecutive failures since the last good connection, counting the one just recorded.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before jitter: doubling from the initial delay, capped.
    fn base_delay(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        BACKOFF_INITIAL_DELAY
            .checked_mul(1 << doublings)
            .map_or(BACKOFF_MAX_DELAY, |d| d.min(BACKOFF_MAX_DELAY))
    }
}

/// A pause shared by everything that waits on one thing (GitHub's checkout tokens): after each
/// failure nobody tries again before the backoff's delay has passed; a success ends it.
#[derive(Debug, Clone, Default)]
pub struct Pause {
    backoff: Backoff,
    until: Option<Instant>,
}

impl Pause {
    /// Whether trying now is too soon.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Records a failure at `now` (`jitter` as for [`Backoff::next_delay`]); returns how long
    /// the pause now lasts.
    pub fn failed(&mut self, now: Instant, jitter: f64) -> Duration {
        let delay = self.backoff.next_delay(Duration::ZERO, jitter);
        self.until = Some(now + delay);
        delay
    }

    /// Ends the pause and starts the backoff over.
    pub fn succeeded(&mut self) {
        *self = Pause::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_lasts_its_delay_grows_with_failures_and_ends_on_success() {
        let start = Instant::now();
        let mut pause = Pause::default();
        assert!(!pause.is_paused(start));
        let first = pause.failed(start, 1.0);
        assert_eq!(first, BACKOFF_INITIAL_DELAY);
        assert!(pause.is_paused(start + first - Duration::from_millis(1)));
        assert!(!pause.is_paused(start + first));
        let second = pause.failed(start + first, 1.0);
        assert_eq!(second, 2 * BACKOFF_INITIAL_DELAY);
        pause.succeeded();
        assert!(!pause.is_paused(start + first));
        assert_eq!(pause.failed(start, 1.0), BACKOFF_INITIAL_DELAY);
    }

    const NEVER: Duration = Duration::ZERO;

    #[test]
    fn delays_double_from_half_a_second_to_thirty_seconds() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> =
            (0..10).map(|_| backoff.next_delay(NEVER, 1.0).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
        assert_eq!(backoff.failures(), 10);
    }

    #[test]
    fn jitter_spreads_a_delay_between_half_and_all_of_it() {
        let mut low = Backoff::new();
        let mut high = Backoff::new();
        for _ in 0..3 {
            low.next_delay(NEVER, 0.0);
            high.next_delay(NEVER, 1.0);
        }
        assert_eq!(low.next_delay(NEVER, 0.0), Duration::from_secs(2));
        assert_eq!(high.next_delay(NEVER, 1.0), Duration::from_secs(4));
        let mut mid = Backoff::new();
        assert_eq!(mid.next_delay(NEVER, 0.5), Duration::from_millis(375));
    }

    #[test]
    fn jitter_out_of_range_never_exceeds_the_cap() {
        for jitter in [-1.0, 2.0, f64::NAN, f64::INFINITY] {
            let mut backoff = Backoff::new();
            for _ in 0..40 {
                let delay = backoff.next_delay(NEVER, jitter);
                assert!(delay <= BACKOFF_MAX_DELAY, "{jitter}: {delay:?}");
                assert!(delay >= BACKOFF_INITIAL_DELAY / 2, "{jitter}: {delay:?}");
            }
        }
    }

    #[test]
    fn a_connection_that_lasted_a_minute_starts_over() {
        let mut backoff = Backoff::new();
        for _ in 0..8 {
            backoff.next_delay(Duration::from_secs(5), 1.0);
        }
        assert_eq!(backoff.next_delay(Duration::from_secs(59), 1.0), BACKOFF_MAX_DELAY);
        assert_eq!(backoff.next_delay(BACKOFF_RESET_AFTER, 1.0), BACKOFF_INITIAL_DELAY);
        assert_eq!(backoff.failures(), 1);
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut backoff = Backoff { failures: u32::MAX - 1 };
        assert_eq!(backoff.next_delay(NEVER, 1.0), BACKOFF_MAX_DELAY);
        assert_eq!(backoff.next_delay(NEVER, 1.0), BACKOFF_MAX_DELAY);
        assert_eq!(backoff.failures(), u32::MAX);
    }
}
