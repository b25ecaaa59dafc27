//! When things go wrong: a runner lost mid-run, no runner within the queue time, GitHub failing
//! the first writes, and the server restarted with a run in flight.

use std::time::Duration;

use super::{LONG, unique_sleep, wait_for_process};
use crate::harness::*;
use crate::world::*;

#[tokio::test]
async fn a_runner_lost_mid_run_fails_the_check_run() {
    let world = World::new().await;
    let mut alice = world.connect_runner_of("alice").await;
    let marker = unique_sleep();
    let sha = world.commit_config(&format!("[checks.block]\nrun = \"sleep {marker}\"\n"));
    world.deliver("push", "push-lost", &world.push_payload(&sha)).await;
    wait_for_process(&marker).await;
    alice.ssh.kill().await.unwrap();
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!(runs[0]["conclusion"], "failure", "{:#}", runs[0]);
    assert_eq!(output(&runs[0], "title"), "runner lost", "{:#}", runs[0]);
    let gone = eventually(Duration::from_secs(10), || processes_with(&marker).is_empty()).await;
    assert!(gone, "the lost run's processes survive");
}

#[tokio::test]
async fn a_run_without_a_runner_times_out_after_the_queue_ttl() {
    let world = World::with_flags(&["--queue-ttl", "2s"]).await;
    let sha = world.commit_config("[checks.lonely]\nrun = \"true\"\n");
    world.deliver("push", "push-ttl", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(15), |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!(runs[0]["conclusion"], "timed_out", "{:#}", runs[0]);
    assert!(output(&runs[0], "summary").contains("@alice"), "{:#}", runs[0]);
}

#[tokio::test]
async fn check_runs_are_created_after_github_fails_the_first_tries() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let route = format!("POST /repos/{REPO}/check-runs");
    world.github.fail_next(&route, 3);
    let sha = world.commit_config("[checks.patient]\nrun = \"echo done\"\n");
    world.deliver("push", "push-outage", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["conclusion"], "success", "{:#}", runs[0]);
    assert_eq!(world.github.calls(&route), 4, "three refusals, then one creation");
}

#[tokio::test]
async fn a_run_in_flight_when_the_server_restarts_ends_as_runner_lost() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let marker = unique_sleep();
    let sha = world.commit_config(&format!("[checks.block]\nrun = \"sleep {marker}\"\n"));
    world.deliver("push", "push-restart", &world.push_payload(&sha)).await;
    wait_for_process(&marker).await;
    world.wait_for_check_runs(LONG, |rs| rs.len() == 1 && rs[0]["status"] == "in_progress").await;

    let world = world.restart().await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!(runs[0]["conclusion"], "failure", "{:#}", runs[0]);
    assert_eq!(output(&runs[0], "title"), "runner lost", "{:#}", runs[0]);
    let summary = output(&runs[0], "summary");
    assert!(summary.contains("runner lost: the server restarted"), "{summary}");
    let gone = eventually(Duration::from_secs(10), || processes_with(&marker).is_empty()).await;
    assert!(gone, "the run's processes survive the server");
}
