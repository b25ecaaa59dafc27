//! Where a runner serves: a Unix socket (only its owner may connect), a TCP address, or any
//! stream of connections another module accepts (such as forwarded SSH channels).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, bail};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::server::Connected;

use super::service::RunnerService;

/// `--listen PATH` or `--listen tcp:HOST:PORT`; a TCP address is a loopback one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(String),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<ListenAddr, String> {
        match text.strip_prefix("tcp:") {
            Some(addr) => match addr.rsplit_once(':') {
                Some((host, _)) => {
                    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
                    match ip {
                        Ok(ip) if !ip.is_loopback() => Err(not_loopback(addr)),
                        _ => Ok(ListenAddr::Tcp(addr.to_string())),
                    }
                }
                None => Err(format!("`{text}`: write a TCP address as tcp:HOST:PORT")),
            },
            None if text.is_empty() => Err("the listen path is empty".into()),
            None => Ok(ListenAddr::Unix(PathBuf::from(text))),
        }
    }
}

/// Why a TCP address other than loopback is refused.
fn not_loopback(addr: &str) -> String {
    format!(
        "tcp:{addr}: a runner listens on TCP on loopback only (127.0.0.1 or [::1]), as whoever \
         connects runs code as you; reach it from elsewhere through `ssh -R`, or use --listen PATH"
    )
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
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr.as_str())
                    .await
                    .with_context(|| format!("resolving tcp:{addr}"))?
                    .collect();
                if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
                    bail!(not_loopback(addr));
                }
                let listener = TcpListener::bind(&addrs[..])
                    .await
                    .with_context(|| format!("binding tcp:{addr}"))?;
                tracing::warn!(
                    "every local user can connect to tcp:{} and run code as you: prefer \
                     --listen PATH, a Unix socket only you can use",
                    listener.local_addr()?
                );
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

/// Serves the runner on every connection `incoming` yields until `shutdown` resolves, then
/// waits for the connections to finish their calls (new calls on them are refused). An error
/// from `incoming` skips that one connection.
pub async fn serve_streams<S, IO>(
    service: RunnerService,
    incoming: S,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()>
where
    S: Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming.map(|io| io.map(Accepted)), shutdown)
        .await
        .context("serving the runner protocol")
}

/// A connection from elsewhere, which tonic can serve; it knows nothing about its peer.
struct Accepted<IO>(IO);

impl<IO> Connected for Accepted<IO> {
    type ConnectInfo = ();

    fn connect_info(&self) {}
}

impl<IO: AsyncRead + Unpin> AsyncRead for Accepted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Accepted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use hyper_util::rt::TokioIo;
    use tonic::transport::Endpoint;

    use super::*;
    use crate::exec::{ExecConfig, Executor};
    use crate::runner::RunnerClient;
    use crate::runner::service::RunnerIdentity;

    #[tokio::test]
    async fn serves_the_protocol_over_any_stream_of_connections() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::new(ExecConfig {
            work_dir: dir.path().to_path_buf(),
            max_runs: 1,
            secrets: Default::default(),
            engines: Default::default(),
            pass_env: vec![],
        })
        .unwrap();
        let identity = RunnerIdentity { name: "piped".into(), labels: vec![] };
        let service = RunnerService::new(identity, executor);
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let incoming = futures::stream::iter([Ok(server_end)]).chain(futures::stream::pending());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_streams(service, incoming, async {
            let _ = stopped.await;
        }));
        let client_end = Arc::new(Mutex::new(Some(client_end)));
        let channel = Endpoint::from_static("http://runner.invalid")
            .connect_with_connector(tower::service_fn(move |_| {
                let io = client_end.lock().unwrap().take();
                async move {
                    io.map(TokioIo::new).ok_or_else(|| std::io::Error::other("one connection only"))
                }
            }))
            .await
            .unwrap();
        let mut client = RunnerClient::from_channel(channel);
        assert_eq!(client.info().await.unwrap().name, "piped");
        drop(client);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn tcp_is_loopback_only() {
        for addr in ["tcp:127.0.0.1:0", "tcp:[::1]:0", "tcp:localhost:0"] {
            assert!(matches!(addr.parse::<ListenAddr>(), Ok(ListenAddr::Tcp(_))), "{addr}");
        }
        for addr in ["tcp:0.0.0.0:7000", "tcp:[::]:7000", "tcp:192.168.1.2:7000"] {
            let error = addr.parse::<ListenAddr>().unwrap_err();
            assert!(error.contains("on loopback only"), "{addr}: {error}");
        }
        let bound = "tcp:localhost:0".parse::<ListenAddr>().unwrap().bind().await.unwrap();
        assert!(
            bound.describe().starts_with("tcp:127.0.0.1:")
                || bound.describe().starts_with("tcp:[::1]:")
        );
    }
}
