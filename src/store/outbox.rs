//! The `outbox` table: GitHub writes to make, retried until GitHub accepts them.
//!
//! An item is written in the same transaction as the state change that causes it, so a crash
//! cannot lose the write nor make it without the change. Done items are deleted; an item given
//! up is kept with its error, marked failed, and no longer holds up its run. A run's items go
//! out one at a time in id order: only the oldest pending item of a run is ever due, so a check
//! run is created before it is updated even when the creation needed retries.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row};

use super::{Store, StoreError, count, limit, millis, now_ms, system_time};

/// A GitHub write to make, stored in the same transaction as the state change that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// What to write: the tag of the engine's `OutboxItem`, kept in a column of its own for a
    /// person reading the table.
    pub kind: String,
    /// The item as JSON, opaque to the store.
    pub payload: String,
}

/// A stored outbox entry that has not been done yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub run_id: Option<i64>,
    pub kind: String,
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// To the millisecond.
    pub next_attempt_at: SystemTime,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When the first attempt failed: retries end a day after it.
    pub first_failure_at: Option<SystemTime>,
}

/// How many items wait, by what became of their attempts so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Not tried yet.
    pub pending: u64,
    /// Failed at least once, to be tried again.
    pub retrying: u64,
    /// Given up, kept with their error.
    pub failed: u64,
}

/// The items that may go out now: pending, and not behind an older pending item of their run
/// (one given up does not hold up the rest).
const HEADS: &str = "(failed_at_ms IS NULL
                      AND (run_id IS NULL
                           OR id = (SELECT min(id) FROM outbox AS earlier
                                    WHERE earlier.run_id = outbox.run_id
                                      AND earlier.failed_at_ms IS NULL)))";

impl Store {
    /// Stores `entry`, due now; `run_id` must be a stored run's. Returns the item's id.
    pub async fn enqueue(
        &self,
        run_id: Option<i64>,
        entry: OutboxEntry,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        self.worker.call(move |conn| insert(conn, run_id, &entry, now)).await
    }

    /// Items due at `now`, oldest first, at most `limit`; of the items of one run only the
    /// oldest pending one is ever returned, so that one run's writes reach GitHub in order (a
    /// check run must be created before it is updated).
    pub async fn due_outbox(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let now = millis(now);
        self.worker.call(move |conn| due(conn, now, limit)).await
    }

    /// Removes a done item; an unknown id changes nothing.
    pub async fn outbox_done(&self, id: i64) -> Result<(), StoreError> {
        let done =
            move |conn: &mut Connection| conn.execute("DELETE FROM outbox WHERE id = ?1", [id]);
        self.worker.call(done).await.map(drop)
    }

    /// Records a failed attempt: attempts + 1, the error, the next attempt time; the first
    /// failure's time (now, if this is the first) is kept.
    pub async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: SystemTime,
    ) -> Result<(), StoreError> {
        let (error, next, now) = (error.to_owned(), millis(next_attempt_at), now_ms());
        self.worker.call(move |conn| retry(conn, id, &error, next, now)).await
    }

    /// Gives an item up for good: it is kept with its error, and is never due again.
    pub async fn outbox_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let (error, now) = (error.to_owned(), now_ms());
        let failed = move |conn: &mut Connection| {
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, failed_at_ms = ?3,
                                   first_failure_at_ms = COALESCE(first_failure_at_ms, ?3)
                 WHERE id = ?1",
                (id, &error, now),
            )
        };
        self.worker.call(failed).await.map(drop)
    }

    /// The items given up, oldest first, at most `limit`.
    pub async fn failed_outbox(&self, limit_count: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let failed = move |conn: &mut Connection| {
            let sql = format!(
                "SELECT {COLUMNS} FROM outbox WHERE failed_at_ms IS NOT NULL ORDER BY id LIMIT ?1"
            );
            let mut statement = conn.prepare(&sql)?;
            let items = statement.query_map([limit(limit_count)], item)?;
            items.collect()
        };
        self.worker.call(failed).await
    }

    /// How many items are pending, retrying and failed, for metrics.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let counts = |conn: &mut Connection| {
            conn.query_row(
                "SELECT count(*) FILTER (WHERE failed_at_ms IS NULL AND attempts = 0),
                        count(*) FILTER (WHERE failed_at_ms IS NULL AND attempts > 0),
                        count(*) FILTER (WHERE failed_at_ms IS NOT NULL)
                 FROM outbox",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
        };
        let (pending, retrying, failed) = self.worker.call(counts).await?;
        Ok(OutboxCounts {
            pending: count(pending),
            retrying: count(retrying),
            failed: count(failed),
        })
    }

    /// The earliest next_attempt_at of pending items, to sleep until (None when empty).
    ///
    /// Only items that [`Store::due_outbox`] could return count: an item waiting behind an
    /// older one of its run would otherwise wake the caller for nothing, again and again.
    pub async fn next_outbox_due(&self) -> Result<Option<SystemTime>, StoreError> {
        self.worker.call(|conn| next_due(conn)).await
    }

    /// How many items are not done yet, and not given up.
    pub async fn outbox_pending(&self) -> Result<u64, StoreError> {
        let pending = |conn: &mut Connection| {
            conn.query_row("SELECT count(*) FROM outbox WHERE failed_at_ms IS NULL", [], |row| {
                row.get(0)
            })
        };
        self.worker.call(pending).await.map(count)
    }
}

/// Stores `entry` for `run_id`, due at `now_ms`; returns its id.
pub(super) fn insert(
    conn: &Connection,
    run_id: Option<i64>,
    entry: &OutboxEntry,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    conn.query_row(
        "INSERT INTO outbox (run_id, kind, payload, next_attempt_at_ms, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        (run_id, &entry.kind, &entry.payload, now_ms),
        |row| row.get(0),
    )
}

/// The columns [`item`] reads, in its order.
const COLUMNS: &str =
    "id, run_id, kind, payload, attempts, next_attempt_at_ms, last_error, first_failure_at_ms";

fn due(conn: &Connection, now_ms: i64, count: usize) -> rusqlite::Result<Vec<OutboxRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM outbox
         WHERE next_attempt_at_ms <= ?1 AND {HEADS} ORDER BY id LIMIT ?2"
    );
    let mut statement = conn.prepare(&sql)?;
    let items = statement.query_map((now_ms, limit(count)), item)?;
    items.collect()
}

fn retry(
    conn: &Connection,
    id: i64,
    error: &str,
    next_ms: i64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at_ms = ?3,
                           first_failure_at_ms = COALESCE(first_failure_at_ms, ?4)
         WHERE id = ?1",
        (id, error, next_ms, now_ms),
    )?;
    Ok(())
}

fn next_due(conn: &Connection) -> rusqlite::Result<Option<SystemTime>> {
    let sql = format!(
        "SELECT next_attempt_at_ms FROM outbox WHERE {HEADS} ORDER BY next_attempt_at_ms LIMIT 1"
    );
    let next: Option<i64> = conn.query_row(&sql, [], |row| row.get(0)).optional()?;
    Ok(next.map(system_time))
}

fn item(row: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: row.get(0)?,
        run_id: row.get(1)?,
        kind: row.get(2)?,
        payload: row.get(3)?,
        attempts: row.get(4)?,
        next_attempt_at: system_time(row.get(5)?),
        last_error: row.get(6)?,
        first_failure_at: row.get::<_, Option<i64>>(7)?.map(system_time),
    })
}

#[cfg(test)]
mod tests;
