//! The end-to-end world the dispatch and big-log sections share: the tests' `World` with alice's
//! runner connected behind `ssh -R`, a check run to its end, and a tidy stop of every process.

use std::time::Duration;

use crate::world::{Connected, REPO, World};

/// How long one check may take to complete (a million-line log takes a while on two cores).
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// How long the runner may take to end after SIGTERM.
const RUNNER_STOP_LIMIT: Duration = Duration::from_secs(30);

/// A world with the server started with `flags` and alice's runner connected.
pub async fn start(flags: &[&str]) -> (World, Connected) {
    let world = World::with_flags(flags).await;
    let connected = world.connect_runner_of("alice").await;
    (world, connected)
}

/// Commits a config whose one check `name` runs `script` and returns the commit.
pub fn commit_check(world: &World, name: &str, script: &str) -> String {
    world.commit_config(&format!("[checks.{name}]\nrun = {script:?}\n"))
}

/// Waits until the check run at `sha` completed; returns the tether run id (its external id).
pub async fn wait_completed(world: &World, sha: &str) -> anyhow::Result<String> {
    let at_sha = |runs: &[serde_json::Value]| {
        runs.iter().find(|r| r["head_sha"] == sha && r["status"] == "completed").cloned()
    };
    let runs = world.wait_for_check_runs(RUN_LIMIT, |rs| at_sha(rs).is_some()).await;
    let run =
        at_sha(&runs).ok_or_else(|| anyhow::anyhow!("no completed run at {sha} in {REPO}"))?;
    anyhow::ensure!(run["conclusion"] == "success", "the check failed: {run:#}");
    Ok(run["external_id"].as_str().unwrap_or_default().to_string())
}

/// Stops the `ssh -R`, then the runner (SIGTERM), then the server (SIGTERM).
pub async fn stop(world: World, connected: Connected) -> anyhow::Result<()> {
    let Connected { mut runner, mut ssh } = connected;
    ssh.kill().await?;
    runner.terminate();
    runner.wait(RUNNER_STOP_LIMIT).await;
    let code = world.server.stop().await;
    anyhow::ensure!(code == Some(0), "tether serve exited with {code:?} on SIGTERM");
    Ok(())
}
