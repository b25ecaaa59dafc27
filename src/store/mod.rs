//! The SQLite file (users, runners, deliveries, runs, the outbox): the only module using rusqlite.
//!
//! Every call runs on one thread that owns the connection (see `worker`), so async code never
//! waits on SQLite, and no rusqlite type leaves this module: errors become [`StoreError`] here.

mod deliveries;
mod migrate;
mod outbox;
mod repositories;
mod run_queries;
mod runners;
mod runs;
mod sessions;
mod steps;
mod users;
mod worker;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::worker::Worker;

pub use self::deliveries::{Delivery, DeliveryOutcome, NewDelivery};
pub use self::outbox::{OutboxCounts, OutboxEntry, OutboxRow};
pub use self::repositories::RepositoryRecord;
pub use self::run_queries::RunRecord;
pub use self::runs::{NewRun, RunStatus};
pub use self::sessions::SessionRecord;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed; the message is SQLite's, with the file's path when opening.
    #[error("database error: {0}")]
    Database(String),
    /// At open: the file has more migrations applied than this build has, so its schema may
    /// mean something this build does not know.
    #[error(
        "the database was written by a newer tether (schema {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    /// The connection's thread is gone.
    #[error("the database is closed")]
    Closed,
}

/// A runner to add: it has just connected in session `session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunner {
    /// The GitHub login of the user who connected it.
    pub owner: String,
    /// Unique per owner (case-sensitive, unlike the owner).
    pub name: String,
    pub os: String,
    pub arch: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    pub session: String,
}

/// A connected runner, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerRecord {
    /// As spelled by the session that added the runner.
    pub owner: String,
    pub name: String,
    pub os: String,
    pub arch: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    pub session: String,
    /// When [`Store::add_runner`] stored it, to the millisecond.
    pub connected_at: SystemTime,
}

/// The database; cheap to clone, and every clone shares one connection. The file is closed when
/// the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    worker: Worker,
}

impl Store {
    /// Opens (creating if needed) the database file and applies the migrations.
    ///
    /// The file's directory must exist. A database migrated by a newer tether is refused with
    /// [`StoreError::TooNew`].
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let worker = Worker::start(path).await?;
        Ok(Store { worker })
    }

    /// Records a login by GitHub user `login` (insert, or update last_login).
    pub async fn record_login(&self, login: &str) -> Result<(), StoreError> {
        let (login, now) = (login.to_owned(), now_ms());
        self.worker.call(move |conn| users::record_login(conn, &login, now)).await
    }

    /// Remembers the GitHub numeric id of a login.
    ///
    /// Creates the user if needed (without counting a login). Another login that had this id is
    /// the account's old name, and loses it.
    pub async fn set_user_id(&self, login: &str, github_id: i64) -> Result<(), StoreError> {
        let (login, now) = (login.to_owned(), now_ms());
        self.worker.call(move |conn| users::set_id(conn, &login, github_id, now)).await
    }

    /// The GitHub numeric id of a login, if known.
    pub async fn user_id(&self, login: &str) -> Result<Option<i64>, StoreError> {
        let login = login.to_owned();
        self.worker.call(move |conn| users::id(conn, &login)).await
    }

    /// Adds a runner; a runner with the same owner and name is replaced atomically, and its
    /// session id is returned so the caller can close that session.
    ///
    /// An owner with no user row gets one (without counting a login). `None` when nothing was
    /// replaced, or when the replaced runner was of this same session.
    pub async fn add_runner(&self, runner: NewRunner) -> Result<Option<String>, StoreError> {
        let now = now_ms();
        self.worker.call(move |conn| runners::add(conn, &runner, now)).await
    }

    /// Removes a runner only if it still belongs to `session` (a replaced runner's late removal
    /// must not delete its replacement). Returns whether a row was removed.
    pub async fn remove_runner(
        &self,
        owner: &str,
        name: &str,
        session: &str,
    ) -> Result<bool, StoreError> {
        let (owner, name, session) = (owner.to_owned(), name.to_owned(), session.to_owned());
        self.worker.call(move |conn| runners::remove(conn, &owner, &name, &session)).await
    }

    /// Removes every runner of a session; returns how many.
    pub async fn remove_session_runners(&self, session: &str) -> Result<u64, StoreError> {
        let session = session.to_owned();
        self.worker.call(move |conn| runners::remove_session(conn, &session)).await
    }

    /// Removes all runner rows (left over from a crash), at start; returns how many.
    pub async fn clear_runners(&self) -> Result<u64, StoreError> {
        self.worker.call(|conn| runners::clear(conn)).await
    }

    /// All runners, ordered by owner (case-insensitively) then name.
    pub async fn runners(&self) -> Result<Vec<RunnerRecord>, StoreError> {
        self.worker.call(|conn| runners::list(conn)).await
    }
}

/// The one conversion of rusqlite's errors.
fn database(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

/// Now, as stored: milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    millis(SystemTime::now())
}

/// A time as stored: milliseconds since the Unix epoch; one before the epoch is stored as it.
fn millis(time: SystemTime) -> i64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// A row count or limit as SQLite takes it; more than `i64::MAX` means no limit anyway.
fn limit(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A `u64` as SQLite stores it; one above `i64::MAX` fails the statement.
fn to_i64(value: u64) -> rusqlite::Result<i64> {
    i64::try_from(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A stored count; SQLite's `count` is never negative.
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A stored time; one before the epoch (only a clock set far back writes it) reads as the epoch.
fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
