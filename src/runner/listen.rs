//! Where a runner listens: a Unix socket (only its owner may connect) or a TCP address.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use super::service::RunnerService;

/// `--listen PATH` or `--listen tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(String),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<ListenAddr, String> {
        match text.strip_prefix("tcp:") {
            Some(addr) if addr.rsplit_once(':').is_some() => Ok(ListenAddr::Tcp(addr.to_string())),
            Some(_) => Err(format!("`{text}`: write a TCP address as tcp:HOST:PORT")),
            None if text.is_empty() => Err("the listen path is empty".into()),
            None => Ok(ListenAddr::Unix(PathBuf::from(text))),
        }
    }
}

/// A bound listener, ready to serve.
pub enum Bound {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl ListenAddr {
    /// Binds. A socket file left by a runner that is gone is replaced; one that a live runner
    /// listens on is an error. The socket is made accessible to its owner only: whoever can
    /// connect to it can run code as this user.
    pub async fn bind(&self) -> anyhow::Result<Bound> {
        match self {
            ListenAddr::Tcp(addr) => {
                let listener =
                    TcpListener::bind(addr).await.with_context(|| format!("binding tcp:{addr}"))?;
                if !listener.local_addr()?.ip().is_loopback() {
                    tracing::warn!(%addr, "the runner listens on a non-loopback address: anyone who reaches it can run code as this user");
                }
                Ok(Bound::Tcp(listener))
            }
            ListenAddr::Unix(path) => {
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    if !meta.file_type().is_socket() {
                        bail!("{} exists and is not a socket", path.display());
                    }
                    if tokio::net::UnixStream::connect(path).await.is_ok() {
                        bail!("another runner is listening on {}", path.display());
                    }
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing stale {}", path.display()))?;
                }
                let listener = UnixListener::bind(path)
                    .with_context(|| format!("binding {}", path.display()))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(Bound::Unix(listener, path.clone()))
            }
        }
    }
}

impl Bound {
    /// Where it listens, for people: the path, or `tcp:IP:PORT` with the port actually bound.
    pub fn describe(&self) -> String {
        match self {
            Bound::Unix(_, path) => path.display().to_string(),
            Bound::Tcp(listener) => {
                listener.local_addr().map_or_else(|e| e.to_string(), |a| format!("tcp:{a}"))
            }
        }
    }
}

/// Serves the runner until `shutdown` resolves; removes the socket file afterwards.
pub async fn serve(
    bound: Bound,
    service: RunnerService,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let router = tonic::transport::Server::builder().add_service(service.into_server());
    match bound {
        Bound::Tcp(listener) => {
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown).await?;
        }
        Bound::Unix(listener, path) => {
            let result = router
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                .await;
            let _ = std::fs::remove_file(&path);
            result?;
        }
    }
    Ok(())
}
