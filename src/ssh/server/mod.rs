//! The SSH gateway: GitHub-key logins, reverse forwards that make a runner, and nothing else.
//!
//! The russh handler ([`handler`]) only translates protocol callbacks; what a forward means
//! (call `Info`, record the runner, replace an older one) runs in tasks of its own
//! ([`forward`]), because a handler callback must never wait for a channel it opens.

mod forward;
mod handler;
pub mod keyring;
mod sessions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use self::keyring::{KeyLookupError, KeySource, Keyring};
pub use self::sessions::{Gateway, LiveRunner};
use super::host_key::HostKey;

/// Server keepalives: one every 15 s of silence from the client.
pub const SSH_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// The session ends after this many keepalive intervals with nothing from the client, so a
/// runner whose network dropped silently is gone within 45 s.
pub const SSH_SILENT_INTERVALS_BEFORE_CLOSE: usize = 3;
/// How long a connection may take to authenticate.
pub const LOGIN_GRACE_TIME: Duration = Duration::from_secs(30);
/// Authentication attempts per connection.
pub const MAX_AUTH_ATTEMPTS: usize = 6;
/// Reverse forwards (runners) per session.
pub const MAX_FORWARDS_PER_SESSION: usize = 8;
/// Sessions one user may hold at once.
pub const MAX_SESSIONS_PER_USER: usize = 16;

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
        // Runner sessions are idle for hours; keepalives decide liveness instead.
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
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let config = config(&host_key);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // russh applies `config.nodelay` only to sockets it accepts itself; without
                    // it Nagle holds a small write behind the peer's delayed ACK, 40 ms a run.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(%peer, error = %e, "setting TCP_NODELAY failed");
                    }
                    tokio::spawn(connection(gateway.clone(), config.clone(), stream, peer));
                }
                // Out of file descriptors and the like: log, and keep serving the others.
                Err(e) => tracing::warn!(error = %e, "accepting an SSH connection failed"),
            },
            () = &mut shutdown => break,
        }
    }
    gateway.close_all("the server is shutting down").await;
    Ok(())
}

/// One SSH connection, from handshake to cleanup.
async fn connection(
    gateway: Gateway,
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let session_id = gateway.new_session_id();
    let handler = handler::ConnectionHandler::new(gateway.clone(), session_id.clone(), peer);
    let authenticated = handler.authenticated_flag();
    let running = match russh::server::run_stream(config, stream, handler).await {
        Ok(running) => running,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "SSH handshake failed");
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let result = tokio::select! {
        result = &mut running => result,
        () = tokio::time::sleep(LOGIN_GRACE_TIME) => {
            if !authenticated.load(std::sync::atomic::Ordering::SeqCst) {
                tracing::info!(%peer, "closing a connection that did not authenticate in time");
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "authentication took too long".into(), String::new())
                    .await;
            }
            running.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, session = %session_id, error = %e, "SSH session ended with an error");
    }
    gateway.session_ended(&session_id).await;
}
