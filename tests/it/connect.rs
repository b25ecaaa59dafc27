//! `tether runner --connect` against a real OpenSSH sshd, which binds the forwarded `/NAME` as a
//! Unix socket on its side: the test then talks gRPC to the runner through it, as a server
//! would through its own forward.

use std::process::Stdio;
use std::time::Duration;

use russh::keys::HashAlg;
use tether::core::Outcome;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness::*;
use crate::sshd::{Sshd, write_new_key};

/// How long a runner may take to (re)connect or to give up: backoff steps and a slow machine.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// Runs `tether runner --connect` to its end (it is expected to give up) and returns its
/// exit status and stderr.
async fn run_until_it_gives_up(args: &[&str]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(TETHER)
        .arg("runner")
        .args(args)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CONNECT_LIMIT, output)
        .await
        .expect("the runner should give up")
        .unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn a_connected_runner_serves_runs_through_the_forward() {
    let Some(mut sshd) = Sshd::start(true).await else {
        return;
    };
    let mut runner = sshd.connect_runner(&["--accept-new-host-key"]).await;
    let known_hosts = std::fs::read_to_string(runner.dir.path().join("known_hosts")).unwrap();
    let entry = format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port);
    assert!(known_hosts.contains(&entry), "{known_hosts}");

    let info = runner.client().await.info().await.unwrap();
    assert_eq!(format!("/{}", info.name), runner.socket.display().to_string());
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"over ssh")], "one");
    let run =
        run_to_end(&runner, &spec(&repo.file_url(), &commit, script("cat README"))).await.unwrap();
    assert_eq!(run.stdout(), "over ssh");
    assert_eq!(run.outcome(), &Outcome::Exited(0));

    runner.terminate();
    let stopping = runner.next_own_line().await.unwrap();
    assert_eq!(stopping, "tether runner stopping");
    assert!(runner.wait(CONNECT_LIMIT).await.success());
}

#[tokio::test]
async fn the_runner_reconnects_after_the_server_went_away() {
    let Some(mut sshd) = Sshd::start(true).await else {
        return;
    };
    let mut runner = sshd.connect_runner(&["--accept-new-host-key"]).await;
    runner.client().await.info().await.unwrap();
    sshd.kill().await;
    sshd.spawn().await;
    let again = tokio::time::timeout(CONNECT_LIMIT, runner.next_own_line())
        .await
        .expect("the runner should reconnect")
        .unwrap();
    assert!(again.contains("connected to"), "{again}");
    runner.client().await.info().await.unwrap();
}

#[tokio::test]
async fn a_pinned_fingerprint_trusts_the_host_and_a_wrong_one_refuses_it() {
    let Some(mut sshd) = Sshd::start(true).await else {
        return;
    };
    let fingerprint = sshd.fingerprint();
    let runner = sshd.connect_runner(&["--host-key-fingerprint", &fingerprint]).await;
    runner.client().await.info().await.unwrap();

    let target = sshd.target();
    let key = sshd.user_key.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts").display().to_string();
    let base = ["--connect", &target, "--identity", &key, "--known-hosts", &known_hosts];
    let (status, stderr) = run_until_it_gives_up(&base).await;
    assert!(!status.success());
    assert!(stderr.contains("is not known"), "{stderr}");
    assert!(stderr.contains(&fingerprint), "{stderr}");
    let wrong = format!("SHA256:{}", "A".repeat(43));
    let pinned = [&base[..], &["--host-key-fingerprint", &wrong]].concat();
    let (status, stderr) = run_until_it_gives_up(&pinned).await;
    assert!(!status.success());
    assert!(stderr.contains(&wrong) && stderr.contains(&fingerprint), "{stderr}");
}

#[tokio::test]
async fn a_changed_host_key_stops_the_runner_with_both_fingerprints() {
    let Some(sshd) = Sshd::start(true).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let old_key = write_new_key(&dir.path().join("old_host_key"));
    let known_hosts = dir.path().join("known_hosts");
    let line = format!("[127.0.0.1]:{} {}\n", sshd.port, old_key.to_openssh().unwrap());
    std::fs::write(&known_hosts, line).unwrap();
    let (target, key) = (sshd.target(), sshd.user_key.display().to_string());
    let known_hosts = known_hosts.display().to_string();
    let (status, stderr) = run_until_it_gives_up(&[
        "--connect",
        &target,
        "--identity",
        &key,
        "--known-hosts",
        &known_hosts,
        "--accept-new-host-key",
    ])
    .await;
    assert!(!status.success());
    let expected = old_key.fingerprint(HashAlg::Sha256).to_string();
    assert!(stderr.contains("HAS CHANGED"), "{stderr}");
    assert!(stderr.contains(&expected) && stderr.contains(&sshd.fingerprint()), "{stderr}");
}

#[tokio::test]
async fn a_refused_key_is_retried_until_the_server_takes_it() {
    let Some(mut sshd) = Sshd::start(false).await else {
        return;
    };
    let (name, socket) = sshd.new_runner_name();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(TETHER)
        .args(["runner", "--connect", &sshd.target(), "--name", &name])
        .arg("--identity")
        .arg(&sshd.user_key)
        .arg("--known-hosts")
        .arg(dir.path().join("known_hosts"))
        .arg("--accept-new-host-key")
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut refusals = 0;
    while refusals < 2 {
        let line = tokio::time::timeout(CONNECT_LIMIT, stderr.next_line())
            .await
            .expect("the runner should say why it cannot log in")
            .unwrap()
            .expect("the runner should keep trying");
        if line.contains("cannot log in") {
            assert!(line.contains("accepted none of the keys offered for root"), "{line}");
            assert!(line.contains("github.com/settings/keys"), "{line}");
            refusals += 1;
        }
    }
    let user_key = russh::keys::load_secret_key(&sshd.user_key, None).unwrap();
    sshd.authorize(user_key.public_key());
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let connected = tokio::time::timeout(CONNECT_LIMIT, stdout.next_line())
        .await
        .expect("the runner should get in once its key is authorized")
        .unwrap()
        .unwrap();
    assert!(connected.contains(&format!("tether runner {name} connected")), "{connected}");
    assert!(socket.exists());
}
