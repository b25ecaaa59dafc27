//! The webhook flows beyond a push, end to end: pull requests superseding their runs, re-runs,
//! `/run` comments and deployments; failures, bad input, durability, retries and the App Manifest
//! flow are in submodules.

mod bad_input;
mod durability;
mod failures;
mod retries;
mod setup;

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::world::*;

const LONG: Duration = Duration::from_secs(30);

/// A `sleep` argument unique to this test process and call, to find its processes by.
pub fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("600.{:09}", nanos.subsec_nanos())
}

/// Waits until a process with `marker` in its command line runs.
pub async fn wait_for_process(marker: &str) {
    let started = eventually(LONG, || !processes_with(marker).is_empty()).await;
    assert!(started, "no process with {marker:?} started");
}

#[tokio::test]
async fn a_new_head_of_a_pull_request_supersedes_the_runs_at_the_old_one() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let marker = unique_sleep();
    let a = world.commit_config(&format!("[checks.block]\nrun = \"sleep {marker}\"\n"));
    let opened = world.pull_request_payload("opened", 5, &a);
    assert_eq!(world.deliver("pull_request", "pr-opened", &opened).await.0, 202);
    wait_for_process(&marker).await;

    let b = world.commit_config("[checks.block]\nrun = \"echo at b\"\n");
    let synchronize = world.pull_request_payload("synchronize", 5, &b);
    assert_eq!(world.deliver("pull_request", "pr-sync", &synchronize).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");
    let at_a = runs.iter().find(|r| r["head_sha"] == a.as_str()).unwrap();
    assert_eq!(at_a["conclusion"], "cancelled", "{at_a:#}");
    assert!(output(at_a, "summary").contains(&format!("superseded by {}", &b[..12])), "{at_a:#}");
    let at_b = runs.iter().find(|r| r["head_sha"] == b.as_str()).unwrap();
    assert_eq!(at_b["conclusion"], "success", "{at_b:#}");
    let gone = eventually(Duration::from_secs(10), || processes_with(&marker).is_empty()).await;
    assert!(gone, "processes of the superseded run survive: {:?}", processes_with(&marker));
}

/// A run still queued (no runner connected) is superseded where it stands: the dispatcher, told
/// by the planner, ends it without a runner ever taking it.
#[tokio::test]
async fn a_queued_run_at_an_old_head_is_superseded_without_a_runner() {
    let world = World::new().await;
    let a = world.commit_config("[checks.wait]\nrun = \"true\"\n");
    let opened = world.pull_request_payload("opened", 6, &a);
    assert_eq!(world.deliver("pull_request", "pr6-opened", &opened).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| rs.len() == 1).await;
    assert_eq!(runs[0]["status"], "queued", "{runs:#?}");

    let b = world.commit_config("[checks.wait]\nrun = \"true\"\n\n[checks.new]\nrun = \"true\"\n");
    let synchronize = world.pull_request_payload("synchronize", 6, &b);
    assert_eq!(world.deliver("pull_request", "pr6-sync", &synchronize).await.0, 202);
    let superseded = |rs: &[Value]| rs.len() == 3 && rs.iter().any(|r| r["status"] == "completed");
    let runs = world.wait_for_check_runs(LONG, superseded).await;
    assert!(superseded(&runs), "{runs:#?}");
    let at_a = runs.iter().find(|r| r["head_sha"] == a.as_str()).unwrap();
    assert_eq!((&at_a["status"], &at_a["conclusion"]), (&"completed".into(), &"cancelled".into()));
    assert_eq!(output(at_a, "title"), "Cancelled", "{at_a:#}");
    assert!(output(at_a, "summary").starts_with(&format!("superseded by {}", &b[..12])));
    let at_b: Vec<&Value> = runs.iter().filter(|r| r["head_sha"] == b.as_str()).collect();
    assert!(at_b.iter().all(|r| r["status"] == "queued"), "{at_b:#?}");
}

/// `check_run.rerequested` of the check run `run`, clicked by `sender`.
fn rerequest_run(world: &World, run: &Value, sender: &str) -> Vec<u8> {
    let mut payload = world.fixture("check_run/rerequested", sender);
    for key in ["external_id", "head_sha", "name", "id"] {
        payload["check_run"][key] = run[key].clone();
    }
    serde_json::to_vec(&payload).unwrap()
}

fn named<'a>(runs: &'a [Value], name: &str) -> Vec<&'a Value> {
    runs.iter().filter(|r| r["name"] == name).collect()
}

#[tokio::test]
async fn re_runs_run_again_on_the_original_senders_runner_and_keep_the_old_runs() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let sha = world.commit_config("[checks.one]\nrun = \"true\"\n\n[checks.two]\nrun = \"true\"\n");
    world.deliver("push", "push-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");

    // bob clicks "Re-run" on `one`; bob has no runner, the run is alice's.
    let first = named(&runs, "one")[0].clone();
    let body = rerequest_run(&world, &first, "bob");
    assert_eq!(world.deliver("check_run", "rerun-1", &body).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 3)).await;
    assert!(completed(&runs, 3), "{runs:#?}");
    let ones = named(&runs, "one");
    assert_eq!(ones.len(), 2, "{runs:#?}");
    assert_eq!(ones[0]["external_id"], first["external_id"], "the old check run is kept");
    let rerun = ones[1];
    assert_ne!(rerun["external_id"], first["external_id"]);
    assert_eq!(
        (&rerun["head_sha"], &rerun["conclusion"]),
        (&sha.as_str().into(), &"success".into())
    );
    assert!(output(rerun, "summary").contains("alice/laptop"), "{rerun:#}");

    let mut suite = world.fixture("check_suite/rerequested", "bob");
    suite["check_suite"]["head_sha"] = sha.as_str().into();
    suite["check_suite"]["head_branch"] = "main".into();
    let body = serde_json::to_vec(&suite).unwrap();
    assert_eq!(world.deliver("check_suite", "rerun-2", &body).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 5)).await;
    assert!(completed(&runs, 5), "{runs:#?}");
    assert_eq!((named(&runs, "one").len(), named(&runs, "two").len()), (3, 2), "{runs:#?}");
    assert!(runs.iter().all(|r| r["conclusion"] == "success" && r["head_sha"] == sha.as_str()));
}

/// Waits until comment `id` has `n` reactions; returns them.
async fn reactions(world: &World, id: i64, n: usize) -> Vec<String> {
    eventually(LONG, || world.github.reactions(REPO, id).len() >= n).await;
    world.github.reactions(REPO, id)
}

#[tokio::test]
async fn run_comments_run_at_the_head_on_the_commenters_runner_or_say_why_not() {
    let world = World::new().await;
    let _bob = world.connect_runner_of("bob").await;
    world.github.set_permission(REPO, "bob", "write");
    world.github.set_permission(REPO, "alice", "read");
    let head = world.commit_config("[checks.hello]\nrun = \"echo hi from $TETHER_COMMIT\"\n");
    world.github.set_pull(REPO, 9, &head);

    let body = world.comment_payload("bob", 9, 71, "/run hello");
    assert_eq!(world.deliver("issue_comment", "comment-1", &body).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!(
        (&runs[0]["head_sha"], &runs[0]["conclusion"]),
        (&head.as_str().into(), &"success".into())
    );
    assert!(output(&runs[0], "summary").contains("bob/laptop"), "{:#}", runs[0]);
    assert_eq!(reactions(&world, 71, 2).await, ["eyes", "rocket"]);

    let body = world.comment_payload("alice", 9, 72, "/run hello");
    world.deliver("issue_comment", "comment-2", &body).await;
    assert_eq!(reactions(&world, 72, 1).await, ["confused"]);
    let body = world.comment_payload("bob", 9, 73, "/run nosuchcheck");
    world.deliver("issue_comment", "comment-3", &body).await;
    assert_eq!(reactions(&world, 73, 1).await, ["confused"]);
    eventually(LONG, || world.github.comments(REPO, 9).len() >= 2).await;
    let replies = world.github.comments(REPO, 9);
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert!(replies[0].contains("@alice") && replies[0].contains("write"), "{replies:#?}");
    assert!(replies[1].contains("nosuchcheck"), "{replies:#?}");
    assert_eq!(world.github.check_runs(REPO).len(), 1, "a refused /run ran something");
}

#[tokio::test]
async fn a_deployment_check_on_the_default_branch_reports_a_deployment() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let config = "[checks.ship]\nrun = \"true\"\ndeployment = \"production\"\n\n\
                  [checks.sink]\nrun = \"exit 1\"\ndeployment = \"production\"\n";
    let sha = world.commit_config(config);
    world.deliver("push", "push-other", &world.push_to("feature", &sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");
    world.deliver("push", "push-main", &world.push_to("main", &sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 4)).await;
    assert!(completed(&runs, 4), "{runs:#?}");
    let done = |d: &[(Value, Vec<String>)]| d.len() == 2 && d.iter().all(|(_, s)| s.len() == 2);
    eventually(LONG, || done(&world.github.deployments(REPO))).await;

    let deployments = world.github.deployments(REPO);
    assert_eq!(deployments.len(), 2, "the push to another branch deployed: {deployments:#?}");
    let mut states: Vec<Vec<String>> = deployments.iter().map(|(_, s)| s.clone()).collect();
    states.sort();
    assert_eq!(states, [["in_progress", "failure"], ["in_progress", "success"]]);
    for (sent, _) in &deployments {
        assert_eq!(
            (&sent["ref"], &sent["environment"]),
            (&sha.as_str().into(), &"production".into())
        );
    }
    let main_runs: Vec<String> = runs[2..]
        .iter()
        .map(|r| format!("https://ci.example.com/runs/{}", r["external_id"].as_str().unwrap()))
        .collect();
    for statuses in world.github.deployment_statuses(REPO) {
        let url = statuses[0]["log_url"].as_str().unwrap().to_string();
        assert!(main_runs.contains(&url), "{url} is not a run page of the push to main");
        assert!(statuses.iter().all(|s| s["log_url"] == url.as_str()), "{statuses:#?}");
    }
}
