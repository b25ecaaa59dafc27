//! What a person sees while a runner works: the runner's lines as each run starts and ends
//! (check, repository, outcome, duration, link), its line when the server first calls, and an
//! `ssh -R` session without `-N` that says its runner is registered and stays open.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;
use crate::serve::*;
use crate::world::*;

/// Long enough for a run on a busy machine.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The runner's next lines that start with `run `, until `n` of them.
async fn run_lines(runner: &mut Runner, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < n {
        let line = tokio::time::timeout(RUN_LIMIT, runner.next_line())
            .await
            .expect("the runner said nothing more")
            .expect("the runner closed stdout");
        if line.starts_with("run ") {
            lines.push(line);
        }
    }
    lines
}

#[tokio::test]
async fn a_runner_prints_each_run_as_it_starts_and_ends_with_its_link() {
    let world = World::new().await;
    let (mut runner, _ssh) = world.connect_runner().await;
    let first = tokio::time::timeout(RUN_LIMIT, runner.next_line()).await.unwrap().unwrap();
    assert_eq!(first, "tether runner laptop: the server reached this runner; its runs show here");
    let sha = world.commit_config("[checks.fine]\nrun = \"true\"\n");
    world.deliver("push", "feedback-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(RUN_LIMIT, |rs| completed(rs, 1)).await;
    let id = runs[0]["external_id"].as_str().unwrap().to_string();
    let link = format!("https://ci.example.com/runs/{id}");
    let lines = run_lines(&mut runner, 2).await;
    assert_eq!(lines[0], format!("run started: fine on {REPO}  {link}"));
    let ended = &lines[1];
    assert!(ended.starts_with(&format!("run passed: fine on {REPO} in ")), "{ended}");
    assert!(ended.ends_with(&format!("ms  {link}")) || ended.ends_with(&format!("s  {link}")));

    let sha = world.commit_config("[checks.broken]\nrun = \"exit 3\"\n");
    world.deliver("push", "feedback-2", &world.push_payload(&sha)).await;
    let lines = run_lines(&mut runner, 2).await;
    assert!(
        lines[1].starts_with(&format!("run failed (exit 3): broken on {REPO} in ")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn ssh_without_n_says_the_runner_is_registered_and_stays_open_until_ctrl_c() {
    let world = World::new().await;
    let runner = Runner::start(&["--name", "laptop"]).await;
    let forward = format!("/laptop:{}", runner.socket.display());
    let known_hosts = world.dir.path().join("known_hosts");
    // No -N: OpenSSH asks for a shell, and sends what is typed on stdin.
    let mut ssh = ssh(&world.server, world.key("alice"), "alice", &known_hosts, &["-R", &forward])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(ssh.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(RUN_LIMIT, stdout.next_line()).await.unwrap().unwrap();
    assert_eq!(
        line.as_deref(),
        Some(
            "tether: runner laptop is registered; this session stays open to keep it connected (Ctrl-C ends it)"
        )
    );
    assert_eq!(world.server.runners().await.len(), 1);
    // Still open, and the runner still listed, a moment later.
    assert!(ssh.try_wait().unwrap().is_none(), "the session closed by itself");
    let mut stdin = ssh.stdin.take().unwrap();
    stdin.write_all(&[0x03]).await.unwrap();
    stdin.flush().await.unwrap();
    let status = tokio::time::timeout(RUN_LIMIT, ssh.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    ssh.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(!stderr.contains("failed"), "{stderr}");
    let gone = world.server.wait_for_runners(RUN_LIMIT, |rs| rs.is_empty()).await;
    assert!(gone, "the runner outlived its session");
}

#[tokio::test]
async fn a_plain_ssh_with_a_terminal_gets_the_status_and_no_error() {
    let world = World::new().await;
    let known_hosts = world.dir.path().join("known_hosts");
    // -tt asks for a terminal even though stdin is not one, as a person's ssh does.
    let output = ssh(&world.server, world.key("alice"), "alice", &known_hosts, &["-tt"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let greeting = String::from_utf8_lossy(&output.stdout);
    assert!(greeting.starts_with("Hi alice! "), "{greeting}");
    assert!(greeting.contains("No runs of yours yet.\r\n"), "{greeting}");
    assert!(!greeting.replace("\r\n", "").contains('\n'), "a bare newline on a raw terminal");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("failed"), "{stderr}");
}
