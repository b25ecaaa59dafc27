//! Runs through the store's API.

use std::time::{Duration, SystemTime};

use crate::core::run::Conclusion;
use crate::store::tests::{at_ms, entry, insert, new_run, new_store, query_i64};
use crate::store::{NewRun, RunRecord, RunStatus, StoreError};

fn ids(runs: &[RunRecord]) -> Vec<i64> {
    runs.iter().map(|run| run.id).collect()
}

#[tokio::test]
async fn insert_run_is_idempotent_per_delivery_check_and_rerun() {
    let (_dir, _path, store) = new_store().await;
    let first = store.insert_run(new_run(Some("d1"), "test"), vec![entry("create")]).await;
    let first = first.unwrap();
    let again = store.insert_run(new_run(Some("d1"), "test"), vec![entry("create")]).await;
    assert_eq!(again.unwrap(), first);
    assert_eq!(query_i64(&store, "SELECT count(*) FROM runs").await, 1);
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
    let other_check = insert(&store, new_run(Some("d1"), "lint")).await;
    let rerun = NewRun { rerun_of: Some(first), ..new_run(Some("d1"), "test") };
    let rerun_id = insert(&store, rerun.clone()).await;
    assert_eq!(insert(&store, rerun).await, rerun_id);
    let distinct = [first, other_check, rerun_id];
    assert!(distinct[0] != distinct[1] && distinct[1] != distinct[2] && distinct[0] != distinct[2]);
    // Without a delivery (a rerun asked on the web page, say) there is nothing to match.
    let manual = insert(&store, new_run(None, "test")).await;
    assert_ne!(insert(&store, new_run(None, "test")).await, manual);
    assert_eq!(query_i64(&store, "SELECT count(*) FROM runs").await, 5);
}

#[tokio::test]
async fn the_schema_itself_refuses_a_second_run_per_delivery_check_and_rerun() {
    let (_dir, _path, store) = new_store().await;
    insert(&store, new_run(Some("d1"), "test")).await;
    // A copy of the row with another id: the NULL rerun_of must count as equal.
    let copy = store.worker.call(|conn| {
        let columns = "repo, installation_id, sha, check_name, event, sender, pr_number, thunk,
                       thunk_id, delivery_id, rerun_of, deployment_environment,
                       queue_deadline_ms, status, created_at_ms";
        conn.execute(&format!("INSERT INTO runs ({columns}) SELECT {columns} FROM runs"), [])
    });
    assert!(copy.await.unwrap_err().to_string().contains("UNIQUE"));
}

#[tokio::test]
async fn a_run_round_trips() {
    let (_dir, _path, store) = new_store().await;
    let added = NewRun {
        pr_number: Some(u64::try_from(i64::MAX).unwrap()),
        deployment_environment: Some("production".to_owned()),
        installation_id: None,
        ..new_run(Some("d1"), "deploy")
    };
    let before = SystemTime::now() - Duration::from_millis(1);
    let id = insert(&store, added.clone()).await;
    let stored = store.run(id).await.unwrap().unwrap();
    let created_at = stored.created_at;
    assert!(before <= created_at && created_at <= SystemTime::now(), "{created_at:?}");
    let expected = RunRecord {
        id,
        queued: added,
        status: RunStatus::Queued,
        conclusion: None,
        runner: None,
        exit: None,
        check_run_id: None,
        deployment_id: None,
        created_at,
        started_at: None,
        finished_at: None,
    };
    assert_eq!(stored, expected);
    assert_eq!(store.run(id + 1).await.unwrap(), None);
}

#[tokio::test]
async fn a_pull_request_number_beyond_sqlite_is_an_error() {
    let (_dir, _path, store) = new_store().await;
    let too_big = NewRun { pr_number: Some(u64::MAX), ..new_run(None, "test") };
    let error = store.insert_run(too_big, Vec::new()).await.unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
}

#[tokio::test]
async fn a_rerun_of_an_unknown_run_is_refused() {
    let (_dir, _path, store) = new_store().await;
    let orphan = NewRun { rerun_of: Some(42), ..new_run(None, "test") };
    let error = store.insert_run(orphan, Vec::new()).await.unwrap_err();
    assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
}

#[tokio::test]
async fn start_run_only_starts_a_queued_run() {
    let (_dir, _path, store) = new_store().await;
    let id = insert(&store, new_run(None, "test")).await;
    assert!(store.start_run(id, "alice/laptop", at_ms(5_000), vec![entry("start")]).await.unwrap());
    let again = store.start_run(id, "bob/desktop", at_ms(6_000), vec![entry("start")]).await;
    assert!(!again.unwrap());
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::InProgress);
    assert_eq!((run.runner.as_deref(), run.started_at), (Some("alice/laptop"), Some(at_ms(5_000))));
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
    let outbox_run = "SELECT run_id FROM outbox";
    assert_eq!(query_i64(&store, outbox_run).await, id);
    // Nor a completed one, nor one that does not exist.
    store.finish_run(id, Conclusion::Success, None, at_ms(7_000), Vec::new()).await.unwrap();
    assert!(!store.start_run(id, "alice/laptop", at_ms(8_000), vec![entry("x")]).await.unwrap());
    assert!(!store.start_run(id + 1, "alice/laptop", at_ms(8_000), vec![]).await.unwrap());
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
}

#[tokio::test]
async fn finish_run_finishes_a_queued_or_started_run_once() {
    let (_dir, _path, store) = new_store().await;
    let queued = insert(&store, new_run(None, "test")).await;
    let started = insert(&store, new_run(None, "lint")).await;
    store.start_run(started, "alice/laptop", at_ms(1_000), Vec::new()).await.unwrap();
    let timed_out =
        store.finish_run(queued, Conclusion::TimedOut, None, at_ms(2_000), vec![entry("a")]);
    assert!(timed_out.await.unwrap());
    let failed = store.finish_run(
        started,
        Conclusion::Failure,
        Some("exit 2"),
        at_ms(3_000),
        vec![entry("b")],
    );
    assert!(failed.await.unwrap());
    let twice =
        store.finish_run(started, Conclusion::Success, None, at_ms(4_000), vec![entry("c")]);
    assert!(!twice.await.unwrap());
    assert_eq!(store.outbox_pending().await.unwrap(), 2);
    let run = store.run(started).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!((run.conclusion, run.exit.as_deref()), (Some(Conclusion::Failure), Some("exit 2")));
    assert_eq!((run.started_at, run.finished_at), (Some(at_ms(1_000)), Some(at_ms(3_000))));
    let run = store.run(queued).await.unwrap().unwrap();
    assert_eq!((run.conclusion, run.runner), (Some(Conclusion::TimedOut), None));
}

#[tokio::test]
async fn recent_runs_pages_by_id_and_filters_by_repo() {
    let (_dir, _path, store) = new_store().await;
    let mut widgets = Vec::new();
    for n in 0..5 {
        let repo = if n % 2 == 0 { "acme/widgets" } else { "acme/gadgets" };
        let id = insert(&store, NewRun { repo: repo.to_owned(), ..new_run(None, "test") }).await;
        if repo == "acme/widgets" {
            widgets.push(id);
        }
    }
    let all = store.recent_runs(None, 10, None).await.unwrap();
    assert_eq!(ids(&all), [5, 4, 3, 2, 1]);
    assert_eq!(ids(&store.recent_runs(None, 2, None).await.unwrap()), [5, 4]);
    assert_eq!(ids(&store.recent_runs(None, 2, Some(4)).await.unwrap()), [3, 2]);
    assert_eq!(ids(&store.recent_runs(None, 2, Some(2)).await.unwrap()), [1]);
    let repo = store.recent_runs(Some("ACME/Widgets"), 10, None).await.unwrap();
    assert_eq!(ids(&repo), [5, 3, 1]);
    assert_eq!(widgets, [1, 3, 5]);
    let page = store.recent_runs(Some("acme/widgets"), 1, Some(5)).await.unwrap();
    assert_eq!(ids(&page), [3]);
}

#[tokio::test]
async fn runs_for_commit_are_newest_first() {
    let (_dir, _path, store) = new_store().await;
    let a = insert(&store, new_run(None, "test")).await;
    insert(&store, NewRun { sha: "ffff".to_owned(), ..new_run(None, "test") }).await;
    insert(&store, NewRun { repo: "acme/other".to_owned(), ..new_run(None, "test") }).await;
    let b = insert(&store, new_run(None, "lint")).await;
    let runs = store.runs_for_commit("Acme/Widgets", "0123abcd").await.unwrap();
    assert_eq!(ids(&runs), [b, a]);
}

#[tokio::test]
async fn open_runs_of_pr_are_its_queued_and_started_runs_of_the_check() {
    let (_dir, _path, store) = new_store().await;
    let pr = |number, check| NewRun { pr_number: Some(number), ..new_run(None, check) };
    let queued = insert(&store, pr(7, "test")).await;
    let started = insert(&store, pr(7, "test")).await;
    let finished = insert(&store, pr(7, "test")).await;
    insert(&store, pr(8, "test")).await;
    insert(&store, pr(7, "lint")).await;
    insert(&store, new_run(None, "test")).await;
    store.start_run(started, "alice/laptop", at_ms(1), Vec::new()).await.unwrap();
    store.finish_run(finished, Conclusion::Cancelled, None, at_ms(1), Vec::new()).await.unwrap();
    let open = store.open_runs_of_pr("ACME/widgets", 7, "test").await.unwrap();
    assert_eq!(ids(&open), [queued, started]);
}

#[tokio::test]
async fn queued_and_in_progress_runs_are_oldest_first() {
    let (_dir, _path, store) = new_store().await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(insert(&store, new_run(None, "test")).await);
    }
    for id in [runs[3], runs[1]] {
        store.start_run(id, "alice/laptop", at_ms(1), Vec::new()).await.unwrap();
    }
    store.finish_run(runs[2], Conclusion::Cancelled, None, at_ms(1), Vec::new()).await.unwrap();
    assert_eq!(ids(&store.queued_runs().await.unwrap()), [runs[0], runs[4]]);
    assert_eq!(ids(&store.in_progress_runs().await.unwrap()), [runs[1], runs[3]]);
    let counts = store.run_status_counts().await.unwrap();
    let expected = [("queued", 2), ("in_progress", 2), ("completed", 1)];
    let expected: Vec<(String, u64)> =
        expected.iter().map(|(status, n)| (status.to_string(), *n)).collect();
    assert_eq!(counts, expected);
}

#[tokio::test]
async fn status_counts_name_every_status() {
    let (_dir, _path, store) = new_store().await;
    insert(&store, new_run(None, "test")).await;
    let counts = store.run_status_counts().await.unwrap();
    let expected = [("queued", 1), ("in_progress", 0), ("completed", 0)];
    let expected: Vec<(String, u64)> =
        expected.iter().map(|(status, n)| (status.to_string(), *n)).collect();
    assert_eq!(counts, expected);
}

#[tokio::test]
async fn github_ids_are_remembered() {
    let (_dir, _path, store) = new_store().await;
    let id = insert(&store, new_run(None, "deploy")).await;
    let other = insert(&store, new_run(None, "deploy")).await;
    store.set_check_run_id(id, 1_234).await.unwrap();
    store.set_deployment_id(id, 5_678).await.unwrap();
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!((run.check_run_id, run.deployment_id), (Some(1_234), Some(5_678)));
    let untouched = store.run(other).await.unwrap().unwrap();
    assert_eq!((untouched.check_run_id, untouched.deployment_id), (None, None));
}

/// A run keeps its commit's branch, message and link as it was planned with them.
#[tokio::test]
async fn a_run_keeps_its_commit_facts() {
    let (_dir, _path, store) = new_store().await;
    let run = new_run(None, "test");
    let id = insert(&store, run.clone()).await;
    let stored = store.run(id).await.unwrap().unwrap();
    assert_eq!(stored.commit, run.commit);
    assert_eq!(stored.commit.message.as_deref(), Some("Fix the widgets"));
}

/// Migration 0007 leaves the runs from before it without commit facts, and readable.
#[tokio::test]
async fn runs_from_before_0007_read_without_commit_facts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    crate::store::migrate::apply(&mut conn, &crate::store::migrate::MIGRATIONS[..4]).unwrap();
    conn.execute(
        "INSERT INTO runs (repo, sha, check_name, event, sender, thunk, thunk_id,
                           queue_deadline_ms, status, created_at_ms)
         VALUES ('acme/widgets', 'abcd', 'test', 'push', 'alice', '{}', 't', 1, 'queued', 1)",
        [],
    )
    .unwrap();
    drop(conn);
    let store = crate::store::Store::open(&path).await.unwrap();
    let old = store.recent_runs(None, 10, None).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].commit, crate::core::commit::CommitInfo::default());
}
