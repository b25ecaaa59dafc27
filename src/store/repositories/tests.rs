//! Repositories' privacy and the visible-runs filter.

use crate::store::NewRun;
use crate::store::tests::{insert, new_run, new_store};

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
