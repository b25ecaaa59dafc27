//! The outbox through the store's API.

use std::time::{Duration, SystemTime};

use crate::store::tests::{entry, new_run, new_store};
use crate::store::{OutboxCounts, OutboxRow, Store};

/// How far a retry is pushed in these tests.
const BACKOFF: Duration = Duration::from_secs(60);

/// (id, kind) of the items due at `now`.
async fn due(store: &Store, now: SystemTime, limit: usize) -> Vec<(i64, String)> {
    let items = store.due_outbox(now, limit).await.unwrap();
    items.into_iter().map(|item| (item.id, item.kind)).collect()
}

fn item(id: i64, kind: &str) -> (i64, String) {
    (id, kind.to_owned())
}

/// A run with outbox items "a1" and "a2", then a run-less "n1", then a run with "b1"; returns
/// the runs' ids.
async fn two_runs_and_a_loose_item(store: &Store) -> (i64, i64) {
    let a = store.insert_run(new_run(None, "a"), vec![entry("a1"), entry("a2")]).await.unwrap();
    store.enqueue(None, entry("n1")).await.unwrap();
    let b = store.insert_run(new_run(None, "b"), vec![entry("b1")]).await.unwrap();
    (a, b)
}

#[tokio::test]
async fn only_the_oldest_item_of_a_run_is_due() {
    let (_dir, _path, store) = new_store().await;
    let (a, _) = two_runs_and_a_loose_item(&store).await;
    let now = SystemTime::now();
    assert_eq!(due(&store, now, 10).await, [item(1, "a1"), item(3, "n1"), item(4, "b1")]);
    assert_eq!(due(&store, now, 2).await, [item(1, "a1"), item(3, "n1")]);
    store.outbox_done(1).await.unwrap();
    assert_eq!(due(&store, now, 10).await, [item(2, "a2"), item(3, "n1"), item(4, "b1")]);
    let a2 = store.due_outbox(now, 1).await.unwrap().remove(0);
    assert_eq!(a2.run_id, Some(a));
    assert_eq!(a2.payload, r#"{"a2":true}"#);
    assert_eq!(store.outbox_pending().await.unwrap(), 3);
}

#[tokio::test]
async fn nothing_is_due_before_it_was_enqueued() {
    let (_dir, _path, store) = new_store().await;
    let before = SystemTime::now() - Duration::from_secs(1);
    store.enqueue(None, entry("n1")).await.unwrap();
    assert_eq!(due(&store, before, 10).await, []);
    assert_eq!(due(&store, SystemTime::now(), 10).await, [item(1, "n1")]);
}

#[tokio::test]
async fn a_retry_pushes_the_item_and_its_run_later_and_counts_attempts() {
    let (_dir, _path, store) = new_store().await;
    two_runs_and_a_loose_item(&store).await;
    let later = SystemTime::now() + BACKOFF;
    store.outbox_retry(1, "GitHub said 502", later).await.unwrap();
    // "a2" waits behind "a1" though it is due itself.
    assert_eq!(due(&store, SystemTime::now(), 10).await, [item(3, "n1"), item(4, "b1")]);
    let before = SystemTime::now();
    let retried = store.due_outbox(later, 1).await.unwrap().remove(0);
    let first_failure = retried.first_failure_at.expect("the first failure's time");
    assert!(first_failure <= before, "{first_failure:?}");
    let expected = OutboxRow {
        id: 1,
        run_id: Some(1),
        kind: "a1".to_owned(),
        payload: r#"{"a1":true}"#.to_owned(),
        attempts: 1,
        next_attempt_at: retried.next_attempt_at,
        last_error: Some("GitHub said 502".to_owned()),
        first_failure_at: Some(first_failure),
    };
    assert_eq!(retried, expected);
    assert!(later - Duration::from_millis(1) < retried.next_attempt_at);
    assert!(retried.next_attempt_at <= later);
    store.outbox_retry(1, "timed out", later).await.unwrap();
    let retried = store.due_outbox(later, 1).await.unwrap().remove(0);
    assert_eq!((retried.attempts, retried.last_error.as_deref()), (2, Some("timed out")));
    // The second failure keeps the first one's time: the day of retries counts from it.
    assert_eq!(retried.first_failure_at, Some(first_failure));
}

#[tokio::test]
async fn a_failed_item_is_kept_with_its_error_and_does_not_hold_up_its_run() {
    let (_dir, _path, store) = new_store().await;
    two_runs_and_a_loose_item(&store).await;
    store.outbox_retry(4, "GitHub said 502", SystemTime::now() + BACKOFF).await.unwrap();
    store.outbox_failed(1, "HTTP 422: Validation Failed").await.unwrap();
    // "a2" goes now that "a1" is given up; "a1" is never due again.
    let far = SystemTime::now() + 100 * BACKOFF;
    assert_eq!(due(&store, far, 10).await, [item(2, "a2"), item(3, "n1"), item(4, "b1")]);
    let failed = store.failed_outbox(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].id, failed[0].attempts), (1, 1));
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 422: Validation Failed"));
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts, OutboxCounts { pending: 2, retrying: 1, failed: 1 });
    assert_eq!(store.outbox_pending().await.unwrap(), 3);
    store.outbox_done(2).await.unwrap();
    store.outbox_done(3).await.unwrap();
    store.outbox_done(4).await.unwrap();
    // Only the failed item is left, and nothing is due or to wait for.
    assert_eq!(store.next_outbox_due().await.unwrap(), None);
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        OutboxCounts { failed: 1, ..Default::default() }
    );
}

#[tokio::test]
async fn next_outbox_due_is_the_earliest_item_that_can_go() {
    let (_dir, _path, store) = new_store().await;
    assert_eq!(store.next_outbox_due().await.unwrap(), None);
    let before = SystemTime::now() - Duration::from_millis(1);
    store.insert_run(new_run(None, "a"), vec![entry("a1"), entry("a2")]).await.unwrap();
    let next = store.next_outbox_due().await.unwrap().unwrap();
    assert!(before <= next && next <= SystemTime::now(), "{next:?}");
    let later = SystemTime::now() + BACKOFF;
    store.outbox_retry(1, "GitHub said 502", later).await.unwrap();
    // Not "a2"'s time, which has passed: "a2" cannot go before "a1".
    let next = store.next_outbox_due().await.unwrap().unwrap();
    assert!(later - Duration::from_millis(1) < next && next <= later, "{next:?}");
    store.outbox_done(1).await.unwrap();
    store.outbox_done(2).await.unwrap();
    assert_eq!(store.next_outbox_due().await.unwrap(), None);
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn an_item_of_an_unknown_run_is_refused() {
    let (_dir, _path, store) = new_store().await;
    let error = store.enqueue(Some(42), entry("x")).await.unwrap_err();
    assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
}
