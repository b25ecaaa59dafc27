//! Durability: a server killed right after it answered, GitHub down for a while (during a run,
//! and when a push arrives), and a write GitHub refuses for good, kept as failed.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::LONG;
use crate::harness::*;
use crate::world::*;

/// How long the outbox may take to get through after an outage (it backs off 1 s doubling).
const AFTER_OUTAGE: Duration = Duration::from_secs(60);

/// A check that waits until `release` exists, then says so.
fn gated_config(name: &str, release: &Path) -> String {
    let wait = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
    format!("[checks.{name}]\nrun = \"{wait}; echo released\"\n")
}

/// Polls the server's own record of the runs of `sha` until `done` holds for them.
async fn wait_for_runs(world: &World, sha: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let (_, body) = world.server.get(&format!("/api/v1/runs?repo={REPO}&sha={sha}")).await;
        let runs: Vec<Value> = serde_json::from_str(&body).unwrap();
        if done(&runs) || tokio::time::Instant::now() >= deadline {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_push_answered_just_before_a_kill_9_runs_once_after_the_restart() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.one]\nrun = \"true\"\n\n[checks.two]\nrun = \"true\"\n");
    let body = world.push_payload(&sha);
    assert_eq!(world.deliver("push", "push-killed", &body).await.0, 202);
    // Whether or not the worker had got to it: no runner was connected, so nothing had run.
    let world = world.crash_and_restart().await;
    assert_eq!(world.deliver("push", "push-killed", &body).await.0, 200, "the delivery is lost");
    let _alice = world.connect_runner_of("alice").await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");
    assert!(runs.iter().all(|r| r["conclusion"] == "success"), "{runs:#?}");
    let stored = wait_for_runs(&world, &sha, |rs| rs.len() >= 2).await;
    assert_eq!(stored.len(), 2, "{stored:#?}");
    let sha_b = world.commit_config("[checks.later]\nrun = \"true\"\n");
    world.deliver("push", "push-later", &world.push_payload(&sha_b)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| completed(rs, 3)).await;
    assert_eq!(runs.len(), 3, "the killed push's checks ran twice: {runs:#?}");
}

#[tokio::test]
async fn a_run_that_ends_while_github_is_down_is_reported_when_it_is_back() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let release = world.dir.path().join("release");
    let sha = world.commit_config(&gated_config("outage", &release));
    world.deliver("push", "push-outage", &world.push_payload(&sha)).await;
    world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    let marker = release.display().to_string();
    super::wait_for_process(&marker).await;

    world.github.set_down(true);
    let before = world.github.total_calls();
    std::fs::write(&release, b"").unwrap();
    let done =
        wait_for_runs(&world, &sha, |rs| rs.iter().all(|r| r["status"] == "completed")).await;
    assert_eq!(done[0]["status"], "completed", "{done:#?}");
    // Down for a while: the outbox tries, is refused, and tries again later.
    let tried = eventually(AFTER_OUTAGE, || world.github.total_calls() >= before + 3).await;
    assert!(tried, "the outbox did not retry during the outage");
    assert_ne!(world.github.check_runs(REPO)[0]["status"], "completed");
    world.github.set_down(false);

    let runs = world.wait_for_check_runs(AFTER_OUTAGE, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!((runs.len(), &runs[0]["conclusion"]), (1, &"success".into()), "{runs:#?}");
}

#[tokio::test]
async fn a_push_that_arrives_while_github_is_down_runs_when_it_is_back() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let sha = world.commit_config("[checks.late]\nrun = \"echo late\"\n");
    world.github.set_down(true);
    let before = world.github.total_calls();
    assert_eq!(world.deliver("push", "push-down", &world.push_payload(&sha)).await.0, 202);
    // Tried, refused, and tried again: the delivery is kept.
    let retried = eventually(LONG, || world.github.total_calls() >= before + 2).await;
    assert!(retried, "the delivery was not tried again");
    assert!(world.github.check_runs(REPO).is_empty());
    world.github.set_down(false);
    let runs = world.wait_for_check_runs(AFTER_OUTAGE, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    assert_eq!((runs.len(), &runs[0]["conclusion"]), (1, &"success".into()), "{runs:#?}");
}

#[tokio::test]
async fn runs_dispatched_while_github_is_down_wait_with_backoff_and_start_when_it_is_back() {
    let world = World::new().await;
    let mut alice = world.connect_runner_of("alice").await;
    alice.ssh.kill().await.unwrap();
    assert!(world.server.wait_for_runners(LONG, |rs| rs.is_empty()).await);
    let config = "[checks.token]\nrun = \"echo checked out\"\n\n[checks.second]\nrun = \"true\"\n";
    let sha = world.commit_config(config);
    assert_eq!(world.deliver("push", "push-token", &world.push_payload(&sha)).await.0, 202);
    world.wait_for_check_runs(LONG, |rs| rs.len() == 2).await;

    // alice's keys are cached, so she connects; no checkout token can be had.
    world.github.set_down(true);
    let _again = world.connect_runner_of("alice").await;
    let token_route = format!("POST /app/installations/{INSTALLATION}/access_tokens");
    let before = world.github.calls(&token_route);
    let asked = eventually(LONG, || world.github.calls(&token_route) >= before + 4).await;
    assert!(asked, "checkout tokens were not asked for again");
    // Asked once per backoff for both runs, the backoff doubling from 0.5 s (jittered down to
    // half), not once per run at every dispatch.
    let times = world.github.call_times(&token_route);
    let gaps: Vec<Duration> = times[before..].windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, least_ms) in gaps.iter().zip([250, 500, 1000]) {
        assert!(*gap >= Duration::from_millis(least_ms), "{gaps:?}");
    }
    world.github.set_down(false);
    let runs = world.wait_for_check_runs(AFTER_OUTAGE, |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");
    assert!(runs.iter().all(|r| r["conclusion"] == "success"), "{runs:#?}");
}

#[tokio::test]
async fn a_write_github_refuses_for_good_is_kept_failed_and_later_writes_go_on() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.refused]\nrun = \"true\"\n");
    world.deliver("push", "push-refused", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    let route = format!("PATCH /repos/{REPO}/check-runs/{}", runs[0]["id"]);
    world.github.fail_next_with(&route, 422, 100);

    let _alice = world.connect_runner_of("alice").await;
    // The start and the end: each refused once, then given up.
    let tried = eventually(LONG, || world.github.calls(&route) >= 2).await;
    assert!(tried, "{} calls to {route}", world.github.calls(&route));
    let sha_b = world.commit_config("[checks.later]\nrun = \"true\"\n");
    world.deliver("push", "push-after", &world.push_payload(&sha_b)).await;
    let later = |rs: &[Value]| rs.len() == 2 && rs[1]["status"] == "completed";
    let runs = world.wait_for_check_runs(LONG, later).await;
    assert!(later(&runs), "{runs:#?}");
    assert_eq!((&runs[0]["status"], &runs[1]["conclusion"]), (&"queued".into(), &"success".into()));
    let grew = eventually(Duration::from_secs(4), || world.github.calls(&route) > 2).await;
    assert!(!grew, "a refused write was retried: {} calls", world.github.calls(&route));
    // Both kept in the outbox, failed, with GitHub's reason, and counted.
    let store = tether::store::Store::open(&world.server.data_dir.join("tether.db")).await.unwrap();
    let failed = store.failed_outbox(10).await.unwrap();
    assert_eq!(failed.len(), 2, "{failed:#?}");
    for item in &failed {
        let error = item.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("HTTP 422: Validation Failed"), "{failed:#?}");
        assert_eq!((item.kind.as_str(), item.attempts), ("update_check_run", 1), "{failed:#?}");
    }
    let expected = [
        r#"tether_outbox_items{state="pending"} 0"#,
        r#"tether_outbox_items{state="retrying"} 0"#,
        r#"tether_outbox_items{state="failed"} 2"#,
    ];
    // The last write's row goes just after GitHub answered it.
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let (_, metrics) = world.server.get("/metrics").await;
        let outbox: Vec<&str> =
            metrics.lines().filter(|l| l.starts_with("tether_outbox_items{")).collect();
        if outbox == expected {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_check_run_created_with_its_answer_lost_is_found_not_created_twice() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let create = format!("POST /repos/{REPO}/check-runs");
    world.github.lose_next_answers(&create, 1);
    let sha = world.commit_config("[checks.once]\nrun = \"true\"\n");
    world.deliver("push", "push-lost-answer", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(AFTER_OUTAGE, |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    // GitHub made the check run; the retry found it, and the run's updates went to it.
    assert_eq!(world.github.calls(&create), 1);
    assert_eq!(world.github.check_runs(REPO).len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["conclusion"], "success", "{:#}", runs[0]);
    let list = format!("GET /repos/{REPO}/commits/{sha}/check-runs");
    assert_eq!(world.github.calls(&list), 1);
}

#[tokio::test]
async fn a_tether_toml_failure_whose_answer_was_lost_is_posted_once() {
    let world = World::new().await;
    let create = format!("POST /repos/{REPO}/check-runs");
    world.github.lose_next_answers(&create, 1);
    let sha = world.commit_config("[checks.broken\nrun = 1\n");
    world.deliver("push", "push-lost-failure", &world.push_payload(&sha)).await;
    let list = format!("GET /repos/{REPO}/commits/{sha}/check-runs");
    assert!(eventually(AFTER_OUTAGE, || world.github.calls(&list) == 1).await, "never looked");
    let runs = world.github.check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(
        (&runs[0]["name"], &runs[0]["conclusion"]),
        (&"tether.toml".into(), &"failure".into())
    );
    assert_eq!(world.github.calls(&create), 1);
}
