//! Sessions: found by the hash of their cookie until they expire or end.

use std::time::Duration;

use crate::store::tests::new_store;

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
