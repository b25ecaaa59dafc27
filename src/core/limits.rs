//! How many connections a server holds, and how long it waits after failing to accept one, as
//! pure arithmetic on the open files limit and the count of failures.

use std::time::Duration;

/// SSH connections that have not authenticated, held at once; more are closed on arrival.
pub const SSH_UNAUTHENTICATED_MAX: usize = 1000;
/// HTTP connections held at once; more are answered 503 and closed on arrival.
pub const HTTP_CONNECTIONS_MAX: usize = 4096;
/// The first pause after accepting a connection failed (out of files and the like).
pub const ACCEPT_BACKOFF_INITIAL: Duration = Duration::from_millis(10);
/// The pause doubles up to this while accepting keeps failing.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// `max`, or half of the open files limit if that is lower (and never zero), so that one kind
/// of connection cannot use every file the process may open.
pub fn capped_by_file_limit(max: usize, file_limit: u64) -> usize {
    let half = usize::try_from(file_limit / 2).unwrap_or(usize::MAX);
    max.min(half).max(1)
}

/// The pause between failed accepts: doubling from [`ACCEPT_BACKOFF_INITIAL`] to
/// [`ACCEPT_BACKOFF_MAX`], from the start again after a success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    /// Records a failure; returns how long to pause before accepting again.
    pub fn failed(&mut self) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        ACCEPT_BACKOFF_INITIAL
            .checked_mul(1 << doublings)
            .map_or(ACCEPT_BACKOFF_MAX, |d| d.min(ACCEPT_BACKOFF_MAX))
    }

    /// Records a success: the next failure pauses briefly again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_the_lower_of_the_maximum_and_half_the_file_limit() {
        assert_eq!(capped_by_file_limit(SSH_UNAUTHENTICATED_MAX, 1024), 512);
        assert_eq!(capped_by_file_limit(SSH_UNAUTHENTICATED_MAX, 1_048_576), 1000);
        assert_eq!(capped_by_file_limit(HTTP_CONNECTIONS_MAX, 20_000), 4096);
        assert_eq!(capped_by_file_limit(HTTP_CONNECTIONS_MAX, 256), 128);
        assert_eq!(capped_by_file_limit(HTTP_CONNECTIONS_MAX, 1), 1);
        assert_eq!(capped_by_file_limit(HTTP_CONNECTIONS_MAX, u64::MAX), 4096);
    }

    #[test]
    fn accept_pauses_double_from_10_ms_to_1_s_and_start_over_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<u64> = (0..10).map(|_| backoff.failed().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        for _ in 0..100 {
            backoff.failed();
        }
        assert_eq!(backoff.failed(), ACCEPT_BACKOFF_MAX);
        backoff.succeeded();
        assert_eq!(backoff.failed(), ACCEPT_BACKOFF_INITIAL);
    }
}
