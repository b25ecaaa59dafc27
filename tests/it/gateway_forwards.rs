//! The per-session forward cap against a client that does what OpenSSH never does: cancel
//! forwards it never registered. A russh client plays it, carrying the server's channels to a
//! real runner.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::Channel;
use russh::client::{ChannelOpenHandle, Handle, Msg, Session};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use crate::fake_github::FakeGitHub;
use crate::harness::*;
use crate::serve::*;

/// Carries each channel the server opens back to the runner's socket.
struct ToRunner {
    socket: PathBuf,
}

impl russh::client::Handler for ToRunner {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        _: &str,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let socket = self.socket.clone();
        tokio::spawn(async move {
            let mut runner = tokio::net::UnixStream::connect(socket).await.unwrap();
            let mut channel = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut channel, &mut runner).await;
        });
        Ok(())
    }
}

/// alice's session, logged in with her key.
async fn login(server: &TetherServer, key: &SshKey, runner: &Runner) -> Handle<ToRunner> {
    let key = PrivateKey::from_openssh(std::fs::read_to_string(&key.path).unwrap()).unwrap();
    let config = Arc::new(russh::client::Config::default());
    let handler = ToRunner { socket: runner.socket.clone() };
    let addr = ("127.0.0.1", server.ssh_port);
    let mut session = russh::client::connect(config, addr, handler).await.unwrap();
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), None);
    let result = session.authenticate_publickey("alice", key).await.unwrap();
    assert!(result.success(), "alice could not log in");
    session
}

#[tokio::test]
async fn cancelling_forwards_never_registered_frees_no_slot() {
    let github = FakeGitHub::start().await;
    let alice = SshKey::generate();
    github.add_user("alice", 1001, &[&alice.public]);
    let dir = tempfile::tempdir().unwrap();
    let server = TetherServer::start(&dir.path().join("data"), &github.url).await;
    let runner = Runner::start(&[]).await;
    let session = login(&server, &alice, &runner).await;
    for i in 1..=8 {
        session.streamlocal_forward(format!("/r{i}")).await.unwrap();
    }
    let eight = server.wait_for_runners(Duration::from_secs(10), |rs| rs.len() == 8).await;
    assert!(eight, "the eight runners were not registered");

    for i in 0..20 {
        let cancelled = session.cancel_streamlocal_forward(format!("/ghost{i}")).await;
        assert!(cancelled.is_err(), "cancelling a forward never registered succeeded");
        let cancelled = session.cancel_tcpip_forward(format!("ghost{i}"), 40_000 + i).await;
        assert!(cancelled.is_err(), "cancelling a forward never registered succeeded");
    }
    for i in 9..=12 {
        let more = session.streamlocal_forward(format!("/r{i}")).await;
        assert!(more.is_err(), "forward {i} of a session was accepted");
    }
    // A registered forward, cancelled, does free its slot, and its runner goes.
    session.cancel_streamlocal_forward("/r1").await.unwrap();
    session.streamlocal_forward("/r9").await.unwrap();
    let names = |rs: &[serde_json::Value]| {
        let mut names: Vec<String> =
            rs.iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
        names.sort();
        names
    };
    let expected: Vec<String> = (2..=9).map(|i| format!("r{i}")).collect();
    let swapped =
        server.wait_for_runners(Duration::from_secs(10), |rs| names(rs) == expected).await;
    assert!(swapped, "runners: {:?}", names(&server.runners().await));
}
