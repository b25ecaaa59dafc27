//! Dispatch latency: from just before a webhook's POST to the first instruction of the check's
//! process on a connected runner, p50 and p99, with the fake GitHub answering at once.
//!
//! The check's first line is `date +%s%N`: the process start as the runner's machine sees it,
//! read back from the run's raw log. Server, runner and bench share one machine, so one clock.
//! Each delivery pushes a new commit, as a developer would, and waits for its run to finish
//! before the next, so runs never queue behind each other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::world::World;
use crate::{Row, e2e, median, percentile};

/// Deliveries measured, after one more that warms the caches (installation token, git clone).
const DELIVERIES: usize = 30;
const GOAL: &str = "p50 under 100 ms";

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let (world, connected) = e2e::start(&[]).await;
    let result = measure(&world).await;
    e2e::stop(world, connected).await?;
    result
}

async fn measure(world: &World) -> anyhow::Result<Vec<Row>> {
    let cold = latency_ms(world, 0).await?;
    let mut latencies = Vec::with_capacity(DELIVERIES);
    for n in 1..=DELIVERIES {
        latencies.push(latency_ms(world, n).await?);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(vec![
        Row::new(
            format!("dispatch, webhook to check process started, p50 / p99 ({DELIVERIES} pushes)"),
            format!("{:.1} ms / {:.1} ms", median(latencies.clone()), percentile(&latencies, 0.99)),
            GOAL,
        ),
        Row::new("dispatch, the first push (cold token and clone)", format!("{cold:.1} ms"), GOAL),
    ])
}

/// Pushes commit `n` with its check, and returns the ms from the POST to the check's start.
async fn latency_ms(world: &World, n: usize) -> anyhow::Result<f64> {
    let sha = e2e::commit_check(world, "started", &format!("date +%s%N\necho push {n}"));
    let payload = world.push_payload(&sha);
    let sent = now_ns();
    let (status, body) = world.deliver("push", &format!("dispatch-{n}"), &payload).await;
    anyhow::ensure!(status == 202, "the webhook was answered {status}: {body}");
    let run_id = e2e::wait_completed(world, &sha).await?;
    let (status, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    anyhow::ensure!(status == 200, "GET /runs/{run_id}/raw answered {status}");
    let started: u128 = raw.lines().next().unwrap_or_default().trim().parse()?;
    Ok(started.saturating_sub(sent) as f64 / 1e6)
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos()
}
