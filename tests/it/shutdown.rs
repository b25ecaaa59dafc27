//! SIGTERM to a runner: no new runs, the runs in flight finish (or are cancelled after the
//! grace period), and the runner exits 0.

use std::time::Duration;

use tether::core::{Outcome, RunEvent};

use crate::harness::*;

/// How long a stopping runner may take beyond its grace period: the kill grace of a cancelled
/// run, the server's last read, and a slow machine.
const STOP_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sigterm_lets_the_run_in_flight_finish_then_exits_0() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let mut runner = Runner::start(&[]).await;
    let go = runner.dir.path().join("go");
    let text = format!(
        "echo started; while [ ! -e {} ]; do sleep 0.02; done; echo finished",
        go.display()
    );
    let mut events =
        runner.client().await.run(&spec(&repo.file_url(), &commit, script(&text))).await.unwrap();
    read_until_output(&mut events, "started").await;
    runner.terminate();
    let stopping = runner.next_own_line().await.unwrap();
    assert!(stopping.contains("waiting up to 10m00s for 1 run(s)"), "{stopping}");
    std::fs::write(&go, "").unwrap();
    let rest = collect(events).await;
    assert_eq!(rest.stdout(), "finished\n");
    assert_eq!(rest.outcome(), &Outcome::Exited(0));
    assert!(runner.wait(STOP_LIMIT).await.success());
}

#[tokio::test]
async fn runs_still_going_after_the_grace_period_are_cancelled() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let mut runner = Runner::start(&["--shutdown-grace", "300ms"]).await;
    let marker = format!("tether-shutdown-{}", std::process::id());
    let text = format!("echo started; sleep 1000 # {marker}");
    let mut events =
        runner.client().await.run(&spec(&repo.file_url(), &commit, script(&text))).await.unwrap();
    read_until_output(&mut events, "started").await;
    runner.terminate();
    let stopping = runner.next_own_line().await.unwrap();
    assert!(stopping.contains("300ms"), "{stopping}");
    let cancelling = runner.next_own_line().await.unwrap();
    assert!(cancelling.contains("cancelling 1 run(s)"), "{cancelling}");
    let rest = collect(events).await;
    assert!(
        matches!(rest.events.last(), Some(RunEvent::Finished(f)) if f.outcome == Outcome::Signalled(15)),
        "{:?}",
        rest.events.last()
    );
    assert!(runner.wait(STOP_LIMIT).await.success());
    assert!(processes_with(&marker).is_empty());
}

#[tokio::test]
async fn an_idle_runner_stops_at_once() {
    let mut runner = Runner::start(&[]).await;
    runner.client().await.info().await.unwrap();
    runner.terminate();
    assert_eq!(runner.next_own_line().await.as_deref(), Some("tether runner stopping"));
    assert_eq!(runner.next_own_line().await.as_deref(), Some("tether runner stopped"));
    assert!(runner.wait(STOP_LIMIT).await.success());
    assert!(!runner.socket.exists());
}

#[tokio::test]
async fn a_second_signal_cancels_the_runs_at_once() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let mut runner = Runner::start(&[]).await;
    let mut events = runner
        .client()
        .await
        .run(&spec(&repo.file_url(), &commit, script("echo started; sleep 1000")))
        .await
        .unwrap();
    read_until_output(&mut events, "started").await;
    runner.terminate();
    let stopping = runner.next_own_line().await.unwrap();
    assert!(stopping.contains("for 1 run(s)"), "{stopping}");
    // The runner listens for the second signal a moment after it says it is stopping.
    let cancelling = loop {
        runner.terminate();
        let line = tokio::time::timeout(Duration::from_millis(200), runner.next_own_line()).await;
        if let Ok(line) = line {
            break line.unwrap();
        }
    };
    assert_eq!(cancelling, "tether runner cancelling 1 run(s) at a second signal");
    let rest = collect(events).await;
    assert_eq!(rest.outcome(), &Outcome::Signalled(15));
    assert!(runner.wait(STOP_LIMIT).await.success());
}
