//! Whose rate limit a login spends: with a GitHub App, every look-up of a user's keys (and id)
//! is made as one of its installations, never anonymously, even when GitHub refuses the token.

use std::time::Duration;

use crate::fake_github::Credential;
use crate::harness::eventually;
use crate::serve::*;
use crate::world::*;

async fn status_as(world: &World, login: &str) -> std::process::Output {
    let known_hosts = world.dir.path().join(format!("known_hosts-{login}"));
    let mut command = ssh(&world.server, world.key(login), login, &known_hosts, &[]);
    command.arg("status").output().await.unwrap()
}

#[tokio::test]
async fn with_an_app_logins_look_keys_up_as_its_installation() {
    let world = World::new().await;
    let output = status_as(&world, "alice").await;
    assert!(output.status.success(), "{output:?}");
    let keys = "GET /users/alice/keys";
    assert_eq!(world.github.calls_as(keys, Credential::Installation), 1);
    assert_eq!(world.github.calls(keys), 1, "a look-up not made with the installation's token");
    // The user's id, learnt after the first login, is looked up the same way.
    let user = "GET /users/alice";
    let learnt = eventually(Duration::from_secs(10), || world.github.calls(user) > 0).await;
    assert!(learnt, "alice's id was never looked up");
    assert_eq!(world.github.calls_as(user, Credential::Installation), world.github.calls(user));
}

#[tokio::test]
async fn with_an_app_whose_token_is_refused_logins_fail_rather_than_go_anonymous() {
    let world = World::new().await;
    world.github.fail_next_with("POST /app/installations/1/access_tokens", 403, 100);
    let output = status_as(&world, "bob").await;
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    assert!(world.github.calls("POST /app/installations/1/access_tokens") > 0);
    assert_eq!(world.github.calls_as("GET /users/bob/keys", Credential::Anonymous), 0);
}

#[tokio::test]
async fn an_app_made_through_setup_is_used_for_lookups_at_once() {
    let world = World::without_app().await;
    let output = status_as(&world, "alice").await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(world.github.calls_as("GET /users/alice/keys", Credential::Anonymous), 1);

    let done = world.create_app_through_setup("the-code").await;
    assert_eq!(done.status, 200, "{done:?}");
    let output = status_as(&world, "bob").await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(world.github.calls_as("GET /users/bob/keys", Credential::Installation), 1);
    assert_eq!(world.github.calls("GET /users/bob/keys"), 1);
}
