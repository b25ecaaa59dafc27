//! The SSH gateway with the real OpenSSH client: GitHub-key logins, `ssh -R` runners, refusals,
//! liveness.

use std::time::Duration;

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

/// A server, a fake GitHub that knows alice's key, and a place for known_hosts.
struct Setup {
    github: FakeGitHub,
    server: TetherServer,
    alice: SshKey,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let github = FakeGitHub::start().await;
        let alice = SshKey::generate();
        github.add_user("alice", 1001, &[&alice.public]);
        let dir = tempfile::tempdir().unwrap();
        let server = TetherServer::start(&dir.path().join("data"), &github.url).await;
        Setup { github, server, alice, dir }
    }

    fn ssh(&self, login: &str, key: &SshKey, options: &[&str]) -> tokio::process::Command {
        ssh(&self.server, key, login, &self.dir.path().join("known_hosts"), options)
    }

    /// `ssh -N` with reverse forwards, as a runner's owner runs it.
    fn forward(&self, forwards: &[String]) -> tokio::process::Child {
        let mut options = vec!["-N", "-o", "ServerAliveInterval=15"];
        for forward in forwards {
            options.extend(["-R", forward.as_str()]);
        }
        self.ssh("alice", &self.alice, &options).spawn().unwrap()
    }

    async fn has_runner(&self, name: &str) -> bool {
        self.server
            .wait_for_runners(Duration::from_secs(10), |rs| rs.iter().any(|r| r["name"] == name))
            .await
    }
}

#[tokio::test]
async fn a_unix_socket_forward_makes_a_listed_runner_and_killing_ssh_removes_it() {
    let setup = Setup::new().await;
    let runner = Runner::start(&["--name", "laptop", "--labels", "gpu", "--max-runs", "3"]).await;
    let mut ssh = setup.forward(&[format!("/laptop:{}", runner.socket.display())]);
    assert!(setup.has_runner("laptop").await, "the runner never appeared");
    let runners = setup.server.runners().await;
    let laptop = &runners[0];
    assert_eq!(laptop["login"], "alice");
    assert_eq!(laptop["os"], std::env::consts::OS);
    assert_eq!(
        laptop["arch"],
        if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }
    );
    assert_eq!(laptop["labels"], serde_json::json!(["gpu"]));
    assert_eq!(laptop["capacity"], 3);
    assert!(laptop["connected_at"].as_str().unwrap().ends_with('Z'));
    let (_, page) = setup.server.get("/").await;
    assert!(page.contains("laptop") && page.contains("alice"), "{page}");

    ssh.kill().await.unwrap();
    let gone = setup.server.wait_for_runners(Duration::from_secs(1), |rs| rs.is_empty()).await;
    assert!(gone, "the runner outlived its session");
}

#[tokio::test]
async fn a_tcp_forward_makes_a_runner_named_by_address_or_by_info() {
    let setup = Setup::new().await;
    let runner =
        Runner::start_listening(Some("tcp:127.0.0.1:0"), &["--name", "from-info"], &[]).await;
    let port = runner.listening.rsplit(':').next().unwrap().to_string();
    let _named = setup.forward(&[format!("box:0:127.0.0.1:{port}")]);
    assert!(setup.has_runner("box").await);
    let _default = setup.forward(&[format!("0:127.0.0.1:{port}")]);
    assert!(setup.has_runner("from-info").await);
}

#[tokio::test]
async fn a_forward_to_something_that_is_not_a_runner_is_refused() {
    let setup = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.sock");
    let mut ssh = setup.forward(&[format!("/ghost:{}", missing.display())]);
    let status = tokio::time::timeout(Duration::from_secs(20), ssh.wait())
        .await
        .expect("ssh stayed connected")
        .unwrap();
    assert!(!status.success());
    assert!(setup.server.runners().await.is_empty());
}

#[tokio::test]
async fn keys_not_on_the_account_and_unknown_logins_are_refused() {
    let setup = Setup::new().await;
    let stranger = SshKey::generate();
    let output = setup.ssh("alice", &stranger, &[]).arg("status").output().await.unwrap();
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Permission denied"), "{output:?}");
    let output = setup.ssh("nobody-here", &setup.alice, &[]).arg("status").output().await.unwrap();
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    let ok = setup.ssh("alice", &setup.alice, &[]).arg("status").output().await.unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let greeting = String::from_utf8_lossy(&ok.stdout);
    assert!(greeting.starts_with("Hi alice! "), "{greeting}");
    assert!(greeting.contains("You have no runners connected."), "{greeting}");
}

#[tokio::test]
async fn commands_shells_and_local_forwards_do_nothing() {
    let setup = Setup::new().await;
    let marker = setup.dir.path().join("ran");
    let command = format!("touch {}", marker.display());
    let output = setup.ssh("alice", &setup.alice, &[]).arg(&command).output().await.unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert!(!marker.exists());

    // `-L` into the server's own HTTP port: the channel is refused, so no byte reaches it.
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = local.local_addr().unwrap().port();
    drop(local);
    let http_port = setup.server.http_url.rsplit(':').next().unwrap().to_string();
    let forward = format!("{local_port}:127.0.0.1:{http_port}");
    let _tunnel = setup.ssh("alice", &setup.alice, &["-N", "-L", &forward]).spawn().unwrap();
    let mut answered = None;
    for _ in 0..200 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", local_port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let mut buf = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
            answered = Some(buf);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(answered.expect("the -L tunnel never listened"), b"", "data crossed a -L forward");
}

#[tokio::test]
async fn the_ninth_forward_of_a_session_is_refused() {
    let setup = Setup::new().await;
    let runner = Runner::start(&[]).await;
    let forwards: Vec<String> =
        (1..=9).map(|i| format!("/r{i}:{}", runner.socket.display())).collect();
    let mut ssh = setup.forward(&forwards);
    let status = tokio::time::timeout(Duration::from_secs(20), ssh.wait())
        .await
        .expect("ssh kept going")
        .unwrap();
    assert_eq!(status.code(), Some(255));
    let eight = setup.forward(&forwards[..8]);
    assert!(setup.server.wait_for_runners(Duration::from_secs(10), |rs| rs.len() == 8).await);
    drop(eight);
}

#[tokio::test]
async fn twenty_logins_make_one_key_lookup_and_an_outage_spares_cached_users() {
    let setup = Setup::new().await;
    for _ in 0..20 {
        let output = setup.ssh("alice", &setup.alice, &[]).arg("status").output().await.unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    assert_eq!(setup.github.calls("GET /users/alice/keys"), 1);
    setup.github.set_down(true);
    let output = setup.ssh("alice", &setup.alice, &[]).arg("status").output().await.unwrap();
    assert!(output.status.success(), "a cached user was locked out: {output:?}");
    let bob = SshKey::generate();
    setup.github.add_user("bob", 1002, &[&bob.public]);
    let output = setup.ssh("bob", &bob, &[]).arg("status").output().await.unwrap();
    assert_eq!(output.status.code(), Some(255), "an uncached user got in while GitHub was down");
}

#[tokio::test]
async fn the_host_key_survives_a_restart_and_leftover_runners_are_cleared() {
    let setup = Setup::new().await;
    let before = setup.server.fingerprint.clone();
    let Setup { github, server, dir, alice } = setup;
    let server = server.restart().await;
    assert_eq!(server.fingerprint, before);
    assert!(server.runners().await.is_empty());
    drop((github, dir, alice));
}

#[tokio::test]
async fn a_frozen_client_is_dropped_by_keepalives() {
    let setup = Setup::new().await;
    let runner = Runner::start(&["--name", "frozen"]).await;
    // No client-side keepalive, so that only the server's decides.
    let forward = format!("/frozen:{}", runner.socket.display());
    let ssh = setup.ssh("alice", &setup.alice, &["-N", "-R", &forward]).spawn().unwrap();
    assert!(setup.has_runner("frozen").await);
    let pid = nix::unistd::Pid::from_raw(ssh.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let dropped = setup.server.wait_for_runners(Duration::from_secs(50), |rs| rs.is_empty()).await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(dropped, "a frozen client kept its runner for 50 s");
}

#[tokio::test]
async fn the_seventeenth_session_of_a_user_is_refused() {
    let setup = Setup::new().await;
    let runner = Runner::start(&["--name", "many"]).await;
    // Each session holds a runner, so that the server's count of them can be watched.
    let mut sessions = Vec::new();
    for i in 0..16 {
        sessions.push(setup.forward(&[format!("/r{i}:{}", runner.socket.display())]));
        let held = i + 1;
        let counted =
            setup.server.wait_for_runners(Duration::from_secs(10), |rs| rs.len() == held).await;
        assert!(counted, "session {held} did not register its runner");
    }
    let output = setup.ssh("alice", &setup.alice, &[]).arg("status").output().await.unwrap();
    assert_eq!(output.status.code(), Some(255), "a 17th session got in: {output:?}");
    drop(sessions.pop());
    let after_one_left =
        setup.server.wait_for_runners(Duration::from_secs(5), |rs| rs.len() == 15).await;
    assert!(after_one_left);
    let output = setup.ssh("alice", &setup.alice, &[]).arg("status").output().await.unwrap();
    assert!(output.status.success(), "a 16th session was refused: {output:?}");
}

#[tokio::test]
async fn an_unknown_login_tried_again_and_again_costs_one_lookup() {
    let setup = Setup::new().await;
    for _ in 0..5 {
        let output = setup.ssh("nobody-here", &setup.alice, &[]).arg("status").output().await;
        assert_eq!(output.unwrap().status.code(), Some(255));
    }
    assert_eq!(setup.github.calls("GET /users/nobody-here/keys"), 1);
    assert_eq!(setup.github.calls("GET /users/NOBODY-here/keys"), 0);
    let output = setup.ssh("NOBODY-here", &setup.alice, &[]).arg("status").output().await;
    assert_eq!(output.unwrap().status.code(), Some(255));
    assert_eq!(setup.github.calls("GET /users/NOBODY-here/keys"), 0, "logins differ only in case");
}
