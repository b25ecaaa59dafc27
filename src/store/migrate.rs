//! The schema's migrations, applied in order at open and tracked by `PRAGMA user_version`.
//!
//! `user_version` is the number of migrations applied. Migrations are forward-only: a new one is
//! appended to [`MIGRATIONS`] and a released one is never edited. A migration runs inside a
//! transaction, so it cannot change `foreign_keys` (a no-op there); to rebuild a table, follow
//! SQLite's twelve steps with `PRAGMA foreign_key_check` before the end.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// One SQL file of `migrations/`.
#[derive(Clone, Copy)]
pub(super) struct Migration {
    /// The file name, for error messages.
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($file:literal) => {
        Migration { name: $file, sql: include_str!(concat!("../../migrations/", $file)) }
    };
}

/// Every migration, in order; the schema version is the length of the applied prefix.
pub(super) const MIGRATIONS: &[Migration] = &[
    migration!("0001_users_and_runners.sql"),
    migration!("0002_deliveries_runs_outbox.sql"),
    migration!("0003_delivery_outcome_detail.sql"),
    migration!("0004_repositories_and_sessions.sql"),
    migration!("0005_delivery_and_outbox_retries.sql"),
    migration!("0006_steps.sql"),
    migration!("0007_run_commit_facts.sql"),
];

/// Applies the migrations `conn` has not seen yet, each in its own transaction.
pub(super) fn apply(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let known = migrations.len() as i64;
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same new file cannot both apply the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(super::database)?;
        let found = user_version(&tx).map_err(super::database)?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        let index = usize::try_from(found).map_err(|_| {
            StoreError::Database(format!("the database has a negative schema version {found}"))
        })?;
        let Some(migration) = migrations.get(index) else {
            return Ok(());
        };
        tx.execute_batch(migration.sql)
            .and_then(|()| tx.pragma_update(None, "user_version", found + 1))
            .and_then(|()| tx.commit())
            .map_err(|e| {
                StoreError::Database(format!("migration {} failed: {e}", migration.name))
            })?;
    }
}

/// The number of migrations applied to the database.
pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE_A: Migration =
        Migration { name: "0001_a.sql", sql: "CREATE TABLE a (x INTEGER);" };

    /// A connection to a new database file, and the directory that holds it.
    fn new_file() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("test.sqlite")).unwrap();
        (dir, conn)
    }

    fn tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migration_files_are_numbered_in_order() {
        // Strictly increasing: 0003 lives on another branch until both are merged, when the
        // numbers are consecutive again.
        let number = |m: &Migration| m.name[..4].parse::<u32>().expect("NNNN_ prefix");
        for pair in MIGRATIONS.windows(2) {
            assert!(
                number(&pair[0]) < number(&pair[1]),
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert_eq!(number(&MIGRATIONS[0]), 1);
    }

    #[test]
    fn a_failing_migration_keeps_the_earlier_ones_and_nothing_of_itself() {
        let broken = Migration {
            name: "0002_b.sql",
            sql: "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);",
        };
        let (_dir, mut conn) = new_file();
        let error = apply(&mut conn, &[CREATE_A, broken]).unwrap_err();
        assert!(error.to_string().contains("0002_b.sql"), "{error}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["a"]);
    }

    #[test]
    fn applies_only_what_is_new() {
        let add_y = Migration {
            name: "0002_y.sql",
            sql: "ALTER TABLE a ADD COLUMN y INTEGER; INSERT INTO a VALUES (1, 2);",
        };
        let (_dir, mut conn) = new_file();
        apply(&mut conn, &[CREATE_A]).unwrap();
        // Each would fail ("table a already exists", "duplicate column") if it ran again.
        apply(&mut conn, &[CREATE_A, add_y]).unwrap();
        apply(&mut conn, &[CREATE_A, add_y]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        let rows: i64 = conn.query_row("SELECT count(*) FROM a", [], |row| row.get(0)).unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn a_negative_version_is_an_error() {
        let (_dir, mut conn) = new_file();
        conn.pragma_update(None, "user_version", -1).unwrap();
        let error = apply(&mut conn, &[CREATE_A]).unwrap_err();
        assert!(matches!(error, StoreError::Database(_)), "{error}");
        assert!(tables(&conn).is_empty());
    }
}
