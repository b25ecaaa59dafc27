//! The `runs` table's reads: one run, a commit's, a repository's, the open ones, the counts.

use std::time::SystemTime;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Params, Row};

use super::runs::{NewRun, RunStatus};
use super::{Store, StoreError, count, limit, system_time, to_i64};
use crate::core::commit::CommitInfo;
use crate::core::run::Conclusion;

/// A stored run: the run as it was queued, and what became of it. Times are to the millisecond.
///
/// It reads as its [`NewRun`] too (`record.repo`), through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    /// The run as it was queued.
    pub queued: NewRun,
    pub status: RunStatus,
    /// Once completed.
    pub conclusion: Option<Conclusion>,
    /// "login/name" once started.
    pub runner: Option<String>,
    pub exit: Option<String>,
    pub check_run_id: Option<i64>,
    pub deployment_id: Option<i64>,
    pub created_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
}

impl std::ops::Deref for RunRecord {
    type Target = NewRun;

    fn deref(&self) -> &NewRun {
        &self.queued
    }
}

/// Every column of [`RunRecord`], in its order; a query appends its WHERE and ORDER BY.
const SELECT_RUNS: &str = "SELECT id, repo, installation_id, sha, check_name, event, sender,
        pr_number, thunk, thunk_id, delivery_id, rerun_of, deployment_environment,
        queue_deadline_ms, status, conclusion, runner, exit, check_run_id, deployment_id,
        created_at_ms, started_at_ms, finished_at_ms, branch, commit_message, commit_url
    FROM runs";

/// Columns of [`SELECT_RUNS`] decoded beyond what rusqlite does.
const PR_NUMBER_COLUMN: usize = 7;
const STATUS_COLUMN: usize = 14;
const CONCLUSION_COLUMN: usize = 15;

impl Store {
    /// The run `id`, if stored.
    pub async fn run(&self, id: i64) -> Result<Option<RunRecord>, StoreError> {
        let one = move |conn: &mut Connection| {
            let sql = format!("{SELECT_RUNS} WHERE id = ?1");
            conn.query_row(&sql, [id], record).optional()
        };
        self.worker.call(one).await
    }

    /// Runs of a commit, newest first.
    pub async fn runs_for_commit(
        &self,
        repo: &str,
        sha: &str,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let (repo, sha) = (repo.to_owned(), sha.to_owned());
        let sql = "WHERE repo = ?1 AND sha = ?2 ORDER BY id DESC";
        self.worker.call(move |conn| select(conn, sql, (&repo, &sha))).await
    }

    /// Newest first, at most `limit`, only ids below `before_id` when given (keyset
    /// pagination); only `repo`'s when given (case-insensitive).
    pub async fn recent_runs(
        &self,
        repo: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let (repo, count) = (repo.map(str::to_owned), self::limit(limit));
        // No id is above i64::MAX, and SQLite only reaches it when told to.
        let before = before_id.unwrap_or(i64::MAX);
        // Two statements rather than `?1 IS NULL OR repo = ?1`, which no index serves.
        let recent = move |conn: &mut Connection| match &repo {
            Some(repo) => {
                let sql = "WHERE repo = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
                select(conn, sql, (repo, before, count))
            }
            None => select(conn, "WHERE id < ?1 ORDER BY id DESC LIMIT ?2", (before, count)),
        };
        self.worker.call(recent).await
    }

    /// As [`Store::recent_runs`] over every repository, but only the runs a reader may see:
    /// those of public repositories, and of `readable` (private repositories the reader may
    /// read, "owner/name", case-insensitive). Filtered in SQL: no other row is loaded. A
    /// repository whose privacy is unknown is private.
    pub async fn visible_recent_runs(
        &self,
        readable: &[String],
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let readable = serde_json::to_string(readable).expect("strings serialize");
        let (count, before) = (self::limit(limit), before_id.unwrap_or(i64::MAX));
        let sql = "WHERE id < ?1
              AND (EXISTS (SELECT 1 FROM repositories p
                           WHERE p.full_name = runs.repo AND p.private = 0)
                   OR runs.repo IN (SELECT value FROM json_each(?2)))
            ORDER BY id DESC LIMIT ?3";
        self.worker.call(move |conn| select(conn, sql, (before, &readable, count))).await
    }

    /// As [`Store::visible_recent_runs`], only the runs `sender` sent (case-insensitive).
    pub async fn visible_runs_sent_by(
        &self,
        readable: &[String],
        sender: &str,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let readable = serde_json::to_string(readable).expect("strings serialize");
        let (sender, count) = (sender.to_owned(), self::limit(limit));
        let sql = "WHERE sender = ?1
              AND (EXISTS (SELECT 1 FROM repositories p
                           WHERE p.full_name = runs.repo AND p.private = 0)
                   OR runs.repo IN (SELECT value FROM json_each(?2)))
            ORDER BY id DESC LIMIT ?3";
        self.worker.call(move |conn| select(conn, sql, (&sender, &readable, count))).await
    }

    /// The repositories with runs that are not known to be public, most recently run first, at
    /// most `limit`, each with the installation of its newest run: those whose runs a reader
    /// without a user token (over SSH) must be asked about one by one.
    pub async fn private_repos_with_runs(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, Option<i64>)>, StoreError> {
        let count = self::limit(limit);
        let list = move |conn: &mut Connection| {
            let mut statement = conn.prepare(
                "SELECT repo, installation_id FROM runs r
                 WHERE r.id = (SELECT MAX(id) FROM runs s WHERE s.repo = r.repo)
                   AND NOT EXISTS (SELECT 1 FROM repositories p
                                   WHERE p.full_name = r.repo AND p.private = 0)
                 ORDER BY r.id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([count], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        };
        self.worker.call(list).await
    }

    /// Queued runs, oldest first.
    pub async fn queued_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let sql = "WHERE status = 'queued' ORDER BY id";
        self.worker.call(move |conn| select(conn, sql, [])).await
    }

    /// In-progress runs, oldest first.
    pub async fn in_progress_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let sql = "WHERE status = 'in_progress' ORDER BY id";
        self.worker.call(move |conn| select(conn, sql, [])).await
    }

    /// Queued or in-progress runs of one pull request and check (for "superseded" cancels),
    /// oldest first.
    pub async fn open_runs_of_pr(
        &self,
        repo: &str,
        pr_number: u64,
        check: &str,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let (repo, check) = (repo.to_owned(), check.to_owned());
        let open = move |conn: &mut Connection| {
            let sql = "WHERE repo = ?1 AND pr_number = ?2 AND check_name = ?3
                         AND status IN ('queued', 'in_progress')
                       ORDER BY id";
            select(conn, sql, (&repo, to_i64(pr_number)?, &check))
        };
        self.worker.call(open).await
    }

    /// (status, count) pairs, for metrics: every status, in the order of a run's life, with 0
    /// for a status no run has.
    pub async fn run_status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.worker.call(|conn| status_counts(conn)).await
    }
}

/// The runs `SELECT_RUNS` followed by `rest` gives.
fn select(conn: &Connection, rest: &str, params: impl Params) -> rusqlite::Result<Vec<RunRecord>> {
    let mut statement = conn.prepare(&format!("{SELECT_RUNS} {rest}"))?;
    let records = statement.query_map(params, record)?;
    records.collect()
}

fn status_counts(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut statement = conn.prepare("SELECT status, count(*) FROM runs GROUP BY status")?;
    let stored = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, count(row.get(1)?))))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let of = |status: RunStatus| {
        let found = stored.iter().find(|(name, _)| name == status.as_str());
        (status.as_str().to_owned(), found.map_or(0, |(_, count)| *count))
    };
    Ok(RunStatus::ALL.into_iter().map(of).collect())
}

fn record(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let time = |column: usize| row.get(column).map(system_time);
    let optional_time =
        |column: usize| row.get::<_, Option<i64>>(column).map(|ms| ms.map(system_time));
    let queued = NewRun {
        repo: row.get(1)?,
        installation_id: row.get(2)?,
        sha: row.get(3)?,
        check: row.get(4)?,
        event: row.get(5)?,
        sender: row.get(6)?,
        pr_number: pr_number(row)?,
        thunk: row.get(8)?,
        thunk_id: row.get(9)?,
        delivery_id: row.get(10)?,
        rerun_of: row.get(11)?,
        deployment_environment: row.get(12)?,
        queue_deadline: time(13)?,
        commit: CommitInfo { branch: row.get(23)?, message: row.get(24)?, url: row.get(25)? },
    };
    Ok(RunRecord {
        id: row.get(0)?,
        queued,
        status: status(row)?,
        conclusion: conclusion(row)?,
        runner: row.get(16)?,
        exit: row.get(17)?,
        check_run_id: row.get(18)?,
        deployment_id: row.get(19)?,
        created_at: time(20)?,
        started_at: optional_time(21)?,
        finished_at: optional_time(22)?,
    })
}

fn pr_number(row: &Row<'_>) -> rusqlite::Result<Option<u64>> {
    let stored: Option<i64> = row.get(PR_NUMBER_COLUMN)?;
    let failed = |e| rusqlite::Error::FromSqlConversionFailure(PR_NUMBER_COLUMN, Type::Integer, e);
    stored.map(|n| u64::try_from(n).map_err(|e| failed(Box::new(e)))).transpose()
}

fn conclusion(row: &Row<'_>) -> rusqlite::Result<Option<Conclusion>> {
    let stored: Option<String> = row.get(CONCLUSION_COLUMN)?;
    let named = |name: &str| {
        Conclusion::ALL.into_iter().find(|c| c.as_str() == name).ok_or_else(|| {
            let unknown = format!("unknown conclusion {name:?}").into();
            rusqlite::Error::FromSqlConversionFailure(CONCLUSION_COLUMN, Type::Text, unknown)
        })
    };
    stored.as_deref().map(named).transpose()
}

fn status(row: &Row<'_>) -> rusqlite::Result<RunStatus> {
    let stored: String = row.get(STATUS_COLUMN)?;
    RunStatus::from_name(&stored).ok_or_else(|| {
        let unknown = format!("unknown run status {stored:?}").into();
        rusqlite::Error::FromSqlConversionFailure(STATUS_COLUMN, Type::Text, unknown)
    })
}
