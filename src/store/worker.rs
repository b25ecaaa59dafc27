//! The thread that owns the SQLite connection, so that no async task ever waits on SQLite.
//!
//! Callers send closures over a channel; the thread runs them one at a time, in order, and
//! replies through a oneshot. One connection serialises every statement of this process, which
//! SQLite's single writer would do anyway; WAL lets other processes read meanwhile.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{StoreError, database, migrate};

/// How long a statement waits for a lock held by another process (a backup, the `sqlite3`
/// shell) before it fails with "database is locked".
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The sending side of the thread's queue; the thread ends, closing the database, when the last
/// clone is dropped.
#[derive(Clone, Debug)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread, which opens the database at `path` and migrates it.
    pub(super) async fn start(path: &Path) -> Result<Worker, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = oneshot::channel();
        let path = path.to_owned();
        thread::Builder::new()
            .name("tether-store".to_owned())
            .spawn(move || match open(&path) {
                // If `open`'s caller stopped waiting, `jobs` is dropped and the loop ends.
                Ok(mut conn) => {
                    let _ = ready.send(Ok(()));
                    for job in queue {
                        job(&mut conn);
                    }
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the database thread: {e}")))?;
        opened.await.map_err(|_| StoreError::Closed)??;
        Ok(Worker { jobs })
    }

    /// Runs `job` on the connection's thread and returns its result.
    ///
    /// A panic in `job` is resumed in the caller, as if `job` had run there; the connection
    /// stays usable (a `Transaction` dropped by the unwinding rolls back). A job whose caller
    /// stops waiting still runs to its end.
    pub(super) async fn call<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
            // The caller may have stopped waiting; the job has run either way.
            let _ = reply.send(result);
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        match answer.await {
            Ok(Ok(result)) => result.map_err(database),
            Ok(Err(panic)) => panic::resume_unwind(panic),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

/// Opens the file (creating it, not its directory), sets up the connection and migrates.
fn open(path: &Path) -> Result<Connection, StoreError> {
    let in_path =
        |e: rusqlite::Error| StoreError::Database(format!("cannot open {}: {e}", path.display()));
    let mut conn = Connection::open(path).map_err(in_path)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(in_path)?;
    // WAL lets readers in other processes go on while this one writes, and survives a crash
    // like the rollback journal does. The mode is stored in the file, so setting it is a
    // no-op after the first open; a file system without shared memory refuses it.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(in_path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "cannot open {}: SQLite kept journal_mode {mode} instead of wal",
            path.display()
        )));
    }
    // Off by default in every new connection; the schema relies on it.
    conn.pragma_update(None, "foreign_keys", true).map_err(in_path)?;
    migrate::apply(&mut conn, migrate::MIGRATIONS)?;
    Ok(conn)
}
