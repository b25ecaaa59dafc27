//! Deliveries and installations through the store's API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::migrate::{self, MIGRATIONS};
use crate::store::tests::{at_ms, new_store, query_i64};
use crate::store::{DeliveryOutcome, NewDelivery, Store};

fn delivery(id: &str, received_ms: u64) -> NewDelivery {
    NewDelivery {
        id: id.to_owned(),
        event: "push".to_owned(),
        action: None,
        payload: format!("{{\"delivery\":\"{id}\"}}").into_bytes(),
        received_at: at_ms(received_ms),
    }
}

async fn unprocessed_ids(store: &Store, limit: usize) -> Vec<String> {
    let deliveries = store.unprocessed_deliveries(limit).await.unwrap();
    deliveries.into_iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn a_duplicate_delivery_returns_false_and_keeps_the_first_payload() {
    let (_dir, _path, store) = new_store().await;
    assert!(store.insert_delivery(delivery("d1", 1_000)).await.unwrap());
    let again = NewDelivery { payload: b"second".to_vec(), ..delivery("d1", 2_000) };
    assert!(!store.insert_delivery(again).await.unwrap());
    let stored = store.unprocessed_deliveries(10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, br#"{"delivery":"d1"}"#);
    assert_eq!(stored[0].received_at, at_ms(1_000));
}

#[tokio::test]
async fn a_delivery_round_trips_byte_for_byte() {
    let (_dir, _path, store) = new_store().await;
    let added = NewDelivery {
        event: "check_run".to_owned(),
        action: Some("rerequested".to_owned()),
        // Not UTF-8: the body is kept as bytes.
        payload: vec![0, 159, 146, 150, 255],
        received_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        ..delivery("d1", 0)
    };
    store.insert_delivery(added.clone()).await.unwrap();
    let stored = store.unprocessed_deliveries(1).await.unwrap().remove(0);
    assert_eq!(
        (stored.id, stored.event, stored.action, stored.payload, stored.received_at),
        (added.id, added.event, added.action, added.payload, added.received_at)
    );
    assert_eq!((stored.outcome, stored.processed_at), (None, None));
}

#[tokio::test]
async fn unprocessed_deliveries_are_oldest_first_until_finished() {
    let (_dir, _path, store) = new_store().await;
    // Inserted out of order; "b" and "c" tie and keep their insertion order.
    for (id, received_ms) in [("d", 4_000), ("b", 2_000), ("c", 2_000), ("a", 1_000)] {
        store.insert_delivery(delivery(id, received_ms)).await.unwrap();
    }
    assert_eq!(unprocessed_ids(&store, 10).await, ["a", "b", "c", "d"]);
    assert_eq!(unprocessed_ids(&store, 2).await, ["a", "b"]);
    let before = SystemTime::now() - Duration::from_millis(1);
    store.finish_delivery("b", DeliveryOutcome::Processed, "3 runs").await.unwrap();
    store.finish_delivery("a", DeliveryOutcome::Failed, "no installation").await.unwrap();
    assert_eq!(unprocessed_ids(&store, 10).await, ["c", "d"]);
    let finished_ms = query_i64(&store, "SELECT processed_at_ms FROM deliveries WHERE id = 'b'");
    let finished = at_ms(finished_ms.await as u64);
    assert!(before <= finished && finished <= SystemTime::now(), "{finished:?}");
    let failed = "SELECT count(*) FROM deliveries
                  WHERE id = 'a' AND outcome = 'failed' AND outcome_detail = 'no installation'";
    assert_eq!(query_i64(&store, failed).await, 1);
}

/// The ids of the deliveries due at `now`.
async fn due_ids(store: &Store, now: SystemTime) -> Vec<String> {
    let deliveries = store.due_deliveries(now, 10).await.unwrap();
    deliveries.into_iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn a_delivery_waiting_for_its_retry_does_not_hold_up_the_others() {
    let (_dir, _path, store) = new_store().await;
    for (id, received_ms) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
        store.insert_delivery(delivery(id, received_ms)).await.unwrap();
    }
    let now = SystemTime::now();
    let (first_retry, second_retry) = (now + Duration::from_secs(1), now + Duration::from_secs(3));
    store.delivery_retry("a", "GitHub is unavailable: HTTP 502", first_retry, now).await.unwrap();
    assert_eq!(due_ids(&store, now).await, ["b", "c"]);
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(at_ms(0)), "b and c are due now");
    assert_eq!(store.deliveries_retrying().await.unwrap(), 1);
    store.finish_delivery("b", DeliveryOutcome::Processed, "1 runs").await.unwrap();
    store.finish_delivery("c", DeliveryOutcome::Processed, "1 runs").await.unwrap();
    let next = store.next_delivery_due().await.unwrap().unwrap();
    assert!(first_retry - Duration::from_millis(1) < next && next <= first_retry, "{next:?}");
    assert_eq!(due_ids(&store, first_retry).await, ["a"]);
    // A second failure counts, keeps the first one's time, and the newest error.
    let later = now + Duration::from_secs(1);
    store.delivery_retry("a", "GitHub's rate limit is spent", second_retry, later).await.unwrap();
    let a = store.unprocessed_deliveries(10).await.unwrap().remove(0);
    assert_eq!(a.attempts, 2);
    assert_eq!(a.last_error.as_deref(), Some("GitHub's rate limit is spent"));
    let first = a.first_failure_at.unwrap();
    assert!(now - Duration::from_millis(1) < first && first <= now, "{first:?}");
    assert_eq!(due_ids(&store, first_retry).await, Vec::<String>::new());
    store.finish_delivery("a", DeliveryOutcome::Failed, "after 3 attempts: …").await.unwrap();
    assert_eq!(store.next_delivery_due().await.unwrap(), None);
    assert_eq!(store.deliveries_retrying().await.unwrap(), 0);
}

#[tokio::test]
async fn outcome_counts_are_by_outcome_whatever_the_detail() {
    let (_dir, _path, store) = new_store().await;
    let outcomes = [
        ("a", Some((DeliveryOutcome::Processed, "3 runs"))),
        ("b", Some((DeliveryOutcome::Processed, "no tether.toml"))),
        ("c", Some((DeliveryOutcome::Ignored, "a deleted ref"))),
        ("d", Some((DeliveryOutcome::Failed, "malformed push payload: after: missing field"))),
        ("e", Some((DeliveryOutcome::Failed, "no installation in the payload"))),
        ("f", None),
    ];
    for (id, outcome) in outcomes {
        store.insert_delivery(delivery(id, 1_000)).await.unwrap();
        if let Some((outcome, detail)) = outcome {
            store.finish_delivery(id, outcome, detail).await.unwrap();
        }
    }
    let counts = store.delivery_outcome_counts().await.unwrap();
    let expected = [
        (None, 1),
        (Some(DeliveryOutcome::Processed), 2),
        (Some(DeliveryOutcome::Ignored), 1),
        (Some(DeliveryOutcome::Failed), 2),
    ];
    assert_eq!(counts, expected);
}

/// Migration 0003 splits the outcomes written before it into the word and its detail.
#[tokio::test]
async fn outcomes_written_before_0003_are_split_into_word_and_detail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    migrate::apply(&mut conn, &MIGRATIONS[..2]).unwrap();
    let old = [
        ("a", "processed: 3 runs"),
        ("b", "processed"),
        ("c", "ignored: pull_request closed"),
        ("d", "failed: malformed push payload: after: missing field"),
        ("e", "weird"),
    ];
    for (id, outcome) in old {
        conn.execute(
            "INSERT INTO deliveries (id, event, payload, received_at_ms, outcome, processed_at_ms)
             VALUES (?1, 'push', X'', 1, ?2, 2)",
            (id, outcome),
        )
        .unwrap();
    }
    drop(conn);
    let store = Store::open(&path).await.unwrap();
    let split = "SELECT group_concat(outcome || '|' || coalesce(outcome_detail, '-'), ';')
                 FROM (SELECT * FROM deliveries ORDER BY id)";
    let split = store.worker.call(move |conn| conn.query_row(split, [], |row| row.get(0)));
    let split: String = split.await.unwrap();
    assert_eq!(
        split,
        "processed|3 runs;processed|-;ignored|pull_request closed;\
         failed|malformed push payload: after: missing field;failed|weird"
    );
}

#[tokio::test]
async fn the_latest_installation_action_wins() {
    let (_dir, _path, store) = new_store().await;
    store.record_installation(7, "acme", "created").await.unwrap();
    store.record_installation(8, "other", "created").await.unwrap();
    store.record_installation(7, "Acme-Renamed", "suspend").await.unwrap();
    assert_eq!(query_i64(&store, "SELECT count(*) FROM installations").await, 2);
    let latest = "SELECT count(*) FROM installations
                  WHERE id = 7 AND account = 'acme-renamed' AND action = 'suspend'";
    assert_eq!(query_i64(&store, latest).await, 1);
}

#[tokio::test]
async fn payloads_of_deliveries_finished_before_the_cutoff_are_dropped_and_their_ids_kept() {
    let (_dir, _path, store) = new_store().await;
    for id in ["done", "pending"] {
        store.insert_delivery(delivery(id, 1_000)).await.unwrap();
    }
    store.finish_delivery("done", DeliveryOutcome::Processed, "1 run").await.unwrap();
    let a_day_ago = SystemTime::now() - Duration::from_secs(86_400);
    assert_eq!(store.drop_old_payloads(a_day_ago).await.unwrap(), 0);
    let soon = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(store.drop_old_payloads(soon).await.unwrap(), 1);
    assert_eq!(store.drop_old_payloads(soon).await.unwrap(), 0, "already dropped");
    let sizes =
        "SELECT group_concat(length(payload)) FROM (SELECT payload FROM deliveries ORDER BY id)";
    let sizes =
        store.worker.call(move |conn| conn.query_row(sizes, [], |row| row.get::<_, String>(0)));
    assert_eq!(sizes.await.unwrap(), format!("0,{}", br#"{"delivery":"pending"}"#.len()));
    // The id still keeps a redelivery out.
    assert!(!store.insert_delivery(delivery("done", 2_000)).await.unwrap());
    assert_eq!(unprocessed_ids(&store, 10).await, ["pending"]);
}
