//! One server per data dir: a second `tether serve` on a data dir in use is refused before it
//! touches anything, and a clean stop leaves no runner behind.

use std::time::Duration;

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

/// The data dir's entries with their sizes and modification times; SQLite's `-wal` and `-shm`
/// by name only, as the first server itself may write to them meanwhile (its runners are
/// checked in the database instead).
fn snapshot(dir: &std::path::Path) -> Vec<(String, Option<(u64, std::time::SystemTime)>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata().unwrap();
            let live = name.ends_with("-wal") || name.ends_with("-shm");
            (name, (!live).then(|| (meta.len(), meta.modified().unwrap())))
        })
        .collect();
    entries.sort();
    entries
}

fn runners_in_database(data_dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(data_dir.join("tether.db")).unwrap();
    db.query_row("SELECT count(*) FROM runners", [], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn a_second_server_on_a_data_dir_in_use_exits_1_and_the_first_keeps_its_runners() {
    let github = FakeGitHub::start().await;
    let alice = SshKey::generate();
    github.add_user("alice", 1001, &[&alice.public]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = TetherServer::start(&data, &github.url).await;
    let runner = Runner::start(&["--name", "laptop"]).await;
    let forward = format!("/laptop:{}", runner.socket.display());
    let known_hosts = dir.path().join("known_hosts");
    let mut ssh = ssh(&first, &alice, "alice", &known_hosts, &["-N", "-R", &forward]);
    let ssh = ssh.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let listed = first
        .wait_for_runners(Duration::from_secs(10), |rs| rs.iter().any(|r| r["name"] == "laptop"))
        .await;
    assert!(listed, "the runner never appeared");

    let before = snapshot(&data);
    let second = tokio::process::Command::new(TETHER)
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--ssh-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--github-api-url", &github.url])
        .env("TETHER_LOG", "info")
        .output();
    let second = tokio::time::timeout(Duration::from_secs(10), second).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let expected = format!("{} is in use by process {}", data.display(), first.pid());
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "said more than once: {stderr}");
    assert!(!stderr.contains("left over") && !stderr.contains("crashed"), "{stderr}");
    assert_eq!(snapshot(&data), before, "the refused server changed the data dir");
    assert_eq!(first.runners().await.len(), 1, "the first server lost its runner");
    assert_eq!(runners_in_database(&data), 1);

    // A clean stop removes its own runners: the next start has none left over.
    let (code, stdout) = first.stop_and_read().await;
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().last(), Some("tether: stopped"), "{stdout}");
    assert_eq!(runners_in_database(&data), 0, "a clean stop left its runner behind");
    // The ssh it closed was told how to come back.
    let output = tokio::time::timeout(Duration::from_secs(10), ssh.wait_with_output()).await;
    let stderr = String::from_utf8_lossy(&output.unwrap().unwrap().stderr).into_owned();
    assert!(stderr.contains("the server is stopping; connect again once it is back"), "{stderr}");
    let again = TetherServer::start(&data, &github.url).await;
    assert!(again.runners().await.is_empty());
}

#[tokio::test]
async fn a_killed_server_leaves_no_lock_behind() {
    let github = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Sizes are written as people write them.
    let flags = ["--log-max-bytes", "1GiB"];
    let mut server = TetherServer::start_with(&dir.path().join("data"), &github.url, &flags).await;
    let again = server.start_again();
    server.kill_hard().await;
    let again = again.await;
    assert_eq!(again.get("/healthz").await.0, 200);
}
