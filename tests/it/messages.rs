//! What people are told when something is wrong: each message once, in plain words, with the
//! next step; and what the server logs about refused logins and forwards.

use std::process::Stdio;
use std::time::Duration;

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

/// A server logging at `info`, its log kept, and a fake GitHub where alice has a key and carol
/// has none.
async fn logged_server(dir: &std::path::Path) -> (FakeGitHub, TetherServer, SshKey) {
    let github = FakeGitHub::start().await;
    let alice = SshKey::generate();
    github.add_user("alice", 1001, &[&alice.public]);
    github.add_user("carol", 1003, &[]);
    let process = ProcessSetup { keep_log: true, log_level: Some("info"), ..Default::default() };
    let server =
        TetherServer::start_process(&dir.join("data"), &github.url, "127.0.0.1:0", &[], process)
            .await;
    (github, server, alice)
}

/// Polls the server's log until it holds `needle`; returns the log.
async fn log_with(server: &TetherServer, needle: &str) -> String {
    let mut log = String::new();
    eventually(Duration::from_secs(10), || {
        log = server.log();
        log.contains(needle)
    })
    .await;
    log
}

/// The SHA-256 fingerprint of a key file, as `ssh-keygen -l` prints it.
fn fingerprint(key: &SshKey) -> String {
    let out = std::process::Command::new("ssh-keygen").arg("-lf").arg(&key.path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string()
}

#[tokio::test]
async fn refused_logins_are_logged_with_login_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_github, server, _alice) = logged_server(dir.path()).await;
    let known_hosts = dir.path().join("known_hosts");
    let stranger = SshKey::generate();
    let output = ssh(&server, &stranger, "alice", &known_hosts, &[]).arg("status").output().await;
    assert_eq!(output.unwrap().status.code(), Some(255));
    let expected = "refused a login peer=127.0.0.1:";
    let log = log_with(&server, "key is not one of").await;
    let line = log.lines().find(|l| l.contains("key is not one of")).unwrap_or_default();
    assert!(line.contains(expected), "{log}");
    assert!(line.contains(" login=alice "), "{line}");
    assert!(line.contains(&format!(" key={} ", fingerprint(&stranger))), "{line}");
    assert!(
        line.contains("reason=the key is not one of the account's SSH keys on GitHub"),
        "{line}"
    );

    let output = ssh(&server, &stranger, "carol", &known_hosts, &[]).arg("status").output().await;
    assert_eq!(output.unwrap().status.code(), Some(255));
    let log = log_with(&server, "reason=the GitHub account has no SSH keys").await;
    assert!(log.contains("login=carol"), "{log}");
    // Fields are shown as text, not as Rust's debug forms.
    assert!(!log.contains("Some(") && !log.contains("Streamlocal"), "{log}");
}

#[tokio::test]
async fn a_forward_with_no_runner_behind_it_says_so_once_with_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_github, server, alice) = logged_server(dir.path()).await;
    let missing = dir.path().join("nothing.sock");
    let forward = format!("/ghost:{}", missing.display());
    let known_hosts = dir.path().join("known_hosts");
    let mut command = ssh(&server, &alice, "alice", &known_hosts, &["-N", "-R", &forward]);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("ssh stayed connected")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = "runner refused: nothing answered behind the forward /ghost: start `tether runner \
                --listen SOCKET` first, forward that socket, and connect again";
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
    assert!(!stderr.contains("AdministrativelyProhibited"), "{stderr}");
    let log = log_with(&server, "refused a runner").await;
    let line = log.lines().find(|l| l.contains("refused a runner")).unwrap();
    assert!(line.contains("login=alice") && line.contains("target=/ghost"), "{line}");
}

/// `tether runner --connect` to the server with `env`, its exit status and stderr.
async fn connect_output(
    server: &TetherServer,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("alice@127.0.0.1:{}", server.ssh_port);
    let child = tokio::process::Command::new(TETHER)
        .args(["runner", "--connect", &target, "--name", "laptop"])
        .arg("--known-hosts")
        .arg(dir.path().join("known_hosts"))
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", dir.path())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), child)
        .await
        .expect("the runner kept trying")
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn an_unknown_host_key_is_explained_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_github, server, alice) = logged_server(dir.path()).await;
    let identity = alice.path.to_str().unwrap();
    let (code, stderr) = connect_output(&server, &["--identity", identity], &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.matches("is not known").count(), 1, "{stderr}");
    assert!(stderr.contains("--host-key-fingerprint SHA256:"), "{stderr}");
}

#[tokio::test]
async fn connect_with_no_key_at_all_says_so_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (_github, server, _alice) = logged_server(dir.path()).await;
    // A real ssh-agent that holds no key, and a home with no ~/.ssh.
    let agent_socket = dir.path().join("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&agent_socket)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || agent_socket.exists()).await);
    let socket = agent_socket.to_str().unwrap();
    let (code, stderr) = connect_output(&server, &[], &[("SSH_AUTH_SOCK", socket)]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.matches("no SSH key to log in with").count(), 1, "{stderr}");
    assert!(stderr.contains("ssh-keygen -t ed25519"), "{stderr}");
    agent.kill().await.unwrap();
}

#[tokio::test]
async fn a_size_that_is_not_one_is_refused_saying_how_to_write_it() {
    let output = tokio::process::Command::new(TETHER)
        .args(["serve", "--log-max-bytes", "lots"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`lots` is not a size: write bytes, or a number with KiB, MiB, GiB"),
        "{stderr}"
    );
}
