//! When a failed delivery or GitHub write is tried again, and when it is given up: pure
//! arithmetic on its failures so far and the times passed in.

use std::time::{Duration, SystemTime};

/// The delay after the first failure; each further failure doubles it.
pub const RETRY_FIRST_DELAY: Duration = Duration::from_secs(1);
/// The delay never grows beyond this.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(10 * 60);
/// How long after its first failure an item is still tried again; a failure after that is final.
pub const RETRY_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest a rate limit is waited for, whatever reset time GitHub names (its hourly
/// window ends within the hour).
pub const RATE_LIMIT_WAIT_MAX: Duration = Duration::from_secs(3600);

/// What kind of failure an attempt met, as the one who saw it classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// It passes: an outage, a timeout, a busy database.
    Transient,
    /// GitHub's rate limit, which ends at the given time.
    RateLimited { until: SystemTime },
    /// Trying again cannot help: GitHub refused the request itself, or what it is about is gone.
    Permanent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time.
    RetryAt(SystemTime),
    /// Record it failed for good.
    GiveUp,
}

/// One failed attempt and the item's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// Failed attempts before this one.
    pub earlier_failures: u32,
    /// When the first of them failed; `None` when this is the first failure.
    pub first_failure_at: Option<SystemTime>,
    pub now: SystemTime,
}

impl Failure {
    /// A permanent failure is given up at once; any other is retried after
    /// `RETRY_FIRST_DELAY * 2^earlier_failures` (at most `RETRY_MAX_DELAY`), or when a rate
    /// limit ends (at most `RATE_LIMIT_WAIT_MAX` away), until `RETRY_GIVE_UP_AFTER` has passed
    /// since the first failure.
    pub fn decide(&self) -> AfterFailure {
        let first = self.first_failure_at.unwrap_or(self.now);
        let failing_for = self.now.duration_since(first).unwrap_or(Duration::ZERO);
        if failing_for >= RETRY_GIVE_UP_AFTER {
            return AfterFailure::GiveUp;
        }
        match self.kind {
            FailureKind::Permanent => AfterFailure::GiveUp,
            FailureKind::Transient => AfterFailure::RetryAt(self.now + self.backoff()),
            FailureKind::RateLimited { until } => {
                let wait = until.duration_since(self.now).unwrap_or(Duration::ZERO);
                AfterFailure::RetryAt(self.now + wait.clamp(RETRY_FIRST_DELAY, RATE_LIMIT_WAIT_MAX))
            }
        }
    }

    /// The delay this failure earns: doubling from the first, capped.
    pub fn backoff(&self) -> Duration {
        let doublings = self.earlier_failures.min(31);
        RETRY_FIRST_DELAY
            .checked_mul(1 << doublings)
            .map_or(RETRY_MAX_DELAY, |delay| delay.min(RETRY_MAX_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn transient(earlier_failures: u32, first: Option<u64>, now: u64) -> AfterFailure {
        let failure = Failure {
            kind: FailureKind::Transient,
            earlier_failures,
            first_failure_at: first.map(at),
            now: at(now),
        };
        failure.decide()
    }

    #[test]
    fn delays_double_from_one_second_to_ten_minutes() {
        let delays: Vec<u64> = (0..14)
            .map(|n| match transient(n, Some(0), 100) {
                AfterFailure::RetryAt(at_time) => {
                    at_time.duration_since(at(100)).unwrap().as_secs()
                }
                AfterFailure::GiveUp => panic!("gave up after {n} failures"),
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600, 600]);
        let many = transient(u32::MAX, Some(0), 100);
        assert_eq!(many, AfterFailure::RetryAt(at(100 + 600)));
    }

    #[test]
    fn the_first_failure_is_retried_after_a_second() {
        assert_eq!(transient(0, None, 5), AfterFailure::RetryAt(at(6)));
    }

    #[test]
    fn gives_up_once_a_day_has_passed_since_the_first_failure() {
        let day = RETRY_GIVE_UP_AFTER.as_secs();
        assert_eq!(
            transient(150, Some(10), 10 + day - 1),
            AfterFailure::RetryAt(at(10 + day + 599))
        );
        assert_eq!(transient(150, Some(10), 10 + day), AfterFailure::GiveUp);
        assert_eq!(transient(3, Some(10), 10 + 2 * day), AfterFailure::GiveUp);
        // A clock that went back counts as no time passed.
        assert_eq!(transient(0, Some(50), 10), AfterFailure::RetryAt(at(11)));
    }

    #[test]
    fn a_permanent_failure_is_given_up_at_once() {
        let failure = Failure {
            kind: FailureKind::Permanent,
            earlier_failures: 0,
            first_failure_at: None,
            now: at(0),
        };
        assert_eq!(failure.decide(), AfterFailure::GiveUp);
    }

    #[test]
    fn a_rate_limit_is_waited_out_within_bounds() {
        let limited = |until: u64, now: u64, first: Option<u64>| {
            let kind = FailureKind::RateLimited { until: at(until) };
            Failure { kind, earlier_failures: 0, first_failure_at: first.map(at), now: at(now) }
                .decide()
        };
        // Until the reset it names, however few failures came before.
        assert_eq!(limited(1_000, 100, None), AfterFailure::RetryAt(at(1_000)));
        // A reset already past is tried again after the first delay, not at once.
        assert_eq!(limited(50, 100, None), AfterFailure::RetryAt(at(101)));
        // A reset days away is waited for at most an hour.
        assert_eq!(limited(900_000, 100, None), AfterFailure::RetryAt(at(100 + 3600)));
        // Rate limits do not outlast the day either.
        let day = RETRY_GIVE_UP_AFTER.as_secs();
        assert_eq!(limited(day + 500, day + 100, Some(0)), AfterFailure::GiveUp);
    }
}
