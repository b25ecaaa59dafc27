//! What a runner is and says, bounded: names, labels, secrets and listen addresses refused at the
//! runner's start; `Info` out of bounds refused at the server's border; the wire never makes a
//! local run.

use std::process::Stdio;
use std::time::Duration;

use tether::exec::{ExecConfig, Executor};
use tether::runner::service::RunnerIdentity;
use tether::runner::{ListenAddr, RunnerClient, RunnerError, RunnerService};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

/// `tether runner ARGS` that must refuse to start: its exit code and what it said.
async fn refused_start(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("runner.sock");
    let output = tokio::process::Command::new(TETHER)
        .arg("runner")
        .arg("--listen")
        .arg(&socket)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .args(args)
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("the runner started instead of refusing")
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn a_runner_refuses_at_start_what_it_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(&secrets, "GOOD = \"long-enough\"\nPIN = \"123\"\nX = \"a\"\n").unwrap();
    let many_labels = vec!["l"; 33].join(",");
    let long_label = "l".repeat(65);
    let cases: [(&[&str], &str); 7] = [
        (&["--name", ".."], "\"..\" is not a runner name"),
        (&["--name=-rf"], "\"-rf\" is not a runner name"),
        (&["--labels", &many_labels], "33 labels: a runner carries at most 32"),
        (&["--labels", &long_label], "is not a label"),
        (&["--secrets", secrets.to_str().unwrap()], "PIN, X shorter than 4 bytes"),
        (&["--pass-env", "NOT A NAME"], "is not a variable name"),
        (&["--pass-env", "A=B"], "is not a variable name"),
    ];
    for (args, says) in cases {
        let (code, stderr) = refused_start(args).await;
        assert_ne!(code, Some(0), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("123"), "a secret's value in {stderr}");
    }
}

#[tokio::test]
async fn tcp_is_loopback_only_and_says_every_local_user_can_reach_it() {
    for addr in ["tcp:0.0.0.0:0", "tcp:[::]:0", "tcp:10.1.2.3:7000"] {
        let output = tokio::process::Command::new(TETHER)
            .args(["runner", "--listen", addr])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{addr}: {stderr}");
        assert!(stderr.contains("on loopback only"), "{addr}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut runner = tokio::process::Command::new(TETHER)
        .args(["runner", "--listen", "tcp:127.0.0.1:0", "--work-dir"])
        .arg(dir.path())
        .env("TETHER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(runner.stdout.take().unwrap()).lines();
    let listening = stdout.next_line().await.unwrap().unwrap();
    assert!(listening.contains("listening on tcp:127.0.0.1:"), "{listening}");
    runner.start_kill().unwrap();
    let output = runner.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("every local user can connect to tcp:127.0.0.1:"), "{stderr}");
}

#[tokio::test]
async fn the_wire_never_makes_a_local_run() {
    let repo = Repo::new();
    let commit = repo.commit(&[("README", b"hi")], "one");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.toml");
    // Given to push events of octo/repo only.
    std::fs::write(&secrets, "[DEPLOY_KEY]\nvalue = \"s3cr3t-v4lue\"\nrepos = [\"octo/repo\"]\n")
        .unwrap();
    let args = ["--secrets", secrets.to_str().unwrap()];
    let runner = Runner::start_listening(Some("tcp:127.0.0.1:0"), &args, &[]).await;
    let addr = ListenAddr::Tcp(runner.listening.trim_start_matches("tcp:").to_string());
    let mut client = RunnerClient::connect(&addr).await.unwrap();
    let mut attack = spec(&repo.file_url(), &commit, script("echo \"[$DEPLOY_KEY]\""));
    attack.thunk.secrets = vec!["DEPLOY_KEY".into()];
    attack.event.repo = "mallory/fork".into();
    for kind in ["local", "LOCAL", "", "workflow_dispatch"] {
        attack.event.kind = kind.into();
        let refused = client.run(&attack).await.err();
        assert!(
            matches!(&refused, Some(RunnerError::Refused(m)) if m.contains("is not an event a server sends")),
            "{kind}: {refused:?}"
        );
    }
    assert_eq!(client.info().await.unwrap().runs_in_flight, 0);
    // A known kind runs, and gets only what its event may have.
    attack.event.kind = "push".into();
    let run = collect(client.run(&attack).await.unwrap()).await;
    assert_eq!(run.stdout(), "[]\n", "{run:?}");
}

/// A server, a fake GitHub that knows alice's key, and `ssh -R` as alice.
struct Gateway {
    _github: FakeGitHub,
    server: TetherServer,
    alice: SshKey,
    dir: tempfile::TempDir,
}

impl Gateway {
    async fn new() -> Gateway {
        let github = FakeGitHub::start().await;
        let alice = SshKey::generate();
        github.add_user("alice", 1001, &[&alice.public]);
        let dir = tempfile::tempdir().unwrap();
        let server = TetherServer::start(&dir.path().join("data"), &github.url).await;
        Gateway { _github: github, server, alice, dir }
    }

    fn forward(&self, forward: &str) -> tokio::process::Child {
        let known_hosts = self.dir.path().join("known_hosts");
        ssh(&self.server, &self.alice, "alice", &known_hosts, &["-N", "-R", forward])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A runner protocol server on a loopback port that says what it is told about itself, as a
/// modified runner could: the library's service, without the checks of `tether runner`'s flags.
/// Returns the port.
async fn serve_runner_saying(dir: &std::path::Path, name: &str, labels: Vec<String>) -> String {
    let executor = Executor::new(ExecConfig {
        work_dir: dir.join("work"),
        max_runs: 1,
        secrets: Default::default(),
        engines: Default::default(),
        pass_env: vec![],
    })
    .unwrap();
    let service = RunnerService::new(RunnerIdentity { name: name.into(), labels }, executor);
    let bound = ListenAddr::Tcp("127.0.0.1:0".into()).bind().await.unwrap();
    let port = bound.describe().rsplit(':').next().unwrap().to_string();
    tokio::spawn(tether::runner::serve(bound, service, std::future::pending()));
    port
}

#[tokio::test]
async fn the_server_refuses_a_runner_whose_info_is_out_of_bounds() {
    let gateway = Gateway::new().await;
    let cases: [(&str, Vec<String>, &str); 3] = [
        ("laptop", vec!["x".into(); 20_002], "labels: 20002 labels"),
        ("laptop", vec!["a b".into()], "labels: \"a b\" is not a label"),
        ("..", vec![], "name: \"..\" is not a runner name"),
    ];
    for (name, labels, says) in cases {
        let port = serve_runner_saying(gateway.dir.path(), name, labels).await;
        // OpenSSH's default bind address gives no name: the runner is named by its Info.
        let ssh = gateway.forward(&format!("0:127.0.0.1:{port}"));
        let output = tokio::time::timeout(Duration::from_secs(20), ssh.wait_with_output())
            .await
            .expect("ssh stayed connected")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("runner refused") && stderr.contains(says), "{says}: {stderr}");
        assert!(gateway.server.runners().await.is_empty());
    }
}

#[tokio::test]
async fn forwards_named_like_paths_or_flags_are_refused() {
    let gateway = Gateway::new().await;
    let runner = Runner::start(&["--name", "laptop"]).await;
    for bad in ["..", "-rf", ".hidden"] {
        let ssh = gateway.forward(&format!("/{bad}:{}", runner.socket.display()));
        let output = tokio::time::timeout(Duration::from_secs(20), ssh.wait_with_output())
            .await
            .expect("ssh stayed connected")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad}: {stderr}");
        assert!(stderr.contains("forwarding failed"), "{bad}: {stderr}");
        assert!(gateway.server.runners().await.is_empty(), "{bad}");
    }
    let _ssh = gateway.forward(&format!("/laptop:{}", runner.socket.display()));
    let limit = Duration::from_secs(10);
    assert!(gateway.server.wait_for_runners(limit, |rs| rs.len() == 1).await);
}
