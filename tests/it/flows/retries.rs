//! Failing deliveries and GitHub writes: a passing failure retried with backoff without holding
//! up what comes after it, a rate limit waited out until the time GitHub names, and a refusal, a
//! pull request's deleted head or a gone installation recorded `failed` at once with the reason;
//! `/metrics` shows them.

use std::time::Duration;

use serde_json::Value;
use tether::store::{Delivery, DeliveryOutcome, Store};

use super::LONG;
use crate::fake_github::RateLimit;
use crate::harness::*;
use crate::world::*;

const CONTENTS_ROUTE: &str = "GET /repos/octo/repo/contents/tether.toml";
const CREATE_ROUTE: &str = "POST /repos/octo/repo/check-runs";

/// The server's own SQLite file, opened beside it, to read a delivery's record.
async fn store(world: &World) -> Store {
    Store::open(&world.server.data_dir.join("tether.db")).await.unwrap()
}

/// Polls the delivery `id` until `done` holds for it (or `LONG` passes); returns it.
async fn wait_for_delivery(store: &Store, id: &str, done: impl Fn(&Delivery) -> bool) -> Delivery {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let delivery = store.delivery(id).await.unwrap().expect("the delivery is stored");
        if done(&delivery) || tokio::time::Instant::now() >= deadline {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn finished(delivery: &Delivery) -> bool {
    delivery.outcome.is_some()
}

/// The `/metrics` lines that start with `prefix`.
async fn metrics(world: &World, prefix: &str) -> Vec<String> {
    let (_, text) = world.server.get("/metrics").await;
    text.lines().filter(|line| line.starts_with(prefix)).map(str::to_string).collect()
}

/// Polls `/metrics` until it has `line` (or `LONG` passes); returns whether it did.
async fn wait_for_metric(world: &World, line: &str) -> bool {
    let deadline = tokio::time::Instant::now() + LONG;
    while tokio::time::Instant::now() < deadline {
        if metrics(world, line).await.iter().any(|l| l == line) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The time between each request for `route` and the next.
fn gaps(world: &World, route: &str) -> Vec<Duration> {
    world.github.call_times(route).windows(2).map(|w| w[1] - w[0]).collect()
}

fn named<'a>(runs: &'a [Value], name: &str) -> Option<&'a Value> {
    runs.iter().find(|r| r["name"] == name)
}

#[tokio::test]
async fn a_delivery_failing_for_a_while_is_retried_with_backoff_and_holds_up_nobody() {
    let world = World::new().await;
    let store = store(&world).await;
    world.github.set_permission(REPO, "bob", "write");
    let head = world.commit_config("[checks.patient]\nrun = \"true\"\n");
    world.github.set_pull(REPO, 9, &head);
    let pulls = format!("GET /repos/{REPO}/pulls/9");
    world.github.fail_next(&pulls, 3);
    let comment = world.comment_payload("bob", 9, 81, "/run patient");
    assert_eq!(world.deliver("issue_comment", "run-retried", &comment).await.0, 202);
    let failed_once = wait_for_delivery(&store, "run-retried", |d| d.attempts >= 1).await;
    assert_eq!(failed_once.outcome, None, "{failed_once:?}");
    let error = failed_once.last_error.clone().unwrap_or_default();
    assert!(error.contains("HTTP 502"), "{error}");

    // A push behind it goes through while it waits for its retry.
    let sha = world.commit_config("[checks.behind]\nrun = \"true\"\n");
    assert_eq!(world.deliver("push", "push-behind", &world.push_payload(&sha)).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| named(rs, "behind").is_some()).await;
    assert!(named(&runs, "behind").is_some(), "{runs:#?}");
    let waiting = store.delivery("run-retried").await.unwrap().unwrap();
    assert_eq!(waiting.outcome, None, "the /run was not retried with backoff: {waiting:?}");
    assert!(world.github.calls(&pulls) < 4, "{} calls", world.github.calls(&pulls));
    assert!(wait_for_metric(&world, "tether_webhook_deliveries_retrying 1").await);

    // Then it goes through too, each retry after 1 s, 2 s, 4 s.
    let done = wait_for_delivery(&store, "run-retried", finished).await;
    assert_eq!(done.outcome, Some(DeliveryOutcome::Processed), "{done:?}");
    assert_eq!(done.outcome_detail.as_deref(), Some("/run queued 1 runs"));
    assert_eq!(world.github.calls(&pulls), 4, "three refusals, then one answer");
    let gaps = gaps(&world, &pulls);
    for (gap, least_ms) in gaps.iter().zip([990, 1990, 3990]) {
        assert!(*gap >= Duration::from_millis(least_ms), "{gaps:?}");
    }
    let runs = world.wait_for_check_runs(LONG, |rs| named(rs, "patient").is_some()).await;
    assert!(named(&runs, "patient").is_some(), "{runs:#?}");
    assert!(wait_for_metric(&world, "tether_webhook_deliveries_retrying 0").await);
}

#[tokio::test]
async fn refusals_a_deleted_pull_request_head_and_a_gone_installation_fail_at_once() {
    let world = World::new().await;
    let store = store(&world).await;
    world.github.set_permission(REPO, "bob", "write");

    // GitHub refuses to read tether.toml: a 422 is not worth a retry.
    let sha = world.commit_config("[checks.refused]\nrun = \"true\"\n");
    world.github.fail_next_with(CONTENTS_ROUTE, 422, 1);
    world.deliver("push", "push-refused", &world.push_payload(&sha)).await;
    // `/run` on a pull request whose head repository was deleted, and on one that is not there.
    world.github.set_pull(REPO, 9, &sha);
    world.github.delete_pull_head_repo(REPO, 9);
    let comment = world.comment_payload("bob", 9, 82, "/run");
    world.deliver("issue_comment", "run-gone-head", &comment).await;
    let comment = world.comment_payload("bob", 10, 83, "/run");
    world.deliver("issue_comment", "run-no-pull", &comment).await;
    // A push through an installation that was removed: no token can be had for it.
    let mut push: Value = serde_json::from_slice(&world.push_payload(&sha)).unwrap();
    push["installation"]["id"] = 4242.into();
    world.deliver("push", "push-gone-installation", &serde_json::to_vec(&push).unwrap()).await;

    let expected = [
        ("push-refused", "HTTP 422: Validation Failed"),
        ("run-gone-head", "the head repository of #9 is gone"),
        ("run-no-pull", "not found on GitHub"),
        ("push-gone-installation", "not found on GitHub"),
    ];
    for (id, reason) in expected {
        let delivery = wait_for_delivery(&store, id, finished).await;
        assert_eq!(delivery.outcome, Some(DeliveryOutcome::Failed), "{delivery:?}");
        let detail = delivery.outcome_detail.clone().unwrap_or_default();
        assert!(detail.contains(reason), "{id}: {detail}");
        assert_eq!((delivery.attempts, delivery.first_failure_at), (0, None), "{delivery:?}");
    }
    // Asked once each, never again.
    assert_eq!(world.github.calls(CONTENTS_ROUTE), 1);
    assert_eq!(world.github.calls(&format!("GET /repos/{REPO}/pulls/9")), 1);
    assert_eq!(world.github.calls(&format!("GET /repos/{REPO}/pulls/10")), 1);
    assert_eq!(world.github.calls("POST /app/installations/4242/access_tokens"), 1);
    assert!(world.github.check_runs(REPO).is_empty());
    let failed = metrics(&world, "tether_webhook_deliveries{outcome=\"failed\"}").await;
    assert_eq!(failed, [r#"tether_webhook_deliveries{outcome="failed"} 4"#]);
    assert_eq!(
        metrics(&world, "tether_webhook_deliveries_retrying ").await,
        ["tether_webhook_deliveries_retrying 0"]
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out_until_the_time_github_names() {
    let world = World::new().await;
    let store = store(&world).await;
    let sha = world.commit_config("[checks.limited]\nrun = \"true\"\n");
    // A secondary limit on reading tether.toml, then the primary one spent when creating the
    // check run: each waits for its end, longer than the first backoff of 1 s.
    world.github.rate_limit_next(CONTENTS_ROUTE, RateLimit::RetryAfter(3), 1);
    world.github.rate_limit_next(CREATE_ROUTE, RateLimit::Exhausted { reset_in: 3 }, 1);
    world.deliver("push", "push-limited", &world.push_payload(&sha)).await;

    let limited = wait_for_delivery(&store, "push-limited", |d| d.attempts >= 1).await;
    let error = limited.last_error.clone().unwrap_or_default();
    assert!(error.contains("rate limit") && error.contains("HTTP 429"), "{error}");
    assert_eq!(limited.outcome, None, "{limited:?}");
    assert!(wait_for_metric(&world, "tether_webhook_deliveries_retrying 1").await);
    let done = wait_for_delivery(&store, "push-limited", finished).await;
    assert_eq!(done.outcome, Some(DeliveryOutcome::Processed), "{done:?}");
    assert!(eventually(LONG, || world.github.calls(CREATE_ROUTE) >= 1).await);
    assert!(wait_for_metric(&world, r#"tether_outbox_items{state="retrying"} 1"#).await);

    let runs = world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let (contents, create) = (gaps(&world, CONTENTS_ROUTE), gaps(&world, CREATE_ROUTE));
    assert_eq!((contents.len(), create.len()), (1, 1), "{contents:?} {create:?}");
    // `retry-after: 3` is 3 s from the answer; the reset is a whole second, 2 to 3 s away.
    assert!(contents[0] >= Duration::from_millis(2990), "{contents:?}");
    assert!(create[0] >= Duration::from_millis(1990), "{create:?}");
    assert!(wait_for_metric(&world, r#"tether_outbox_items{state="retrying"} 0"#).await);
}
