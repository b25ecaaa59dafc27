//! From webhook to check run, end to end: a signed webhook from the recorded payloads, the real
//! server, a real runner behind `ssh -R`, and the strict fake GitHub.

use std::time::Duration;

use serde_json::Value;

use crate::serve::*;
use crate::world::*;

#[tokio::test]
async fn a_push_runs_its_checks_on_the_senders_runner_and_reports_them() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let sha = world.commit_config("[checks.hello]\nrun = \"echo hello from $TETHER_CHECK; git rev-parse HEAD\"\n\n[checks.broken]\nrun = \"exit 3\"\n");
    let (status, _) = world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    assert_eq!(status, 202);
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");
    let hello = runs.iter().find(|r| r["name"] == "hello").unwrap();
    assert_eq!(hello["conclusion"], "success");
    assert_eq!(hello["head_sha"], sha.as_str());
    let run_id = hello["external_id"].as_str().unwrap();
    assert_eq!(hello["details_url"], format!("https://ci.example.com/runs/{run_id}"));
    assert!(hello["output"]["summary"].as_str().unwrap().contains("alice/laptop"), "{hello:#}");
    let broken = runs.iter().find(|r| r["name"] == "broken").unwrap();
    assert_eq!(broken["conclusion"], "failure");
    assert!(broken["output"]["title"].as_str().unwrap().contains("exit 3"), "{broken:#}");

    let (status, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    assert_eq!(status, 200);
    assert_eq!(raw, format!("hello from hello\n{sha}\n"));
    let (_, page) = world.server.get(&format!("/runs/{run_id}")).await;
    assert!(page.contains("hello from hello") && page.contains(&sha), "{page}");
    // The pre-rendered log: numbered lines with anchors.
    assert!(page.contains(r##"<div class="line" id="L1"><a href="#L1">1</a><time>"##), "{page}");
    let (_, api) = world.server.get(&format!("/api/v1/runs?repo={REPO}&sha={sha}")).await;
    let api: Vec<Value> = serde_json::from_str(&api).unwrap();
    assert_eq!(api.len(), 2);
    assert!(api.iter().all(|r| r["sender"] == "alice"
        && r["runner"] == "alice/laptop"
        && r["status"] == "completed"));

    // The delivery counts by its outcome's word; "2 runs" is its detail, not a label.
    let (_, metrics) = world.server.get("/metrics").await;
    let deliveries: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("tether_webhook_deliveries{")).collect();
    assert_eq!(deliveries, [r#"tether_webhook_deliveries{outcome="processed"} 1"#], "{metrics}");
}

#[tokio::test]
async fn a_run_waits_for_its_runner_and_starts_when_one_connects() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.later]\nrun = \"echo ran\"\n");
    world.deliver("push", "delivery-2", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(10), |rs| rs.len() == 1).await;
    assert_eq!(runs[0]["status"], "queued", "{runs:#?}");
    let summary = runs[0]["output"]["summary"].as_str().unwrap();
    assert!(summary.contains("tether runner --connect alice@ci.example.com:6455"), "{summary}");
    let (_runner, _ssh) = world.connect_runner().await;
    // Started within 2 s of the runner appearing.
    let runs =
        world.wait_for_check_runs(Duration::from_secs(2), |rs| rs[0]["status"] != "queued").await;
    assert_ne!(runs[0]["status"], "queued", "{runs:#?}");
    let runs = world.wait_for_check_runs(Duration::from_secs(20), |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "success", "{runs:#?}");
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_bad_configs_reported() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.c]\nrun = \"true\"\ntimeout = \"soon\"\n");
    let body = world.push_payload(&sha);
    let headers = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "forged"),
        ("X-Hub-Signature-256", "sha256=00"),
    ];
    let (status, _) =
        http_post(&world.server.http_url, "/integrations/github/events", &headers, &body).await;
    assert_eq!(status, 401);
    let (status, _) = world.deliver("push", "delivery-3", b"{not json").await;
    assert_eq!(status, 400);
    let (status, _) =
        world.deliver("deployment_status", "delivery-4", b"{\"action\":\"created\"}").await;
    assert_eq!(status, 202);
    assert_eq!(world.deliver("push", "delivery-5", &body).await.0, 202);
    assert_eq!(world.deliver("push", "delivery-5", &body).await.0, 200);
    let runs = world.wait_for_check_runs(Duration::from_secs(10), |rs| !rs.is_empty()).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["name"], "tether.toml");
    assert_eq!(runs[0]["conclusion"], "failure");
    let summary = runs[0]["output"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("tether.toml:3:11") && summary.contains("checks.c.timeout"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_log_over_the_limit_is_cut_with_a_marker_and_the_run_goes_on() {
    let world = World::with_flags(&["--log-max-bytes", "1000"]).await;
    let (_runner, _ssh) = world.connect_runner().await;
    // 100 lines of 50 bytes, then a last word that must still decide the exit status.
    let script = "i=0; while [ $i -lt 100 ]; do printf '%049d\\n' $i; i=$((i+1)); done; exit 4";
    let sha = world.commit_config(&format!("[checks.loud]\nrun = {script:?}\n"));
    world.deliver("push", "delivery-loud", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "failure", "{runs:#?}");
    assert!(runs[0]["output"]["title"].as_str().unwrap().contains("exit 4"), "{runs:#?}");
    let run_id = runs[0]["external_id"].as_str().unwrap();
    let (_, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    assert_eq!(raw.len(), 1000);
    assert!(raw.starts_with(&format!("{:049}\n", 0)));
    let (_, page) = world.server.get(&format!("/runs/{run_id}")).await;
    assert!(page.contains("the log reached 1000 bytes"), "{page}");
    assert!(!page.contains(&format!("{:049}", 99)), "output past the cut was stored");
}
