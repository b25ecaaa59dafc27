//! HTTP connections, served with hyper (HTTP/1.1) so that each is bounded: at most
//! `connections_max` at once, request headers within `header_timeout`, a body within
//! `body_timeout`, a response the client stops reading given up after
//! [`HTTP_WRITE_STALL_TIMEOUT`], and a shutdown that waits for requests in flight at most
//! [`HTTP_SHUTDOWN_GRACE`]. A slow client costs a task and a socket, never a worker thread, and
//! only for so long.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::core::limits::{AcceptBackoff, HTTP_CONNECTIONS_MAX, capped_by_file_limit};
use crate::net::{self, OverCap, WriteStall};

/// How long a client has to send a request's headers (also the longest a kept-alive connection
/// waits idle for the next request).
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client has to send a request's body, from the end of its headers.
pub const HTTP_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a response may wait for a client that takes none of it.
pub const HTTP_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// At shutdown, how long requests in flight (a live log's events, a download) may go on.
pub const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// What a connection over the cap is told before it is closed.
const OVER_CAP_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
    Content-Type: text/plain\r\nContent-Length: 21\r\nRetry-After: 1\r\n\r\ntoo many connections\n";

/// What bounds HTTP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Connections held at once; more are answered 503 and closed.
    pub connections_max: usize,
}

impl HttpLimits {
    /// The limits for a process that may open `file_limit` files.
    pub fn for_file_limit(file_limit: u64) -> HttpLimits {
        let connections_max = capped_by_file_limit(HTTP_CONNECTIONS_MAX, file_limit);
        HttpLimits { connections_max, ..HttpLimits::default() }
    }
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_timeout: HTTP_HEADER_TIMEOUT,
            body_timeout: HTTP_BODY_TIMEOUT,
            connections_max: HTTP_CONNECTIONS_MAX,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight end
/// for up to [`HTTP_SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let over_cap = OverCap::new("HTTP", limits.connections_max);
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = net::accept(&listener, &mut backoff, "HTTP") => accepted,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            over_cap.refused(peer);
            // Without waiting: a client that reads nothing gets nothing.
            let _ = stream.try_write(OVER_CAP_ANSWER);
            continue;
        };
        let connection = connection(stream, router.clone(), limits, &graceful);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(HTTP_SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::info!("HTTP requests still going at shutdown are cut off");
    }
    Ok(())
}

/// One connection: HTTP/1.1 only (browsers speak HTTP/2 only over TLS, which a proxy in front
/// ends), its headers and bodies bounded in time, watched by `graceful` for the shutdown.
fn connection(
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    graceful: &GracefulShutdown,
) -> impl Future<Output = hyper::Result<()>> + Send + 'static {
    let body_timeout = limits.body_timeout;
    let service = router.map_request(move |request: hyper::Request<Incoming>| {
        request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)))
    });
    let io = TokioIo::new(WriteStall::new(stream, HTTP_WRITE_STALL_TIMEOUT));
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, TowerToHyperService::new(service));
    graceful.watch(connection)
}

/// A request body that fails once its deadline has passed before it ended.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> DeadlineBody {
        DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(limit)) }
    }
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
