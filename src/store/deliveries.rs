//! The `deliveries` and `installations` tables: every webhook, stored before it is acted on.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row};

use super::{Store, StoreError, count, limit, millis, now_ms, system_time};

/// A webhook delivery to store, as GitHub sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// GitHub's `X-GitHub-Delivery`; a redelivery repeats it.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// The request body, byte for byte.
    pub payload: Vec<u8>,
    pub received_at: SystemTime,
}

/// How a delivery was finished: one of a few words, so that deliveries can be counted by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryOutcome {
    /// Acted on: runs queued, a config error reported, an installation recorded.
    Processed,
    /// Nothing to do: an action tether does not act on, a deleted branch, not a `/run` comment.
    Ignored,
    /// Could not be acted on, and trying again cannot help: a malformed payload.
    Failed,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] =
        [DeliveryOutcome::Processed, DeliveryOutcome::Ignored, DeliveryOutcome::Failed];

    /// The stored name, which is also its metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Processed => "processed",
            DeliveryOutcome::Ignored => "ignored",
            DeliveryOutcome::Failed => "failed",
        }
    }

    fn from_name(name: &str) -> Option<DeliveryOutcome> {
        DeliveryOutcome::ALL.into_iter().find(|outcome| outcome.as_str() == name)
    }
}

/// A stored delivery. Times are to the millisecond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub payload: Vec<u8>,
    pub received_at: SystemTime,
    /// `None` until finished.
    pub outcome: Option<DeliveryOutcome>,
    /// What else was said about the outcome: `3 runs`, why it failed.
    pub outcome_detail: Option<String>,
    pub processed_at: Option<SystemTime>,
    /// Failed attempts so far, each tried again later.
    pub attempts: u32,
    /// When the first attempt failed: retries end a day after it.
    pub first_failure_at: Option<SystemTime>,
    /// The last failed attempt's error, with its chain of causes.
    pub last_error: Option<String>,
}

impl Store {
    /// Stores a delivery; `Ok(false)` when its id was seen before (nothing changes then).
    pub async fn insert_delivery(&self, delivery: NewDelivery) -> Result<bool, StoreError> {
        self.worker.call(move |conn| insert(conn, &delivery)).await
    }

    /// Deliveries not yet finished, oldest first.
    pub async fn unprocessed_deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.worker.call(move |conn| unprocessed(conn, limit)).await
    }

    /// The stored delivery with this id, finished or not.
    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = id.to_owned();
        let one = move |conn: &mut Connection| {
            let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1");
            conn.query_row(&sql, [&id], delivery).optional()
        };
        self.worker.call(one).await
    }

    /// Unfinished deliveries whose next attempt is due at `now`, oldest first: one waiting for
    /// its retry does not hold up those behind it.
    pub async fn due_deliveries(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = millis(now);
        self.worker.call(move |conn| due(conn, now, limit)).await
    }

    /// Records a failed attempt at `now`: attempts + 1, the error, when to try next; the first
    /// failure's time is kept.
    pub async fn delivery_retry(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: SystemTime,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        let (next, now) = (millis(next_attempt_at), millis(now));
        self.worker.call(move |conn| retry(conn, &id, &error, next, now)).await
    }

    /// The earliest next attempt of an unfinished delivery (`None` when there is none).
    pub async fn next_delivery_due(&self) -> Result<Option<SystemTime>, StoreError> {
        let next = |conn: &mut Connection| {
            conn.query_row(
                "SELECT min(COALESCE(next_attempt_at_ms, 0)) FROM deliveries
                 WHERE outcome IS NULL",
                [],
                |row| row.get::<_, Option<i64>>(0),
            )
        };
        Ok(self.worker.call(next).await?.map(system_time))
    }

    /// How many unfinished deliveries failed at least once and wait to be tried again.
    pub async fn deliveries_retrying(&self) -> Result<u64, StoreError> {
        let retrying = |conn: &mut Connection| {
            conn.query_row(
                "SELECT count(*) FROM deliveries WHERE outcome IS NULL AND attempts > 0",
                [],
                |row| row.get(0),
            )
        };
        self.worker.call(retrying).await.map(count)
    }

    /// Marks a delivery finished with an outcome and its detail (`3 runs`, why it failed).
    ///
    /// Finishing it again replaces the outcome; an unknown id changes nothing.
    pub async fn finish_delivery(
        &self,
        id: &str,
        outcome: DeliveryOutcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        let (id, detail, now) = (id.to_owned(), detail.to_owned(), now_ms());
        self.worker.call(move |conn| finish(conn, &id, outcome, &detail, now)).await
    }

    /// Empties the payloads of deliveries finished before `cutoff`; returns how many. The rows
    /// stay, so a late redelivery of one is still recognised and the counts stay whole.
    pub async fn drop_old_payloads(&self, cutoff: SystemTime) -> Result<u64, StoreError> {
        let cutoff = millis(cutoff);
        self.worker.call(move |conn| drop_payloads(conn, cutoff)).await
    }

    /// (outcome, count) pairs, `None` for unfinished ones, in the order of `None` then
    /// [`DeliveryOutcome::ALL`]. For metrics; outcomes with no delivery are left out.
    pub async fn delivery_outcome_counts(
        &self,
    ) -> Result<Vec<(Option<DeliveryOutcome>, u64)>, StoreError> {
        self.worker.call(|conn| outcome_counts(conn)).await
    }

    /// Records an installation event (id, account login, action); the latest action wins.
    pub async fn record_installation(
        &self,
        installation_id: i64,
        account: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        let (account, action, now) = (account.to_owned(), action.to_owned(), now_ms());
        let record = move |conn: &mut Connection| {
            record_installation(conn, installation_id, &account, &action, now)
        };
        self.worker.call(record).await
    }
}

/// Inserts `delivery` unless its id is stored; returns whether it did.
fn insert(conn: &Connection, delivery: &NewDelivery) -> rusqlite::Result<bool> {
    // DO NOTHING rather than REPLACE: the first copy may already be in the middle of being
    // processed, and a redelivery's body is the same anyway.
    let inserted = conn.execute(
        "INSERT INTO deliveries (id, event, action, payload, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO NOTHING",
        (
            &delivery.id,
            &delivery.event,
            &delivery.action,
            &delivery.payload,
            millis(delivery.received_at),
        ),
    )?;
    Ok(inserted > 0)
}

/// The columns [`delivery`] reads, in its order.
const COLUMNS: &str = "id, event, action, payload, received_at_ms, outcome, processed_at_ms,
                       outcome_detail, attempts, first_failure_at_ms, last_error";

/// At most `count` unfinished deliveries, oldest first (in insertion order among equals).
fn unprocessed(conn: &Connection, count: usize) -> rusqlite::Result<Vec<Delivery>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE outcome IS NULL
         ORDER BY received_at_ms, rowid LIMIT ?1"
    ))?;
    let deliveries = statement.query_map([limit(count)], delivery)?;
    deliveries.collect()
}

/// At most `count` unfinished deliveries due at `now_ms`, oldest first.
fn due(conn: &Connection, now_ms: i64, count: usize) -> rusqlite::Result<Vec<Delivery>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE outcome IS NULL AND COALESCE(next_attempt_at_ms, 0) <= ?1
         ORDER BY received_at_ms, rowid LIMIT ?2"
    ))?;
    let deliveries = statement.query_map((now_ms, limit(count)), delivery)?;
    deliveries.collect()
}

fn retry(
    conn: &Connection,
    id: &str,
    error: &str,
    next_ms: i64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries
         SET attempts = attempts + 1, last_error = ?2, next_attempt_at_ms = ?3,
             first_failure_at_ms = COALESCE(first_failure_at_ms, ?4)
         WHERE id = ?1 AND outcome IS NULL",
        (id, error, next_ms, now_ms),
    )?;
    Ok(())
}

fn finish(
    conn: &Connection,
    id: &str,
    outcome: DeliveryOutcome,
    detail: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deliveries SET outcome = ?2, outcome_detail = ?3, processed_at_ms = ?4
         WHERE id = ?1",
        (id, outcome.as_str(), detail, now_ms),
    )?;
    Ok(())
}

fn drop_payloads(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<u64> {
    let dropped = conn.execute(
        "UPDATE deliveries SET payload = X''
         WHERE processed_at_ms < ?1 AND outcome IS NOT NULL AND length(payload) > 0",
        [cutoff_ms],
    )?;
    Ok(dropped as u64)
}

fn outcome_counts(conn: &Connection) -> rusqlite::Result<Vec<(Option<DeliveryOutcome>, u64)>> {
    let mut statement =
        conn.prepare("SELECT outcome, count(*) FROM deliveries GROUP BY outcome")?;
    let counts = statement.query_map([], |row| {
        let outcome: Option<String> = row.get(0)?;
        Ok((outcome.as_deref().map(outcome_named).transpose()?, count(row.get(1)?)))
    })?;
    let mut counts = counts.collect::<rusqlite::Result<Vec<_>>>()?;
    let rank = |outcome: &Option<DeliveryOutcome>| {
        outcome.map_or(0, |o| 1 + DeliveryOutcome::ALL.iter().position(|a| *a == o).unwrap_or(0))
    };
    counts.sort_by_key(|(outcome, _)| rank(outcome));
    Ok(counts)
}

/// The outcome stored as `name`; migration 0003 left no other names.
fn outcome_named(name: &str) -> rusqlite::Result<DeliveryOutcome> {
    DeliveryOutcome::from_name(name).ok_or_else(|| {
        let error = format!("unknown delivery outcome {name:?}");
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, error.into())
    })
}

fn record_installation(
    conn: &Connection,
    id: i64,
    account: &str,
    action: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO installations (id, account, action, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET account = excluded.account, action = excluded.action,
                                        updated_at_ms = excluded.updated_at_ms",
        (id, account, action, now_ms),
    )?;
    Ok(())
}

fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let processed_at: Option<i64> = row.get(6)?;
    Ok(Delivery {
        id: row.get(0)?,
        event: row.get(1)?,
        action: row.get(2)?,
        payload: row.get(3)?,
        received_at: system_time(row.get(4)?),
        outcome: row.get::<_, Option<String>>(5)?.as_deref().map(outcome_named).transpose()?,
        outcome_detail: row.get(7)?,
        processed_at: processed_at.map(system_time),
        attempts: row.get(8)?,
        first_failure_at: row.get::<_, Option<i64>>(9)?.map(system_time),
        last_error: row.get(10)?,
    })
}

#[cfg(test)]
mod tests;
