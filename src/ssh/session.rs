//! One SSH connection of a runner: connect, check the host key, log in, ask for the forward,
//! hand over the forwarded channels, and say how it ended.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, ChannelOpenHandle, DisconnectReason, Handle, Msg, Session};
use russh::keys::{Algorithm, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure, Disconnect, Preferred};
use tokio::sync::{mpsc, watch};

use super::client::{ClientError, ConnectTarget, ForwardedChannel};
use super::identity::{self, AuthError, Keys};
use super::known_hosts::HostKeyVerifier;

/// A keepalive goes out after this long without a word from the server.
pub const RUNNER_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Keepalives left unanswered before the connection counts as lost.
pub const RUNNER_KEEPALIVE_MAX: usize = 3;
/// Connecting, logging in and getting the forward must not take longer than this.
const SESSION_SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a closing session waits for the server to answer.
const SESSION_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the client wants of its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Shutting down: no new channels, but the ones open go on.
    Draining,
    Stopped,
}

/// What every session of one client shares.
pub struct SessionContext {
    pub target: ConnectTarget,
    pub runner_name: String,
    pub keys: Keys,
    pub verifier: HostKeyVerifier,
    pub channels: mpsc::Sender<std::io::Result<ForwardedChannel>>,
}

/// How a session ended, when trying again may help.
pub enum Ended {
    Stopped,
    Lost {
        /// Zero when it never got as far as the forward.
        connected_for: Duration,
        reason: String,
        /// The server refused every key: the user has to add one on GitHub.
        auth_refused: bool,
    },
}

/// Runs one session to its end. Only a refused host key is an error.
pub async fn run(
    context: &Arc<SessionContext>,
    phase: &mut watch::Receiver<Phase>,
) -> Result<Ended, ClientError> {
    let mut handle = match set_up_in_time(context, phase).await? {
        Ok(handle) => handle,
        Err(ended) => return Ok(ended),
    };
    let target = &context.target;
    // Not println!: a closed stdout must not take the runner down.
    let _ = writeln!(
        std::io::stdout(),
        "tether runner {} connected to {target} as {}",
        context.runner_name,
        target.login
    );
    let connected = Instant::now();
    match serve_until_lost(&mut handle, context, phase).await {
        None => Ok(Ended::Stopped),
        Some(reason) => {
            Ok(Ended::Lost { connected_for: connected.elapsed(), reason, auth_refused: false })
        }
    }
}

/// [`set_up`] within [`SESSION_SETUP_TIMEOUT`], given up when the client stops: a ready
/// session, or how the attempt ended.
async fn set_up_in_time(
    context: &Arc<SessionContext>,
    phase: &mut watch::Receiver<Phase>,
) -> Result<Result<Handle<ClientHandler>, Ended>, ClientError> {
    let setup = tokio::time::timeout(SESSION_SETUP_TIMEOUT, set_up(context, phase.clone()));
    let lost = |reason: String, auth_refused| {
        Ok(Err(Ended::Lost { connected_for: Duration::ZERO, reason, auth_refused }))
    };
    // A connection not made yet has no runs to let finish: stopping or draining ends it.
    let result = tokio::select! {
        result = setup => result,
        _ = phase.wait_for(|p| *p != Phase::Running) => return Ok(Err(Ended::Stopped)),
    };
    match result {
        Ok(Ok(handle)) => Ok(Ok(handle)),
        Ok(Err(SetupError::Session(SessionError::Fatal(error)))) => Err(error),
        Ok(Err(SetupError::Auth(AuthError::NoKeys))) => Err(ClientError::NoKeys),
        Ok(Err(error @ SetupError::Auth(AuthError::Refused { .. }))) => {
            lost(error.to_string(), true)
        }
        Ok(Err(error)) => lost(error.to_string(), false),
        Err(_) => lost(format!("no answer within {}s", SESSION_SETUP_TIMEOUT.as_secs()), false),
    }
}

#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(
        "the server refused to forward {path} (is another runner of yours named {name}?): {error}"
    )]
    Forward { path: String, name: String, error: russh::Error },
}

/// Connects, logs in and asks for the forward of `/NAME`.
async fn set_up(
    context: &Arc<SessionContext>,
    phase: watch::Receiver<Phase>,
) -> Result<Handle<ClientHandler>, SetupError> {
    let target = &context.target;
    let config = client::Config {
        keepalive_interval: Some(RUNNER_KEEPALIVE_INTERVAL),
        keepalive_max: RUNNER_KEEPALIVE_MAX,
        inactivity_timeout: None,
        nodelay: true,
        preferred: preferred(&context.verifier.known_algorithms()),
        ..Default::default()
    };
    let handler = ClientHandler {
        verifier: context.verifier.clone(),
        channels: context.channels.clone(),
        phase,
    };
    let address = (target.host.as_str(), target.port);
    let mut handle = client::connect(Arc::new(config), address, handler).await?;
    identity::authenticate(&mut handle, &target.login, &context.keys).await?;
    let path = format!("/{}", context.runner_name);
    if let Err(error) = handle.streamlocal_forward(path.as_str()).await {
        let name = context.runner_name.clone();
        return Err(SetupError::Forward { path, name, error });
    }
    Ok(handle)
}

/// Host key types in the default order, but those known_hosts has for the server first, so
/// that the server shows a key that can be checked.
fn preferred(known: &[Algorithm]) -> Preferred {
    let family = |a: &Algorithm| match a {
        Algorithm::Rsa { .. } => Algorithm::Rsa { hash: None },
        other => other.clone(),
    };
    let known: Vec<Algorithm> = known.iter().map(family).collect();
    let mut keys = Preferred::DEFAULT.key.to_vec();
    keys.sort_by_key(|a| !known.contains(&family(a)));
    Preferred { key: Cow::Owned(keys), ..Preferred::DEFAULT }
}

/// Waits until the connection is lost (`Some(reason)`) or the client stops (`None`).
async fn serve_until_lost(
    handle: &mut Handle<ClientHandler>,
    context: &SessionContext,
    phase: &mut watch::Receiver<Phase>,
) -> Option<String> {
    loop {
        let wanted = tokio::select! {
            ended = &mut *handle => return Some(describe_end(ended)),
            changed = phase.changed() => match changed {
                Ok(()) => *phase.borrow_and_update(),
                Err(_) => Phase::Stopped,
            },
        };
        match wanted {
            Phase::Running => {}
            Phase::Draining => {
                let path = format!("/{}", context.runner_name);
                let cancel = handle.cancel_streamlocal_forward(path);
                if let Ok(Err(e)) = tokio::time::timeout(SESSION_CLOSE_TIMEOUT, cancel).await {
                    tracing::debug!("cancelling the forward: {e}");
                }
            }
            Phase::Stopped => {
                let bye = handle.disconnect(Disconnect::ByApplication, "runner stopping", "en");
                let _ = bye.await;
                let _ = tokio::time::timeout(SESSION_CLOSE_TIMEOUT, &mut *handle).await;
                return None;
            }
        }
    }
}

fn describe_end(ended: Result<(), SessionError>) -> String {
    match ended {
        Ok(()) => "the server closed the connection".into(),
        Err(SessionError::Ssh(russh::Error::IO(e)))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            "the connection was closed".into()
        }
        Err(SessionError::Ssh(russh::Error::KeepaliveTimeout)) => format!(
            "no answer to {RUNNER_KEEPALIVE_MAX} keepalives sent {}s apart",
            RUNNER_KEEPALIVE_INTERVAL.as_secs()
        ),
        Err(error) => error.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Ssh(#[from] russh::Error),
    #[error("the server disconnected: {0}")]
    Disconnected(String),
    #[error(transparent)]
    Fatal(ClientError),
}

/// russh's side of one session: checks the host key and takes the forwarded channels.
struct ClientHandler {
    verifier: HostKeyVerifier,
    channels: mpsc::Sender<std::io::Result<ForwardedChannel>>,
    phase: watch::Receiver<Phase>,
}

impl client::Handler for ClientHandler {
    type Error = SessionError;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, SessionError> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        self.verifier.verify(&key).map_err(SessionError::Fatal)?;
        Ok(true)
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SessionError> {
        self.take(channel, reply).await;
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SessionError> {
        self.take(channel, reply).await;
        Ok(())
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<SessionError>,
    ) -> Result<(), SessionError> {
        match reason {
            DisconnectReason::ReceivedDisconnect(info) => {
                Err(SessionError::Disconnected(info.message))
            }
            DisconnectReason::Error(error) => Err(error),
        }
    }
}

impl ClientHandler {
    /// Accepts a channel and queues it for the runner, never waiting: the session loop that
    /// runs this handler is the one that carries every channel's bytes.
    async fn take(&self, channel: Channel<Msg>, reply: ChannelOpenHandle) {
        if *self.phase.borrow() != Phase::Running {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return;
        }
        match self.channels.try_reserve() {
            Ok(slot) => {
                reply.accept().await;
                slot.send(Ok(ForwardedChannel::new(channel.into_stream())));
            }
            Err(_) => {
                tracing::warn!("too many connections from the server waiting; refusing one");
                reply.reject(ChannelOpenFailure::ResourceShortage).await;
            }
        }
    }
}
