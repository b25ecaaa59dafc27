//! The SSH side for people, with the real `ssh` client against the real server: the greeting,
//! `runs`, `logs` (from the blob, and followed live), `runners`, `help`, their exit statuses,
//! and refusals that look alike for a missing run and one the asker may not read.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::serve::*;
use crate::world::*;

const LIMIT: Duration = Duration::from_secs(30);

/// `ssh LOGIN@server COMMAND…`, its output.
async fn run_ssh(world: &World, login: &str, command: &[&str]) -> Output {
    let known_hosts = world.dir.path().join(format!("known_hosts-cmd-{login}"));
    let mut ssh = ssh(&world.server, world.key(login), login, &known_hosts, &[]);
    let output = tokio::time::timeout(LIMIT, ssh.args(command).output()).await;
    output.expect("ssh took too long").unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Pushes checks and waits until `n` check runs completed; their tether run ids by name.
async fn ran(world: &World, toml: &str, delivery: &str, n: usize) -> Vec<(String, String)> {
    let sha = world.commit_config(toml);
    world.deliver("push", delivery, &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LIMIT, |rs| completed(rs, n)).await;
    let id = |r: &Value| r["external_id"].as_str().unwrap().to_string();
    runs.iter().map(|r| (r["name"].as_str().unwrap().to_string(), id(r))).collect()
}

fn id_of<'a>(runs: &'a [(String, String)], name: &str) -> &'a str {
    &runs.iter().find(|(n, _)| n == name).expect("a run of that check").1
}

#[tokio::test]
async fn each_command_answers_with_its_exit_status() {
    let world = World::new().await;
    let _runner = world.connect_runner().await;
    let toml = "[checks.fine]\nrun = \"printf '\\\\033[31mred\\\\033[0m\\\\n'\"\n\
                [checks.broken]\nrun = \"echo no; exit 3\"\n";
    let runs = ran(&world, toml, "cmd-1", 2).await;
    let (fine, broken) = (id_of(&runs, "fine"), id_of(&runs, "broken"));

    let logs = run_ssh(&world, "alice", &["logs", fine]).await;
    assert_eq!(logs.status.code(), Some(0), "{logs:?}");
    assert_eq!(logs.stdout, b"\x1b[31mred\x1b[0m\n", "the raw log, escapes and all");
    let logs = run_ssh(&world, "alice", &["logs", broken]).await;
    assert_eq!((logs.status.code(), text(&logs.stdout)), (Some(1), "no\n".to_string()));

    let list = run_ssh(&world, "alice", &["runs"]).await;
    assert_eq!(list.status.code(), Some(0), "{list:?}");
    let list = text(&list.stdout);
    for id in [fine, broken] {
        assert!(list.contains(&format!("https://ci.example.com/runs/{id}\n")), "{list}");
    }
    assert!(list.contains("passed") && list.contains("failed"), "{list}");
    let repo = run_ssh(&world, "alice", &["runs", REPO]).await;
    assert_eq!((repo.status.code(), text(&repo.stdout)), (Some(0), list));

    let runners = run_ssh(&world, "alice", &["runners"]).await;
    assert_eq!(runners.status.code(), Some(0));
    assert!(text(&runners.stdout).starts_with("laptop  "), "{runners:?}");
    let help = run_ssh(&world, "alice", &["help"]).await;
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("logs RUN"), "{help:?}");
    let greeting = run_ssh(&world, "alice", &["status"]).await;
    let greeting = text(&greeting.stdout);
    assert!(greeting.starts_with("Hi alice! "), "{greeting}");
    assert!(greeting.contains("Your runners:\n  laptop  "), "{greeting}");
    assert!(greeting.contains(&format!("/runs/{fine}\n")), "{greeting}");
    // Bob sent none of them.
    let bobs = text(&run_ssh(&world, "bob", &[]).await.stdout);
    assert!(bobs.contains("No runs of yours yet."), "{bobs}");
}

#[tokio::test]
async fn unknown_commands_and_bad_arguments_get_one_line_and_exit_two() {
    let world = World::new().await;
    let long = "x".repeat(300);
    for command in [
        vec!["frobnicate"],
        vec!["logs"],
        vec!["logs", "01"],
        vec!["logs", "-1"],
        vec!["logs", "1", "2"],
        vec!["runs", "not-a-repo"],
        vec!["logs", "999999"],
        vec![long.as_str()],
        vec!["printf '\\033]0;pwned\\007'"],
    ] {
        let output = run_ssh(&world, "alice", &command).await;
        assert_eq!(output.status.code(), Some(2), "{command:?}: {output:?}");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{command:?}: {stderr}");
        assert!(stderr.starts_with("tether: ") && !stderr.contains('\x1b'), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test]
async fn logs_follows_a_running_run_live_until_it_ends() {
    let world = World::new().await;
    let _runner = world.connect_runner().await;
    let gate = world.dir.path().join("go");
    let toml = format!(
        "[checks.slow]\nrun = \"echo before; while [ ! -e {} ]; do sleep 0.05; done; echo after; exit 4\"\n",
        gate.display()
    );
    let sha = world.commit_config(&toml);
    world.deliver("push", "follow-1", &world.push_payload(&sha)).await;
    let runs = world
        .wait_for_check_runs(LIMIT, |rs| rs.len() == 1 && rs[0]["status"] == "in_progress")
        .await;
    let id = runs[0]["external_id"].as_str().unwrap().to_string();
    let known_hosts = world.dir.path().join("known_hosts-follow");
    let mut follow = ssh(&world.server, world.key("alice"), "alice", &known_hosts, &[])
        .args(["logs", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"before\n") {
        let mut buf = [0; 256];
        let n = tokio::time::timeout(LIMIT, stdout.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the follow ended early: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(follow.try_wait().unwrap().is_none(), "logs ended while the run goes");
    std::fs::write(&gate, "").unwrap();
    stdout.read_to_end(&mut seen).await.unwrap();
    let status = tokio::time::timeout(LIMIT, follow.wait()).await.unwrap().unwrap();
    assert_eq!(seen, b"before\nafter\n");
    assert_eq!(status.code(), Some(1), "a failed run exits 1");
}

#[tokio::test]
async fn a_private_run_is_refused_to_a_stranger_exactly_as_a_missing_one() {
    let world = World::private().await;
    world.github.set_permission(REPO, "alice", "read");
    let _runner = world.connect_runner().await;
    let runs = ran(&world, "[checks.secret]\nrun = \"echo hidden\"\n", "private-1", 1).await;
    let id: i64 = id_of(&runs, "secret").parse().unwrap();
    let missing = (id + 1000).to_string();
    let reader = run_ssh(&world, "alice", &["logs", &id.to_string()]).await;
    assert_eq!((reader.status.code(), text(&reader.stdout)), (Some(0), "hidden\n".into()));
    let listed = text(&run_ssh(&world, "alice", &["runs"]).await.stdout);
    assert!(listed.contains(&format!("/runs/{id}\n")), "{listed}");

    let hidden = run_ssh(&world, "bob", &["logs", &id.to_string()]).await;
    let absent = run_ssh(&world, "bob", &["logs", &missing]).await;
    assert_eq!(hidden.status.code(), Some(2));
    assert_eq!(absent.status.code(), Some(2));
    assert!(hidden.stdout.is_empty());
    assert_eq!(
        text(&hidden.stderr).replace(&id.to_string(), "N"),
        text(&absent.stderr).replace(&missing, "N")
    );
    let listed = run_ssh(&world, "bob", &["runs"]).await;
    assert_eq!((listed.status.code(), text(&listed.stdout)), (Some(0), String::new()));
    let repo = run_ssh(&world, "bob", &["runs", REPO]).await;
    let unknown = run_ssh(&world, "bob", &["runs", "octo/nothing"]).await;
    assert_eq!((repo.status.code(), unknown.status.code()), (Some(2), Some(2)));
    assert_eq!(
        text(&repo.stderr).replace(REPO, "R"),
        text(&unknown.stderr).replace("octo/nothing", "R")
    );
}

#[tokio::test]
async fn an_open_ssh_r_session_shows_each_of_its_runs_as_it_starts_and_ends() {
    use tokio::io::AsyncBufReadExt;
    let world = World::new().await;
    let git_config = world.dir.path().join("gitconfig");
    let redirect = format!(
        "[url \"{}\"]\n\tinsteadOf = https://github.com/{REPO}.git\n",
        world.repo.file_url()
    );
    std::fs::write(&git_config, redirect).unwrap();
    let env = [("GIT_CONFIG_GLOBAL", git_config.to_str().unwrap())];
    let runner = crate::harness::Runner::start_with_env(&["--name", "laptop"], &env).await;
    let forward = format!("/laptop:{}", runner.socket.display());
    let known_hosts = world.dir.path().join("known_hosts-open");
    let mut session =
        ssh(&world.server, world.key("alice"), "alice", &known_hosts, &["-R", &forward])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    let mut lines = tokio::io::BufReader::new(session.stdout.take().unwrap()).lines();
    let mut next =
        async || tokio::time::timeout(LIMIT, lines.next_line()).await.unwrap().unwrap().unwrap();
    while !next().await.starts_with("tether: runner laptop is registered") {}
    let runs = ran(&world, "[checks.fine]\nrun = \"true\"\n", "open-1", 1).await;
    let link = format!("https://ci.example.com/runs/{}", id_of(&runs, "fine"));
    assert_eq!(next().await, format!("run started: fine on {REPO}  {link}"));
    let ended = next().await;
    assert!(ended.starts_with(&format!("run passed: fine on {REPO} in ")), "{ended}");
    assert!(ended.ends_with(&format!("  {link}")), "{ended}");
}

#[tokio::test]
async fn cancel_and_rerun_over_ssh_follow_the_webs_rules_and_end_a_live_follow() {
    let world = World::new().await;
    world.github.set_permission(REPO, "bob", "read");
    world.github.set_permission(REPO, "alice", "read");
    let _runner = world.connect_runner().await;
    let gate = world.dir.path().join("never");
    let toml = format!(
        "[checks.slow]\nrun = \"echo waiting; while [ ! -e {} ]; do sleep 0.05; done\"\n",
        gate.display()
    );
    let sha = world.commit_config(&toml);
    world.deliver("push", "cancel-1", &world.push_payload(&sha)).await;
    let runs = world
        .wait_for_check_runs(LIMIT, |rs| rs.len() == 1 && rs[0]["status"] == "in_progress")
        .await;
    let id = runs[0]["external_id"].as_str().unwrap().to_string();
    let known_hosts = world.dir.path().join("known_hosts-cancel");
    let mut follow = ssh(&world.server, world.key("alice"), "alice", &known_hosts, &[])
        .args(["logs", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    // A reader who is not the sender may not cancel; a missing run answers as before.
    let refused = run_ssh(&world, "bob", &["cancel", &id]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("may not"), "{}", text(&refused.stderr));
    let missing = run_ssh(&world, "bob", &["cancel", "999999"]).await;
    assert!(text(&missing.stderr).contains("no run 999999"), "{}", text(&missing.stderr));

    // The sender may: the run ends cancelled and the live follow exits 130.
    let cancelled = run_ssh(&world, "alice", &["cancel", &id]).await;
    assert_eq!(cancelled.status.code(), Some(0), "{}", text(&cancelled.stderr));
    let status = tokio::time::timeout(LIMIT, follow.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130), "a cancelled run's follow exits 130");
    let done = |rs: &[Value]| rs.len() == 1 && rs[0]["conclusion"] == "cancelled";
    assert!(done(&world.wait_for_check_runs(LIMIT, done).await));

    // Re-run takes write access: the sender with read access is refused.
    let rerun = run_ssh(&world, "alice", &["rerun", &id]).await;
    assert_eq!(rerun.status.code(), Some(2), "{}", text(&rerun.stderr));
    assert!(text(&rerun.stderr).contains("write access"), "{}", text(&rerun.stderr));
    let twice = run_ssh(&world, "alice", &["cancel", &id]).await;
    assert!(text(&twice.stderr).contains("already finished"), "{}", text(&twice.stderr));
}
