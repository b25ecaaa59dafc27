//! Bad input at the webhook: a body over the limit, an event without an installation, a deleted
//! branch, a `tether.toml` too large or not UTF-8, and one delivery sent ten times at once.

use serde_json::Value;

use super::LONG;
use crate::world::*;

/// The webhook's body limit, GitHub's own cap on payloads.
const BODY_LIMIT: usize = 25 * 1024 * 1024;
const CONTENTS_ROUTE: &str = "GET /repos/octo/repo/contents/tether.toml";

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn bytes(payload: &Value) -> Vec<u8> {
    serde_json::to_vec(payload).unwrap()
}

/// Pushes a commit whose one check is `name` and waits for its check run; every delivery sent
/// before has been processed then (the worker takes them in order), and their writes made.
async fn settle(world: &World, name: &str) -> Vec<Value> {
    let sha = world.commit_config(&format!("[checks.{name}]\nrun = \"true\"\n"));
    let (status, _) =
        world.deliver("push", &format!("settle-{name}"), &world.push_payload(&sha)).await;
    assert_eq!(status, 202);
    let seen = |rs: &[Value]| rs.iter().any(|r| r["name"] == name);
    let runs = world.wait_for_check_runs(LONG, seen).await;
    assert!(seen(&runs), "the push after the bad input did not run: {runs:#?}");
    runs
}

#[tokio::test]
async fn a_body_over_25_mib_is_413_and_nothing_is_stored() {
    let world = World::new().await;
    let big_sha = world.commit_config("[checks.big]\nrun = \"true\"\n");
    let mut payload = json(&world.push_payload(&big_sha));
    payload["padding"] = "".into();
    let padding = BODY_LIMIT + 1 - bytes(&payload).len();
    payload["padding"] = "x".repeat(padding).into();
    let big = bytes(&payload);
    assert_eq!(big.len(), BODY_LIMIT + 1);
    assert_eq!(world.deliver("push", "oversized", &big).await.0, 413);

    let sha = world.commit_config("[checks.small]\nrun = \"true\"\n");
    let (status, _) = world.deliver("push", "oversized", &world.push_payload(&sha)).await;
    assert_eq!(status, 202, "the refused delivery's id was stored");
    let runs = world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    let names: Vec<&Value> = runs.iter().map(|r| &r["name"]).collect();
    assert_eq!(names, ["small"], "{runs:#?}");
}

#[tokio::test]
async fn an_event_without_an_installation_runs_nothing_and_the_server_goes_on() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.orphan]\nrun = \"true\"\n");
    let mut payload = json(&world.push_payload(&sha));
    payload.as_object_mut().unwrap().remove("installation");
    assert_eq!(world.deliver("push", "no-installation", &bytes(&payload)).await.0, 202);
    let runs = settle(&world, "after").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(world.github.calls(CONTENTS_ROUTE), 1, "tether.toml was read for the orphan");
}

#[tokio::test]
async fn a_deleted_branch_runs_nothing() {
    let world = World::new().await;
    let mut payload = world.fixture("push/payload.json", "alice");
    payload["ref"] = "refs/heads/gone".into();
    let zeros = "0".repeat(40);
    assert_eq!((&payload["deleted"], &payload["after"]), (&true.into(), &zeros.as_str().into()));
    // Were the deletion acted on, this is the config it would find.
    world.github.set_file(REPO, &zeros, "tether.toml", b"[checks.ghost]\nrun = \"true\"\n");
    assert_eq!(world.deliver("push", "deleted", &bytes(&payload)).await.0, 202);
    let runs = settle(&world, "after").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(world.github.calls(CONTENTS_ROUTE), 1, "tether.toml was read for a deletion");
}

/// The one check run a push of this tether.toml gets: failed, named `tether.toml`.
async fn config_failure(world: &World, delivery: &str, config: &[u8]) -> Value {
    let sha = world.commit_config_bytes(config);
    assert_eq!(world.deliver("push", delivery, &world.push_payload(&sha)).await.0, 202);
    let at_sha = |rs: &[Value]| rs.iter().any(|r| r["head_sha"] == sha.as_str());
    let runs = world.wait_for_check_runs(LONG, at_sha).await;
    let ours: Vec<&Value> = runs.iter().filter(|r| r["head_sha"] == sha.as_str()).collect();
    assert_eq!(ours.len(), 1, "{runs:#?}");
    let run = ours[0].clone();
    assert_eq!((&run["name"], &run["conclusion"]), (&"tether.toml".into(), &"failure".into()));
    run
}

#[tokio::test]
async fn a_tether_toml_over_1_mib_or_not_utf8_fails_one_check_run() {
    let world = World::new().await;
    // Valid TOML but for its size: a check, then a 1 MiB comment.
    let mut huge = b"[checks.big]\nrun = \"true\"\n#".to_vec();
    huge.resize(1024 * 1024 + 1, b'#');
    huge.push(b'\n');
    let run = config_failure(&world, "huge-config", &huge).await;
    assert!(output(&run, "summary").contains("over 1 MiB"), "{run:#}");

    let run = config_failure(&world, "latin1-config", b"[checks.caf\xe9]\nrun = \"true\"\n").await;
    assert!(output(&run, "summary").contains("not UTF-8"), "{run:#}");
}

#[tokio::test]
async fn one_delivery_ten_times_at_once_is_accepted_once() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.one]\nrun = \"true\"\n\n[checks.two]\nrun = \"true\"\n");
    let body = world.push_payload(&sha);
    let posts = (0..10).map(|_| world.deliver("push", "ten-times", &body));
    let mut statuses: Vec<u16> =
        futures::future::join_all(posts).await.into_iter().map(|(s, _)| s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
    let runs = settle(&world, "after").await;
    let at_sha = runs.iter().filter(|r| r["head_sha"] == sha.as_str()).count();
    assert_eq!((at_sha, runs.len()), (2, 3), "{runs:#?}");
}
