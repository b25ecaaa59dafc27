//! The runners table through the store's API.

use std::time::{Duration, SystemTime};

use crate::store::tests::{add, new_store, query_i64, runner};
use crate::store::{NewRunner, RunnerRecord, Store};

/// (owner, name, session) of every runner, in the order `runners()` gives.
async fn listed(store: &Store) -> Vec<(String, String, String)> {
    let runners = store.runners().await.unwrap();
    runners.into_iter().map(|r| (r.owner, r.name, r.session)).collect()
}

fn row(owner: &str, name: &str, session: &str) -> (String, String, String) {
    (owner.to_owned(), name.to_owned(), session.to_owned())
}

#[tokio::test]
async fn add_runner_replaces_and_returns_the_old_session() {
    let (_dir, _path, store) = new_store().await;
    let first = add(&store, "alice", "laptop", "s1").await;
    assert_eq!(first, None);
    let mut newer = runner("alice", "laptop", "s2");
    newer.capacity = 8;
    let replaced = store.add_runner(newer).await.unwrap();
    assert_eq!(replaced.as_deref(), Some("s1"));
    let runners = store.runners().await.unwrap();
    assert_eq!(runners.len(), 1);
    assert_eq!((runners[0].session.as_str(), runners[0].capacity), ("s2", 8));
}

#[tokio::test]
async fn re_adding_a_runner_in_its_own_session_returns_none() {
    let (_dir, _path, store) = new_store().await;
    add(&store, "alice", "laptop", "s1").await;
    let replaced = add(&store, "alice", "laptop", "s1").await;
    assert_eq!(replaced, None);
    assert_eq!(listed(&store).await, [row("alice", "laptop", "s1")]);
}

#[tokio::test]
async fn remove_runner_with_a_stale_session_removes_nothing() {
    let (_dir, _path, store) = new_store().await;
    add(&store, "alice", "laptop", "s1").await;
    add(&store, "alice", "laptop", "s2").await;
    let stale = store.remove_runner("alice", "laptop", "s1").await.unwrap();
    assert!(!stale);
    assert_eq!(listed(&store).await, [row("alice", "laptop", "s2")]);
    let current = store.remove_runner("alice", "laptop", "s2").await.unwrap();
    assert!(current);
    assert_eq!(listed(&store).await, []);
}

#[tokio::test]
async fn remove_session_runners_removes_only_that_session() {
    let (_dir, _path, store) = new_store().await;
    for (owner, name, session) in [("alice", "a", "s1"), ("alice", "b", "s1"), ("bob", "a", "s2")] {
        add(&store, owner, name, session).await;
    }
    assert_eq!(store.remove_session_runners("s1").await.unwrap(), 2);
    assert_eq!(listed(&store).await, [row("bob", "a", "s2")]);
    assert_eq!(store.remove_session_runners("s1").await.unwrap(), 0);
}

#[tokio::test]
async fn clear_runners_removes_every_runner_and_keeps_users() {
    let (_dir, _path, store) = new_store().await;
    for (owner, name, session) in [("alice", "a", "s1"), ("bob", "a", "s2"), ("bob", "b", "s3")] {
        add(&store, owner, name, session).await;
    }
    assert_eq!(store.clear_runners().await.unwrap(), 3);
    assert_eq!(listed(&store).await, []);
    assert_eq!(store.clear_runners().await.unwrap(), 0);
    assert_eq!(query_i64(&store, "SELECT count(*) FROM users").await, 2);
}

#[tokio::test]
async fn runner_names_are_case_sensitive() {
    let (_dir, _path, store) = new_store().await;
    add(&store, "alice", "Laptop", "s1").await;
    let replaced = add(&store, "alice", "laptop", "s2").await;
    assert_eq!(replaced, None);
    assert_eq!(store.runners().await.unwrap().len(), 2);
}

#[tokio::test]
async fn runner_fields_and_labels_round_trip() {
    let (_dir, _path, store) = new_store().await;
    let labels = ["gpu", "a,b", "quote\"d", "ünïcode", ""].map(str::to_owned);
    let added = NewRunner {
        os: "macos".to_owned(),
        arch: "arm64".to_owned(),
        labels: labels.to_vec(),
        capacity: u32::MAX,
        ..runner("alice", "mac", "s1")
    };
    let before = SystemTime::now() - Duration::from_millis(1);
    store.add_runner(added.clone()).await.unwrap();
    let after = SystemTime::now();
    let stored = store.runners().await.unwrap().remove(0);
    let connected_at = stored.connected_at;
    let expected = RunnerRecord {
        owner: added.owner,
        name: added.name,
        os: added.os,
        arch: added.arch,
        labels: added.labels,
        capacity: added.capacity,
        session: added.session,
        connected_at,
    };
    assert_eq!(stored, expected);
    assert!(before <= connected_at && connected_at <= after, "{connected_at:?}");
    let raw = store.worker.call(|conn| {
        conn.query_row("SELECT labels FROM runners", [], |row| row.get::<_, String>(0))
    });
    assert_eq!(raw.await.unwrap(), r#"["gpu","a,b","quote\"d","ünïcode",""]"#);
}

#[tokio::test]
async fn no_labels_round_trip_as_an_empty_list() {
    let (_dir, _path, store) = new_store().await;
    let bare = NewRunner { labels: Vec::new(), ..runner("alice", "bare", "s1") };
    store.add_runner(bare).await.unwrap();
    assert_eq!(store.runners().await.unwrap()[0].labels, Vec::<String>::new());
}

#[tokio::test]
async fn runners_are_ordered_by_owner_then_name() {
    let (_dir, _path, store) = new_store().await;
    // Inserted out of order; a binary sort would put "Bob" before "alice".
    for (owner, name) in
        [("carol", "a"), ("Bob", "z"), ("alice", "b"), ("Bob", "a"), ("alice", "a")]
    {
        add(&store, owner, name, "s").await;
    }
    let order: Vec<(String, String)> =
        listed(&store).await.into_iter().map(|(owner, name, _)| (owner, name)).collect();
    let expected = [("alice", "a"), ("alice", "b"), ("Bob", "a"), ("Bob", "z"), ("carol", "a")];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(owner, name)| (owner.to_string(), name.to_string())).collect();
    assert_eq!(order, expected);
}
