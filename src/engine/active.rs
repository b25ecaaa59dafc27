//! The runs in flight on this server: their runner, and how to cancel them.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::core::run::RunEnd;

/// Runs in flight on this server; the dispatcher's.
#[derive(Default)]
pub(super) struct ActiveRuns {
    runs: Mutex<HashMap<i64, Active>>,
}

struct Active {
    /// (owner, name).
    runner: (String, String),
    /// Ends the run with the given end; taken by the first cancel.
    cancel: Option<oneshot::Sender<RunEnd>>,
}

impl ActiveRuns {
    /// Adds a run going on `owner`'s runner `name`; returns what hears its cancel.
    pub(super) fn add(&self, run_id: i64, owner: &str, name: &str) -> oneshot::Receiver<RunEnd> {
        let (cancel, cancelled) = oneshot::channel();
        let active = Active { runner: (owner.to_string(), name.to_string()), cancel: Some(cancel) };
        self.lock().insert(run_id, active);
        cancelled
    }

    pub(super) fn remove(&self, run_id: i64) {
        self.lock().remove(&run_id);
    }

    pub(super) fn in_flight(&self, owner: &str, name: &str) -> u32 {
        let runs = self.lock();
        runs.values()
            .filter(|a| a.runner.0.eq_ignore_ascii_case(owner) && a.runner.1 == name)
            .count() as u32
    }

    /// Cancels a run in flight; returns whether it was.
    pub(super) fn cancel(&self, run_id: i64, end: RunEnd) -> bool {
        match self.lock().get_mut(&run_id).and_then(|a| a.cancel.take()) {
            Some(cancel) => cancel.send(end).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Active>> {
        self.runs.lock().expect("active runs lock poisoned")
    }
}
