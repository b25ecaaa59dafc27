//! Issue 15's runner side: one pipe for stdout and stderr, `tty = true`, and the steps of a run
//! (built-in ones and `::group::` sections), through a real runner and through the world.

use std::time::{Duration, UNIX_EPOCH};

use tether::core::{Outcome, RunEvent, Step, StepKind, StepStatus};
use tether::exec::{ExecConfig, Executor};

use crate::harness::*;
use crate::world::*;

/// 50 alternating lines on stdout and stderr.
const INTERLEAVED: &str =
    "i=1; while [ $i -le 50 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done";

/// What `sh -c CMD 2>&1` writes, byte for byte.
fn sh_2_and_1(script: &str) -> String {
    let output = std::process::Command::new("sh")
        .args(["-c", &format!("{{ {script}\n}} 2>&1")])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

fn interleaved_text() -> String {
    (1..=50).map(|i| format!("out-{i}\nerr-{i}\n")).collect()
}

#[tokio::test]
async fn stdout_and_stderr_share_one_pipe_in_the_order_written() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let run = run_to_end(&runner, &spec(&repo.file_url(), &commit, script(INTERLEAVED))).await;
    let run = run.unwrap();
    assert_eq!(run.stdout(), interleaved_text());
    assert_eq!(run.stdout(), sh_2_and_1(INTERLEAVED));
}

#[tokio::test]
async fn the_servers_raw_log_interleaves_exactly_end_to_end() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let toml = format!("[checks.both]\nrun = '{INTERLEAVED}'\n");
    let sha = world.commit_config(&toml);
    world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    // The runner sent its steps too (the client asks for them): the server takes them in its
    // stride.
    assert_eq!(runs[0]["conclusion"], "success", "{runs:#?}");
    let run_id = runs[0]["external_id"].as_str().unwrap();
    let (status, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    assert_eq!(status, 200);
    assert_eq!(raw, interleaved_text());
}

#[tokio::test]
async fn tty_in_tether_toml_reaches_the_runner_through_the_server() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let probe = "[ -t 1 ] && echo tty || echo pipe";
    let toml =
        format!("[checks.term]\nrun = '{probe}'\ntty = true\n\n[checks.plain]\nrun = '{probe}'\n");
    let sha = world.commit_config(&toml);
    world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 2)).await;
    assert!(completed(&runs, 2), "{runs:#?}");
    for (name, want) in [("term", "tty\r\n"), ("plain", "pipe\n")] {
        let run = runs.iter().find(|r| r["name"] == name).unwrap();
        let run_id = run["external_id"].as_str().unwrap();
        let (_, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
        assert_eq!(raw, want, "{name}");
    }
}

/// Says whether stdout and stderr are terminals, then `TERM` and the size of the controlling
/// terminal.
const TERMINAL_PROBE: &str = "[ -t 1 ] && echo out-tty || echo out-pipe; \
    [ -t 2 ] && echo err-tty >&2 || echo err-pipe >&2; echo \"term=$TERM\"; \
    [ -t 1 ] && stty size </dev/tty; true";

#[tokio::test]
async fn tty_true_runs_the_check_under_a_160_by_50_terminal() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let mut spec = spec(&repo.file_url(), &commit, script(TERMINAL_PROBE));
    let piped = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(piped.stdout(), "out-pipe\nerr-pipe\nterm=\n");
    spec.thunk.tty = true;
    let terminal = run_to_end(&runner, &spec).await.unwrap();
    // A terminal turns "\n" into "\r\n", as a reader of the log would see on one.
    assert_eq!(terminal.stdout(), "out-tty\r\nerr-tty\r\nterm=xterm-256color\r\n50 160\r\n");
    assert_eq!(terminal.outcome(), &Outcome::Exited(0));
}

#[tokio::test]
async fn cancelling_a_tty_check_kills_its_whole_process_group() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let marker = "16180339";
    // Background children, one ignoring SIGTERM and one ignoring SIGHUP, both under the
    // terminal's session.
    let text = format!(
        "sleep {marker}1 & (trap '' TERM; sleep {marker}2) & (trap '' HUP; sleep {marker}3) & \
         echo started; wait"
    );
    let mut spec = spec(&repo.file_url(), &commit, script(&text));
    spec.thunk.tty = true;
    let mut events = runner.client().await.run(&spec).await.unwrap();
    read_until_output(&mut events, "started").await;
    assert!(eventually(Duration::from_secs(5), || processes_with(marker).len() >= 3).await);
    drop(events);
    let gone = eventually(Duration::from_secs(20), || processes_with(marker).is_empty()).await;
    assert!(gone, "survivors: {:?}", processes_with(marker));
}

#[tokio::test]
async fn a_tty_check_times_out_like_any_other() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let mut spec = spec(&repo.file_url(), &commit, script("echo begin; sleep 14142135"));
    spec.thunk.tty = true;
    spec.thunk.timeout = Duration::from_millis(500);
    let run = run_to_end(&runner, &spec).await.unwrap();
    assert_eq!(run.stdout(), "begin\r\n");
    assert!(run.finished().timed_out);
    assert!(processes_with("14142135").is_empty());
}

/// The last event of each step, in the order the steps began.
fn steps(events: &[RunEvent]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for event in events {
        if let RunEvent::Step(step) = event {
            match steps.iter_mut().find(|s| s.index == step.index) {
                Some(known) => *known = step.clone(),
                None => steps.push(step.clone()),
            }
        }
    }
    steps
}

fn rows(steps: &[Step]) -> Vec<(&str, StepKind, StepStatus, u64, u64)> {
    steps.iter().map(|s| (s.name.as_str(), s.kind, s.status, s.first_line, s.last_line)).collect()
}

const SECTIONED: &str = "echo hi; echo ::group::Build; echo compiling; echo ::endgroup::; \
    echo '::group::Test it'; echo testing; exit 3";

#[tokio::test]
async fn a_run_sends_its_steps_and_sections_with_lines_and_times() {
    use StepKind::*;
    use StepStatus::*;
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let runner = Runner::start(&[]).await;
    let before = std::time::SystemTime::now();
    let run = run_to_end(&runner, &spec(&repo.file_url(), &commit, script(SECTIONED))).await;
    let run = run.unwrap();
    // The marker lines stay in the log.
    assert_eq!(
        run.stdout(),
        "hi\n::group::Build\ncompiling\n::endgroup::\n::group::Test it\ntesting\n"
    );
    let steps = steps(&run.events);
    assert_eq!(
        rows(&steps),
        [
            ("checkout", Checkout, Success, 1, 1),
            ("run", Run, Failure, 1, 6),
            ("Build", Section, Success, 2, 4),
            ("Test it", Section, Failure, 5, 6),
        ]
    );
    for step in &steps {
        let finished = step.finished.expect("every step ended");
        assert!(before <= step.started && step.started <= finished, "{step:?}");
        // Times cross the wire in milliseconds.
        assert_eq!(step.started.duration_since(UNIX_EPOCH).unwrap().subsec_nanos() % 1_000_000, 0);
    }
    let sections_begin = steps[2].started;
    assert!(steps[1].started <= sections_begin && steps[0].finished.unwrap() <= steps[1].started);
}

#[tokio::test]
async fn a_failed_checkout_fails_its_step_and_skips_the_run() {
    let runner = Runner::start(&[]).await;
    let run = run_to_end(&runner, &spec("file:///no/such/repo", &"a".repeat(40), script("true")))
        .await
        .unwrap();
    let steps = steps(&run.events);
    let got: Vec<_> = steps.iter().map(|s| (s.kind, s.status)).collect();
    assert_eq!(
        got,
        [(StepKind::Checkout, StepStatus::Failure), (StepKind::Run, StepStatus::Skipped)]
    );
    // The checkout's own lines (why it failed) are within its step.
    assert!(steps[0].last_line >= 2, "{steps:?}");
}

#[tokio::test]
async fn a_cancelled_run_ends_its_run_step_and_open_section_as_cancelled() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let work = tempfile::tempdir().unwrap();
    let executor = Executor::new(ExecConfig {
        work_dir: work.path().to_path_buf(),
        max_runs: 1,
        secrets: Default::default(),
        engines: Default::default(),
        pass_env: Vec::new(),
    })
    .unwrap();
    let text = "echo ::group::Waiting; echo started; sleep 17320508";
    let mut events = executor.start(spec(&repo.file_url(), &commit, script(text))).unwrap();
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        let started =
            matches!(&event, RunEvent::Output { data, .. } if data.ends_with(b"started\n"));
        seen.push(event);
        if started {
            break;
        }
    }
    executor.cancel_all();
    while let Some(event) = events.recv().await {
        seen.push(event);
    }
    let got: Vec<_> = steps(&seen).iter().map(|s| (s.name.clone(), s.status)).collect();
    assert_eq!(
        got,
        [
            ("checkout".to_string(), StepStatus::Success),
            ("run".to_string(), StepStatus::Cancelled),
            ("Waiting".to_string(), StepStatus::Cancelled),
        ]
    );
    assert!(processes_with("17320508").is_empty());
}
