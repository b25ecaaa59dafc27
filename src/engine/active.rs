//! The runs in flight on this server.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Runs in flight on this server: their runner, and how to cancel them.
#[derive(Default)]
pub struct ActiveRuns {
    pub(super) runs: Mutex<HashMap<i64, Active>>,
}

pub(super) struct Active {
    pub(super) runner: (String, String),
    pub(super) cancel: Option<oneshot::Sender<String>>,
}

impl ActiveRuns {
    pub(super) fn in_flight(&self, owner: &str, name: &str) -> u32 {
        let runs = self.runs.lock().expect("active runs lock poisoned");
        runs.values()
            .filter(|a| a.runner.0.eq_ignore_ascii_case(owner) && a.runner.1 == name)
            .count() as u32
    }

    /// Cancels a run in flight; returns whether it was.
    pub(super) fn cancel(&self, run_id: i64, reason: &str) -> bool {
        let mut runs = self.runs.lock().expect("active runs lock poisoned");
        match runs.get_mut(&run_id).and_then(|a| a.cancel.take()) {
            Some(cancel) => cancel.send(reason.to_string()).is_ok(),
            None => false,
        }
    }
}
