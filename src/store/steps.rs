//! The `steps` table: a run's steps as its runner reported them, one row per step.

use rusqlite::types::Type;
use rusqlite::{Connection, Row};

use super::{Store, StoreError, count, millis, system_time, to_i64};
use crate::core::steps::{STEPS_PER_RUN_MAX, Step, StepKind, StepStatus};

impl Store {
    /// Stores `step` of run `run_id` (inserted, or replacing the row of the same index). A step
    /// whose index is [`STEPS_PER_RUN_MAX`] or more is not stored.
    pub async fn save_step(&self, run_id: i64, step: Step) -> Result<(), StoreError> {
        if step.index as usize >= STEPS_PER_RUN_MAX {
            return Ok(());
        }
        self.worker.call(move |conn| save(conn, run_id, &step)).await
    }

    /// The steps of run `run_id`, in the order they began.
    pub async fn steps(&self, run_id: i64) -> Result<Vec<Step>, StoreError> {
        self.worker
            .call(move |conn| {
                let sql = format!("{SELECT_STEPS} WHERE run_id = ?1 ORDER BY position");
                let mut statement = conn.prepare(&sql)?;
                let steps = statement.query_map([run_id], step)?;
                steps.map(|s| s.map(|(_, step)| step)).collect()
            })
            .await
    }

    /// The steps of each of `run_ids` (each run's in the order they began), for lists.
    pub async fn steps_of_runs(&self, run_ids: &[i64]) -> Result<Vec<(i64, Step)>, StoreError> {
        let ids = serde_json::to_string(run_ids).expect("numbers serialize");
        self.worker
            .call(move |conn| {
                let sql = format!(
                    "{SELECT_STEPS} WHERE run_id IN (SELECT value FROM json_each(?1))
                     ORDER BY run_id, position"
                );
                let mut statement = conn.prepare(&sql)?;
                let steps = statement.query_map([&ids], step)?;
                steps.collect()
            })
            .await
    }
}

const SELECT_STEPS: &str = "SELECT run_id, position, name, kind, status, started_at_ms,
        finished_at_ms, first_line, last_line
    FROM steps";
const KIND_COLUMN: usize = 3;
const STATUS_COLUMN: usize = 4;

fn save(conn: &Connection, run_id: i64, step: &Step) -> rusqlite::Result<()> {
    let first = to_i64(step.first_line.max(1))?;
    let last = to_i64(step.last_line)?.max(first);
    conn.execute(
        "INSERT INTO steps (run_id, position, name, kind, status, started_at_ms, finished_at_ms,
                            first_line, last_line)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (run_id, position) DO UPDATE SET
            name = excluded.name, kind = excluded.kind, status = excluded.status,
            started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms,
            first_line = excluded.first_line, last_line = excluded.last_line",
        (
            run_id,
            i64::from(step.index),
            &step.name,
            step.kind.as_str(),
            step.status.as_str(),
            millis(step.started),
            step.finished.map(millis),
            first,
            last,
        ),
    )
    .map(drop)
}

fn step(row: &Row<'_>) -> rusqlite::Result<(i64, Step)> {
    let unknown = |column: usize, name: String| {
        let why = format!("unknown step kind or status {name:?}").into();
        rusqlite::Error::FromSqlConversionFailure(column, Type::Text, why)
    };
    let kind: String = row.get(KIND_COLUMN)?;
    let kind = StepKind::from_name(&kind).ok_or_else(|| unknown(KIND_COLUMN, kind))?;
    let status: String = row.get(STATUS_COLUMN)?;
    let status = StepStatus::from_name(&status).ok_or_else(|| unknown(STATUS_COLUMN, status))?;
    let position: i64 = row.get(1)?;
    let step = Step {
        index: u32::try_from(position).unwrap_or(u32::MAX),
        name: row.get(2)?,
        kind,
        status,
        started: system_time(row.get(5)?),
        finished: row.get::<_, Option<i64>>(6)?.map(system_time),
        first_line: count(row.get(7)?),
        last_line: count(row.get(8)?),
    };
    Ok((row.get(0)?, step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at_ms, insert, new_run, new_store};

    fn step(index: u32, name: &str, status: StepStatus, lines: (u64, u64)) -> Step {
        Step {
            index,
            name: name.into(),
            kind: if index == 0 { StepKind::Run } else { StepKind::Section },
            status,
            started: at_ms(1_000 + u64::from(index)),
            finished: (status != StepStatus::Running).then(|| at_ms(2_000)),
            first_line: lines.0,
            last_line: lines.1,
        }
    }

    #[tokio::test]
    async fn steps_round_trip_and_a_later_event_replaces_an_earlier_one() {
        let (_dir, _path, store) = new_store().await;
        let a = insert(&store, new_run(Some("d1"), "a")).await;
        let other = insert(&store, new_run(Some("d2"), "b")).await;
        store.save_step(a, step(0, "run", StepStatus::Running, (1, 1))).await.unwrap();
        store.save_step(a, step(1, "Build", StepStatus::Running, (2, 2))).await.unwrap();
        let ended = step(1, "Build", StepStatus::Failure, (2, 9));
        store.save_step(a, ended.clone()).await.unwrap();
        store.save_step(other, step(0, "run", StepStatus::Success, (1, 3))).await.unwrap();
        let steps = store.steps(a).await.unwrap();
        assert_eq!(steps, [step(0, "run", StepStatus::Running, (1, 1)), ended]);
        let both = store.steps_of_runs(&[a, other]).await.unwrap();
        let runs: Vec<i64> = both.iter().map(|(run, _)| *run).collect();
        assert_eq!(runs, [a, a, other]);
    }

    #[tokio::test]
    async fn steps_beyond_the_bound_are_not_stored() {
        let (_dir, _path, store) = new_store().await;
        let run = insert(&store, new_run(Some("d1"), "a")).await;
        let far = step(STEPS_PER_RUN_MAX as u32, "x", StepStatus::Running, (1, 1));
        store.save_step(run, far).await.unwrap();
        assert!(store.steps(run).await.unwrap().is_empty());
    }
}
