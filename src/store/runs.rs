//! The `runs` table's writes: a run is queued, started, finished, each with its outbox entries.
//!
//! The reads are in `run_queries`.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::outbox::{self, OutboxEntry};
use super::{Store, StoreError, millis, now_ms, to_i64};
use crate::core::commit::CommitInfo;
use crate::core::run::Conclusion;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    InProgress,
    Completed,
}

impl RunStatus {
    /// Every status, in the order of a run's life.
    pub const ALL: [RunStatus; 3] =
        [RunStatus::Queued, RunStatus::InProgress, RunStatus::Completed];

    /// The name GitHub gives the status of a check run, which is also the stored one.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::Completed => "completed",
        }
    }

    /// The status named `name` by [`RunStatus::as_str`].
    pub(super) fn from_name(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

/// A run to queue: one execution of one check for one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// "owner/name", compared case-insensitively.
    pub repo: String,
    pub installation_id: Option<i64>,
    pub sha: String,
    pub check: String,
    /// "push", "pull_request", "check_suite", "check_run", "issue_comment".
    pub event: String,
    /// The GitHub login whose runner runs it.
    pub sender: String,
    pub pr_number: Option<u64>,
    /// JSON, opaque to the store.
    pub thunk: String,
    pub thunk_id: String,
    pub delivery_id: Option<String>,
    /// The run this one runs again.
    pub rerun_of: Option<i64>,
    pub deployment_environment: Option<String>,
    /// When a still-queued run ends timed_out; stored to the millisecond.
    pub queue_deadline: SystemTime,
    /// The commit's branch, message and link, for the pages.
    pub commit: CommitInfo,
}

impl Store {
    /// Inserts a run and its outbox entries (with `run_id` = the new id) in one transaction.
    ///
    /// Idempotent per (delivery_id, check, rerun_of): when a run with the same non-null
    /// delivery_id, check and rerun_of exists, returns its id and inserts nothing (a delivery
    /// reprocessed after a crash must not double its runs).
    pub async fn insert_run(
        &self,
        run: NewRun,
        outbox: Vec<OutboxEntry>,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        self.worker.call(move |conn| insert(conn, &run, &outbox, now)).await
    }

    /// Queued → in_progress with runner ("login/name") and started_at, plus outbox entries, in
    /// one transaction; `Ok(false)` (and nothing written) when the run was not queued.
    pub async fn start_run(
        &self,
        id: i64,
        runner: &str,
        at: SystemTime,
        outbox: Vec<OutboxEntry>,
    ) -> Result<bool, StoreError> {
        let (runner, at, now) = (runner.to_owned(), millis(at), now_ms());
        let start = move |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let started = tx.execute(
                "UPDATE runs SET status = 'in_progress', runner = ?2, started_at_ms = ?3
                 WHERE id = ?1 AND status = 'queued'",
                (id, &runner, at),
            )?;
            commit_with_outbox(tx, started > 0, id, &outbox, now)
        };
        self.worker.call(start).await
    }

    /// Queued or in_progress → completed with conclusion, exit text and finished_at, plus
    /// outbox entries, in one transaction; `Ok(false)` (nothing written) when already completed.
    pub async fn finish_run(
        &self,
        id: i64,
        conclusion: Conclusion,
        exit: Option<&str>,
        at: SystemTime,
        outbox: Vec<OutboxEntry>,
    ) -> Result<bool, StoreError> {
        let (conclusion, exit) = (conclusion.as_str(), exit.map(str::to_owned));
        let (at, now) = (millis(at), now_ms());
        let finish = move |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let finished = tx.execute(
                "UPDATE runs SET status = 'completed', conclusion = ?2, exit = ?3,
                                 finished_at_ms = ?4
                 WHERE id = ?1 AND status IN ('queued', 'in_progress')",
                (id, conclusion, &exit, at),
            )?;
            commit_with_outbox(tx, finished > 0, id, &outbox, now)
        };
        self.worker.call(finish).await
    }

    /// Remembers the id GitHub gave the run's check run; an unknown run changes nothing.
    pub async fn set_check_run_id(&self, id: i64, check_run_id: i64) -> Result<(), StoreError> {
        let set = move |conn: &mut Connection| {
            conn.execute("UPDATE runs SET check_run_id = ?2 WHERE id = ?1", (id, check_run_id))
        };
        self.worker.call(set).await.map(drop)
    }

    /// Remembers the id GitHub gave the run's deployment; an unknown run changes nothing.
    pub async fn set_deployment_id(&self, id: i64, deployment_id: i64) -> Result<(), StoreError> {
        let set = move |conn: &mut Connection| {
            conn.execute("UPDATE runs SET deployment_id = ?2 WHERE id = ?1", (id, deployment_id))
        };
        self.worker.call(set).await.map(drop)
    }
}

/// Inserts `run` and `outbox` unless the run's delivery already made it; returns the run's id.
fn insert(
    conn: &mut Connection,
    run: &NewRun,
    outbox: &[OutboxEntry],
    now_ms: i64,
) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(id) = made_by_delivery(&tx, run)? {
        return Ok(id);
    }
    let id = insert_row(&tx, run, now_ms)?;
    commit_with_outbox(tx, true, id, outbox, now_ms)?;
    Ok(id)
}

/// The run `run`'s delivery already made for its check and rerun, if any.
fn made_by_delivery(tx: &Transaction<'_>, run: &NewRun) -> rusqlite::Result<Option<i64>> {
    let Some(delivery_id) = &run.delivery_id else {
        return Ok(None);
    };
    // The same expression as the UNIQUE index, so the index answers.
    tx.query_row(
        "SELECT id FROM runs
         WHERE delivery_id = ?1 AND check_name = ?2 AND COALESCE(rerun_of, 0) = COALESCE(?3, 0)",
        (delivery_id, &run.check, run.rerun_of),
        |row| row.get(0),
    )
    .optional()
}

fn insert_row(tx: &Transaction<'_>, run: &NewRun, now_ms: i64) -> rusqlite::Result<i64> {
    let pr_number = run.pr_number.map(to_i64).transpose()?;
    tx.query_row(
        "INSERT INTO runs (repo, installation_id, sha, check_name, event, sender, pr_number,
                           thunk, thunk_id, delivery_id, rerun_of, deployment_environment,
                           queue_deadline_ms, status, created_at_ms, branch, commit_message,
                           commit_url)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'queued', ?14, ?15, ?16,
                 ?17)
         RETURNING id",
        rusqlite::params![
            &run.repo,
            run.installation_id,
            &run.sha,
            &run.check,
            &run.event,
            &run.sender,
            pr_number,
            &run.thunk,
            &run.thunk_id,
            &run.delivery_id,
            run.rerun_of,
            &run.deployment_environment,
            millis(run.queue_deadline),
            now_ms,
            &run.commit.branch,
            &run.commit.message,
            &run.commit.url,
        ],
        |row| row.get(0),
    )
}

/// Adds `outbox` for run `id` and commits when `changed`; otherwise rolls back (nothing
/// written). Returns `changed`.
fn commit_with_outbox(
    tx: Transaction<'_>,
    changed: bool,
    id: i64,
    outbox: &[OutboxEntry],
    now_ms: i64,
) -> rusqlite::Result<bool> {
    if !changed {
        return Ok(false);
    }
    for entry in outbox {
        outbox::insert(&tx, Some(id), entry, now_ms)?;
    }
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests;
