//! The SSH gateway: GitHub-key logins, reverse forwards that make a runner, and nothing else.
//!
//! The russh handler ([`handler`]) only translates protocol callbacks; what a forward means
//! (call `Info`, record the runner, replace an older one) runs in tasks of its own
//! ([`forward`]), because a handler callback must never wait for a channel it opens.

mod commands;
mod forward;
mod handler;
pub mod keyring;
mod sessions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use self::commands::CommandDeps;
pub use self::keyring::{KeyLookupError, KeySource, Keyring};
pub use self::sessions::{Gateway, LiveRunner};
use super::host_key::HostKey;
use crate::core::limits::{AcceptBackoff, SSH_UNAUTHENTICATED_MAX, capped_by_file_limit};
use crate::net::{self, Deadline, OverCap};

/// Server keepalives: one every 15 s of silence from the client.
pub const SSH_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// The session ends after this many keepalive intervals with nothing from the client, so a
/// runner whose network dropped silently is gone within 45 s.
pub const SSH_SILENT_INTERVALS_BEFORE_CLOSE: usize = 3;
/// How long a connection may take from its first byte to a successful login, the version
/// exchange included.
pub const LOGIN_GRACE_TIME: Duration = Duration::from_secs(30);
/// Authentication attempts per connection.
pub const MAX_AUTH_ATTEMPTS: usize = 6;
/// Reverse forwards (runners) per session.
pub const MAX_FORWARDS_PER_SESSION: usize = 8;
/// Session channels (shells and commands) one connection may hold open at once.
pub const MAX_CHANNELS_PER_SESSION: usize = 8;
/// Sessions one user may hold at once.
pub const MAX_SESSIONS_PER_USER: usize = 16;

/// What bounds connections before they log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshLimits {
    /// From the first byte to a successful login; then the connection is closed.
    pub login_timeout: Duration,
    /// Connections not yet logged in, held at once; more are closed on arrival.
    pub unauthenticated_max: usize,
}

impl SshLimits {
    /// The limits for a process that may open `file_limit` files.
    pub fn for_file_limit(file_limit: u64) -> SshLimits {
        let unauthenticated_max = capped_by_file_limit(SSH_UNAUTHENTICATED_MAX, file_limit);
        SshLimits { unauthenticated_max, ..SshLimits::default() }
    }
}

impl Default for SshLimits {
    fn default() -> SshLimits {
        SshLimits { login_timeout: LOGIN_GRACE_TIME, unauthenticated_max: SSH_UNAUTHENTICATED_MAX }
    }
}

/// What every session is told as the server stops; a plain `ssh -R` exits for good at it, so it
/// says how to come back by itself.
pub const SHUTDOWN_MESSAGE: &str = "tether: the server is stopping; connect again once it is back \
    (`tether runner --connect`, or ssh under autossh or systemd, reconnects by itself)";

/// The russh server configuration tether runs with.
fn config(host_key: &HostKey) -> Arc<russh::server::Config> {
    let mut config = russh::server::Config {
        keys: vec![host_key.key.clone()],
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(300),
        // OpenSSH's first "none" probe should not wait.
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: MAX_AUTH_ATTEMPTS,
        keepalive_interval: Some(SSH_KEEPALIVE_INTERVAL),
        // russh closes when the count of silent intervals *exceeds* `keepalive_max`.
        keepalive_max: SSH_SILENT_INTERVALS_BEFORE_CLOSE - 1,
        // Runner sessions are idle for hours; keepalives decide liveness instead. Before the
        // login, `Connection::run` bounds the whole phase.
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    };
    config.server_id =
        russh::SshId::Standard(format!("SSH-2.0-tether_{}", env!("CARGO_PKG_VERSION")).into());
    Arc::new(config)
}

/// Serves SSH on `listener` until `shutdown` resolves, then closes every session.
pub async fn serve(
    listener: TcpListener,
    host_key: HostKey,
    gateway: Gateway,
    limits: SshLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let config = config(&host_key);
    let unauthenticated = Arc::new(Semaphore::new(limits.unauthenticated_max));
    let over_cap = OverCap::new("unauthenticated SSH", limits.unauthenticated_max);
    let mut backoff = AcceptBackoff::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = net::accept(&listener, &mut backoff, "SSH") => accepted,
            () = &mut shutdown => break,
        };
        // Over the cap: closed at once, before it costs a task, a handshake or a key look-up.
        let Ok(permit) = unauthenticated.clone().try_acquire_owned() else {
            over_cap.refused(peer);
            continue;
        };
        // russh applies `config.nodelay` only to sockets it accepts itself; without it Nagle
        // holds a small write behind the peer's delayed ACK, 40 ms a run.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(%peer, error = %e, "setting TCP_NODELAY failed");
        }
        let connection = Connection { gateway: gateway.clone(), config: config.clone(), peer };
        tokio::spawn(connection.run(stream, permit, limits.login_timeout));
    }
    gateway.close_all(SHUTDOWN_MESSAGE).await;
    Ok(())
}

/// One SSH connection, from handshake to cleanup.
struct Connection {
    gateway: Gateway,
    config: Arc<russh::server::Config>,
    peer: SocketAddr,
}

impl Connection {
    /// Runs the session. Until it logs in, the connection holds `permit` and its I/O fails
    /// once `login_timeout` has passed, whatever russh waits for: the client's version line
    /// (which russh waits for without a bound), the key exchange or authentication.
    async fn run(self, stream: TcpStream, permit: OwnedSemaphorePermit, login_timeout: Duration) {
        let Connection { gateway, config, peer } = self;
        let session_id = gateway.new_session_id();
        let handler =
            handler::ConnectionHandler::new(gateway.clone(), session_id.clone(), peer, permit);
        let stream = Deadline::new(stream, login_timeout, handler.authenticated_flag());
        let running = match russh::server::run_stream(config, stream, handler).await {
            Ok(running) => running,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "SSH handshake failed");
                return;
            }
        };
        if let Err(e) = running.await {
            tracing::debug!(%peer, session = %session_id, error = %e, "SSH session ended with an error");
        }
        gateway.session_ended(&session_id).await;
    }
}
