//! `tether runner --connect`: keeps a runner connected to its server over SSH, reconnecting with
//! backoff, and hands over every channel the server forwards to it as a byte stream.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use russh::ChannelStream;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::identity::Keys;
use super::known_hosts::HostKeyVerifier;
use super::session::{self, Ended, Phase, SessionContext};
use crate::core::backoff::Backoff;
use crate::core::host_key::HostKeyRefusal;

/// The port of a tether server's SSH gateway when `--connect` names none.
pub const DEFAULT_PORT: u16 = 6455;
/// Forwarded channels accepted but not yet taken by the runner; beyond this they are refused.
const PENDING_CHANNELS: usize = 16;

/// `LOGIN@HOST[:PORT]`: the GitHub login to log in as, and the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTarget {
    pub login: String,
    pub host: String,
    pub port: u16,
}

impl FromStr for ConnectTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<ConnectTarget, String> {
        let usage = || format!("`{text}`: write the server as LOGIN@HOST or LOGIN@HOST:PORT");
        let (login, rest) = text.split_once('@').ok_or_else(usage)?;
        let (host, port) = match rest.strip_prefix('[') {
            // An IPv6 address: [::1] or [::1]:PORT.
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']').ok_or_else(usage)?;
                (host, after.strip_prefix(':'))
            }
            None if rest.matches(':').count() == 1 => {
                let (host, port) = rest.split_once(':').ok_or_else(usage)?;
                (host, Some(port))
            }
            None => (rest, None),
        };
        let port = match port {
            Some(port) => port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{text}`: `{port}` is not a port"))?,
            None => DEFAULT_PORT,
        };
        if login.is_empty() || host.is_empty() {
            return Err(usage());
        }
        Ok(ConnectTarget { login: login.to_string(), host: host.to_string(), port })
    }
}

/// `HOST:PORT`, with brackets around an IPv6 address.
impl fmt::Display for ConnectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What `tether runner --connect` was told.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub target: ConnectTarget,
    /// The server names the runner after the forwarded path, `/NAME`.
    pub runner_name: String,
    /// The one key to use; default: ssh-agent's and `~/.ssh/id_*`.
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub accept_new_host_key: bool,
    /// `SHA256:…`, checked by `core::host_key::parse_fingerprint`.
    pub host_key_fingerprint: Option<String>,
}

/// Why the client gave up: nothing that trying again would fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("refusing to connect: {0}")]
    // Not a `source`: the message already holds the refusal, so a chain would say it twice.
    HostKey(HostKeyRefusal),
    #[error("cannot read the known hosts file {}: {message}", path.display())]
    KnownHosts { path: PathBuf, message: String },
    /// No key to offer (ssh-agent emptied since the start, say).
    #[error("{}", super::identity::NO_KEY_HINT)]
    NoKeys,
}

/// One channel the server opened to the runner: a byte stream to serve the protocol on.
pub struct ForwardedChannel(ChannelStream<Msg>);

/// The client while it runs: connections come and go, the channels keep coming.
pub struct Client {
    phase: watch::Sender<Phase>,
    task: Option<JoinHandle<Result<(), ClientError>>>,
}

impl Client {
    /// Reads the keys (asking for passphrases on the terminal now, not at each reconnect), then
    /// connects in the background and keeps reconnecting. The stream yields every forwarded
    /// channel, across reconnects, until the client stops.
    pub async fn start(
        config: ClientConfig,
    ) -> anyhow::Result<(Client, impl Stream<Item = std::io::Result<ForwardedChannel>>)> {
        let identity = config.identity.clone();
        let keys = tokio::task::spawn_blocking(move || Keys::load(identity.as_deref())).await??;
        keys.ensure_some().await?;
        let verifier = HostKeyVerifier::new(
            &config.target.host,
            config.target.port,
            config.known_hosts.clone(),
            config.accept_new_host_key,
            config.host_key_fingerprint.clone(),
        );
        let (tx, rx) = mpsc::channel(PENDING_CHANNELS);
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let context = Arc::new(SessionContext {
            target: config.target,
            runner_name: config.runner_name,
            keys,
            verifier,
            channels: tx,
        });
        let task = tokio::spawn(keep_connected(context, phase_rx));
        let client = Client { phase, task: Some(task) };
        Ok((client, ReceiverStream::new(rx)))
    }

    /// Resolves only when the client gives up for good, with the reason.
    pub async fn failed(&mut self) -> ClientError {
        let Some(task) = &mut self.task else {
            return std::future::pending().await;
        };
        let result = task.await;
        self.task = None;
        match result {
            Ok(Err(error)) => error,
            // It stops by itself only on an error; a panic is a bug worth seeing.
            Ok(Ok(())) => std::future::pending().await,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    /// Takes no new connections: cancels the forward and refuses channels that still come.
    /// The connections already made go on.
    pub fn stop_forwarding(&self) {
        self.phase.send_if_modified(|phase| {
            let running = *phase == Phase::Running;
            if running {
                *phase = Phase::Draining;
            }
            running
        });
    }

    /// Disconnects and stops reconnecting.
    pub async fn disconnect(mut self) {
        self.phase.send_replace(Phase::Stopped);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Connects, and after every lost or failed connection waits as the backoff says and connects
/// again, until stopped or a host key is refused.
async fn keep_connected(
    context: Arc<SessionContext>,
    mut phase: watch::Receiver<Phase>,
) -> Result<(), ClientError> {
    let mut backoff = Backoff::new();
    loop {
        let (connected_for, reason, auth_refused) = match session::run(&context, &mut phase).await?
        {
            Ended::Stopped => return Ok(()),
            Ended::Lost { connected_for, reason, auth_refused } => {
                (connected_for, reason, auth_refused)
            }
        };
        if *phase.borrow() != Phase::Running {
            return Ok(());
        }
        let delay = backoff.next_delay(connected_for, rand::random());
        let delay = Duration::from_millis(delay.as_millis() as u64);
        // Retries since the last good connection, counting the one about to be made.
        let attempt = backoff.failures();
        let target = &context.target;
        let delay_text = crate::core::duration::format(delay);
        if auth_refused {
            tracing::error!(attempt, delay = %delay_text, %reason, "cannot log in to {target}; trying again");
        } else {
            tracing::warn!(attempt, delay = %delay_text, %reason, "reconnecting to {target}");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = phase.wait_for(|p| *p != Phase::Running) => return Ok(()),
        }
    }
}

impl ForwardedChannel {
    pub(super) fn new(stream: ChannelStream<Msg>) -> ForwardedChannel {
        ForwardedChannel(stream)
    }
}

impl AsyncRead for ForwardedChannel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ForwardedChannel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(login: &str, host: &str, port: u16) -> ConnectTarget {
        ConnectTarget { login: login.into(), host: host.into(), port }
    }

    #[test]
    fn targets_parse_with_and_without_a_port() {
        assert_eq!(
            "octocat@ci.example.com".parse(),
            Ok(target("octocat", "ci.example.com", DEFAULT_PORT))
        );
        assert_eq!("octocat@127.0.0.1:2222".parse(), Ok(target("octocat", "127.0.0.1", 2222)));
        assert_eq!("octocat@[::1]:2222".parse(), Ok(target("octocat", "::1", 2222)));
        assert_eq!("octocat@[::1]".parse(), Ok(target("octocat", "::1", DEFAULT_PORT)));
        assert_eq!(target("o", "::1", 22).to_string(), "[::1]:22");
        assert_eq!(target("o", "h", 22).to_string(), "h:22");
    }

    #[test]
    fn bad_targets_say_how_to_write_one() {
        for bad in ["ci.example.com", "@host", "octocat@", "o@h:0", "o@h:x", "o@[::1"] {
            let error = bad.parse::<ConnectTarget>().unwrap_err();
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }
}
