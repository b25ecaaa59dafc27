//! `tether runner --connect` against tether's own SSH gateway: it connects, comes back after a
//! server restart, and refuses a server whose host key changed.

use std::ffi::OsStr;
use std::time::Duration;

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

/// Starts `tether runner --connect alice@127.0.0.1:PORT` with alice's key and a known_hosts file
/// in `dir`, trusting the server on first use.
async fn connect(server: &TetherServer, key: &SshKey, dir: &std::path::Path) -> Runner {
    let target = format!("alice@127.0.0.1:{}", server.ssh_port);
    let known_hosts = dir.join("known_hosts");
    let args = [
        OsStr::new("--connect"),
        OsStr::new(&target),
        OsStr::new("--identity"),
        key.path.as_os_str(),
        OsStr::new("--known-hosts"),
        known_hosts.as_os_str(),
        OsStr::new("--accept-new-host-key"),
        OsStr::new("--name"),
        OsStr::new("laptop"),
    ];
    let runner_dir = tempfile::tempdir().unwrap();
    let socket = runner_dir.path().join("unused.sock");
    Runner::spawn(runner_dir, socket, &args, &[("TETHER_LOG", "warn")], "connected to").await
}

#[tokio::test]
async fn the_built_in_client_connects_and_comes_back_after_a_restart() {
    let github = FakeGitHub::start().await;
    let alice = SshKey::generate();
    github.add_user("alice", 1001, &[&alice.public]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = TetherServer::start(&data, &github.url).await;
    let port = server.ssh_port;
    let _runner = connect(&server, &alice, dir.path()).await;
    assert!(
        server
            .wait_for_runners(Duration::from_secs(10), |rs| rs
                .iter()
                .any(|r| r["name"] == "laptop"))
            .await
    );

    assert_eq!(server.stop().await, Some(0));
    let listen = format!("127.0.0.1:{port}");
    let server = TetherServer::start_on(&data, &github.url, &listen, &[]).await;
    let back = server
        .wait_for_runners(Duration::from_secs(35), |rs| rs.iter().any(|r| r["name"] == "laptop"))
        .await;
    assert!(back, "the runner did not reconnect within 35 s");
}

#[tokio::test]
async fn the_built_in_client_refuses_a_changed_host_key() {
    let github = FakeGitHub::start().await;
    let alice = SshKey::generate();
    github.add_user("alice", 1001, &[&alice.public]);
    let dir = tempfile::tempdir().unwrap();
    let server = TetherServer::start(&dir.path().join("data"), &github.url).await;
    let port = server.ssh_port;
    let mut runner = connect(&server, &alice, dir.path()).await;
    assert_eq!(server.stop().await, Some(0));
    // Another server, with another host key, on the same address.
    let listen = format!("127.0.0.1:{port}");
    let impostor =
        TetherServer::start_on(&dir.path().join("other"), &github.url, &listen, &[]).await;
    let status = runner.wait(Duration::from_secs(40)).await;
    assert!(!status.success(), "the runner accepted a changed host key");
    assert!(impostor.runners().await.is_empty());
}

#[tokio::test]
async fn a_missing_ssh_directory_is_created_0700() {
    use std::os::unix::fs::PermissionsExt;
    let github = FakeGitHub::start().await;
    let alice = SshKey::generate();
    github.add_user("alice", 1001, &[&alice.public]);
    let dir = tempfile::tempdir().unwrap();
    let server = TetherServer::start(&dir.path().join("data"), &github.url).await;
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let target = format!("alice@127.0.0.1:{}", server.ssh_port);
    let args = [
        OsStr::new("--connect"),
        OsStr::new(&target),
        OsStr::new("--identity"),
        alice.path.as_os_str(),
        OsStr::new("--accept-new-host-key"),
        OsStr::new("--name"),
        OsStr::new("laptop"),
    ];
    let runner_dir = tempfile::tempdir().unwrap();
    let socket = runner_dir.path().join("unused.sock");
    let env = [("HOME", home.to_str().unwrap()), ("TETHER_LOG", "warn")];
    let _runner = Runner::spawn(runner_dir, socket, &args, &env, "connected to").await;
    let ssh_dir = home.join(".ssh");
    assert!(ssh_dir.join("known_hosts").exists());
    let mode = std::fs::metadata(&ssh_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "~/.ssh is {mode:o}");
    // The runner inherited this process's umask; with 077 the test would prove nothing.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap().trim();
    assert_ne!(u32::from_str_radix(umask, 8).unwrap() & 0o055, 0o055, "umask {umask}");
}
