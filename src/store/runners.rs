//! The `runners` table: the runners connected now, at most one per owner and name.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use super::{NewRunner, RunnerRecord, system_time, users};

/// Column 4 of [`SELECT_RUNNERS`], decoded from JSON.
const LABELS_COLUMN: usize = 4;

const SELECT_RUNNERS: &str =
    "SELECT owner, name, os, arch, labels, capacity, session, connected_at_ms FROM runners
     ORDER BY owner, name";

/// Adds `runner`, replacing the one with its owner and name; returns the replaced runner's
/// session unless it is `runner`'s own.
pub(super) fn add(
    conn: &mut Connection,
    runner: &NewRunner,
    now_ms: i64,
) -> rusqlite::Result<Option<String>> {
    let labels = serde_json::to_string(&runner.labels)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    users::ensure(&tx, &runner.owner, now_ms)?;
    // At most one row matches: UNIQUE (owner, name).
    let replaced: Option<String> = tx
        .query_row(
            "DELETE FROM runners WHERE owner = ?1 AND name = ?2 RETURNING session",
            (&runner.owner, &runner.name),
            |row| row.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO runners (owner, name, os, arch, labels, capacity, session, connected_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        (
            &runner.owner,
            &runner.name,
            &runner.os,
            &runner.arch,
            &labels,
            runner.capacity,
            &runner.session,
            now_ms,
        ),
    )?;
    tx.commit()?;
    // A session that re-adds its own runner must not be told to close itself.
    Ok(replaced.filter(|session| *session != runner.session))
}

/// Removes the runner `owner`/`name` if it belongs to `session`; returns whether it did.
pub(super) fn remove(
    conn: &Connection,
    owner: &str,
    name: &str,
    session: &str,
) -> rusqlite::Result<bool> {
    let removed = conn.execute(
        "DELETE FROM runners WHERE owner = ?1 AND name = ?2 AND session = ?3",
        (owner, name, session),
    )?;
    Ok(removed > 0)
}

/// Removes the runners of `session`; returns how many.
pub(super) fn remove_session(conn: &Connection, session: &str) -> rusqlite::Result<u64> {
    let removed = conn.execute("DELETE FROM runners WHERE session = ?1", [session])?;
    Ok(removed as u64)
}

/// Removes every runner; returns how many.
pub(super) fn clear(conn: &Connection) -> rusqlite::Result<u64> {
    let removed = conn.execute("DELETE FROM runners", [])?;
    Ok(removed as u64)
}

/// Every runner, by owner (case-insensitively) then name.
pub(super) fn list(conn: &Connection) -> rusqlite::Result<Vec<RunnerRecord>> {
    let mut statement = conn.prepare(SELECT_RUNNERS)?;
    let records = statement.query_map([], record)?;
    records.collect()
}

fn record(row: &Row<'_>) -> rusqlite::Result<RunnerRecord> {
    let labels: String = row.get(LABELS_COLUMN)?;
    let labels = serde_json::from_str(&labels).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(LABELS_COLUMN, Type::Text, Box::new(e))
    })?;
    Ok(RunnerRecord {
        owner: row.get(0)?,
        name: row.get(1)?,
        os: row.get(2)?,
        arch: row.get(3)?,
        labels,
        capacity: row.get(5)?,
        session: row.get(6)?,
        connected_at: system_time(row.get(7)?),
    })
}

#[cfg(test)]
mod tests;
