//! The store against real SQLite files in temporary directories.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use tempfile::TempDir;

use super::migrate::{self, MIGRATIONS, user_version};
use super::*;
use crate::core::commit::CommitInfo;

/// How long the runtime must go on running other tasks while a call waits for a lock.
const LOCKED_WAIT: Duration = Duration::from_millis(50);

/// Other modules keep a `Store` in state shared between tasks.
const _STORE_IS_SHARED_STATE: fn() = || {
    fn assert_shared<T: Clone + Send + Sync + 'static>() {}
    assert_shared::<Store>();
};

/// A new store, the directory that holds its file, and the file's path.
pub(super) async fn new_store() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.sqlite");
    let store = Store::open(&path).await.unwrap();
    (dir, path, store)
}

pub(super) fn runner(owner: &str, name: &str, session: &str) -> NewRunner {
    NewRunner {
        owner: owner.to_owned(),
        name: name.to_owned(),
        os: "linux".to_owned(),
        arch: "amd64".to_owned(),
        labels: vec!["gpu".to_owned()],
        capacity: 2,
        session: session.to_owned(),
    }
}

/// Adds `runner(owner, name, session)`; returns the session it replaced.
pub(super) async fn add(store: &Store, owner: &str, name: &str, session: &str) -> Option<String> {
    let replaced = store.add_runner(runner(owner, name, session)).await;
    replaced.unwrap()
}

/// `ms` milliseconds after the epoch: a time that survives storage unrounded.
pub(super) fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The one integer `sql` selects, read on the store's own connection.
pub(super) async fn query_i64(store: &Store, sql: &'static str) -> i64 {
    let value = store.worker.call(move |conn| conn.query_row(sql, [], |row| row.get(0)));
    value.await.unwrap()
}

/// A queued run of check `check` made by delivery `delivery`.
pub(super) fn new_run(delivery: Option<&str>, check: &str) -> NewRun {
    NewRun {
        repo: "acme/widgets".to_owned(),
        installation_id: Some(11),
        sha: "0123abcd".to_owned(),
        check: check.to_owned(),
        event: "push".to_owned(),
        sender: "alice".to_owned(),
        pr_number: None,
        thunk: r#"{"command":"make test"}"#.to_owned(),
        thunk_id: "thunk-1".to_owned(),
        delivery_id: delivery.map(str::to_owned),
        rerun_of: None,
        deployment_environment: None,
        queue_deadline: at_ms(9_000),
        commit: CommitInfo {
            branch: Some("main".to_owned()),
            message: Some("Fix the widgets".to_owned()),
            url: Some("https://ghe.example/acme/widgets/commit/0123abcd".to_owned()),
        },
    }
}

pub(super) fn entry(kind: &str) -> OutboxEntry {
    OutboxEntry { kind: kind.to_owned(), payload: format!("{{\"{kind}\":true}}") }
}

/// Inserts `run` with no outbox entries.
pub(super) async fn insert(store: &Store, run: NewRun) -> i64 {
    store.insert_run(run, Vec::new()).await.unwrap()
}

#[tokio::test]
async fn open_migrates_and_reopening_is_idempotent() {
    let (_dir, path, store) = new_store().await;
    let known = MIGRATIONS.len() as i64;
    let version = store.worker.call(|conn| user_version(conn)).await.unwrap();
    assert_eq!(version, known);
    store.set_user_id("alice", 7).await.unwrap();
    drop(store);
    let store = Store::open(&path).await.unwrap();
    let version = store.worker.call(|conn| user_version(conn)).await.unwrap();
    assert_eq!(version, known);
    assert_eq!(store.user_id("alice").await.unwrap(), Some(7));
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_migrated_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.sqlite");
    let mut conn = Connection::open(&path).unwrap();
    migrate::apply(&mut conn, &MIGRATIONS[..1]).unwrap();
    conn.execute_batch(
        "INSERT INTO users (login, github_id, first_seen_ms) VALUES ('alice', 7, 1);
         INSERT INTO runners (owner, name, os, arch, labels, capacity, session, connected_at_ms)
         VALUES ('alice', 'laptop', 'linux', 'amd64', '[]', 1, 's1', 1);",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).await.unwrap();
    let version = store.worker.call(|conn| user_version(conn)).await.unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    assert_eq!(store.user_id("alice").await.unwrap(), Some(7));
    assert_eq!(store.runners().await.unwrap().len(), 1);
    let run = store.insert_run(new_run(Some("d1"), "test"), vec![entry("create")]);
    assert_eq!(run.await.unwrap(), 1);
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
    let problems = "SELECT count(*) FROM pragma_foreign_key_check";
    assert_eq!(query_i64(&store, problems).await, 0);
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_foreign_keys_on() {
    let (_dir, path, store) = new_store().await;
    // The journal mode is kept in the file: a fresh connection sees it too.
    let mode: String = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(query_i64(&store, "PRAGMA foreign_keys").await, 1);
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let (_dir, _path, store) = new_store().await;
    let orphan = store.worker.call(|conn| {
        conn.execute(
            "INSERT INTO runners (owner, name, os, arch, labels, capacity, session,
                                  connected_at_ms)
             VALUES ('nobody', 'r', 'linux', 'amd64', '[]', 1, 's', 0)",
            [],
        )
    });
    let error = orphan.await.unwrap_err();
    assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
    add(&store, "alice", "r", "s").await;
    let delete_owner =
        store.worker.call(|conn| conn.execute("DELETE FROM users WHERE login = 'alice'", []));
    let error = delete_owner.await.unwrap_err();
    assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
}

#[tokio::test]
async fn a_database_of_a_newer_tether_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.sqlite");
    let newer = MIGRATIONS.len() as i64 + 1;
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", newer).unwrap();
    drop(conn);
    let error = Store::open(&path).await.unwrap_err();
    let known = newer - 1;
    assert!(
        matches!(error, StoreError::TooNew { found, known: k } if found == newer && k == known),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the database was written by a newer tether (schema {newer}, this build knows {known})"
        )
    );
    // Refused, not touched: none of this build's tables were created.
    let tables: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn opening_in_a_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("tether.sqlite");
    let error = Store::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    assert!(error.to_string().contains("missing"), "{error}");
}

#[tokio::test]
async fn owners_are_case_insensitive() {
    let (_dir, _path, store) = new_store().await;
    store.record_login("Alice").await.unwrap();
    store.record_login("alice").await.unwrap();
    assert_eq!(query_i64(&store, "SELECT count(*) FROM users").await, 1);
    add(&store, "Alice", "laptop", "s1").await;
    let replaced = add(&store, "alice", "laptop", "s2").await;
    assert_eq!(replaced.as_deref(), Some("s1"));
    assert!(store.remove_runner("ALICE", "laptop", "s2").await.unwrap());
    store.set_user_id("alice", 5).await.unwrap();
    assert_eq!(store.user_id("ALICE").await.unwrap(), Some(5));
    assert_eq!(query_i64(&store, "SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn record_login_updates_only_the_last_login() {
    let (_dir, _path, store) = new_store().await;
    store.record_login("alice").await.unwrap();
    let reset = store
        .worker
        .call(|conn| conn.execute("UPDATE users SET first_seen_ms = 1, last_login_ms = 1", []));
    reset.await.unwrap();
    store.record_login("alice").await.unwrap();
    assert_eq!(query_i64(&store, "SELECT first_seen_ms FROM users").await, 1);
    assert!(query_i64(&store, "SELECT last_login_ms FROM users").await > 1);
}

#[tokio::test]
async fn an_owner_added_by_a_runner_has_not_logged_in() {
    let (_dir, _path, store) = new_store().await;
    add(&store, "alice", "laptop", "s1").await;
    let never = "SELECT count(*) FROM users WHERE login = 'alice' AND last_login_ms IS NULL";
    assert_eq!(query_i64(&store, never).await, 1);
}

#[tokio::test]
async fn user_ids_are_remembered_and_follow_a_renamed_account() {
    let (_dir, _path, store) = new_store().await;
    assert_eq!(store.user_id("nobody").await.unwrap(), None);
    store.record_login("alice").await.unwrap();
    assert_eq!(store.user_id("alice").await.unwrap(), None);
    store.set_user_id("alice", 42).await.unwrap();
    assert_eq!(store.user_id("alice").await.unwrap(), Some(42));
    store.set_user_id("alice-renamed", 42).await.unwrap();
    assert_eq!(store.user_id("alice-renamed").await.unwrap(), Some(42));
    assert_eq!(store.user_id("alice").await.unwrap(), None);
}

#[tokio::test]
async fn a_locked_file_does_not_block_the_runtime() {
    let (_dir, path, store) = new_store().await;
    let other_process = Connection::open(&path).unwrap();
    other_process.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Waits for the lock on the store's thread; the (single-threaded) runtime runs on.
    let login = store.record_login("alice");
    tokio::pin!(login);
    let started = Instant::now();
    tokio::select! {
        biased;
        result = &mut login => panic!("finished while the file was locked: {result:?}"),
        () = tokio::time::sleep(LOCKED_WAIT) => {}
    }
    assert!(started.elapsed() < worker::BUSY_TIMEOUT / 2);
    other_process.execute_batch("COMMIT").unwrap();
    login.await.unwrap();
    assert_eq!(query_i64(&store, "SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn a_panic_in_a_call_reaches_its_caller_and_the_store_goes_on() {
    let (_dir, _path, store) = new_store().await;
    let worker = store.worker.clone();
    let task =
        tokio::spawn(
            async move { worker.call(|_| -> rusqlite::Result<()> { panic!("a bug") }).await },
        );
    assert!(task.await.unwrap_err().is_panic());
    store.record_login("alice").await.unwrap();
    assert_eq!(query_i64(&store, "SELECT count(*) FROM users").await, 1);
}
