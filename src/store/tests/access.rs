//! Repositories' privacy, the visible-runs filter and sessions.

use std::time::Duration;

use super::new_store;
use super::runs::{insert, new_run};
use crate::store::NewRun;

fn run_of(repo: &str) -> NewRun {
    NewRun { repo: repo.to_owned(), ..new_run(None, "test") }
}

#[tokio::test]
async fn lists_show_public_and_readable_runs_only_and_unknown_is_private() {
    let (_dir, _path, store) = new_store().await;
    let public = insert(&store, run_of("acme/open")).await;
    let secret = insert(&store, run_of("acme/secret")).await;
    let unknown = insert(&store, run_of("acme/old")).await;
    store.record_repository("acme/open", false, Some(11)).await.unwrap();
    store.record_repository("acme/secret", true, Some(11)).await.unwrap();
    let ids = |runs: Vec<crate::store::RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    let anonymous = store.visible_recent_runs(&[], 50, None).await.unwrap();
    assert_eq!(ids(anonymous), [public]);
    let reader = ["ACME/Secret".to_owned()];
    let runs = store.visible_recent_runs(&reader, 50, None).await.unwrap();
    assert_eq!(ids(runs), [secret, public]);
    // A repository made public later shows at once; made private again, it hides.
    store.record_repository("acme/old", false, None).await.unwrap();
    assert_eq!(ids(store.visible_recent_runs(&[], 50, None).await.unwrap()), [unknown, public]);
    store.record_repository("acme/old", true, None).await.unwrap();
    assert_eq!(ids(store.visible_recent_runs(&[], 50, None).await.unwrap()), [public]);
    let known = store.repository("ACME/OLD").await.unwrap().unwrap();
    assert_eq!((known.private, known.installation_id), (true, None));
    assert_eq!(store.repository("acme/open").await.unwrap().unwrap().installation_id, Some(11));
    assert_eq!(store.known_installations().await.unwrap(), [11]);
}

#[tokio::test]
async fn sessions_are_found_by_hash_until_they_expire_or_end() {
    let (_dir, _path, store) = new_store().await;
    let (a, b) = ([1; 32], [2; 32]);
    store.create_session(a, "alice", "gho_a", Duration::from_secs(60)).await.unwrap();
    store.create_session(b, "bob", "gho_b", Duration::ZERO).await.unwrap();
    let found = store.session(a).await.unwrap().unwrap();
    assert_eq!((found.login.as_str(), found.github_token.as_str()), ("alice", "gho_a"));
    assert!(!format!("{found:?}").contains("gho_a"));
    assert!(store.session(b).await.unwrap().is_none(), "expired");
    assert!(store.session([3; 32]).await.unwrap().is_none());
    assert!(store.delete_session(a).await.unwrap());
    assert!(store.session(a).await.unwrap().is_none());
    assert!(!store.delete_session(a).await.unwrap());
}
