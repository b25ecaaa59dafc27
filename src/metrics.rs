//! Process-wide counters for `GET /metrics`: plain atomics that any module may bump, with no
//! outside technology behind them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of run output written to the blobstore.
pub static LOG_BYTES_STORED: AtomicU64 = AtomicU64::new(0);
/// GitHub API calls that GitHub answered with success.
pub static GITHUB_CALLS_OK: AtomicU64 = AtomicU64::new(0);
/// GitHub API calls that failed (an error status, a timeout, no connection).
pub static GITHUB_CALLS_FAILED: AtomicU64 = AtomicU64::new(0);

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
