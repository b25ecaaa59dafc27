//! What people do to runs: cancel and re-run, asked for on the run page, over SSH or with a
//! check run's "Cancel" button. Each is checked here against `Access`, so that no caller can
//! forget to ask who may.

use tokio::sync::mpsc;

use super::dispatch::Cancel;
use super::plan::Planner;
use crate::access::Access;
use crate::core::run::RunEnd;
use crate::store::{RunRecord, RunStatus, Store, StoreError};

/// Why an action was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such run, or one the person may not read: the two answer alike.
    #[error("no such run")]
    NotFound,
    /// The person may read the run but not do this to it.
    #[error("you may not do this to this run")]
    NotPermitted,
    /// A cancel of a run that already ended.
    #[error("the run has already finished")]
    Finished,
    /// A re-run of a run that has not ended yet.
    #[error("the run has not finished yet")]
    NotFinished,
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl From<StoreError> for ActionError {
    fn from(error: StoreError) -> ActionError {
        ActionError::Failed(error.into())
    }
}

/// Cancel and re-run, for any caller that knows who is asking. Cheap to clone.
#[derive(Clone)]
pub struct Actions {
    store: Store,
    access: Access,
    planner: Planner,
    /// To the dispatcher, which owns the runs in flight.
    cancels: mpsc::Sender<Cancel>,
}

#[derive(Clone, Copy)]
enum Action {
    Cancel,
    Rerun,
}

impl Actions {
    pub(super) fn new(
        store: Store,
        access: Access,
        planner: Planner,
        cancels: mpsc::Sender<Cancel>,
    ) -> Actions {
        Actions { store, access, planner, cancels }
    }

    /// Cancels run `run_id` for the person `by` (a login GitHub vouched for): a queued run ends
    /// `cancelled` at once; a running one has its stream dropped (its runner stops the process
    /// with SIGTERM, then SIGKILL) and ends `cancelled`, its check run saying who did it.
    pub async fn cancel(&self, run_id: i64, by: &str) -> Result<(), ActionError> {
        let run = self.allowed(run_id, by, Action::Cancel).await?;
        if run.status == RunStatus::Completed {
            return Err(ActionError::Finished);
        }
        let cancel = Cancel { run_id, end: RunEnd::Cancelled { by: by.to_string() } };
        self.cancels.send(cancel).await.map_err(|_| anyhow::anyhow!("the dispatcher is gone"))?;
        tracing::info!(run = run_id, by, "run cancelled");
        Ok(())
    }

    /// Re-runs finished run `run_id` for the person `by`, exactly as GitHub's "Re-run" does: a
    /// new run of the same thunk on the original sender's runner. The new run's id.
    pub async fn rerun(&self, run_id: i64, by: &str) -> Result<i64, ActionError> {
        let run = self.allowed(run_id, by, Action::Rerun).await?;
        if run.status != RunStatus::Completed {
            return Err(ActionError::NotFinished);
        }
        let id = self.planner.rerun(&run, None).await?;
        tracing::info!(run = run_id, by, new = id, "run re-run");
        Ok(id)
    }

    /// The run, if `by` may do `action` to it; a run they may not even read is not found.
    async fn allowed(
        &self,
        run_id: i64,
        by: &str,
        action: Action,
    ) -> Result<RunRecord, ActionError> {
        let run = self.store.run(run_id).await?.ok_or(ActionError::NotFound)?;
        let may = match action {
            Action::Cancel => self.access.may_cancel(by, &run).await?,
            Action::Rerun => self.access.may_rerun(by, &run).await?,
        };
        if may {
            Ok(run)
        } else if self.access.may_read_run(by, &run).await? {
            Err(ActionError::NotPermitted)
        } else {
            Err(ActionError::NotFound)
        }
    }
}
