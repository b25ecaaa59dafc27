//! The `users` table: GitHub logins, compared case-insensitively, and their numeric ids.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// Inserts `login`, or updates its last login.
pub(super) fn record_login(conn: &Connection, login: &str, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO users (login, first_seen_ms, last_login_ms) VALUES (?1, ?2, ?2)
         ON CONFLICT (login) DO UPDATE SET last_login_ms = excluded.last_login_ms",
        (login, now_ms),
    )?;
    Ok(())
}

/// Makes sure `login` has a row, without counting it as a login.
pub(super) fn ensure(conn: &Connection, login: &str, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO users (login, first_seen_ms) VALUES (?1, ?2)
         ON CONFLICT (login) DO NOTHING",
        (login, now_ms),
    )?;
    Ok(())
}

/// Gives `login` the id `github_id`, creating its row if needed.
pub(super) fn set_id(
    conn: &mut Connection,
    login: &str,
    github_id: i64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The id belongs to the account, the login may be renamed: a login that had this id before
    // is the same account's old name and gives the id up, rather than failing on UNIQUE.
    tx.execute(
        "UPDATE users SET github_id = NULL WHERE github_id = ?1 AND login <> ?2",
        (github_id, login),
    )?;
    ensure(&tx, login, now_ms)?;
    tx.execute("UPDATE users SET github_id = ?2 WHERE login = ?1", (login, github_id))?;
    tx.commit()
}

/// The id of `login`, if it has a row and an id.
pub(super) fn id(conn: &Connection, login: &str) -> rusqlite::Result<Option<i64>> {
    let id: Option<Option<i64>> = conn
        .query_row("SELECT github_id FROM users WHERE login = ?1", [login], |row| row.get(0))
        .optional()?;
    Ok(id.flatten())
}
