//! Strangers before they log in: silent and half-sent connections to the real server, a low open
//! files limit, and floods. Each is closed in time, the number held is capped, and the server
//! keeps answering `/healthz` and real `ssh` logins.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake_github::FakeGitHub;
use crate::serve::*;

/// The timeouts the tests start the server with, instead of the default 30 s and 60 s.
const SHORT_TIMEOUT_FLAGS: [&str; 6] =
    ["--ssh-login-timeout", "2s", "--http-header-timeout", "2s", "--http-body-timeout", "2s"];
/// How long a test waits past a 2 s timeout for the server to act on it: generous, as the
/// machine is shared, but far below the defaults.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(12);

/// A server with alice's key on the fake GitHub, started as `process` says, with these flags.
struct Setup {
    _github: FakeGitHub,
    server: TetherServer,
    alice: SshKey,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(flags: &[&str], process: ProcessSetup) -> Setup {
        let github = FakeGitHub::start().await;
        let alice = SshKey::generate();
        github.add_user("alice", 1001, &[&alice.public]);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let server =
            TetherServer::start_process(&data, &github.url, "127.0.0.1:0", flags, process).await;
        Setup { _github: github, server, alice, dir }
    }

    async fn ssh_status_works(&self) -> bool {
        let known_hosts = self.dir.path().join("known_hosts");
        let mut command = ssh(&self.server, &self.alice, "alice", &known_hosts, &[]);
        let output = command.arg("status").output().await.unwrap();
        output.status.success()
    }

    async fn connect_ssh(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.server.ssh_port)).await.unwrap()
    }

    async fn connect_http(&self) -> TcpStream {
        TcpStream::connect(self.server.http_url.trim_start_matches("http://")).await.unwrap()
    }

    async fn healthz(&self) -> Option<(u16, String)> {
        tokio::time::timeout(Duration::from_secs(10), self.server.get("/healthz")).await.ok()
    }
}

/// Reads until the server closes the connection (end of file or reset), or `limit` passes;
/// returns what was read if it closed.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut read)).await {
        Ok(_) => Some(read),
        Err(_) => None,
    }
}

/// Opens `count` connections at once with `connect`.
async fn open_many<F: Future<Output = TcpStream>>(
    count: usize,
    connect: impl Fn() -> F,
) -> Vec<TcpStream> {
    futures::future::join_all((0..count).map(|_| connect())).await
}

/// How many of `streams` the server has closed within `limit`, each given the whole of it.
async fn count_closed(streams: &mut [TcpStream], limit: Duration) -> usize {
    let reads = streams.iter_mut().map(|s| closed_within(s, limit));
    futures::future::join_all(reads).await.iter().filter(|r| r.is_some()).count()
}

#[tokio::test]
async fn a_connection_that_never_sends_its_version_line_is_closed() {
    let setup = Setup::new(&SHORT_TIMEOUT_FLAGS, ProcessSetup::default()).await;
    let mut silent = setup.connect_ssh().await;
    let read = closed_within(&mut silent, TIMEOUT_MARGIN).await;
    let read = read.expect("a connection that sent nothing was still open");
    assert!(read.starts_with(b"SSH-2.0-tether_"), "{}", String::from_utf8_lossy(&read));
}

#[tokio::test]
async fn a_client_that_shakes_hands_but_never_authenticates_is_closed() {
    let setup = Setup::new(&SHORT_TIMEOUT_FLAGS, ProcessSetup::default()).await;
    let addr = ("127.0.0.1", setup.server.ssh_port);
    let config = std::sync::Arc::new(russh::client::Config::default());
    let handle = russh::client::connect(config, addr, AnyHostKey).await.unwrap();
    let closed = crate::harness::eventually(TIMEOUT_MARGIN, || handle.is_closed()).await;
    assert!(closed, "a session that never authenticated was still open");
}

/// A russh client that accepts any host key: these tests are about what happens before it
/// matters.
struct AnyHostKey;

impl russh::client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

#[tokio::test]
async fn half_sent_request_headers_and_bodies_are_cut_off() {
    let setup = Setup::new(&SHORT_TIMEOUT_FLAGS, ProcessSetup::default()).await;
    let mut headers = setup.connect_http().await;
    headers.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut body = setup.connect_http().await;
    let head = "POST /integrations/github/events HTTP/1.1\r\nHost: x\r\n\
        X-GitHub-Event: push\r\nContent-Length: 1000\r\n\r\n{\"zen\":";
    body.write_all(head.as_bytes()).await.unwrap();
    // A client that sends its body a byte at a time, each well within any idle timeout.
    let mut trickle = setup.connect_http().await;
    trickle.write_all(head.as_bytes()).await.unwrap();
    let trickling = tokio::spawn(async move {
        for _ in 0..60 {
            if trickle.write_all(b" ").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    });

    assert!(closed_within(&mut headers, TIMEOUT_MARGIN).await.is_some(), "headers never cut");
    let answer = closed_within(&mut body, TIMEOUT_MARGIN).await.expect("body never cut");
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains(" 202 ") && !answer.contains(" 500 "), "{answer}");
    assert!(trickling.await.unwrap(), "a body sent a byte at a time was never cut");
    assert_eq!(setup.healthz().await, Some((200, "ok\n".to_string())));
}

/// The caps with a 256 file limit: half of it, 128, is below both the SSH cap (1,000) and the
/// HTTP one (4,096). Each test fills one, as both full would leave no file for the other.
fn file_limit_256() -> ProcessSetup {
    ProcessSetup { file_limit: Some(256), ..ProcessSetup::default() }
}

/// With the default 30 s timeouts, what closes within this was refused for the cap.
const AT_ONCE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn unauthenticated_ssh_connections_over_the_cap_are_closed_at_once() {
    let setup = Setup::new(&[], file_limit_256()).await;
    let mut silent = open_many(200, || setup.connect_ssh()).await;
    let closed = count_closed(&mut silent, AT_ONCE).await;
    assert!(closed >= 72, "{closed} of 200 silent SSH connections closed; the cap is 128");
    assert!(closed < 200, "every silent SSH connection was closed at once");
}

#[tokio::test]
async fn http_connections_over_the_cap_are_answered_503_and_closed() {
    let setup = Setup::new(&[], file_limit_256()).await;
    let mut idle = open_many(200, || setup.connect_http()).await;
    let reads = idle.iter_mut().map(|s| closed_within(s, AT_ONCE));
    let answers: Vec<Vec<u8>> =
        futures::future::join_all(reads).await.into_iter().flatten().collect();
    let closed = answers.len();
    assert!(closed >= 72, "{closed} of 200 idle HTTP connections closed; the cap is 128");
    assert!(closed < 200, "every idle HTTP connection was closed at once");
    for answer in answers {
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.ends_with("\r\n\r\ntoo many connections\n"), "{answer}");
    }
}

#[tokio::test]
async fn a_flood_of_silent_connections_leaves_health_checks_and_logins_working() {
    // The attack as observed, scaled to a 256 file limit: more silent SSH connections than
    // the server has files, and 50 half-sent HTTP requests.
    let process = ProcessSetup { file_limit: Some(256), keep_log: true, ..ProcessSetup::default() };
    let setup = Setup::new(&SHORT_TIMEOUT_FLAGS, process).await;
    let mut silent = open_many(400, || setup.connect_ssh()).await;
    let mut half_sent = Vec::new();
    for _ in 0..50 {
        let mut stream = setup.connect_http().await;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        half_sent.push(stream);
    }
    assert_eq!(setup.healthz().await, Some((200, "ok\n".to_string())), "during the flood");

    // Over the cap, connections wait in the kernel's backlog and are only accepted as earlier
    // ones time out, so the last are closed a few timeouts later: give each round its margin.
    let closed = count_closed(&mut silent, 2 * TIMEOUT_MARGIN).await;
    assert_eq!(closed, 400, "silent SSH connections outlived the login timeout");
    let closed = count_closed(&mut half_sent, TIMEOUT_MARGIN).await;
    assert_eq!(closed, 50, "half-sent HTTP requests outlived the header timeout");
    assert!(setup.ssh_status_works().await, "ssh failed after the flood");
    assert_eq!(setup.healthz().await, Some((200, "ok\n".to_string())), "after the flood");
    let log = setup.server.log();
    assert!(log.len() < 64 * 1024, "{} bytes of log: {}", log.len(), &log[..2000.min(log.len())]);
}

#[tokio::test]
async fn running_out_of_files_pauses_accepting_and_recovers() {
    // 64 files: the caps (32 SSH, 32 HTTP) and the server's own files are more than that, so
    // accepting fails for want of files, as on a busy server.
    let process = ProcessSetup { file_limit: Some(64), keep_log: true, ..ProcessSetup::default() };
    let setup = Setup::new(&SHORT_TIMEOUT_FLAGS, process).await;
    let mut silent = open_many(100, || setup.connect_ssh()).await;
    let mut idle = open_many(60, || setup.connect_http()).await;
    let (ssh_closed, http_closed) = futures::future::join(
        count_closed(&mut silent, 3 * TIMEOUT_MARGIN),
        count_closed(&mut idle, 3 * TIMEOUT_MARGIN),
    )
    .await;
    assert_eq!((ssh_closed, http_closed), (100, 60), "connections outlived their timeouts");
    assert_eq!(setup.healthz().await, Some((200, "ok\n".to_string())), "after running out");
    assert!(setup.ssh_status_works().await, "ssh failed after running out of files");
    let log = setup.server.log();
    let failures = log.matches("accepting").count();
    assert!(failures > 0, "the server never ran out of files; the test proves nothing: {log}");
    // Backing off from 10 ms to 1 s, well under a hundred lines in these seconds; a loop that
    // retries at once writes hundreds of thousands.
    assert!(
        failures < 200,
        "{failures} log lines about accepting: {}",
        &log[..2000.min(log.len())]
    );
}

#[tokio::test]
async fn the_soft_file_limit_is_raised_to_the_hard_one() {
    use nix::sys::resource::{Resource, getrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(hard > 256, "the test needs a hard limit over 256, not {hard}");
    let process = ProcessSetup { soft_file_limit: Some(256), ..ProcessSetup::default() };
    let setup = Setup::new(&[], process).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", setup.server.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, [hard.to_string(), hard.to_string()], "{line}");
}
